"""ITI-43 service rules: many documents per call, located errors, PartialSuccess, no existence leaks."""

from __future__ import annotations

import dataclasses

import pytest

from xds import samples
from xds import vocabulary as v
from xds.consent.gate import Gate
from xds.consent.model import AccessRequest, Decision, deny
from xds.errors import ErrorCode, RepositoryError
from xds.model.messages import DocumentRequest, ProvideAndRegisterRequest, RetrieveRequest
from xds.node import Node
from xds.repository import iti41, iti43

PATIENT = samples.patient("iti43")


@pytest.fixture
def stored(node: Node) -> tuple[Node, dict[str, bytes]]:
    """Two documents provided and registered; uniqueId -> bytes."""
    node.store.add_patient(str(PATIENT))
    docs = {b"first document": "text/plain", b"%PDF-1.4 second": "application/pdf"}
    entries = [
        dataclasses.replace(
            samples.document_entry(PATIENT, content=data, mime_type=mime), hash="", size=None, repository_unique_id=""
        )
        for data, mime in docs.items()
    ]
    staged = tuple((de.id, node.documents.stage_bytes([data])) for de, data in zip(entries, docs, strict=True))
    req = ProvideAndRegisterRequest(submission=samples.submission(PATIENT, entries), documents=staged)
    iti41.provide_and_register(req, node.repository_context())
    return node, {de.unique_id: data for de, data in zip(entries, docs, strict=True)}


def ask(node: Node, *uids: str, repository: str | None = None) -> RetrieveRequest:
    repo = repository or node.repository_unique_id
    return RetrieveRequest(
        documents=tuple(DocumentRequest(repository_unique_id=repo, document_unique_id=u) for u in uids)
    )


def test_many_documents_in_one_call_with_their_mime_types(stored: tuple[Node, dict[str, bytes]]) -> None:
    node, docs = stored
    resp = iti43.retrieve(ask(node, *docs), node.retrieve_context())
    assert resp.status == v.RESPONSE_SUCCESS and resp.errors == ()
    got = {d.document_unique_id: d for d in resp.documents}
    assert set(got) == set(docs)
    for uid, data in docs.items():
        assert b"".join(node.documents.chunks(got[uid].content.sha256)) == data
    assert sorted(d.mime_type for d in resp.documents) == ["application/pdf", "text/plain"]


def test_some_missing_is_partial_success_with_located_errors(stored: tuple[Node, dict[str, bytes]]) -> None:
    node, docs = stored
    good = next(iter(docs))
    resp = iti43.retrieve(ask(node, good, "1.2.3.404"), node.retrieve_context())
    assert resp.status == v.RESPONSE_PARTIAL_SUCCESS
    assert [d.document_unique_id for d in resp.documents] == [good]
    (err,) = resp.errors
    assert (err.error_code, err.location) == (ErrorCode.DOCUMENT_UNIQUE_ID_ERROR, "1.2.3.404")


def test_nothing_found_is_failure(stored: tuple[Node, dict[str, bytes]]) -> None:
    node, _ = stored
    resp = iti43.retrieve(ask(node, "1.2.3.404", "1.2.3.405"), node.retrieve_context())
    assert resp.status == v.RESPONSE_FAILURE and resp.documents == ()
    assert [e.location for e in resp.errors] == ["1.2.3.404", "1.2.3.405"]


def test_another_repository_is_unknown_repository_id(stored: tuple[Node, dict[str, bytes]]) -> None:
    node, docs = stored
    resp = iti43.retrieve(ask(node, next(iter(docs)), repository="1.2.3.999"), node.retrieve_context())
    (err,) = resp.errors
    assert (err.error_code, err.location) == (ErrorCode.UNKNOWN_REPOSITORY_ID, "1.2.3.999")
    assert resp.status == v.RESPONSE_FAILURE


class _Refuse:
    name = "refuse"

    def decide(self, request: AccessRequest) -> Decision:
        return deny(self.name, "test")


def test_a_hidden_document_answers_exactly_like_an_unknown_one(stored: tuple[Node, dict[str, bytes]]) -> None:
    node, docs = stored
    hidden = next(iter(docs))
    refuse = Gate(policies=(_Refuse(),), record=lambda _request, _decision: None)
    ctx = dataclasses.replace(node.retrieve_context(), gate=refuse)
    as_hidden = iti43.retrieve(ask(node, hidden), ctx)
    as_unknown = iti43.retrieve(ask(node, "1.2.3.404"), ctx)
    assert as_hidden.status == as_unknown.status == v.RESPONSE_FAILURE
    (h,), (u,) = as_hidden.errors, as_unknown.errors
    assert (h.error_code, h.severity) == (u.error_code, u.severity)
    assert h.code_context.replace(hidden, "X") == u.code_context.replace("1.2.3.404", "X")


def test_request_count_is_bounded(stored: tuple[Node, dict[str, bytes]]) -> None:
    node, _ = stored
    ctx = dataclasses.replace(node.retrieve_context(), max_documents=2)
    with pytest.raises(RepositoryError, match="at most 2"):
        iti43.retrieve(ask(node, "1", "2", "3"), ctx)


def test_missing_content_is_a_repository_error_not_a_crash(stored: tuple[Node, dict[str, bytes]]) -> None:
    node, docs = stored
    uid = next(iter(docs))
    held = node.store.documents(node.repository_unique_id, [uid])[uid]
    node.documents.path(held.content.sha256).unlink()
    resp = iti43.retrieve(ask(node, uid), node.retrieve_context())
    (err,) = resp.errors
    assert (err.error_code, err.location) == (ErrorCode.REPOSITORY_ERROR, uid)
