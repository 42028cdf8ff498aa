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

References
----------
ITI TF-2 Appendix V (Web Services for IHE Transactions); SOAP 1.2 Part 2 §7.5.1 (fault HTTP status codes).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import anyio
from lxml import etree
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from xds.errors import RegistryErrorItem, XDSError
from xds.registry.transactions import Transaction
from xds.soap import faults, mtom
from xds.soap.envelope import CONTENT_TYPE, Envelope, parse_envelope, render_envelope
from xds.soap.faults import SoapFault, render_fault
from xds.soap.mtom import Attachment, MtomReader, PartHeaders, PartSink

log = logging.getLogger("xds.transaction")

_CHUNK = 1024 * 1024


@dataclass(slots=True)
class SoapRequest:
    """A parsed request: the envelope and, for MTOM/XOP, its attachments by Content-ID."""

    envelope: Envelope
    attachments: Mapping[str, Attachment] = field(default_factory=dict)
    claimed: set[int] = field(default_factory=set)
    """``id()`` of attachment sinks a handler took over (they are not deleted when the request ends)."""

    @property
    def body(self) -> etree._Element:
        """The first element child of ``env:Body``."""
        return self.envelope.body

    def claim(self, attachment: Attachment) -> None:
        """Keep this attachment's staged file after the request (the handler owns it now)."""
        self.claimed.add(id(attachment.sink))


@dataclass(frozen=True, slots=True)
class OutPart:
    """A MIME part of an MTOM response, streamed from a file."""

    cid: str
    content_type: str
    path: Path


@dataclass(frozen=True, slots=True)
class MtomReply:
    """A response body whose ``xop:Include`` references name the parts that follow it."""

    body: bytes
    parts: tuple[OutPart, ...] = ()


Handler = Callable[[SoapRequest], "bytes | MtomReply"]
ErrorBody = Callable[[tuple[RegistryErrorItem, ...]], bytes]
NewSink = Callable[[PartHeaders], PartSink]


@dataclass(frozen=True, slots=True)
class Operation:
    """One transaction an actor answers: its descriptor, its handler and its error-response renderer."""

    transaction: Transaction
    handler: Handler
    error_body: ErrorBody


class _TooLarge(Exception):
    pass


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
    ) -> None:
        self.name = name
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
            soap = SoapRequest(envelope, attachments)
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
        try:
            payload = await run_in_threadpool(op.handler, soap)
            codes: tuple[str, ...] = ()
            status = "Success"
        except XDSError as exc:
            items = exc.items()
            payload = op.error_body(items)
            codes = tuple(i.error_code for i in items)
            status = "Failure"
        except SoapFault as fault:
            return self._fault(fault, envelope.message_id, started, action=envelope.action)
        except Exception:
            log.exception("unexpected failure in %s", op.transaction.id)
            internal = SoapFault("internal error; the failure was logged", code="Receiver")
            return self._fault(internal, envelope.message_id, started, action=envelope.action)
        reply = payload if isinstance(payload, MtomReply) else MtomReply(payload)
        out = render_envelope(action=op.transaction.response_action, body=reply.body, relates_to=envelope.message_id)
        self._log(op.transaction.id, envelope.action, status, codes, started)
        wants_mtom = op.transaction.mtom_response or (is_mtom and op.transaction.mtom) or bool(reply.parts)
        if not wants_mtom:
            return Response(out, media_type=CONTENT_TYPE)
        return await _mtom_response(out, op.transaction.response_action, reply.parts)

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


async def _mtom_response(envelope: bytes, action: str, parts: tuple[OutPart, ...]) -> Response:
    """An MTOM/XOP response streamed from disk: every file is opened before the status line goes out."""
    boundary, root_cid = mtom.new_boundary(), mtom.new_content_id("root")
    files: list[IO[bytes]] = []
    try:
        for part in parts:
            files.append(await anyio.to_thread.run_sync(open, part.path, "rb"))
    except BaseException:
        for fh in files:
            fh.close()
        raise

    head = mtom.root_part(boundary=boundary, root_cid=root_cid, envelope=envelope, action=action)
    heads = [mtom.part_head(boundary=boundary, cid=p.cid, content_type=p.content_type) for p in parts]
    tail = mtom.closing(boundary)
    length = len(head) + sum(map(len, heads)) + sum(os.fstat(fh.fileno()).st_size for fh in files) + len(tail)

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield head
            for part_head, fh in zip(heads, files, strict=True):
                yield part_head
                while chunk := await anyio.to_thread.run_sync(fh.read, _CHUNK):
                    yield chunk
            yield tail
        finally:
            for fh in files:
                fh.close()

    media_type = mtom.mtom_content_type(boundary=boundary, root_cid=root_cid, action=action)
    return StreamingResponse(stream(), media_type=media_type, headers={"content-length": str(length)})


__all__ = ["ErrorBody", "Handler", "MtomReply", "Operation", "OutPart", "SoapActor", "SoapRequest"]
