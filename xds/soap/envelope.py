"""SOAP 1.2 envelope with WS-Addressing 1.0 headers: parse requests, render answers (ITI TF-2 Appendix V).

Theory of operation
-------------------
:func:`parse_envelope` is the inbound boundary. The bytes go through the one hardened parser
(:func:`xds.ebrim.parser.parse_xml`); every way an envelope can be unusable becomes a :class:`SoapFault`, in
the order the checks run: not XML / DTD / too large / too deep, wrong envelope (SOAP 1.1 is a
``VersionMismatch``), a mandatory header block we do not understand (``MustUnderstand``), WS-Addressing
headers missing or repeated, an empty ``env:Body``. What is left is an :class:`Envelope`: the addressing
properties and the body element.

:func:`render_envelope` is the outbound fast path. The registry answers queries from stored XML fragments,
so the body may be given as bytes: they are inserted verbatim between a header and a trailer built by
concatenation, never parsed again. :func:`request_envelope` builds a request the same way, for clients and
tests.

The message id factory is the only source of non-determinism; pass ``message_id`` to fix it.

References
----------
W3C SOAP Version 1.2 Part 1 (2nd ed.) §5 (envelope, header blocks, mustUnderstand, roles); W3C WS-Addressing
1.0 Core §3 and SOAP Binding §2-3; ITI TF-2 Appendix V.3 (WS-Addressing in IHE transactions); RFC 3902
(``application/soap+xml``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from xml.sax.saxutils import escape

from lxml import etree

from xds.ebrim.parser import MAX_XML_BYTES, XMLError, parse_xml
from xds.namespaces import SOAP11, SOAP12, WSA, qn
from xds.soap import faults
from xds.soap.faults import SoapFault, new_message_id

CONTENT_TYPE: Final = "application/soap+xml; charset=utf-8"
"""Media type of a SOAP 1.2 message over HTTP (RFC 3902; SOAP 1.2 Part 2 §7.1.4)."""

ANONYMOUS: Final = "http://www.w3.org/2005/08/addressing/anonymous"
"""The anonymous endpoint: reply on the HTTP back-channel (WS-Addressing 1.0 Core §2.1)."""

WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
"""WS-Security 1.0 ``wsse`` namespace; ``wsse:Security`` is understood (XUA, ITI-40)."""

_ROLES_FOR_US: Final = frozenset(
    {
        "",
        "http://www.w3.org/2003/05/soap-envelope/role/next",
        "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver",
    }
)
_XML_REASONS: Final[dict[str, tuple[str, str]]] = {
    "malformed": (faults.NOT_XML, "the request is not well-formed XML"),
    "dtd": (faults.DTD_NOT_ALLOWED, "a SOAP message MUST NOT contain a Document Type Declaration"),
    "too-large": (faults.TOO_LARGE, "the SOAP envelope is larger than this endpoint accepts"),
    "too-deep": (faults.TOO_DEEP, "the SOAP envelope nests elements too deeply"),
}
_DOCTYPE: Final = b"<!DOCTYPE"
_PROLOG_SCAN: Final = 64 * 1024
_AT_MOST_ONCE: Final = ("Action", "MessageID", "To", "ReplyTo", "FaultTo", "From")
_HEAD: Final = f'<?xml version="1.0" encoding="UTF-8"?>\n<env:Envelope xmlns:env="{SOAP12}" xmlns:wsa="{WSA}">'
_MUST_UNDERSTAND: Final = ' env:mustUnderstand="true"'


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """A parsed SOAP 1.2 request: WS-Addressing message properties and the body.

    Absent ``wsa:To`` and ``wsa:ReplyTo`` take their WS-Addressing 1.0 Core §3.2 defaults, :data:`ANONYMOUS`;
    an absent ``wsa:MessageID`` is ``""``.
    """

    action: str
    message_id: str
    to: str
    reply_to: str
    body: etree._Element
    """The first element child of ``env:Body``."""
    header: etree._Element | None
    """The ``env:Header`` element (for wsse:Security and the like), or None."""


def parse_envelope(data: bytes, *, max_bytes: int = MAX_XML_BYTES) -> Envelope:
    """Parse and check a SOAP 1.2 request envelope.

    Raises
    ------
    SoapFault
        ``Sender`` with subcode NOT_XML, DTD_NOT_ALLOWED, TOO_LARGE, TOO_DEEP, NOT_SOAP, EMPTY_BODY,
        MESSAGE_ADDRESSING_HEADER_REQUIRED or INVALID_ADDRESSING_HEADER; ``VersionMismatch`` for a SOAP 1.1
        envelope; ``MustUnderstand`` for a mandatory header block that is not understood.

    References
    ----------
    SOAP 1.2 Part 1 §5.1-5.4; WS-Addressing 1.0 SOAP Binding §6.4; ITI TF-2 Appendix V.3.
    """
    root = _parse(data, max_bytes)
    _check_envelope_name(root)
    header = root.find(qn(SOAP12, "Header"))
    if header is not None:
        _check_must_understand(header)
        _check_cardinality(header)
    action = _single_text(header, "Action")
    if not action:
        raise SoapFault(
            "the wsa:Action header is required",
            subcode=faults.MESSAGE_ADDRESSING_HEADER_REQUIRED,
            detail="wsa:Action",
        )
    return Envelope(
        action=action,
        message_id=_single_text(header, "MessageID"),
        to=_single_text(header, "To") or ANONYMOUS,
        reply_to=_reply_to(header),
        body=_body_element(root),
        header=header,
    )


def _parse(data: bytes, max_bytes: int) -> etree._Element:
    try:
        return parse_xml(data, max_bytes=max_bytes)
    except XMLError as exc:
        subcode, reason = _XML_REASONS[_xml_reason(exc, data)]
        raise SoapFault(reason, subcode=subcode, detail=str(exc)) from None


def _xml_reason(exc: XMLError, data: bytes) -> str:
    """The parser's reason, except that a DTD the parser choked on (an entity bomb) still counts as a DTD.

    libxml2 may stop an entity-expansion bomb as malformed before the DOCTYPE check is reached.
    """
    if exc.reason == "malformed" and _DOCTYPE in data[:_PROLOG_SCAN]:
        return "dtd"
    return exc.reason if exc.reason in _XML_REASONS else "malformed"


def _check_envelope_name(root: etree._Element) -> None:
    if root.tag == qn(SOAP12, "Envelope"):
        return
    if root.tag == qn(SOAP11, "Envelope"):
        raise SoapFault("SOAP 1.1 is not supported; use SOAP 1.2", code="VersionMismatch")
    raise SoapFault(
        f"the document element {etree.QName(root).text} is not a SOAP 1.2 envelope", subcode=faults.NOT_SOAP
    )


def _check_must_understand(header: etree._Element) -> None:
    """Fault on a mandatory header block targeted at us that we do not understand (SOAP 1.2 Part 1 §5.2.3).

    "If the SOAP node does not understand a mandatory header block targeted at it, it MUST generate a SOAP
    fault with Value of Code set to 'env:MustUnderstand'" (§5.4.8). We understand WS-Addressing and
    ``wsse:Security``.
    """
    not_understood = tuple(
        block.tag
        for block in header
        if isinstance(block.tag, str) and _is_mandatory_for_us(block) and not _understood(block.tag)
    )
    if not_understood:
        names = ", ".join(not_understood)
        raise SoapFault(
            f"mandatory header block(s) not understood: {names}",
            code="MustUnderstand",
            not_understood=not_understood,
        )


def _is_mandatory_for_us(block: etree._Element) -> bool:
    flag = (block.get(qn(SOAP12, "mustUnderstand")) or "").strip()
    role = (block.get(qn(SOAP12, "role")) or "").strip()
    return flag in ("true", "1") and role in _ROLES_FOR_US


def _understood(tag: str) -> bool:
    return tag.startswith(f"{{{WSA}}}") or tag == qn(WSSE, "Security")


def _check_cardinality(header: etree._Element) -> None:
    """Each addressing property but ``wsa:RelatesTo`` occurs at most once (WS-Addressing 1.0 Core §3.2).

    A repeated one is an InvalidAddressingHeader fault, detail InvalidCardinality (SOAP Binding §6.4.1).
    """
    for local in _AT_MOST_ONCE:
        count = len(header.findall(qn(WSA, local)))
        if count > 1:
            raise SoapFault(
                f"wsa:{local} appears {count} times",
                subcode=faults.INVALID_ADDRESSING_HEADER,
                detail=f"wsa:{local}",
            )


def _single(header: etree._Element | None, local: str) -> etree._Element | None:
    return header.find(qn(WSA, local)) if header is not None else None


def _single_text(header: etree._Element | None, local: str) -> str:
    element = _single(header, local)
    return (element.text or "").strip() if element is not None else ""


def _reply_to(header: etree._Element | None) -> str:
    reply_to = _single(header, "ReplyTo")
    address = reply_to.find(qn(WSA, "Address")) if reply_to is not None else None
    text = (address.text or "").strip() if address is not None else ""
    return text or ANONYMOUS


def _body_element(root: etree._Element) -> etree._Element:
    body = root.find(qn(SOAP12, "Body"))
    children = [child for child in body if isinstance(child.tag, str)] if body is not None else []
    if not children:
        raise SoapFault("the SOAP Body is missing or empty", subcode=faults.EMPTY_BODY)
    return children[0]


def render_envelope(
    *,
    action: str,
    body: bytes | etree._Element,
    relates_to: str = "",
    message_id: str | None = None,
    to: str = "",
) -> bytes:
    """Render a SOAP 1.2 response envelope around ``body`` (fast path: concatenation, body bytes not parsed).

    Parameters
    ----------
    action : str
        ``wsa:Action`` of the response, sent with ``env:mustUnderstand="true"``.
    body : bytes or lxml element
        One serialised element (UTF-8; a leading XML declaration is dropped) or an element to serialise.
    relates_to : str
        The request's ``wsa:MessageID``; ``wsa:RelatesTo`` is omitted when empty.
    message_id : str or None
        ``wsa:MessageID``; a fresh ``urn:uuid:`` when None.
    to : str
        Optional ``wsa:To``.

    References
    ----------
    WS-Addressing 1.0 Core §3.4 (formulating a reply); ITI TF-2 Appendix V.3.2.
    """
    headers = [
        _header("Action", action, must_understand=True),
        _header("MessageID", message_id or new_message_id()),
    ]
    if relates_to:
        headers.append(_header("RelatesTo", relates_to))
    if to:
        headers.append(_header("To", to))
    return _assemble(headers, body)


def request_envelope(
    *,
    action: str,
    body: bytes | etree._Element,
    to: str,
    message_id: str | None = None,
    reply_to_anonymous: bool = True,
) -> bytes:
    """Render a SOAP 1.2 request: ``wsa:Action``, ``wsa:MessageID``, ``wsa:ReplyTo`` (anonymous), ``wsa:To``.

    References
    ----------
    ITI TF-2 Appendix V.3.1 (WS-Addressing headers of a request); WS-Addressing 1.0 Core §3.2.
    """
    headers = [
        _header("Action", action, must_understand=True),
        _header("MessageID", message_id or new_message_id()),
    ]
    if reply_to_anonymous:
        headers.append(f"<wsa:ReplyTo><wsa:Address>{ANONYMOUS}</wsa:Address></wsa:ReplyTo>")
    headers.append(_header("To", to, must_understand=True))
    return _assemble(headers, body)


def soap_content_type(action: str) -> str:
    """``Content-Type`` of a SOAP 1.2 message with the optional ``action`` parameter (RFC 3902 §3).

    The value is an RFC 9110 quoted-string, so ``"`` and ``\\`` are backslash-escaped.
    """
    quoted = action.replace("\\", "\\\\").replace('"', '\\"')
    return f'{CONTENT_TYPE}; action="{quoted}"'


def _header(local: str, value: str, *, must_understand: bool = False) -> str:
    flag = _MUST_UNDERSTAND if must_understand else ""
    return f"<wsa:{local}{flag}>{escape(value)}</wsa:{local}>"


def _assemble(headers: list[str], body: bytes | etree._Element) -> bytes:
    head = f"{_HEAD}<env:Header>{''.join(headers)}</env:Header><env:Body>".encode()
    return head + _body_bytes(body) + b"</env:Body></env:Envelope>"


def _body_bytes(body: bytes | etree._Element) -> bytes:
    if not isinstance(body, bytes):
        return etree.tostring(body, encoding="UTF-8", with_tail=False)
    if body.startswith(b"<?xml"):
        return body[body.index(b"?>") + 2 :].lstrip()
    return body


__all__ = [
    "ANONYMOUS",
    "CONTENT_TYPE",
    "WSSE",
    "Envelope",
    "parse_envelope",
    "render_envelope",
    "request_envelope",
    "soap_content_type",
]
