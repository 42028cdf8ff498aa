"""RAD-68 Provide and Register Imaging Document Set (XDS-I.b), Imaging Document Source side: from DICOM files to
one manifest DocumentEntry per study.

Theory of operation
-------------------
:func:`scan` reads each file's header only (pydicom, pixel data not loaded) and keeps what the store and the
manifest need: the study, series and SOP Instance UIDs, the SOP class, the transfer syntax, modality, body part
and accession. A file that is not DICOM, or lacks one of the UIDs, is set aside with the reason; presentation
states can be left out on request (users do not want them passed on). At most :data:`MAX_FILES` files are
scanned in one call.

:func:`manifest_submission` turns a study's KOS manifest (:mod:`xds.dicom.kos`) into the ITI-41 submission of
XDS-I.b: one DocumentEntry whose uniqueId is the manifest's SOP Instance UID, mimeType ``application/dicom``,
formatCode ``1.2.840.10008.5.1.4.1.1.88.59`` (scheme ``1.2.840.10008.2.6.1``), eventCodeList with each
modality (scheme ``1.2.840.10008.2.16.4``) and the anatomic region where it is known (SNOMED CT), and
referenceIdList with the Study Instance UID and the accession number. When the study had a manifest already,
the new one replaces it (an RPLC association), so a study never has two approved entries.

References
----------
IHE RAD TF-2 §4.68 (RAD-68), RAD TF-3 §4.68.4.1.2.3 (XDS-I.b metadata); ITI TF-3 §4.2.3.2.23 (referenceIdList);
DICOM PS3.16 CID 29 (acquisition modality), CID 4031 (common anatomic regions).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from xds import vocabulary as v
from xds.dicom.defaults import SNOMED, ImagingDefaults
from xds.dicom.kos import KOS_SOP_CLASS, InstanceRef, SeriesRef, StudyManifest
from xds.dicom.records import InstanceRecord
from xds.model.hl7 import CX, DTM
from xds.model.metadata import Association, Code, DocumentEntry, Submission, SubmissionSet
from xds.model.rim import text
from xds.samples import has_member

MAX_FILES: Final = 100_000
"""Files scanned in one ingest at most."""
KOS_FORMAT: Final = Code(code=KOS_SOP_CLASS, scheme="1.2.840.10008.2.6.1", display_name=text("Key Object Selection"))
MODALITY_SCHEME: Final = "1.2.840.10008.2.16.4"
PRESENTATION_STATE_PREFIX: Final = "1.2.840.10008.5.1.4.1.1.11."
"""SOP classes of the presentation states (Grayscale, Color, Pseudo-Color, Blending, ...)."""
STUDY_UID_REF: Final = "urn:ihe:iti:xds:2016:studyInstanceUID"
ACCESSION_REF: Final = "urn:ihe:iti:xds:2013:accession"
ANATOMY: Final = {
    "HEAD": ("69536005", "Head"),
    "BRAIN": ("12738006", "Brain"),
    "CHEST": ("51185008", "Thorax"),
    "BREAST": ("76752008", "Breast"),
    "PELVIS": ("12921003", "Pelvis"),
    "KNEE": ("72696002", "Knee"),
    "HAND": ("85562004", "Hand"),
}
"""BodyPartExamined defined terms with their SNOMED CT anatomic region (a subset of CID 4031); others are left
out of the eventCodeList rather than guessed."""


@dataclass(frozen=True, slots=True)
class Scanned:
    """One DICOM file found by :func:`scan`: where it is, what the store records, and the part of its header
    that identifies the patient and describes the study (:data:`KEPT`)."""

    path: Path
    record: InstanceRecord
    accession: str
    header: Dataset


def scan(paths: Iterable[Path], *, include_presentation_states: bool = True) -> tuple[list[Scanned], list[str]]:
    """The DICOM files among ``paths`` (directories are walked), and a reason for each file set aside."""
    found: list[Scanned] = []
    skipped: list[str] = []
    for path in _files(paths):
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
            skipped.append(f"{path}: not a DICOM file ({exc})")
            continue
        uids = {k: str(header.get(k, "") or "") for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")}
        sop_class = str(header.get("SOPClassUID", "") or "")
        missing = [k for k, val in {**uids, "SOPClassUID": sop_class}.items() if not val]
        if missing:
            skipped.append(f"{path}: no {', '.join(missing)}")
            continue
        if not include_presentation_states and sop_class.startswith(PRESENTATION_STATE_PREFIX):
            skipped.append(f"{path}: a presentation state, left out")
            continue
        if sop_class == KOS_SOP_CLASS:
            skipped.append(f"{path}: a Key Object Selection (the node writes the study's manifest itself)")
            continue
        meta = getattr(header, "file_meta", None)
        syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
        record = InstanceRecord(
            sop_instance_uid=uids["SOPInstanceUID"],
            study_uid=uids["StudyInstanceUID"],
            series_uid=uids["SeriesInstanceUID"],
            sop_class_uid=sop_class,
            transfer_syntax=syntax or "1.2.840.10008.1.2",
            modality=str(header.get("Modality", "") or ""),
            body_part=str(header.get("BodyPartExamined", "") or ""),
            size=path.stat().st_size,
            sha256="",
        )
        found.append(Scanned(path, record, str(header.get("AccessionNumber", "") or ""), _kept(header)))
    return found, skipped


KEPT: Final = (
    "PatientID",
    "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "TypeOfPatientID",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "PatientComments",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "StudyID",
    "AccessionNumber",
)
"""What a scan keeps of each header: the patient identity (graded over all instances) and the study details
of the manifest. Keeping whole headers made memory grow with the study (about 90 KiB per CT instance)."""


def _kept(header: Dataset) -> Dataset:
    small = Dataset()
    for keyword in KEPT:
        if keyword in header:
            small[keyword] = header[keyword]
    return small


def _files(paths: Iterable[Path]) -> Iterable[Path]:
    count = 0
    for path in paths:
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for candidate in candidates:
            if candidate.name.upper() == "DICOMDIR":
                continue
            count += 1
            if count > MAX_FILES:
                raise ValueError(f"more than {MAX_FILES} files: ingest a study at a time")
            yield candidate


def study_manifest(
    study_uid: str,
    instances: Sequence[InstanceRecord],
    header: Dataset,
    *,
    patient: CX,
    retrieve_location_uid: str,
    accession: str = "",
) -> StudyManifest:
    """The manifest of a study holding ``instances`` (patient and study details from one of its headers)."""
    by_series: dict[str, list[InstanceRecord]] = {}
    for i in instances:
        by_series.setdefault(i.series_uid, []).append(i)
    series = tuple(
        SeriesRef(
            series_instance_uid=uid,
            instances=tuple(InstanceRef(i.sop_class_uid, i.sop_instance_uid) for i in members),
            modality=members[0].modality,
            retrieve_location_uid=retrieve_location_uid,
        )
        for uid, members in by_series.items()
    )
    return StudyManifest(
        study_instance_uid=study_uid,
        accession_number=accession[:16],
        series=series,
        patient_id=patient.id_number,
        issuer_oid=patient.assigning_authority.universal_id,
        patient_name=str(header.get("PatientName", "") or ""),
        patient_birth_date=_date(header.get("PatientBirthDate", "")),
        patient_sex=str(header.get("PatientSex", "") or "") if header.get("PatientSex") in ("M", "F", "O") else "",
        retrieve_location_uid=retrieve_location_uid,
        study_date=_date(header.get("StudyDate", "")),
        study_description=str(header.get("StudyDescription", "") or ""),
        study_id=str(header.get("StudyID", "") or "")[:16],
    )


def _date(value: object) -> str:
    text_value = str(value or "")
    return text_value if len(text_value) == 8 and text_value.isdigit() else ""


def manifest_submission(
    manifest: StudyManifest,
    manifest_uid: str,
    *,
    patient: CX,
    source_id: str,
    defaults: ImagingDefaults,
    accession_issuer: str,
    replaces: str = "",
    body_parts: Sequence[str] = (),
    now: DTM,
) -> tuple[Submission, str]:
    """The ITI-41 submission registering ``manifest`` (its SOP Instance UID ``manifest_uid``); the
    DocumentEntry's id (a fresh ``urn:uuid:``). ``replaces``: the entryUUID of the study's earlier manifest."""
    de_id = f"urn:uuid:{uuid.uuid4()}"
    ss_id = f"urn:uuid:{uuid.uuid4()}"
    events = [Code(code=m, scheme=MODALITY_SCHEME, display_name=text(m)) for m in manifest.modalities if m]
    for part in dict.fromkeys(p.upper() for p in body_parts if p):
        if part in ANATOMY:
            code, name = ANATOMY[part]
            events.append(Code(code=code, scheme=SNOMED, display_name=text(name)))
    refs = [f"{manifest.study_instance_uid}^^^^{STUDY_UID_REF}"]
    if manifest.accession_number and accession_issuer:
        refs.append(f"{manifest.accession_number}^^^&{accession_issuer}&ISO^{ACCESSION_REF}")
    start = manifest.study_date + (manifest.study_time[:6] if manifest.study_time else "")
    de = DocumentEntry(
        id=de_id,
        mime_type="application/dicom",
        unique_id=manifest_uid,
        patient_id=patient,
        source_patient_id=patient,
        class_code=defaults.class_code,
        type_code=defaults.type_code,
        format_code=KOS_FORMAT,
        healthcare_facility_type_code=defaults.healthcare_facility_type_code,
        practice_setting_code=defaults.practice_setting_code,
        confidentiality_codes=(defaults.confidentiality_code,),
        event_codes=tuple(events),
        creation_time=now,
        service_start_time=DTM(start) if start else None,
        language_code=defaults.language_code,
        reference_ids=tuple(refs),
        title=text(manifest.study_description or "Imaging study"),
    )
    ss = SubmissionSet(
        id=ss_id,
        unique_id=f"2.25.{uuid.uuid4().int}",
        source_id=source_id,
        patient_id=patient,
        submission_time=now,
        content_type_code=defaults.content_type_code,
        title=text("Imaging study manifest"),
    )
    associations = [has_member(ss_id, de_id)]
    if replaces:
        associations.append(
            Association(id=f"urn:uuid:{uuid.uuid4()}", association_type=v.RPLC, source=de_id, target=replaces)
        )
    return Submission(submission_sets=(ss,), document_entries=(de,), associations=tuple(associations)), de_id


__all__ = [
    "ANATOMY",
    "KOS_FORMAT",
    "MAX_FILES",
    "ImagingDefaults",
    "Scanned",
    "manifest_submission",
    "scan",
    "study_manifest",
]
