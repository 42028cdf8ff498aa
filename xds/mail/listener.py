"""XDM over e-mail, receiving side: an SMTP listener that hands each accepted mail to the node and sends MDNs.

Theory of operation
-------------------
:class:`XdmListener` runs an ``aiosmtpd`` server in a thread of its own (its ``Controller``) on a socket the
listener binds itself, so port 0 works and :attr:`XdmListener.port` is known as soon as :meth:`start`
returns. The node plugs in three callables; each runs in a small thread pool (``loop.run_in_executor``) so a
slow database never blocks the SMTP event loop:

``accepts(address) -> bool``
    At ``RCPT TO`` (RFC 5321 §3.3): false answers ``550 5.1.1 mailbox unavailable`` and the address is not
    added to the envelope.
``deliver(Received) -> str``
    After ``DATA``, once per accepted recipient, with the parsed message. It returns the delivery reference,
    or raises :class:`ValueError` for a package it refuses (not an XDM ZIP, a hostile ZIP, ...): that outcome
    is *decided*. Any other exception is a temporary failure.
``notify(EmailMessage)``
    Given one RFC 3798 MDN per recipient when the mail asked for one (``Disposition-Notification-To``):
    processed with "delivered as <reference>", or processed/error with the refusal's text. Its failures are
    logged, never answered to the client: the mail was already accepted.

The reply to ``DATA`` is ``250`` when every recipient's outcome was decided, accepted or refused. On the first
temporary failure the listener stops and answers ``451 4.3.0`` so that the sending MTA retries the whole mail
(RFC 5321 §4.2.5, §4.5.4.1); no MDN goes out then. SMTP has one reply per mail, not per recipient, so a
recipient delivered before the failure is delivered again on the retry: ``deliver`` should recognise a repeat
(by ``Message-ID`` and recipient). Data beyond ``max_message_bytes`` is refused with ``552`` by aiosmtpd
(``data_size_limit``, also advertised with the ``SIZE`` extension of RFC 1870). Anything unexpected in the
listener itself (a message it cannot parse, a bug) is logged and answered ``451`` or ``554``; the listener
never crashes on its input.

MDNs are sent automatically, as the XDM ZIP over Email option expects. RFC 3798 §2.1 asks a UA to confirm with
its user before answering a ``Disposition-Notification-To`` that differs from the ``Return-Path``; a node has
no user, so the node's ``notify`` decides (for instance by sending only to known partners). An MDN is never
sent for a mail that is itself an MDN (RFC 3798 §2.1: "MDNs MUST NOT be generated in response to MDNs").

``deliver`` and ``notify`` may run concurrently for mails on different connections.

References
----------
RFC 5321 (SMTP: §3.3 mail transactions, §4.2 replies, §4.5.3.1 size limits); RFC 3463 (enhanced status codes:
5.1.1, 4.3.0, 5.6.0); RFC 1870 (SIZE); RFC 3207 (STARTTLS, not offered by this listener); RFC 3798 (MDN);
RFC 2046 (MIME multipart); ITI TF-2 §3.32 (XDM, ZIP over Email option); aiosmtpd handler hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any, Final, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from xds.mail.messages import mdn_message, parse_message

log = logging.getLogger("xds.mail")

_T = TypeVar("_T")

REFUSED_MAILBOX: Final = "550 5.1.1 mailbox unavailable"
TEMPORARY_FAILURE: Final = "451 4.3.0 temporary failure, please try again later"
UNREADABLE: Final = "554 5.6.0 message could not be read"
ACCEPTED: Final = "250 2.0.0 OK"
RECIPIENT_OK: Final = "250 2.1.5 OK"
WORKERS: Final = 4
"""Threads for ``accepts``, ``deliver`` and ``notify`` together."""


@dataclass(frozen=True, slots=True)
class Received:
    """What the listener hands to the node for one accepted recipient of one mail."""

    sender: str
    """The envelope ``MAIL FROM`` (empty for the null sender ``<>``)."""
    recipient: str
    """The envelope ``RCPT TO`` that was accepted."""
    message: EmailMessage


@dataclass(frozen=True, slots=True)
class _Outcome:
    recipient: str
    reference: str = ""
    refusal: str = ""


def _is_mdn(message: EmailMessage) -> bool:
    return message.get_content_type() == "multipart/report" and (
        str(message.get_param("report-type", "")).lower() == "disposition-notification"
    )


MAX_RECIPIENTS: Final = 10
"""Accepted RCPT TO addresses per mail: each is one import of the whole package."""
TOO_MANY_RECIPIENTS: Final = "452 4.5.3 Too many recipients"


class _Handler:
    """The aiosmtpd hooks (``handle_RCPT``, ``handle_DATA``) bound to one listener's callables."""

    def __init__(self, listener: XdmListener) -> None:
        self._listener = listener

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        try:
            accepted = await self._listener._call(self._listener._accepts, address)
        except Exception:
            log.exception("RCPT TO: checking the mailbox failed; answering 451")
            return TEMPORARY_FAILURE
        if not accepted:
            log.info("RCPT TO: refused an unknown mailbox")
            return REFUSED_MAILBOX
        if address.casefold() in (a.casefold() for a in envelope.rcpt_tos):
            return RECIPIENT_OK  # named twice: delivered once
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return RECIPIENT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        try:
            return await self._listener._data(envelope)
        except Exception:
            log.exception("DATA: unexpected failure; answering 451")
            return TEMPORARY_FAILURE


