"""SOAP 1.2 faults, the envelope-level failure channel (SOAP 1.2 Part 1 §5.4; WS-Addressing SOAP Binding §6).

Theory of operation
-------------------
Problems with the *envelope* (not XML, a DTD, wrong SOAP version, a missing or unknown ``wsa:Action``, a
header block that must be understood but is not) are raised as :class:`SoapFault` anywhere in the codec.
Only the ASGI adapter catches it and answers with :func:`render_fault` and :attr:`SoapFault.http_status`.
Business errors (XDS error codes) never travel this way: they are a ``RegistryResponse`` with a
``RegistryErrorList`` (ITI TF-2 Appendix V; ARCHITECTURE.md §6).

A fault carries a ``Code/Value`` (one of the five SOAP 1.2 codes) and optionally one ``Subcode/Value``, a
Clark-notation QName. WS-Addressing defines the ``wsa:*`` subcodes; the node's own subcodes live in
:data:`FAULT_NS`.

References
----------
W3C SOAP Version 1.2 Part 1 (2nd ed.), §5.4 SOAP Fault, §5.4.7 VersionMismatch Faults, §5.4.8 SOAP
mustUnderstand Faults, Appendix A Version Transition; SOAP 1.2 Part 2 §7.5.1.2 (HTTP status codes); W3C
WS-Addressing 1.0 SOAP Binding §6 Faults; ITI TF-2 Appendix V (Web Services for IHE Transactions).
"""

from __future__ import annotations

import re
import uuid
from typing import Final

from lxml import etree

from xds.namespaces import SOAP11, SOAP12, WSA, XML, qn

FAULT_NS: Final = "urn:xds-node:soap:fault"
"""Namespace of this node's own fault subcodes."""

FAULT_ACTION: Final = "http://www.w3.org/2005/08/addressing/soap/fault"
"""``wsa:Action`` of every SOAP 1.2 fault message (WS-Addressing 1.0 SOAP Binding §6)."""

SOAP11_CONTENT_TYPE: Final = "text/xml; charset=utf-8"
"""Content type of the SOAP 1.1 VersionMismatch fault (``render_fault(f, version_mismatch_soap11=True)``)."""

# WS-Addressing 1.0 SOAP Binding §6.4 predefined subcodes.
INVALID_ADDRESSING_HEADER: Final = qn(WSA, "InvalidAddressingHeader")
"""§6.4.1: a header representing a Message Addressing Property is not valid (e.g. appears twice)."""
MESSAGE_ADDRESSING_HEADER_REQUIRED: Final = qn(WSA, "MessageAddressingHeaderRequired")
"""§6.4.2: a required Message Addressing Property (``wsa:Action``) is absent."""
ACTION_NOT_SUPPORTED: Final = qn(WSA, "ActionNotSupported")
"""§6.4.4: the ``wsa:Action`` is not supported at this endpoint."""
ONLY_ANONYMOUS_ADDRESS_SUPPORTED: Final = qn(WSA, "OnlyAnonymousAddressSupported")
"""§6.4.1.1: a response endpoint (``wsa:ReplyTo``) other than anonymous was requested."""

# This node's subcodes (namespace FAULT_NS).
NOT_XML: Final = qn(FAULT_NS, "NotXML")
"""The request body is not well-formed XML."""
DTD_NOT_ALLOWED: Final = qn(FAULT_NS, "DTDNotAllowed")
"""The request carries a DOCTYPE (SOAP 1.2 Part 1 §5: "a SOAP message MUST NOT contain a [DTD]")."""
TOO_LARGE: Final = qn(FAULT_NS, "TooLarge")
"""The envelope exceeds the configured size limit."""
TOO_DEEP: Final = qn(FAULT_NS, "TooDeep")
"""The envelope nests elements deeper than the parser allows."""
NOT_SOAP: Final = qn(FAULT_NS, "NotSOAP")
"""The document element is not a SOAP envelope."""
EMPTY_BODY: Final = qn(FAULT_NS, "EmptyBody")
"""``env:Body`` is missing or has no element child."""
BAD_MTOM: Final = qn(FAULT_NS, "BadMTOM")
"""The ``multipart/related`` MTOM/XOP package is malformed (boundary, start part, cid references, encoding)."""
UNSUPPORTED_MEDIA_TYPE: Final = qn(FAULT_NS, "UnsupportedMediaType")
"""The request's Content-Type is neither SOAP 1.2 (``application/soap+xml``) nor MTOM/XOP."""

FAULT_CODES: Final = frozenset({"Sender", "Receiver", "VersionMismatch", "MustUnderstand", "DataEncodingUnknown"})
"""The ``env:Code/env:Value`` local names allowed by SOAP 1.2 Part 1 §5.4.6."""

