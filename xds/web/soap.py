"""The SOAP 1.2 endpoint adapter: the one place where exceptions become answers.

Theory of operation: each actor is a :class:`SoapActor` with a dispatch table ``wsa:Action -> Operation``.
A plain SOAP request body is read up to the size limit. An MTOM/XOP request (``multipart/related``) is
streamed through :class:`~xds.soap.mtom.MtomReader`: the root part (the envelope) is kept in memory up to
the same limit, every attachment streams into a staging file of the document store, hashed on the way, so a
document is never held in memory. The envelope is parsed (envelope problems raise
:class:`~xds.soap.faults.SoapFault`), the operation's handler runs in a worker thread with a
:class:`SoapRequest` and returns the response body, or an :class:`MtomReply` whose parts are streamed from
disk. An :class:`~xds.errors.XDSError` becomes the operation's own error response (RegistryResponse,
AdhocQueryResponse or RetrieveDocumentSetResponse with status Failure, HTTP 200); a SoapFault becomes a
SOAP 1.2 Fault; anything else is logged and answered with a Receiver fault that reveals nothing internal.

Staged attachments a handler did not claim (:attr:`SoapRequest.claimed`) are deleted when the request ends.

Identity and audit: where XUA is configured the SAML assertion in the WS-Security header is verified before
dispatch (a bad one is a ``wsse:`` fault and an audit record); the :class:`SoapRequest` carries the
:class:`~xds.consent.model.Requester` the consent gate decides for. After the handler answered, the
operation's audit record is written to the durable spool before the answer goes out: an answer that could
not be audited is not sent (a Receiver fault instead).

References
----------
ITI TF-2 Appendix V (Web Services for IHE Transactions); SOAP 1.2 Part 2 §7.5.1 (fault HTTP status codes).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final

import anyio
from lxml import etree
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from xds.audit.message import AuditMessage, Code
from xds.audit.transactions import AuditNode, authentication_failure
from xds.config import ConfigError
from xds.consent.model import SOURCE_TLS, Requester
from xds.errors import RegistryErrorItem, XDSError
from xds.node import Node
from xds.registry.transactions import Transaction
from xds.security.xua import XuaError, XuaSettings, XuaVerifier, xua_fault
from xds.soap import faults, mtom
from xds.soap.envelope import CONTENT_TYPE, Envelope, parse_envelope, render_envelope
from xds.soap.faults import SoapFault, render_fault
from xds.soap.mtom import Attachment, MtomReader, PartHeaders, PartSink
from xds.store.audit import SpoolRecord, SqlAuditSpool, spool_record
from xds.store.audit import batch as audit_batch
from xds.store.hooks import before_commit
from xds.web.tls import certificate_organisation

log = logging.getLogger("xds.transaction")

_CHUNK = 1024 * 1024


@dataclass(slots=True)
class SoapRequest:
    """A parsed request: the envelope and, for MTOM/XOP, its attachments by Content-ID."""

    envelope: Envelope
    attachments: Mapping[str, Attachment] = field(default_factory=dict)
    claimed: set[int] = field(default_factory=set)
    """``id()`` of attachment sinks a handler took over (they are not deleted when the request ends)."""
    requester: Requester = field(default_factory=Requester)
    """Who asks: from the verified XUA assertion, else the network peer only."""
    assertion: etree._Element | None = None
    """The verified XUA assertion, when there was one (a gateway may pass it on)."""

    @property
    def body(self) -> etree._Element:
        """The first element child of ``env:Body``."""
        return self.envelope.body

    def claim(self, attachment: Attachment) -> None:
        """Keep this attachment's staged file after the request (the handler owns it now)."""
        self.claimed.add(id(attachment.sink))


@dataclass(frozen=True, slots=True)
class OutPart:
    """A MIME part of an MTOM response: bytes already read, or a file the handler opened (streamed, then
    closed by the adapter). Use :func:`file_part` to build one."""

    cid: str
    content_type: str
    content: bytes | IO[bytes]
    size: int


