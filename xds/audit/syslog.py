"""ITI-20 Record Audit Event (ITI TF-2 §3.20), Secure Node side: the syslog forwarder from the audit spool.

Theory of operation
-------------------
Every transaction writes its audit record (a DICOM PS3.15 ``AuditMessage``) to a durable spool in the
database; this module only reads that spool. An :class:`Outbox` hands out unsent records in spool order
and marks them sent. A :class:`Forwarder` moves them to the Audit Record Repository:

1. :meth:`Forwarder.flush` takes up to ``batch`` unsent records, wraps each in an RFC 5424 SYSLOG-MSG
   (:func:`format_message`), hands the batch to a :class:`Sender` and, only after the sender returned,
   marks the batch sent. It repeats until the spool is empty or the sender fails.
2. A failed send (any :class:`OSError`, which includes TLS errors and timeouts) closes the sender and ends
   the flush; the records of that batch, and every later one, stay unsent. One warning is logged per
   outage, not per attempt, and one info line when the repository answers again.
3. :meth:`Forwarder.start` runs ``flush`` in a daemon thread. After a success it waits ``idle`` seconds (or
   until :meth:`Forwarder.wake`, which the spool writer may call after each insert); after a failure it
   waits ``retry_initial``, doubling per consecutive failure up to ``retry_max``, and the first success
   resets the delay.

Delivery guarantees. Over TLS (:class:`TlsSender`, RFC 5425) delivery is *at least once*: a record is
marked sent only after the whole batch was written to the connection, so a record may be sent twice if the
connection breaks after the write and before ``mark_sent`` (or if the process dies there). Syslog has no
application-level acknowledgement, so "written" means accepted by the peer's TLS stack. To keep that window
small the sender checks before each write whether the repository has closed the connection (a syslog
receiver never sends data, so a readable socket means close, alert or error) and, on a new TLS 1.3
connection, waits briefly for the server's first flight so that a rejected client certificate is seen
before any record is written. Over UDP (:class:`UdpSender`, RFC 5426) delivery is *best effort*: a
datagram is never acknowledged, so a record counts as sent once the local kernel took it, and a repository
that is down loses it. Use TLS whenever no audit record may be lost; UDP exists for repositories that
offer nothing else.

A UDP datagram carries at most :data:`MAX_UDP_PAYLOAD` octets (IPv4) and RFC 5426 §3.2 forbids splitting a
message across datagrams. :class:`UdpSender` therefore refuses a longer message: it logs an error naming
its size (not its content, which holds PHI) and skips it, and the forwarder marks it sent, because no retry
could ever deliver it and it would block every later record. The record stays in the spool table.

References
----------
RFC 5424 The Syslog Protocol (§6 message format, §6.2.1 PRI, §6.2.3 TIMESTAMP, §6.4 MSG and BOM);
RFC 5425 TLS Transport Mapping for Syslog (§4.3 octet-counting framing, §5 security);
RFC 5426 Transmission of Syslog Messages over UDP (§3.1 one message per datagram, §3.2 message size);
RFC 3339 (timestamps); ITI TF-2 §3.20 Record Audit Event (§3.20.6: syslog over TLS and UDP, facility 10,
severity 5, MSGID ``IHE+RFC-3881``); DICOM PS3.15 Annex A.5 (audit message schema).
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final, Protocol

from xds.security.tls import client_context

__all__ = [
    "MAX_UDP_PAYLOAD",
    "PRI",
    "Forwarder",
    "Outbox",
    "Sender",
    "TlsSender",
    "UdpSender",
    "client_ssl_context",
    "format_message",
    "frame",
]

log = logging.getLogger("xds.audit")

FACILITY: Final = 10
"""Syslog facility 10, security/authorization (``authpriv``), as ITI TF-2 §3.20.6 requires."""
SEVERITY: Final = 5
"""Syslog severity 5, notice ("normal but significant condition"), the ITI TF-2 §3.20.6 default."""
PRI: Final = FACILITY * 8 + SEVERITY
"""RFC 5424 §6.2.1: "The Priority value is calculated by first multiplying the Facility number by 8 and then
adding the numerical value of the Severity." 85."""
VERSION: Final = 1
"""RFC 5424 §6.2.2 protocol version."""
NILVALUE: Final = "-"
"""RFC 5424 §6: the value of an empty header field (and of absent STRUCTURED-DATA)."""
BOM: Final = b"\xef\xbb\xbf"
"""RFC 5424 §6.4: "If a syslog application encodes MSG in UTF-8, the string MUST start with the Unicode byte
order mask (BOM)"."""
MAX_UDP_PAYLOAD: Final = 65_507
"""Largest UDP payload over IPv4 (65,535 - 8 UDP header - 20 IP header octets), RFC 5426 §3.2."""

