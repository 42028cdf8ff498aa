"""Outbound ITI-38 over TLS 1.2+ with a client certificate (mutual TLS), against a real uvicorn HTTPS server."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import trustme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import serving
from xca.client import CommunityAnswer, CommunityUnavailable, GatewayClient
from xca.directory import Community, Tls
from xds import vocabulary as v
from xds.ebrim import messages
from xds.model.messages import QueryParameter, QueryResponse, StoredQueryRequest
from xds.soap.envelope import CONTENT_TYPE, render_envelope

HOME = "urn:oid:1.2.3.4.5.6.7"
REQUEST = StoredQueryRequest(
    query_id=v.SQ_FIND_DOCUMENTS, parameters=(QueryParameter(name="$XDSDocumentEntryPatientId", values=("'x'",)),)
)


async def _answer(request: Request) -> Response:
    body = await request.body()
    if b"CrossGatewayQuery" not in body:
        return Response(status_code=400)
    payload = messages.adhoc_query_response(QueryResponse())
    envelope = render_envelope(action=v.ACTION_CROSS_GATEWAY_QUERY_RESPONSE, body=payload)
    return Response(envelope, media_type=CONTENT_TYPE)


APP = Starlette(routes=[Route("/xca/responding", _answer, methods=["POST"])])


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    client = ca.issue_cert("gateway.example.org")
    files = {
        "ca": tmp_path / "ca.pem",
        "server": tmp_path / "server.pem",
        "client_cert": tmp_path / "client.pem",
        "client_key": tmp_path / "client.key",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    server.private_key_and_cert_chain_pem.write_to_path(str(files["server"]))
    client.cert_chain_pems[0].write_to_path(str(files["client_cert"]))
    client.private_key_pem.write_to_path(str(files["client_key"]))
    return files


def query(url: str, tls: Tls) -> CommunityAnswer:
    community = Community(home_community_id=HOME, query_url=url, tls=tls)
    client = GatewayClient()

    async def go() -> CommunityAnswer:
        try:
            return await client.cross_gateway_query(community, REQUEST, timeout=5.0)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_mutual_tls_with_a_client_certificate(pki: dict[str, Path]) -> None:
    options = {
        "ssl_certfile": str(pki["server"]),
        "ssl_ca_certs": str(pki["ca"]),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
    }
    with serving(APP, **options) as base:
        good = Tls(ca_file=str(pki["ca"]), cert_file=str(pki["client_cert"]), key_file=str(pki["client_key"]))
        answer = query(f"{base}/xca/responding", good)
        assert answer.status == v.RESPONSE_SUCCESS
        with pytest.raises(CommunityUnavailable):
            query(f"{base}/xca/responding", Tls(ca_file=str(pki["ca"])))  # no client certificate: refused


def test_an_untrusted_server_certificate_is_unavailable(pki: dict[str, Path]) -> None:
    with (
        serving(APP, ssl_certfile=str(pki["server"])) as base,
        pytest.raises(CommunityUnavailable, match=r"TLS|certificate|connect"),
    ):
        query(f"{base}/xca/responding", Tls())  # the system trust store does not know our test CA
