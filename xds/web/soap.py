"""The SOAP 1.2 endpoint adapter: the one place where exceptions become answers.

Theory of operation: each actor is a :class:`SoapActor` with a dispatch table ``wsa:Action -> Operation``.
A request body is read up to the size limit, its envelope parsed (envelope problems raise
:class:`~xds.soap.faults.SoapFault`), the operation's handler runs in a worker thread and returns the response
body. An :class:`~xds.errors.XDSError` becomes the operation's own error response (RegistryResponse or
AdhocQueryResponse with status Failure, HTTP 200); a SoapFault becomes a SOAP 1.2 Fault; anything else is
logged and answered with a Receiver fault that reveals nothing internal.

References
----------
ITI TF-2 Appendix V (Web Services for IHE Transactions); SOAP 1.2 Part 2 §7.5.1 (fault HTTP status codes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from xds.errors import RegistryErrorItem, XDSError, XDSErrors
from xds.registry.transactions import Transaction
from xds.soap import faults
from xds.soap.envelope import CONTENT_TYPE, parse_envelope, render_envelope
from xds.soap.faults import SoapFault, render_fault

log = logging.getLogger("xds.transaction")

Handler = Callable[[etree._Element], bytes]
ErrorBody = Callable[[tuple[RegistryErrorItem, ...]], bytes]


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


def _items(exc: XDSError) -> tuple[RegistryErrorItem, ...]:
    if isinstance(exc, XDSErrors):
        return tuple(e.as_item() for e in exc.errors)
    return (exc.as_item(),)


class SoapActor:
    """A SOAP 1.2 actor endpoint (``POST`` for transactions, ``GET ?wsdl`` for its WSDL)."""

    def __init__(
        self, name: str, operations: list[Operation], *, wsdl: Callable[[str], bytes], max_request_bytes: int
    ) -> None:
        self.name = name
        self.table = {op.transaction.action: op for op in operations}
        self.wsdl = wsdl
        self.max_request_bytes = max_request_bytes

    async def handle(self, request: Request) -> Response:
        """Answer one HTTP request to this actor."""
        if request.method == "GET":
            if "wsdl" in {k.lower() for k in request.query_params}:
                address = str(request.url.replace(query=""))
                return Response(self.wsdl(address), media_type="text/xml; charset=utf-8")
            return Response(f"{self.name}: POST SOAP 1.2 here; GET ?wsdl for the WSDL\n", media_type="text/plain")
        started = time.perf_counter()
        try:
            body = await _read_body(request, self.max_request_bytes)
        except _TooLarge:
            too_large = SoapFault(f"request larger than {self.max_request_bytes} bytes", subcode=faults.TOO_LARGE)
            return self._fault(too_large, "", started, status=413)
        try:
            envelope = parse_envelope(body, max_bytes=self.max_request_bytes)
        except SoapFault as fault:
            return self._fault(fault, "", started)
        op = self.table.get(envelope.action)
        if op is None:
            unsupported = SoapFault(
                f"{self.name} does not support action {envelope.action}",
                subcode=faults.ACTION_NOT_SUPPORTED,
                detail=envelope.action,
            )
            return self._fault(unsupported, envelope.message_id, started)
        try:
            payload = await run_in_threadpool(op.handler, envelope.body)
            codes: tuple[str, ...] = ()
            status = "Success"
        except XDSError as exc:
            items = _items(exc)
            payload = op.error_body(items)
            codes = tuple(i.error_code for i in items)
            status = "Failure"
        except SoapFault as fault:
            return self._fault(fault, envelope.message_id, started, action=envelope.action)
        except Exception:
            log.exception("unexpected failure in %s", op.transaction.id)
            internal = SoapFault("internal error; the failure was logged", code="Receiver")
            return self._fault(internal, envelope.message_id, started, action=envelope.action)
        out = render_envelope(action=op.transaction.response_action, body=payload, relates_to=envelope.message_id)
        self._log(op.transaction.id, envelope.action, status, codes, started)
        return Response(out, media_type=CONTENT_TYPE)

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


__all__ = ["ErrorBody", "Handler", "Operation", "SoapActor"]
