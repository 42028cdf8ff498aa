"""The repository endpoint over SOAP: ITI-41 as MTOM/XOP and inline, ITI-43 as MTOM, faults, limits, WSDL."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
from lxml import etree
from starlette.testclient import TestClient

from tests.support import REPOSITORY, Answer, post
from xds import samples
from xds import vocabulary as v
from xds.app import create_app
from xds.ebrim import messages, xdsb
from xds.model.messages import DocumentRequest, RetrieveRequest
from xds.model.metadata import DocumentEntry, Submission
from xds.namespaces import SOAP12, XDSB, qn
from xds.node import Node
from xds.soap import mtom
from xds.soap.envelope import request_envelope

PATIENT = samples.patient("web-repo")


@pytest.fixture
def fed(node: Node) -> Node:
    node.store.add_patient(str(PATIENT))
    return node


@pytest.fixture
def repo(fed: Node) -> TestClient:
    with TestClient(create_app(fed)) as c:
        yield c  # type: ignore[misc]


def entry(data: bytes, mime: str = "text/plain") -> DocumentEntry:
    de = samples.document_entry(PATIENT, content=data, mime_type=mime)
    return dataclasses.replace(de, hash="", size=None, repository_unique_id="")


def provide_mtom(
    client: TestClient, sub: Submission, docs: dict[str, bytes], cids: dict[str, str] | None = None
) -> Answer:
    cids = cids or {doc_id: mtom.new_content_id(n) for n, doc_id in enumerate(docs)}
    body = xdsb.render_provide_and_register_request(
        messages.render_submit_objects_request(sub), [(doc_id, cids[doc_id]) for doc_id in docs]
    )
    parts = [(cids[doc_id], "application/octet-stream", data) for doc_id, data in docs.items()]
    return post(client, v.ACTION_PROVIDE_AND_REGISTER, body, REPOSITORY, parts=parts)


def provide_inline(client: TestClient, sub: Submission, docs: dict[str, bytes]) -> Answer:
    body = xdsb.render_provide_and_register_inline(messages.render_submit_objects_request(sub), list(docs.items()))
    return post(client, v.ACTION_PROVIDE_AND_REGISTER, body, REPOSITORY)


def retrieve(client: TestClient, node: Node, *uids: str) -> Answer:
    req = RetrieveRequest(
        documents=tuple(
            DocumentRequest(repository_unique_id=node.repository_unique_id, document_unique_id=u) for u in uids
        )
    )
    return post(client, v.ACTION_RETRIEVE, xdsb.render_retrieve_request(req), REPOSITORY)


def leftovers(node: Node) -> list[Path]:
    return [p for p in node.documents.staging_root.rglob("*") if p.is_file() and p.name != "lock"]


def retrieved(answer: Answer) -> dict[str, tuple[str, bytes]]:
    """uniqueId -> (mimeType, bytes) of a retrieve answer."""
    _, _, docs = xdsb.retrieve_response(answer.body)
    out = {}
    for ids, mime, part in docs:
        assert part.cid is not None, "documents must come back as xop:Include parts"
        out[ids.document_unique_id] = (mime, answer.attachments[part.cid])
    return out


def test_provide_as_mtom_then_retrieve_both_as_mtom(repo: TestClient, fed: Node) -> None:
    text, pdf = b"line\r\n--MIMEBoundary not a boundary\r\n" * 1000, b"%PDF-1.4\x00\xff binary"
    a, b = entry(text), entry(pdf, "application/pdf")
    answer = provide_mtom(repo, samples.submission(PATIENT, [a, b]), {a.id: text, b.id: pdf})
    assert answer.status == v.RESPONSE_SUCCESS, answer.error_codes
    assert answer.is_mtom, "an MTOM request gets an MTOM response"
    got = retrieve(repo, fed, a.unique_id, b.unique_id)
    assert got.status == v.RESPONSE_SUCCESS and got.is_mtom
    assert retrieved(got) == {a.unique_id: ("text/plain", text), b.unique_id: ("application/pdf", pdf)}
    assert leftovers(fed) == []


def test_provide_inline_base64_is_answered_as_plain_soap(repo: TestClient, fed: Node) -> None:
    data = b"inline document"
    de = entry(data)
    answer = provide_inline(repo, samples.submission(PATIENT, [de]), {de.id: data})
    assert answer.status == v.RESPONSE_SUCCESS and not answer.is_mtom
    assert retrieved(retrieve(repo, fed, de.unique_id)) == {de.unique_id: ("text/plain", data)}


def test_percent_encoded_content_ids(repo: TestClient, fed: Node) -> None:
    data = b"cid with characters that need escaping"
    de = entry(data)
    answer = provide_mtom(repo, samples.submission(PATIENT, [de]), {de.id: data}, {de.id: "doc 1/ü@example.org"})
    assert answer.status == v.RESPONSE_SUCCESS, answer.error_codes


def test_include_naming_no_part_is_a_bad_mtom_fault_and_keeps_nothing(repo: TestClient, fed: Node) -> None:
    de = entry(b"x")
    body = xdsb.render_provide_and_register_request(
        messages.render_submit_objects_request(samples.submission(PATIENT, [de])), [(de.id, "missing@x")]
    )
    envelope = request_envelope(action=v.ACTION_PROVIDE_AND_REGISTER, body=body, to="http://testserver/xds/repository")
    ctype, data = mtom.render_mtom(
        envelope=envelope, action=v.ACTION_PROVIDE_AND_REGISTER, parts=[("other@x", "text/plain", b"x")]
    )
    resp = repo.post(REPOSITORY, content=data, headers={"content-type": ctype})
    assert resp.status_code == 400
    root = etree.fromstring(resp.content)
    assert root.findtext(f".//{qn(SOAP12, 'Subcode')}/{qn(SOAP12, 'Value')}").endswith("BadMTOM")  # type: ignore[union-attr]
    assert leftovers(fed) == [] and fed.store.count_documents() == 0


def test_truncated_mtom_is_a_fault_and_keeps_nothing(repo: TestClient, fed: Node) -> None:
    de = entry(b"y" * 100_000)
    envelope = request_envelope(
        action=v.ACTION_PROVIDE_AND_REGISTER,
        body=xdsb.render_provide_and_register_request(
            messages.render_submit_objects_request(samples.submission(PATIENT, [de])), [(de.id, "d@x")]
        ),
        to="http://testserver/xds/repository",
    )
    ctype, data = mtom.render_mtom(
        envelope=envelope, action=v.ACTION_PROVIDE_AND_REGISTER, parts=[("d@x", "text/plain", b"y" * 100_000)]
    )
    resp = repo.post(REPOSITORY, content=data[: len(data) // 2], headers={"content-type": ctype})
    assert resp.status_code == 400 and b"BadMTOM" in resp.content
    assert leftovers(fed) == []


def test_registry_rejection_is_relayed_and_nothing_is_kept(node: Node) -> None:
    data = b"unknown patient's document"
    de = entry(data)  # PATIENT not fed on this node
    with TestClient(create_app(node)) as client:
        answer = provide_mtom(client, samples.submission(PATIENT, [de]), {de.id: data})
    assert answer.status == v.RESPONSE_FAILURE
    assert answer.error_codes == ["XDSUnknownPatientId"]
    assert leftovers(node) == [] and not node.documents.exists(hashlib.sha256(data).hexdigest())


def test_wrong_hash_is_repository_metadata_error(repo: TestClient, fed: Node) -> None:
    abc = "A9993E364706816ABA3E25717850C26C9CD0D89D"  # SHA-1 of b"abc", upper-case hex
    de = dataclasses.replace(entry(b"abc"), hash=abc)
    ok = provide_mtom(repo, samples.submission(PATIENT, [de]), {de.id: b"abc"})
    assert ok.status == v.RESPONSE_SUCCESS
    bad = dataclasses.replace(entry(b"abd"), hash=abc)
    answer = provide_mtom(repo, samples.submission(PATIENT, [bad]), {bad.id: b"abd"})
    assert answer.error_codes == ["XDSRepositoryMetadataError"]


def test_unreferenced_attachments_are_not_kept(repo: TestClient, fed: Node) -> None:
    data = b"referenced"
    de = entry(data)
    body = xdsb.render_provide_and_register_request(
        messages.render_submit_objects_request(samples.submission(PATIENT, [de])), [(de.id, "a@x")]
    )
    parts = [("a@x", "text/plain", data), ("stray@x", "text/plain", b"nobody points here")]
    answer = post(repo, v.ACTION_PROVIDE_AND_REGISTER, body, REPOSITORY, parts=parts)
    assert answer.status == v.RESPONSE_SUCCESS
    assert leftovers(fed) == []
    assert not fed.documents.exists(hashlib.sha256(b"nobody points here").hexdigest())


def test_attachment_size_limit_is_a_413_fault(settings: object, fed: Node) -> None:
    small = dataclasses.replace(fed.settings, max_attachment_bytes=1000)
    node = dataclasses.replace(fed, settings=small)
    de = entry(b"z" * 5000)
    with TestClient(create_app(node)) as client:
        body = xdsb.render_provide_and_register_request(
            messages.render_submit_objects_request(samples.submission(PATIENT, [de])), [(de.id, "z@x")]
        )
        envelope = request_envelope(action=v.ACTION_PROVIDE_AND_REGISTER, body=body, to="http://x")
        ctype, data = mtom.render_mtom(
            envelope=envelope, action=v.ACTION_PROVIDE_AND_REGISTER, parts=[("z@x", "text/plain", b"z" * 5000)]
        )
        resp = client.post(REPOSITORY, content=data, headers={"content-type": ctype})
    assert resp.status_code == 413 and b"TooLarge" in resp.content
    assert leftovers(fed) == []


def test_retrieve_partial_and_failure(repo: TestClient, fed: Node) -> None:
    data = b"present"
    de = entry(data)
    provide_mtom(repo, samples.submission(PATIENT, [de]), {de.id: data})
    partial = retrieve(repo, fed, de.unique_id, "1.2.3.404")
    assert partial.status == v.RESPONSE_PARTIAL_SUCCESS and partial.error_codes == ["XDSDocumentUniqueIdError"]
    assert retrieved(partial) == {de.unique_id: ("text/plain", data)}
    failed = retrieve(repo, fed, "1.2.3.404")
    assert failed.status == v.RESPONSE_FAILURE and failed.is_mtom
    assert failed.body.findall(qn(XDSB, "DocumentResponse")) == []


def test_retrieve_of_a_malformed_request_is_a_repository_error(repo: TestClient) -> None:
    answer = post(repo, v.ACTION_RETRIEVE, f'<x:RetrieveDocumentSetRequest xmlns:x="{XDSB}"/>'.encode(), REPOSITORY)
    assert answer.status == v.RESPONSE_FAILURE and answer.error_codes == ["XDSRepositoryError"]


def test_registry_endpoint_accepts_mtom_requests(repo: TestClient, fed: Node) -> None:
    data = b"registered through ITI-42 sent as MTOM"
    de = samples.document_entry(PATIENT, content=data)
    body = messages.render_submit_objects_request(samples.submission(PATIENT, [de]))
    answer = post(repo, v.ACTION_REGISTER, body, "/xds/registry", parts=[])
    assert answer.status == v.RESPONSE_SUCCESS


def test_wsdl_and_health(repo: TestClient) -> None:
    wsdl = repo.get(f"{REPOSITORY}?wsdl")
    assert wsdl.status_code == 200
    root = etree.fromstring(wsdl.content)
    assert root.find(".//{http://schemas.xmlsoap.org/wsdl/soap12/}address").get("location") == (  # type: ignore[union-attr]
        f"http://testserver{REPOSITORY}"
    )
    assert b"DocumentRepository_RetrieveDocumentSet" in wsdl.content
    health = repo.get("/health").json()
    assert health["status"] == "ok"
    assert health["document_store"]["writable"] is True and health["document_store"]["free_bytes"] > 0


def test_large_inline_document(repo: TestClient, fed: Node) -> None:
    data = bytes(range(256)) * (12 * 4096)  # 12 MiB: its base64 text node is over libxml2's default 10 MB limit
    de = entry(data, "application/octet-stream")
    answer = provide_inline(repo, samples.submission(PATIENT, [de]), {de.id: data})
    assert answer.status == v.RESPONSE_SUCCESS, answer.error_codes
    assert retrieved(retrieve(repo, fed, de.unique_id))[de.unique_id][1] == data


def test_the_transaction_log_reports_the_answer_s_own_status(
    repo: TestClient, fed: Node, caplog: pytest.LogCaptureFixture
) -> None:
    data = b"present"
    de = entry(data)
    provide_mtom(repo, samples.submission(PATIENT, [de]), {de.id: data})
    with caplog.at_level("INFO", logger="xds.transaction"):
        retrieve(repo, fed, de.unique_id, "1.2.3.404")
    (record,) = [r for r in caplog.records if getattr(r, "transaction", "") == "ITI-43"]
    assert record.status == "PartialSuccess"  # type: ignore[attr-defined]
    assert record.error_codes == ["XDSDocumentUniqueIdError"]  # type: ignore[attr-defined]
