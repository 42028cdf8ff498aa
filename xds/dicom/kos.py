"""XDS-I.b imaging manifests: the DICOM Key Object Selection (KOS) document an Imaging Document Source registers.

Theory of operation
-------------------
In XDS-I.b (RAD TF-1 §18) a study is shared by registering one *manifest* in XDS: a DICOM Key Object Selection
Document (SOP Class :data:`KOS_SOP_CLASS`) that lists every referenced instance, study by series by instance,
and says where each series can be retrieved (the Retrieve Location UID, the Imaging Document Source's id that
RAD-69 is addressed to). The manifest is the XDS document; its content is the Part 10 file.

:func:`build_manifest` turns a :class:`StudyManifest` into a complete KOS :class:`~pydicom.dataset.Dataset`,
module by module (PS3.3 A.35.4)::

    Patient                       PatientName, PatientID, IssuerOfPatientID (+ qualifiers: the OID, "ISO"),
                                  PatientBirthDate, PatientSex                  (Type 2: present, maybe empty)
    General Study                 StudyInstanceUID (the imaged study's), StudyDate, StudyTime,
                                  ReferringPhysicianName, StudyID, AccessionNumber [, StudyDescription]
    Key Object Document Series    Modality "KO", SeriesInstanceUID (new unless given), SeriesNumber,
                                  ReferencedPerformedProcedureStepSequence (empty)
    General Equipment             Manufacturer, SoftwareVersions
    Key Object Document           InstanceNumber, ContentDate, ContentTime,
                                  CurrentRequestedProcedureEvidenceSequence:
                                    one study item > ReferencedSeriesSequence > one item per series with
                                    SeriesInstanceUID, RetrieveLocationUID [, RetrieveURL],
                                    ReferencedSOPSequence > (ReferencedSOPClassUID, ReferencedSOPInstanceUID)
    SR Document Content           CONTAINER titled (113030, DCM, "Manifest"), SEPARATE, TID 2010 (DCMR),
                                  ContentSequence: one CONTAINS item per instance, IMAGE for image storage SOP
                                  classes, WAVEFORM for waveform classes, COMPOSITE for every other class
    SOP Common                    SpecificCharacterSet "ISO_IR 192" (UTF-8), SOPClassUID, SOPInstanceUID

The manifest is the imaged study's own object (it carries the study's StudyInstanceUID, RAD TF-3 §4.68.4.1)
in a series of its own. A series' own ``retrieve_location_uid``/``retrieve_url`` wins over the manifest's, so a
manifest that was read back can be rebuilt as it was. Everything is checked before a dataset is built: UIDs are
valid, each series has instances, no instance is referenced twice, dates are ``YYYYMMDD``, and at most
:data:`MAX_INSTANCES` instances are referenced; a :class:`ValueError` says what is wrong.

:func:`manifest_bytes` writes the Part 10 file (explicit VR little endian, with file meta information).
:func:`read_manifest` reads any KOS, this node's or a third party's, into a :class:`ReadManifest`, refusing what
is not a KOS or references more than :data:`MAX_INSTANCES` instances. :func:`missing_attributes` lists the Type 1
and Type 2 attributes of :data:`REQUIRED_KOS_ATTRIBUTES` that a dataset lacks (Type 1 also when empty).

References
----------
IHE RAD TF-1 §18 (XDS-I.b); RAD TF-3 §4.68 (RAD-68 Provide and Register Imaging Document Set - MTOM/XOP,
§4.68.4.1 the KOS manifest), §4.69 (RAD-69, Retrieve Location UID); DICOM PS3.3 A.35.4 (Key Object
Selection Document IOD), C.7.1.1 (Patient), C.7.2.1 (General Study), C.17.6.1 (Key Object Document Series),
C.7.5.1 (General Equipment), C.17.6.2 (Key Object Document), C.17.3 (SR Document Content), C.12.1 (SOP Common),
Table C.17-3 (Hierarchical SOP Instance Reference Macro); PS3.16 TID 2010 (Key Object Selection), CID 7010
(113030 "Manifest"); PS3.10 §7 (Part 10 file format).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

import xds

KOS_SOP_CLASS: Final = "1.2.840.10008.5.1.4.1.1.88.59"
"""Key Object Selection Document Storage."""
MANIFEST_TITLE: Final = ("113030", "DCM", "Manifest")
"""The document title (code value, coding scheme designator, code meaning) of an XDS-I manifest (CID 7010)."""
KOS_TEMPLATE: Final = "2010"
"""TID 2010 Key Object Selection, mapping resource DCMR."""
MAX_INSTANCES: Final = 100_000
"""Most instances one manifest may reference, built or read."""
SERIES_NUMBER: Final = 999
"""SeriesNumber of the manifest's own series: high, out of the way of the acquisition series' numbers."""
MANUFACTURER: Final = "xds-node"
CHARACTER_SET: Final = "ISO_IR 192"
"""UTF-8 (PS3.3 C.12.1.1.2): patient and physician names need no other repertoire."""
ISO_ENTITY: Final = "ISO"
"""UniversalEntityIDType of an OID issuer."""

_DATE: Final = re.compile(r"(\d{8})?")
_TIME: Final = re.compile(r"(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?")
_OID: Final = re.compile(r"[0-2](\.(0|[1-9]\d*))+")
_UID: Final = re.compile(r"(0|[1-9]\d*)(\.(0|[1-9]\d*))*")
_UID_MAX: Final = 64
_SEXES: Final = frozenset({"", "M", "F", "O"})
_IMAGE_MARK: Final = "Image Storage"
_WAVEFORM_MARK: Final = "Waveform Storage"

REQUIRED_KOS_ATTRIBUTES: Final[tuple[str, ...]] = (
    # Patient (C.7.1.1)
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    # General Study (C.7.2.1)
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    # Key Object Document Series (C.17.6.1)
    "Modality",
    "SeriesInstanceUID",
    "SeriesNumber",
    "ReferencedPerformedProcedureStepSequence",
    # General Equipment (C.7.5.1)
    "Manufacturer",
    # Key Object Document (C.17.6.2)
    "InstanceNumber",
    "ContentDate",
    "ContentTime",
    "CurrentRequestedProcedureEvidenceSequence",
    # SR Document Content (C.17.3), root content item
    "ValueType",
    "ConceptNameCodeSequence",
    "ContinuityOfContent",
    # SOP Common (C.12.1)
    "SOPClassUID",
    "SOPInstanceUID",
)
"""The Type 1 and Type 2 attributes of the KOS IOD modules :func:`build_manifest` writes, in module order."""
TYPE1_KOS_ATTRIBUTES: Final = frozenset(
    {
        *("StudyInstanceUID", "Modality", "SeriesInstanceUID", "SeriesNumber"),
        *("InstanceNumber", "ContentDate", "ContentTime", "CurrentRequestedProcedureEvidenceSequence"),
        *("ValueType", "ConceptNameCodeSequence", "ContinuityOfContent", "SOPClassUID", "SOPInstanceUID"),
    }
)
"""The Type 1 members of :data:`REQUIRED_KOS_ATTRIBUTES` (present *and* not empty); the rest are Type 2."""


@dataclass(frozen=True, slots=True)
class InstanceRef:
    """One referenced SOP instance."""

    sop_class_uid: str
    sop_instance_uid: str


@dataclass(frozen=True, slots=True)
class SeriesRef:
    """One referenced series and its instances.

    ``modality`` is not part of the KOS (it feeds the XDS eventCodeList); ``retrieve_location_uid`` and
    ``retrieve_url``, when set, override the manifest's for this series and are what :func:`read_manifest` fills.
    """

    series_instance_uid: str
    instances: tuple[InstanceRef, ...]
    modality: str = ""
    retrieve_location_uid: str = ""
    retrieve_url: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyManifest:
    """What a manifest for one study says: the patient, the study, its series, where to retrieve them."""

    study_instance_uid: str
    accession_number: str = ""
    series: tuple[SeriesRef, ...]
    patient_id: str
    issuer_oid: str = ""
    """The assigning authority of ``patient_id`` (e.g. the BSN's ``2.16.840.1.113883.2.4.6.3``)."""
    patient_name: str = ""
    """DICOM PN: ``Family^Given^Middle^Prefix^Suffix``."""
    patient_birth_date: str = ""
    patient_sex: str = ""
    retrieve_location_uid: str
    """This node's Imaging Document Source id: RetrieveLocationUID (0040,E011) of every series item."""
    retrieve_url: str = ""
    """The WADO-RS base URL, written as RetrieveURL (0008,1190) in every series item when set."""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    referring_physician: str = ""
    study_id: str = ""

    @property
    def modalities(self) -> tuple[str, ...]:
        """The distinct modalities of the series, in order of first appearance."""
        return tuple(dict.fromkeys(s.modality for s in self.series if s.modality))

    @property
    def instance_count(self) -> int:
        """How many instances the manifest references."""
        return sum(len(s.instances) for s in self.series)


@dataclass(frozen=True, slots=True)
class ReadManifest:
    """What :func:`read_manifest` found in a KOS.

    ``series`` holds the series of every study in the evidence sequence, in document order;
    ``referenced_studies`` the StudyInstanceUIDs of those study items (normally just ``study_instance_uid``).
    """

    study_instance_uid: str
    accession_number: str
    patient_id: str
    series: tuple[SeriesRef, ...]
    sop_instance_uid: str = ""
    issuer_oid: str = ""
    patient_name: str = ""
    referenced_studies: tuple[str, ...] = ()

    @property
    def instance_count(self) -> int:
        """How many instance references the manifest holds."""
        return sum(len(s.instances) for s in self.series)


def _check_uid(value: str, what: str) -> None:
    if len(value) > _UID_MAX or not _UID.fullmatch(value):
        raise ValueError(f"{what} is not a valid DICOM UID: {value!r}")


def _validate(m: StudyManifest) -> None:
    _check_uid(m.study_instance_uid, "study_instance_uid")
    if not m.patient_id:
        raise ValueError("patient_id is empty: an XDS-I manifest must identify the patient")
    if m.issuer_oid and not _OID.fullmatch(m.issuer_oid):
        raise ValueError(f"issuer_oid is not an OID: {m.issuer_oid!r}")
    if not _DATE.fullmatch(m.patient_birth_date):
        raise ValueError(f"patient_birth_date is not YYYYMMDD: {m.patient_birth_date!r}")
    if not _DATE.fullmatch(m.study_date):
        raise ValueError(f"study_date is not YYYYMMDD: {m.study_date!r}")
    if not _TIME.fullmatch(m.study_time):
        raise ValueError(f"study_time is not HHMMSS[.FFFFFF]: {m.study_time!r}")
    if m.patient_sex not in _SEXES:
        raise ValueError(f"patient_sex is not M, F, O or empty: {m.patient_sex!r}")
    if not m.series:
        raise ValueError("a manifest references at least one series")
    if m.instance_count > MAX_INSTANCES:
        raise ValueError(f"a manifest references at most {MAX_INSTANCES} instances, not {m.instance_count}")
    seen_series: set[str] = set()
    seen: set[str] = set()
    for series in m.series:
        _check_uid(series.series_instance_uid, "series_instance_uid")
        if series.series_instance_uid in seen_series:
            raise ValueError(f"series {series.series_instance_uid} is listed twice")
        seen_series.add(series.series_instance_uid)
        _check_uid(series.retrieve_location_uid or m.retrieve_location_uid, "retrieve_location_uid")
        if not series.instances:
            raise ValueError(f"series {series.series_instance_uid} has no instances")
        for ref in series.instances:
            _check_uid(ref.sop_class_uid, "sop_class_uid")
            _check_uid(ref.sop_instance_uid, "sop_instance_uid")
            if ref.sop_instance_uid in seen:
                raise ValueError(f"instance {ref.sop_instance_uid} is referenced twice")
            seen.add(ref.sop_instance_uid)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _sop_ref(ref: InstanceRef) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ref.sop_class_uid
    item.ReferencedSOPInstanceUID = ref.sop_instance_uid
    return item


def value_type(sop_class_uid: str) -> str:
    """The TID 2010 value type that references an instance of ``sop_class_uid``: IMAGE, WAVEFORM or COMPOSITE.

    Known image (and waveform) storage SOP classes are told by their registered names; any other class,
    including private ones, is COMPOSITE.
    """
    name = UID(sop_class_uid).name
    if _IMAGE_MARK in name:
        return "IMAGE"
    return "WAVEFORM" if _WAVEFORM_MARK in name else "COMPOSITE"


def _content_item(ref: InstanceRef) -> Dataset:
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = value_type(ref.sop_class_uid)
    item.ReferencedSOPSequence = Sequence([_sop_ref(ref)])
    return item


def _evidence(m: StudyManifest) -> Sequence:
    series_items = []
    for series in m.series:
        item = Dataset()
        item.SeriesInstanceUID = series.series_instance_uid
        item.RetrieveLocationUID = series.retrieve_location_uid or m.retrieve_location_uid
        url = series.retrieve_url or m.retrieve_url
        if url:
            item.RetrieveURL = url
        item.ReferencedSOPSequence = Sequence([_sop_ref(ref) for ref in series.instances])
        series_items.append(item)
    study = Dataset()
    study.StudyInstanceUID = m.study_instance_uid
    study.ReferencedSeriesSequence = Sequence(series_items)
    return Sequence([study])


def build_manifest(
    m: StudyManifest,
    *,
    sop_instance_uid: str = "",
    series_instance_uid: str = "",
    content_time: datetime | None = None,
) -> Dataset:
    """A complete KOS manifest for ``m`` with file meta information (see the module docstring for the layout).

    ``sop_instance_uid`` and ``series_instance_uid`` are the manifest's own (new ones by default);
    ``content_time`` defaults to now, local time; an aware time also sets TimezoneOffsetFromUTC.
    Raises :class:`ValueError` when ``m`` is not a valid manifest.
    """
    _validate(m)
    sop_uid = sop_instance_uid or generate_uid()
    series_uid = series_instance_uid or generate_uid()
    _check_uid(sop_uid, "sop_instance_uid")
    _check_uid(series_uid, "series_instance_uid")
    when = content_time if content_time is not None else datetime.now().astimezone()

    ds = Dataset()
    # SOP Common
    ds.SpecificCharacterSet = CHARACTER_SET
    ds.SOPClassUID = KOS_SOP_CLASS
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = when.strftime("%Y%m%d")
    ds.InstanceCreationTime = when.strftime("%H%M%S")
    offset = when.strftime("%z")
    if offset:
        ds.TimezoneOffsetFromUTC = offset
    # Patient
    ds.PatientName = m.patient_name
    ds.PatientID = m.patient_id
    if m.issuer_oid:
        ds.IssuerOfPatientID = m.issuer_oid
        qualifiers = Dataset()
        qualifiers.UniversalEntityID = m.issuer_oid
        qualifiers.UniversalEntityIDType = ISO_ENTITY
        ds.IssuerOfPatientIDQualifiersSequence = Sequence([qualifiers])
    ds.PatientBirthDate = m.patient_birth_date
    ds.PatientSex = m.patient_sex
    # General Study
    ds.StudyInstanceUID = m.study_instance_uid
    ds.StudyDate = m.study_date
    ds.StudyTime = m.study_time
    ds.ReferringPhysicianName = m.referring_physician
    ds.StudyID = m.study_id
    ds.AccessionNumber = m.accession_number
    if m.study_description:
        ds.StudyDescription = m.study_description
    # Key Object Document Series
    ds.Modality = "KO"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = SERIES_NUMBER
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    # General Equipment
    ds.Manufacturer = MANUFACTURER
    ds.SoftwareVersions = xds.__version__
    # Key Object Document
    ds.InstanceNumber = 1
    ds.ContentDate = when.strftime("%Y%m%d")
    ds.ContentTime = when.strftime("%H%M%S")
    ds.CurrentRequestedProcedureEvidenceSequence = _evidence(m)
    # SR Document Content
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([_code(*MANIFEST_TITLE)])
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = KOS_TEMPLATE
    ds.ContentTemplateSequence = Sequence([template])
    ds.ContentSequence = Sequence([_content_item(ref) for series in m.series for ref in series.instances])

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(KOS_SOP_CLASS)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"XDS_{xds.__version__}"[:16]
    ds.file_meta = meta
    return ds


def manifest_bytes(ds: Dataset) -> bytes:
    """``ds`` as a DICOM Part 10 file (preamble, ``DICM``, file meta information, dataset)."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def missing_attributes(ds: Dataset) -> list[str]:
    """The :data:`REQUIRED_KOS_ATTRIBUTES` that ``ds`` lacks, Type 1 ones also when present but empty."""
    missing = []
    for keyword in REQUIRED_KOS_ATTRIBUTES:
        if keyword not in ds or (keyword in TYPE1_KOS_ATTRIBUTES and ds[keyword].is_empty):
            missing.append(keyword)
    return missing


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _load(data: bytes | Path | Dataset) -> Dataset:
    if isinstance(data, Dataset):
        return data
    try:
        source = io.BytesIO(data) if isinstance(data, bytes) else data
        return pydicom.dcmread(source)
    except OSError:
        raise
    except Exception as exc:  # pydicom's parse errors are of many kinds: InvalidDicomError, EOFError, struct.error
        raise ValueError(f"not a DICOM Part 10 file: {exc}") from exc


def _issuer(ds: Dataset) -> str:
    for qualifiers in ds.get("IssuerOfPatientIDQualifiersSequence") or ():
        entity = _text(qualifiers, "UniversalEntityID")
        if entity and _text(qualifiers, "UniversalEntityIDType") == ISO_ENTITY:
            return entity
    issuer = _text(ds, "IssuerOfPatientID")
    return issuer if _OID.fullmatch(issuer) else ""


def _read_series(item: Dataset, where: str, budget: int) -> SeriesRef:
    series_uid = _text(item, "SeriesInstanceUID")
    if not series_uid:
        raise ValueError(f"{where} has no SeriesInstanceUID")
    sop_items = item.get("ReferencedSOPSequence") or ()
    if len(sop_items) > budget:
        raise ValueError(f"the manifest references more than {MAX_INSTANCES} instances")
    instances = []
    for j, sop in enumerate(sop_items, 1):
        ref = InstanceRef(_text(sop, "ReferencedSOPClassUID"), _text(sop, "ReferencedSOPInstanceUID"))
        if not ref.sop_class_uid or not ref.sop_instance_uid:
            raise ValueError(f"{where} ReferencedSOPSequence item {j} lacks its SOP class or instance UID")
        instances.append(ref)
    if not instances:
        raise ValueError(f"{where} (series {series_uid}) references no instances")
    return SeriesRef(
        series_uid,
        tuple(instances),
        retrieve_location_uid=_text(item, "RetrieveLocationUID"),
        retrieve_url=_text(item, "RetrieveURL"),
    )


def read_manifest(data: bytes | Path | Dataset) -> ReadManifest:
    """Read a KOS manifest (Part 10 bytes, a file, or a dataset) into a :class:`ReadManifest`.

    Raises :class:`ValueError` when ``data`` is not DICOM, not a Key Object Selection Document, has no
    Current Requested Procedure Evidence Sequence (or a study/series/instance item in it lacks its UIDs), or
    references more than :data:`MAX_INSTANCES` instances.
    """
    ds = _load(data)
    sop_class = _text(ds, "SOPClassUID")
    if sop_class != KOS_SOP_CLASS:
        found = f"{sop_class} ({UID(sop_class).name})" if sop_class else "no SOPClassUID"
        raise ValueError(f"not a Key Object Selection Document ({KOS_SOP_CLASS}): found {found}")
    evidence = ds.get("CurrentRequestedProcedureEvidenceSequence")
    if not evidence:
        raise ValueError("not a KOS manifest: no CurrentRequestedProcedureEvidenceSequence")
    series: list[SeriesRef] = []
    studies: list[str] = []
    budget = MAX_INSTANCES
    for i, study in enumerate(evidence, 1):
        where = f"evidence item {i}"
        study_uid = _text(study, "StudyInstanceUID")
        if not study_uid:
            raise ValueError(f"{where} has no StudyInstanceUID")
        studies.append(study_uid)
        series_items = study.get("ReferencedSeriesSequence") or ()
        if not series_items:
            raise ValueError(f"{where} (study {study_uid}) has no ReferencedSeriesSequence")
        for k, item in enumerate(series_items, 1):
            ref = _read_series(item, f"{where} series {k}", budget)
            budget -= len(ref.instances)
            series.append(ref)
    return ReadManifest(
        study_instance_uid=_text(ds, "StudyInstanceUID") or studies[0],
        accession_number=_text(ds, "AccessionNumber"),
        patient_id=_text(ds, "PatientID"),
        series=tuple(series),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        issuer_oid=_issuer(ds),
        patient_name=_text(ds, "PatientName"),
        referenced_studies=tuple(studies),
    )


__all__ = [
    "KOS_SOP_CLASS",
    "MANIFEST_TITLE",
    "MAX_INSTANCES",
    "REQUIRED_KOS_ATTRIBUTES",
    "TYPE1_KOS_ATTRIBUTES",
    "InstanceRef",
    "ReadManifest",
    "SeriesRef",
    "StudyManifest",
    "build_manifest",
    "manifest_bytes",
    "missing_attributes",
    "read_manifest",
    "value_type",
]
