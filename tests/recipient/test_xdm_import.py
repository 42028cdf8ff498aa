"""An XDM package is imported whole or not at all (xds.exchange.import_xdm)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from xds import samples
from xds.exchange import import_xdm
from xds.model.metadata import Submission
from xds.node import Node
from xds.recipient.model import TRANSPORT_XDM
from xds.xdm.reader import XdmError
from xds.xdm.writer import write_package

PATIENT = samples.patient("xdm-import")


def submission(data: bytes, *, ss_uid: str = "") -> tuple[Submission, dict[str, bytes]]:
    de = samples.document_entry(PATIENT, content=data)
    ss = samples.submission_set(PATIENT, unique_id=ss_uid)
    return samples.submission(PATIENT, [de], ss=ss), {de.id: data}


def published(node: Node) -> list[Path]:
    return [p for p in node.documents.objects.rglob("*") if p.is_file()]


def test_two_subsets_are_two_deliveries(node: Node, tmp_path: Path) -> None:
    package = tmp_path / "two.zip"
    write_package(package, [submission(b"first\n"), submission(b"second\n")])
    stored = import_xdm(node, package, transport=TRANSPORT_XDM, sender="test")
    assert len(stored) == 2 and {len(d.documents) for d in stored} == {1}
    assert len(published(node)) == 2


def test_a_refused_subset_refuses_the_whole_package(node: Node, tmp_path: Path) -> None:
    uid = samples.new_oid()
    first, second = submission(b"first\n", ss_uid=uid), submission(b"other\n", ss_uid=uid)
    package = tmp_path / "repeat.zip"
    write_package(package, [first, second])
    with pytest.raises(XdmError, match="SUBSET02 repeats the SubmissionSet of SUBSET01"):
        import_xdm(node, package, transport=TRANSPORT_XDM, sender="test")
    assert node.inbox.listing(status="all") == [] and published(node) == []
    staged = [p for p in node.documents.staging_root.rglob("*") if p.is_file() and p.name != "lock"]
    assert staged == []


def test_a_subset_refused_by_the_recipient_refuses_the_whole_package(node: Node, tmp_path: Path) -> None:
    good = submission(b"good\n")
    sub, docs = submission(b"bad\n")
    long_uid = "1." + "2" * 140
    de = dataclasses.replace(sub.document_entries[0], unique_id=long_uid)
    bad = (dataclasses.replace(sub, document_entries=(de,)), {de.id: docs[sub.document_entries[0].id]})
    package = tmp_path / "bad.zip"
    write_package(package, [good, bad])
    with pytest.raises(XdmError, match=r"SUBSET02: .*longer than 128"):
        import_xdm(node, package, transport=TRANSPORT_XDM, sender="test")
    assert node.inbox.listing(status="all") == [] and published(node) == []
