"""Mail messages of the node: mailbox digests, XDM "ZIP over Email", MDNs, and reading ZIPs from a mail.

Theory of operation
-------------------
Every function here is pure: it builds or reads an :class:`email.message.EmailMessage` (``email.policy.default``)
and does no I/O but for :func:`xdm_message` reading its ZIP file. Sending is :mod:`xds.mail.send`, receiving
:mod:`xds.mail.listener`.

* :func:`digest_message` tells a mailbox's owners that deliveries arrived. It carries **no patient data**: only
  the mailbox name, counts, the delivery references and a link or CLI command to open them, so it may cross an
  untrusted relay in clear text. Its ``Message-ID`` is ``<digest-{id}@{node}>``, so a digest that is sent again
  after a failure has the same id and a client can recognise (and drop) the duplicate.
* :func:`xdm_message` is the XDM "ZIP over Email" package (ITI TF-2 §3.32): ``multipart/mixed`` (RFC 2046
  §5.1.3) with a ``text/plain`` body and one ``application/zip`` attachment, asking for an MDN with
  ``Disposition-Notification-To`` (RFC 3798 §2.1).
* :func:`mdn_message` answers such a request with an RFC 3798 MDN: ``multipart/report;
  report-type=disposition-notification`` (RFC 6522) holding a human-readable ``text/plain`` part and a
  ``message/disposition-notification`` part whose fields are quoted from RFC 3798 §3.2 next to the code.
* :func:`zip_attachments` finds the ZIP parts of a received mail (also inside nested ``multipart/*``, but not
  inside an attached ``message/rfc822``) and stops at a total decoded size, checked before each part is
  decoded.

References
----------
RFC 5322 (message format: §3.6.4 Message-ID, In-Reply-To, References); RFC 2045/2046 (MIME: §5.1.3
multipart/mixed); RFC 2183 (Content-Disposition); RFC 3798 (Message Disposition Notification: §2.1
Disposition-Notification-To, §3 format); RFC 6522 (multipart/report); RFC 3834 §5 (Auto-Submitted);
ITI TF-2 §3.32 (Distribute Document Set on Media, XDM ZIP over Email option); RFC 5321 (SMTP).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime, getaddresses, make_msgid
from pathlib import Path
from typing import Final

from xds import __version__

ZIP_TYPES: Final = frozenset({"application/zip", "application/x-zip-compressed"})
"""Content types that are a ZIP whatever the file name; ``application/octet-stream`` counts with a ``.zip`` name."""

USER_AGENT: Final = f"xds-node/{__version__}"
"""The ua-product of ``Reporting-UA`` (RFC 3798 §3.2.1)."""

_DISPOSITION_MODE: Final = "automatic-action/MDN-sent-automatically"
"""RFC 3798 §3.2.6.1: the node processed the mail and sent the MDN without any user's action."""

_ID_RIGHT: Final = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")
"""RFC 5322 §3.6.4 id-right as a dot-atom-text (no domain literal)."""


def _date(when: datetime | None) -> str:
    return format_datetime(when or datetime.now(UTC))


def _domain(address: str) -> str:
    """The domain of ``local@domain`` (for ``make_msgid``), ``localhost`` when there is none."""
    _, _, domain = address.rpartition("@")
    return domain if _ID_RIGHT.fullmatch(domain) else "localhost"


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


# -- digests -----------------------------------------------------------------------------------------------------------


def _digest_body(
    *, mailbox: str, node_name: str, deliveries: int, documents: int, references: Sequence[str], link: str, command: str
) -> str:
    lines = [
        f"Mailbox {mailbox} on {node_name} received {_plural(deliveries, 'new delivery', 'new deliveries')}"
        f" ({_plural(documents, 'document', 'documents')}).",
        "",
        "Deliveries:",
        *(f"  {reference}" for reference in references),
        "",
    ]
    if link:
        lines.append(f"Open them at: {link}")
    if command:
        lines.append(f"Show them with: {command}")
    lines += ["", "This notification holds no patient data; sign in to the node to see the documents.", ""]
    return "\n".join(lines)


