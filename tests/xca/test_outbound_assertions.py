"""The XUA assertion on the initiating gateway's outbound calls (xca/assertions.py, xca/client.py).

A recording "community" (Starlette on a loopback socket) keeps every request it receives and answers an empty
Success; each test then reads the ``wsse:Security`` block of what it received and verifies it with
:class:`XuaVerifier`, as a responding gateway would. Keys and certificates are made with trustme (RSA): the
consumer's X-Assertion Provider ("idp") and this node's own signing pair ("node").
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.support import serving
from xca import initiating
from xca.assertions import NODE_ASSERTION_LIFETIME, OutboundAssertions
from xca.client import GatewayClient, with_security_header
from xca.directory import Community, Directory
from xca.initiating import InitiatingContext
from xca.iti38 import RespondingContext
from xca.iti39 import RetrieveGatewayContext
from xds import samples
from xds import vocabulary as v
from xds.app import create_app
from xds.config import Settings
from xds.consent.model import Requester
from xds.ebrim import messages, xdsb
from xds.model.messages import (
    DocumentRequest,
    QueryParameter,
    QueryResponse,
    RetrieveRequest,
    RetrieveResponse,
    StoredQueryRequest,
)
from xds.namespaces import SOAP12, qn
from xds.node import Node
from xds.security import saml
from xds.security.xua import VerifiedAssertion, XuaError, XuaSettings, XuaVerifier
from xds.soap.envelope import WSSE, Envelope, parse_envelope, render_envelope, request_envelope, soap_content_type

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
PATIENT = samples.patient("xca-xua")
B_HOME = "urn:oid:1.3.6.1.4.1.21367.2017.2.6.201"
INITIATING_AUDIENCE = "urn:test:initiating-gateway"
"""The audience of the consumer's assertion: this node (the initiating gateway)."""
NODE_ISSUER = "urn:test:node-issuer"
SECURITY = qn(WSSE, "Security")
REQUESTER = Requester(
    user_id="UZI-900000001",
    user_name="Dr. B. de Vries",
    role="01.015^^2.16.840.1.113883.2.4.15.111",
    organisation_id="urn:oid:2.16.528.1.1007.3.3.7654321",
    organisation_name="Huisartsenpraktijk West",
    purpose_of_use="TREATMENT",
)


@dataclass(frozen=True)
class Pair:
    key: bytes
    cert: bytes
    key_file: str
    cert_file: str


def _pair(directory: Path, name: str) -> Pair:
    leaf = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert(f"{name}.example", key_type=trustme.KeyType.RSA)
    key, cert = leaf.private_key_pem.bytes(), leaf.cert_chain_pems[0].bytes()
    (directory / f"{name}.key").write_bytes(key)
    (directory / f"{name}.pem").write_bytes(cert)
    return Pair(key, cert, str(directory / f"{name}.key"), str(directory / f"{name}.pem"))


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    return _pair(tmp_path_factory.mktemp("idp"), "idp")


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    return _pair(tmp_path_factory.mktemp("signer"), "node")


def consumer_assertion(idp: Pair, *, now: datetime = NOW) -> etree._Element:
    """What a consumer's X-Assertion Provider issued for this node."""
    assertion = saml.build_assertion(
        issuer="https://idp.example.nl",
        subject="UZI-123456789",
        audience=INITIATING_AUDIENCE,
        not_before=now - timedelta(minutes=1),
        not_on_or_after=now + timedelta(minutes=5),
        attributes={saml.SUBJECT_ID: ["Dr. A. Jansen"], saml.PURPOSE_OF_USE: ["TREATMENT^^2.16.840.1.113883.3.18.7.1"]},
        assertion_id=f"_{uuid.uuid4().hex}",
        issue_instant=now - timedelta(minutes=1),
    )
    return saml.sign_assertion(assertion, idp.key, idp.cert)


# -- a community that records what it receives -----------------------------------------------------------


