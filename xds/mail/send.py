"""Outgoing mail: hand one message to the configured SMTP relay, or fail with one :class:`MailError`.

Theory of operation
-------------------
:func:`send_message` opens one connection per message (the node sends few mails: digests and MDNs), so no
pooled connection can go stale between sends:

1. ``security = "tls"`` connects with :class:`smtplib.SMTP_SSL` (implicit TLS, RFC 8314 §3); otherwise
   :class:`smtplib.SMTP` connects in plain text and, for ``"starttls"``, upgrades with STARTTLS (RFC 3207 §4)
   before anything else is said. A relay that does not offer STARTTLS is an error, never a silent downgrade.
   Both TLS modes verify the relay's certificate and host name against ``ca_file`` (empty: the system store),
   TLS 1.2 or later (:func:`xds.security.tls.client_context`).
2. ``AUTH`` (RFC 4954) when a ``username`` is set (with ``security = "none"`` the password crosses the network
   in clear text: a relay on the same host only).
3. ``MAIL FROM`` / ``RCPT TO`` / ``DATA`` (RFC 5321 §3.3). The envelope sender is the message's own
   ``Sender``/``From`` when it has one, else ``from_address``; the recipients are its ``To``, ``Cc`` and
   ``Bcc`` (``Bcc`` is not transmitted).
4. ``QUIT``, and the socket is closed in every case, also after a failure.

Every failure (refused or timed-out connection, TLS handshake or certificate error, an SMTP error reply, a
recipient the relay refused) becomes a :class:`MailError` whose text names ``host:port`` and the step that
failed. A refused recipient is an error even when the relay accepted the others: the caller then knows that
at least one addressee did not get the mail.

References
----------
RFC 5321 (SMTP: §3.3 mail transaction, §4.2 replies); RFC 3207 (STARTTLS); RFC 4954 (AUTH); RFC 8314 §3
(implicit TLS); Python ``smtplib``.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from xds.mail.settings import SmtpSettings
from xds.security.tls import client_context


class MailError(Exception):
    """The relay did not take the message; the text names ``host:port`` and the reason."""


def _describe(exc: BaseException) -> str:
    """A one-line reason for an exception from ``smtplib``, ``ssl`` or the socket."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "recipients refused: " + ", ".join(
            f"{rcpt} ({code} {_text(reply)})" for rcpt, (code, reply) in sorted(exc.recipients.items())
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _connect(settings: SmtpSettings, context: ssl.SSLContext | None) -> smtplib.SMTP:
    """A connected client, TLS already negotiated for ``tls`` and ``starttls``."""
    if settings.security == "tls":
        return smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
    client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        if settings.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
    except BaseException:
        client.close()
        raise
    return client


def _close(client: smtplib.SMTP) -> None:
    """``QUIT`` politely, then close the socket whatever the relay says."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        client.close()


def _transact(client: smtplib.SMTP, settings: SmtpSettings, message: EmailMessage) -> None:
    """AUTH when configured, then the mail transaction; any refused recipient is an error."""
    if settings.username:
        client.login(settings.username, settings.password)
    sender = None if message["Sender"] or message["From"] else settings.from_address
    refused = client.send_message(message, from_addr=sender)
    if refused:
        raise smtplib.SMTPRecipientsRefused(refused)


def send_message(settings: SmtpSettings, message: EmailMessage) -> None:
    """Send ``message`` through the relay in ``settings``.

    Raises
    ------
    MailError
        When e-mail is not configured, and on any connection, TLS, authentication or SMTP failure, or when
        the relay refused any recipient. The connection is closed in every case.
    """
    if not settings.configured:
        raise MailError("e-mail is not configured (smtp.host is empty)")
    where = f"SMTP relay {settings.host}:{settings.port}"
    try:
        context = client_context(settings.ca_file) if settings.security != "none" else None
        client = _connect(settings, context)
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"{where}: connect ({settings.security}) failed: {_describe(exc)}") from exc
    try:
        _transact(client, settings, message)
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        raise MailError(f"{where}: send failed: {_describe(exc)}") from exc
    finally:
        _close(client)


__all__ = ["MailError", "send_message"]
