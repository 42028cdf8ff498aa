"""Cross-object metadata rules of a submission (ITI-42 / ITI-41), checked before anything is stored.

Per-field formats are checked by the model constructors and the codec; this module checks what needs the
whole submission: required attributes per object type, value formats the model keeps as plain strings,
patient-id consistency, uniqueness inside the message, association shape and SubmissionSet membership, and
the affinity domain's code lists. Every finding comes from :data:`MESSAGES`, which binds text to an error
class; :func:`validate_submission` returns them all so one answer names every problem.

References
----------
ITI TF-3 §4.1 (submission rules), §4.2.2 (associations), §4.2.3 (attributes), Table 4.3.1-3 (optionality
per transaction), §4.2.4.1 (error codes).
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from xds import vocabulary as v
from xds.codelists import CodeLists
from xds.errors import (
    DuplicateUniqueIdInMessage,
    MetadataError,
    PatientIdDoesNotMatch,
    XDSError,
)
from xds.model.hl7 import CX, is_oid
from xds.model.metadata import Association, Author, Code, DocumentEntry, Folder, Submission, SubmissionSet

_SS_STATUSES = (v.SS_STATUS_ORIGINAL, v.SS_STATUS_REFERENCE)
_HASH = re.compile(r"^[0-9a-fA-F]{40}$")
_MIME = re.compile(r"^[A-Za-z0-9][\w!#$&.+^-]*/[A-Za-z0-9][\w!#$&.+^-]*(\s*;.*)?$")
_LANG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
_DE_UID = re.compile(r"^(?P<oid>[0-9.]+)(\^(?P<ext>.{1,16}))?$")

#: message key -> (error class, text template)
MESSAGES: dict[str, tuple[type[XDSError], str]] = {
    "missing": (MetadataError, "{kind} {id}: required attribute {attr} is missing"),
    "bad_format": (MetadataError, "{kind} {id}: {attr} {value!r} is not a valid {what}"),
    "bad_object_type": (
        MetadataError,
        "DocumentEntry {id}: objectType {value!r} is neither stable nor on-demand",
    ),
    "on_demand_hash": (MetadataError, "On-Demand DocumentEntry {id} may not carry {attr}"),
    "limited": (MetadataError, "{kind} {id}: limited metadata is not accepted by a Document Registry"),
    "ss_count": (MetadataError, "a submission needs exactly one SubmissionSet, found {n}"),
    "dup_id": (MetadataError, "object id {id} appears more than once in the submission"),
    "bad_uuid": (MetadataError, "{kind} {id}: id starts with urn:uuid: but is not a UUID"),
    "dup_uid": (DuplicateUniqueIdInMessage, "uniqueId {value} appears more than once in the submission"),
    "pid_mismatch": (
        PatientIdDoesNotMatch,
        "{kind} {id}: patientId {value} differs from the SubmissionSet's {ss}",
    ),
    "assoc_type": (MetadataError, "Association {id}: unknown associationType {value!r}"),
    "assoc_ends": (MetadataError, "Association {id}: sourceObject and targetObject are required"),
    "ss_status": (
        MetadataError,
        "Association {id}: a HasMember from the SubmissionSet to a DocumentEntry needs a SubmissionSetStatus slot"
        " of Original or Reference",
    ),
    "not_member": (
        MetadataError,
        "{kind} {id} is not a member of the SubmissionSet (no HasMember association)",
    ),
    "self_assoc": (MetadataError, "Association {id} links {value} to itself"),
    "doc_classification": (
        MetadataError,
        "Association {id}: a HasMember association may not carry a documentation classification",
    ),
    "relation_source": (
        MetadataError,
        "Association {id}: a {value} association must start at a DocumentEntry of this submission",
    ),
    "unknown_code": (MetadataError, "{kind} {id}: {attr} {value} is not in the affinity domain's code list"),
    "unknown_mime": (
        MetadataError,
        "DocumentEntry {id}: mimeType {value!r} is not in the affinity domain's list",
    ),
    "author_empty": (
        MetadataError,
        "{kind} {id}: an author needs at least one of authorPerson, authorInstitution, authorRole, authorSpecialty",
    ),
}


def finding(key: str, **kw: object) -> XDSError:
    """The catalogued error ``key`` with its text filled in."""
    cls, template = MESSAGES[key]
    return cls(template.format(**kw), location=str(kw.get("id", "")))


@dataclass(frozen=True, slots=True)
class Rules:
    """Validation options of an actor."""

    code_lists: CodeLists | None = None
    allow_limited_metadata: bool = False
    require_repository_fields: bool = True


def validate_submission(sub: Submission, rules: Rules) -> list[XDSError]:
    """Every rule violation of ``sub``, in a stable order (empty list: valid)."""
    errors: list[XDSError] = []
    if len(sub.submission_sets) != 1:
        errors.append(finding("ss_count", n=len(sub.submission_sets)))
    for ss in sub.submission_sets:
        errors += _submission_set(ss, rules)
    for de in sub.document_entries:
        errors += _document_entry(de, rules)
    for fol in sub.folders:
        errors += _folder(fol, rules)
    errors += _identities(sub)
    errors += _patients(sub)
    errors += _associations(sub)
    return errors


def _identities(sub: Submission) -> Iterator[XDSError]:
    ids = Counter(o.id for o in sub.objects())
    for oid, n in ids.items():
        if n > 1:
            yield finding("dup_id", id=oid)
    for o in sub.objects():
        if o.id.startswith("urn:uuid:") and not _is_uuid(o.id[9:]):
            yield finding("bad_uuid", kind=type(o).__name__, id=o.id)
    identified: list[SubmissionSet | DocumentEntry | Folder] = [
        *sub.submission_sets,
        *sub.document_entries,
        *sub.folders,
    ]
    uids = Counter(o.unique_id for o in identified if o.unique_id)
    for uid, n in uids.items():
        if n > 1:
            yield finding("dup_uid", value=uid)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _patients(sub: Submission) -> Iterator[XDSError]:
    if len(sub.submission_sets) != 1 or sub.submission_sets[0].patient_id is None:
        return
    ss_pid = sub.submission_sets[0].patient_id
    members: list[DocumentEntry | Folder] = [*sub.document_entries, *sub.folders]
    for o in members:
        if o.patient_id is not None and o.patient_id != ss_pid:
            yield finding("pid_mismatch", kind=type(o).__name__, id=o.id, value=str(o.patient_id), ss=str(ss_pid))


def _missing(kind: str, oid: str, **attrs: object) -> Iterator[XDSError]:
    for attr, value in attrs.items():
        if value is None or value == "" or value == ():
            yield finding("missing", kind=kind, id=oid, attr=attr)


def _patient_id(kind: str, oid: str, attr: str, cx: CX | None) -> Iterator[XDSError]:
    if cx is not None and not cx.is_xds_patient_id():
        yield finding("bad_format", kind=kind, id=oid, attr=attr, value=str(cx), what="CX id^^^&OID&ISO")


def _oid(kind: str, oid: str, attr: str, value: str) -> Iterator[XDSError]:
    if value and not is_oid(value):
        yield finding("bad_format", kind=kind, id=oid, attr=attr, value=value, what="OID")


def _codes(kind: str, oid: str, codes: list[tuple[str, str, Code]], rules: Rules) -> Iterator[XDSError]:
    lists = rules.code_lists
    if lists is None:
        return
    for attr, scheme, code in codes:
        if not lists.allows(scheme, code.code, code.scheme):
            yield finding("unknown_code", kind=kind, id=oid, attr=attr, value=code.query_form())


def _authors(kind: str, oid: str, authors: tuple[Author, ...]) -> Iterator[XDSError]:
    for a in authors:
        if a.person is None and not (a.institutions or a.roles or a.specialties or a.telecoms):
            yield finding("author_empty", kind=kind, id=oid)


def _document_entry(de: DocumentEntry, rules: Rules) -> list[XDSError]:
    k, i = "DocumentEntry", de.id
    out: list[XDSError] = []
    if de.limited_metadata and not rules.allow_limited_metadata:
        out.append(finding("limited", kind=k, id=i))
    if de.object_type not in (v.DE_STABLE, v.DE_ON_DEMAND):
        out.append(finding("bad_object_type", id=i, value=de.object_type))
    required: dict[str, object] = {
        "mimeType": de.mime_type,
        "uniqueId": de.unique_id,
        "patientId": de.patient_id,
        "classCode": de.class_code,
        "typeCode": de.type_code,
        "formatCode": de.format_code,
        "healthcareFacilityTypeCode": de.healthcare_facility_type_code,
        "practiceSettingCode": de.practice_setting_code,
        "confidentialityCode": de.confidentiality_codes,
        "creationTime": de.creation_time,
        "languageCode": de.language_code,
        "sourcePatientId": de.source_patient_id,
    }
    if de.limited_metadata:  # ITI TF-3 Table 4.3.1-3, XDR/XDM Metadata-Limited: patientId is R2
        required = {"mimeType": de.mime_type, "uniqueId": de.unique_id}
    stable = de.object_type != v.DE_ON_DEMAND
    if stable and rules.require_repository_fields:
        required.update(hash=de.hash, size=de.size, repositoryUniqueId=de.repository_unique_id)
    if not stable:
        required["repositoryUniqueId"] = de.repository_unique_id
        out += [finding("on_demand_hash", id=i, attr=a) for a, val in (("hash", de.hash), ("size", de.size)) if val]
    out += _missing(k, i, **required)
    out += _patient_id(k, i, "patientId", de.patient_id)
    if de.source_patient_id is not None and not (
        de.source_patient_id.id_number and de.source_patient_id.assigning_authority
    ):
        out.append(
            finding(
                "bad_format",
                kind=k,
                id=i,
                attr="sourcePatientId",
                value=str(de.source_patient_id),
                what="CX with id and assigning authority",
            )
        )
    m = _DE_UID.match(de.unique_id)
    if de.unique_id and (not m or not is_oid(m.group("oid")) or len(de.unique_id) > 128):
        out.append(finding("bad_format", kind=k, id=i, attr="uniqueId", value=de.unique_id, what="OID[^ext]"))
    if de.hash and not _HASH.match(de.hash):
        out.append(finding("bad_format", kind=k, id=i, attr="hash", value=de.hash, what="SHA-1 hex digest"))
    if de.mime_type and not _MIME.match(de.mime_type):
        out.append(finding("bad_format", kind=k, id=i, attr="mimeType", value=de.mime_type, what="MIME type"))
    elif de.mime_type and rules.code_lists and not rules.code_lists.allows_mime_type(de.mime_type):
        out.append(finding("unknown_mime", id=i, value=de.mime_type))
    if de.language_code and not _LANG.match(de.language_code):
        out.append(
            finding(
                "bad_format",
                kind=k,
                id=i,
                attr="languageCode",
                value=de.language_code,
                what="language tag (RFC 5646)",
            )
        )
    out += _oid(k, i, "repositoryUniqueId", de.repository_unique_id)
    out += _authors(k, i, de.authors)
    names = {
        v.DE_CLASS_CODE: "classCode",
        v.DE_TYPE_CODE: "typeCode",
        v.DE_FORMAT_CODE: "formatCode",
        v.DE_HEALTHCARE_FACILITY_TYPE_CODE: "healthcareFacilityTypeCode",
        v.DE_PRACTICE_SETTING_CODE: "practiceSettingCode",
        v.DE_CONFIDENTIALITY_CODE: "confidentialityCode",
        v.DE_EVENT_CODE: "eventCodeList",
    }
    out += _codes(k, i, [(names[s], s, c) for s, c in de.codes()], rules)
    return out


def _submission_set(ss: SubmissionSet, rules: Rules) -> list[XDSError]:
    k, i = "SubmissionSet", ss.id
    out: list[XDSError] = []
    if ss.limited_metadata and not rules.allow_limited_metadata:
        out.append(finding("limited", kind=k, id=i))
    required: dict[str, object] = {
        "uniqueId": ss.unique_id,
        "sourceId": ss.source_id,
        "submissionTime": ss.submission_time,
    }
    if not ss.limited_metadata:  # limited: patientId is R2 and contentTypeCode optional (ITI TF-3 Table 4.3.1-3)
        required["patientId"] = ss.patient_id
        required["contentTypeCode"] = ss.content_type_code
    out += _missing(k, i, **required)
    out += _patient_id(k, i, "patientId", ss.patient_id)
    out += _oid(k, i, "uniqueId", ss.unique_id)
    out += _oid(k, i, "sourceId", ss.source_id)
    out += _authors(k, i, ss.authors)
    if ss.content_type_code is not None:
        out += _codes(k, i, [("contentTypeCode", v.SS_CONTENT_TYPE_CODE, ss.content_type_code)], rules)
    return out


def _folder(fol: Folder, rules: Rules) -> list[XDSError]:
    k, i = "Folder", fol.id
    out: list[XDSError] = []
    if fol.limited_metadata and not rules.allow_limited_metadata:
        out.append(finding("limited", kind=k, id=i))
    out += _missing(k, i, uniqueId=fol.unique_id, patientId=fol.patient_id, title=fol.title, codeList=fol.codes)
    out += _patient_id(k, i, "patientId", fol.patient_id)
    out += _oid(k, i, "uniqueId", fol.unique_id)
    out += _codes(k, i, [("codeList", v.FOLDER_CODE_LIST, c) for c in fol.codes], rules)
    return out


def _associations(sub: Submission) -> list[XDSError]:
    out: list[XDSError] = []
    ss_ids = {ss.id for ss in sub.submission_sets}
    doc_ids = {de.id for de in sub.document_entries}
    members: set[str] = set()
    for a in sub.associations:
        out += _association(a, ss_ids, doc_ids)
        if a.association_type == v.HAS_MEMBER and a.source in ss_ids:
            members.add(a.target)
    for o in (*sub.document_entries, *sub.folders):
        if o.id not in members:
            out.append(finding("not_member", kind=type(o).__name__, id=o.id))
    return out


def _association(a: Association, ss_ids: set[str], doc_ids: set[str]) -> list[XDSError]:
    out: list[XDSError] = []
    if a.association_type not in v.ASSOCIATION_TYPES:
        out.append(finding("assoc_type", id=a.id, value=a.association_type))
    if not a.source or not a.target:
        out.append(finding("assoc_ends", id=a.id))
    elif a.source == a.target:
        out.append(finding("self_assoc", id=a.id, value=a.source))
    if a.association_type == v.HAS_MEMBER:
        # ITI TF-3 §4.2.2.1.1: SubmissionSetStatus is required on SubmissionSet -> DocumentEntry HasMembers
        # (not on SubmissionSet -> Folder or SubmissionSet -> Association); where present it is Original|Reference.
        status = a.submission_set_status
        if a.source in ss_ids and (a.target in doc_ids or status) and status not in _SS_STATUSES:
            out.append(finding("ss_status", id=a.id))
        if any(c.scheme == v.ASSOCIATION_DOCUMENTATION for c in a.extra_classifications):
            out.append(finding("doc_classification", id=a.id))
    elif a.association_type in v.RELATIONSHIP_TYPES and a.source not in doc_ids:
        out.append(finding("relation_source", id=a.id, value=a.association_type.rsplit(":", 1)[-1]))
    return out


__all__ = ["MESSAGES", "Rules", "finding", "validate_submission"]
