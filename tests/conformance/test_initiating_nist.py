"""NIST XDS Toolkit Initiating Gateway cases (conformance README Table A, N93 to N95), replayed against this
node's Initiating Gateway endpoint ``/xca/initiating`` (ITI-18 and ITI-43 from a local consumer).

Setup per row (:mod:`tests.conformance.rows_initiating`): node B (SQLite, its own data directory and
homeCommunityId, NIST code lists) gets the row's 15807 test data through its ``/xds/repository`` (ITI-41) and
is served by uvicorn on a real socket; with ``registry_error``, a fake community that answers every ITI-38
with Failure/XDSRegistryError is served too. The node under test A (every configured backend) has them as
its ``[[communities]]``. The row then runs on A as any other row (:func:`tests.conformance.replay.run_row`),
followed by the rest of the target's section; for N95 the passed-on XDSRegistryError must also be located at
the failing community's homeCommunityId.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Final

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.conformance.corpus import nist_tests_dir
from tests.conformance.engine import RESPONDING_GATEWAY, Engine
from tests.conformance.replay import run_row
from tests.conformance.rows_initiating import ROWS, InitiatingRow
from tests.support import serving
from xds import vocabulary as v
from xds.app import create_app
from xds.config import Settings
from xds.ebrim import messages
from xds.errors import ErrorCode, RegistryErrorItem
from xds.model.messages import QueryResponse
from xds.namespaces import RS
from xds.node import Node
from xds.soap.envelope import parse_envelope, render_envelope, soap_content_type

pytestmark = pytest.mark.conformance

B_HOME: Final = "urn:oid:1.3.6.1.4.1.21367.2017.2.6.193"
B_REPOSITORY: Final = "1.3.6.1.4.1.21367.2017.2.3.193"
FAILING_HOME: Final = "urn:oid:1.3.6.1.4.1.21367.2017.2.6.194"
TIMEOUT: Final = 10.0


def _param(row: InitiatingRow) -> object:
    marks = [pytest.mark.xfail(reason=row.xfail, strict=True)] if row.xfail else []
    return pytest.param(row, id=row.id, marks=marks)


def registry_error_app() -> Starlette:
    """A Responding Gateway that answers every ITI-38 with status Failure and one XDSRegistryError."""

    async def respond(request: Request) -> Response:
        envelope = parse_envelope(await request.body())
        answer = QueryResponse(
            status=v.RESPONSE_FAILURE,
            errors=(
                RegistryErrorItem(
                    error_code=ErrorCode.REGISTRY_ERROR, code_context="simulated registry failure (NIST 15814)"
                ),
            ),
        )
        body = render_envelope(
            action=v.ACTION_CROSS_GATEWAY_QUERY_RESPONSE,
            body=messages.adhoc_query_response(answer),
            relates_to=envelope.message_id,
        )
        return Response(body, media_type=soap_content_type(v.ACTION_CROSS_GATEWAY_QUERY_RESPONSE))

    return Starlette(routes=[Route(RESPONDING_GATEWAY, respond, methods=["POST"])])


def _community(home: str, base_url: str) -> dict[str, object]:
    url = f"{base_url}{RESPONDING_GATEWAY}"
    return {"home_community_id": home, "query_url": url, "retrieve_url": url}


@contextmanager
def initiating_engine(row: InitiatingRow, settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    """An engine on node A whose directory holds B (loaded with ``row.community``) and, for
    ``row.registry_error``, the failing community."""
    tests = nist_tests_dir()
    b_settings = dataclasses.replace(
        settings,
        data_dir=str(tmp_path / "b"),
        database_url=f"sqlite:///{tmp_path / 'b.sqlite3'}",
        home_community_id=B_HOME,
        repository_unique_id=B_REPOSITORY,
        communities=(),
    )
    with ExitStack() as stack:
        b = Node.open(b_settings)
        stack.callback(b.close)
        seed = Engine(stack.enter_context(TestClient(create_app(b))), b, tests)
        for ref in row.community:
            seed.prepare(ref, role="community B setup")
        communities = [_community(B_HOME, stack.enter_context(serving(create_app(b))))]
        if row.registry_error:
            communities.append(_community(FAILING_HOME, stack.enter_context(serving(registry_error_app()))))
        a_settings = dataclasses.replace(
            settings, communities=tuple(communities), gateway_timeout=TIMEOUT, gateway_deadline=TIMEOUT
        )
        a = Node.open(a_settings)
        stack.callback(a.close)
        engine = Engine(stack.enter_context(TestClient(create_app(a))), a, tests)
        engine.adopt(seed)
        yield engine


@pytest.mark.parametrize("row", [_param(r) for r in ROWS])
def test_row(row: InitiatingRow, settings: Settings, tmp_path: Path) -> None:
    with initiating_engine(row, settings, tmp_path) as engine:
        run_row(row, engine)
        if row.registry_error:
            assert_error_located(engine, row)
        engine.after(row.section, row.step)


def assert_error_located(engine: Engine, row: InitiatingRow) -> None:
    """The failing community's XDSRegistryError names that community (15814 readme, ITI TF-2 §3.38.4.1.3: the
    Initiating Gateway identifies the Responding Gateway an error came from)."""
    body = next(r.body for r in reversed(engine.log) if r.step.label == f"{row.section}#{row.step}")
    assert body is not None
    found = [(e.get("errorCode"), e.get("location")) for e in body.iter(f"{{{RS}}}RegistryError")]
    assert (ErrorCode.REGISTRY_ERROR, FAILING_HOME) in found, f"{row.id}: RegistryErrors {found}"
