"""Outbound XCA calls over httpx (async): ITI-38 to one community, with bounded time and bounded memory.

Theory of operation: one :class:`GatewayClient` per node keeps one pooled ``httpx.AsyncClient`` (HTTP/1.1
keep-alive) per TLS configuration, created on the event loop that first uses it. A call sends the request
with WS-Addressing headers, streams the answer up to ``max_response_bytes`` (a peer that sends more is
cut off, not buffered), parses it with the hardened parser, and returns a :class:`CommunityAnswer`. Every way
a community can fail (refused, timed out, TLS, a SOAP fault, not SOAP, too large, malformed) becomes
:class:`CommunityUnavailable` with a reason for the RegistryError the initiating gateway reports; it never
raises anything else.

References
----------
ITI TF-2 §3.38 (Cross Gateway Query), Appendix V (SOAP 1.2, WS-Addressing); ITI TF-2 §3.18.4.1.2.3.7.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Final

import httpx
from lxml import etree

from xca.directory import Community, Tls
from xds import __version__
from xds import vocabulary as v
from xds.ebrim import messages
from xds.errors import RegistryErrorItem
from xds.model.messages import StoredQueryRequest
from xds.model.metadata import ObjectRef
from xds.namespaces import QUERY, RIM, SOAP12, qn
from xds.soap.envelope import parse_envelope, request_envelope, soap_content_type
from xds.soap.faults import SoapFault

DEFAULT_MAX_RESPONSE_BYTES: Final = 64 * 1024 * 1024
_ADHOC_QUERY_RESPONSE: Final = qn(QUERY, "AdhocQueryResponse")
_OBJECT_LIST: Final = qn(RIM, "RegistryObjectList")
_OBJECT_REF: Final = qn(RIM, "ObjectRef")
_FAULT: Final = qn(SOAP12, "Fault")


class CommunityUnavailable(Exception):
    """A community gave no usable answer; ``reason`` says why (for the XDSUnavailableCommunity error)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CommunityAnswer:
    """What one community answered to ITI-38: status, its errors, and its objects (each with ``home``)."""

    status: str
    errors: tuple[RegistryErrorItem, ...]
    leaf: tuple[str, ...] = ()
    refs: tuple[ObjectRef, ...] = ()


class GatewayClient:
    """Outbound ITI-38 (later ITI-39) to communities of the directory."""

    def __init__(self, *, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        self.max_response_bytes = max_response_bytes
        self._clients: dict[tuple[Tls, int], httpx.AsyncClient] = {}

    def _client(self, tls: Tls) -> httpx.AsyncClient:
        key = (tls, id(asyncio.get_running_loop()))
        client = self._clients.get(key)
        if client is None:
            client = httpx.AsyncClient(
                verify=_ssl_context(tls),
                headers={"user-agent": f"xds-node/{__version__}"},
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            )
            self._clients[key] = client
        return client

    async def aclose(self) -> None:
        """Close the connection pools of the running loop."""
        loop = id(asyncio.get_running_loop())
        for key in [k for k in self._clients if k[1] == loop]:
            await self._clients.pop(key).aclose()

    async def cross_gateway_query(
        self, community: Community, request: StoredQueryRequest, *, timeout: float
    ) -> CommunityAnswer:
        """ITI-38 to ``community``; raise :class:`CommunityUnavailable` when there is no usable answer."""
        body = messages.render_adhoc_query_request(request)
        envelope = request_envelope(action=v.ACTION_CROSS_GATEWAY_QUERY, body=body, to=community.query_url)
        status, raw = await self._post(community, community.query_url, v.ACTION_CROSS_GATEWAY_QUERY, envelope, timeout)
        return _query_answer(status, raw, community.home_community_id, self.max_response_bytes)

    async def _post(
        self, community: Community, url: str, action: str, envelope: bytes, timeout: float
    ) -> tuple[int, bytes]:
        headers = {"content-type": soap_content_type(action)}
        try:
            async with self._client(community.tls).stream(
                "POST", url, content=envelope, headers=headers, timeout=timeout
            ) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_response_bytes:
                        raise CommunityUnavailable(f"answer larger than {self.max_response_bytes} bytes")
                    chunks.append(chunk)
                status = response.status_code
        except httpx.TimeoutException:
            raise CommunityUnavailable(f"no answer within {timeout:g} s") from None
        except httpx.ConnectError as exc:
            raise CommunityUnavailable(f"cannot connect: {_why(exc)}") from None
        except httpx.HTTPError as exc:
            raise CommunityUnavailable(f"{type(exc).__name__}: {_why(exc)}") from None
        except ssl.SSLError as exc:
            raise CommunityUnavailable(f"TLS: {_why(exc)}") from None
        return status, b"".join(chunks)


def _query_answer(status: int, raw: bytes, home: str, max_bytes: int) -> CommunityAnswer:
    try:
        envelope = parse_envelope(raw, max_bytes=max_bytes)
    except SoapFault as fault:
        what = f"HTTP {status}" if status != 200 else "the answer"
        raise CommunityUnavailable(f"{what} is not SOAP 1.2: {fault.reason}") from None
    body = envelope.body
    if body.tag == _FAULT:
        reason = " ".join(t.strip() for t in body.itertext() if t.strip())
        raise CommunityUnavailable(f"SOAP fault: {reason[:300]}")
    if body.tag != _ADHOC_QUERY_RESPONSE or not body.get("status"):
        raise CommunityUnavailable(f"not an AdhocQueryResponse: <{etree.QName(body).text}>")
    errors = tuple(_located(e, home) for e in messages.registry_errors(body))
    objects = body.find(_OBJECT_LIST)
    children = [] if objects is None else [c for c in objects if isinstance(c.tag, str)]
    refs = tuple(ObjectRef(id=c.get("id", ""), home=c.get("home") or home) for c in children if c.tag == _OBJECT_REF)
    leaf = []
    for c in children:
        if c.tag == _OBJECT_REF:
            continue
        if not c.get("home"):
            c.set("home", home)
        leaf.append(etree.tostring(c, encoding="unicode", with_tail=False))
    return CommunityAnswer(status=body.get("status", ""), errors=errors, leaf=tuple(leaf), refs=refs)


def _located(item: RegistryErrorItem, home: str) -> RegistryErrorItem:
    return (
        item
        if item.location
        else RegistryErrorItem(
            error_code=item.error_code, code_context=item.code_context, severity=item.severity, location=home
        )
    )


def _ssl_context(tls: Tls) -> ssl.SSLContext | bool:
    if not tls.verify:
        return False
    context = ssl.create_default_context(cafile=tls.ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file or None)
    return context


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "CommunityAnswer", "CommunityUnavailable", "GatewayClient"]
