"""End to end over a real socket: ``xds serve`` in a subprocess, the CLI on the same database, and a third-party
SOAP client (zeep) that reads our WSDL and runs FindDocuments."""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree

from registry_schema import migrate
from tests.conftest import backends, pg_drop_schema, pg_schema_url
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _xds(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xds", *args], env=env, capture_output=True, text=True, timeout=60)


class Server:
    def __init__(self, url: str, config: Path, env: dict[str, str]) -> None:
        self.url, self.config, self.env = url, config, env


@pytest.fixture(params=backends())
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    db_line, schema, base = "", "", ""
    if request.param == "postgresql":
        base = os.environ["XDS_TEST_DATABASE_URL"]
        url, schema = pg_schema_url(base)
        db_line = f'database_url = "{url}"'
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\nport = {port}\ndata_dir = "{tmp_path / "var"}"\n{db_line}\n')
    env = {k: val for k, val in os.environ.items() if not k.startswith("XDS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "xds", "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"xds serve did not start: {proc.communicate()[1][-2000:]}")
            time.sleep(0.1)
        yield Server(base_url, config, env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
        if schema:
            pg_drop_schema(base, schema)


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
    env = {k: val for k, val in os.environ.items() if not k.startswith("XDS_")}
    env["XDS_DATA_DIR"] = str(tmp_path / "var")
    first = _xds("db", "upgrade", env=env)
    head = migrate.head_revision()
    assert first.returncode == 0 and f"empty -> {head}" in first.stdout
    again = _xds("db", "upgrade", env=env)
    assert again.returncode == 0 and f"{head} -> {head}" in again.stdout
    assert (tmp_path / "var" / "registry.sqlite3").exists()
