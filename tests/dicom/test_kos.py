"""XDS-I.b KOS manifests: build, write, read back (pydicom and :func:`read_manifest`), check, refuse, third party."""

from __future__ import annotations

import dataclasses
import io
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from tests.conformance.corpus import nist_tests_dir
from xds.dicom.kos import (
    KOS_SOP_CLASS,
    MAX_INSTANCES,
    REQUIRED_KOS_ATTRIBUTES,
    TYPE1_KOS_ATTRIBUTES,
    InstanceRef,
    SeriesRef,
    StudyManifest,
    build_manifest,
    manifest_bytes,
    missing_attributes,
    read_manifest,
    value_type,
)

CT_IMAGE: str = "1.2.840.10008.5.1.4.1.1.2"
PRESENTATION_STATE: str = "1.2.840.10008.5.1.4.1.1.11.1"
STUDY: str = "1.2.826.0.1.3680043.10.1000.1"
CT_SERIES: str = STUDY + ".1"
PR_SERIES: str = STUDY + ".2"
LOCATION: str = "1.2.826.0.1.3680043.10.1000.99"
WADO: str = "https://pacs.example.org/dicom-web"
BSN_OID: str = "2.16.840.1.113883.2.4.6.3"
THIRD_PARTY_KOS: Path = Path("idc_init/XDS-I-idc-a/kos-IDCDEPT021-a.dcm")
"""A 2-series, 36-instance MR manifest from the NIST testkit (made with dcm4che), read in place."""


def study(*, ct_count: int = 3) -> StudyManifest:
    ct = tuple(InstanceRef(CT_IMAGE, f"{CT_SERIES}.{i}") for i in range(1, ct_count + 1))
    pr = (InstanceRef(PRESENTATION_STATE, f"{PR_SERIES}.1"),)
    return StudyManifest(
        study_instance_uid=STUDY,
        accession_number="ACC-0042",
        series=(SeriesRef(CT_SERIES, ct, "CT"), SeriesRef(PR_SERIES, pr, "PR")),
        patient_id="999911120",
        issuer_oid=BSN_OID,
        patient_name="Jansen-Ørsted^Jan",
        patient_birth_date="19700101",
        patient_sex="M",
        retrieve_location_uid=LOCATION,
        retrieve_url=WADO,
        study_date="20240315",
        study_time="101500",
        study_description="CT thorax",
        referring_physician="Huisarts^H",
        study_id="S42",
    )


@pytest.fixture
def manifest() -> Dataset:
    return build_manifest(study(), content_time=datetime(2024, 3, 15, 11, 0, 5, tzinfo=UTC))


def test_written_manifest_reads_back_with_pydicom(manifest: Dataset) -> None:
    data = manifest_bytes(manifest)
    assert data[128:132] == b"DICM"
    ds = pydicom.dcmread(io.BytesIO(data))

    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPClassUID == KOS_SOP_CLASS == ds.SOPClassUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.Modality == "KO"
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert str(ds.PatientName) == "Jansen-Ørsted^Jan"
    assert ds.IssuerOfPatientIDQualifiersSequence[0].UniversalEntityID == BSN_OID
    assert ds.StudyInstanceUID == STUDY
    assert ds.SeriesInstanceUID not in (CT_SERIES, PR_SERIES)
    assert (ds.ContentDate, ds.ContentTime, ds.TimezoneOffsetFromUTC) == ("20240315", "110005", "+0000")
    assert missing_attributes(ds) == []

    title = ds.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning) == ("113030", "DCM", "Manifest")
    assert (ds.ValueType, ds.ContinuityOfContent) == ("CONTAINER", "SEPARATE")
    template = ds.ContentTemplateSequence[0]
    assert (template.MappingResource, template.TemplateIdentifier) == ("DCMR", "2010")

    (evidence,) = ds.CurrentRequestedProcedureEvidenceSequence
    assert evidence.StudyInstanceUID == STUDY
    assert [s.SeriesInstanceUID for s in evidence.ReferencedSeriesSequence] == [CT_SERIES, PR_SERIES]
    for series in evidence.ReferencedSeriesSequence:
        assert series.RetrieveLocationUID == LOCATION
        assert series.RetrieveURL == WADO
    evidence_refs = Counter(
        sop.ReferencedSOPInstanceUID for s in evidence.ReferencedSeriesSequence for sop in s.ReferencedSOPSequence
    )

    items = ds.ContentSequence
    assert len(items) == 4
    assert all(item.RelationshipType == "CONTAINS" for item in items)
    assert [item.ValueType for item in items] == ["IMAGE", "IMAGE", "IMAGE", "COMPOSITE"]
    content_refs = Counter(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for item in items)
    expected = {f"{CT_SERIES}.1", f"{CT_SERIES}.2", f"{CT_SERIES}.3", f"{PR_SERIES}.1"}
    assert evidence_refs == content_refs == Counter(expected)


def test_written_manifest_reads_back_with_read_manifest(manifest: Dataset) -> None:
    got = read_manifest(manifest_bytes(manifest))

    assert (got.study_instance_uid, got.accession_number, got.patient_id) == (STUDY, "ACC-0042", "999911120")
    assert (got.issuer_oid, got.patient_name) == (BSN_OID, "Jansen-Ørsted^Jan")
    assert got.sop_instance_uid == manifest.SOPInstanceUID
    assert got.referenced_studies == (STUDY,)
    assert got.instance_count == 4
    source = study()
    for read, built in zip(got.series, source.series, strict=True):
        assert read.series_instance_uid == built.series_instance_uid
        assert read.instances == built.instances
        assert (read.retrieve_location_uid, read.retrieve_url) == (LOCATION, WADO)
    assert source.modalities == ("CT", "PR")