_PROBLEM_HEADER_SUBCODES: Final = frozenset({MESSAGE_ADDRESSING_HEADER_REQUIRED, INVALID_ADDRESSING_HEADER})
_PREFIXES: Final = {SOAP12: "env", WSA: "wsa", FAULT_NS: "xf"}
_ILLEGAL_XML_CHARS: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class SoapFault(Exception):
    """A SOAP 1.2 fault (envelope-level problem).

    Parameters
    ----------
    reason : str
        Human-readable ``env:Reason/env:Text`` (English).
    code : str
        Local name of ``env:Code/env:Value``, one of :data:`FAULT_CODES`.
    subcode : str or None
        Clark-notation QName of ``env:Subcode/env:Value``, e.g. :data:`ACTION_NOT_SUPPORTED`.
    detail : str
        Content of ``env:Detail``; omitted when empty. For the WS-Addressing subcodes
        MESSAGE_ADDRESSING_HEADER_REQUIRED and INVALID_ADDRESSING_HEADER give the header's QName
        (``wsa:Action``); for ACTION_NOT_SUPPORTED, the action that was refused.
    not_understood : tuple of str
        Clark-notation QNames of header blocks not understood; rendered as ``env:NotUnderstood`` header blocks
        (§5.4.8) when ``code`` is ``MustUnderstand``.
    """

    def __init__(
        self,
        reason: str,
        *,
        code: str = "Sender",
        subcode: str | None = None,
        detail: str = "",
        not_understood: tuple[str, ...] = (),
    ) -> None:
        if code not in FAULT_CODES:
            raise ValueError(f"SOAP 1.2 fault code must be one of {sorted(FAULT_CODES)}, not {code!r}")
        for name in (subcode, *not_understood):
            if name is not None and not name.startswith("{"):
                raise ValueError(f"expected a Clark-notation QName '{{namespace}}local', got {name!r}")
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.subcode = subcode
        self.detail = detail
        self.not_understood = not_understood

    @property
    def http_status(self) -> int:
        """HTTP status for this fault: 400 for ``Sender``, else 500 (SOAP 1.2 Part 2 §7.5.1.2, Table 20)."""
        return 400 if self.code == "Sender" else 500

    def __repr__(self) -> str:
        return f"SoapFault({self.reason!r}, code={self.code!r}, subcode={self.subcode!r})"


def new_message_id() -> str:
    """Return a fresh ``wsa:MessageID``: a ``urn:uuid:`` URI of a random (version 4) UUID."""
    return f"urn:uuid:{uuid.uuid4()}"


def render_fault(
    fault: SoapFault,
    *,
    relates_to: str = "",
    version_mismatch_soap11: bool = False,
    message_id: str | None = None,
) -> bytes:
    """Serialise ``fault`` as a complete SOAP 1.2 fault message (UTF-8, with XML declaration).

    Parameters
    ----------
    fault : SoapFault
    relates_to : str
        The request's ``wsa:MessageID``, echoed as ``wsa:RelatesTo`` when known.
    version_mismatch_soap11 : bool
        Answer a SOAP 1.1 request: per SOAP 1.2 Part 1 Appendix A the node "MUST generate a version mismatch
        SOAP fault based on a SOAP/1.1 message construct", with an ``env:Upgrade`` header naming SOAP 1.2.
        Send it with :data:`SOAP11_CONTENT_TYPE` and HTTP 500.
    message_id : str or None
        ``wsa:MessageID`` of the fault; a fresh one when None.

    References
    ----------
    SOAP 1.2 Part 1 §5.4, §5.4.7, §5.4.8, Appendix A; WS-Addressing 1.0 SOAP Binding §6.
    """
    root = _soap11_version_mismatch(fault) if version_mismatch_soap11 else _soap12_fault(fault, relates_to, message_id)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _soap12_fault(fault: SoapFault, relates_to: str, message_id: str | None) -> etree._Element:
    root = etree.Element(qn(SOAP12, "Envelope"), nsmap={"env": SOAP12, "wsa": WSA})
    header = _sub(root, SOAP12, "Header")
    _sub(header, WSA, "Action", FAULT_ACTION).set(qn(SOAP12, "mustUnderstand"), "true")
    _sub(header, WSA, "MessageID", message_id or new_message_id())
    if relates_to:
        _sub(header, WSA, "RelatesTo", relates_to)
    _extra_header_blocks(header, fault)
    _fault_element(_sub(root, SOAP12, "Body"), fault)
    return root