def digest_message(
    *,
    from_address: str,
    to: Sequence[str],
    mailbox: str,
    digest_id: int,
    node_name: str,
    deliveries: int,
    documents: int,
    references: Sequence[str],
    urgent: bool,
    link: str = "",
    command: str = "",
    date: datetime | None = None,
) -> EmailMessage:
    """The notification that ``mailbox`` received new deliveries; holds nothing but what is passed here.

    ``command`` is a CLI line such as ``xds inbox show D-1a2b3c``; ``date`` defaults to now. An urgent
    digest is marked in the subject and with ``Importance: high`` and ``X-Priority: 1``.

    Raises
    ------
    ValueError
        When ``to`` is empty or ``node_name`` cannot be the right part of a Message-ID (RFC 5322 §3.6.4).
    """
    if not to:
        raise ValueError("a digest needs at least one recipient")
    if not _ID_RIGHT.fullmatch(node_name):
        raise ValueError(f"node name {node_name!r} cannot form a Message-ID (RFC 5322 §3.6.4 id-right)")
    subject = (
        f"[xds] {_plural(deliveries, 'new delivery', 'new deliveries')}"
        f" ({_plural(documents, 'document', 'documents')}) in mailbox {mailbox}"
    )
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = ", ".join(to)
    message["Subject"] = f"URGENT: {subject}" if urgent else subject
    message["Date"] = _date(date)
    # Deterministic, so that a digest sent again after a failure is recognisably the same mail.
    message["Message-ID"] = f"<digest-{digest_id}@{node_name}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834 §5.1: no auto-replies to this mail
    if urgent:
        message["Importance"] = "high"  # RFC 2156 §5.3.4
        message["X-Priority"] = "1"
    message.set_content(
        _digest_body(
            mailbox=mailbox,
            node_name=node_name,
            deliveries=deliveries,
            documents=documents,
            references=references,
            link=link,
            command=command,
        )
    )
    return message


# -- XDM ZIP over Email ------------------------------------------------------------------------------------------------


def xdm_message(
    *,
    from_address: str,
    to: str,
    subject: str,
    body: str,
    zip_path: Path,
    filename: str,
    request_mdn: bool = True,
    message_id: str = "",
    date: datetime | None = None,
) -> EmailMessage:
    """An XDM "ZIP over Email" mail: ``body`` as text and the ZIP at ``zip_path`` attached as ``filename``.

    The ZIP is read into memory whole: the caller bounds its size (an XDM package for e-mail is small, and
    relays refuse large mails anyway). ``message_id`` (with or without ``<>``) defaults to a new unique id;
    ``date`` to now.

    Raises
    ------
    ValueError
        When ``filename`` is empty or holds a path separator.
    OSError
        When ``zip_path`` cannot be read.
    """
    if not filename or Path(filename).name != filename or "\\" in filename:
        raise ValueError(f"attachment name {filename!r} must be a plain file name")
    data = zip_path.read_bytes()
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = _date(date)
    message["Message-ID"] = f"<{message_id.strip('<>')}>" if message_id else make_msgid(domain=_domain(from_address))
    if request_mdn:
        # RFC 3798 §2.1: "The presence of a Disposition-Notification-To header in a message is merely a request
        # for an MDN"; ITI TF-2 §3.32 asks the importer for one on the ZIP over Email option.
        message["Disposition-Notification-To"] = from_address
    message.set_content(body)
    message.add_attachment(data, maintype="application", subtype="zip", filename=filename)
    return message


# -- MDN ---------------------------------------------------------------------------------------------------------------


def _notify_to(original: EmailMessage) -> str:
    """Where the MDN goes: ``Disposition-Notification-To`` (RFC 3798 §2.1), else the original's ``From``."""
    for name in ("Disposition-Notification-To", "From"):
        addresses = [addr for _, addr in getaddresses([str(value) for value in original.get_all(name, [])]) if addr]
        if addresses:
            return ", ".join(addresses)
    raise ValueError("the original message asks for no MDN and has no From address to answer")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _part(content: str | EmailMessage, subtype: str = "plain") -> EmailMessage:
    """A body part for ``multipart/report`` (without the ``MIME-Version`` that only the top level carries)."""
    part = EmailMessage()
    part.set_content(content, subtype=subtype)
    del part["MIME-Version"]
    return part


def _disposition_fields(
    original: EmailMessage, *, from_address: str, final_recipient: str, processed: bool, detail: str
) -> EmailMessage:
    """The ``message/disposition-notification`` body part (RFC 3798 §3.1, §3.2)."""
    fields = EmailMessage()
    # §3.2.1 "Reporting-UA: ua-name [ ';' ua-product ]"
    fields["Reporting-UA"] = f"{_domain(from_address)}; {USER_AGENT}"
    # §3.2.3: the field is present only when the original carried an Original-Recipient header.
    if original["Original-Recipient"]:
        fields["Original-Recipient"] = _one_line(str(original["Original-Recipient"]))
    # §3.2.4 "Final-Recipient: address-type ';' generic-address" (required)
    fields["Final-Recipient"] = f"rfc822; {final_recipient}"
    # §3.2.5: copied from the original's Message-ID, when it has one.
    if original["Message-ID"]:
        fields["Original-Message-ID"] = _one_line(str(original["Message-ID"]))
    # §3.2.6 "Disposition: disposition-mode ';' disposition-type [ '/' disposition-modifier ]" with mode
    # automatic-action/MDN-sent-automatically (no user took part). §3.2.6.2 has no "failed" type (RFC 2298 had
    # one; RFC 3798 dropped it): a message that could not be processed is "processed" with the §3.2.6.3
    # modifier "error", and the reason goes into an Error field (§3.2.7).
    fields["Disposition"] = f"{_DISPOSITION_MODE}; {'processed' if processed else 'processed/error'}"
    if not processed:
        fields["Error"] = _one_line(detail) or "the message could not be processed"
    return _part(fields, subtype="disposition-notification")


