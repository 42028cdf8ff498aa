"""Valid metadata with sensible defaults: for document sources (``xds submit``), tests and benchmarks.

The defaults are the NIST XDS Toolkit's affinity-domain codes, so a submission built here also passes a
registry that validates against the toolkit's ``codes.xml``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from xds import vocabulary as v
from xds.model.hl7 import CX, DTM, XCN, XON
from xds.model.metadata import Association, Author, Code, DocumentEntry, Folder, Submission, SubmissionSet
from xds.model.rim import Slot, text

CLASS_CODE = Code(code="REPORTS", scheme="1.3.6.1.4.1.19376.1.2.6.1", display_name=text("Reports"))
TYPE_CODE = Code(code="11369-6", scheme="2.16.840.1.113883.6.1", display_name=text("Immunization"))
FORMAT_CODE = Code(
    code="urn:ihe:iti:xds:2017:mimeTypeSufficient",
    scheme="1.3.6.1.4.1.19376.1.2.3",
    display_name=text("mimeType Sufficient"),
)
FACILITY_CODE = Code(
    code="225728007", scheme="2.16.840.1.113883.6.96", display_name=text("Accident and Emergency department")
)
PRACTICE_CODE = Code(code="309927009", scheme="2.16.840.1.113883.6.96", display_name=text("General medical department"))
CONFIDENTIALITY_CODE = Code(code="N", scheme="2.16.840.1.113883.5.25", display_name=text("normal"))
CONTENT_TYPE_CODE = Code(
    code="225728007", scheme="2.16.840.1.113883.6.96", display_name=text("Accident and Emergency department")
)
FOLDER_CODE = Code(code="Referrals", scheme="1.3.6.1.4.1.21367.2017.3", display_name=text("Referrals"))
SOURCE_ID = "1.3.6.1.4.1.21367.2017.2.1.99"


def new_uuid() -> str:
    """A fresh ``urn:uuid:`` id."""
    return f"urn:uuid:{uuid.uuid4()}"


def new_oid() -> str:
    """A fresh OID under 2.25 (UUID-based)."""
    return f"2.25.{uuid.uuid4().int}"


def now_dtm() -> DTM:
    """The current UTC time as a DTM."""
    return DTM(datetime.now(UTC).strftime("%Y%m%d%H%M%S"))


def author() -> Author:
    """A plausible document author."""
    return Author(
        person=XCN(family_name="Jansen", given_name="Anna"),
        institutions=(XON(organization_name="Ziekenhuis Voorbeeld"),),
        roles=("Attending",),
    )


def document_entry(
    patient: CX,
    *,
    content: bytes = b"hello",
    entry_id: str = "",
    unique_id: str = "",
    mime_type: str = "text/plain",
    title: str = "Document",
    repository_unique_id: str = "1.3.6.1.4.1.21367.2017.2.3.99",
    creation_time: str = "",
    class_code: Code = CLASS_CODE,
    event_codes: Sequence[Code] = (),
    reference_ids: Sequence[str] = (),
    object_type: str = v.DE_STABLE,
) -> DocumentEntry:
    """A complete stable DocumentEntry for ``content``."""
    stable = object_type == v.DE_STABLE
    return DocumentEntry(
        id=entry_id or new_uuid(),
        object_type=object_type,
        mime_type=mime_type,
        unique_id=unique_id or new_oid(),
        patient_id=patient,
        source_patient_id=patient,
        title=text(title),
        class_code=class_code,
        type_code=TYPE_CODE,
        format_code=FORMAT_CODE,
        healthcare_facility_type_code=FACILITY_CODE,
        practice_setting_code=PRACTICE_CODE,
        confidentiality_codes=(CONFIDENTIALITY_CODE,),
        event_codes=tuple(event_codes),
        authors=(author(),),
        creation_time=DTM(creation_time) if creation_time else now_dtm(),
        language_code="nl-NL",
        hash=hashlib.sha1(content).hexdigest() if stable else "",
        size=len(content) if stable else None,
        repository_unique_id=repository_unique_id,
        reference_ids=tuple(reference_ids),
    )


def submission_set(patient: CX, *, set_id: str = "", unique_id: str = "", title: str = "") -> SubmissionSet:
    """A complete SubmissionSet."""
    return SubmissionSet(
        id=set_id or new_uuid(),
        unique_id=unique_id or new_oid(),
        source_id=SOURCE_ID,
        patient_id=patient,
        submission_time=now_dtm(),
        content_type_code=CONTENT_TYPE_CODE,
        authors=(author(),),
        title=text(title) if title else (),
    )


def folder(patient: CX, *, folder_id: str = "", title: str = "Folder") -> Folder:
    """A complete Folder."""
    return Folder(
        id=folder_id or new_uuid(),
        unique_id=new_oid(),
        patient_id=patient,
        codes=(FOLDER_CODE,),
        title=text(title),
    )


def has_member(source: str, target: str, *, status: str = v.SS_STATUS_ORIGINAL, assoc_id: str = "") -> Association:
    """A HasMember association (with SubmissionSetStatus when ``status``)."""
    slots = (Slot(name="SubmissionSetStatus", values=(status,)),) if status else ()
    return Association(
        id=assoc_id or new_uuid(),
        association_type=v.HAS_MEMBER,
        source=source,
        target=target,
        extra_slots=slots,
    )


def relation(kind: str, source: str, target: str) -> Association:
    """A document relationship (RPLC, APND, XFRM, XFRM_RPLC, signs)."""
    return Association(id=new_uuid(), association_type=kind, source=source, target=target)


def submission(
    patient: CX,
    entries: Sequence[DocumentEntry] = (),
    *,
    folders: Sequence[Folder] = (),
    extra: Sequence[Association] = (),
    ss: SubmissionSet | None = None,
) -> Submission:
    """A SubmissionSet holding ``entries`` and ``folders`` with their HasMember associations."""
    ss = ss or submission_set(patient)
    assocs = [has_member(ss.id, o.id) for o in (*entries, *folders)]
    return Submission(
        submission_sets=(ss,),
        document_entries=tuple(entries),
        folders=tuple(folders),
        associations=(*assocs, *extra),
    )


def patient(n: int | str = 1, oid: str = "1.3.6.1.4.1.21367.13.20.1000") -> CX:
    """A patient id ``<n>^^^&<oid>&ISO``."""
    return CX.parse(f"{n}^^^&{oid}&ISO")


__all__ = [
    "document_entry",
    "folder",
    "has_member",
    "new_oid",
    "new_uuid",
    "patient",
    "relation",
    "submission",
    "submission_set",
]