class _BoundController(Controller):
    """An aiosmtpd ``Controller`` that serves on a socket bound (and listening) before it starts."""

    def __init__(self, handler: _Handler, sock: socket.socket, **kwargs: Any) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **kwargs)
        self._sock = sock

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


class XdmListener:
    """An SMTP server for XDM ZIP over Email; see the module docstring for the protocol."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        accepts: Callable[[str], bool],
        deliver: Callable[[Received], str],
        notify: Callable[[EmailMessage], None] | None,
        from_address: str,
        max_message_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._accepts = accepts
        self._deliver = deliver
        self._notify = notify
        self._from_address = from_address
        self._max_message_bytes = max_message_bytes
        self._controller: _BoundController | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._port = 0

    def start(self) -> None:
        """Bind ``host:port`` (0: any free port) and serve in a background thread."""
        if self._controller is not None:
            raise RuntimeError("the XDM listener is already running")
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.create_server((self._host, self._requested_port), family=family)
        domain = self._from_address.rpartition("@")[2]
        controller = _BoundController(
            _Handler(self),
            sock,
            server_hostname=domain or "localhost",
            data_size_limit=self._max_message_bytes,
        )
        self._executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="xds-mail")
        try:
            controller.start()
        except BaseException:
            with contextlib.suppress(Exception):
                controller.stop(no_assert=True)
            sock.close()
            self._executor.shutdown(wait=True)
            self._executor = None
            raise
        self._port = int(sock.getsockname()[1])
        self._controller = controller
        log.info("XDM e-mail listener on %s:%d", self._host, self._port)

    @property
    def port(self) -> int:
        """The bound port, after :meth:`start` (0 before)."""
        return self._port

    def stop(self) -> None:
        """Stop serving, close the socket and wait for running ``deliver``/``notify`` calls; idempotent."""
        controller, self._controller = self._controller, None
        executor, self._executor = self._executor, None
        if controller is not None:
            controller.stop()
        if executor is not None:
            executor.shutdown(wait=True)

    # -- called from the handler, on the controller's event loop ----------------------------------------------------

    async def _call(self, function: Callable[..., _T], *args: Any) -> _T:
        """``function(*args)`` in the listener's thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def _data(self, envelope: Envelope) -> str:
        """Deliver the mail to each recipient, then send the MDNs; the reply to ``DATA``."""
        raw = envelope.original_content
        try:
            message = parse_message(raw if isinstance(raw, bytes) else b"")
        except Exception:
            log.exception("DATA: the message could not be parsed; answering 554")
            return UNREADABLE
        sender = envelope.mail_from or ""
        outcomes: list[_Outcome] = []
        for recipient in envelope.rcpt_tos:
            outcome = await self._deliver_one(Received(sender, recipient, message))
            if outcome is None:
                return TEMPORARY_FAILURE
            outcomes.append(outcome)
        await self._send_mdns(message, outcomes, sender)
        return ACCEPTED

    async def _deliver_one(self, received: Received) -> _Outcome | None:
        """The decided outcome for one recipient, or None on a temporary failure."""
        try:
            reference = await self._call(self._deliver, received)
        except ValueError as exc:
            log.info("DATA: delivery refused for one recipient: %s", exc)
            return _Outcome(received.recipient, refusal=str(exc) or "the package was refused")
        except Exception:
            log.exception("DATA: delivery failed; answering 451")
            return None
        log.info("DATA: delivered as %s", reference)
        return _Outcome(received.recipient, reference=reference)

    async def _send_mdns(self, message: EmailMessage, outcomes: list[_Outcome], sender: str) -> None:
        """One MDN per recipient when the mail asked for it (RFC 3798 §2.1); failures are logged only.

        Only to the envelope sender: an MDN requested for another address is not sent (RFC 3798 §2.1 asks for
        the user's consent then; an unattended node has no user to ask, and would otherwise mail third parties
        on anyone's request)."""
        notify = self._notify
        try:
            if notify is None or not message["Disposition-Notification-To"] or _is_mdn(message):
                return
            asked = parseaddr(str(message["Disposition-Notification-To"]))[1]
        except Exception:
            log.exception("DATA: the MDN request could not be read; no MDN sent")
            return
        if not sender or asked.casefold() != parseaddr(sender)[1].casefold():
            log.info("DATA: an MDN was asked for another address than the envelope sender; none sent")
            return
        for outcome in outcomes:
            try:
                mdn = mdn_message(
                    original=message,
                    from_address=self._from_address,
                    final_recipient=outcome.recipient,
                    processed=not outcome.refusal,
                    detail=outcome.refusal or f"delivered as {outcome.reference}",
                )
            except ValueError as exc:  # nowhere to send it: a malformed request
                log.warning("DATA: no MDN sent: %s", exc)
                continue
            try:
                await self._call(notify, mdn)
            except Exception:
                log.exception("DATA: the MDN could not be sent (the mail stays accepted)")


__all__ = ["Received", "XdmListener"]
