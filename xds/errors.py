"""XDS error codes and the one exception tree that carries them.

Handlers raise; only the ASGI adapter turns an exception into a RegistryErrorList (business errors) or a
SOAP 1.2 Fault (envelope errors, see :mod:`xds.soap.faults`).

Class tree::

    XDSError                          (error_code set per subclass; default: the actor's metadata error)
    ├── MetadataError                 XDSRegistryMetadataError
    ├── RepositoryMetadataError       XDSRepositoryMetadataError
    ├── UnknownPatientId              XDSUnknownPatientId
    ├── PatientIdDoesNotMatch         XDSPatientIdDoesNotMatch
    ├── DuplicateUniqueIdInMessage    XDSRegistryDuplicateUniqueIdInMessage
    ├── DuplicateUniqueIdInRegistry   XDSDuplicateUniqueIdInRegistry
    ├── NonIdenticalHash              XDSNonIdenticalHash
    ├── RegistryError                 XDSRegistryError (unexpected internal failure)
    ├── UnresolvedReference           UnresolvedReferenceException
    ├── StoredQueryError
    │   ├── StoredQueryMissingParam   XDSStoredQueryMissingParam
    │   ├── StoredQueryParamNumber    XDSStoredQueryParamNumber
    │   ├── UnknownStoredQuery        XDSUnknownStoredQuery
    │   ├── ResultNotSinglePatient    XDSResultNotSinglePatient
    │   └── TooManyResults            XDSTooManyResults
    ├── UnknownCommunity              XDSUnknownCommunity
    └── MissingHomeCommunityId        XDSMissingHomeCommunityId

References
----------
ITI TF-3 §4.2.4.1 Table 4.2.4.1-2 (Error Codes); ITI TF-2 §3.18.4.1.3; ebRS 3.0 §2.1.6 (RegistryError).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from xds import vocabulary as v


class ErrorCode(StrEnum):
    """Error codes of ITI TF-3 Table 4.2.4.1-2 and ebRS 3.0."""

    # ITI TF-3 Table 4.2.4.1-2
    REGISTRY_METADATA_ERROR = "XDSRegistryMetadataError"
    REPOSITORY_METADATA_ERROR = "XDSRepositoryMetadataError"
    REGISTRY_ERROR = "XDSRegistryError"
    REGISTRY_BUSY = "XDSRegistryBusy"
    REGISTRY_OUT_OF_RESOURCES = "XDSRegistryOutOfResources"
    REGISTRY_NOT_AVAILABLE = "XDSRegistryNotAvailable"
    REPOSITORY_ERROR = "XDSRepositoryError"
    XDSI_REQUEST_ERROR = "XDSIRequestError"
    """RAD TF-3 §4.69: a RAD-69/RAD-75 request that is malformed (a missing Study or Series Instance UID)."""
    REPOSITORY_BUSY = "XDSRepositoryBusy"
    REPOSITORY_OUT_OF_RESOURCES = "XDSRepositoryOutOfResources"
    UNKNOWN_PATIENT_ID = "XDSUnknownPatientId"
    PATIENT_ID_DOES_NOT_MATCH = "XDSPatientIdDoesNotMatch"
    REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE = "XDSRegistryDuplicateUniqueIdInMessage"
    DUPLICATE_UNIQUE_ID_IN_REGISTRY = "XDSDuplicateUniqueIdInRegistry"
    NON_IDENTICAL_HASH = "XDSNonIdenticalHash"
    NON_IDENTICAL_SIZE = "XDSNonIdenticalSize"
    MISSING_DOCUMENT = "XDSMissingDocument"
    MISSING_DOCUMENT_METADATA = "XDSMissingDocumentMetadata"
    DOCUMENT_UNIQUE_ID_ERROR = "XDSDocumentUniqueIdError"
    UNKNOWN_REPOSITORY_ID = "XDSUnknownRepositoryId"
    EXTRA_METADATA_NOT_SAVED = "XDSExtraMetadataNotSaved"
    STORED_QUERY_MISSING_PARAM = "XDSStoredQueryMissingParam"
    STORED_QUERY_PARAM_NUMBER = "XDSStoredQueryParamNumber"
    UNKNOWN_STORED_QUERY = "XDSUnknownStoredQuery"
    RESULT_NOT_SINGLE_PATIENT = "XDSResultNotSinglePatient"
    TOO_MANY_RESULTS = "XDSTooManyResults"
    UNKNOWN_COMMUNITY = "XDSUnknownCommunity"
    MISSING_HOME_COMMUNITY_ID = "XDSMissingHomeCommunityId"
    UNAVAILABLE_COMMUNITY = "XDSUnavailableCommunity"
    # ebRS 3.0 §2.1.6
    UNRESOLVED_REFERENCE = "UnresolvedReferenceException"


class Severity(StrEnum):
    """RegistryError severities (ebRS 3.0)."""

    ERROR = v.SEVERITY_ERROR
    WARNING = v.SEVERITY_WARNING


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryErrorItem:
    """One ``rs:RegistryError`` as data (used for warnings and for errors collected from peers)."""

    error_code: str
    code_context: str
    severity: Severity = Severity.ERROR
    location: str = ""


class XDSError(Exception):
    """A business error answered as a RegistryErrorList (status Failure, HTTP 200)."""

    error_code: ErrorCode = ErrorCode.REGISTRY_METADATA_ERROR
    severity: Severity = Severity.ERROR

    def __init__(self, code_context: str, *, location: str = "") -> None:
        super().__init__(code_context)
        self.code_context = code_context
        self.location = location

    def as_item(self) -> RegistryErrorItem:
        """This error as a RegistryError record."""
        return RegistryErrorItem(
            error_code=self.error_code,
            code_context=self.code_context,
            severity=self.severity,
            location=self.location,
        )

    def items(self) -> tuple[RegistryErrorItem, ...]:
        """Every RegistryError this exception answers with."""
        return (self.as_item(),)


class MetadataError(XDSError):
    error_code = ErrorCode.REGISTRY_METADATA_ERROR


class RepositoryMetadataError(XDSError):
    error_code = ErrorCode.REPOSITORY_METADATA_ERROR


class ImagingRequestError(XDSError):
    """A malformed RAD-69 / RAD-75 request (XDSIRequestError)."""

    error_code = ErrorCode.XDSI_REQUEST_ERROR


class RepositoryError(XDSError):
    error_code = ErrorCode.REPOSITORY_ERROR


class RepositoryOutOfResources(XDSError):
    error_code = ErrorCode.REPOSITORY_OUT_OF_RESOURCES


class RegistryNotAvailable(XDSError):
    error_code = ErrorCode.REGISTRY_NOT_AVAILABLE


class MissingDocument(XDSError):
    error_code = ErrorCode.MISSING_DOCUMENT


class MissingDocumentMetadata(XDSError):
    error_code = ErrorCode.MISSING_DOCUMENT_METADATA


class DocumentUniqueIdError(XDSError):
    error_code = ErrorCode.DOCUMENT_UNIQUE_ID_ERROR


class UnknownRepositoryId(XDSError):
    error_code = ErrorCode.UNKNOWN_REPOSITORY_ID


class UnknownPatientId(XDSError):
    error_code = ErrorCode.UNKNOWN_PATIENT_ID


class PatientIdDoesNotMatch(XDSError):
    error_code = ErrorCode.PATIENT_ID_DOES_NOT_MATCH


class DuplicateUniqueIdInMessage(XDSError):
    error_code = ErrorCode.REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE


class DuplicateUniqueIdInRegistry(XDSError):
    error_code = ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY


class NonIdenticalHash(XDSError):
    error_code = ErrorCode.NON_IDENTICAL_HASH


class RegistryError(XDSError):
    error_code = ErrorCode.REGISTRY_ERROR


class UnresolvedReference(XDSError):
    error_code = ErrorCode.UNRESOLVED_REFERENCE


class StoredQueryError(XDSError):
    error_code = ErrorCode.REGISTRY_ERROR


class StoredQueryMissingParam(StoredQueryError):
    error_code = ErrorCode.STORED_QUERY_MISSING_PARAM


class StoredQueryParamNumber(StoredQueryError):
    error_code = ErrorCode.STORED_QUERY_PARAM_NUMBER


class UnknownStoredQuery(StoredQueryError):
    error_code = ErrorCode.UNKNOWN_STORED_QUERY


class ResultNotSinglePatient(StoredQueryError):
    error_code = ErrorCode.RESULT_NOT_SINGLE_PATIENT


class TooManyResults(StoredQueryError):
    error_code = ErrorCode.TOO_MANY_RESULTS


class UnknownCommunity(XDSError):
    error_code = ErrorCode.UNKNOWN_COMMUNITY


class MissingHomeCommunityId(XDSError):
    error_code = ErrorCode.MISSING_HOME_COMMUNITY_ID


class XDSErrors(XDSError):
    """Several business errors found in one request, answered together in one RegistryErrorList."""

    def __init__(self, errors: list[XDSError]) -> None:
        if not errors:
            raise ValueError("XDSErrors needs at least one error")
        super().__init__(errors[0].code_context, location=errors[0].location)
        self.errors = errors
        self.error_code = errors[0].error_code

    def items(self) -> tuple[RegistryErrorItem, ...]:
        return tuple(e.as_item() for e in self.errors)


class RelayedErrors(XDSError):
    """Errors another actor answered with (a remote registry), relayed unchanged."""

    def __init__(self, items: tuple[RegistryErrorItem, ...]) -> None:
        if not items:
            raise ValueError("RelayedErrors needs at least one error")
        super().__init__(items[0].code_context, location=items[0].location)
        self._items = items

    def items(self) -> tuple[RegistryErrorItem, ...]:
        return self._items


__all__ = [
    "DocumentUniqueIdError",
    "DuplicateUniqueIdInMessage",
    "DuplicateUniqueIdInRegistry",
    "ErrorCode",
    "MetadataError",
    "MissingDocument",
    "MissingDocumentMetadata",
    "MissingHomeCommunityId",
    "NonIdenticalHash",
    "PatientIdDoesNotMatch",
    "RegistryError",
    "RegistryErrorItem",
    "RegistryNotAvailable",
    "RelayedErrors",
    "RepositoryError",
    "RepositoryMetadataError",
    "RepositoryOutOfResources",
    "ResultNotSinglePatient",
    "Severity",
    "StoredQueryError",
    "StoredQueryMissingParam",
    "StoredQueryParamNumber",
    "TooManyResults",
    "UnknownCommunity",
    "UnknownPatientId",
    "UnknownRepositoryId",
    "UnknownStoredQuery",
    "UnresolvedReference",
    "XDSError",
    "XDSErrors",
]
