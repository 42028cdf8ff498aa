"""Ingest of DICOM studies: instances stored, one KOS manifest DocumentEntry per study, RPLC on re-ingest."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from xds import samples
from xds import vocabulary as v
from xds.dicom.kos import KOS_SOP_CLASS, missing_attributes, read_manifest
from xds.dicom.records import StudyRecord
from xds.imaging import bsn_report, ingest
from xds.model.messages import QueryParameter, StoredQueryRequest
from xds.node import Node
from xds.registry import iti18

PATIENT = samples.patient("dicom-1")


def study(directory: Path, n: int, *, study_uid: str = "", series_uid: str = "", first: int = 0) -> list[Path]:
    """``n`` CT instances of one study and series, written from pydicom's bundled CT_small.dcm."""
    source = get_testdata_file("CT_small.dcm", download=False)
    assert source is not None
    study_uid, series_uid = study_uid or generate_uid(), series_uid or generate_uid()
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(first, first + n):
        ds = pydicom.dcmread(source)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = k + 1
        ds.AccessionNumber = "ACC123"
        ds.BodyPartExamined = "CHEST"
        path = directory / f"ct{k}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.fixture
def fed(node: Node) -> Node:
    node.store.add_patient(str(PATIENT))
    return node


def manifests(node: Node, status: str = v.APPROVED) -> list[str]:
    query = StoredQueryRequest(
        query_id=v.SQ_FIND_DOCUMENTS,
        parameters=(
            QueryParameter(name="$XDSDocumentEntryPatientId", values=(f"'{PATIENT}'",)),
            QueryParameter(name="$XDSDocumentEntryStatus", values=(f"('{status}')",)),
        ),
    )
    return list(iti18.stored_query(query, node.query_context()).leaf)


def test_one_manifest_per_study_with_every_instance(fed: Node, tmp_path: Path) -> None:
    paths = study(tmp_path / "s1", 3)
    [done], skipped = ingest(fed, [tmp_path / "s1"], patient=str(PATIENT))
    assert skipped == [] and (done.added, done.instances) == (3, 3)
    [entry] = manifests(fed)
    assert KOS_SOP_CLASS in entry and "application/dicom" in entry and "urn:ihe:iti:xds:2016:studyInstanceUID" in entry
    assert ">CT<" in entry or 'value="CT"' in entry or "CT" in entry
    held = fed.store.documents(fed.repository_unique_id, [done.manifest_unique_id])[done.manifest_unique_id]
    kos = pydicom.dcmread(fed.documents.path(held.content.sha256))
    assert missing_attributes(kos) == []
    manifest = read_manifest(fed.documents.path(held.content.sha256))
    [series] = manifest.series
    assert {i.sop_instance_uid for i in series.instances} == {str(pydicom.dcmread(p).SOPInstanceUID) for p in paths}
    assert series.retrieve_location_uid == fed.imaging_source_id
    originals = {str(pydicom.dcmread(p).SOPInstanceUID): pydicom.dcmread(p) for p in paths}
    for instance in fed.imaging.study_instances(manifest.study_instance_uid):
        ds = pydicom.dcmread(fed.documents.path(instance.sha256))
        original = originals[instance.sop_instance_uid]
        assert ds.PixelData == original.PixelData
        # no verified BSN: the hospital id with its OID, the sender's earlier id kept, no BSN invented
        assert ds.PatientID == PATIENT.id_number
        assert ds.IssuerOfPatientIDQualifiersSequence[0].UniversalEntityID == PATIENT.assigning_authority.universal_id
        earlier = [item.PatientID for item in original.get("OtherPatientIDsSequence", [])]
        assert [item.PatientID for item in ds.OtherPatientIDsSequence] == [*earlier, original.PatientID]
    assert "hospital id only: no verified BSN" in (fed.imaging.study(manifest.study_instance_uid) or _no()).bsn_detail


def _no() -> StudyRecord:
    raise AssertionError("no study")


def test_a_verified_bsn_goes_into_patient_id(fed: Node, tmp_path: Path) -> None:
    assert fed.store.add_alias(str(PATIENT), "999999990^^^&2.16.840.1.113883.2.4.6.3&ISO")
    study(tmp_path / "s", 1)
    [done], _ = ingest(fed, [tmp_path / "s"], patient=str(PATIENT))
    [instance] = fed.imaging.study_instances(done.study_uid)
    ds = pydicom.dcmread(fed.documents.path(instance.sha256))
    assert ds.PatientID == "999999990" and ds.IssuerOfPatientID == "NLMINBIZA"
    assert ds.IssuerOfPatientIDQualifiersSequence[0].UniversalEntityID == "2.16.840.1.113883.2.4.6.3"
    ids = {
        (item.PatientID, item.IssuerOfPatientIDQualifiersSequence[0].UniversalEntityID)
        for item in ds.OtherPatientIDsSequence
        if "IssuerOfPatientIDQualifiersSequence" in item
    }
    assert (PATIENT.id_number, PATIENT.assigning_authority.universal_id) in ids and (
        "999999990",
        "2.16.840.1.113883.2.4.6.3",
    ) in ids


def test_more_instances_later_replace_the_manifest(fed: Node, tmp_path: Path) -> None:
    first = study(tmp_path / "a", 2)
    ds = pydicom.dcmread(first[0])
    [one], _ = ingest(fed, [tmp_path / "a"], patient=str(PATIENT))
    study(tmp_path / "b", 1, study_uid=str(ds.StudyInstanceUID), series_uid=str(ds.SeriesInstanceUID), first=2)
    [two], _ = ingest(fed, [tmp_path / "a", tmp_path / "b"], patient=str(PATIENT))  # the first two again, and one new
    assert (two.added, two.instances, two.replaced) == (1, 3, one.manifest_unique_id)
    [approved] = manifests(fed)
    assert two.manifest_unique_id in approved
    [deprecated] = manifests(fed, v.DEPRECATED)
    assert one.manifest_unique_id in deprecated


def test_bsn_report_counts_the_study(fed: Node, tmp_path: Path) -> None:
    study(tmp_path / "s", 1)
    ingest(fed, [tmp_path / "s"], patient=str(PATIENT))
    assert bsn_report(fed) == {"all": {"missing": 1}}
    assert bsn_report(fed, by_sender=True) == {"local": {"missing": 1}}


def test_unknown_patient_and_no_dicom_are_refused(fed: Node, tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("not dicom")
    with pytest.raises(ValueError, match="no DICOM instance"):
        ingest(fed, [tmp_path / "x.txt"], patient=str(PATIENT))
    study(tmp_path / "s", 1)
    with pytest.raises(ValueError, match="not known here"):
        ingest(fed, [tmp_path / "s"], patient=str(samples.patient("stranger")))
    assert fed.imaging.count() == 0