def file_part(cid: str, content_type: str, path: Path, *, read_below: int = 0) -> OutPart:
    """A part for the file at ``path``: read now when smaller than ``read_below`` bytes (one thread hop for
    the whole answer instead of one per chunk), else opened here and streamed later. Call it in the
    handler's worker thread."""
    fh = open(path, "rb")  # noqa: SIM115 - closed below, or by the adapter after streaming
    try:
        size = os.fstat(fh.fileno()).st_size
        if size < read_below:
            with fh:
                return OutPart(cid, content_type, fh.read(), size)
    except BaseException:
        fh.close()
        raise
    return OutPart(cid, content_type, fh, size)


def close_parts(parts: Iterable[OutPart]) -> None:
    """Close the files of parts that will not be sent."""
    for part in parts:
        if not isinstance(part.content, bytes):
            part.content.close()


@dataclass(frozen=True, slots=True)
class MtomReply:
    """A response body whose ``xop:Include`` references name the parts that follow it."""

    body: bytes
    parts: tuple[OutPart, ...] = ()


Handler = Callable[[SoapRequest], "bytes | MtomReply | Awaitable[bytes | MtomReply]"]
"""A transaction handler. A plain function runs in a worker thread; a coroutine function (an actor that
waits on the network, such as the initiating gateway) runs on the event loop and must not block it."""
ErrorBody = Callable[[tuple[RegistryErrorItem, ...]], bytes]
NewSink = Callable[[PartHeaders], PartSink]


Audit = Callable[["SoapRequest", str], "AuditMessage | None"]
"""The audit record of one answered request, given the answer's status (Success, PartialSuccess, Failure)."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One transaction an actor answers: its descriptor, its handler, its error-response renderer and its
    audit record."""

    transaction: Transaction
    handler: Handler
    error_body: ErrorBody
    audit: Audit | None = None
    audit_in_transaction: bool = False
    """A submission: its Success audit record is written inside the registry transaction that stores it."""


class _TooLarge(Exception):
    pass


