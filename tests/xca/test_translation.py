"""Patient-id translation: a community with its own assigning authority is asked with the patient's alias."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import serving
from xca import initiating
from xca.client import GatewayClient
from xca.directory import Community, Directory
from xca.initiating import InitiatingContext
from xca.iti38 import RespondingContext
from xds import samples
from xds import vocabulary as v
from xds.app import create_app
from xds.cli import main
from xds.config import Settings
from xds.errors import ErrorCode, Severity
from xds.model.messages import QueryParameter, QueryResponse, StoredQueryRequest
from xds.node import Node
from xds.registry import iti42

OURS = samples.patient("local-7")
THEIRS = samples.patient("b-77", oid="1.2.3.777")
B_HOME = "urn:oid:1.3.6.1.4.1.21367.2017.2.6.201"


@pytest.fixture
def community_b(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    b = Node.open(Settings(data_dir=str(tmp_path / "b"), home_community_id=B_HOME))
    b.store.add_patient(str(THEIRS))
    entries = [samples.document_entry(THEIRS, content=b"in B's domain")]
    iti42.register(samples.submission(THEIRS, entries), b.registry_context())
    try:
        with serving(create_app(b)) as url:
            yield f"{url}/xca/responding", [de.id for de in entries]
    finally:
        b.close()


def ask(node: Node, url: str) -> QueryResponse:
    community = Community(home_community_id=B_HOME, query_url=url, assigning_authority="1.2.3.777")
    ctx = InitiatingContext(
        home_community_id=node.home_community_id,
        directory=Directory([community]),
        client=GatewayClient(),
        local=RespondingContext(home_community_id=node.home_community_id, query=node.query_context()),
        aliases=node.store.aliases,
        timeout=2.0,
        deadline=2.0,
    )
    request = StoredQueryRequest(
        query_id=v.SQ_FIND_DOCUMENTS,
        parameters=(
            QueryParameter(name="$XDSDocumentEntryPatientId", values=(f"'{OURS}'",)),
            QueryParameter(name="$XDSDocumentEntryStatus", values=(f"('{v.APPROVED}')",)),
        ),
    )

    async def go() -> QueryResponse:
        try:
            return await initiating.query(request, ctx)
        finally:
            await ctx.client.aclose()

    return asyncio.run(go())


def test_the_alias_in_the_community_s_domain_is_used(node: Node, community_b: tuple[str, list[str]]) -> None:
    url, b_ids = community_b
    node.store.add_patient(str(OURS))
    assert node.store.add_alias(str(OURS), str(THEIRS))
    answer = ask(node, url)
    assert answer.status == v.RESPONSE_SUCCESS and answer.errors == ()
    assert [b_ids[0] in f for f in answer.leaf] == [True]


def test_without_an_alias_the_community_is_not_asked_and_says_so(
    node: Node, community_b: tuple[str, list[str]]
) -> None:
    url, _ = community_b
    node.store.add_patient(str(OURS))
    answer = ask(node, url)
    assert answer.status == v.RESPONSE_SUCCESS and answer.leaf == ()
    (note,) = answer.errors
    assert (note.error_code, note.severity, note.location) == (ErrorCode.UNKNOWN_PATIENT_ID, Severity.WARNING, B_HOME)


def test_xds_patient_alias_commands(settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\ndata_dir = "{tmp_path / "var"}"\ndatabase_url = "{settings.database_url}"\n')
    c = ["--config", str(config)]
    assert main(["patient", "alias", "add", str(OURS), str(THEIRS), *c]) == 1  # not fed yet
    assert main(["patient", "add", str(OURS), *c]) == 0
    assert main(["patient", "alias", "add", str(OURS), str(THEIRS), *c]) == 0
    assert main(["patient", "alias", "add", str(OURS), str(THEIRS), *c]) == 0  # already known
    capsys.readouterr()
    assert main(["patient", "alias", "list", str(OURS), *c]) == 0
    assert capsys.readouterr().out.split() == [str(THEIRS)]
    assert main(["patient", "alias", "add", str(OURS), "not a cx", *c]) == 2
    assert main(["patient", "alias", "remove", str(OURS), str(THEIRS), *c]) == 0
    assert main(["patient", "alias", "remove", str(OURS), str(THEIRS), *c]) == 1