_FIELD_LIMITS: Final = {"HOSTNAME": 255, "APP-NAME": 48, "PROCID": 128, "MSGID": 32}
"""RFC 5424 §6: ``HOSTNAME = NILVALUE / 1*255PRINTUSASCII``, ``APP-NAME ... 1*48``, ``PROCID ... 1*128``,
``MSGID ... 1*32``."""


def _header_field(name: str, value: str) -> str:
    """A header field checked against RFC 5424 §6 ("PRINTUSASCII = %d33-126"), ``-`` when empty."""
    if not value:
        return NILVALUE
    if len(value) > _FIELD_LIMITS[name]:
        raise ValueError(f"syslog {name} longer than {_FIELD_LIMITS[name]} characters: {value[:40]!r}...")
    if not all(33 <= ord(c) <= 126 for c in value):
        raise ValueError(f"syslog {name} must be printable US-ASCII without spaces: {value!r}")
    return value


def _timestamp(when: datetime) -> str:
    """RFC 5424 §6.2.3 / RFC 3339 ``FULL-DATE "T" FULL-TIME`` with microseconds and the offset (``Z`` for UTC)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("syslog TIMESTAMP needs a timezone-aware datetime (RFC 5424 §6.2.3: TIME-OFFSET)")
    text = when.isoformat(timespec="microseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _msg(xml: bytes) -> bytes:
    """MSG: ``BOM`` + UTF-8 (MSG-UTF8), or the octets as they are (MSG-ANY) when they are not UTF-8."""
    body = xml.removeprefix(BOM)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        # RFC 5424 §6.4 allows MSG-ANY; sending it beats blocking the spool on a record that can never change.
        return body
    return BOM + body


def format_message(
    xml: bytes,
    *,
    timestamp: datetime,
    hostname: str,
    app_name: str = "xds-node",
    procid: str = "-",
    msgid: str = "IHE+RFC-3881",
) -> bytes:
    """One RFC 5424 SYSLOG-MSG carrying an audit record.

    ``<85>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - BOM MSG``: PRI 85 (facility 10, severity 5), no
    STRUCTURED-DATA, and the audit XML as MSG.

    Parameters
    ----------
    xml : bytes
        The audit message, UTF-8 XML. A leading BOM is not doubled; octets that are not UTF-8 go out as
        MSG-ANY without a BOM.
    timestamp : datetime
        Timezone-aware time of sending.
    hostname, app_name, procid, msgid : str
        Printable US-ASCII without spaces, at most 255/48/128/32 characters; empty means ``-``.

    Raises
    ------
    ValueError
        A header field breaks RFC 5424 §6, or ``timestamp`` is naive.

    References
    ----------
    RFC 5424 §6; ITI TF-2 §3.20.6.
    """
    header = " ".join(
        (
            f"<{PRI}>{VERSION}",
            _timestamp(timestamp),
            _header_field("HOSTNAME", hostname),
            _header_field("APP-NAME", app_name),
            _header_field("PROCID", procid),
            _header_field("MSGID", msgid),
            NILVALUE,  # STRUCTURED-DATA
        )
    )
    return header.encode("ascii") + b" " + _msg(xml)


def frame(message: bytes) -> bytes:
    """RFC 5425 §4.3 octet counting: ``SYSLOG-FRAME = MSG-LEN SP SYSLOG-MSG``, MSG-LEN in decimal octets."""
    return b"%d %b" % (len(message), message)


class Sender(Protocol):
    """A syslog transport to one Audit Record Repository."""

    def send(self, messages: Sequence[bytes]) -> None:
        """Send every message in order; raise :class:`OSError` when that may not have happened."""

    def close(self) -> None:
        """Release the connection; the next :meth:`send` opens a new one."""


class Outbox(Protocol):
    """The durable audit spool, written by the transactions, read by the :class:`Forwarder`."""

    def unsent(self, limit: int) -> list[tuple[int, bytes]]:
        """At most ``limit`` unsent records, oldest first, as ``(spool id, audit XML)``."""

    def mark_sent(self, ids: Sequence[int]) -> None:
        """Record that these spool entries reached the repository."""


def client_ssl_context(ca_file: str, cert_file: str = "", key_file: str = "") -> ssl.SSLContext:
    """A client context for RFC 5425: TLS 1.2 or later, server certificate and host name verified.

    ``ca_file`` holds the CAs trusted for the repository (empty: the system store). With ``cert_file`` the
    node presents its own certificate (mutual TLS, as the ATNA Secure Node requires); ``key_file`` may be
    empty when the key is in ``cert_file``.

    References
    ----------
    RFC 5425 §5.1-5.2 (certificate-based authentication); ITI TF-2 §3.19 (Authenticate Node).
    """
    return client_context(ca_file, cert_file, key_file)


class TlsSender:
    """Syslog over TLS (RFC 5425), octet-counted frames on one long-lived connection.

    The connection opens on the first :meth:`send`, is reused while the repository keeps it, and is closed
    on any error; the next :meth:`send` reconnects. ``probe`` bounds the wait for the server's first flight
    on a new TLS 1.3 connection (see the module docstring).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext,
        timeout: float = 10.0,
        server_hostname: str = "",
        probe: float = 0.5,
    ) -> None:
        self.host, self.port = host, port
        self._ctx = ssl_context
        self._timeout = timeout
        self._server_hostname = server_hostname or host
        self._probe = probe
        self._sock: ssl.SSLSocket | None = None

    def __repr__(self) -> str:
        return f"TlsSender({self.host!r}, {self.port})"

    def send(self, messages: Sequence[bytes]) -> None:
        if not messages:
            return
        payload = b"".join(frame(m) for m in messages)
        try:
            sock = self._connection()
            sock.sendall(payload)
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _connection(self) -> ssl.SSLSocket:
        if self._sock is not None and not self._peer_gone(self._sock, 0.0):
            return self._sock
        self.close()
        raw = socket.create_connection((self.host, self.port), timeout=self._timeout)
        try:
            sock = self._ctx.wrap_socket(raw, server_hostname=self._server_hostname)
        except BaseException:
            raw.close()
            raise
        self._sock = sock
        if sock.version() == "TLSv1.3" and self._peer_gone(sock, self._probe):
            raise ConnectionResetError(f"{self!r}: the repository closed the new connection")
        return sock

    def _peer_gone(self, sock: ssl.SSLSocket, wait: float) -> bool:
        """Whether the repository closed the connection or refused us (a syslog receiver never sends data).

        Waits up to ``wait`` seconds for something to read. TLS 1.3 session tickets make the socket
        readable without application data (``SSLWantReadError``): the peer accepted us and is alive.
        """
        readable, _, _ = select.select([sock], [], [], wait)
        if not readable and not sock.pending():
            return False
        sock.setblocking(False)
        try:
            return not sock.recv(4096)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return False
        except OSError:
            return True
        finally:
            with contextlib.suppress(OSError):
                sock.settimeout(self._timeout)


