"""End to end over a real socket: ``xds serve`` in a subprocess, the CLI on the same database, and a third-party
SOAP client (zeep) that reads our WSDL and runs FindDocuments."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree

from registry_schema import migrate
from tests.conftest import backends
from tests.e2e._node import NodeFiles, clean_env, new_node, serving, xds
from tests.xsd import assert_valid
from xds import samples
from xds import vocabulary as v
from xds.ebrim import messages
from xds.ebrim.parser import parse_xml
from xds.model.messages import QueryParameter, StoredQueryRequest
from xds.namespaces import RIM, RS, SOAP12, qn
from xds.soap.envelope import request_envelope, soap_content_type

pytestmark = pytest.mark.e2e

PATIENT = samples.patient("e2e-1")


# the node and the CLI under the names test_repository_e2e imports (with the fixture)
Server = NodeFiles
_xds = xds


@pytest.fixture(params=backends())
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """``xds serve`` on a node of its own (each configured backend) until the test ends."""
    with new_node(tmp_path, request.param) as files, serving(files):
        yield files


def _post(server: Server, action: str, body: bytes) -> etree._Element:
    envelope = request_envelope(action=action, body=body, to=f"{server.url}/xds/registry")
    resp = httpx.post(
        f"{server.url}/xds/registry", content=envelope, headers={"content-type": soap_content_type(action)}, timeout=10
    )
    assert resp.status_code == 200, resp.text
    root = parse_xml(resp.content)
    assert_valid(root, what=action)
    return root.find(qn(SOAP12, "Body"))[0]  # type: ignore[index]


def _find_request() -> bytes:
    return messages.render_adhoc_query_request(
        StoredQueryRequest(
            query_id=v.SQ_FIND_DOCUMENTS,
            parameters=(
                QueryParameter(name="$XDSDocumentEntryPatientId", values=(f"'{PATIENT}'",)),
                QueryParameter(name="$XDSDocumentEntryStatus", values=(f"('{v.APPROVED}')",)),
            ),
        )
    )


def test_serve_register_and_query_over_socket(server: Server) -> None:
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["schema_version"] == health["schema_head"]

    refused = _post(
        server,
        v.ACTION_REGISTER,
        messages.render_submit_objects_request(samples.submission(PATIENT, [samples.document_entry(PATIENT)])),
    )
    assert [e.get("errorCode") for e in refused.iter(qn(RS, "RegistryError"))] == ["XDSUnknownPatientId"]

    fed = _xds("patient", "add", str(PATIENT), "--config", str(server.config), env=server.env)
    assert fed.returncode == 0, fed.stderr
    listed = _xds("patient", "list", "--config", str(server.config), env=server.env)
    assert str(PATIENT) in listed.stdout

    de = samples.document_entry(PATIENT)
    ok = _post(server, v.ACTION_REGISTER, messages.render_submit_objects_request(samples.submission(PATIENT, [de])))
    assert ok.get("status") == v.RESPONSE_SUCCESS
    found = _post(server, v.ACTION_STORED_QUERY, _find_request())
    assert [e.get("id") for e in found.iter(qn(RIM, "ExtrinsicObject"))] == [de.id]


def test_zeep_reads_our_wsdl_and_runs_find_documents(server: Server) -> None:
    zeep = pytest.importorskip("zeep")
    assert _xds("patient", "add", str(PATIENT), "--config", str(server.config), env=server.env).returncode == 0
    de = samples.document_entry(PATIENT, title="for zeep")
    _post(server, v.ACTION_REGISTER, messages.render_submit_objects_request(samples.submission(PATIENT, [de])))

    client = zeep.Client(f"{server.url}/xds/registry?wsdl")
    request = parse_xml(_find_request())
    answer = client.service["DocumentRegistry_RegistryStoredQuery"](
        _value_1=list(copy.deepcopy(request)), _attr_1=dict(request.attrib)
    )
    assert answer["_attr_1"]["status"] == v.RESPONSE_SUCCESS
    ids = [e.get("id") for child in answer["_value_1"] for e in child.iter(qn(RIM, "ExtrinsicObject"))]
    assert ids == [de.id]


def test_db_upgrade_is_idempotent(tmp_path: Path) -> None:
    env = clean_env()
    env["XDS_DATA_DIR"] = str(tmp_path / "var")
    first = _xds("db", "upgrade", env=env)
    head = migrate.head_revision()
    assert first.returncode == 0 and f"empty -> {head}" in first.stdout
    again = _xds("db", "upgrade", env=env)
    assert again.returncode == 0 and f"{head} -> {head}" in again.stdout
    assert (tmp_path / "var" / "registry.sqlite3").exists()
