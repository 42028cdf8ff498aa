"""XDR Document Recipient end to end in one process: push, mailbox routing, accept into the registry."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from tests.support import serving
from xds import samples
from xds import vocabulary as v
from xds.app import create_app
from xds.client import SoapClient
from xds.config import Settings
from xds.model.metadata import DocumentEntry, Submission
from xds.model.rim import Slot, text
from xds.node import Node
from xds.recipient.addressing import Mailbox
from xds.recipient.model import ACCEPTED, NEW, REJECTED, UNKNOWN_PATIENT, URGENT_SLOT

PATIENT = samples.patient("xdr-1")
RADIOLOGY = "Radiologie St Jansdal^^^^^&2.16.528.1.1007.3.3&ISO^^^^00010990||^^Internet^radiologie@example.org"


@pytest.fixture
def xdr_node(settings: Settings) -> Iterator[Node]:
    boxes = (
        Mailbox(name="radiology", organisations=("00010990",), departments=("Radiologie St Jansdal",)),
        Mailbox(name="general", default=True),
    )
    n = Node.open(dataclasses.replace(settings, mailboxes=boxes))
    n.store.add_patient(str(PATIENT))
    yield n
    n.close()


@pytest.fixture
def xdr(xdr_node: Node) -> Iterator[SoapClient]:
    with serving(create_app(xdr_node)) as base, SoapClient(f"{base}/xdr/recipient") as c:
        yield c


def push_submission(
    *recipients: str, comment: str = "", urgent: bool = False, limited: bool = False
) -> tuple[Submission, dict[str, bytes]]:
    data = b"report for the radiology department\n"
    de = samples.document_entry(PATIENT, content=data)
    de = dataclasses.replace(de, hash="", size=None, repository_unique_id="")
    if limited:
        de = DocumentEntry(
            id=de.id, mime_type="text/plain", unique_id=de.unique_id, patient_id=PATIENT, limited_metadata=True
        )
    ss = samples.submission_set(PATIENT)
    slots = (Slot(name=URGENT_SLOT, values=("urgent",)),) if urgent else ()
    ss = dataclasses.replace(
        ss,
        intended_recipients=recipients,
        comments=text(comment) if comment else (),
        extra_slots=slots,
        limited_metadata=limited,
    )
    return samples.submission(PATIENT, [de], ss=ss), {de.id: data}


def test_push_lands_in_the_mailbox_its_recipient_names_and_is_accepted(xdr: SoapClient, xdr_node: Node) -> None:
    sub, docs = push_submission(RADIOLOGY, comment="graag beoordelen")
    resp = xdr.provide_and_register(sub, docs)
    assert resp.status == v.RESPONSE_SUCCESS, resp.errors
    [d] = xdr_node.inbox.listing(mailbox="radiology")
    assert d.status == NEW and d.local_patient_id == str(PATIENT) and d.message == "graag beoordelen"
    assert xdr_node.store.documents(xdr_node.repository_unique_id, [sub.document_entries[0].unique_id]) == {}
    accepted = xdr_node.accept_delivery(d.reference)
    assert accepted.status == ACCEPTED
    held = xdr_node.store.documents(xdr_node.repository_unique_id, [sub.document_entries[0].unique_id])
    assert len(held) == 1
    assert [e.status for e in accepted.history] == [NEW, ACCEPTED]


def test_limited_metadata_push_is_completed_on_import(xdr: SoapClient, xdr_node: Node) -> None:
    sub, docs = push_submission(RADIOLOGY, limited=True)
    resp = xdr.provide_and_register(sub, docs)
    assert resp.status == v.RESPONSE_SUCCESS, resp.errors
    [d] = xdr_node.inbox.listing(mailbox="radiology")
    xdr_node.accept_delivery(d.reference)
    assert len(xdr_node.store.documents(xdr_node.repository_unique_id, [sub.document_entries[0].unique_id])) == 1


def test_unknown_patient_waits_and_is_reconciled(xdr: SoapClient, xdr_node: Node) -> None:
    stranger = samples.patient("stranger", oid="1.2.3.4.99")
    sub, docs = push_submission(RADIOLOGY)
    sub = Submission(
        submission_sets=tuple(dataclasses.replace(s, patient_id=stranger) for s in sub.submission_sets),
        document_entries=tuple(
            dataclasses.replace(e, patient_id=stranger, source_patient_id=stranger) for e in sub.document_entries
        ),
        associations=sub.associations,
    )
    assert xdr.provide_and_register(sub, docs).status == v.RESPONSE_SUCCESS
    [d] = xdr_node.inbox.listing()
    assert d.status == UNKNOWN_PATIENT and d.local_patient_id == ""
    with pytest.raises(ValueError, match="reconcile"):
        xdr_node.accept_delivery(d.reference)
    done = xdr_node.accept_delivery(d.reference, str(PATIENT))
    assert done.status == ACCEPTED and done.local_patient_id == str(PATIENT)


def test_resend_is_not_a_second_delivery_and_reject_deletes_the_documents(xdr: SoapClient, xdr_node: Node) -> None:
    sub, docs = push_submission(RADIOLOGY, urgent=True)
    assert xdr.provide_and_register(sub, docs).status == v.RESPONSE_SUCCESS
    assert xdr.provide_and_register(sub, docs).status == v.RESPONSE_SUCCESS
    [d] = xdr_node.inbox.listing()
    assert d.urgent
    full = xdr_node.inbox.get(d.reference)
    assert full is not None and [e.status for e in full.history] == [NEW, "re-sent"]
    sha = d.documents[0].sha256
    assert xdr_node.documents.exists(sha)
    assert xdr_node.reject_delivery(d.reference, "wrong patient").status == REJECTED
    assert not xdr_node.documents.exists(sha)


def test_health_reports_the_inbox(xdr: SoapClient, xdr_node: Node) -> None:
    assert xdr_node.health()["inbox"] == {"pending_digests": 0}
    sub, docs = push_submission(RADIOLOGY)
    assert xdr.provide_and_register(sub, docs).status == v.RESPONSE_SUCCESS
    assert xdr_node.health()["inbox"] == {"new": 1, "pending_digests": 0}


def test_a_push_that_raced_an_identical_one_is_answered_as_a_resend(
    xdr: SoapClient, xdr_node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub, docs = push_submission(RADIOLOGY)
    assert xdr.provide_and_register(sub, docs).status == v.RESPONSE_SUCCESS
    real = xdr_node.inbox.find_resent
    calls: list[int] = []

    def stale_once(mailbox: str, uid: str):  # type: ignore[no-untyped-def]
        calls.append(1)
        return None if len(calls) == 1 else real(mailbox, uid)  # the first check ran before the first commit

    monkeypatch.setattr(xdr_node.inbox, "find_resent", stale_once)
    assert xdr.provide_and_register(sub, docs).status == v.RESPONSE_SUCCESS
    [d] = xdr_node.inbox.listing(status="all")
    full = xdr_node.inbox.get(d.reference)
    assert full is not None and [e.status for e in full.history] == [NEW, "re-sent"]
    assert not [p for p in xdr_node.documents.staging_root.rglob("*.part")]
