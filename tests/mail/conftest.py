"""A real SMTP server for the mail tests: aiosmtpd on 127.0.0.1, with a handler that keeps what it received.

``smtp_server(**kwargs)`` starts one (``kwargs`` go to aiosmtpd's ``Controller``: ``tls_context``,
``ssl_context``, ``authenticator``, ``require_starttls``, ...) and the fixture stops every server it started.
Certificates come from ``trustme``: a CA per module and a leaf for ``127.0.0.1``.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USER = "relay-user"
PASSWORD = "relay-secret"


@dataclass
class Received:
    """One mail as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    authenticated: bool


@dataclass
class Recorder:
    """aiosmtpd handler: refuses the addresses in ``refuse`` at RCPT TO and keeps every mail."""

    refuse: frozenset[str] = frozenset()
    mails: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content
        assert isinstance(content, bytes)
        self.mails.append(
            Received(envelope.mail_from or "", list(envelope.rcpt_tos), content, bool(session.authenticated))
        )
        return "250 OK"


@dataclass
class Server:
    controller: Controller
    recorder: Recorder

    @property
    def port(self) -> int:
        return int(self.controller.port)


def free_port() -> int:
    """A port nothing listens on right now (aiosmtpd's Controller cannot serve on port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == USER.encode() and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., Server]]:
    started: list[Controller] = []

    def start(refuse: frozenset[str] = frozenset(), **kwargs: Any) -> Server:
        recorder = Recorder(refuse=refuse)
        controller = Controller(
            recorder, hostname="127.0.0.1", port=free_port(), server_hostname="relay.test", **kwargs
        )
        controller.start()
        started.append(controller)
        return Server(controller, recorder)

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)