@dataclass
class Recorder:
    url: str
    received: list[Envelope] = field(default_factory=list)

    def only(self) -> Envelope:
        assert len(self.received) == 1
        return self.received[0]


@contextmanager
def recording_community() -> Iterator[Recorder]:
    """A Responding Gateway that keeps every request and answers an empty Success (ITI-38 and ITI-39)."""
    recorder = Recorder(url="")

    async def answer(request: Request) -> Response:
        envelope = parse_envelope(await request.body())
        recorder.received.append(envelope)
        if envelope.action == v.ACTION_CROSS_GATEWAY_RETRIEVE:
            action = v.ACTION_CROSS_GATEWAY_RETRIEVE_RESPONSE
            body = xdsb.retrieve_response_root(RetrieveResponse(status=v.RESPONSE_SUCCESS), [])
        else:
            action = v.ACTION_CROSS_GATEWAY_QUERY_RESPONSE
            body = messages.adhoc_query_response(QueryResponse(status=v.RESPONSE_SUCCESS))
        reply = render_envelope(action=action, body=body, relates_to=envelope.message_id)
        return Response(reply, media_type=soap_content_type(action))

    with serving(Starlette(routes=[Route("/xca/responding", answer, methods=["POST"])])) as url:
        recorder.url = f"{url}/xca/responding"
        yield recorder


@pytest.fixture
def community_b() -> Iterator[Recorder]:
    with recording_community() as recorder:
        yield recorder


def context(node: Node, b: Recorder, assertions: OutboundAssertions | None) -> InitiatingContext:
    return InitiatingContext(
        home_community_id=node.home_community_id,
        directory=Directory([Community(home_community_id=B_HOME, query_url=b.url)]),
        client=GatewayClient(),
        local=RespondingContext(home_community_id=node.home_community_id, query=node.query_context()),
        local_retrieve=RetrieveGatewayContext(
            home_community_id=node.home_community_id, retrieve=node.retrieve_context()
        ),
        new_file=node.documents.new_file,
        timeout=5.0,
        deadline=5.0,
        assertions=assertions,
    )


FIND = StoredQueryRequest(
    query_id=v.SQ_FIND_DOCUMENTS,
    return_type="LeafClass",
    parameters=(
        QueryParameter(name="$XDSDocumentEntryPatientId", values=(f"'{PATIENT}'",)),
        QueryParameter(name="$XDSDocumentEntryStatus", values=(f"('{v.APPROVED}')",)),
    ),
)
RETRIEVE = RetrieveRequest(
    documents=(DocumentRequest(repository_unique_id="1.2.3", document_unique_id="4.5.6", home_community_id=B_HOME),)
)


def ask(ctx: InitiatingContext, what: str, assertion: etree._Element | None, requester: Requester = REQUESTER) -> None:
    """Run the initiating gateway's ITI-18 (``what`` = "query") or ITI-43 ("retrieve") once."""

    async def go() -> None:
        try:
            if what == "query":
                await initiating.query(FIND, ctx, requester, assertion)
            else:
                await initiating.retrieve(RETRIEVE, ctx, requester, assertion)
        finally:
            await ctx.client.aclose()

    asyncio.run(go())


def security_block(envelope: Envelope) -> etree._Element | None:
    assert envelope.header is not None
    blocks = envelope.header.findall(SECURITY)
    assert len(blocks) <= 1
    return blocks[0] if blocks else None


def verify(envelope: Envelope, trusted: Pair, audience: str, now: datetime) -> VerifiedAssertion:
    """What the community's X-Service Provider makes of the request's header."""
    trust_store = Path(trusted.cert_file)
    verifier = XuaVerifier(XuaSettings((str(trust_store),), (audience,)))
    verified = verifier.verify(envelope.header, now=now)
    assert verified is not None
    return verified


def node_settings(settings: Settings, signer: Pair, **changes: str) -> Settings:
    values: dict[str, Any] = {
        "xua_outbound": "node",
        "xua_signing_key_file": signer.key_file,
        "xua_signing_cert_file": signer.cert_file,
        "xua_issuer": NODE_ISSUER,
    }
    return dataclasses.replace(settings, **(values | changes))


