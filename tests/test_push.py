"""``xds push`` end to end: a second node receives by XDR or ITI-80; retries, XDM by e-mail, refusals, audits."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller

from tests.conftest import PG_ENV, pg_drop_schema, pg_schema_url
from tests.mail.conftest import Recorder, free_port
from tests.support import serving
from xds import samples
from xds.app import create_app
from xds.config import Settings
from xds.mail.messages import parse_message, zip_attachments
from xds.node import Node
from xds.push import DELIVERED, FAILED, MAILED, PushOrder, find_recipient, intended_recipient, push
from xds.recipient.addressing import IntendedRecipient, Mailbox
from xds.recipient.model import NEW, TRANSPORT_ITI80, TRANSPORT_XDR
from xds.xdm.reader import read_package

PATIENT = samples.patient("push-1")
RECEIVER_HOME = "urn:oid:1.3.6.1.4.1.21367.2017.2.6.42"
REPORT = b"radiology report for the receiving department\n"
LETTER = b"referral letter, second document\n"
XDM_EMAIL = "xdm@receiver.example.org"


@pytest.fixture
def receiver_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of the receiving node's own, on the same backend as the test's."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'receiver.sqlite3'}"
        return
    base = os.environ[PG_ENV]
    url, schema = pg_schema_url(base)
    try:
        yield url
    finally:
        pg_drop_schema(base, schema)


def open_receiver(settings: Settings, url: str, tmp_path: Path, *boxes: Mailbox) -> Node:
    receiver = Node.open(
        dataclasses.replace(
            settings,
            data_dir=str(tmp_path / "receiver"),
            database_url=url,
            home_community_id=RECEIVER_HOME,
            repository_unique_id="1.3.6.1.4.1.21367.2017.2.3.42",
            mailboxes=boxes,
        )
    )
    receiver.store.add_patient(str(PATIENT))
    return receiver


@pytest.fixture
def receiver(settings: Settings, receiver_url: str, tmp_path: Path) -> Iterator[Node]:
    boxes = (
        Mailbox(name="radiology", organisations=("00010990",), departments=("Radiologie",)),
        Mailbox(name="general", default=True),
    )
    n = open_receiver(settings, receiver_url, tmp_path, *boxes)
    yield n
    n.close()


@pytest.fixture
def strict_receiver(settings: Settings, receiver_url: str, tmp_path: Path) -> Iterator[Node]:
    """A receiver with no default mailbox: a push for nobody it knows is refused."""
    n = open_receiver(settings, receiver_url, tmp_path, Mailbox(name="cardiology", departments=("Cardiologie",)))
    yield n
    n.close()


@pytest.fixture
def relay() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port(), server_hostname="relay.test")
    controller.start()
    try:
        yield recorder, int(controller.port)
    finally:
        controller.stop()


def sender_node(settings: Settings, **changes: Any) -> Node:
    values: dict[str, Any] = {"push_retries": 2, "push_retry_delay": 0.25, "push_timeout": 10.0}
    values.update(changes)
    return Node.open(dataclasses.replace(settings, **values))


@pytest.fixture
def sender(settings: Settings) -> Iterator[Node]:
    n = sender_node(settings)
    yield n
    n.close()


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    report, letter = tmp_path / "report.txt", tmp_path / "letter.txt"
    report.write_bytes(REPORT)
    letter.write_bytes(LETTER)
    return [report, letter]


def order(files: list[Path], **changes: Any) -> PushOrder:
    values: dict[str, Any] = {
        "recipient": "receiver",
        "patient": PATIENT,
        "files": files,
        "department": "Radiologie",
        "organisation": "00010990",
        "person": "123456^Jansen^Piet",
        "comment": "graag beoordelen",
        "urgent": True,
        "title": "Verwijzing",
    }
    values.update(changes)
    return PushOrder(**values)


def add_entry(node: Node, **entry: str) -> None:
    assert node.store.add_community({"home_community_id": RECEIVER_HOME, "name": "receiver", **entry})


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/xdr/recipient"


def content_of(node: Node, sha256: str) -> bytes:
    return node.documents.path(sha256).read_bytes()


# -- delivered ------------------------------------------------------------------------------------------------


def test_push_by_xdr_is_delivered_to_the_addressed_mailbox(sender: Node, receiver: Node, files: list[Path]) -> None:
    with serving(create_app(receiver)) as base:
        add_entry(sender, push_url=f"{base}/xdr/recipient")
        sleeps = Sleeps()
        done = push(sender, order(files), sleep=sleeps)
    assert done.status == DELIVERED and done.transport == TRANSPORT_XDR, done.detail
    assert done.documents == 2 and done.recipient == "receiver" and done.patient_id == str(PATIENT)
    assert sleeps.calls == []
    assert [e.status for e in done.history] == ["sending", "attempt", DELIVERED]

    [d] = receiver.inbox.listing()
    assert d.mailbox == "radiology" and d.status == NEW and d.transport == TRANSPORT_XDR
    assert d.local_patient_id == str(PATIENT)
    assert d.message == "graag beoordelen" and d.urgent
    assert d.submission_set_uid == done.submission_set_uid
    [value] = d.recipients
    assert value == "Radiologie^^^^^^^^^00010990|123456^Jansen^Piet"
    parsed = IntendedRecipient.parse(value)
    assert parsed.organisation is not None and parsed.organisation.organization_name == "Radiologie"
    assert parsed.organisation.organization_identifier == "00010990"
    assert parsed.person is not None and parsed.person.id_number == "123456"
    assert parsed.person.family_name == "Jansen"
    assert sorted(content_of(receiver, x.sha256) for x in d.documents) == sorted([REPORT, LETTER])

    [record] = [r for r in sender.audit.listing() if r.event == "push ITI-41"]
    assert record.outcome == 0 and record.patient_id == str(PATIENT)


def test_routine_push_without_person_or_comment(sender: Node, receiver: Node, files: list[Path]) -> None:
    with serving(create_app(receiver)) as base:
        add_entry(sender, push_url=f"{base}/xdr/recipient")
        done = push(sender, order(files[:1], person="", comment="", urgent=False, department="", organisation=""))
    assert done.status == DELIVERED, done.detail
    [d] = receiver.inbox.listing()
    assert d.mailbox == "general" and not d.urgent and d.recipients == ()
    assert d.message == "Verwijzing"  # no comment: the title is the message


def test_push_by_iti80_to_a_responding_gateway(sender: Node, receiver: Node, files: list[Path]) -> None:
    with serving(create_app(receiver)) as base:
        add_entry(sender, push_url=f"{base}/xca/responding", push_transaction="ITI-80")
        done = push(sender, order(files), sleep=Sleeps())
    assert done.status == DELIVERED and done.transport == TRANSPORT_ITI80, done.detail
    [d] = receiver.inbox.listing()
    assert d.transport == TRANSPORT_ITI80 and d.mailbox == "radiology" and len(d.documents) == 2
    assert [r.event for r in sender.audit.listing()] == ["push ITI-80"]
    assert any(r.event == "ITI-80" for r in receiver.audit.listing())


# -- transport failures: retries, then XDM by e-mail ----------------------------------------------------------


def test_dead_endpoint_is_retried_then_mailed_as_xdm(
    settings: Settings, relay: tuple[Recorder, int], files: list[Path], tmp_path: Path
) -> None:
    recorder, port = relay
    smtp = {"host": "127.0.0.1", "port": port, "from_address": "xds@sender.example.org", "timeout": 10}
    node = sender_node(settings, push_retries=3, push_retry_delay=0.5, smtp=smtp)
    try:
        add_entry(node, push_url=dead_url(), xdm_email=XDM_EMAIL)
        sleeps = Sleeps()
        done = push(node, order(files), sleep=sleeps)
        audit = node.audit.listing()
    finally:
        node.close()
    assert done.status == MAILED and done.transport == "xdm-email", done.detail
    assert XDM_EMAIL in done.detail
    assert sleeps.calls == [0.5, 1.0, 1.5]  # a growing pause between the 4 attempts
    attempts = [e for e in done.history if e.status == "attempt"]
    assert len(attempts) == 4
    assert all("failed" in e.detail for e in attempts)
    assert [e.status for e in done.history] == ["sending", *["attempt"] * 4, MAILED]

    [mail] = recorder.mails
    assert mail.rcpt_tos == [XDM_EMAIL] and mail.mail_from == "xds@sender.example.org"
    message = parse_message(mail.content)
    assert message["Disposition-Notification-To"] == "xds@sender.example.org"
    assert done.reference in str(message["Subject"])
    [(name, data)] = zip_attachments(message, max_bytes=1 << 24)
    assert name == f"{done.reference}.zip"
    package = tmp_path / "received.zip"
    package.write_bytes(data)
    [subset] = read_package(package, tmp_path / "unpacked")
    assert subset.submission.submission_sets[0].unique_id == done.submission_set_uid
    assert sorted(p.read_bytes() for p in subset.documents.values()) == sorted([REPORT, LETTER])
    assert subset.submission.submission_sets[0].intended_recipients == (
        "Radiologie^^^^^^^^^00010990|123456^Jansen^Piet",
    )
    assert not list((Path(settings.data_dir) / "tmp").glob("push-*.zip"))  # the scratch package is gone
    assert [(r.event, r.outcome) for r in audit] == [("push ITI-32", 0)]


def test_entry_without_push_url_is_mailed_at_once(
    settings: Settings, relay: tuple[Recorder, int], files: list[Path]
) -> None:
    recorder, port = relay
    node = sender_node(settings, smtp={"host": "127.0.0.1", "port": port, "from_address": "xds@sender.example.org"})
    try:
        add_entry(node, xdm_email=XDM_EMAIL)
        sleeps = Sleeps()
        done = push(node, order(files), sleep=sleeps)
    finally:
        node.close()
    assert done.status == MAILED and "no push URL" in done.detail
    assert sleeps.calls == [] and len(recorder.mails) == 1


def test_dead_endpoint_without_xdm_email_fails(sender: Node, files: list[Path]) -> None:
    add_entry(sender, push_url=dead_url())
    sleeps = Sleeps()
    done = push(sender, order(files), sleep=sleeps)
    assert done.status == FAILED and "no XDM e-mail address" in done.detail
    assert sleeps.calls == [0.25, 0.5]
    assert len([e for e in done.history if e.status == "attempt"]) == 3
    assert [(r.event, r.outcome) for r in sender.audit.listing()] == [("push ITI-41", 8)]


def test_relay_down_after_dead_endpoint_fails_with_both_reasons(settings: Settings, files: list[Path]) -> None:
    node = sender_node(
        settings, push_retries=0, smtp={"host": "127.0.0.1", "port": free_port(), "from_address": "a@sender.org"}
    )
    try:
        add_entry(node, push_url=dead_url(), xdm_email=XDM_EMAIL)
        done = push(node, order(files), sleep=Sleeps())
        audit = node.audit.listing()
    finally:
        node.close()
    assert done.status == FAILED and done.transport == "xdm-email"
    assert "unreachable" in done.detail and "XDM by e-mail failed" in done.detail
    assert [(r.event, r.outcome) for r in audit] == [("push ITI-32", 8)]


# -- refusals ------------------------------------------------------------------------------------------------


def test_refusal_is_final_not_retried_and_not_mailed(
    settings: Settings, strict_receiver: Node, relay: tuple[Recorder, int], files: list[Path]
) -> None:
    recorder, port = relay
    node = sender_node(settings, smtp={"host": "127.0.0.1", "port": port, "from_address": "xds@sender.example.org"})
    try:
        with serving(create_app(strict_receiver)) as base:
            add_entry(node, push_url=f"{base}/xdr/recipient", xdm_email=XDM_EMAIL)
            sleeps = Sleeps()
            done = push(node, order(files), sleep=sleeps)
        audit = node.audit.listing()
    finally:
        node.close()
    assert done.status == FAILED, done.detail
    assert "refused by" in done.detail and "XDSRegistryMetadataError" in done.detail
    assert "no mailbox matches" in done.detail
    assert sleeps.calls == []
    assert [e.status for e in done.history] == ["sending", FAILED]
    assert recorder.mails == []
    assert strict_receiver.inbox.listing(status=None) == []
    assert [(r.event, r.outcome) for r in audit] == [("push ITI-41", 8)]


# -- the directory and the order ------------------------------------------------------------------------------


def test_unknown_recipient_is_a_key_error(sender: Node, files: list[Path]) -> None:
    with pytest.raises(KeyError, match="nobody"):
        push(sender, order(files, recipient="nobody"))
    assert sender.audit.listing() == []


def test_recipient_found_by_name_any_case_or_home_community_id(sender: Node) -> None:
    add_entry(sender, push_url="http://127.0.0.1:9/xdr/recipient")
    assert find_recipient(sender, "RECEIVER").home_community_id == RECEIVER_HOME
    assert find_recipient(sender, RECEIVER_HOME).name == "receiver"


def test_missing_file_and_no_files_are_refused(sender: Node, tmp_path: Path) -> None:
    add_entry(sender, push_url="http://127.0.0.1:9/xdr/recipient")
    with pytest.raises(ValueError, match="no such file"):
        push(sender, order([tmp_path / "absent.txt"]))
    with pytest.raises(ValueError, match="nothing to push"):
        push(sender, order([]))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, "Radiologie^^^^^^^^^00010990|123456^Jansen^Piet"),
        ({"person": "123456"}, "Radiologie^^^^^^^^^00010990|123456"),
        ({"person": ""}, "Radiologie^^^^^^^^^00010990"),
        ({"department": "", "organisation": ""}, "|123456^Jansen^Piet"),
        ({"department": "", "organisation": "", "person": ""}, ""),
    ],
)
def test_intended_recipient_values(changes: dict[str, str], expected: str, files: list[Path]) -> None:
    assert intended_recipient(order(files, **changes)) == expected


@pytest.mark.parametrize(
    "changes",
    [
        {"department": "Radiologie|123456", "organisation": "", "person": ""},
        {"organisation": "0001|0990"},
        {"person": "12|34"},
    ],
)
def test_separator_inside_a_part_is_refused(changes: dict[str, str], files: list[Path]) -> None:
    with pytest.raises(ValueError, match="HL7 separators are not allowed"):
        intended_recipient(order(files, **changes))


def test_push_records_are_listed(sender: Node, files: list[Path]) -> None:
    from xds.store.pushes import SqlPushes

    add_entry(sender, push_url=dead_url())
    first = push(sender, order(files), sleep=Sleeps())
    second = push(sender, order(files[:1]), sleep=Sleeps())
    listed = SqlPushes(sender.store).listing()
    assert [p.reference for p in listed] == [first.reference, second.reference]
    assert [p.documents for p in listed] == [2, 1]
    assert SqlPushes(sender.store).get("P-0000000000") is None


def test_an_untrusted_certificate_is_final_and_never_mailed(
    settings: Settings, relay: tuple[Recorder, int], receiver: Node, files: list[Path], tmp_path: Path
) -> None:
    recorder, port = relay
    ca = trustme.CA()  # not in the system's trust store, and not named in the entry's tls.ca_file
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    smtp = {"host": "127.0.0.1", "port": port, "from_address": "xds@sender.example.org", "timeout": 10}
    node = sender_node(settings, smtp=smtp)
    try:
        with serving(create_app(receiver), ssl_certfile=str(tmp_path / "server.pem")) as base:
            add_entry(node, push_url=f"{base}/xdr/recipient", xdm_email=XDM_EMAIL)
            sleeps = Sleeps()
            done = push(node, order(files), sleep=sleeps)
    finally:
        node.close()
    assert done.status == FAILED and "certificate was not accepted" in done.detail, done.detail
    assert sleeps.calls == [] and recorder.mails == []  # no retry, and above all no e-mail
    assert receiver.inbox.listing(status="all") == []
