"""XdmListener on the loopback, driven by a real ``smtplib`` client: replies, deliveries and MDNs."""

from __future__ import annotations

import smtplib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.mail.conftest import Server
from xds.mail.listener import Received, XdmListener
from xds.mail.messages import parse_message, xdm_message, zip_attachments
from xds.mail.send import send_message
from xds.mail.settings import SmtpSettings

NODE_FROM = "xds@node.example.org"
SENDER = "gp@practice.example.org"
INBOX = "radiology@node.example.org"
UNKNOWN = "nobody@node.example.org"


@dataclass
class Node:
    """The node's side: which mailboxes exist, what ``deliver`` does, what it got, and the MDNs."""

    outcome: Callable[[Received], str] = lambda received: "D-1a2b3c"
    received: list[Received] = field(default_factory=list)
    mdns: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepts(self, address: str) -> bool:
        return address.lower() == INBOX

    def deliver(self, received: Received) -> str:
        with self.lock:
            self.received.append(received)
        return self.outcome(received)

    def notify(self, mdn: EmailMessage) -> None:
        with self.lock:
            self.mdns.append(mdn)


@pytest.fixture
def listeners() -> Iterator[list[XdmListener]]:
    started: list[XdmListener] = []
    yield started
    for listener in started:
        listener.stop()


@pytest.fixture
def node() -> Node:
    return Node()


def serve(listeners: list[XdmListener], node: Node, **kwargs: object) -> XdmListener:
    options: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "accepts": node.accepts,
        "deliver": node.deliver,
        "notify": node.notify,
        "from_address": NODE_FROM,
    }
    options.update(kwargs)
    listener = XdmListener(**options)  # type: ignore[arg-type]
    listener.start()
    listeners.append(listener)
    return listener


def package(tmp_path: Path, *, request_mdn: bool = True) -> EmailMessage:
    (tmp_path / "package.zip").write_bytes(b"PK\x03\x04 not really a zip")
    return xdm_message(
        from_address=SENDER,
        to=INBOX,
        subject="XDM package",
        body="XDM package attached.\n",
        zip_path=tmp_path / "package.zip",
        filename="package.zip",
        request_mdn=request_mdn,
        message_id="xdm-1@practice.example.org",
    )


def client(listener: XdmListener) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", listener.port, timeout=10)


def mdn_fields(mdn: EmailMessage) -> EmailMessage:
    report = list(mdn.iter_parts())[1]
    fields = report.get_payload(0)
    assert isinstance(fields, EmailMessage)
    return fields


def test_delivers_and_sends_processed_mdn(listeners: list[XdmListener], node: Node, tmp_path: Path) -> None:
    listener = serve(listeners, node)
    assert listener.port > 0
    with client(listener) as smtp:
        refused = smtp.send_message(package(tmp_path))
    assert refused == {}
    [received] = node.received
    assert (received.sender, received.recipient) == (SENDER, INBOX)
    assert received.message["Message-ID"] == "<xdm-1@practice.example.org>"
    assert zip_attachments(received.message, max_bytes=1000) == [("package.zip", b"PK\x03\x04 not really a zip")]
    [mdn] = node.mdns
    assert mdn["To"] == SENDER and mdn["From"] == NODE_FROM
    fields = mdn_fields(mdn)
    assert fields["Disposition"] == "automatic-action/MDN-sent-automatically; processed"
    assert fields["Final-Recipient"] == f"rfc822; {INBOX}"
    assert fields["Original-Message-ID"] == "<xdm-1@practice.example.org>"
    text = mdn.get_body(("plain",))
    assert text is not None and "delivered as D-1a2b3c" in text.get_content()


def test_mdn_travels_through_a_relay(
    listeners: list[XdmListener], node: Node, tmp_path: Path, smtp_server: Callable[..., Server]
) -> None:
    relay = smtp_server()
    settings = SmtpSettings(host="127.0.0.1", port=relay.port, from_address=NODE_FROM, timeout=5.0)
    listener = serve(listeners, node, notify=lambda mdn: send_message(settings, mdn))
    with client(listener) as smtp:
        smtp.send_message(package(tmp_path))
    [mail] = relay.recorder.mails
    assert (mail.mail_from, mail.rcpt_tos) == (NODE_FROM, [SENDER])
    mdn = parse_message(mail.content)
    assert mdn.get_content_type() == "multipart/report"
    assert mdn_fields(mdn)["Disposition"] == "automatic-action/MDN-sent-automatically; processed"


def test_unknown_mailbox_gets_550(listeners: list[XdmListener], node: Node) -> None:
    listener = serve(listeners, node)
    with client(listener) as smtp:
        smtp.ehlo()
        smtp.mail(SENDER)
        assert smtp.rcpt(UNKNOWN) == (550, b"5.1.1 mailbox unavailable")
        assert smtp.rcpt(INBOX)[0] == 250


def test_only_accepted_recipients_are_delivered(listeners: list[XdmListener], node: Node, tmp_path: Path) -> None:
    listener = serve(listeners, node)
    message = package(tmp_path)
    with client(listener) as smtp:
        refused = smtp.send_message(message, to_addrs=[INBOX, UNKNOWN])
    assert refused == {UNKNOWN: (550, b"5.1.1 mailbox unavailable")}
    assert [received.recipient for received in node.received] == [INBOX]
    assert len(node.mdns) == 1


def test_refused_package_gets_250_and_failed_mdn(listeners: list[XdmListener], node: Node, tmp_path: Path) -> None:
    def refuse(received: Received) -> str:
        raise ValueError("not an XDM package: no IHE_XDM folder")

    node.outcome = refuse
    listener = serve(listeners, node)
    with client(listener) as smtp:
        assert smtp.send_message(package(tmp_path)) == {}
    [mdn] = node.mdns
    fields = mdn_fields(mdn)
    assert fields["Disposition"] == "automatic-action/MDN-sent-automatically; processed/error"
    assert fields["Error"] == "not an XDM package: no IHE_XDM folder"