# -- forward -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["query", "retrieve"])
def test_forward_sends_the_consumers_assertion_and_it_still_verifies(
    node: Node, community_b: Recorder, idp: Pair, what: str
) -> None:
    original = consumer_assertion(idp)
    ask(context(node, community_b, OutboundAssertions("forward")), what, original)
    received = community_b.only()
    assert received.action == (v.ACTION_CROSS_GATEWAY_QUERY if what == "query" else v.ACTION_CROSS_GATEWAY_RETRIEVE)
    block = security_block(received)
    assert block is not None and received.header is not None
    assert received.header[-1] is block, "the Security block is the last header block"
    assert block.get(qn(SOAP12, "mustUnderstand")) is None
    forwarded = block.find(qn(saml.SAML2, "Assertion"))
    assert forwarded is not None
    assert etree.tostring(forwarded, method="c14n", exclusive=True) == etree.tostring(
        original, method="c14n", exclusive=True
    )
    verified = verify(received, idp, INITIATING_AUDIENCE, NOW)
    assert (verified.issuer, verified.subject, verified.user_name) == (
        "https://idp.example.nl",
        "UZI-123456789",
        "Dr. A. Jansen",
    )


def test_forward_does_not_touch_the_consumers_element(node: Node, community_b: Recorder, idp: Pair) -> None:
    original = consumer_assertion(idp)
    parent = etree.SubElement(etree.Element(qn(SOAP12, "Header")), SECURITY)
    parent.append(original)
    ask(context(node, community_b, OutboundAssertions("forward")), "query", original)
    assert original.getparent() is parent


# -- node --------------------------------------------------------------------------------------------------


def test_node_mode_signs_an_assertion_for_the_requester(
    settings: Settings, node: Node, community_b: Recorder, idp: Pair, signer: Pair
) -> None:
    assertions = OutboundAssertions.from_settings(
        node_settings(settings, signer), home=node.home_community_id, clock=lambda: NOW
    )
    ask(context(node, community_b, assertions), "query", consumer_assertion(idp))
    verified = verify(community_b.only(), signer, community_b.url, NOW + timedelta(minutes=4))
    assert verified.issuer == NODE_ISSUER, "the node's own assertion, not the consumer's"
    assert verified.audiences == (community_b.url,)
    assert verified.not_on_or_after == NOW + NODE_ASSERTION_LIFETIME
    assert verified.subject == REQUESTER.user_id
    assert verified.patient_id == str(PATIENT)
    assert verified.purpose_of_use == "TREATMENT^^2.16.840.1.113883.3.18.7.1"
    assert verified.requester() == dataclasses.replace(
        REQUESTER, community_id=node.home_community_id, source=verified.requester().source
    )


def test_node_assertion_expires_after_five_minutes(
    settings: Settings, node: Node, community_b: Recorder, signer: Pair
) -> None:
    assertions = OutboundAssertions.from_settings(
        node_settings(settings, signer), home=node.home_community_id, clock=lambda: NOW
    )
    ask(context(node, community_b, assertions), "retrieve", None)
    received = community_b.only()
    verify(received, signer, community_b.url, NOW)
    with pytest.raises(XuaError, match="expired"):
        verify(received, signer, community_b.url, NOW + NODE_ASSERTION_LIFETIME + timedelta(minutes=2))


def test_node_mode_organisation_only(settings: Settings, node: Node, community_b: Recorder, signer: Pair) -> None:
    """No user: the organisation is the subject; a requester with neither gets no assertion at all."""
    assertions = OutboundAssertions.from_settings(node_settings(settings, signer), home=node.home_community_id)
    organisation = Requester(organisation_id="urn:oid:2.16.528.1.1007.3.3.1", purpose_of_use="TREATMENT")
    ask(context(node, community_b, assertions), "query", None, organisation)
    verified = verify(community_b.only(), signer, community_b.url, datetime.now(UTC))
    assert (verified.subject, verified.user_name, verified.role) == (organisation.organisation_id, "", "")
    community_b.received.clear()
    ask(context(node, community_b, assertions), "query", None, Requester())
    assert security_block(community_b.only()) is None


