"""Transaction messages as data: stored-query requests and the registry's responses.

A query response carries its LeafClass objects as stored ebRIM XML fragments (text), so the registry
answers from stored bytes without rebuilding trees (ARCHITECTURE.md §4).

Documents never travel through these types as bytes: a :class:`DocumentContent` names content that the
document store holds (staged or published), with the size and hashes computed while it streamed in.

References
----------
ITI TF-2 §3.18.4.1.2 (AdhocQueryRequest), §3.18.4.1.3 (AdhocQueryResponse); ITI TF-2 §3.42.4.2;
ITI TF-2 §3.41.4.1.2 (ProvideAndRegisterDocumentSetRequest); ITI TF-2 §3.43.4.1.2, §3.43.4.2.2 (Retrieve).
"""

from __future__ import annotations

from dataclasses import dataclass

from xds import vocabulary as v
from xds.errors import RegistryErrorItem, Severity
from xds.model.metadata import ObjectRef, Submission

LEAF_CLASS = "LeafClass"
OBJECT_REF = "ObjectRef"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryParameter:
    """One ``rim:Slot`` of an AdhocQuery: its name and its raw ``rim:Value`` texts."""

    name: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredQueryRequest:
    """An ITI-18 / ITI-38 AdhocQueryRequest."""

    query_id: str
    return_type: str = LEAF_CLASS
    parameters: tuple[QueryParameter, ...] = ()
    home: str = ""
    return_composed_objects: bool = True


def status_for(errors: tuple[RegistryErrorItem, ...], *, partial: bool = False) -> str:
    """Response status: Failure when any error has severity Error (PartialSuccess if ``partial``)."""
    if any(e.severity == Severity.ERROR for e in errors):
        return v.RESPONSE_PARTIAL_SUCCESS if partial else v.RESPONSE_FAILURE
    return v.RESPONSE_SUCCESS


def outcome_status(*, succeeded: bool, failed: bool) -> str:
    """Success when nothing failed, PartialSuccess when something succeeded too, else Failure (ITI-43, ITI-39,
    and the initiating gateway's merged answers)."""
    if not failed:
        return v.RESPONSE_SUCCESS
    return v.RESPONSE_PARTIAL_SUCCESS if succeeded else v.RESPONSE_FAILURE


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryResponse:
    """``rs:RegistryResponse`` (ITI-42, ITI-41)."""

    status: str = v.RESPONSE_SUCCESS
    errors: tuple[RegistryErrorItem, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryResponse:
    """``query:AdhocQueryResponse``: LeafClass fragments or ObjectRefs, and errors."""

    status: str = v.RESPONSE_SUCCESS
    errors: tuple[RegistryErrorItem, ...] = ()
    leaf: tuple[str, ...] = ()
    refs: tuple[ObjectRef, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentContent:
    """A document's bytes as the document store holds them (never in memory).

    ``ref`` is the store's handle (a staged file until the submission is accepted); ``sha1`` and
    ``sha256`` are lower-case hex digests computed while the bytes streamed in.
    """

    ref: str
    size: int
    sha1: str
    sha256: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredDocument:
    """A document a repository holds: its identifiers, mimeType and content."""

    repository_unique_id: str
    unique_id: str
    mime_type: str
    content: DocumentContent
    entry_uuid: str = ""
    patient_id: str = ""
    """The DocumentEntry's patient (the consent gate asks about it)."""
    category: str = ""
    """The DocumentEntry's classCode code (the consent gate's data category)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvideAndRegisterRequest:
    """An ITI-41 request: the submission and its documents by ``Document/@id`` (the DocumentEntry id)."""

    submission: Submission
    documents: tuple[tuple[str, DocumentContent], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentRequest:
    """One ``xdsb:DocumentRequest`` of ITI-43 (and ITI-39)."""

    repository_unique_id: str
    document_unique_id: str
    home_community_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrieveRequest:
    """``xdsb:RetrieveDocumentSetRequest``."""

    documents: tuple[DocumentRequest, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ImagingDocumentRequest:
    """One DICOM instance asked for by RAD-69 / RAD-75: its study, series and ``DocumentRequest``."""

    study_instance_uid: str
    series_instance_uid: str
    document: DocumentRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class ImagingRetrieveRequest:
    """``xdsiB:RetrieveImagingDocumentSetRequest`` (RAD-69, RAD-75)."""

    documents: tuple[ImagingDocumentRequest, ...]
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrievedDocument:
    """One ``xdsb:DocumentResponse``: identifiers, mimeType and the stored content it streams from."""

    repository_unique_id: str
    document_unique_id: str
    mime_type: str
    content: DocumentContent
    home_community_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrieveResponse:
    """``xdsb:RetrieveDocumentSetResponse``: status, errors (each located) and the documents found."""

    status: str = v.RESPONSE_SUCCESS
    errors: tuple[RegistryErrorItem, ...] = ()
    documents: tuple[RetrievedDocument, ...] = ()


__all__ = [
    "LEAF_CLASS",
    "OBJECT_REF",
    "DocumentContent",
    "DocumentRequest",
    "ImagingDocumentRequest",
    "ImagingRetrieveRequest",
    "ProvideAndRegisterRequest",
    "QueryParameter",
    "QueryResponse",
    "RegistryResponse",
    "RetrieveRequest",
    "RetrieveResponse",
    "RetrievedDocument",
    "StoredDocument",
    "StoredQueryRequest",
    "outcome_status",
    "status_for",
]
