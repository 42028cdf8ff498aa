"""``xds serve`` over HTTPS: the server's TLS context, and the client certificate in each request's scope.

Theory of operation: with ``[tls] cert_file`` and ``key_file`` uvicorn serves HTTPS from a context built by
:func:`server_context`: TLS 1.2 or newer only, and with ``client_ca_file`` client certificates from those CAs
are asked for (required with ``require_client_cert``: a handshake without one, or with one from another CA,
fails before any HTTP). uvicorn's HTTP protocol does not tell the application about the client certificate, so
:class:`TlsHttpToolsProtocol` (uvicorn's own httptools protocol, plus this) puts the ASGI TLS extension in each
request's scope (``scope["extensions"]["tls"]``: ``client_cert_name`` as an RFC 4514 string,
``client_cert_subject`` as (attribute, value) pairs, ``tls_version``). :func:`certificate_organisation` reads
the requester's organisation from it for the consent gate when no XUA assertion names one.

References
----------
ASGI TLS extension (asgiref docs, "TLS"); RFC 4514; ITI TF-2 §3.19 (Authenticate Node).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from typing import Any, Final

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PROTOCOL: Final = "xds.web.tls:TlsHttpToolsProtocol"
"""uvicorn's ``http`` setting for a node served over HTTPS (an import string: workers import it)."""

_TLS_VERSIONS: Final = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def server_context(
    cert_file: str, key_file: str, client_ca_file: str = "", require_client_cert: bool = False
) -> ssl.SSLContext:
    """The server context: TLS 1.2+, our certificate, and client certificates from ``client_ca_file``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    if client_ca_file:
        context.load_verify_locations(cafile=client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return context


def context_factory(
    cert_file: str, key_file: str, client_ca_file: str, require_client_cert: bool
) -> Callable[[Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]:
    """uvicorn's ``ssl_context_factory`` for these files (picklable: workers rebuild it)."""
    return _Factory(cert_file, key_file, client_ca_file, require_client_cert)


class _Factory:
    def __init__(self, cert_file: str, key_file: str, client_ca_file: str, require_client_cert: bool) -> None:
        self.args = (cert_file, key_file, client_ca_file, require_client_cert)

    def __call__(self, _config: Config, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return server_context(*self.args)


class TlsHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that also puts the ASGI TLS extension into every request's scope."""

    _tls: dict[str, Any] | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        peer = ssl_object.getpeercert() or {}
        subject = [(name, value) for rdn in peer.get("subject", ()) for name, value in rdn]
        self._tls = {
            "client_cert_name": ",".join(f"{name}={_escape(value)}" for name, value in reversed(subject)) or None,
            "client_cert_subject": subject,
            "client_cert_error": None,
            "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
            "cipher_suite": None,
        }

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            extensions: dict[str, Any] = {"tls": self._tls}
            self.scope["extensions"] = extensions


def certificate_organisation(scope: Mapping[str, Any], attribute: str) -> str:
    """The value of subject ``attribute`` (e.g. ``organizationIdentifier``) of the request's client
    certificate, "" when there is none."""
    tls = scope.get("extensions", {}).get("tls") or {}
    for name, value in tls.get("client_cert_subject") or ():
        if name == attribute:
            return str(value)
    return ""


def _escape(value: str) -> str:
    """An RFC 4514 attribute value."""
    out = "".join("\\" + c if c in ',+"\\<>;=' else c for c in value)
    if out.startswith((" ", "#")):
        out = "\\" + out
    if out.endswith(" "):
        out = out[:-1] + "\\ "
    return out


__all__ = ["PROTOCOL", "TlsHttpToolsProtocol", "certificate_organisation", "context_factory", "server_context"]
