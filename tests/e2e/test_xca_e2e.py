"""XCA end to end over real sockets: three ``xds serve`` nodes and three misbehaving communities.

Communities B and C are nodes with documents of their own for one patient; node A, the initiating node (with a
document of its own too), has B and C in its ``[[communities]]`` (their ``/xca/responding``), plus a community
that never answers, one that answers garbage and one that closes every connection, and a short
``[gateway] deadline``. A consumer's ITI-18 FindDocuments to A's ``/xca/initiating`` gets every document of
A, B and C, PartialSuccess and one located XDSUnavailableCommunity per fake, within the deadline; an ITI-43 to
the same endpoint for one document of B and one of C (HomeCommunityId from the answer's ``home``) gets their
bytes back. The same patient id (BSN-style CX) is fed in every community. Every node uses each configured backend.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from lxml import etree

from tests.conftest import backends
from tests.e2e._node import NodeFiles, new_node, serving
from tests.support import read_mtom
from tests.xca._fakes import garbage, silent_socket, slamming_socket
from tests.xsd import assert_valid
from xds import vocabulary as v
from xds.ebrim import messages, xdsb
from xds.ebrim.parser import parse_xml
from xds.errors import ErrorCode
from xds.model.messages import DocumentRequest, QueryParameter, RetrieveRequest, StoredQueryRequest
from xds.namespaces import RIM, RS, SOAP12, qn
from xds.soap import mtom
from xds.soap.envelope import request_envelope, soap_content_type

pytestmark = pytest.mark.e2e

PATIENT = "999911120^^^&2.16.840.1.113883.2.4.6.3&ISO"
HOMES = {
    "a": "urn:oid:1.3.6.1.4.1.21367.2017.2.6.301",
    "b": "urn:oid:1.3.6.1.4.1.21367.2017.2.6.302",
    "c": "urn:oid:1.3.6.1.4.1.21367.2017.2.6.303",
}
REPOSITORIES = {
    "a": "1.3.6.1.4.1.21367.2017.2.3.301",
    "b": "1.3.6.1.4.1.21367.2017.2.3.302",
    "c": "1.3.6.1.4.1.21367.2017.2.3.303",
}
FAKES = {
    "silent": "urn:oid:1.3.6.1.4.1.21367.2017.2.6.911",
    "garbage": "urn:oid:1.3.6.1.4.1.21367.2017.2.6.912",
    "slamming": "urn:oid:1.3.6.1.4.1.21367.2017.2.6.913",
}
DEADLINE = 2.0
MARGIN = 1.0
"""Seconds beyond the deadline the answer may take (a loaded two-core machine, HTTP, three answers merged)."""


@dataclass(frozen=True, slots=True)
class Community:
    """A running node and the documents it holds: uniqueId -> bytes."""

    files: NodeFiles
    home: str
    documents: dict[str, bytes]


def _configure(files: NodeFiles, name: str, extra: str = "") -> None:
    identities = f'home_community_id = "{HOMES[name]}"\nrepository_unique_id = "{REPOSITORIES[name]}"\n'
    files.config.write_text(files.config.read_text() + identities + extra)


def _load(files: NodeFiles, name: str, tmp_path: Path, n: int) -> dict[str, bytes]:
    """Feed the patient with ``xds patient add`` and submit ``n`` documents with ``xds submit``."""
    fed = files.cli("patient", "add", PATIENT)
    assert fed.returncode == 0, fed.stderr
    paths = []
    for i in range(n):
        path = tmp_path / f"{name}-{i}.txt"
        path.write_bytes(f"community {name}, document {i}\r\n".encode() * (200 * (i + 1)))
        paths.append(path)
    done = files.cli("submit", *map(str, paths), "--patient", PATIENT, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "Success"
    return {d["unique_id"]: Path(d["file"]).read_bytes() for d in result["documents"]}


def _gateway_config(b: Community, c: Community, fakes: dict[str, str]) -> str:
    lines = [f"\n[gateway]\ntimeout = {DEADLINE}\ndeadline = {DEADLINE}\n"]
    remotes = {b.home: f"{b.files.url}/xca/responding", c.home: f"{c.files.url}/xca/responding"}
    remotes |= {FAKES[name]: url for name, url in fakes.items()}
    for home, url in remotes.items():
        lines.append(f'\n[[communities]]\nhome_community_id = "{home}"\nquery_url = "{url}"\nretrieve_url = "{url}"\n')
    return "".join(lines)


@pytest.fixture(params=backends())
def network(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Community]]:
    """Nodes B and C serving their documents, node A initiating to them and to the three fakes."""
    backend: str = request.param
    with ExitStack() as stack:
        out: dict[str, Community] = {}
        for name, n in (("b", 2), ("c", 1)):
            (tmp_path / name).mkdir()
            files = stack.enter_context(new_node(tmp_path / name, backend))
            _configure(files, name)
            stack.enter_context(serving(files))
            out[name] = Community(files, HOMES[name], _load(files, name, tmp_path, n))
        fakes = {
            "silent": stack.enter_context(silent_socket()),
            "garbage": stack.enter_context(garbage()),
            "slamming": stack.enter_context(slamming_socket()),
        }
        (tmp_path / "a").mkdir()
        a = stack.enter_context(new_node(tmp_path / "a", backend))
        _configure(a, "a", _gateway_config(out["b"], out["c"], fakes))
        stack.enter_context(serving(a))
        out["a"] = Community(a, HOMES["a"], _load(a, "a", tmp_path, 1))
        yield out


def _post(url: str, action: str, body: bytes) -> tuple[etree._Element, dict[str, bytes]]:
    """POST a SOAP 1.2 request; the answer's body element (schema-valid) and its attachments by Content-ID."""
    envelope = request_envelope(action=action, body=body, to=url)
    resp = httpx.post(url, content=envelope, headers={"content-type": soap_content_type(action)}, timeout=30)
    assert resp.status_code == 200, resp.text[:2000]
    raw, attachments = resp.content, {}
    content_type = resp.headers.get("content-type", "")
    if mtom.is_multipart_related(content_type):
        raw, attachments = read_mtom(content_type, resp.content)
    root = parse_xml(raw)
    if not attachments:
        assert_valid(root, what=action)
    return root.find(qn(SOAP12, "Body"))[0], attachments  # type: ignore[index]