def _fault_element(body: etree._Element, fault: SoapFault) -> None:
    element = _sub(body, SOAP12, "Fault")
    code = _sub(element, SOAP12, "Code")
    _sub(code, SOAP12, "Value", f"env:{fault.code}")
    if fault.subcode:
        _qname_child(_sub(code, SOAP12, "Subcode"), qn(SOAP12, "Value"), fault.subcode)
    reason = _sub(_sub(element, SOAP12, "Reason"), SOAP12, "Text", _xml_safe(fault.reason))
    reason.set(qn(XML, "lang"), "en")
    if fault.detail:
        _detail(_sub(element, SOAP12, "Detail"), fault)


def _detail(detail: etree._Element, fault: SoapFault) -> None:
    """Fill ``env:Detail``, which holds elements only (SOAP 1.2 Part 1 §5.4.5).

    WS-Addressing subcodes get their own detail elements (SOAP Binding §6.4.1, §6.4.2, §6.4.4):
    ``wsa:ProblemHeaderQName`` (``detail`` is the header's QName with prefix ``wsa``) or
    ``wsa:ProblemAction/wsa:Action``; anything else is the text of an ``xf:Message`` element.
    """
    text = _xml_safe(fault.detail)
    if fault.subcode == ACTION_NOT_SUPPORTED:
        _sub(_sub(detail, WSA, "ProblemAction"), WSA, "Action", text)
    elif fault.subcode in _PROBLEM_HEADER_SUBCODES and text.startswith("wsa:"):
        _sub(detail, WSA, "ProblemHeaderQName", text)
    else:
        etree.SubElement(detail, qn(FAULT_NS, "Message"), nsmap={"xf": FAULT_NS}).text = text


def _extra_header_blocks(header: etree._Element, fault: SoapFault) -> None:
    """Add the Upgrade (§5.4.7) or NotUnderstood (§5.4.8) header blocks that accompany those fault codes."""
    if fault.code == "VersionMismatch":
        _upgrade(header)
    elif fault.code == "MustUnderstand":
        for name in fault.not_understood:
            _qname_child(header, qn(SOAP12, "NotUnderstood"), name, attr="qname")


def _upgrade(header: etree._Element) -> None:
    """Add ``env:Upgrade`` naming SOAP 1.2 as the supported envelope (SOAP 1.2 Part 1 §5.4.7, Appendix A)."""
    upgrade = etree.SubElement(header, qn(SOAP12, "Upgrade"), nsmap={"env": SOAP12})
    etree.SubElement(upgrade, qn(SOAP12, "SupportedEnvelope"), qname="env:Envelope")


def _soap11_version_mismatch(fault: SoapFault) -> etree._Element:
    """The SOAP/1.1 fault of SOAP 1.2 Part 1 Appendix A (Example 11), unqualified faultcode/faultstring."""
    root = etree.Element(qn(SOAP11, "Envelope"), nsmap={"s11": SOAP11})
    _upgrade(_sub(root, SOAP11, "Header"))
    element = _sub(_sub(root, SOAP11, "Body"), SOAP11, "Fault")
    etree.SubElement(element, "faultcode").text = "s11:VersionMismatch"
    etree.SubElement(element, "faultstring").text = _xml_safe(fault.reason)
    return root


def _sub(parent: etree._Element, namespace: str, local: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, qn(namespace, local))
    element.text = text
    return element


def _qname_child(parent: etree._Element, tag: str, clark: str, *, attr: str = "") -> None:
    """Add ``tag`` under ``parent`` carrying ``clark`` as a prefixed QName (text, or attribute ``attr``).

    The prefix is declared on the new element, so the QName resolves wherever the element is copied.
    """
    qname = etree.QName(clark)
    namespace = qname.namespace or ""
    prefix = _PREFIXES.get(namespace, "ns1")
    element = etree.SubElement(parent, tag, nsmap={prefix: namespace})
    value = f"{prefix}:{qname.localname}"
    if attr:
        element.set(attr, value)
    else:
        element.text = value


def _xml_safe(text: str) -> str:
    """Replace characters that XML 1.0 cannot carry (§2.2 Char) so error text never breaks the fault."""
    return _ILLEGAL_XML_CHARS.sub("\ufffd", text)


__all__ = [
    "ACTION_NOT_SUPPORTED",
    "BAD_MTOM",
    "DTD_NOT_ALLOWED",
    "EMPTY_BODY",
    "FAULT_ACTION",
    "FAULT_CODES",
    "FAULT_NS",
    "INVALID_ADDRESSING_HEADER",
    "MESSAGE_ADDRESSING_HEADER_REQUIRED",
    "NOT_SOAP",
    "NOT_XML",
    "ONLY_ANONYMOUS_ADDRESS_SUPPORTED",
    "SOAP11_CONTENT_TYPE",
    "TOO_DEEP",
    "TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "SoapFault",
    "new_message_id",
    "render_fault",
]
