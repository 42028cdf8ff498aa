"""The SQL inbox: deliveries in one transaction, listings, status changes, notification digests, and the
content deliveries hold for crash recovery (on every configured database backend)."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from xds import samples
from xds.model.messages import ProvideAndRegisterRequest
from xds.node import Node
from xds.recipient.model import ACCEPTED, NEW, REJECTED, UNKNOWN_PATIENT, DeliveredDocument, NewDelivery
from xds.repository import iti41
from xds.store.documents import FileDocumentStore
from xds.store.inbox import SqlInbox

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
QUIET = 120.0


def document(data: bytes, *, unique_id: str = "", entry_id: str = "") -> DeliveredDocument:
    return DeliveredDocument(
        entry_id=entry_id or samples.new_uuid(),
        unique_id=unique_id or samples.new_oid(),
        mime_type="text/plain",
        size=len(data),
        sha1=hashlib.sha1(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def new(
    *,
    mailbox: str = "radiology",
    patient: str = "p1^^^&1.2.3&ISO",
    local: str | None = None,
    status: str = NEW,
    urgent: bool = False,
    documents: tuple[DeliveredDocument, ...] = (),
    recipients: tuple[str, ...] = (),
    message: str = "",
    uid: str = "",
) -> NewDelivery:
    return NewDelivery(
        mailbox=mailbox,
        status=status,
        transport="xdr",
        sender="https://sender.example/xdr",
        patient_id=patient,
        local_patient_id=patient if local is None else local,
        message=message,
        urgent=urgent,
        submission_set_uid=uid or samples.new_oid(),
        recipients=recipients,
        metadata_xml="<SubmitObjectsRequest>é</SubmitObjectsRequest>".encode(),
        documents=documents,
    )


def pending(inbox: SqlInbox) -> list[tuple[int, str, str, datetime, bool]]:
    return inbox.pending_digests()


# --- add, get, listing ---------------------------------------------------------------------------------------


def test_add_of_two_deliveries_is_one_transaction(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = node.inbox
    original = SqlInbox._insert
    calls: list[int] = []

    def failing_second(self: SqlInbox, conn: Connection, n: NewDelivery, reference: str, now: datetime) -> int:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return original(self, conn, n, reference, now)

    monkeypatch.setattr(SqlInbox, "_insert", failing_second)
    with pytest.raises(RuntimeError, match="disk full"):
        inbox.add([(new(documents=(document(b"a"),)), QUIET), (new(mailbox="general"), QUIET)], at=T0)
    assert len(calls) == 2
    monkeypatch.undo()
    assert inbox.listing() == []
    assert pending(inbox) == []  # the first delivery's digest was rolled back too
    assert inbox.recorded_contents({document(b"a").sha256}) == set()


def test_add_rolls_back_when_the_database_refuses_the_second(node: Node) -> None:
    if node.engine.dialect.name == "sqlite":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    with pytest.raises(DBAPIError):
        node.inbox.add([(new(documents=(document(b"a"),)), QUIET), (new(mailbox="m" * 65), QUIET)], at=T0)
    assert node.inbox.listing() == []
    assert pending(node.inbox) == []


def test_add_stores_two_deliveries_with_distinct_references(node: Node) -> None:
    stored = node.inbox.add([(new(), None), (new(mailbox="general"), None)], at=T0)
    assert [d.mailbox for d in stored] == ["radiology", "general"]
    assert len({d.reference for d in stored}) == 2
    assert all(d.reference.startswith("D-") for d in stored)


def test_get_listing_and_metadata_round_trip(node: Node) -> None:
    inbox = node.inbox
    docs = (document(b"first", unique_id="1.2.3.1"), document(b"second", unique_id="1.2.3.2"))
    [d] = inbox.add(
        [(new(urgent=True, documents=docs, recipients=("A|B", "|123^Jansen"), message="graag bekijken"), None)],
        at=T0,
    )
    got = inbox.get(d.reference)
    assert got is not None and got == d
    assert got.documents == docs  # in the order given
    assert got.recipients == ("A|B", "|123^Jansen")
    assert got.urgent is True and got.message == "graag bekijken" and got.status == NEW
    assert got.received == T0
    assert [e.status for e in got.history] == [NEW]
    assert "received by xdr from https://sender.example/xdr" in got.history[0].detail
    assert inbox.metadata(d.reference) == "<SubmitObjectsRequest>é</SubmitObjectsRequest>".encode()
    node.inbox.note(d.reference, "re-sent", "again")
    node.inbox.set_status(d.reference, ACCEPTED, "imported")
    again = inbox.get(d.reference)
    assert again is not None
    assert [(e.status, e.detail) for e in again.history] == [
        (NEW, got.history[0].detail),
        ("re-sent", "again"),
        (ACCEPTED, "imported"),
    ]
    [listed] = inbox.listing()
    assert listed.documents == docs and listed.history == ()  # listings carry no history
    assert inbox.get("D-0000000000") is None
    with pytest.raises(KeyError):
        inbox.metadata("D-0000000000")


def test_listing_by_mailbox_status_and_open(node: Node) -> None:
    inbox = node.inbox
    a, b, c = inbox.add(
        [
            (new(mailbox="Radiology"), None),
            (new(mailbox="general", status=UNKNOWN_PATIENT, local=""), None),
            (new(mailbox="cardiology"), None),
        ],
        at=T0,
    )
    inbox.set_status(c.reference, REJECTED, "wrong patient")
    assert [d.reference for d in inbox.listing()] == [a.reference, b.reference, c.reference]  # oldest first
    assert [d.reference for d in inbox.listing(mailbox="RADIOLOGY")] == [a.reference]
    assert [d.reference for d in inbox.listing(mailbox="radiology")] == [a.reference]
    assert [d.reference for d in inbox.listing(status="open")] == [a.reference, b.reference]
    assert [d.reference for d in inbox.listing(status=UNKNOWN_PATIENT)] == [b.reference]
    assert [d.reference for d in inbox.listing(status=REJECTED)] == [c.reference]
    assert [d.reference for d in inbox.listing(limit=2)] == [b.reference, c.reference]  # the newest two
    assert inbox.listing(mailbox="general", status=NEW) == []


def test_find_resent_by_mailbox_and_submission_set(node: Node) -> None:
    [d] = node.inbox.add([(new(uid="1.2.3.99"), None)], at=T0)
    found = node.inbox.find_resent("radiology", "1.2.3.99")
    assert found is not None and found.reference == d.reference
    assert node.inbox.find_resent("general", "1.2.3.99") is None
    assert node.inbox.find_resent("radiology", "") is None


# --- status and notes ----------------------------------------------------------------------------------------


def test_set_status_from_a_wrong_status_raises_and_changes_nothing(node: Node) -> None:
    [d] = node.inbox.add([(new(), None)], at=T0)
    node.inbox.set_status(d.reference, REJECTED, "not ours")
    with pytest.raises(ValueError, match="rejected"):
        node.inbox.set_status(d.reference, ACCEPTED, "imported", local_patient_id="other^^^&1.2.3&ISO")
    got = node.inbox.get(d.reference)
    assert got is not None
    assert got.status == REJECTED and got.local_patient_id == d.local_patient_id
    assert [e.status for e in got.history] == [NEW, REJECTED]


def test_set_status_sets_the_local_patient_and_respects_expect(node: Node) -> None:
    [d] = node.inbox.add([(new(status=UNKNOWN_PATIENT, local=""), None)], at=T0)
    with pytest.raises(ValueError):
        node.inbox.set_status(d.reference, ACCEPTED, "x", expect=(NEW,))
    node.inbox.set_status(d.reference, ACCEPTED, "reconciled", local_patient_id="loc^^^&1.2.3&ISO")
    got = node.inbox.get(d.reference)
    assert got is not None and (got.status, got.local_patient_id) == (ACCEPTED, "loc^^^&1.2.3&ISO")


def test_unknown_reference_is_a_key_error(node: Node) -> None:
    with pytest.raises(KeyError):
        node.inbox.set_status("D-ffffffffff", ACCEPTED, "x")
    with pytest.raises(KeyError):
        node.inbox.note("D-ffffffffff", "re-sent", "x")


def test_note_adds_an_event_and_keeps_the_status(node: Node) -> None:
    [d] = node.inbox.add([(new(), None)], at=T0)
    node.inbox.note(d.reference, "import-failed", "registry said no")
    got = node.inbox.get(d.reference)
    assert got is not None and got.status == NEW
    assert [(e.status, e.detail) for e in got.history][1:] == [("import-failed", "registry said no")]


# --- digests -------------------------------------------------------------------------------------------------


def test_deliveries_in_the_quiet_period_share_a_digest_whose_due_moves(node: Node) -> None:
    inbox = node.inbox
    inbox.add([(new(), QUIET)], at=T0)
    [(digest_id, mailbox, key, due, urgent)] = pending(inbox)
    assert (mailbox, key, due, urgent) == ("radiology", "p1^^^&1.2.3&ISO", T0 + timedelta(seconds=QUIET), False)
    inbox.add([(new(), QUIET)], at=T0 + timedelta(seconds=30))
    [(same_id, _, _, moved, _)] = pending(inbox)
    assert same_id == digest_id
    assert moved == T0 + timedelta(seconds=30 + QUIET)
    inbox.add([(new(patient="p2^^^&1.2.3&ISO"), QUIET)], at=T0 + timedelta(seconds=40))
    digests = pending(inbox)
    assert len(digests) == 2
    assert {d[2] for d in digests} == {"p1^^^&1.2.3&ISO", "p2^^^&1.2.3&ISO"}


def test_an_unknown_patient_is_keyed_by_the_sender_id(node: Node) -> None:
    node.inbox.add([(new(local="", patient="x^^^&9.9&ISO", status=UNKNOWN_PATIENT), QUIET)], at=T0)
    [(_, _, key, _, _)] = pending(node.inbox)
    assert key == "sender:x^^^&9.9&ISO"


def test_another_mailbox_gets_another_digest(node: Node) -> None:
    node.inbox.add([(new(), QUIET), (new(mailbox="general"), QUIET)], at=T0)
    assert sorted(p[1] for p in pending(node.inbox)) == ["general", "radiology"]


def test_an_urgent_delivery_makes_the_open_digest_due_now(node: Node) -> None:
    inbox = node.inbox
    inbox.add([(new(), QUIET)], at=T0)
    at = T0 + timedelta(seconds=10)
    inbox.add([(new(urgent=True), QUIET)], at=at)
    [(_, _, _, due, urgent)] = pending(inbox)
    assert (due, urgent) == (at, True)
    [claimed] = inbox.claim_due(now=at)
    assert claimed.urgent and len(claimed.references) == 2


def test_a_later_ordinary_delivery_does_not_postpone_an_urgent_digest(node: Node) -> None:
    inbox = node.inbox
    inbox.add([(new(urgent=True), QUIET)], at=T0)
    inbox.add([(new(), QUIET)], at=T0 + timedelta(seconds=5))
    [(_, _, _, due, urgent)] = pending(inbox)
    assert urgent
    assert due == T0


def test_claim_due_only_when_due_and_only_once(node: Node) -> None:
    inbox = node.inbox
    docs = (document(b"one"),)
    [d] = inbox.add([(new(documents=docs), QUIET)], at=T0)
    due = T0 + timedelta(seconds=QUIET)
    assert inbox.claim_due(now=due - timedelta(seconds=1)) == []
    [claimed] = inbox.claim_due(now=due)
    assert (claimed.mailbox, claimed.patient_key, claimed.references, claimed.documents) == (
        "radiology",
        "p1^^^&1.2.3&ISO",
        (d.reference,),
        1,
    )
    assert inbox.claim_due(now=due) == []  # claimed already
    assert inbox.claim_due(now=due + timedelta(seconds=299)) == []  # not stale yet
    [again] = inbox.claim_due(now=due + timedelta(seconds=301))  # a claim older than stale_after
    assert again.id == claimed.id
    assert inbox.claim_due(now=due + timedelta(seconds=400), stale_after=600) == []


def test_digest_sent_is_no_longer_pending_and_notes_each_delivery(node: Node) -> None:
    inbox = node.inbox
    a = inbox.add([(new(), QUIET)], at=T0)[0]
    b = inbox.add([(new(), QUIET)], at=T0 + timedelta(seconds=1))[0]
    other = inbox.add([(new(patient="p2^^^&1.2.3&ISO"), QUIET)], at=T0)[0]
    now = T0 + timedelta(seconds=QUIET + 1)
    claimed = {c.patient_key: c for c in inbox.claim_due(now=now)}
    assert set(claimed) == {"p1^^^&1.2.3&ISO", "p2^^^&1.2.3&ISO"}
    digest = claimed["p1^^^&1.2.3&ISO"]
    assert digest.references == (a.reference, b.reference)
    inbox.digest_sent(digest.id, "mailed to secretariaat@example.org", at=now)
    assert [p[0] for p in pending(inbox)] == [claimed["p2^^^&1.2.3&ISO"].id]
    for ref in (a.reference, b.reference):
        got = inbox.get(ref)
        assert got is not None
        assert [(e.status, e.detail) for e in got.history][-1] == ("notified", "mailed to secretariaat@example.org")
    untouched = inbox.get(other.reference)
    assert untouched is not None and [e.status for e in untouched.history] == [NEW]
    later = inbox.claim_due(now=now + timedelta(days=1))  # the unsent one's claim went stale; the sent one stays
    assert [c.id for c in later] == [claimed["p2^^^&1.2.3&ISO"].id]


def test_digest_failed_is_due_again_later(node: Node) -> None:
    inbox = node.inbox
    start = datetime.now(UTC)
    inbox.add([(new(), QUIET)], at=start)
    [claimed] = inbox.claim_due(now=start + timedelta(seconds=QUIET))
    inbox.digest_failed(claimed.id, "connection refused", retry_after=600)
    [(digest_id, _, _, due, _)] = pending(inbox)
    assert digest_id == claimed.id
    assert due >= start + timedelta(seconds=600)
    assert inbox.claim_due(now=start + timedelta(seconds=QUIET + 1)) == []  # released, but not due yet
    [retried] = inbox.claim_due(now=start + timedelta(seconds=700))
    assert retried.id == claimed.id


def test_digest_counts_distinct_documents(node: Node) -> None:
    inbox = node.inbox
    shared = document(b"the same document", unique_id="1.2.3.4.5")
    inbox.add([(new(documents=(shared, document(b"another"))), QUIET)], at=T0)
    inbox.add([(new(documents=(shared,)), QUIET)], at=T0 + timedelta(seconds=1))
    [claimed] = inbox.claim_due(now=T0 + timedelta(seconds=QUIET + 1))
    assert len(claimed.references) == 2
    assert claimed.documents == 2


def test_a_delivery_after_the_claim_opens_a_new_digest(node: Node) -> None:
    inbox = node.inbox
    first = inbox.add([(new(), QUIET)], at=T0)[0]
    now = T0 + timedelta(seconds=QUIET)
    [claimed] = inbox.claim_due(now=now)
    later = inbox.add([(new(), QUIET)], at=now + timedelta(seconds=1))[0]
    digests = pending(inbox)
    assert len(digests) == 2
    fresh = [p for p in digests if p[0] != claimed.id]
    assert len(fresh) == 1 and fresh[0][3] == now + timedelta(seconds=1 + QUIET)
    inbox.digest_sent(claimed.id, "mailed", at=now)
    [next_one] = inbox.claim_due(now=now + timedelta(seconds=1 + QUIET))
    assert next_one.references == (later.reference,)
    assert claimed.references == (first.reference,)


def test_no_quiet_period_means_no_digest(node: Node) -> None:
    [d] = node.inbox.add([(new(urgent=True), None)], at=T0)
    assert pending(node.inbox) == []
    assert node.inbox.claim_due(now=T0 + timedelta(days=1)) == []
    got = node.inbox.get(d.reference)
    assert got is not None and [e.status for e in got.history] == [NEW]


# --- content held by deliveries ------------------------------------------------------------------------------


def test_recorded_contents_of_open_and_accepted_deliveries_only(node: Node) -> None:
    inbox = node.inbox
    a, b, c = document(b"open"), document(b"accepted"), document(b"rejected")
    d_open, d_acc, d_rej = inbox.add(
        [
            (new(documents=(a,)), None),
            (new(documents=(b,), mailbox="general"), None),
            (new(documents=(c,), mailbox="cardiology"), None),
        ],
        at=T0,
    )
    inbox.set_status(d_acc.reference, ACCEPTED, "imported")
    inbox.set_status(d_rej.reference, REJECTED, "wrong patient")
    ask = {a.sha256, b.sha256, c.sha256, "0" * 64}
    assert inbox.recorded_contents(ask) == {a.sha256, b.sha256}
    assert inbox.recorded_contents(set()) == set()
    assert d_open.status == NEW


def test_rejected_content_still_held_by_another_delivery_is_recorded(node: Node) -> None:
    shared = document(b"shared")
    one, two = node.inbox.add(
        [(new(documents=(shared,)), None), (new(documents=(shared,), mailbox="general"), None)], at=T0
    )
    node.inbox.set_status(one.reference, REJECTED, "not ours")
    assert node.inbox.recorded_contents({shared.sha256}) == {shared.sha256}
    node.inbox.set_status(two.reference, REJECTED, "not ours either")
    assert node.inbox.recorded_contents({shared.sha256}) == set()


def test_node_recorded_contents_unions_the_repository(node: Node) -> None:
    patient = samples.patient("inbox-store")
    node.store.add_patient(str(patient))
    data = b"held by the repository"
    de = samples.document_entry(patient, content=data, repository_unique_id="")
    sub = samples.submission(patient, [de])
    staged = node.documents.stage_bytes([data])
    iti41.provide_and_register(
        ProvideAndRegisterRequest(submission=sub, documents=((de.id, staged),)), node.repository_context()
    )
    delivered = document(b"held by a delivery")
    node.inbox.add([(new(documents=(delivered,)), None)], at=T0)
    ask = {staged.sha256, delivered.sha256, "f" * 64}
    assert node.store.recorded_contents(ask) == {staged.sha256}
    assert node.inbox.recorded_contents(ask) == {delivered.sha256}
    assert node.recorded_contents(ask) == {staged.sha256, delivered.sha256}


def _stage_and_die(root: str, payloads: list[bytes]) -> None:
    """A worker that stages documents and dies without cleaning up (like kill -9)."""
    store = FileDocumentStore(Path(root))
    for data in payloads:
        store.stage_bytes([data])
    os._exit(0)


def test_crash_recovery_keeps_a_delivery_content(node: Node) -> None:
    kept, dropped = b"delivered before the crash", b"never committed"
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_stage_and_die, args=(str(node.documents.root), [kept, dropped]))
    proc.start()
    proc.join()
    assert proc.exitcode == 0
    node.inbox.add([(new(documents=(document(kept),)), QUIET)], at=T0)
    result = node.documents.recover(node.recorded_contents)
    assert (result.completed, result.removed) == (1, 1)
    assert node.documents.exists(hashlib.sha256(kept).hexdigest())
    assert b"".join(node.documents.chunks(hashlib.sha256(kept).hexdigest())) == kept
    assert not node.documents.exists(hashlib.sha256(dropped).hexdigest())
    leftovers = [p for p in node.documents.staging_root.rglob("*.part")]
    assert leftovers == []


def test_a_concurrent_identical_push_is_refused_by_the_index_and_becomes_a_resend(node: Node) -> None:
    from xds.recipient.model import AlreadyDelivered

    first = _new_for_race("1.2.3.4.5.77")
    node.inbox.add([(first, None)])
    with pytest.raises(AlreadyDelivered):  # what a second worker that planned before the first commit gets
        node.inbox.add([(first, None)])
    [only] = node.inbox.listing(status="all")
    node.inbox.set_status(only.reference, "rejected", "wrong patient")
    node.inbox.add([(first, None)])  # once rejected, the same push is a new delivery
    assert len(node.inbox.listing(status="all")) == 2


def _new_for_race(ss_uid: str) -> NewDelivery:
    return NewDelivery(
        mailbox="inbox",
        status="new",
        transport="xdr",
        sender="test",
        patient_id="p^^^&1.2.3&ISO",
        local_patient_id="p^^^&1.2.3&ISO",
        message="",
        urgent=False,
        submission_set_uid=ss_uid,
        recipients=(),
        metadata_xml=b"<x/>",
        documents=(),
    )