def _find_documents() -> bytes:
    return messages.render_adhoc_query_request(
        StoredQueryRequest(
            query_id=v.SQ_FIND_DOCUMENTS,
            return_type="LeafClass",
            parameters=(
                QueryParameter(name="$XDSDocumentEntryPatientId", values=(f"'{PATIENT}'",)),
                QueryParameter(name="$XDSDocumentEntryStatus", values=(f"('{v.APPROVED}')",)),
            ),
        )
    )


def _entries(answer: etree._Element) -> dict[str, tuple[str, str]]:
    """DocumentEntry uniqueId -> (home, repositoryUniqueId) of every ExtrinsicObject of a query answer."""
    out: dict[str, tuple[str, str]] = {}
    for eo in answer.iter(qn(RIM, "ExtrinsicObject")):
        unique_id = next(
            x.get("value", "")
            for x in eo.iter(qn(RIM, "ExternalIdentifier"))
            if x.get("identificationScheme") == v.DE_UNIQUE_ID
        )
        repository = next(
            s.findtext(f"{qn(RIM, 'ValueList')}/{qn(RIM, 'Value')}", "")
            for s in eo.iter(qn(RIM, "Slot"))
            if s.get("name") == "repositoryUniqueId"
        )
        out[unique_id] = (eo.get("home", ""), repository)
    return out


def test_find_documents_and_retrieve_across_three_nodes(network: dict[str, Community]) -> None:
    gateway = f"{network['a'].files.url}/xca/initiating"
    started = time.monotonic()
    answer, _ = _post(gateway, v.ACTION_STORED_QUERY, _find_documents())
    elapsed = time.monotonic() - started

    assert elapsed < DEADLINE + MARGIN, f"answered after {elapsed:.2f} s; deadline {DEADLINE} s"
    assert answer.get("status") == v.RESPONSE_PARTIAL_SUCCESS
    entries = _entries(answer)
    assert {uid: home for uid, (home, _) in entries.items()} == {
        uid: c.home for c in network.values() for uid in c.documents
    }, "every document of A, B and C, each with its community's home"
    errors = [(e.get("errorCode"), e.get("location")) for e in answer.iter(qn(RS, "RegistryError"))]
    assert sorted(errors) == sorted((ErrorCode.UNAVAILABLE_COMMUNITY, home) for home in FAKES.values())

    wanted = [next(iter(network[name].documents)) for name in ("b", "c")]
    request = RetrieveRequest(
        documents=tuple(
            DocumentRequest(
                repository_unique_id=entries[uid][1], document_unique_id=uid, home_community_id=entries[uid][0]
            )
            for uid in wanted
        )
    )
    got, attachments = _post(gateway, v.ACTION_RETRIEVE, xdsb.render_retrieve_request(request))
    status, errors_back, documents = xdsb.retrieve_response(got)
    assert status == v.RESPONSE_SUCCESS and errors_back == ()
    by_uid = {
        ids.document_unique_id: (ids.home_community_id, attachments[part.cid or ""]) for ids, _, part in documents
    }
    assert by_uid == {
        wanted[0]: (HOMES["b"], network["b"].documents[wanted[0]]),
        wanted[1]: (HOMES["c"], network["c"].documents[wanted[1]]),
    }

    # Node A's audit trail: the consumer's ITI-18 and ITI-43, and one ITI-38 per community it asked (the
    # fakes as failures), one ITI-39 per community it retrieved from; node B audited its own side.
    def events(name: str) -> list[tuple[str, int]]:
        listed = network[name].files.cli("audit", "list", "--json", "--limit", "1000")
        assert listed.returncode == 0, listed.stderr
        return [(r["event"], r["outcome"]) for r in json.loads(listed.stdout)]

    a_events = events("a")
    assert a_events.count(("ITI-18", 4)) == 1 and a_events.count(("ITI-43", 0)) == 1
    iti38 = [outcome for event, outcome in a_events if event == "ITI-38"]
    assert sorted(iti38) == sorted([0, 0] + [8] * len(FAKES))
    assert sorted(outcome for event, outcome in a_events if event == "ITI-39") == [0, 0]
    b_events = events("b")
    assert ("ITI-38", 0) in b_events and ("ITI-39", 0) in b_events