def mdn_message(
    *, original: EmailMessage, from_address: str, final_recipient: str, processed: bool, detail: str
) -> EmailMessage:
    """The RFC 3798 MDN for ``original`` as received by ``final_recipient``: processed, or processed/error.

    ``detail`` is the human-readable text (and, on failure, the ``Error`` field). The MDN goes to the
    original's ``Disposition-Notification-To``, else its ``From``.

    Raises
    ------
    ValueError
        When the original has neither ``Disposition-Notification-To`` nor ``From``.
    """
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = _notify_to(original)
    message["Subject"] = "Disposition notification: " + ("processed" if processed else "not processed (error)")
    message["Date"] = _date(None)
    message["Message-ID"] = make_msgid(domain=_domain(from_address))
    message["Auto-Submitted"] = "auto-replied"  # RFC 3834 §5.1
    original_id = _one_line(str(original["Message-ID"] or ""))
    if original_id:
        message["In-Reply-To"] = original_id  # RFC 5322 §3.6.4
        message["References"] = _one_line(f"{original['References'] or ''} {original_id}")
    message["MIME-Version"] = "1.0"
    message["Content-Type"] = "multipart/report; report-type=disposition-notification"  # RFC 3798 §3, RFC 6522
    message.attach(_part(detail.rstrip("\n") + "\n"))
    message.attach(
        _disposition_fields(
            original, from_address=from_address, final_recipient=final_recipient, processed=processed, detail=detail
        )
    )
    return message


# -- reading -----------------------------------------------------------------------------------------------------------


def parse_message(raw: bytes) -> EmailMessage:
    """A received message (RFC 5322 octets) as an :class:`EmailMessage`, with ``email.policy.default``."""
    return message_from_bytes(raw, policy=policy.default)


def _leaves(part: EmailMessage | MIMEPart) -> Iterator[MIMEPart]:
    """The non-multipart parts, depth first; an attached ``message/*`` is one leaf, never opened."""
    if part.is_multipart() and part.get_content_maintype() == "multipart":
        for child in part.iter_parts():
            yield from _leaves(child)
    elif part.get_content_maintype() != "message":
        yield part


def _is_zip(part: MIMEPart) -> bool:
    content_type = part.get_content_type()
    if content_type in ZIP_TYPES:
        return True
    return content_type == "application/octet-stream" and (part.get_filename() or "").lower().endswith(".zip")


def _decoded_at_least(part: MIMEPart) -> int:
    """A lower bound of the part's decoded size, known before decoding it (RFC 2045 §6.7, §6.8)."""
    encoded = part.get_payload()
    if not isinstance(encoded, str):
        return 0
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding == "base64":
        characters = len(encoded) - encoded.count("\n") - encoded.count("\r")
        return max(0, characters * 3 // 4 - 2)  # three octets per four characters, less the padding
    if encoding == "quoted-printable":
        return len(encoded) // 3  # at most "=XX" per octet
    return len(encoded)


def zip_attachments(message: EmailMessage, *, max_bytes: int) -> list[tuple[str, bytes]]:
    """The ZIP parts of ``message`` as ``(file name or "", decoded bytes)``, in message order.

    A ZIP is ``application/zip``, ``application/x-zip-compressed``, or ``application/octet-stream`` named
    ``*.zip`` (any case).

    Raises
    ------
    ValueError
        When the decoded ZIPs together exceed ``max_bytes``; checked before each part is decoded (base64
        decodes to at most 3/4 of its length) and again after.
    """
    found: list[tuple[str, bytes]] = []
    total = 0
    for part in _leaves(message):
        if not _is_zip(part):
            continue
        estimate = _decoded_at_least(part)
        data = part.get_payload(decode=True) if total + estimate <= max_bytes else None
        if not isinstance(data, bytes) or total + len(data) > max_bytes:
            raise ValueError(f"the ZIP attachments exceed {max_bytes} bytes")
        total += len(data)
        found.append((part.get_filename() or "", data))
    return found


__all__ = [
    "USER_AGENT",
    "ZIP_TYPES",
    "digest_message",
    "mdn_message",
    "parse_message",
    "xdm_message",
    "zip_attachments",
]
