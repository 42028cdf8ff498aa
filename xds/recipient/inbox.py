"""Importing a delivery into this node's registry and repository (``xds inbox accept`` and ``reconcile``).

Theory of operation: a delivery keeps the metadata it arrived with. To import it, :func:`import_submission`
rewrites that metadata for this node's registry:

* every patientId becomes the local patient's id; each DocumentEntry keeps the id the sender used as its
  ``sourcePatientId`` (so the sender's id is never lost, and never taken for ours);
* objects get fresh symbolic ids (the registry assigns UUIDs), so a push from a node that shares our
  registry's UUIDs, or the same delivery in two mailboxes, cannot collide on entryUUIDs; associations that
  point outside the submission (a replacement of a document only the sender has) are left out;
* limited metadata is completed from the node's :class:`ImportDefaults` (classCode, typeCode, ...), because a
  Document Registry accepts full metadata only; repositoryUniqueId, hash and size are left to the repository.

The caller (the node) then sends the result through ITI-41 in-process, so the import is one registry
transaction with the same rules as any submission, and marks the delivery accepted in that transaction.

References
----------
ITI TF-3 §4.2.3.2.22 (sourcePatientId), Table 4.3.1-3 (required attributes per actor), ITI TF-1 §15.2.1
(a recipient may import into an XDS registry).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from xds.model.hl7 import CX, DTM
from xds.model.metadata import Association, Code, DocumentEntry, Folder, Submission, SubmissionSet
from xds.model.rim import text
from xds.recipient.model import Delivery

IMPORT_SCHEME: Final = "urn:xds-node:import-defaults"
"""Coding scheme of the built-in defaults; an affinity domain with code lists configures its own codes."""


def _code(value: str, display: str = "") -> Code:
    code, _, scheme = value.partition("^^")
    if not code or not scheme:
        raise ValueError(f"a code is written code^^codingScheme, not {value!r}")
    return Code(code=code, scheme=scheme, display_name=text(display or code))


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportDefaults:
    """Codes given to imported limited metadata where the sender gave none (``[import_defaults]``)."""

    class_code: Code = field(default_factory=lambda: _code(f"received^^{IMPORT_SCHEME}", "Received document"))
    type_code: Code = field(default_factory=lambda: _code(f"received^^{IMPORT_SCHEME}", "Received document"))
    format_code: Code = field(
        default_factory=lambda: _code("urn:ihe:iti:xds:2017:mimeTypeSufficient^^1.3.6.1.4.1.19376.1.2.3")
    )
    healthcare_facility_type_code: Code = field(
        default_factory=lambda: _code(f"unknown^^{IMPORT_SCHEME}", "Unknown facility type")
    )
    practice_setting_code: Code = field(
        default_factory=lambda: _code(f"unknown^^{IMPORT_SCHEME}", "Unknown practice setting")
    )
    confidentiality_code: Code = field(default_factory=lambda: _code("N^^2.16.840.1.113883.5.25", "normal"))
    content_type_code: Code = field(default_factory=lambda: _code(f"received^^{IMPORT_SCHEME}", "Received push"))
    language_code: str = "nl-NL"


_CODE_KEYS: Final = (
    "class_code",
    "type_code",
    "format_code",
    "healthcare_facility_type_code",
    "practice_setting_code",
    "confidentiality_code",
    "content_type_code",
)


def import_defaults_from_mapping(table: Mapping[str, Any]) -> ImportDefaults:
    """``[import_defaults]``: each code as ``"code^^codingScheme"`` (or ``{code = "..", display = ".."}``)."""
    unknown = set(table) - {*_CODE_KEYS, "language_code"}
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for key in _CODE_KEYS:
        if key not in table:
            continue
        raw = table[key]
        if isinstance(raw, str):
            values[key] = _code(raw)
        elif isinstance(raw, Mapping) and isinstance(raw.get("code"), str):
            values[key] = _code(raw["code"], str(raw.get("display", "")))
        else:
            raise ValueError(f"{key} must be a string code^^codingScheme or a table with code and display")
    if "language_code" in table:
        if not isinstance(table["language_code"], str) or not table["language_code"]:
            raise ValueError("language_code must be a non-empty string")
        values["language_code"] = table["language_code"]
    return ImportDefaults(**values)


def check_open(delivery: Delivery, patient: str | None) -> str:
    """The local patient an import of ``delivery`` goes to (``patient`` given for a reconcile); ValueError
    when the delivery was settled, or when it waits for a patient and none is given."""
    if not delivery.is_open:
        raise ValueError(f"delivery {delivery.reference} is {delivery.status} already")
    local = patient or delivery.local_patient_id
    if not local:
        raise ValueError(
            f"delivery {delivery.reference} is for a patient not known here ({delivery.patient_id or 'no id'});"
            f" choose the patient: xds inbox reconcile {delivery.reference} --patient LOCALID"
        )
    return local


def import_submission(
    sub: Submission, *, local_patient: CX, defaults: ImportDefaults, received: DTM | None = None
) -> tuple[Submission, dict[str, str]]:
    """The delivered ``sub`` rewritten for this node's registry (see the module docstring), and the new id of
    each DocumentEntry by its delivered id."""
    ids: dict[str, str] = {}
    for n, ss in enumerate(sub.submission_sets, 1):
        ids[ss.id] = f"SubmissionSet{n:02d}"
    for n, de in enumerate(sub.document_entries, 1):
        ids[de.id] = f"Document{n:02d}"
    for n, fol in enumerate(sub.folders, 1):
        ids[fol.id] = f"Folder{n:02d}"
    kept = list(sub.associations)
    while True:  # drop associations whose ends are not in the submission (also via a dropped association)
        inside = set(ids) | {a.id for a in kept}
        remaining = [a for a in kept if a.source in inside and a.target in inside]
        if len(remaining) == len(kept):
            break
        kept = remaining
    for n, a in enumerate(kept, 1):
        ids[a.id] = f"Association{n:02d}"
    sets = tuple(_submission_set(ss, ids, local_patient, defaults) for ss in sub.submission_sets)
    submitted = sets[0].submission_time if sets else None
    entries = tuple(_entry(de, ids, local_patient, defaults, submitted or received) for de in sub.document_entries)
    folders = tuple(_folder(f, ids, local_patient) for f in sub.folders)
    associations = tuple(_association(a, ids) for a in kept)
    rewritten = Submission(submission_sets=sets, document_entries=entries, folders=folders, associations=associations)
    return rewritten, {de.id: ids[de.id] for de in sub.document_entries}


def _fresh(obj_id: str, ids: dict[str, str]) -> dict[str, Any]:
    return {"id": ids[obj_id], "lid": "", "home": "", "status": "", "version_name": ""}


def _submission_set(ss: SubmissionSet, ids: dict[str, str], local: CX, defaults: ImportDefaults) -> SubmissionSet:
    return dataclasses.replace(
        ss,
        **_fresh(ss.id, ids),
        patient_id=local,
        limited_metadata=False,
        content_type_code=ss.content_type_code or defaults.content_type_code,
    )


def _entry(
    de: DocumentEntry, ids: dict[str, str], local: CX, defaults: ImportDefaults, created: DTM | None
) -> DocumentEntry:
    sender = de.patient_id or de.source_patient_id
    return dataclasses.replace(
        de,
        **_fresh(de.id, ids),
        patient_id=local,
        source_patient_id=sender if sender is not None and sender != local else de.source_patient_id or local,
        limited_metadata=False,
        repository_unique_id="",
        class_code=de.class_code or defaults.class_code,
        type_code=de.type_code or defaults.type_code,
        format_code=de.format_code or defaults.format_code,
        healthcare_facility_type_code=de.healthcare_facility_type_code or defaults.healthcare_facility_type_code,
        practice_setting_code=de.practice_setting_code or defaults.practice_setting_code,
        confidentiality_codes=de.confidentiality_codes or (defaults.confidentiality_code,),
        creation_time=de.creation_time or created,
        language_code=de.language_code or defaults.language_code,
    )


def _folder(fol: Folder, ids: dict[str, str], local: CX) -> Folder:
    return dataclasses.replace(fol, **_fresh(fol.id, ids), patient_id=local, limited_metadata=False)


def _association(a: Association, ids: dict[str, str]) -> Association:
    return dataclasses.replace(a, **_fresh(a.id, ids), source=ids[a.source], target=ids[a.target])


__all__ = [
    "IMPORT_SCHEME",
    "ImportDefaults",
    "check_open",
    "import_defaults_from_mapping",
    "import_submission",
]
