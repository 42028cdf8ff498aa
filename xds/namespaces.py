"""XML namespaces used on the wire (ebRIM/ebRS 3.0, XDS.b, SOAP 1.2, WS-Addressing, XOP).

References
----------
OASIS ebXML RegRep 3.0 (rim, rs, lcm, query); ITI TF-2 Appendix V (SOAP 1.2, WS-Addressing 1.0).
"""

from typing import Final

RIM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
LCM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
QUERY: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
XDSB: Final = "urn:ihe:iti:xds-b:2007"
XDSI: Final = "urn:ihe:rad:xdsi-b:2009"
"""XDS-I.b: RAD-69 / RAD-75 RetrieveImagingDocumentSetRequest."""
RIM21: Final = "urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1"
"""ebRIM 2.1 (XDS.a and XDM before 2010): recognised only to refuse it with a clear message."""
RS21: Final = "urn:oasis:names:tc:ebxml-regrep:registry:xsd:2.1"
SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"
WSA: Final = "http://www.w3.org/2005/08/addressing"
XOP: Final = "http://www.w3.org/2004/08/xop/include"
XML: Final = "http://www.w3.org/XML/1998/namespace"
WSDL: Final = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP12: Final = "http://schemas.xmlsoap.org/wsdl/soap12/"
WSAW: Final = "http://www.w3.org/2006/05/addressing/wsdl"
XSD: Final = "http://www.w3.org/2001/XMLSchema"

#: Prefix map shared by every ``find``/``xpath`` call and by the element makers.
NSMAP: Final[dict[str, str]] = {
    "rim": RIM,
    "rs": RS,
    "lcm": LCM,
    "query": QUERY,
    "xdsb": XDSB,
    "soap": SOAP12,
    "wsa": WSA,
    "xop": XOP,
}


def qn(ns: str, local: str) -> str:
    """Clark notation ``{ns}local`` for lxml."""
    return f"{{{ns}}}{local}"
