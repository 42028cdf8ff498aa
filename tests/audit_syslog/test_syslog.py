"""The ITI-20 syslog forwarder against real receivers on 127.0.0.1: RFC 5425 over TLS (certificates from
``trustme``) and RFC 5426 over UDP. No network mocks: every byte goes through the loopback interface.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import trustme

from xds.audit.syslog import (
    BOM,
    MAX_UDP_PAYLOAD,
    Forwarder,
    Sender,
    TlsSender,
    UdpSender,
    client_ssl_context,
    format_message,
    frame,
)

WHEN = datetime(2026, 11, 25, 10, 20, 30, 123456, tzinfo=UTC)
WAIT = 5.0


def audit_xml(n: int) -> bytes:
    """A record with a newline and non-ASCII text, so framing cannot rely on either."""
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<AuditMessage n="{n}">Zoë\r\nMüller 12 </AuditMessage>'.encode()


def parse_frames(buf: bytes) -> tuple[list[bytes], bytes]:
    """RFC 5425 §4.3 ``MSG-LEN SP SYSLOG-MSG`` frames in ``buf``, and the incomplete rest."""
    messages = []
    while (sp := buf.find(b" ")) >= 0:
        digits = buf[:sp]
        assert digits.isdigit() and not digits.startswith(b"0"), buf[:20]
        end = sp + 1 + int(digits)
        if len(buf) < end:
            break
        messages.append(buf[sp + 1 : end])
        buf = buf[end:]
    return messages, buf


def parse_message(message: bytes) -> dict[str, bytes]:
    """The RFC 5424 fields of a SYSLOG-MSG whose STRUCTURED-DATA is ``-``."""
    keys = ("pri_version", "timestamp", "hostname", "app_name", "procid", "msgid", "sd", "msg")
    return dict(zip(keys, message.split(b" ", 7), strict=True))


def payload(message: bytes) -> bytes:
    msg = parse_message(message)["msg"]
    assert msg.startswith(BOM)
    return msg[len(BOM) :]


class MemoryOutbox:
    """The spool, in memory (the real one is a database table)."""

    def __init__(self) -> None:
        self.records: dict[int, bytes] = {}
        self.sent: set[int] = set()
        self.marks: list[list[int]] = []
        self._lock = threading.Lock()

    def add(self, *xmls: bytes) -> None:
        with self._lock:
            for xml in xmls:
                self.records[len(self.records) + 1] = xml

    def unsent(self, limit: int) -> list[tuple[int, bytes]]:
        with self._lock:
            return [(i, x) for i, x in sorted(self.records.items()) if i not in self.sent][:limit]

    def mark_sent(self, ids: Sequence[int]) -> None:
        with self._lock:
            assert not self.sent & set(ids), "marked twice"
            self.sent.update(ids)
            self.marks.append(list(ids))

    def pending(self) -> list[int]:
        return [i for i, _ in self.unsent(len(self.records))]


class TlsReceiver:
    """An RFC 5425 receiver: accepts TLS connections and collects octet-counted frames."""

    def __init__(self, ctx: ssl.SSLContext, port: int = 0) -> None:
        self._ctx = ctx
        self._listener = socket.create_server(("127.0.0.1", port))
        self._listener.settimeout(0.02)
        self.port: int = self._listener.getsockname()[1]
        self.messages: list[bytes] = []
        self.handshake_errors: list[OSError] = []
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            self._threads.append(thread)
            thread.start()
        self._listener.close()

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(WAIT)
        try:
            conn = self._ctx.wrap_socket(raw, server_side=True)
        except OSError as exc:
            raw.close()
            with self._cond:
                self.handshake_errors.append(exc)
                self._cond.notify_all()
            return
        with conn:
            conn.settimeout(0.02)
            buf = b""
            while not self._stopping.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                messages, buf = parse_frames(buf + data)
                with self._cond:
                    self.messages.extend(messages)
                    self._cond.notify_all()

    def wait_for(self, count: int) -> list[bytes]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.messages) >= count, WAIT)
            return list(self.messages)

    def wait_for_refusal(self) -> OSError:
        """The first failed handshake (the server thread may record it after the client gave up)."""
        with self._cond:
            self._cond.wait_for(lambda: self.handshake_errors, WAIT)
            return self.handshake_errors[0]

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(WAIT)


class UdpReceiver:
    """An RFC 5426 receiver: one SYSLOG-MSG per datagram."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.02)
        self.port: int = self._sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            with self._cond:
                self.datagrams.append(data)
                self._cond.notify_all()
        self._sock.close()

    def wait_for(self, count: int) -> list[bytes]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.datagrams) >= count, WAIT)
            return list(self.datagrams)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(WAIT)


# -- fixtures ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("127.0.0.1")