def node_actor(
    node: Node,
    name: str,
    operations: list[Operation],
    *,
    wsdl: Callable[[str], bytes],
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    role: str = "",
) -> SoapActor:
    """An actor of ``node``: its request limits, MTOM attachments staged in its document store, XUA as
    configured for ``role`` (``registry``, ``repository``, ``responding``, ``initiating``), and its audit
    records kept in the node's spool."""
    settings = node.settings
    xua = None
    if settings.xua_trusted_certs:
        policy: dict[str, tuple[str, ...]] = {"roles": settings.xua_roles}
        if settings.xua_authn_contexts is not None:
            policy["authn_contexts"] = settings.xua_authn_contexts
        if settings.xua_purposes is not None:
            policy["purposes"] = settings.xua_purposes
        try:
            xua_settings = XuaSettings(
                trusted_certs=settings.xua_trusted_certs,
                audiences=settings.xua_audiences,
                clock_skew=settings.xua_clock_skew,
                allow_sha1=settings.xua_allow_sha1,
                required=role in settings.xua_required,
                **policy,
            )
        except ValueError as exc:
            raise ConfigError(f"[xua] {exc}") from None
        xua = XuaVerifier(xua_settings)
    return SoapActor(
        name,
        operations,
        wsdl=wsdl,
        max_request_bytes=settings.max_request_bytes,
        new_sink=node.new_sink,
        max_attachment_bytes=settings.max_attachment_bytes,
        on_shutdown=on_shutdown,
        xua=xua,
        audit_node=lambda: node.audit_node,
        certificate_attribute=settings.tls_organisation_attribute,
        audit_spool=node.audit,
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class SoapActor:
    """A SOAP 1.2 actor endpoint (``POST`` for transactions, ``GET ?wsdl`` for its WSDL)."""

    def __init__(
        self,
        name: str,
        operations: list[Operation],
        *,
        wsdl: Callable[[str], bytes],
        max_request_bytes: int,
        new_sink: NewSink | None = None,
        max_attachment_bytes: int = 0,
        on_shutdown: Callable[[], Awaitable[None]] | None = None,
        xua: XuaVerifier | None = None,
        audit_node: Callable[[], AuditNode] | None = None,
        certificate_attribute: str = "organizationIdentifier",
        audit_spool: SqlAuditSpool | None = None,
    ) -> None:
        """``audit_spool`` keeps the audit records (none: nothing is audited); ``audit_node`` names this node in
        them."""
        self.name = name
        self.audit_spool = audit_spool
        self.certificate_attribute = certificate_attribute
        self.xua = xua
        self.audit_node = audit_node
        self.on_shutdown = on_shutdown
        """Awaited when the application shuts down (an actor's outbound connection pools)."""
        self.table = {op.transaction.action: op for op in operations}
        self.wsdl = wsdl
        self.max_request_bytes = max_request_bytes
        self.new_sink = new_sink
        self.max_attachment_bytes = max_attachment_bytes

    async def handle(self, request: Request) -> Response:
        """Answer one HTTP request to this actor."""
        if request.method == "GET":
            if "wsdl" in {k.lower() for k in request.query_params}:
                address = str(request.url.replace(query=""))
                return Response(self.wsdl(address), media_type="text/xml; charset=utf-8")
            return Response(f"{self.name}: POST SOAP 1.2 here; GET ?wsdl for the WSDL\n", media_type="text/plain")
        started = time.perf_counter()
        content_type = request.headers.get("content-type", "")
        attachments: Mapping[str, Attachment] = {}
        try:
            if mtom.is_multipart_related(content_type):
                message = await self._read_mtom(request, content_type)
                root, attachments, is_mtom = message.root, message.attachments, True
            else:
                root, is_mtom = await _read_body(request, self.max_request_bytes), False
        except _TooLarge:
            too_large = SoapFault(f"request larger than {self.max_request_bytes} bytes", subcode=faults.TOO_LARGE)
            return self._fault(too_large, "", started, status=413)
        except SoapFault as fault:
            return self._fault(fault, "", started, status=413 if fault.subcode == faults.TOO_LARGE else None)
        soap = None
        try:
            try:
                envelope = parse_envelope(root, max_bytes=self.max_request_bytes)
            except SoapFault as fault:
                return self._fault(fault, "", started)
            address = request.client.host if request.client else ""
            requester, assertion = Requester(address=address), None
            organisation = certificate_organisation(request.scope, self.certificate_attribute)
            if organisation:
                requester = Requester(organisation_id=organisation, source=SOURCE_TLS, address=address)
            if self.xua is not None:
                try:
                    verified = self.xua.verify(envelope.header, now=datetime.now(UTC))
                except XuaError as err:
                    log.warning(
                        "XUA assertion refused",
                        extra={"actor": self.name, "reason": err.reason, "peer": address},
                    )
                    await run_in_threadpool(self._audit_refusal, envelope.action, address, err.reason)
                    return self._fault(xua_fault(err), envelope.message_id, started, action=envelope.action)
                if verified is not None:
                    requester, assertion = verified.requester(address), verified.element
                    if organisation and not requester.organisation_id:
                        requester = dataclasses.replace(requester, organisation_id=organisation)
            soap = SoapRequest(envelope, attachments, requester=requester, assertion=assertion)
            return await self._dispatch(soap, is_mtom, started)
        finally:
            for attachment in attachments.values():
                if soap is None or id(attachment.sink) not in soap.claimed:
                    attachment.sink.abort()

    async def _read_mtom(self, request: Request, content_type: str) -> mtom.MtomMessage:
        if self.new_sink is None:
            raise SoapFault(f"{self.name} does not accept MTOM/XOP requests", subcode=faults.UNSUPPORTED_MEDIA_TYPE)
        reader = MtomReader(
            mtom.multipart_related(content_type),
            self.new_sink,
            max_root_bytes=self.max_request_bytes,
            max_total_bytes=self.max_attachment_bytes,
        )
        try:
            async for chunk in request.stream():
                reader.feed(chunk)
            return reader.finish()
        except BaseException:
            reader.abort()
            raise

    async def _dispatch(self, soap: SoapRequest, is_mtom: bool, started: float) -> Response:
        envelope = soap.envelope
        op = self.table.get(envelope.action)
        if op is None:
            unsupported = SoapFault(
                f"{self.name} does not support action {envelope.action}",
                subcode=faults.ACTION_NOT_SUPPORTED,
                detail=envelope.action,
            )
            return self._fault(unsupported, envelope.message_id, started)
        in_tx: list[bool] = []  # set when the Success record was written inside the registry transaction
        with audit_batch() as pending, before_commit(self._audit_hook(op, soap, in_tx)):
            try:
                if inspect.iscoroutinefunction(op.handler):
                    payload = await op.handler(soap)
                else:
                    payload = await run_in_threadpool(op.handler, soap)
                status, codes = "", _NO_CODES
            except XDSError as exc:
                items = exc.items()
                payload = op.error_body(items)
                codes = tuple(i.error_code for i in items)
                status = "Failure"
            except SoapFault as fault:
                await self._keep(op, soap, pending)
                return self._fault(fault, envelope.message_id, started, action=envelope.action)
            except Exception:
                log.exception("unexpected failure in %s", op.transaction.id)
                await self._keep(op, soap, pending)
                internal = SoapFault("internal error; the failure was logged", code="Receiver")
                return self._fault(internal, envelope.message_id, started, action=envelope.action)
        reply = payload if isinstance(payload, MtomReply) else MtomReply(payload)
        if not status:  # answered normally: the answer itself may still say PartialSuccess or Failure
            status, codes = _outcome(reply.body)
        if in_tx and status != "Success":  # committed, then the answer failed after all: say so as well
            in_tx.clear()
        if self.audit_spool is not None and ((op.audit is not None and not in_tx) or pending):
            try:
                await run_in_threadpool(self._audit, op if not in_tx else None, soap, status, pending)
            except Exception:
                close_parts(reply.parts)
                log.exception("the audit record of %s could not be kept; the answer is withheld", op.transaction.id)
                internal = SoapFault("internal error: the request could not be audited", code="Receiver")
                return self._fault(internal, envelope.message_id, started, action=envelope.action)
        out = render_envelope(action=op.transaction.response_action, body=reply.body, relates_to=envelope.message_id)
        self._log(op.transaction.id, envelope.action, status, codes, started)
        wants_mtom = op.transaction.mtom_response or (is_mtom and op.transaction.mtom) or bool(reply.parts)
        if not wants_mtom:
            return Response(out, media_type=CONTENT_TYPE)
        return await _mtom_response(out, op.transaction.response_action, reply.parts)

    def _audit_refusal(self, action: str, address: str, reason: str) -> None:
        """Keep the audit record of a refused assertion (a failure to keep it is logged: the fault goes out)."""
        if self.audit_spool is None or self.audit_node is None:
            return
        op = self.table.get(action)
        tx = Code(op.transaction.id, "IHE Transactions", op.transaction.title) if op is not None else None
        message = authentication_failure(
            node=self.audit_node(), address=address, time=datetime.now(UTC), reason=reason, transaction=tx
        )
        try:
            self.audit_spool.append([spool_record(message, "ITI-40")])
        except Exception:
            log.exception("the audit record of a refused XUA assertion could not be kept")

    async def _keep(self, op: Operation, soap: SoapRequest, pending: list[SpoolRecord]) -> None:
        """Audit a request that ended in a fault: its decisions and a Failure record (best effort: the fault
        goes out anyway)."""
        if self.audit_spool is None:
            return
        try:
            records = [*pending, *_transaction_record(op, soap, "Failure")]
            if records:
                await run_in_threadpool(self.audit_spool.append, records)
        except Exception:
            log.exception("the audit record of a failed %s could not be kept", op.transaction.id)

    def _audit(self, op: Operation | None, soap: SoapRequest, status: str, pending: list[SpoolRecord]) -> None:
        """Write the request's decisions and the transaction's own record (``op``; None: written already) in
        one database transaction."""
        assert self.audit_spool is not None
        records = list(pending)
        if op is not None:
            records.extend(_transaction_record(op, soap, status))
        self.audit_spool.append(records)

    def _audit_hook(self, op: Operation, soap: SoapRequest, done: list[bool]) -> Callable[[Connection], None] | None:
        """For a submission: write its Success record on the registry transaction's connection."""
        if not op.audit_in_transaction or op.audit is None or self.audit_spool is None:
            return None
        spool = self.audit_spool

        def hook(conn: Connection) -> None:
            spool.append(_transaction_record(op, soap, "Success"), conn=conn)
            done.append(True)

        return hook

    def _fault(
        self,
        fault: SoapFault,
        relates_to: str,
        started: float,
        *,
        status: int | None = None,
        action: str = "",
    ) -> Response:
        self._log("fault", action, f"Fault:{fault.code}", (fault.subcode or "",), started)
        code = status or fault.http_status
        return Response(render_fault(fault, relates_to=relates_to), status_code=code, media_type=CONTENT_TYPE)

    def _log(self, tx: str, action: str, status: str, codes: tuple[str, ...], started: float) -> None:
        log.info(
            "%s %s %s",
            tx,
            status,
            ",".join(c for c in codes if c) or "-",
            extra={
                "actor": self.name,
                "transaction": tx,
                "action": action,
                "status": status,
                "error_codes": [c for c in codes if c],
                "duration_ms": round(1000 * (time.perf_counter() - started), 2),
            },
        )


def _transaction_record(op: Operation, soap: SoapRequest, status: str) -> list[SpoolRecord]:
    """The audit record of ``op`` answered with ``status`` (none when the operation records none)."""
    message = op.audit(soap, status) if op.audit is not None else None
    return [] if message is None else [spool_record(message, op.transaction.id)]


_NO_CODES: tuple[str, ...] = ()
_STATUS: Final = re.compile(rb'status="[^"]*?:(Success|Failure|PartialSuccess)"')
_ERROR_CODE: Final = re.compile(rb'errorCode="([^"]*)"')
_OUTCOME_SCAN: Final = 256 * 1024


def _outcome(body: bytes) -> tuple[str, tuple[str, ...]]:
    """Status and error codes of an answer, for the transaction log: the first ``status`` attribute and the
    ``errorCode`` values in the first 256 KiB (a RegistryErrorList precedes the objects in every answer)."""
    head = body[:_OUTCOME_SCAN]
    found = _STATUS.search(head)
    status = found.group(1).decode() if found else "Success"
    return status, tuple(dict.fromkeys(c.decode() for c in _ERROR_CODE.findall(head)))


async def _mtom_response(envelope: bytes, action: str, parts: tuple[OutPart, ...]) -> Response:
    """An MTOM/XOP response, its documents streamed from the files the handler opened (exact sizes, so the
    Content-Length is known and no read waits for an end of file)."""
    boundary, root_cid = mtom.new_boundary(), mtom.new_content_id("root")
    head = mtom.root_part(boundary=boundary, root_cid=root_cid, envelope=envelope, action=action)
    heads = [mtom.part_head(boundary=boundary, cid=p.cid, content_type=p.content_type) for p in parts]
    tail = mtom.closing(boundary)
    length = len(head) + sum(map(len, heads)) + sum(p.size for p in parts) + len(tail)

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield head
            for part_head, part in zip(heads, parts, strict=True):
                yield part_head
                if isinstance(part.content, bytes):
                    yield part.content
                    continue
                remaining = part.size
                while remaining > 0:
                    chunk = await anyio.to_thread.run_sync(part.content.read, min(_CHUNK, remaining))
                    if not chunk:
                        raise OSError(f"part {part.cid} ended {remaining} bytes early")
                    remaining -= len(chunk)
                    yield chunk
            yield tail
        finally:
            close_parts(parts)

    media_type = mtom.mtom_content_type(boundary=boundary, root_cid=root_cid, action=action)
    return StreamingResponse(stream(), media_type=media_type, headers={"content-length": str(length)})


__all__ = [
    "ErrorBody",
    "Handler",
    "MtomReply",
    "Operation",
    "OutPart",
    "SoapActor",
    "SoapRequest",
    "close_parts",
    "file_part",
    "node_actor",
]
