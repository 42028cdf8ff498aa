"""ATNA end to end: a real ``xds serve`` forwards its audit spool over syslog/TLS to a real receiver, and records
made while the Audit Record Repository was down arrive once it is back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from tests.audit_syslog.test_syslog import TlsReceiver, parse_message, payload, server_context
from tests.e2e._node import NodeFiles, free_port, new_node, serving
from xds import samples
from xds import vocabulary as v
from xds.ebrim import messages
from xds.model.messages import QueryParameter, StoredQueryRequest
from xds.soap.envelope import request_envelope, soap_content_type

PATIENT = samples.patient("audit-e2e")
DELIVERY_SECONDS = 40.0
"""How long the forwarder may take: its backoff after the outage, then its idle interval (5 s)."""


@pytest.fixture
def audited(tmp_path: Path) -> Iterator[tuple[NodeFiles, trustme.CA, int]]:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    with new_node(tmp_path) as files:
        with files.config.open("a") as fh:
            fh.write(
                f'\n[audit]\nsyslog_host = "127.0.0.1"\nsyslog_port = {port}\nsyslog_transport = "tls"\n'
                f'ca_file = "{ca_file}"\n'
            )
        assert files.cli("patient", "add", str(PATIENT)).returncode == 0
        yield files, ca, port


def find_documents(url: str) -> str:
    req = StoredQueryRequest(
        query_id=v.SQ_FIND_DOCUMENTS,
        parameters=(
            QueryParameter(name="$XDSDocumentEntryPatientId", values=(f"'{PATIENT}'",)),
            QueryParameter(name="$XDSDocumentEntryStatus", values=(f"('{v.APPROVED}')",)),
        ),
    )
    target = f"{url}/xds/registry"
    envelope = request_envelope(action=v.ACTION_STORED_QUERY, body=messages.render_adhoc_query_request(req), to=target)
    resp = httpx.post(
        target, content=envelope, headers={"content-type": soap_content_type(v.ACTION_STORED_QUERY)}, timeout=30
    )
    assert resp.status_code == 200
    return resp.text


def spooled(files: NodeFiles) -> list[dict[str, object]]:
    out = files.cli("audit", "list", "--json", "--xml", "--limit", "1000")
    assert out.returncode == 0, out.stderr
    records: list[dict[str, object]] = json.loads(out.stdout)
    return records


def test_records_made_while_the_repository_was_down_arrive_when_it_is_back(
    audited: tuple[NodeFiles, trustme.CA, int],
) -> None:
    files, ca, port = audited
    with serving(files):
        for _ in range(3):  # the Audit Record Repository is down: nothing listens on `port`
            assert "ResponseStatusType:Success" in find_documents(files.url)
        down = spooled(files)
        assert [r["event"] for r in down] == ["ITI-18"] * 3  # no document: no consent decision to record
        assert all(r["sent"] == "" for r in down)

        receiver = TlsReceiver(server_context(ca.issue_cert("127.0.0.1")), port=port)
        try:
            find_documents(files.url)  # one more while it is up
            expected = {str(r["xml"]).encode() for r in spooled(files)}
            assert len(expected) == 4
            deadline = time.monotonic() + DELIVERY_SECONDS
            got = receiver.wait_for(len(expected))
            while len({payload(m) for m in got} & expected) < len(expected) and time.monotonic() < deadline:
                got = receiver.wait_for(len(got) + 1)
        finally:
            receiver.stop()
    delivered = {payload(m) for m in got}
    assert expected <= delivered  # every record; over TLS a record may come twice (at least once)
    header = parse_message(got[0])
    assert header["msgid"] == b"IHE+RFC-3881" and header["pri_version"] == b"<85>1"
    assert all(r["sent"] for r in spooled(files))