def server_context(cert: trustme.LeafCert, client_ca: trustme.CA | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    if client_ca is not None:
        client_ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


@pytest.fixture()
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture()
def receivers() -> Iterator[list[TlsReceiver | UdpReceiver]]:
    started: list[TlsReceiver | UdpReceiver] = []
    yield started
    for receiver in started:
        receiver.stop()


@pytest.fixture()
def senders() -> Iterator[list[Sender]]:
    made: list[Sender] = []
    yield made
    for sender in made:
        sender.close()


@pytest.fixture()
def tls_receiver(server_cert: trustme.LeafCert, receivers: list[TlsReceiver | UdpReceiver]) -> TlsReceiver:
    receiver = TlsReceiver(server_context(server_cert))
    receivers.append(receiver)
    return receiver


def tls_sender(port: int, ctx: ssl.SSLContext, senders: list[Sender]) -> TlsSender:
    sender = TlsSender("127.0.0.1", port, ssl_context=ctx, timeout=WAIT)
    senders.append(sender)
    return sender


# -- RFC 5424 message format -----------------------------------------------------------------------------------------


def test_format_message_fields() -> None:
    xml = audit_xml(1)
    message = format_message(xml, timestamp=WHEN, hostname="node1.example.org", procid="4711")
    assert parse_message(message) == {
        "pri_version": b"<85>1",
        "timestamp": b"2026-11-25T10:20:30.123456Z",
        "hostname": b"node1.example.org",
        "app_name": b"xds-node",
        "procid": b"4711",
        "msgid": b"IHE+RFC-3881",
        "sd": b"-",
        "msg": BOM + xml,
    }


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (WHEN, b"2026-11-25T10:20:30.123456Z"),
        (WHEN.replace(microsecond=0), b"2026-11-25T10:20:30.000000Z"),
        (WHEN.astimezone(timezone(timedelta(hours=2))), b"2026-11-25T12:20:30.123456+02:00"),
        (WHEN.astimezone(timezone(-timedelta(hours=5, minutes=30))), b"2026-11-25T04:50:30.123456-05:30"),
    ],
)
def test_timestamp_rfc3339_with_fraction_and_offset(when: datetime, expected: bytes) -> None:
    assert parse_message(format_message(b"<a/>", timestamp=when, hostname="h"))["timestamp"] == expected


def test_naive_timestamp_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        format_message(b"<a/>", timestamp=WHEN.replace(tzinfo=None), hostname="h")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hostname", "node 1"),
        ("hostname", "nöde"),
        ("hostname", "h" * 256),
        ("app_name", "a" * 49),
        ("procid", "p" * 129),
        ("msgid", "m" * 33),
        ("msgid", "tab\tid"),
    ],
)
def test_header_field_limits(field: str, value: str) -> None:
    fields = {"hostname": "h", field: value}
    with pytest.raises(ValueError, match="syslog"):
        format_message(b"<a/>", timestamp=WHEN, **fields)


def test_header_fields_at_their_limits_and_empty() -> None:
    message = format_message(b"<a/>", timestamp=WHEN, hostname="h" * 255, app_name="a" * 48, procid="p" * 128, msgid="")
    fields = parse_message(message)
    assert (len(fields["hostname"]), len(fields["app_name"]), len(fields["procid"])) == (255, 48, 128)
    assert fields["msgid"] == b"-"
    assert parse_message(format_message(b"<a/>", timestamp=WHEN, hostname=""))["hostname"] == b"-"


def test_bom_not_doubled_and_non_utf8_sent_as_msg_any() -> None:
    assert parse_message(format_message(BOM + b"<a/>", timestamp=WHEN, hostname="h"))["msg"] == BOM + b"<a/>"
    latin1 = "<a>Zoë</a>".encode("latin-1")
    assert parse_message(format_message(latin1, timestamp=WHEN, hostname="h"))["msg"] == latin1


# -- RFC 5425 framing ------------------------------------------------------------------------------------------------


def test_octet_counting_round_trip() -> None:
    messages = [
        format_message(audit_xml(1), timestamp=WHEN, hostname="h"),
        b"12 not a length\nsecond line",
        "äöü €".encode(),
        b"x",
    ]
    assert frame(messages[3]) == b"1 x"
    assert frame(messages[2]) == b"%d %b" % (len("äöü €".encode()), messages[2])
    stream = b"".join(frame(m) for m in messages)
    assert parse_frames(stream) == (messages, b"")
    # byte by byte, as a receiver may see the stream
    got, buf = [], b""
    for i in range(len(stream)):
        more, buf = parse_frames(buf + stream[i : i + 1])
        got.extend(more)
    assert (got, buf) == (messages, b"")


# -- delivery over TLS -----------------------------------------------------------------------------------------------


