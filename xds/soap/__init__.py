"""SOAP 1.2 codec: envelope and WS-Addressing headers, faults, WSDL (ITI TF-2 Appendix V).

The codec turns request bytes into an :class:`Envelope` or a :class:`SoapFault`, and renders answers and
faults. It does no I/O, and its only non-determinism is the ``wsa:MessageID`` factory.

References
----------
W3C SOAP Version 1.2 Part 1 and Part 2; W3C WS-Addressing 1.0 Core and SOAP Binding; ITI TF-2 Appendix V.
"""

from xds.soap.envelope import (
    ANONYMOUS,
    CONTENT_TYPE,
    Envelope,
    parse_envelope,
    render_envelope,
    request_envelope,
    soap_content_type,
)
from xds.soap.faults import (
    ACTION_NOT_SUPPORTED,
    DTD_NOT_ALLOWED,
    EMPTY_BODY,
    FAULT_ACTION,
    FAULT_NS,
    INVALID_ADDRESSING_HEADER,
    MESSAGE_ADDRESSING_HEADER_REQUIRED,
    NOT_SOAP,
    NOT_XML,
    ONLY_ANONYMOUS_ADDRESS_SUPPORTED,
    SOAP11_CONTENT_TYPE,
    TOO_DEEP,
    TOO_LARGE,
    SoapFault,
    new_message_id,
    render_fault,
)
from xds.soap.wsdl import registry_wsdl

__all__ = [
    "ACTION_NOT_SUPPORTED",
    "ANONYMOUS",
    "CONTENT_TYPE",
    "DTD_NOT_ALLOWED",
    "EMPTY_BODY",
    "FAULT_ACTION",
    "FAULT_NS",
    "INVALID_ADDRESSING_HEADER",
    "MESSAGE_ADDRESSING_HEADER_REQUIRED",
    "NOT_SOAP",
    "NOT_XML",
    "ONLY_ANONYMOUS_ADDRESS_SUPPORTED",
    "SOAP11_CONTENT_TYPE",
    "TOO_DEEP",
    "TOO_LARGE",
    "Envelope",
    "SoapFault",
    "new_message_id",
    "parse_envelope",
    "registry_wsdl",
    "render_envelope",
    "render_fault",
    "request_envelope",
    "soap_content_type",
]
