"""Helpers for tests that talk SOAP to the registry and the repository: build requests, read answers.

MTOM answers are read with the node's own :class:`~xds.soap.mtom.MtomReader` into memory (tests only), and
XSD-validated in their XOP-decoded form: every ``xop:Include`` replaced by the base64 of its part, which is
what the schema's ``xs:base64Binary`` describes.
"""

from __future__ import annotations

import base64
import copy
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn
from lxml import etree
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from tests.xsd import assert_valid
from xds import vocabulary as v
from xds.ebrim import messages
from xds.ebrim.parser import parse_xml
from xds.model.messages import QueryParameter, StoredQueryRequest
from xds.model.metadata import Submission
from xds.namespaces import RIM, RS, SOAP12, qn
from xds.soap import mtom
from xds.soap.envelope import CONTENT_TYPE, request_envelope
from xds.soap.mtom import PartHeaders

REGISTRY = "/xds/registry"
REPOSITORY = "/xds/repository"


class MemorySink:
    """An attachment sink that keeps the bytes (tests only)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def close(self) -> None:
        pass

    def abort(self) -> None:
        self.aborted = True

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def read_mtom(content_type: str, body: bytes) -> tuple[bytes, dict[str, bytes]]:
    """The root part and the attachments (by Content-ID) of an MTOM message."""
    sinks: dict[str, MemorySink] = {}

    def new_sink(headers: PartHeaders) -> MemorySink:
        sinks[headers.content_id] = MemorySink()
        return sinks[headers.content_id]

    reader = mtom.MtomReader(
        mtom.multipart_related(content_type), new_sink, max_root_bytes=1 << 26, max_total_bytes=1 << 34
    )
    reader.feed(body)
    message = reader.finish()
    return message.root, {cid: sink.data for cid, sink in sinks.items()}


def xop_decoded(root: etree._Element, attachments: dict[str, bytes]) -> etree._Element:
    """A copy of ``root`` with every ``xop:Include`` replaced by the base64 of the part it names."""
    out = copy.deepcopy(root)
    for include in mtom.xop_includes(out):
        parent = include.getparent()
        assert parent is not None
        parent.remove(include)
        parent.text = base64.b64encode(attachments[mtom.resolve_include(include)]).decode()
    return out


@dataclass
class Answer:
    """A parsed registry or repository answer (``attachments`` by Content-ID when it was MTOM)."""

    http_status: int
    status: str
    error_codes: list[str]
    body: etree._Element
    raw: bytes
    content_type: str = ""
    attachments: dict[str, bytes] = field(default_factory=dict)

    @property
    def is_mtom(self) -> bool:
        return mtom.is_multipart_related(self.content_type)

    @property
    def ok(self) -> bool:
        return self.status == v.RESPONSE_SUCCESS

    def ids(self, local: str = "") -> list[str]:
        """Ids of returned objects (ObjectRef or LeafClass), optionally only of one element name."""
        lst = self.body.find(qn(RIM, "RegistryObjectList"))
        if lst is None:
            return []
        return [e.get("id", "") for e in lst if not local or etree.QName(e).localname == local]


def post(
    client: TestClient,
    action: str,
    body: bytes,
    path: str = REGISTRY,
    *,
    parts: Sequence[tuple[str, str, bytes]] | None = None,
) -> Answer:
    """POST a SOAP 1.2 request (as MTOM/XOP with ``parts`` = (cid, content type, bytes)); validate and parse
    the answer, MTOM or not."""
    envelope = request_envelope(action=action, body=body, to=f"http://testserver{path}")
    if parts is None:
        resp = client.post(path, content=envelope, headers={"content-type": f'{CONTENT_TYPE}; action="{action}"'})
    else:
        content_type, data = mtom.render_mtom(envelope=envelope, action=action, parts=parts)
        resp = client.post(path, content=data, headers={"content-type": content_type})
    content_type = resp.headers.get("content-type", "")
    attachments: dict[str, bytes] = {}
    raw = resp.content
    if mtom.is_multipart_related(content_type):
        raw, attachments = read_mtom(content_type, resp.content)
    root = parse_xml(raw)
    assert_valid(xop_decoded(root, attachments), what=f"answer to {action}")
    payload = root.find(qn(SOAP12, "Body"))[0]  # type: ignore[index]
    errors = [e.get("errorCode", "") for e in payload.iter(qn(RS, "RegistryError"))]
    status = payload.get("status", "")
    inner = payload.find(qn(RS, "RegistryResponse"))
    if not status and inner is not None:
        status = inner.get("status", "")
    return Answer(resp.status_code, status, errors, payload, raw, content_type, attachments)


def register(client: TestClient, sub: Submission) -> Answer:
    """Send ITI-42 for ``sub``."""
    return post(client, v.ACTION_REGISTER, messages.render_submit_objects_request(sub))


def query(
    client: TestClient, query_id: str, params: dict[str, str | list[str]], *, return_type: str = "LeafClass"
) -> Answer:
    """Send ITI-18; ``params`` maps slot name to one value text or to repeated slots (a list)."""
    parameters = []
    for name, value in params.items():
        for text in [value] if isinstance(value, str) else value:
            parameters.append(QueryParameter(name=name, values=(text,)))
    req = StoredQueryRequest(query_id=query_id, return_type=return_type, parameters=tuple(parameters))
    return post(client, v.ACTION_STORED_QUERY, messages.render_adhoc_query_request(req))


def q(*values: str) -> str:
    """A quoted stored-query value list: ``('a','b')``."""
    return "(" + ",".join("'" + x.replace("'", "''") + "'" for x in values) + ")"


@contextmanager
def serving(app: ASGIApp, **tls: object) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields the base URL.

    ``tls`` are uvicorn's ``ssl_*`` options (certfile, keyfile, ca_certs, cert_reqs): then it is https.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False, ws="none", **tls)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        scheme = "https" if tls else "http"
        yield f"{scheme}://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
