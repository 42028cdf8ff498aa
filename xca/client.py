"""Outbound XCA calls over httpx (async): ITI-38, ITI-39 and RAD-75 to one community, bounded in time and memory.

Theory of operation: one :class:`GatewayClient` per node keeps one pooled ``httpx.AsyncHTTPTransport`` (HTTP/1.1
keep-alive) per community, created on the event loop that first uses it. A call sends the request
with WS-Addressing headers, streams the answer up to ``max_response_bytes`` (a peer that sends more is
cut off, not buffered), parses it with the hardened parser, and returns a :class:`CommunityAnswer`. A call
may carry a ``wsse:Security`` header block (the XUA assertion, :mod:`xca.assertions`), which
:func:`with_security_header` puts into the rendered envelope as a parsed element. Every way
a community can fail (refused, timed out, TLS, a SOAP fault, not SOAP, too large, malformed) becomes
:class:`CommunityUnavailable` with a reason for the RegistryError the initiating gateway reports; it never
raises anything else.

References
----------
ITI TF-2 §3.38 (Cross Gateway Query), Appendix V (SOAP 1.2, WS-Addressing); ITI TF-2 §3.18.4.1.2.3.7;
RAD TF-3 §4.75 (Cross Gateway Retrieve Imaging Document Set, answered as ITI-39 is);
ITI TF-2 §3.40.4.1 (XUA assertion in the WS-Security header); OASIS WS-Security 1.1 §5 (Security header).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Final

import httpx
from lxml import etree

from xca.directory import Community, Tls
from xds import __version__
from xds import vocabulary as v
from xds.ebrim import messages, xdsb, xdsi
from xds.ebrim.parser import parse_xml
from xds.errors import RegistryErrorItem, XDSError
from xds.model.messages import DocumentRequest, ImagingRetrieveRequest, RetrieveRequest, StoredQueryRequest
from xds.model.metadata import ObjectRef
from xds.namespaces import QUERY, RIM, SOAP12, qn
from xds.security.tls import client_context
from xds.soap import mtom
from xds.soap.envelope import WSSE, parse_envelope, request_envelope, soap_content_type
from xds.soap.faults import SoapFault
from xds.soap.mtom import PartHeaders
from xds.store.documents import StagedFile

DEFAULT_MAX_RESPONSE_BYTES: Final = 64 * 1024 * 1024
PER_COMMUNITY_CONNECTIONS: Final = 32
"""Connections to one community at once (more requests wait for one)."""
_USER_AGENT: Final = f"xds-node/{__version__}"
_ADHOC_QUERY_RESPONSE: Final = qn(QUERY, "AdhocQueryResponse")
_OBJECT_LIST: Final = qn(RIM, "RegistryObjectList")
_OBJECT_REF: Final = qn(RIM, "ObjectRef")
_ASSOCIATION: Final = qn(RIM, "Association")
_EXTERNAL_IDENTIFIER: Final = qn(RIM, "ExternalIdentifier")
_CLASSIFICATION: Final = qn(RIM, "Classification")
_PATIENT_SCHEMES: Final = frozenset({v.DE_PATIENT_ID, v.SS_PATIENT_ID, v.FOLDER_PATIENT_ID})
_FAULT: Final = qn(SOAP12, "Fault")
_HEADER: Final = qn(SOAP12, "Header")
_SECURITY: Final = qn(WSSE, "Security")


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
    facts: tuple[LeafFacts, ...] = ()
    """What the consent gate needs of each ``leaf`` object (same order), read while the answer was parsed."""


@dataclass(frozen=True, slots=True)
class LeafFacts:
    """One returned object as the consent gate sees it: its id, the patientId it carries (DocumentEntry,
    SubmissionSet, Folder), its classCode code, and an association's two ends."""

    id: str
    patient: str = ""
    category: str = ""
    source: str = ""
    target: str = ""
    association: bool = False


def leaf_facts(obj: etree._Element) -> LeafFacts:
    """:class:`LeafFacts` of one ebRIM registry object element."""
    if obj.tag == _ASSOCIATION:
        return LeafFacts(
            obj.get("id", ""), source=obj.get("sourceObject", ""), target=obj.get("targetObject", ""), association=True
        )
    patient = category = ""
    for x in obj.iterchildren(_EXTERNAL_IDENTIFIER):
        if x.get("identificationScheme") in _PATIENT_SCHEMES:
            patient = x.get("value", "")
            break
    for c in obj.iterchildren(_CLASSIFICATION):
        if c.get("classificationScheme") == v.DE_CLASS_CODE:
            category = c.get("nodeRepresentation", "")
            break
    return LeafFacts(obj.get("id", ""), patient=patient, category=category)


