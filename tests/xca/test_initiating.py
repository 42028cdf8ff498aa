"""The Initiating Gateway's fan-out against real sockets: two good communities, and misbehaving ones.

Node A (every configured backend) is the initiating node and a community with data of its own; node B
(SQLite) is a second community served by uvicorn. The misbehaving "communities" are real sockets: one
accepts connections and never answers, one answers HTML garbage, one closes every connection at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.support import post, serving
from tests.xca._fakes import garbage, silent_socket, slamming_socket
from xca import initiating
from xca.client import GatewayClient
from xca.directory import Community, Directory
from xca.initiating import InitiatingContext
from xca.iti38 import RespondingContext
from xds import samples
from xds import vocabulary as v
from xds.app import create_app
from xds.config import Settings
from xds.ebrim import messages, xdsb
from xds.errors import ErrorCode, MissingHomeCommunityId, UnknownCommunity
from xds.model.messages import DocumentRequest, QueryParameter, RetrieveRequest, StoredQueryRequest
from xds.node import Node
from xds.registry import iti42

PATIENT = samples.patient("xca-ig")
B_HOME = "urn:oid:1.3.6.1.4.1.21367.2017.2.6.200"


def find_documents(rtype: str = "LeafClass") -> StoredQueryRequest:
    return StoredQueryRequest(
        query_id=v.SQ_FIND_DOCUMENTS,
        return_type=rtype,
        parameters=(
            QueryParameter(name="$XDSDocumentEntryPatientId", values=(f"'{PATIENT}'",)),
            QueryParameter(name="$XDSDocumentEntryStatus", values=(f"('{v.APPROVED}')",)),
        ),
    )


def load(node: Node, n: int) -> list[str]:
    node.store.add_patient(str(PATIENT))
    entries = [samples.document_entry(PATIENT, content=f"doc {i}".encode()) for i in range(n)]
    iti42.register(samples.submission(PATIENT, entries), node.registry_context())
    return [de.id for de in entries]


@pytest.fixture
def community_b(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    b = Node.open(Settings(data_dir=str(tmp_path / "b"), home_community_id=B_HOME))
    ids = load(b, 2)
    try:
        with serving(create_app(b)) as url:
            yield f"{url}/xca/responding", ids
    finally:
        b.close()


def context(node: Node, communities: list[Community], *, deadline: float = 2.0) -> InitiatingContext:
    return InitiatingContext(
        home_community_id=node.home_community_id,
        directory=Directory(communities),
        client=GatewayClient(),
        local=RespondingContext(home_community_id=node.home_community_id, query=node.query_context()),
        timeout=deadline,
        deadline=deadline,
    )


def run(request: StoredQueryRequest, ctx: InitiatingContext) -> initiating.QueryResponse:  # type: ignore[name-defined]
    async def go() -> object:
        try:
            return await initiating.query(request, ctx)
        finally:
            await ctx.client.aclose()

    return asyncio.run(go())  # type: ignore[return-value]


def community(home: str, url: str) -> Community:
    return Community(home_community_id=home, query_url=url, retrieve_url=url)


def test_find_documents_merges_every_community(node: Node, community_b: tuple[str, list[str]]) -> None:
    url, b_ids = community_b
    a_ids = load(node, 1)
    answer = run(find_documents(), context(node, [community(B_HOME, url)]))
    assert answer.status == v.RESPONSE_SUCCESS and answer.errors == ()
    assert len(answer.leaf) == 3
    by_home = {
        home: sum(f'home="{home}"' in f.split(">", 1)[0] for f in answer.leaf)
        for home in (node.home_community_id, B_HOME)
    }
    assert by_home == {node.home_community_id: len(a_ids), B_HOME: len(b_ids)}


def test_object_refs_carry_home(node: Node, community_b: tuple[str, list[str]]) -> None:
    url, b_ids = community_b
    load(node, 1)
    answer = run(find_documents("ObjectRef"), context(node, [community(B_HOME, url)]))
    assert sorted(r.home for r in answer.refs) == sorted([node.home_community_id] + [B_HOME] * len(b_ids))


def test_misbehaving_communities_give_partial_success_within_the_deadline(
    node: Node, community_b: tuple[str, list[str]]
) -> None:
    url, _ = community_b
    load(node, 1)
    bad = {"urn:oid:1.2.3.901": None, "urn:oid:1.2.3.902": None, "urn:oid:1.2.3.903": None}
    with silent_socket() as silent, garbage() as junk, slamming_socket() as slam:
        communities = [
            community(B_HOME, url),
            community("urn:oid:1.2.3.901", silent),
            community("urn:oid:1.2.3.902", junk),
            community("urn:oid:1.2.3.903", slam),
        ]
        started = time.monotonic()
        answer = run(find_documents(), context(node, communities, deadline=1.5))
        elapsed = time.monotonic() - started
    assert elapsed < 1.5 + 0.5, f"answered after {elapsed:.2f} s, deadline 1.5 s"
    assert answer.status == v.RESPONSE_PARTIAL_SUCCESS
    assert len(answer.leaf) == 3, "every good result is kept"
    unavailable = {e.location: e for e in answer.errors if e.error_code == ErrorCode.UNAVAILABLE_COMMUNITY}
    assert set(unavailable) == set(bad)
    assert "no answer" in unavailable["urn:oid:1.2.3.901"].code_context
    assert "not SOAP" in unavailable["urn:oid:1.2.3.902"].code_context


def test_no_community_answers_is_failure(node: Node) -> None:
    with silent_socket() as silent:
        request = dataclasses.replace(find_documents(), home="urn:oid:1.2.3.901")
        answer = run(
            dataclasses.replace(
                request,
                query_id=v.SQ_GET_DOCUMENTS,
                parameters=(QueryParameter(name="$XDSDocumentEntryUniqueId", values=("('1.2.3')",)),),
            ),
            context(node, [community("urn:oid:1.2.3.901", silent)], deadline=0.5),
        )
    assert answer.status == v.RESPONSE_FAILURE
    assert [e.error_code for e in answer.errors] == [ErrorCode.UNAVAILABLE_COMMUNITY]


def test_get_documents_goes_only_to_the_named_community(node: Node, community_b: tuple[str, list[str]]) -> None:
    url, b_ids = community_b
    with silent_socket() as silent:
        ctx = context(node, [community(B_HOME, url), community("urn:oid:1.2.3.901", silent)], deadline=1.0)
        request = StoredQueryRequest(
            query_id=v.SQ_GET_DOCUMENTS,
            parameters=(QueryParameter(name="$XDSDocumentEntryEntryUUID", values=(f"('{b_ids[0]}')",)),),
            home=B_HOME,
        )
        answer = run(request, ctx)
    assert answer.status == v.RESPONSE_SUCCESS and answer.errors == ()
    assert len(answer.leaf) == 1 and b_ids[0] in answer.leaf[0]


def test_get_documents_without_or_with_an_unknown_home(node: Node) -> None:
    request = StoredQueryRequest(
        query_id=v.SQ_GET_DOCUMENTS,
        parameters=(QueryParameter(name="$XDSDocumentEntryUniqueId", values=("('1.2.3')",)),),
    )
    with pytest.raises(MissingHomeCommunityId):
        run(request, context(node, []))
    with pytest.raises(UnknownCommunity):
        run(dataclasses.replace(request, home="urn:oid:9.9.9"), context(node, []))


def test_iti18_to_the_initiating_endpoint_merges_communities(
    settings: Settings, community_b: tuple[str, list[str]]
) -> None:
    url, b_ids = community_b
    with silent_socket() as silent:
        configured = dataclasses.replace(
            settings,
            communities=(
                {"home_community_id": B_HOME, "query_url": url},
                {"home_community_id": "urn:oid:1.2.3.901", "query_url": silent},
            ),
            gateway_timeout=1.0,
            gateway_deadline=1.0,
        )
        a = Node.open(configured)
        try:
            a_ids = load(a, 1)
            with TestClient(create_app(a)) as client:
                answer = post(
                    client,
                    v.ACTION_STORED_QUERY,
                    messages.render_adhoc_query_request(find_documents()),
                    "/xca/initiating",
                )
        finally:
            a.close()
    assert answer.status == v.RESPONSE_PARTIAL_SUCCESS
    assert answer.error_codes == [ErrorCode.UNAVAILABLE_COMMUNITY]
    assert sorted(answer.ids("ExtrinsicObject")) == sorted(a_ids + b_ids)


# --- ITI-43 at the initiating gateway: one ITI-39 per community ---------------------------------------------


def provide(node: Node, client: TestClient, data: bytes) -> str:
    de = dataclasses.replace(samples.document_entry(PATIENT, content=data), hash="", size=None, repository_unique_id="")
    body = xdsb.render_provide_and_register_request(
        messages.render_submit_objects_request(samples.submission(PATIENT, [de])), [(de.id, "d@x")]
    )
    assert post(client, v.ACTION_PROVIDE_AND_REGISTER, body, "/xds/repository", parts=[("d@x", "text/plain", data)]).ok
    return de.unique_id


def test_iti43_fans_out_by_home_community(settings: Settings, tmp_path: Path) -> None:
    b = Node.open(Settings(data_dir=str(tmp_path / "b2"), home_community_id=B_HOME))
    b.store.add_patient(str(PATIENT))
    try:
        with TestClient(create_app(b)) as b_client:
            b_uid = provide(b, b_client, b"document held by community B " * 1000)
        with serving(create_app(b)) as b_url, silent_socket() as silent:
            configured = dataclasses.replace(
                settings,
                communities=(
                    {"home_community_id": B_HOME, "query_url": f"{b_url}/xca/responding"},
                    {"home_community_id": "urn:oid:1.2.3.901", "query_url": silent},
                ),
                gateway_timeout=1.0,
                gateway_deadline=1.0,
            )
            a = Node.open(configured)
            a.store.add_patient(str(PATIENT))
            try:
                with TestClient(create_app(a)) as client:
                    a_uid = provide(a, client, b"document held here")
                    request = RetrieveRequest(
                        documents=(
                            DocumentRequest(
                                repository_unique_id=a.repository_unique_id,
                                document_unique_id=a_uid,
                                home_community_id=a.home_community_id,
                            ),
                            DocumentRequest(
                                repository_unique_id=b.repository_unique_id,
                                document_unique_id=b_uid,
                                home_community_id=B_HOME,
                            ),
                            DocumentRequest(
                                repository_unique_id="1.2.3",
                                document_unique_id="9.9",
                                home_community_id="urn:oid:1.2.3.901",
                            ),
                        )
                    )
                    answer = post(client, v.ACTION_RETRIEVE, xdsb.render_retrieve_request(request), "/xca/initiating")
                staged = [p for p in a.documents.staging_root.rglob("*") if p.is_file() and p.name != "lock"]
            finally:
                a.close()
    finally:
        b.close()
    assert answer.status == v.RESPONSE_PARTIAL_SUCCESS
    assert answer.error_codes == [ErrorCode.UNAVAILABLE_COMMUNITY]
    _, _, docs = xdsb.retrieve_response(answer.body)
    got = {ids.document_unique_id: (ids.home_community_id, answer.attachments[part.cid or ""]) for ids, _, part in docs}
    assert got == {
        a_uid: (a.home_community_id, b"document held here"),
        b_uid: (B_HOME, b"document held by community B " * 1000),
    }
    assert staged == [], "the copies of remote documents are gone once sent"
