"""WSDL 1.1 descriptions of this node's SOAP 1.2 endpoints, served at ``?wsdl`` (ITI TF-2 Appendix V.4).

Theory of operation
-------------------
Each WSDL is a packaged template under ``xds/soap/wsdl/``, modelled on the IHE ITI WSDL of the actor (same
portType, operation names and ``wsaw:Action`` values). The types are inline and loose: every message element
is declared in its real ebRS 3.0 namespace with any content, so a third-party client (zeep, SoapUI) loads
the WSDL without fetching a schema, and sends or receives the ebRS elements as raw XML. The only
substitution is the service address.

References
----------
W3C WSDL 1.1 §2-3 and the SOAP 1.2 binding for WSDL 1.1 (``http://schemas.xmlsoap.org/wsdl/soap12/``); W3C
WS-Addressing 1.0 Metadata §4.4 (``wsaw:Action``); ITI TF-2 Appendix V.4 (Web Services Description),
§3.18.5, §3.42.5 (IHE XDS.b_DocumentRegistry.wsdl), §3.41.5, §3.43.5 (IHE XDS.b_DocumentRepository.wsdl).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Final
from xml.sax.saxutils import quoteattr

_ADDRESS_SLOT: Final = b'"{{ADDRESS}}"'


@cache
def _template(package: str, name: str) -> bytes:
    return resources.files(package).joinpath("wsdl", name).read_bytes()


def render_wsdl(name: str, address: str, *, package: str = "xds.soap") -> bytes:
    """Fill the quoted service-address slot of the WSDL template ``<package>/wsdl/<name>`` with ``address``."""
    if not address:
        raise ValueError("a WSDL needs the service address")
    return _template(package, name).replace(_ADDRESS_SLOT, quoteattr(address).encode())


def registry_wsdl(address: str) -> bytes:
    """The Document Registry WSDL: ITI-42 Register Document Set-b and ITI-18 Registry Stored Query.

    Operations ``DocumentRegistry_RegisterDocumentSet-b`` (``lcm:SubmitObjectsRequest`` ->
    ``rs:RegistryResponse``) and ``DocumentRegistry_RegistryStoredQuery`` (``query:AdhocQueryRequest`` ->
    ``query:AdhocQueryResponse``) on one SOAP 1.2 port whose location is ``address``.

    References
    ----------
    ITI TF-2 §3.18.5, §3.42.5 and Appendix V.4.
    """
    return render_wsdl("DocumentRegistry.wsdl", address)


def repository_wsdl(address: str) -> bytes:
    """The Document Repository WSDL: ITI-41 Provide and Register Document Set-b and ITI-43 Retrieve Document Set.

    Operations ``DocumentRepository_ProvideAndRegisterDocumentSet-b``
    (``xdsb:ProvideAndRegisterDocumentSetRequest`` -> ``rs:RegistryResponse``) and
    ``DocumentRepository_RetrieveDocumentSet`` (``xdsb:RetrieveDocumentSetRequest`` ->
    ``xdsb:RetrieveDocumentSetResponse``, documents as MTOM/XOP parts) on one SOAP 1.2 port at ``address``.

    References
    ----------
    ITI TF-2 §3.41.5, §3.43.5 and Appendix V.4.
    """
    return render_wsdl("DocumentRepository.wsdl", address)


def recipient_wsdl(address: str) -> bytes:
    """The XDR Document Recipient WSDL: ITI-41 Provide and Register Document Set-b as a push.

    Operation ``DocumentRecipient_ProvideAndRegisterDocumentSet-b`` (``xdsb:ProvideAndRegisterDocumentSetRequest``
    -> ``rs:RegistryResponse``) on one SOAP 1.2 port at ``address``.

    References
    ----------
    ITI TF-2 §3.41.5 and Appendix V.4; ITI TF-1 §15 (XDR).
    """
    return render_wsdl("DocumentRecipient.wsdl", address)


def imaging_wsdl(address: str) -> bytes:
    """The XDS-I.b Imaging Document Source WSDL: RAD-69 Retrieve Imaging Document Set.

    References
    ----------
    IHE RAD TF-3 §4.69; ITI TF-2 Appendix V.4.
    """
    return render_wsdl("ImagingDocumentSource.wsdl", address)


__all__ = ["imaging_wsdl", "recipient_wsdl", "registry_wsdl", "render_wsdl", "repository_wsdl"]
