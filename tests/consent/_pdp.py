"""A small real XACML decision point (a Mitz stand-in) for tests: uvicorn + Starlette over HTTPS in a thread.

The server requires a client certificate signed by the test CA (mutual TLS, certificates made by ``trustme``
at test time). What it answers is programmable through :class:`Pdp`: a decision per BSN (``decisions``, else
``default``), a ``delay`` before answering, or a ``mode`` that answers a SOAP fault, HTTP 500, garbage or an
oversize body instead. Every request body it gets is kept in ``requests``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import trustme
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import serving
from xds.consent.mitz import ATTRIBUTE_IDS, XACML
from xds.ebrim.parser import parse_xml
from xds.namespaces import qn
from xds.soap.envelope import CONTENT_TYPE, render_envelope
from xds.soap.faults import SoapFault, render_fault

PATH = "/geslotenautorisatievraag/xacml3"
RESPONSE_ACTION = "XACMLAuthorizationDecisionQueryResponse"
HL7V3 = "urn:hl7-org:v3"
OVERSIZE = 2 * 1024 * 1024

Mode = Literal["decide", "fault", "http500", "garbage", "oversize"]


@dataclass
class Pdp:
    """What the decision point answers next, and what it was asked."""

    decisions: dict[str, str] = field(default_factory=dict)
    default: str = "Permit"
    delay: float = 0.0
    mode: Mode = "decide"
    requests: list[bytes] = field(default_factory=list)

    def reset(self) -> None:
        self.decisions.clear()
        self.default, self.delay, self.mode = "Permit", 0.0, "decide"
        self.requests.clear()

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.mode == "fault":
            fault = SoapFault("PDP is in maintenance", code="Receiver")
            return Response(render_fault(fault), status_code=500, media_type=CONTENT_TYPE)
        if self.mode == "http500":
            return Response("Internal Server Error", status_code=500, media_type="text/plain")
        if self.mode == "garbage":
            return Response(b"\x00\xffthis is not XML", media_type=CONTENT_TYPE)
        if self.mode == "oversize":
            return Response(b"<a>" + b"x" * OVERSIZE + b"</a>", media_type=CONTENT_TYPE)
        decision = self.decisions.get(asked_bsn(body), self.default)
        return Response(decision_envelope(decision), media_type=CONTENT_TYPE)


def decision_envelope(decision: str) -> bytes:
    """A SOAP 1.2 answer carrying one XACML ``Response/Result/Decision``."""
    response = etree.Element(qn(XACML, "Response"), nsmap={None: XACML})
    result = etree.SubElement(response, qn(XACML, "Result"))
    etree.SubElement(result, qn(XACML, "Decision")).text = decision
    return render_envelope(action=RESPONSE_ACTION, body=response)


def asked_bsn(body: bytes) -> str:
    """The patient BSN of a closed question."""
    return attribute_values(body).get(ATTRIBUTE_IDS["patient_bsn"], "").partition("^^")[0]


def attribute_values(body: bytes) -> dict[str, str]:
    """Each XACML attribute of a request as ``AttributeId -> extension`` (II) or ``code^^codeSystem`` (CV)."""
    out: dict[str, str] = {}
    for attribute in parse_xml(body).iter(qn(XACML, "Attribute")):
        for value in attribute.iter(qn(HL7V3, "InstanceIdentifier"), qn(HL7V3, "CodedValue")):
            text = value.get("extension") if value.get("extension") is not None else value.get("code")
            system = value.get("root") or value.get("codeSystem")
            out[attribute.get("AttributeId", "")] = f"{text}^^{system}"
    return out


@dataclass(frozen=True)
class Pki:
    """PEM files of the test CA, the server, a client it trusts, and a client of another CA."""

    ca: Path
    server: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    stranger_cert: Path
    stranger_key: Path


def make_pki(directory: Path) -> Pki:
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    client = ca.issue_cert("xds-node.example.org")
    stranger = other.issue_cert("stranger.example.org")
    pki = Pki(*(directory / name for name in ("ca", "server", "cc", "ck", "oca", "sc", "sk")))
    ca.cert_pem.write_to_path(str(pki.ca))
    server.private_key_and_cert_chain_pem.write_to_path(str(pki.server))
    client.cert_chain_pems[0].write_to_path(str(pki.client_cert))
    client.private_key_pem.write_to_path(str(pki.client_key))
    other.cert_pem.write_to_path(str(pki.other_ca))
    stranger.cert_chain_pems[0].write_to_path(str(pki.stranger_cert))
    stranger.private_key_pem.write_to_path(str(pki.stranger_key))
    return pki


@contextmanager
def running(pdp: Pdp, pki: Pki) -> Iterator[str]:
    """Serve ``pdp`` over HTTPS requiring a client certificate of ``pki.ca``; yields the endpoint URL."""
    app = Starlette(routes=[Route(PATH, pdp.endpoint, methods=["POST"])])
    options = {"ssl_certfile": str(pki.server), "ssl_ca_certs": str(pki.ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    with serving(app, **options) as base:
        yield base + PATH
