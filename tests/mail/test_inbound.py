"""XDM by e-mail into a node: the node's SMTP listener (xdm_listener) with a real relay (aiosmtpd) for the MDNs."""

from __future__ import annotations

import dataclasses
import re
import smtplib
import zipfile
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.mail.conftest import Server
from xds import samples
from xds.config import Settings
from xds.ebrim.messages import render_submit_objects_request
from xds.mail.inbound import xdm_listener
from xds.mail.listener import XdmListener
from xds.mail.messages import parse_message, xdm_message
from xds.mail.settings import SmtpSettings
from xds.node import Node
from xds.recipient.addressing import Mailbox
from xds.recipient.model import NEW, TRANSPORT_XDM_EMAIL
from xds.xdm.writer import write_package

NODE_FROM = "xds@node.example.org"
SENDER = "gp@practice.example.org"
RADIOLOGY = "xdm-radiology@node.example.org"
CARDIOLOGY = "xdm-cardiology@node.example.org"
PATIENT = samples.patient("mail-1")
DOCUMENT = b"discharge letter sent by e-mail\n"


@pytest.fixture
def mnode(settings: Settings) -> Iterator[Node]:
    boxes = (
        Mailbox(name="radiology", default=True, xdm_addresses=(RADIOLOGY,)),
        Mailbox(name="cardiology", departments=("Cardiologie",), xdm_addresses=(CARDIOLOGY,)),
    )
    n = Node.open(dataclasses.replace(settings, mailboxes=boxes, smtp_listener_port=0))
    n.store.add_patient(str(PATIENT))
    yield n
    n.close()


@pytest.fixture
def relay(smtp_server: Callable[..., Server]) -> Server:
    return smtp_server()


@pytest.fixture
def listener(mnode: Node, relay: Server) -> Iterator[XdmListener]:
    lst = xdm_listener(mnode, SmtpSettings(host="127.0.0.1", port=relay.port, from_address=NODE_FROM, timeout=5))
    lst.start()
    assert lst.port > 0
    yield lst
    lst.stop()


def package(tmp_path: Path, name: str = "package.zip") -> tuple[Path, str]:
    """An XDM package with one document; its path and SubmissionSet uniqueId."""
    de = dataclasses.replace(samples.document_entry(PATIENT, content=DOCUMENT), repository_unique_id="")
    sub = samples.submission(PATIENT, [de])
    path = tmp_path / name
    write_package(path, [(sub, {de.id: DOCUMENT})], author_text="Huisartsenpraktijk")
    return path, sub.submission_sets[0].unique_id


def mail_with(tmp_path: Path, zip_path: Path | None, *, to: str = RADIOLOGY) -> EmailMessage:
    if zip_path is None:
        message = EmailMessage()
        message["From"] = SENDER
        message["To"] = to
        message["Subject"] = "no package"
        message["Message-ID"] = "<no-zip@practice.example.org>"
        message["Disposition-Notification-To"] = SENDER
        message.set_content("the package is missing\n")
        return message
    return xdm_message(
        from_address=SENDER, to=to, subject="XDM package", body="see the package\n", zip_path=zip_path,
        filename=zip_path.name,
    )  # fmt: skip


