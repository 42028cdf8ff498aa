"""send_message against a real aiosmtpd relay on the loopback: plain, STARTTLS with AUTH, implicit TLS, failures."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from tests.mail.conftest import PASSWORD, USER, Server, authenticator
from xds.mail.send import MailError, send_message
from xds.mail.settings import SmtpSettings

FROM = "xds@node.example.org"


def note(to: str = "radiology@hospital.example.org", *, sender: str = "") -> EmailMessage:
    message = EmailMessage()
    if sender:
        message["From"] = sender
    message["To"] = to
    message["Subject"] = "[xds] 1 new delivery"
    message.set_content("D-1a2b3c\n")
    return message


def relay(port: int, **kwargs: object) -> SmtpSettings:
    values: dict[str, object] = {"host": "127.0.0.1", "port": port, "from_address": FROM, "timeout": 5.0}
    values.update(kwargs)
    return SmtpSettings(**values)  # type: ignore[arg-type]


def test_plain_send(smtp_server: Callable[..., Server]) -> None:
    server = smtp_server()
    send_message(relay(server.port), note())
    [mail] = server.recorder.mails
    assert mail.mail_from == FROM
    assert mail.rcpt_tos == ["radiology@hospital.example.org"]
    received = message_from_bytes(mail.content, policy=policy.default)
    assert received["Subject"] == "[xds] 1 new delivery"
    assert received.get_content().splitlines() == ["D-1a2b3c"]
    assert not mail.authenticated


def test_envelope_sender_is_the_messages_from(smtp_server: Callable[..., Server]) -> None:
    server = smtp_server()
    send_message(relay(server.port), note(sender="Radiology <mailer@hospital.example.org>"))
    assert server.recorder.mails[0].mail_from == "mailer@hospital.example.org"


def test_starttls_with_auth(smtp_server: Callable[..., Server], server_context: ssl.SSLContext, ca_file: str) -> None:
    server = smtp_server(
        tls_context=server_context, require_starttls=True, authenticator=authenticator, auth_required=True
    )
    settings = relay(server.port, security="starttls", ca_file=ca_file, username=USER, password=PASSWORD)
    send_message(settings, note())
    [mail] = server.recorder.mails
    assert mail.authenticated
    assert mail.rcpt_tos == ["radiology@hospital.example.org"]


def test_starttls_wrong_password(
    smtp_server: Callable[..., Server], server_context: ssl.SSLContext, ca_file: str
) -> None:
    server = smtp_server(tls_context=server_context, authenticator=authenticator, auth_required=True)
    settings = relay(server.port, security="starttls", ca_file=ca_file, username=USER, password="wrong")
    with pytest.raises(MailError, match=rf"127\.0\.0\.1:{server.port}: send failed: 535"):
        send_message(settings, note())
    assert server.recorder.mails == []


def test_starttls_untrusted_certificate(smtp_server: Callable[..., Server], server_context: ssl.SSLContext) -> None:
    server = smtp_server(tls_context=server_context, require_starttls=True)
    with pytest.raises(MailError, match=rf"127\.0\.0\.1:{server.port}: connect \(starttls\) failed: .*certificate"):
        send_message(relay(server.port, security="starttls"), note())  # system CAs do not know trustme's
    assert server.recorder.mails == []


def test_starttls_not_offered(smtp_server: Callable[..., Server], ca_file: str) -> None:
    server = smtp_server()
    with pytest.raises(MailError, match="STARTTLS extension not supported"):
        send_message(relay(server.port, security="starttls", ca_file=ca_file), note())
    assert server.recorder.mails == []


def test_implicit_tls(smtp_server: Callable[..., Server], server_context: ssl.SSLContext, ca_file: str) -> None:
    server = smtp_server(ssl_context=server_context)
    send_message(relay(server.port, security="tls", ca_file=ca_file), note())
    assert len(server.recorder.mails) == 1


def test_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(MailError, match=rf"SMTP relay 127\.0\.0\.1:{port}: connect \(none\) failed"):
            send_message(relay(port), note())


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) but never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_timeout(silent_port: int) -> None:
    with pytest.raises(MailError, match=rf"127\.0\.0\.1:{silent_port}: connect \(none\) failed: .*timed out"):
        send_message(relay(silent_port, timeout=0.3), note())


def test_recipient_refused(smtp_server: Callable[..., Server]) -> None:
    server = smtp_server(refuse=frozenset({"nobody@hospital.example.org"}))
    with pytest.raises(MailError, match=r"recipients refused: nobody@hospital\.example\.org \(550 5\.1\.1 no such"):
        send_message(relay(server.port), note("nobody@hospital.example.org"))
    assert server.recorder.mails == []


def test_one_recipient_refused_is_an_error(smtp_server: Callable[..., Server]) -> None:
    server = smtp_server(refuse=frozenset({"nobody@hospital.example.org"}))
    message = note("radiology@hospital.example.org, nobody@hospital.example.org")
    with pytest.raises(MailError, match=r"nobody@hospital\.example\.org"):
        send_message(relay(server.port), message)
    assert server.recorder.mails[0].rcpt_tos == ["radiology@hospital.example.org"]


def test_not_configured() -> None:
    with pytest.raises(MailError, match="not configured"):
        send_message(SmtpSettings(), note())