class GatewayClient:
    """Outbound ITI-38, ITI-39 and RAD-75 to communities of the directory."""

    def __init__(self, *, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        self.max_response_bytes = max_response_bytes
        self._pools: dict[tuple[str, Tls, int], httpx.AsyncHTTPTransport] = {}

    def _pool(self, community: Community) -> httpx.AsyncHTTPTransport:
        """The pool of ``community`` on the running loop.

        One small pool per community, because httpcore's pool rescans every connection for every queued
        request (cost connections x requests), so one big shared pool collapses under a wide fan-out. The
        transport is used without ``httpx.AsyncClient`` on top: a SOAP call wants none of its cookies,
        redirects, auth or environment proxies, and skipping them saves a third of the client's CPU per call
        (benchmarks/README.md)."""
        key = (community.home_community_id, community.tls, id(asyncio.get_running_loop()))
        pool = self._pools.get(key)
        if pool is None:
            pool = httpx.AsyncHTTPTransport(
                verify=_ssl_context(community.tls),
                limits=httpx.Limits(max_connections=PER_COMMUNITY_CONNECTIONS, max_keepalive_connections=8),
            )
            self._pools[key] = pool
        return pool

    @contextlib.asynccontextmanager
    async def _exchange(
        self, community: Community, url: str, action: str, envelope: bytes, timeout: float
    ) -> AsyncIterator[httpx.Response]:
        """POST ``envelope`` to ``url``; the answer's body is streamed by the caller inside the block."""
        request = httpx.Request(
            "POST",
            url,
            content=envelope,
            headers={"content-type": soap_content_type(action), "user-agent": _USER_AGENT},
            extensions={"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}},
        )
        response = await self._pool(community).handle_async_request(request)
        try:
            yield response
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        """Close the connection pools of the running loop."""
        loop = id(asyncio.get_running_loop())
        for key in [k for k in self._pools if k[2] == loop]:
            await self._pools.pop(key).aclose()

    async def cross_gateway_query(
        self, community: Community, request: StoredQueryRequest, *, timeout: float, security: bytes | None = None
    ) -> CommunityAnswer:
        """ITI-38 to ``community``; raise :class:`CommunityUnavailable` when there is no usable answer.

        ``security`` is a serialized ``wsse:Security`` header block sent with the request (none when None).
        """
        body = messages.render_adhoc_query_request(request)
        envelope = request_envelope(action=v.ACTION_CROSS_GATEWAY_QUERY, body=body, to=community.query_url)
        if security is not None:
            envelope = with_security_header(envelope, security)
        status, raw = await self._post(community, community.query_url, v.ACTION_CROSS_GATEWAY_QUERY, envelope, timeout)
        return _query_answer(status, raw, community.home_community_id, self.max_response_bytes)

    async def cross_gateway_retrieve(
        self,
        community: Community,
        request: RetrieveRequest,
        *,
        timeout: float,
        new_file: Callable[[], StagedFile],
        max_document_bytes: int,
        security: bytes | None = None,
    ) -> RetrievedFrom:
        """ITI-39 to ``community``: its documents land in staged files (never in memory), which the caller
        owns; raise :class:`CommunityUnavailable` (every file deleted) when there is no usable answer.
        ``security`` is a serialized ``wsse:Security`` header block sent with the request (none when None)."""
        return await self._retrieve(
            community,
            v.ACTION_CROSS_GATEWAY_RETRIEVE,
            xdsb.render_retrieve_request(request),
            timeout=timeout,
            new_file=new_file,
            max_document_bytes=max_document_bytes,
            security=security,
        )

    async def cross_gateway_retrieve_imaging(
        self,
        community: Community,
        request: ImagingRetrieveRequest,
        *,
        timeout: float,
        new_file: Callable[[], StagedFile],
        max_document_bytes: int,
        security: bytes | None = None,
    ) -> RetrievedFrom:
        """RAD-75 to ``community`` (at its ``retrieve_url``, the Responding Gateway), answered like ITI-39: a
        ``RetrieveDocumentSetResponse`` whose instances land in staged files the caller owns; raise
        :class:`CommunityUnavailable` (every file deleted) when there is no usable answer. The request's
        TransferSyntaxUIDList is sent as given (the responder decides what it accepts)."""
        return await self._retrieve(
            community,
            v.ACTION_CROSS_GATEWAY_RETRIEVE_IMAGING,
            xdsi.render_imaging_retrieve_request(request),
            timeout=timeout,
            new_file=new_file,
            max_document_bytes=max_document_bytes,
            security=security,
        )

    async def _retrieve(
        self,
        community: Community,
        action: str,
        body: bytes,
        *,
        timeout: float,
        new_file: Callable[[], StagedFile],
        max_document_bytes: int,
        security: bytes | None,
    ) -> RetrievedFrom:
        """POST a retrieve request (``body``, SOAP ``action``) to ``community.retrieve_url`` and read its
        ``RetrieveDocumentSetResponse``, MTOM parts streamed into staged files."""
        envelope = request_envelope(action=action, body=body, to=community.retrieve_url)
        if security is not None:
            envelope = with_security_header(envelope, security)
        files: list[StagedFile] = []

        def sink(_headers: PartHeaders) -> StagedFile:
            files.append(new_file())
            return files[-1]

        try:
            async with self._exchange(community, community.retrieve_url, action, envelope, timeout) as response:
                content_type = response.headers.get("content-type", "")
                if mtom.is_multipart_related(content_type):
                    reader = mtom.MtomReader(
                        mtom.multipart_related(content_type),
                        sink,
                        max_root_bytes=self.max_response_bytes,
                        max_total_bytes=max_document_bytes,
                    )
                    async for chunk in response.aiter_bytes():
                        reader.feed(chunk)
                    message = reader.finish()
                    root, attachments = message.root, message.attachments
                else:
                    root, attachments = await _read_limited(response, self.max_response_bytes), {}
                status = response.status_code
            return _retrieve_answer(
                status, root, attachments, community.home_community_id, self.max_response_bytes, new_file
            )
        except BaseException as exc:
            for f in files:
                f.abort()
            if isinstance(exc, CommunityUnavailable):
                raise
            raise _unavailable(exc, timeout) from None

    async def _post(
        self, community: Community, url: str, action: str, envelope: bytes, timeout: float
    ) -> tuple[int, bytes]:
        try:
            async with self._exchange(community, url, action, envelope, timeout) as response:
                return response.status_code, await _read_limited(response, self.max_response_bytes)
        except CommunityUnavailable:
            raise
        except (httpx.HTTPError, ssl.SSLError) as exc:
            raise _unavailable(exc, timeout) from None


def with_security_header(envelope: bytes, security: bytes) -> bytes:
    """``envelope`` (a rendered SOAP 1.2 request) with the header block ``security`` as the last child of
    ``env:Header``.

    Both are parsed with the hardened parser and the result is serialized by lxml: the block (which may hold
    a consumer's assertion) is never spliced in as text. The block gets no ``env:mustUnderstand``: the
    assertion is optional for a responder unless it requires one (ITI TF-2 §3.40.4.2), and a responder that
    does not process WS-Security must still be able to answer.

    Raises
    ------
    ValueError
        When ``security`` is not a ``wsse:Security`` element or ``envelope`` has no ``env:Header``.
    """
    block = parse_xml(security)
    if block.tag != _SECURITY:
        raise ValueError(f"not a wsse:Security header block: <{etree.QName(block).text}>")
    root = parse_xml(envelope)
    header = root.find(_HEADER)
    if header is None:
        raise ValueError("the envelope has no env:Header")
    header.append(block)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise CommunityUnavailable(f"answer larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _unavailable(exc: BaseException, timeout: float) -> CommunityUnavailable:
    """What went wrong with a community, as the reason of its XDSUnavailableCommunity error."""
    if isinstance(exc, httpx.TimeoutException):
        return CommunityUnavailable(f"no answer within {timeout:g} s")
    if isinstance(exc, httpx.ConnectError):
        return CommunityUnavailable(f"cannot connect: {_why(exc)}")
    if isinstance(exc, ssl.SSLError):
        return CommunityUnavailable(f"TLS: {_why(exc)}")
    if isinstance(exc, SoapFault):
        return CommunityUnavailable(f"broken MTOM answer: {exc.reason}")
    if isinstance(exc, (httpx.HTTPError, OSError, XDSError)):
        return CommunityUnavailable(f"{type(exc).__name__}: {_why(exc)}")
    if isinstance(exc, Exception):
        return CommunityUnavailable(f"unusable answer ({type(exc).__name__})")
    raise exc  # CancelledError, KeyboardInterrupt: not a community's fault


def _answer_body(status: int, raw: bytes, max_bytes: int) -> etree._Element:
    """The body element of a community's SOAP answer; CommunityUnavailable for a fault or anything not SOAP."""
    try:
        envelope = parse_envelope(raw, max_bytes=max_bytes)
    except SoapFault as fault:
        what = f"HTTP {status}" if status != 200 else "the answer"
        raise CommunityUnavailable(f"{what} is not SOAP 1.2: {fault.reason}") from None
    if envelope.body.tag == _FAULT:
        reason = " ".join(t.strip() for t in envelope.body.itertext() if t.strip())
        raise CommunityUnavailable(f"SOAP fault: {reason[:300]}")
    return envelope.body


def _query_answer(status: int, raw: bytes, home: str, max_bytes: int) -> CommunityAnswer:
    body = _answer_body(status, raw, max_bytes)
    if body.tag != _ADHOC_QUERY_RESPONSE or not body.get("status"):
        raise CommunityUnavailable(f"not an AdhocQueryResponse: <{etree.QName(body).text}>")
    errors = tuple(_located(e, home) for e in messages.registry_errors(body))
    objects = body.find(_OBJECT_LIST)
    children = [] if objects is None else [c for c in objects if isinstance(c.tag, str)]
    refs = tuple(ObjectRef(id=c.get("id", ""), home=c.get("home") or home) for c in children if c.tag == _OBJECT_REF)
    leaf = []
    facts = []
    if any(c.tag != _OBJECT_REF for c in children):
        # Moved (not copied) under a fresh parent: lxml then declares on each object only the namespaces it
        # uses, so its serialization stands alone without the envelope's declarations.
        holder = etree.Element(_OBJECT_LIST, nsmap={"rim": RIM})
        for c in children:
            if c.tag == _OBJECT_REF:
                continue
            holder.append(c)
            if not c.get("home"):
                c.set("home", home)
            leaf.append(etree.tostring(c, encoding="unicode", with_tail=False))
            facts.append(leaf_facts(c))
    return CommunityAnswer(
        status=body.get("status", ""), errors=errors, leaf=tuple(leaf), refs=refs, facts=tuple(facts)
    )


@dataclass(frozen=True, slots=True)
class RetrievedFrom:
    """What one community answered to ITI-39 (or RAD-75); each document's bytes are in a staged file the caller
    owns."""

    status: str
    errors: tuple[RegistryErrorItem, ...]
    documents: tuple[tuple[DocumentRequest, str, StagedFile], ...]


def _retrieve_answer(
    status: int,
    raw: bytes,
    attachments: Mapping[str, mtom.Attachment],
    home: str,
    max_bytes: int,
    new_file: Callable[[], StagedFile],
) -> RetrievedFrom:
    body = _answer_body(status, raw, max_bytes)
    try:
        answer_status, errors, documents = xdsb.retrieve_response(body)
    except XDSError as exc:
        raise CommunityUnavailable(f"not a RetrieveDocumentSetResponse: {exc.code_context}") from None
    out: list[tuple[DocumentRequest, str, StagedFile]] = []
    used: set[int] = set()
    for ids, mime_type, part in documents:
        if part.cid is not None:
            attachment = attachments.get(part.cid)
            if attachment is None or not isinstance(attachment.sink, StagedFile):
                raise CommunityUnavailable(f"document {ids.document_unique_id}: cid:{part.cid} names no part")
            staged = attachment.sink
        else:
            staged = new_file()
            staged.write(xdsb.inline_bytes(part))
            staged.close()
        used.add(id(staged))
        out.append((dataclasses.replace(ids, home_community_id=ids.home_community_id or home), mime_type, staged))
    for attachment in attachments.values():
        if id(attachment.sink) not in used:
            attachment.sink.abort()
    located = tuple(_located(e, home) for e in errors)
    return RetrievedFrom(status=answer_status, errors=located, documents=tuple(out))


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
    return client_context(tls.ca_file, tls.cert_file, tls.key_file)


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "CommunityAnswer",
    "CommunityUnavailable",
    "GatewayClient",
    "LeafFacts",
    "RetrievedFrom",
    "leaf_facts",
    "with_security_header",
]
