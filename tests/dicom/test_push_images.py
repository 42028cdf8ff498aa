"""A study pushed to another node (XDR) is filed there as images: one manifest, instances byte for byte."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from tests.dicom.test_ingest import PATIENT, study
from tests.support import serving
from tests.test_push import receiver_url  # noqa: F401 - the receiver's own database, same backend
from xds.app import create_app
from xds.config import Settings
from xds.imaging import ingest
from xds.node import Node
from xds.push import DELIVERED, PushOrder, push, study_images
from xds.recipient.addressing import Mailbox
from xds.recipient.model import ACCEPTED, is_dicom

RECEIVER_HOME = "urn:oid:1.3.6.1.4.1.21367.2017.2.6.77"


@pytest.fixture
def receiver(settings: Settings, receiver_url: str, tmp_path: Path) -> Iterator[Node]:  # noqa: F811
    n = Node.open(
        dataclasses.replace(
            settings,
            data_dir=str(tmp_path / "receiver"),
            database_url=receiver_url,
            home_community_id=RECEIVER_HOME,
            repository_unique_id="1.3.6.1.4.1.21367.2017.2.3.77",
            mailboxes=(Mailbox(name="radiology", default=True, auto_import=True),),
        )
    )
    n.store.add_patient(str(PATIENT))
    yield n
    n.close()


def test_a_pushed_study_is_filed_as_images_at_the_receiver(node: Node, receiver: Node, tmp_path: Path) -> None:
    node.store.add_patient(str(PATIENT))
    study(tmp_path / "s", 3)
    [sent], _ = ingest(node, [tmp_path / "s"], patient=str(PATIENT))
    with serving(create_app(receiver)) as base:
        assert node.store.add_community(
            {"home_community_id": RECEIVER_HOME, "name": "b", "push_url": f"{base}/xdr/recipient"}
        )
        images = study_images(node, sent.study_uid, str(PATIENT), scratch=tmp_path / "scratch")
        done = push(node, PushOrder(recipient="b", patient=PATIENT, files=(), images=images, comment="ter beoordeling"))
    assert done.status == DELIVERED, done.detail
    [delivery] = receiver.inbox.listing(status=None)
    assert is_dicom(delivery) and delivery.status == ACCEPTED  # auto-import: known patient, filed at once
    held = receiver.imaging.study_instances(sent.study_uid)
    assert {i.sop_instance_uid for i in held} == {uid for uid, _ in images}
    for instance in held:
        ds = pydicom.dcmread(receiver.documents.path(instance.sha256))
        assert ds.PatientID == PATIENT.id_number  # filed under the receiver's local patient
    study_record = receiver.imaging.study(sent.study_uid)
    assert study_record is not None and study_record.manifest_unique_id  # one manifest registered there
    with pytest.raises(ValueError, match="no study"):
        study_images(node, "1.2.3.999", str(PATIENT), scratch=tmp_path / "scratch")
    with pytest.raises(ValueError, match="is not of patient"):
        study_images(node, sent.study_uid, "someone-else^^^&1.2.3&ISO", scratch=tmp_path / "scratch")
    with pytest.raises(ValueError, match="on its own"):
        push(node, PushOrder(recipient="b", patient=PATIENT, files=(tmp_path / "s" / "ct0.dcm",), images=images))
