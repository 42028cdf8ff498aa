"""TLS for the node's outbound connections: one client context builder for every peer.

Every outbound TLS connection (XCA communities, the Mitz decision point, the Audit Record Repository) uses a
context from :func:`client_context`: TLS 1.2 or later, the peer's certificate and host name verified against
``ca_file`` (empty: the system store), and the node's own certificate presented when ``cert_file`` is given
(mutual TLS, as IHE ATNA's Authenticate Node asks).

References
----------
ITI TF-2 §3.19 (Authenticate Node); RFC 5246/8446; Python ``ssl`` (create_default_context).
"""

from __future__ import annotations

import ssl


def client_context(ca_file: str = "", cert_file: str = "", key_file: str = "") -> ssl.SSLContext:
    """A verifying client context, TLS 1.2 or newer; ``key_file`` may be empty when the key is in ``cert_file``.

    Raises ``OSError``/``ssl.SSLError`` for a file that cannot be read or does not hold what it should.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file:
        context.load_cert_chain(cert_file, key_file or None)
    return context


__all__ = ["client_context"]