def test_read_manifest_takes_a_path_and_a_dataset(manifest: Dataset, tmp_path: Path) -> None:
    path = tmp_path / "manifest.dcm"
    path.write_bytes(manifest_bytes(manifest))
    assert read_manifest(path) == read_manifest(manifest)


def test_a_read_manifest_rebuilds_the_same_references(manifest: Dataset) -> None:
    got = read_manifest(manifest)
    again = build_manifest(
        StudyManifest(
            study_instance_uid=got.study_instance_uid,
            series=got.series,
            patient_id=got.patient_id,
            retrieve_location_uid="1.2.3",
        )
    )
    assert read_manifest(again).series == got.series


def test_missing_attributes_catches_removed_and_emptied_type1(manifest: Dataset) -> None:
    assert missing_attributes(manifest) == []
    del manifest.SeriesInstanceUID
    manifest.CurrentRequestedProcedureEvidenceSequence = []
    assert missing_attributes(manifest) == ["SeriesInstanceUID", "CurrentRequestedProcedureEvidenceSequence"]


def test_missing_attributes_accepts_empty_type2_but_not_absent(manifest: Dataset) -> None:
    manifest.PatientName = ""
    assert missing_attributes(manifest) == []
    del manifest.PatientName
    del manifest.ReferencedPerformedProcedureStepSequence
    assert missing_attributes(manifest) == ["PatientName", "ReferencedPerformedProcedureStepSequence"]
    assert TYPE1_KOS_ATTRIBUTES.issubset(REQUIRED_KOS_ATTRIBUTES)
    assert len(TYPE1_KOS_ATTRIBUTES) == 13 and len(REQUIRED_KOS_ATTRIBUTES) == 24
    assert missing_attributes(Dataset()) == list(REQUIRED_KOS_ATTRIBUTES)


def test_not_a_kos_is_refused() -> None:
    ct = Path(str(get_testdata_file("CT_small.dcm")))
    with pytest.raises(ValueError, match=r"not a Key Object Selection Document .*CT Image Storage"):
        read_manifest(ct)
    with pytest.raises(ValueError, match="not a Key Object Selection Document"):
        read_manifest(ct.read_bytes())
    with pytest.raises(ValueError, match="not a DICOM Part 10 file"):
        read_manifest(b"<xml>not dicom</xml>")


def test_a_kos_without_evidence_is_refused(manifest: Dataset) -> None:
    del manifest.CurrentRequestedProcedureEvidenceSequence
    with pytest.raises(ValueError, match="no CurrentRequestedProcedureEvidenceSequence"):
        read_manifest(manifest_bytes(manifest))


def test_a_kos_with_a_series_lacking_its_uid_is_refused(manifest: Dataset) -> None:
    del manifest.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[1].SeriesInstanceUID
    with pytest.raises(ValueError, match="evidence item 1 series 2 has no SeriesInstanceUID"):
        read_manifest(manifest)


def test_reading_is_bounded(manifest: Dataset) -> None:
    series = manifest.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    template = series.ReferencedSOPSequence[0]
    series.ReferencedSOPSequence = [template] * MAX_INSTANCES
    with pytest.raises(ValueError, match=f"more than {MAX_INSTANCES} instances"):
        read_manifest(manifest)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"study_instance_uid": "1.2.x"}, "study_instance_uid is not a valid DICOM UID"),
        ({"retrieve_location_uid": ""}, "retrieve_location_uid is not a valid DICOM UID"),
        ({"patient_id": ""}, "patient_id is empty"),
        ({"study_date": "2024-03-15"}, "study_date is not YYYYMMDD"),
        ({"patient_sex": "X"}, "patient_sex is not M, F, O or empty"),
        ({"issuer_oid": "BSN"}, "issuer_oid is not an OID"),
        ({"series": ()}, "at least one series"),
        ({"series": (SeriesRef(CT_SERIES, ()),)}, "has no instances"),
        (
            {"series": (SeriesRef(CT_SERIES, (InstanceRef(CT_IMAGE, "1.2.3"),) * 2),)},
            "instance 1.2.3 is referenced twice",
        ),
    ],
)
def test_an_invalid_study_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_manifest(dataclasses.replace(study(), **change))


def test_building_is_bounded() -> None:
    with pytest.raises(ValueError, match=f"at most {MAX_INSTANCES} instances"):
        build_manifest(study(ct_count=MAX_INSTANCES))


def test_value_types() -> None:
    assert value_type(CT_IMAGE) == "IMAGE"
    assert value_type("1.2.840.10008.5.1.4.1.1.4.1") == "IMAGE"  # Enhanced MR Image Storage
    assert value_type("1.2.840.10008.5.1.4.1.1.9.1.1") == "WAVEFORM"  # 12-lead ECG Waveform Storage
    assert value_type(PRESENTATION_STATE) == "COMPOSITE"
    assert value_type("1.2.840.10008.5.1.4.1.1.88.22") == "COMPOSITE"  # Enhanced SR Storage
    assert value_type("1.2.826.0.1.3680043.10.1000.7") == "COMPOSITE"  # unknown (private) class


def test_a_third_party_kos_is_read() -> None:
    path = nist_tests_dir() / THIRD_PARTY_KOS
    if not path.is_file():
        pytest.skip(f"NIST testkit KOS sample not in this corpus version: {path}")

    got = read_manifest(path)

    assert got.study_instance_uid == "1.3.6.1.4.1.21367.201599.1.201604021948031"
    assert got.referenced_studies == (got.study_instance_uid,)
    assert got.accession_number
    assert got.patient_id
    assert len(got.series) == 2
    assert got.instance_count > 0
    assert all(s.retrieve_location_uid == "1.3.6.1.4.1.21367.102.1.1" for s in got.series)
    assert missing_attributes(pydicom.dcmread(path)) == []