def test_every_record_delivered_once_and_marked(tls_receiver: TlsReceiver, ca_file: str, senders: list[Sender]) -> None:
    outbox = MemoryOutbox()
    outbox.add(*(audit_xml(n) for n in range(250)))
    sender = tls_sender(tls_receiver.port, client_ssl_context(ca_file), senders)
    forwarder = Forwarder(outbox, sender, hostname="node1", batch=100, clock=lambda: WHEN)

    assert forwarder.flush() == 250
    received = tls_receiver.wait_for(250)
    assert [payload(m) for m in received] == [audit_xml(n) for n in range(250)]
    assert [len(ids) for ids in outbox.marks] == [100, 100, 50]
    assert outbox.pending() == []
    assert forwarder.flush() == 0
    assert len(outbox.marks) == 3


def test_repository_down_then_back(
    server_cert: trustme.LeafCert,
    ca_file: str,
    receivers: list[TlsReceiver | UdpReceiver],
    senders: list[Sender],
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = TlsReceiver(server_context(server_cert))
    receivers.append(first)
    outbox = MemoryOutbox()
    sender = tls_sender(first.port, client_ssl_context(ca_file), senders)
    forwarder = Forwarder(outbox, sender, hostname="node1", batch=3)
    outbox.add(audit_xml(0))
    assert forwarder.flush() == 1
    first.wait_for(1)

    first.stop()  # closes the open connection too: the sender must notice, not write into it
    outbox.add(*(audit_xml(n) for n in range(1, 6)))
    with caplog.at_level(logging.WARNING, logger="xds.audit"):
        assert forwarder.flush() == 0
        outbox.add(audit_xml(6))
        assert forwarder.flush() == 0
    assert outbox.pending() == [2, 3, 4, 5, 6, 7]
    assert forwarder.failures == 2
    warnings = [r for r in caplog.records if r.name == "xds.audit" and r.levelno == logging.WARNING]
    assert len(warnings) == 1, "one warning per outage"
    assert "unreachable" in warnings[0].getMessage()

    second = TlsReceiver(server_context(server_cert), port=first.port)
    receivers.append(second)
    outbox.add(audit_xml(7))
    assert forwarder.flush() == 7
    assert [payload(m) for m in second.wait_for(7)] == [audit_xml(n) for n in range(1, 8)]
    assert outbox.pending() == []
    assert forwarder.failures == 0
    assert len(first.messages) == 1


def test_background_thread_delivers_after_wake(tls_receiver: TlsReceiver, ca_file: str) -> None:
    outbox = MemoryOutbox()
    sender = TlsSender("127.0.0.1", tls_receiver.port, ssl_context=client_ssl_context(ca_file))
    forwarder = Forwarder(outbox, sender, hostname="node1", idle=60.0)
    forwarder.start()
    try:
        outbox.add(audit_xml(1), audit_xml(2))
        forwarder.wake()
        assert [payload(m) for m in tls_receiver.wait_for(2)] == [audit_xml(1), audit_xml(2)]
        outbox.add(audit_xml(3))
        forwarder.wake()
        assert [payload(m) for m in tls_receiver.wait_for(3)][2] == audit_xml(3)
        with pytest.raises(RuntimeError):
            forwarder.start()
    finally:
        assert forwarder.stop(timeout=WAIT)
    assert outbox.pending() == []


def test_backoff_grows_is_capped_and_resets(
    server_cert: trustme.LeafCert, ca_file: str, receivers: list[TlsReceiver | UdpReceiver], senders: list[Sender]
) -> None:
    down = TlsReceiver(server_context(server_cert))
    down.stop()  # a port on which nobody listens (connection refused)
    outbox = MemoryOutbox()
    outbox.add(audit_xml(1))
    delays: list[float] = []

    def fake_sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 7:
            receivers.append(TlsReceiver(server_context(server_cert), port=down.port))
        if len(delays) == 9:
            forwarder.stop()

    sender = tls_sender(down.port, client_ssl_context(ca_file), senders)
    forwarder = Forwarder(outbox, sender, hostname="n", retry_initial=0.5, retry_max=6.0, idle=30.0, sleep=fake_sleep)
    forwarder.run()
    assert delays == [0.5, 1.0, 2.0, 4.0, 6.0, 6.0, 6.0, 30.0, 30.0]
    assert outbox.pending() == []


# -- TLS authentication ----------------------------------------------------------------------------------------------


def test_unknown_ca_refused(
    receivers: list[TlsReceiver | UdpReceiver], ca_file: str, senders: list[Sender], caplog: pytest.LogCaptureFixture
) -> None:
    stranger = TlsReceiver(server_context(trustme.CA().issue_cert("127.0.0.1")))
    receivers.append(stranger)
    outbox = MemoryOutbox()
    outbox.add(audit_xml(1))
    forwarder = Forwarder(outbox, tls_sender(stranger.port, client_ssl_context(ca_file), senders), hostname="n")
    with caplog.at_level(logging.WARNING, logger="xds.audit"):
        assert forwarder.flush() == 0
    assert outbox.pending() == [1]
    assert outbox.marks == []
    assert stranger.messages == []
    assert isinstance(stranger.wait_for_refusal(), ssl.SSLError)
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


@pytest.mark.parametrize("tls_version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_mutual_tls(
    tls_version: ssl.TLSVersion,
    ca: trustme.CA,
    server_cert: trustme.LeafCert,
    ca_file: str,
    tmp_path: Path,
    receivers: list[TlsReceiver | UdpReceiver],
    senders: list[Sender],
) -> None:
    client_ca = trustme.CA()
    ctx = server_context(server_cert, client_ca=client_ca)
    ctx.maximum_version = tls_version
    receiver = TlsReceiver(ctx)
    receivers.append(receiver)
    outbox = MemoryOutbox()
    outbox.add(audit_xml(1))

    anonymous = Forwarder(outbox, tls_sender(receiver.port, client_ssl_context(ca_file), senders), hostname="n")
    assert anonymous.flush() == 0, "the repository refused us: nothing may count as sent"
    assert outbox.pending() == [1]

    pem = tmp_path / "node.pem"
    client_ca.issue_cert("node1.example.org").private_key_and_cert_chain_pem.write_to_path(str(pem))
    authenticated = Forwarder(
        outbox, tls_sender(receiver.port, client_ssl_context(ca_file, str(pem)), senders), hostname="n"
    )
    assert authenticated.flush() == 1
    assert [payload(m) for m in receiver.wait_for(1)] == [audit_xml(1)]
    assert outbox.pending() == []
    assert isinstance(receiver.wait_for_refusal(), ssl.SSLError)
    assert len(receiver.handshake_errors) == 1


def test_client_context_requires_tls12(ca_file: str) -> None:
    ctx = client_ssl_context(ca_file)
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname


# -- UDP -------------------------------------------------------------------------------------------------------------


def test_udp_batch(receivers: list[TlsReceiver | UdpReceiver], senders: list[Sender]) -> None:
    receiver = UdpReceiver()
    receivers.append(receiver)
    outbox = MemoryOutbox()
    outbox.add(*(audit_xml(n) for n in range(20)))
    sender = UdpSender("127.0.0.1", receiver.port)
    senders.append(sender)
    assert Forwarder(outbox, sender, hostname="node1", batch=8).flush() == 20
    datagrams = receiver.wait_for(20)
    assert sorted(payload(d) for d in datagrams) == sorted(audit_xml(n) for n in range(20))
    assert all(parse_message(d)["pri_version"] == b"<85>1" for d in datagrams)
    assert outbox.pending() == []


def test_udp_oversize_refused_and_logged(
    receivers: list[TlsReceiver | UdpReceiver], senders: list[Sender], caplog: pytest.LogCaptureFixture
) -> None:
    receiver = UdpReceiver()
    receivers.append(receiver)
    header = len(format_message(b"", timestamp=WHEN, hostname="node1"))  # up to and including the BOM
    fits = b"<a>" + b"x" * (MAX_UDP_PAYLOAD - header - 7) + b"</a>"
    too_big = fits.replace(b"<a>", b"<ab>")
    outbox = MemoryOutbox()
    outbox.add(fits, too_big, audit_xml(3))
    sender = UdpSender("127.0.0.1", receiver.port)
    senders.append(sender)
    forwarder = Forwarder(outbox, sender, hostname="node1", clock=lambda: WHEN)
    with caplog.at_level(logging.ERROR, logger="xds.audit"):
        assert forwarder.flush() == 3
    datagrams = receiver.wait_for(2)
    assert [len(d) for d in datagrams] == [
        MAX_UDP_PAYLOAD,
        len(format_message(audit_xml(3), timestamp=WHEN, hostname="node1")),
    ]
    assert sender.refused == 1
    assert outbox.pending() == [], "refused for good: marked, so it cannot block the spool"
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        f"audit message of {MAX_UDP_PAYLOAD + 1} octets does not fit in a UDP datagram; not sent"
    ]


def test_forwarder_checks_its_settings() -> None:
    sender = UdpSender("127.0.0.1", 9)
    with pytest.raises(ValueError, match="HOSTNAME"):
        Forwarder(MemoryOutbox(), sender, hostname="node 1")
    with pytest.raises(ValueError, match="retry"):
        Forwarder(MemoryOutbox(), sender, hostname="n", retry_initial=5, retry_max=1)
