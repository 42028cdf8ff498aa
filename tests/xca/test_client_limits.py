"""A community that sends a huge answer is cut off at max_response_bytes, not buffered."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tests.support import serving
from xca.client import CommunityUnavailable, GatewayClient
from xca.directory import Community
from xds import vocabulary as v
from xds.model.messages import QueryParameter, StoredQueryRequest


async def _flood(_request: object) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        yield b'<?xml version="1.0"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>'
        for _ in range(512):  # up to 512 MiB if nobody stops reading
            yield b"x" * (1 << 20)

    return StreamingResponse(body(), media_type="application/soap+xml")


def test_a_huge_answer_is_cut_off_at_the_limit() -> None:
    app = Starlette(routes=[Route("/xca/responding", _flood, methods=["POST"])])
    request = StoredQueryRequest(
        query_id=v.SQ_FIND_DOCUMENTS, parameters=(QueryParameter(name="$XDSDocumentEntryPatientId", values=("'x'",)),)
    )
    with serving(app) as base:
        community = Community(home_community_id="urn:oid:1.2.3.66", query_url=f"{base}/xca/responding")
        client = GatewayClient(max_response_bytes=4 << 20)

        async def go() -> None:
            try:
                await client.cross_gateway_query(community, request, timeout=10.0)
            finally:
                await client.aclose()

        tracemalloc.start()
        try:
            with pytest.raises(CommunityUnavailable, match="larger than 4194304 bytes"):
                asyncio.run(go())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 32 << 20, f"the gateway held {peak / 2**20:.0f} MiB of the answer"