# -- no block ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "with_assertion"), [("none", True), ("forward", False)])
@pytest.mark.parametrize("what", ["query", "retrieve"])
def test_no_security_header(
    node: Node, community_b: Recorder, idp: Pair, mode: str, with_assertion: bool, what: str
) -> None:
    assertion = consumer_assertion(idp) if with_assertion else None
    ask(context(node, community_b, OutboundAssertions(mode)), what, assertion)
    assert security_block(community_b.only()) is None


# -- configuration -----------------------------------------------------------------------------------------


def test_from_settings_modes_without_signing(settings: Settings) -> None:
    assert OutboundAssertions.from_settings(settings, home="urn:oid:1.2.3").mode == "forward"
    none = dataclasses.replace(settings, xua_outbound="none")
    assert OutboundAssertions.from_settings(none, home="urn:oid:1.2.3").mode == "none"
    with pytest.raises(ValueError, match="xua_outbound"):
        OutboundAssertions("sometimes")


def test_from_settings_errors_name_the_setting(settings: Settings, signer: Pair, idp: Pair, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN NOTHING-----\nAAAA\n-----END NOTHING-----\n")
    cases = {
        "xua_signing_key_file": [
            {"xua_signing_key_file": str(tmp_path / "missing.key")},
            {"xua_signing_key_file": ""},
            {"xua_signing_key_file": str(garbage)},
        ],
        "xua_signing_cert_file": [
            {"xua_signing_cert_file": str(tmp_path / "missing.pem")},
            {"xua_signing_cert_file": str(garbage)},
            {"xua_signing_cert_file": idp.cert_file},  # not the key's certificate
        ],
        "xua_issuer": [{"xua_issuer": ""}],
    }
    for setting, changes in cases.items():
        for change in changes:
            with pytest.raises(ValueError, match=setting):
                OutboundAssertions.from_settings(node_settings(settings, signer, **change), home="urn:oid:1.2.3")


def test_with_security_header_refuses_anything_but_a_security_block() -> None:
    envelope = request_envelope(action=v.ACTION_CROSS_GATEWAY_QUERY, body=b"<x/>", to="http://b.example/")
    with pytest.raises(ValueError, match="wsse:Security"):
        with_security_header(envelope, b"<evil/>")
    with pytest.raises(ValueError):
        with_security_header(envelope, b"<wsse:Security xmlns:wsse='" + WSSE.encode() + b"'>")


# -- the actor: the verified assertion of the consumer's request goes out ------------------------------------


def test_initiating_actor_forwards_the_verified_assertion(settings: Settings, idp: Pair, community_b: Recorder) -> None:
    configured = dataclasses.replace(
        settings,
        xua_trusted_certs=(idp.cert_file,),
        xua_audiences=(INITIATING_AUDIENCE,),
        communities=({"home_community_id": B_HOME, "query_url": community_b.url},),
    )
    a = Node.open(configured)
    try:
        now = datetime.now(UTC)
        original = consumer_assertion(idp, now=now)
        body = messages.render_adhoc_query_request(FIND)
        envelope = parse_envelope(
            request_envelope(action=v.ACTION_STORED_QUERY, body=body, to="http://testserver/xca/initiating")
        )
        assert envelope.header is not None
        block = etree.SubElement(envelope.header, SECURITY)
        block.append(original)
        with TestClient(create_app(a)) as client:
            resp = client.post(
                "/xca/initiating",
                content=etree.tostring(envelope.header.getroottree()),
                headers={"content-type": soap_content_type(v.ACTION_STORED_QUERY)},
            )
        assert resp.status_code == 200, resp.text
    finally:
        a.close()
    verified = verify(community_b.only(), idp, INITIATING_AUDIENCE, now)
    assert verified.assertion_id == original.get("ID")
