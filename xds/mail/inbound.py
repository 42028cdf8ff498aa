"""XDM by e-mail into a node: the SMTP listener's deliveries become mailbox deliveries, answered with an MDN.

Theory of operation: the listener (:class:`xds.mail.listener.XdmListener`) accepts mail only for the
``xdm_addresses`` of the configured mailboxes. Each ZIP attachment of an accepted mail is written to scratch space
under the node's data directory and imported like ``xds xdm import --mailbox`` (:func:`xds.exchange.import_xdm`):
the same safe reader, checks and notification. A mail without an XDM package, or with a package the reader
refuses, is answered 250 (the mail was received) with a failed disposition notification naming the reason; a
failure of the node itself (database down) answers 451 so the sending MTA tries again later, and a repeated mail
is recognised by its SubmissionSet and not delivered twice. MDNs go out through the ``[smtp]`` relay.

References
----------
ITI TF-2 §3.32 (XDM, ZIP over Email and ZIP over Email Response options); RFC 3798 (MDN).
"""

from __future__ import annotations

import logging
import uuid
from email.message import EmailMessage

from xds.exchange import import_xdm
from xds.mail.listener import Received, XdmListener
from xds.mail.messages import zip_attachments
from xds.mail.send import send_message
from xds.mail.settings import SmtpSettings
from xds.node import Node
from xds.recipient.addressing import mailbox_for_address
from xds.recipient.model import TRANSPORT_XDM_EMAIL
from xds.xdm.reader import XdmError

log = logging.getLogger("xds.mail")


def xdm_listener(node: Node, smtp: SmtpSettings) -> XdmListener:
    """The node's XDM e-mail listener on ``[smtp_listener] host:port`` (not started)."""
    settings = node.settings

    def accepts(address: str) -> bool:
        return mailbox_for_address(address, settings.mailboxes) is not None

    def deliver(received: Received) -> str:
        box = mailbox_for_address(received.recipient, settings.mailboxes)
        if box is None:  # the configuration changed between RCPT and DATA
            raise ValueError(f"no mailbox receives {received.recipient}")
        packages = zip_attachments(received.message, max_bytes=settings.smtp_listener_max_message_bytes)
        if not packages:
            raise ValueError("the message carries no XDM package (a ZIP attachment)")
        references: list[str] = []
        scratch = settings.data_path / "tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        for name, data in packages:
            path = scratch / f"mail-{uuid.uuid4().hex}.zip"
            try:
                path.write_bytes(data)
                stored = import_xdm(node, path, transport=TRANSPORT_XDM_EMAIL, sender=received.sender, mailbox=box.name)
            except XdmError as exc:
                raise ValueError(f"{name or 'attachment'}: {exc}") from None
            finally:
                path.unlink(missing_ok=True)
            references += [d.reference for d in stored]
        return ", ".join(references) or "(delivered before)"

    def notify(mdn: EmailMessage) -> None:
        send_message(smtp, mdn)

    return XdmListener(
        host=settings.smtp_listener_host,
        port=settings.smtp_listener_port,
        accepts=accepts,
        deliver=deliver,
        notify=notify if smtp.configured else None,
        from_address=smtp.from_address or "xds@localhost",
        max_message_bytes=settings.smtp_listener_max_message_bytes,
    )


__all__ = ["xdm_listener"]
