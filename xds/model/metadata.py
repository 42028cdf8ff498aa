"""XDS metadata objects: DocumentEntry, SubmissionSet, Folder, Association, with Code and Author.

Each object keeps the attributes the profile names as typed fields and everything else it carried in
``extra_slots`` / ``extra_classifications`` / ``extra_identifiers``, so that ``parse(render(x)) == x``.
Per-field checks live in the constructors; cross-object rules live in :mod:`xds.validation`.

References
----------
ITI TF-3 §4.2.3.2 (DocumentEntry), §4.2.3.3 (SubmissionSet), §4.2.3.4 (Folder), §4.2.2 (Associations).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from xds import vocabulary as v
from xds.model.hl7 import CX, DTM, XCN, XON, XTN
from xds.model.rim import Classification, ExternalIdentifier, InternationalString, Slot

_URI_ID = re.compile(r"^\S+$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Code:
    """A coded value: ``nodeRepresentation`` + ``codingScheme`` slot + display name (ITI TF-3 §4.2.3.1.2)."""

    code: str
    scheme: str
    display_name: InternationalString = ()

    def __post_init__(self) -> None:
        if not self.code or not self.scheme:
            raise ValueError(f"a code needs a value and a coding scheme: {self.code!r}^^{self.scheme!r}")

    def query_form(self) -> str:
        """The ``code^^scheme`` form stored queries use (ITI TF-2 §3.18.4.1.2.3.5)."""
        return f"{self.code}^^{self.scheme}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Author:
    """Author of a DocumentEntry or SubmissionSet (ITI TF-3 §4.2.3.1.4)."""

    person: XCN | None = None
    institutions: tuple[XON, ...] = ()
    roles: tuple[str, ...] = ()
    specialties: tuple[str, ...] = ()
    telecoms: tuple[XTN, ...] = ()
    extra_slots: tuple[Slot, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class _RegistryObject:
    """Attributes every XDS object shares (ebRIM RegistryObject)."""

    id: str
    lid: str = ""
    home: str = ""
    status: str = ""
    version_name: str = ""
    title: InternationalString = ()
    comments: InternationalString = ()
    extra_slots: tuple[Slot, ...] = ()
    extra_classifications: tuple[Classification, ...] = ()
    extra_identifiers: tuple[ExternalIdentifier, ...] = ()

    def __post_init__(self) -> None:
        if not _URI_ID.match(self.id):
            raise ValueError(f"object id must be a non-empty URI without spaces: {self.id!r}")

    def slot(self, name: str) -> tuple[str, ...] | None:
        """Values of an extra slot, or None when absent."""
        for s in self.extra_slots:
            if s.name == name:
                return s.values
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentEntry(_RegistryObject):
    """An XDSDocumentEntry (``rim:ExtrinsicObject``)."""

    object_type: str = v.DE_STABLE
    mime_type: str = ""
    unique_id: str = ""
    patient_id: CX | None = None
    source_patient_id: CX | None = None
    source_patient_info: tuple[str, ...] = ()
    class_code: Code | None = None
    type_code: Code | None = None
    format_code: Code | None = None
    healthcare_facility_type_code: Code | None = None
    practice_setting_code: Code | None = None
    confidentiality_codes: tuple[Code, ...] = ()
    event_codes: tuple[Code, ...] = ()
    authors: tuple[Author, ...] = ()
    creation_time: DTM | None = None
    service_start_time: DTM | None = None
    service_stop_time: DTM | None = None
    hash: str = ""
    size: int | None = None
    repository_unique_id: str = ""
    language_code: str = ""
    legal_authenticator: XCN | None = None
    uri: str = ""
    reference_ids: tuple[str, ...] = ()
    document_availability: str = ""
    limited_metadata: bool = False

    def codes(self) -> list[tuple[str, Code]]:
        """Every coded value with its classification scheme, for indexing."""
        out: list[tuple[str, Code]] = []
        for scheme, code in (
            (v.DE_CLASS_CODE, self.class_code),
            (v.DE_TYPE_CODE, self.type_code),
            (v.DE_FORMAT_CODE, self.format_code),
            (v.DE_HEALTHCARE_FACILITY_TYPE_CODE, self.healthcare_facility_type_code),
            (v.DE_PRACTICE_SETTING_CODE, self.practice_setting_code),
        ):
            if code is not None:
                out.append((scheme, code))
        out += [(v.DE_CONFIDENTIALITY_CODE, c) for c in self.confidentiality_codes]
        out += [(v.DE_EVENT_CODE, c) for c in self.event_codes]
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmissionSet(_RegistryObject):
    """An XDSSubmissionSet (``rim:RegistryPackage`` classified as SubmissionSet)."""

    unique_id: str = ""
    source_id: str = ""
    patient_id: CX | None = None
    submission_time: DTM | None = None
    content_type_code: Code | None = None
    authors: tuple[Author, ...] = ()
    intended_recipients: tuple[str, ...] = ()
    limited_metadata: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Folder(_RegistryObject):
    """An XDSFolder (``rim:RegistryPackage`` classified as Folder)."""

    unique_id: str = ""
    patient_id: CX | None = None
    codes: tuple[Code, ...] = ()
    last_update_time: DTM | None = None
    limited_metadata: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Association(_RegistryObject):
    """An ebRIM Association between two objects (ITI TF-3 §4.2.2)."""

    association_type: str = ""
    source: str = ""
    target: str = ""

    @property
    def submission_set_status(self) -> str:
        """The SubmissionSetStatus slot of a HasMember association, or ''."""
        values = self.slot("SubmissionSetStatus")
        return values[0] if values else ""


RegistryObject = DocumentEntry | SubmissionSet | Folder | Association
"""Any top-level XDS object."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectRef:
    """A reference to an object by id (``rim:ObjectRef``), with optional ``home``."""

    id: str
    home: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Submission:
    """The content of one SubmitObjectsRequest, in message order per kind."""

    submission_sets: tuple[SubmissionSet, ...] = ()
    document_entries: tuple[DocumentEntry, ...] = ()
    folders: tuple[Folder, ...] = ()
    associations: tuple[Association, ...] = ()
    object_refs: tuple[ObjectRef, ...] = field(default=())

    def objects(self) -> list[RegistryObject]:
        """All objects: submission sets, document entries, folders, associations."""
        return [*self.submission_sets, *self.document_entries, *self.folders, *self.associations]


__all__ = [
    "Association",
    "Author",
    "Code",
    "DocumentEntry",
    "Folder",
    "ObjectRef",
    "RegistryObject",
    "Submission",
    "SubmissionSet",
]