def test_temporary_failure_gets_451(listeners: list[XdmListener], node: Node, tmp_path: Path) -> None:
    def fail(received: Received) -> str:
        raise RuntimeError("database is down")

    node.outcome = fail
    listener = serve(listeners, node)
    with client(listener) as smtp, pytest.raises(smtplib.SMTPDataError) as caught:
        smtp.send_message(package(tmp_path))
    assert caught.value.smtp_code == 451
    assert "4.3.0" in str(caught.value.smtp_error)  # bytes at run time
    assert node.mdns == []


def test_failing_mailbox_check_gets_451(listeners: list[XdmListener], node: Node) -> None:
    def broken(address: str) -> bool:
        raise RuntimeError("database is down")

    listener = serve(listeners, node, accepts=broken)
    with client(listener) as smtp:
        smtp.ehlo()
        smtp.mail(SENDER)
        assert smtp.rcpt(INBOX)[0] == 451


def test_oversize_data_gets_552(listeners: list[XdmListener], node: Node) -> None:
    listener = serve(listeners, node, max_message_bytes=1000)
    with client(listener) as smtp:
        smtp.ehlo()
        assert smtp.mail(SENDER)[0] == 250  # no SIZE declared: the limit bites at DATA
        assert smtp.rcpt(INBOX)[0] == 250
        code, _ = smtp.data(b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n" * 20 + (b"y" * 70 + b"\r\n") * 20)
    assert code == 552
    assert node.received == []


def test_declared_oversize_gets_552(listeners: list[XdmListener], node: Node, tmp_path: Path) -> None:
    listener = serve(listeners, node, max_message_bytes=100)
    with client(listener) as smtp, pytest.raises(smtplib.SMTPSenderRefused) as caught:
        smtp.send_message(package(tmp_path))  # smtplib declares SIZE=..., refused at MAIL FROM
    assert caught.value.smtp_code == 552
    assert node.received == []


def test_no_mdn_unless_requested(listeners: list[XdmListener], node: Node, tmp_path: Path) -> None:
    listener = serve(listeners, node)
    with client(listener) as smtp:
        smtp.send_message(package(tmp_path, request_mdn=False))
    assert len(node.received) == 1
    assert node.mdns == []


def test_failing_notify_still_accepts(listeners: list[XdmListener], node: Node, tmp_path: Path) -> None:
    def broken(mdn: EmailMessage) -> None:
        raise OSError("relay down")

    listener = serve(listeners, node, notify=broken)
    with client(listener) as smtp:
        assert smtp.send_message(package(tmp_path)) == {}
    assert len(node.received) == 1


def test_no_mdn_for_an_mdn(listeners: list[XdmListener], node: Node, tmp_path: Path) -> None:
    listener = serve(listeners, node)
    with client(listener) as smtp:
        smtp.send_message(package(tmp_path))
        [mdn] = node.mdns
        del mdn["Disposition-Notification-To"]
        mdn["Disposition-Notification-To"] = NODE_FROM  # a hostile MDN that asks for an MDN
        smtp.send_message(mdn, to_addrs=[INBOX])
    assert len(node.received) == 2
    assert len(node.mdns) == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\xff\xfe garbage without headers\r\n",
        b'Content-Type: multipart/mixed; boundary="b"\r\nDisposition-Notification-To: <<<@@@\r\n\r\n--b\r\n',
        b"From: \r\nDisposition-Notification-To: \r\nContent-Type: application/zip\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n",
    ],
)
def test_malformed_mail_does_not_crash(listeners: list[XdmListener], node: Node, raw: bytes) -> None:
    listener = serve(listeners, node)
    with client(listener) as smtp:
        assert smtp.sendmail(SENDER, [INBOX], raw) == {}
        assert smtp.noop()[0] == 250  # the session is still alive
    assert len(node.received) == 1


def test_stop_is_idempotent(node: Node) -> None:
    listener = XdmListener(
        host="127.0.0.1", port=0, accepts=node.accepts, deliver=node.deliver, notify=None, from_address=NODE_FROM
    )
    assert listener.port == 0
    listener.stop()
    listener.start()
    with pytest.raises(RuntimeError, match="already running"):
        listener.start()
    listener.stop()
    listener.stop()


def test_no_mdn_to_an_address_other_than_the_envelope_sender(
    listeners: list[XdmListener], node: Node, tmp_path: Path
) -> None:
    listener = serve(listeners, node)
    message = package(tmp_path)
    message.replace_header("Disposition-Notification-To", "victim@elsewhere.example.org")
    with client(listener) as smtp:
        assert smtp.send_message(message, from_addr=SENDER) == {}
    assert len(node.received) == 1 and node.mdns == []


def test_recipients_are_capped_and_repeats_delivered_once(listeners: list[XdmListener], node: Node) -> None:
    listener = serve(listeners, node, accepts=lambda address: address.lower().endswith("@node.example.org"))
    with client(listener) as smtp:
        smtp.ehlo()
        assert smtp.mail(SENDER)[0] == 250
        for n in range(10):
            assert smtp.rcpt(f"box{n}@node.example.org")[0] == 250
        assert smtp.rcpt("BOX0@node.example.org")[0] == 250  # the same address again: not counted twice
        assert smtp.rcpt("box10@node.example.org")[0] == 452
        assert smtp.data(b"Subject: x\r\n\r\nno package\r\n")[0] == 250
    assert len(node.received) == 10