def send(port: int, message: EmailMessage, *, to: str = RADIOLOGY) -> tuple[int, int]:
    """The replies to RCPT TO and to DATA (0 when DATA was not reached)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        client.mail(SENDER)
        rcpt, _ = client.rcpt(to)
        if rcpt != 250:
            return rcpt, 0
        data, _ = client.data(message.as_bytes(policy=policy.SMTP))  # CRLF line ends, as on the wire
        return rcpt, data


def mdn_text(relay: Server) -> list[str]:
    """Each MDN the relay got, as unfolded text."""
    return [re.sub(r"\r?\n[ \t]+", " ", m.content.decode("utf-8", "replace")) for m in relay.recorder.mails]


def scratch_is_clean(node: Node) -> bool:
    tmp = node.settings.data_path / "tmp"
    return not tmp.exists() or not any(tmp.iterdir())


def test_xdm_mail_becomes_a_delivery_and_is_answered_with_a_processed_mdn(
    mnode: Node, listener: XdmListener, relay: Server, tmp_path: Path
) -> None:
    zip_path, ss_uid = package(tmp_path)
    message = mail_with(tmp_path, zip_path)
    assert send(listener.port, message) == (250, 250)

    [d] = mnode.inbox.listing()
    assert d.mailbox == "radiology" and d.transport == TRANSPORT_XDM_EMAIL and d.status == NEW
    assert d.submission_set_uid == ss_uid and d.local_patient_id == str(PATIENT)
    assert SENDER in d.sender
    [doc] = d.documents
    assert mnode.documents.path(doc.sha256).read_bytes() == DOCUMENT

    [mail] = relay.recorder.mails
    assert mail.rcpt_tos == [SENDER]
    mdn = parse_message(mail.content)
    assert mdn.get_content_type() == "multipart/report"
    assert mdn["In-Reply-To"] == message["Message-ID"]
    [text] = mdn_text(relay)
    assert "Disposition: automatic-action/MDN-sent-automatically; processed" in text
    assert "processed/error" not in text
    assert f"delivered as {d.reference}" in text
    assert f"Final-Recipient: rfc822; {RADIOLOGY}" in text
    assert scratch_is_clean(mnode)


def test_the_address_chooses_the_mailbox(mnode: Node, listener: XdmListener, tmp_path: Path) -> None:
    zip_path, _ = package(tmp_path)
    assert send(listener.port, mail_with(tmp_path, zip_path, to=CARDIOLOGY), to=CARDIOLOGY) == (250, 250)
    [d] = mnode.inbox.listing()
    assert d.mailbox == "cardiology"


def test_mail_without_a_zip_gets_a_failed_mdn(
    mnode: Node, listener: XdmListener, relay: Server, tmp_path: Path
) -> None:
    assert send(listener.port, mail_with(tmp_path, None)) == (250, 250)
    assert mnode.inbox.listing(status=None) == []
    [text] = mdn_text(relay)
    assert "processed/error" in text
    assert "Error: the message carries no XDM package" in text


def test_hostile_zip_is_refused_and_nothing_is_written_outside(
    mnode: Node, listener: XdmListener, relay: Server, tmp_path: Path
) -> None:
    good, _ = package(tmp_path, "good.zip")
    hostile = tmp_path / "outbox" / "hostile.zip"
    hostile.parent.mkdir()
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(hostile, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("../evil.txt", b"written outside")
        dst.writestr("IHE_XDM/SUBSET01/../../../evil.txt", b"written outside")
    assert send(listener.port, mail_with(tmp_path, hostile)) == (250, 250)
    assert mnode.inbox.listing(status=None) == []
    [text] = mdn_text(relay)
    assert "processed/error" in text
    assert "hostile.zip" in text and "zip slip" in text
    assert not [p for p in tmp_path.rglob("evil.txt")]
    assert not (tmp_path.parent / "evil.txt").exists()
    assert scratch_is_clean(mnode)
    [audit] = [r for r in mnode.audit.listing() if r.event == "ITI-32"]
    assert audit.outcome == 8


def test_unknown_address_is_refused_at_rcpt(mnode: Node, listener: XdmListener, relay: Server, tmp_path: Path) -> None:
    zip_path, _ = package(tmp_path)
    assert send(listener.port, mail_with(tmp_path, zip_path), to="nobody@node.example.org") == (550, 0)
    assert mnode.inbox.listing(status=None) == []
    assert relay.recorder.mails == []


def test_the_same_mail_twice_is_one_delivery(mnode: Node, listener: XdmListener, relay: Server, tmp_path: Path) -> None:
    zip_path, _ = package(tmp_path)
    message = mail_with(tmp_path, zip_path)
    assert send(listener.port, message) == (250, 250)
    assert send(listener.port, message) == (250, 250)
    [d] = mnode.inbox.listing(status=None)
    assert len(relay.recorder.mails) == 2
    first, second = mdn_text(relay)
    assert f"delivered as {d.reference}" in first
    assert "processed/error" not in second and "(delivered before)" in second
    full = mnode.inbox.get(d.reference)
    assert full is not None and [e.status for e in full.history] == [NEW, "re-sent"]


def test_failure_of_the_node_answers_451_without_mdn(
    mnode: Node, listener: XdmListener, relay: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> list[object]:
        raise RuntimeError("database is down")

    monkeypatch.setattr("xds.mail.inbound.import_xdm", broken)
    zip_path, _ = package(tmp_path)
    assert send(listener.port, mail_with(tmp_path, zip_path)) == (250, 451)
    assert relay.recorder.mails == []
    assert scratch_is_clean(mnode)


def test_metadata_of_the_received_delivery_is_the_packages(mnode: Node, listener: XdmListener, tmp_path: Path) -> None:
    de = dataclasses.replace(samples.document_entry(PATIENT, content=DOCUMENT), repository_unique_id="")
    sub = samples.submission(PATIENT, [de])
    zip_path = tmp_path / "meta.zip"
    write_package(zip_path, [(sub, {de.id: DOCUMENT})])
    assert send(listener.port, mail_with(tmp_path, zip_path)) == (250, 250)
    [d] = mnode.inbox.listing()
    assert de.unique_id.encode() in mnode.inbox.metadata(d.reference)
    assert render_submit_objects_request(sub)  # the package's metadata renders (sanity of the fixture)
