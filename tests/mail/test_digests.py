"""Notification digests against a real SMTP server (aiosmtpd): quiet periods, urgency, failures and restarts."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from tests.mail.conftest import Server, free_port
from xds import samples
from xds.config import Settings
from xds.mail.digests import DigestSender
from xds.mail.messages import parse_message
from xds.mail.settings import SmtpSettings
from xds.model.messages import ProvideAndRegisterRequest
from xds.model.rim import Slot
from xds.node import Node
from xds.recipient import iti41
from xds.recipient.addressing import Mailbox
from xds.recipient.model import NEW, URGENT_SLOT, DeliveredDocument, Delivery, NewDelivery

NODE_NAME = "node.example.org"
FROM = "xds@node.example.org"
NOTIFY = ("secretariaat@example.org", "dienstdoende@example.org")
QUIET = 120.0
RETRY = 30.0
PATIENT = samples.patient("777001")
SENDER_PATIENT = "secret-4711^^^&1.2.3.4.5&ISO"


@pytest.fixture
def dnode(settings: Settings) -> Iterator[Node]:
    boxes = (
        Mailbox(name="radiology", default=True, notify=NOTIFY, quiet_period=QUIET),
        Mailbox(name="quiet", departments=("Archief",)),
    )
    n = Node.open(
        dataclasses.replace(
            settings, mailboxes=boxes, inbox_retry_seconds=RETRY, inbox_link_base="https://node.example.org/inbox/"
        )
    )
    n.store.add_patient(str(PATIENT))
    yield n
    n.close()


def smtp_for(port: int) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, from_address=FROM, timeout=5.0)


@pytest.fixture
def relay(smtp_server: Callable[..., Server]) -> Server:
    return smtp_server()


def sender(node: Node, port: int) -> DigestSender:
    return DigestSender(node, smtp_for(port), node_name=NODE_NAME)


def doc(unique_id: str) -> DeliveredDocument:
    return DeliveredDocument(
        entry_id=f"Document-{unique_id}", unique_id=unique_id, mime_type="text/plain", size=5, sha1="0", sha256="0"
    )


def add(
    node: Node,
    *unique_ids: str,
    at: datetime,
    mailbox: str = "radiology",
    urgent: bool = False,
    quiet: float | None = QUIET,
) -> Delivery:
    new = NewDelivery(
        mailbox=mailbox,
        status=NEW,
        transport="xdr",
        sender="http://sender.example.org",
        patient_id=SENDER_PATIENT,
        local_patient_id=str(PATIENT),
        message="graag beoordelen",
        urgent=urgent,
        submission_set_uid=samples.new_oid(),
        recipients=(),
        metadata_xml=b"<x/>",
        documents=tuple(doc(u) for u in unique_ids),
    )
    [stored] = node.inbox.add([(new, quiet)], at=at)
    return stored


def received(relay: Server) -> list[EmailMessage]:
    return [parse_message(m.content) for m in relay.recorder.mails]


def history(node: Node, reference: str) -> list[str]:
    found = node.inbox.get(reference)
    assert found is not None
    return [e.status for e in found.history]


def notifications(node: Node) -> list[tuple[str, int]]:
    return [(r.event, r.outcome) for r in node.audit.listing() if r.event == "notification"]


def test_digest_waits_for_the_quiet_period_then_mails_once(dnode: Node, relay: Server) -> None:
    t0 = datetime.now(UTC)
    first = add(dnode, "1.2.1", "1.2.2", at=t0)
    second = add(dnode, "1.2.2", "1.2.3", at=t0 + timedelta(seconds=60))  # restarts the quiet period
    digests = sender(dnode, relay.port)

    assert digests.run_once(now=t0 + timedelta(seconds=QUIET - 1)) == 0
    assert digests.run_once(now=t0 + timedelta(seconds=QUIET + 30)) == 0  # the second delivery moved it
    assert relay.recorder.mails == []

    assert digests.run_once(now=t0 + timedelta(seconds=60 + QUIET + 1)) == 1
    [mail] = relay.recorder.mails
    assert sorted(mail.rcpt_tos) == sorted(NOTIFY)
    [message] = received(relay)
    body = message.get_content()
    assert first.reference in body and second.reference in body
    assert "received 2 new deliveries (3 documents)" in body
    assert str(message["Subject"]) == "[xds] 2 new deliveries (3 documents) in mailbox radiology"
    assert "xds inbox list radiology" in body
    assert "Open them at: https://node.example.org/inbox" in body
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Importance"] is None
    raw = mail.content
    for secret in (str(PATIENT), "777001", "secret-4711", SENDER_PATIENT):
        assert secret.encode() not in raw, secret

    message_id = str(message["Message-ID"])
    assert message_id.startswith("<digest-") and message_id.endswith(f"@{NODE_NAME}>")
    digest_id = int(message_id[len("<digest-") : -len(f"@{NODE_NAME}>")])
    assert digest_id > 0

    assert dnode.inbox.pending_digests() == []
    assert history(dnode, first.reference) == [NEW, "notified"]
    assert history(dnode, second.reference) == [NEW, "notified"]
    assert notifications(dnode) == [("notification", 0)]

    # nothing is due any more, now or much later
    assert digests.run_once(now=t0 + timedelta(days=1)) == 0
    assert len(relay.recorder.mails) == 1


def test_the_message_id_is_fixed_per_digest(dnode: Node, relay: Server) -> None:
    t0 = datetime.now(UTC)
    add(dnode, "1.3.1", at=t0)
    [(digest_id, *_)] = dnode.inbox.pending_digests()
    assert sender(dnode, relay.port).run_once(now=t0 + timedelta(seconds=QUIET + 1)) == 1
    [message] = received(relay)
    assert message["Message-ID"] == f"<digest-{digest_id}@{NODE_NAME}>"


def test_single_delivery_digest_links_to_it(dnode: Node, relay: Server) -> None:
    t0 = datetime.now(UTC)
    d = add(dnode, "1.4.1", at=t0)
    assert sender(dnode, relay.port).run_once(now=t0 + timedelta(seconds=QUIET + 1)) == 1
    body = received(relay)[0].get_content()
    assert f"https://node.example.org/inbox/{d.reference}" in body
    assert f"xds inbox show {d.reference}" in body
    assert "1 new delivery (1 document)" in body


def test_urgent_delivery_is_due_at_once(dnode: Node, relay: Server) -> None:
    t0 = datetime.now(UTC)
    add(dnode, "1.5.1", at=t0)
    urgent = add(dnode, "1.5.2", at=t0 + timedelta(seconds=5), urgent=True)
    assert sender(dnode, relay.port).run_once(now=t0 + timedelta(seconds=5)) == 1
    [message] = received(relay)
    assert str(message["Subject"]).startswith("URGENT: ")
    assert message["Importance"] == "high" and message["X-Priority"] == "1"
    assert urgent.reference in message.get_content()


def test_routine_delivery_after_an_urgent_one_does_not_postpone_it(dnode: Node, relay: Server) -> None:
    t0 = datetime.now(UTC)
    add(dnode, "1.6.1", at=t0, urgent=True)
    add(dnode, "1.6.2", at=t0 + timedelta(seconds=2))
    assert sender(dnode, relay.port).run_once(now=t0 + timedelta(seconds=3)) == 1


def test_relay_down_releases_the_digest_until_the_retry_time(dnode: Node, relay: Server) -> None:
    t0 = datetime.now(UTC)
    d = add(dnode, "1.7.1", at=t0 - timedelta(seconds=QUIET + 1))
    down = sender(dnode, free_port())
    assert down.run_once(now=t0) == 0
    [(_, mailbox, _, due, urgent)] = dnode.inbox.pending_digests()
    assert mailbox == "radiology" and not urgent
    assert t0 + timedelta(seconds=RETRY - 5) <= due <= datetime.now(UTC) + timedelta(seconds=RETRY + 1)
    assert history(dnode, d.reference) == [NEW]
    assert notifications(dnode) == [("notification", 8)]

    up = sender(dnode, relay.port)
    assert up.run_once(now=t0 + timedelta(seconds=RETRY / 2)) == 0  # not due again yet
    assert relay.recorder.mails == []
    assert up.run_once(now=t0 + timedelta(seconds=RETRY + 5)) == 1  # the relay is back
    assert len(relay.recorder.mails) == 1
    assert dnode.inbox.pending_digests() == []
    assert history(dnode, d.reference) == [NEW, "notified"]
    assert notifications(dnode) == [("notification", 8), ("notification", 0)]


def test_a_restarted_sender_does_not_resend(dnode: Node, relay: Server, settings: Settings) -> None:
    t0 = datetime.now(UTC)
    add(dnode, "1.8.1", at=t0)
    assert sender(dnode, relay.port).run_once(now=t0 + timedelta(seconds=QUIET + 1)) == 1
    again = Node.open(dnode.settings)  # as after a restart: a new node and a new sender on the same database
    try:
        assert sender(again, relay.port).run_once(now=t0 + timedelta(seconds=QUIET + 600)) == 0
    finally:
        again.close()
    assert len(relay.recorder.mails) == 1


def test_pending_digest_survives_a_restart(dnode: Node, relay: Server) -> None:
    t0 = datetime.now(UTC)
    add(dnode, "1.9.1", at=t0)
    assert sender(dnode, relay.port).run_once(now=t0 + timedelta(seconds=1)) == 0
    again = Node.open(dnode.settings)
    try:
        assert sender(again, relay.port).run_once(now=t0 + timedelta(seconds=QUIET + 1)) == 1
    finally:
        again.close()


def test_claim_of_a_dead_sender_is_taken_again_when_stale(dnode: Node, relay: Server) -> None:
    t0 = datetime.now(UTC)
    add(dnode, "1.10.1", at=t0)
    due = t0 + timedelta(seconds=QUIET + 1)
    [claimed] = dnode.inbox.claim_due(now=due)  # a sender that claimed it and died before mailing
    assert claimed.references and claimed.documents == 1
    digests = sender(dnode, relay.port)
    assert digests.run_once(now=due + timedelta(seconds=60)) == 0
    assert digests.run_once(now=due + timedelta(seconds=301)) == 1
    assert len(relay.recorder.mails) == 1


def test_mailbox_without_notify_gets_no_digest(dnode: Node, relay: Server) -> None:
    ss = samples.submission_set(PATIENT)
    ss = dataclasses.replace(ss, intended_recipients=("Archief",))
    data = b"archive copy"
    de = dataclasses.replace(samples.document_entry(PATIENT, content=data), repository_unique_id="")
    req = ProvideAndRegisterRequest(
        submission=samples.submission(PATIENT, [de], ss=ss),
        documents=((de.id, dnode.documents.stage_bytes([data])),),
    )
    receipt = iti41.receive(req, dnode.recipient_context(), transport="xdr", sender="test")
    [d] = receipt.deliveries
    assert d.mailbox == "quiet"
    assert dnode.inbox.pending_digests() == []
    assert sender(dnode, relay.port).run_once(now=datetime.now(UTC) + timedelta(days=1)) == 0
    assert relay.recorder.mails == []
    assert history(dnode, d.reference) == [NEW]


def test_received_push_joins_a_digest_and_is_notified(dnode: Node, relay: Server) -> None:
    data = b"report"
    de = dataclasses.replace(samples.document_entry(PATIENT, content=data), repository_unique_id="")
    ss = dataclasses.replace(samples.submission_set(PATIENT), extra_slots=(Slot(name=URGENT_SLOT, values=("urgent",)),))
    req = ProvideAndRegisterRequest(
        submission=samples.submission(PATIENT, [de], ss=ss),
        documents=((de.id, dnode.documents.stage_bytes([data])),),
    )
    [d] = iti41.receive(req, dnode.recipient_context(), transport="xdr", sender="test").deliveries
    assert d.mailbox == "radiology" and d.urgent
    assert sender(dnode, relay.port).run_once() == 1  # urgent: due now
    assert history(dnode, d.reference) == [NEW, "notified"]
    assert d.reference in received(relay)[0].get_content()


def test_notify_removed_from_the_configuration_marks_the_digest_without_mail(dnode: Node, relay: Server) -> None:
    t0 = datetime.now(UTC)
    d = add(dnode, "1.11.1", at=t0)
    boxes = (Mailbox(name="radiology", default=True),)
    changed = Node.open(dataclasses.replace(dnode.settings, mailboxes=boxes))
    try:
        assert sender(changed, relay.port).run_once(now=t0 + timedelta(seconds=QUIET + 1)) == 0
    finally:
        changed.close()
    assert relay.recorder.mails == []
    assert dnode.inbox.pending_digests() == []
    found = dnode.inbox.get(d.reference)
    assert found is not None and "no notification address" in found.history[-1].detail


def test_an_unexpected_failure_releases_that_digest_and_the_others_still_go(
    dnode: Node, relay: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    t0 = datetime.now(UTC)
    first = add(dnode, "1.9.1", at=t0 - timedelta(seconds=QUIET + 2))
    stranger = NewDelivery(  # another patient: a digest of its own
        mailbox="radiology",
        status=NEW,
        transport="xdr",
        sender="http://sender.example.org",
        patient_id="other-1^^^&1.2.3.4.5&ISO",
        local_patient_id="",
        message="",
        urgent=False,
        submission_set_uid=samples.new_oid(),
        recipients=(),
        metadata_xml=b"<x/>",
        documents=(doc("1.9.2"),),
    )
    [second] = dnode.inbox.add([(stranger, QUIET)], at=t0 - timedelta(seconds=QUIET + 1))
    from xds.mail import digests as module

    real = module.digest_message
    calls: list[str] = []

    def flaky(**kw: object) -> EmailMessage:
        calls.append(str(kw["references"]))
        if len(calls) == 1:
            raise ValueError("no Message-ID can be formed")
        return real(**kw)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "digest_message", flaky)
    assert sender(dnode, relay.port).run_once(now=t0) == 1  # the first failed, the second still went
    assert len(relay.recorder.mails) == 1
    [(_, _, _, due, _)] = dnode.inbox.pending_digests()  # the failed one, released for a later pass
    assert due > t0
    failed = first if first.reference in calls[0] else second
    assert history(dnode, failed.reference) == [NEW]
    assert sender(dnode, relay.port).run_once(now=t0 + timedelta(seconds=RETRY + 5)) == 1
    assert len(relay.recorder.mails) == 2 and dnode.inbox.pending_digests() == []