class UdpSender:
    """Syslog over UDP (RFC 5426): one message per datagram, best effort (see the module docstring).

    A message over :data:`MAX_UDP_PAYLOAD` octets is refused: logged as an error and skipped, never
    truncated or split (RFC 5426 §3.1: "Each syslog UDP datagram MUST contain only one syslog message").
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._sock: socket.socket | None = None
        self.refused = 0
        """Messages skipped because they did not fit in a datagram."""

    def __repr__(self) -> str:
        return f"UdpSender({self.host!r}, {self.port})"

    def send(self, messages: Sequence[bytes]) -> None:
        try:
            sock = self._connection()
            for message in messages:
                if len(message) > MAX_UDP_PAYLOAD:
                    self._refuse(message)
                    continue
                sock.send(message)
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _connection(self) -> socket.socket:
        if self._sock is None:
            family, kind, proto, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
            sock = socket.socket(family, kind, proto)
            try:
                sock.connect(address)
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    def _refuse(self, message: bytes) -> None:
        self.refused += 1
        log.error(
            "audit message of %d octets does not fit in a UDP datagram; not sent",
            len(message),
            extra={"sender": repr(self), "octets": len(message), "limit": MAX_UDP_PAYLOAD},
        )


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Forwarder:
    """Moves audit records from an :class:`Outbox` to a :class:`Sender`, retrying until they are delivered.

    Delivery is at least once over TLS: a record may be sent twice if the connection breaks after the write
    and before ``mark_sent``. Over UDP it is best effort, since UDP cannot confirm delivery; choose TLS when
    nothing may be lost. See the module docstring.

    Parameters
    ----------
    outbox, sender
        Where records come from and go to. The forwarder closes ``sender`` after a failure and on :meth:`stop`.
    hostname : str
        RFC 5424 HOSTNAME of this node; ``app_name`` is its APP-NAME.
    batch : int
        Records per :meth:`Sender.send` and per ``mark_sent``.
    retry_initial, retry_max : float
        First delay after a failure, doubled per consecutive failure, capped at ``retry_max`` (seconds).
    idle : float
        Delay between flushes while all is well; :meth:`wake` cuts it short.
    clock : callable
        Timezone-aware "now" for the TIMESTAMP field.
    sleep : callable, optional
        ``sleep(seconds)`` between flushes of :meth:`run`; the default waits on the wake event.
    """

    def __init__(
        self,
        outbox: Outbox,
        sender: Sender,
        *,
        hostname: str,
        app_name: str = "xds-node",
        batch: int = 100,
        retry_initial: float = 1.0,
        retry_max: float = 60.0,
        idle: float = 5.0,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        if batch < 1 or retry_initial <= 0 or retry_max < retry_initial:
            raise ValueError("need batch >= 1 and 0 < retry_initial <= retry_max")
        format_message(b"", timestamp=clock(), hostname=hostname, app_name=app_name)  # fail now, not per record
        self._outbox, self._sender = outbox, sender
        self._hostname, self._app_name = hostname, app_name
        self._batch = batch
        self._retry_initial, self._retry_max, self._idle = retry_initial, retry_max, idle
        self._clock = clock
        self._sleep = sleep or self._wait
        self._failures = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def failures(self) -> int:
        """Consecutive failed flushes (0 while the repository is reachable)."""
        return self._failures

    def flush(self) -> int:
        """Send every unsent record, batch by batch; return how many were sent. Never raises."""
        with self._lock:
            sent = 0
            try:
                while True:
                    records = self._outbox.unsent(self._batch)
                    if not records:
                        break
                    self._sender.send([self._format(xml) for _, xml in records])
                    self._outbox.mark_sent([spool_id for spool_id, _ in records])
                    sent += len(records)
                    if len(records) < self._batch:
                        break
            except OSError as exc:
                self._failed(exc, sent)
                return sent
            except Exception:
                self._failures += 1
                log.exception("audit forwarding failed", extra={"sender": repr(self._sender), "sent": sent})
                self._sender.close()
                return sent
            self._recovered(sent)
            return sent

    def next_delay(self) -> float:
        """Seconds to wait before the next flush: ``idle`` after a success, exponential backoff after failures."""
        if not self._failures:
            return self._idle
        return min(self._retry_initial * 2.0 ** min(self._failures - 1, 62), self._retry_max)

    def run(self) -> None:
        """Flush, wait, repeat until :meth:`stop` (the body of :meth:`start`'s thread)."""
        while not self._stopping.is_set():
            self.flush()
            if self._stopping.is_set():
                break
            self._sleep(self.next_delay())

    def start(self) -> None:
        """Run :meth:`run` in a daemon thread."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("audit forwarder already running")
        self._stopping.clear()
        self._thread = threading.Thread(target=self.run, name="xds-audit-forwarder", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Flush now instead of at the end of the current wait (new records, or the repository is back)."""
        self._wake.set()

    def stop(self, timeout: float | None = 5.0) -> bool:
        """End the loop and close the sender; return whether the thread ended within ``timeout``."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                return False
            self._thread = None
        with self._lock:
            self._sender.close()
        return True

    def _wait(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _format(self, xml: bytes) -> bytes:
        return format_message(xml, timestamp=self._clock(), hostname=self._hostname, app_name=self._app_name)

    def _failed(self, exc: OSError, sent: int) -> None:
        self._sender.close()
        self._failures += 1
        if self._failures == 1:
            log.warning(
                "audit record repository unreachable; records stay in the spool: %s",
                exc,
                extra={"sender": repr(self._sender), "error": repr(exc), "sent": sent},
            )

    def _recovered(self, sent: int) -> None:
        if self._failures:
            log.info(
                "audit record repository reachable again after %d failed attempts",
                self._failures,
                extra={"sender": repr(self._sender), "failures": self._failures, "sent": sent},
            )
        self._failures = 0
