"""BSN on the way in: received studies are filed under the patient their BSN names, or wait for a person."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.dicom.test_ingest import PATIENT, study
from xds.imaging import TRANSPORT_DICOM, accept_study, bsn_report, receive_studies
from xds.node import Node
from xds.recipient.model import ACCEPTED, UNKNOWN_PATIENT

BSN = "999999990"
BSN_ID = f"{BSN}^^^&2.16.840.1.113883.2.4.6.3&ISO"


def with_identity(paths: list[Path], *, patient_id: str, preferred: bool = True, issuer: str = "") -> None:
    """Put ``patient_id`` into every instance: with the agreed BSN qualifiers, or with only an Issuer of Patient
    ID (``issuer``, a known wrong place), or bare (a number that only looks like a BSN)."""
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.PatientID = patient_id
        if preferred:
            q = Dataset()
            q.UniversalEntityID, q.UniversalEntityIDType = "2.16.840.1.113883.2.4.6.3", "ISO"
            ds.IssuerOfPatientID = "NLMINBIZA"
            ds.IssuerOfPatientIDQualifiersSequence = [q]
        elif issuer:
            ds.IssuerOfPatientID = issuer
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
    with_identity(paths, patient_id=BSN, preferred=False, issuer="NLMINBIZA")
    received = receive_studies(node, [tmp_path / "s"], sender="Kliniek West")
    assert [f.bsn_bucket for f in received.filed] == ["wrong-tag"]
    assert bsn_report(node, by_sender=True) == {"Kliniek West": {"wrong-tag": 1}}


def test_a_bare_number_that_looks_like_a_bsn_is_never_used_to_match(node: Node, tmp_path: Path) -> None:
    node.store.add_patient(str(PATIENT))
    node.store.add_alias(str(PATIENT), BSN_ID)
    paths = study(tmp_path / "s", 1)
    with_identity(paths, patient_id=BSN, preferred=False)  # no issuer: perhaps a hospital number
    received = receive_studies(node, [tmp_path / "s"], sender="Kliniek West")
    assert received.filed == () and len(received.waiting) == 1
    assert bsn_report(node, by_sender=True) == {"Kliniek West": {"wrong-tag": 1}}  # reported, not trusted


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


def test_an_unverified_bsn_never_leaves_after_a_reconcile(node: Node, tmp_path: Path) -> None:
    node.store.add_patient(str(PATIENT))  # no BSN alias: nothing verified for this patient
    paths = study(tmp_path / "s", 1)
    with_identity(paths, patient_id=BSN)  # a BSN of nobody here: the study waits
    [reference] = receive_studies(node, [tmp_path / "s"], sender="Ziekenhuis Oost").waiting
    done = accept_study(node, reference, str(PATIENT))  # a person decided
    [instance] = node.imaging.study_instances(done.study_uid)
    ds = pydicom.dcmread(node.documents.path(instance.sha256))
    assert ds.PatientID == PATIENT.id_number
    assert BSN not in str(ds.get("OtherPatientIDsSequence", ""))  # the sender's BSN was never verified here
    assert [r.event for r in node.audit.listing()].count("inbox-accept") == 1
    assert [r.event for r in node.audit.listing()].count("dicom-import") == 1


def test_an_automatic_import_refuses_a_bsn_it_cannot_verify(node: Node, tmp_path: Path) -> None:
    node.store.add_patient(str(PATIENT))
    paths = study(tmp_path / "s", 1)
    with_identity(paths, patient_id=BSN)
    [reference] = receive_studies(node, [tmp_path / "s"], sender="Ziekenhuis Oost").waiting
    with pytest.raises(ValueError, match="a person must decide"):
        accept_study(node, reference, str(PATIENT), confirmed=False)
    delivery = node.inbox.get(reference)
    assert delivery is not None and delivery.status == UNKNOWN_PATIENT
    assert delivery.history[-1].status == "import-failed" and node.imaging.count() == 0


def test_images_of_two_patients_or_of_another_bsn_are_not_filed(node: Node, tmp_path: Path) -> None:
    from xds.imaging import ingest

    node.store.add_patient(str(PATIENT))
    node.store.add_alias(str(PATIENT), BSN_ID)
    paths = study(tmp_path / "two", 2)
    with_identity(paths[:1], patient_id="MRN-1", preferred=False)
    with_identity(paths[1:], patient_id="MRN-2", preferred=False)
    with pytest.raises(ValueError, match="2 patient ids"):
        ingest(node, [tmp_path / "two"], patient=str(PATIENT))
    other = study(tmp_path / "other", 1)
    with_identity(other, patient_id="123456782")  # a valid BSN, not this patient's verified one
    with pytest.raises(ValueError, match="another patient's BSN"):
        ingest(node, [tmp_path / "other"], patient=str(PATIENT))
    assert node.imaging.count() == 0
    [done], _ = ingest(node, [tmp_path / "two"], patient=str(PATIENT), force=True)  # a person checked them
    assert done.instances == 2


def test_a_concurrent_ingest_of_the_same_study_is_refused_not_doubled(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xds.imaging import ingest

    node.store.add_patient(str(PATIENT))
    paths = study(tmp_path / "s", 1)
    ingest(node, [tmp_path / "s"], patient=str(PATIENT))
    ds = pydicom.dcmread(paths[0])
    study(tmp_path / "t", 1, study_uid=str(ds.StudyInstanceUID), series_uid=str(ds.SeriesInstanceUID), first=1)
    monkeypatch.setattr(node.imaging, "study", lambda uid: None)  # as if read before the first ingest committed
    with pytest.raises(ValueError, match="changed by another ingest"):
        ingest(node, [tmp_path / "t"], patient=str(PATIENT))
    assert node.imaging.count() == 1


def test_a_received_study_leaves_with_the_bsn_policy_applied(node: Node, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from tests.dicom.test_rad69 import ask
    from xds.app import create_app

    node.store.add_patient(str(PATIENT))
    node.store.add_alias(str(PATIENT), BSN_ID)
    paths = study(tmp_path / "s", 1)
    with_identity(paths, patient_id=BSN)
    [filed] = receive_studies(node, [tmp_path / "s"], sender="Ziekenhuis Oost").filed
    [instance] = node.imaging.study_instances(filed.study_uid)
    stored = pydicom.dcmread(node.documents.path(instance.sha256))
    assert stored.PatientID == PATIENT.id_number  # filed under the local id
    with TestClient(create_app(node)) as client:
        answer = ask(client, node, [pydicom.dcmread(paths[0])])
    [sent] = answer.attachments.values()
    out = pydicom.dcmread(BytesIO(sent))
    assert out.PatientID == BSN and out.IssuerOfPatientID == "NLMINBIZA"  # leaves with the verified BSN
    assert out.PixelData == stored.PixelData
    assert not [p for p in node.documents.staging_root.rglob("*.part")]  # the rewritten copy is gone
