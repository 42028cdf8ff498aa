"""BSN on the way in: received studies are filed under the patient their BSN names, or wait for a person."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from tests.dicom.test_ingest import PATIENT, study
from xds.imaging import TRANSPORT_DICOM, accept_study, bsn_report, receive_studies
from xds.node import Node
from xds.recipient.model import ACCEPTED, UNKNOWN_PATIENT

BSN = "999999990"
BSN_ID = f"{BSN}^^^&2.16.840.1.113883.2.4.6.3&ISO"


def with_identity(paths: list[Path], *, patient_id: str, preferred: bool = True) -> None:
    """Put ``patient_id`` into every instance: with the agreed BSN qualifiers, or bare (a known wrong place)."""
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.PatientID = patient_id
        if preferred:
            q = Dataset()
            q.UniversalEntityID, q.UniversalEntityIDType = "2.16.840.1.113883.2.4.6.3", "ISO"
            ds.IssuerOfPatientID = "NLMINBIZA"
            ds.IssuerOfPatientIDQualifiersSequence = [q]
        ds.save_as(path)


def test_a_correct_bsn_files_the_study_under_the_local_patient(node: Node, tmp_path: Path) -> None:
    node.store.add_patient(str(PATIENT))
    node.store.add_alias(str(PATIENT), BSN_ID)
    paths = study(tmp_path / "s", 2)
    with_identity(paths, patient_id=BSN)
    received = receive_studies(node, [tmp_path / "s"], sender="Ziekenhuis Oost")
    [filed] = received.filed
    assert received.waiting == () and filed.bsn_bucket == "correct"
    for instance in node.imaging.study_instances(filed.study_uid):
        ds = pydicom.dcmread(node.documents.path(instance.sha256))
        assert ds.PatientID == PATIENT.id_number  # the local id
        bsn_items = [i for i in ds.OtherPatientIDsSequence if i.PatientID == BSN]
        assert len(bsn_items) == 1  # the BSN kept, once
    assert bsn_report(node, by_sender=True) == {"Ziekenhuis Oost": {"correct": 1}}


def test_a_bsn_in_a_wrong_place_is_counted_as_such_and_still_filed(node: Node, tmp_path: Path) -> None:
    node.store.add_patient(str(PATIENT))
    node.store.add_alias(str(PATIENT), BSN_ID)
    paths = study(tmp_path / "s", 1)
    with_identity(paths, patient_id=BSN, preferred=False)
    received = receive_studies(node, [tmp_path / "s"], sender="Kliniek West")
    assert [f.bsn_bucket for f in received.filed] == ["wrong-tag"]
    assert bsn_report(node, by_sender=True) == {"Kliniek West": {"wrong-tag": 1}}


def test_no_bsn_waits_for_a_person_then_is_reconciled(node: Node, tmp_path: Path) -> None:
    node.store.add_patient(str(PATIENT))
    study(tmp_path / "s", 2)
    received = receive_studies(node, [tmp_path / "s"], sender="Ziekenhuis Oost")
    assert received.filed == ()
    [reference] = received.waiting
    delivery = node.inbox.get(reference)
    assert delivery is not None and delivery.status == UNKNOWN_PATIENT and delivery.transport == TRANSPORT_DICOM
    assert len(delivery.documents) == 2 and node.imaging.count() == 0
    done = accept_study(node, reference, str(PATIENT))
    assert done.instances == 2 and node.imaging.count() == 2
    settled = node.inbox.get(reference)
    assert settled is not None and settled.status == ACCEPTED


def test_instances_that_disagree_are_not_imported(node: Node, tmp_path: Path) -> None:
    node.store.add_patient(str(PATIENT))
    node.store.add_alias(str(PATIENT), BSN_ID)
    paths = study(tmp_path / "s", 2)
    with_identity(paths[:1], patient_id=BSN)
    with_identity(paths[1:], patient_id="123456782")
    received = receive_studies(node, [tmp_path / "s"], sender="Ziekenhuis Oost")
    assert received.filed == () and len(received.waiting) == 1
    delivery = node.inbox.get(received.waiting[0])
    assert delivery is not None and "disagree" in delivery.message
    assert node.imaging.count() == 0


def test_a_bsn_of_nobody_here_waits(node: Node, tmp_path: Path) -> None:
    node.store.add_patient(str(PATIENT))
    paths = study(tmp_path / "s", 1)
    with_identity(paths, patient_id=BSN)
    received = receive_studies(node, [tmp_path / "s"], sender="Ziekenhuis Oost")
    assert received.filed == () and len(received.waiting) == 1


def test_a_pushed_dicom_delivery_is_filed_as_images(node: Node, tmp_path: Path) -> None:
    import dataclasses

    from xds import samples
    from xds.imaging import is_dicom
    from xds.model.messages import ProvideAndRegisterRequest
    from xds.recipient import iti41 as recipient

    node.store.add_patient(str(PATIENT))
    [path] = study(tmp_path / "s", 1)
    data = path.read_bytes()
    de = dataclasses.replace(
        samples.document_entry(PATIENT, content=data),
        mime_type="application/dicom",
        unique_id=str(pydicom.dcmread(path).SOPInstanceUID),
        hash="",
        size=None,
        repository_unique_id="",
    )
    request = ProvideAndRegisterRequest(
        submission=samples.submission(PATIENT, [de]), documents=((de.id, node.documents.stage_bytes([data])),)
    )
    [delivery] = recipient.receive(request, node.recipient_context(), transport="xdr", sender="test").deliveries
    assert is_dicom(delivery) and delivery.local_patient_id == str(PATIENT)
    done = accept_study(node, delivery.reference, str(PATIENT))
    assert done.instances == 1 and node.imaging.count() == 1
    # filed as images: the registry holds the study's manifest, not the instance as a document
    assert node.store.documents(node.repository_unique_id, [de.unique_id]) == {}
    assert node.store.documents(node.repository_unique_id, [done.manifest_unique_id])
