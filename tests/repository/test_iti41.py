"""ITI-41 service rules: document/metadata matching, size and hash checks, all or nothing, no orphans."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from xds import samples
from xds import vocabulary as v
from xds.errors import ErrorCode, RegistryNotAvailable, XDSError, XDSErrors
from xds.model.messages import DocumentContent, ProvideAndRegisterRequest, RegistryResponse, StoredDocument
from xds.model.metadata import DocumentEntry, Submission
from xds.node import Node
from xds.repository import iti41
from xds.repository.iti41 import RepositoryContext

PATIENT = samples.patient("iti41")


@pytest.fixture
def fed(node: Node) -> Node:
    node.store.add_patient(str(PATIENT))
    return node


def source_entry(content: bytes, **kw: object) -> DocumentEntry:
    """A DocumentEntry as a Document Source sends it: no hash, size or repositoryUniqueId."""
    de = samples.document_entry(PATIENT, content=content)
    fields: dict[str, object] = {"hash": "", "size": None, "repository_unique_id": "", **kw}
    return dataclasses.replace(de, **fields)  # type: ignore[arg-type]


def request(node: Node, docs: Sequence[tuple[DocumentEntry, bytes]], extra: Sequence[tuple[str, bytes]] = ()):  # type: ignore[no-untyped-def]
    sub = samples.submission(PATIENT, [de for de, _ in docs])
    staged = [(de.id, node.documents.stage_bytes([data])) for de, data in docs]
    staged += [(doc_id, node.documents.stage_bytes([data])) for doc_id, data in extra]
    return ProvideAndRegisterRequest(submission=sub, documents=tuple(staged))


def codes(exc: XDSError) -> list[str]:
    return [e.error_code for e in exc.errors] if isinstance(exc, XDSErrors) else [exc.error_code]


def staged_files(node: Node) -> list[Path]:
    return [p for p in node.documents.staging_root.rglob("*") if p.is_file() and p.name != "lock"]


def test_documents_are_stored_and_registered_with_hash_size_and_repository(fed: Node) -> None:
    data = b"a report\n" * 100
    de = source_entry(data)
    resp = iti41.provide_and_register(request(fed, [(de, data)]), fed.repository_context())
    assert resp.status == v.RESPONSE_SUCCESS
    held = fed.store.documents(fed.repository_unique_id, [de.unique_id])[de.unique_id]
    assert (held.content.size, held.content.sha1) == (len(data), hashlib.sha1(data).hexdigest())
    assert held.mime_type == "text/plain" and held.entry_uuid.startswith("urn:uuid:")
    assert b"".join(fed.documents.chunks(held.content.sha256)) == data
    with fed.store.transaction() as tx:
        (entry,) = tx.objects_by_unique_id([de.unique_id])
    assert (entry.id, entry.hash) == (held.entry_uuid, hashlib.sha1(data).hexdigest())
    assert staged_files(fed) == []


def test_the_registry_sees_hash_size_and_repository_unique_id(fed: Node) -> None:
    seen: list[Submission] = []

    class Spy:
        def register(self, submission: Submission, documents: Sequence[StoredDocument]) -> RegistryResponse:
            seen.append(submission)
            return RegistryResponse()

    ctx = RepositoryContext(repository_unique_id="1.2.3", files=fed.documents, registry=Spy())
    data = b"x" * 10
    iti41.provide_and_register(request(fed, [(source_entry(data), data)]), ctx)
    de = seen[0].document_entries[0]
    assert (de.hash, de.size, de.repository_unique_id) == (hashlib.sha1(data).hexdigest(), 10, "1.2.3")


@pytest.mark.parametrize("case", ["upper-case hash", "lower-case hash", "size"])
def test_given_size_and_hash_are_accepted_when_they_match(fed: Node, case: str) -> None:
    data = b"matching"
    digest = hashlib.sha1(data).hexdigest()
    kw = {"size": len(data)} if case == "size" else {"hash": digest.upper() if "upper" in case else digest}
    resp = iti41.provide_and_register(request(fed, [(source_entry(data, **kw), data)]), fed.repository_context())
    assert resp.status == v.RESPONSE_SUCCESS


@pytest.mark.parametrize(
    "kw", [{"size": 3}, {"hash": "0" * 40}, {"repository_unique_id": "9.9.9"}], ids=["size", "hash", "repository"]
)
def test_metadata_that_contradicts_the_document_is_a_repository_metadata_error(
    fed: Node, kw: dict[str, object]
) -> None:
    data = b"the real bytes"
    de = source_entry(data, **kw)
    with pytest.raises(XDSError) as err:
        iti41.provide_and_register(request(fed, [(de, data)]), fed.repository_context())
    assert codes(err.value) == [ErrorCode.REPOSITORY_METADATA_ERROR]
    assert fed.store.documents(fed.repository_unique_id, [de.unique_id]) == {}
    assert staged_files(fed) == []


def test_entry_without_document_and_document_without_entry(fed: Node) -> None:
    data = b"orphan"
    with_doc, without_doc = source_entry(data), source_entry(b"")
    req = request(fed, [(with_doc, data)], extra=[("urn:uuid:not-described", b"stray")])
    req = dataclasses.replace(req, submission=samples.submission(PATIENT, [with_doc, without_doc]))
    with pytest.raises(XDSErrors) as err:
        iti41.provide_and_register(req, fed.repository_context())
    assert sorted(codes(err.value)) == [ErrorCode.MISSING_DOCUMENT, ErrorCode.MISSING_DOCUMENT_METADATA]
    locations = {e.error_code: e.location for e in err.value.errors}
    assert locations[ErrorCode.MISSING_DOCUMENT] == without_doc.id
    assert locations[ErrorCode.MISSING_DOCUMENT_METADATA] == "urn:uuid:not-described"
    assert staged_files(fed) == []


def test_registry_rejection_is_relayed_and_nothing_is_kept(node: Node) -> None:
    data = b"for an unknown patient"
    de = source_entry(data)  # PATIENT is not fed on ``node``
    with pytest.raises(XDSError) as err:
        iti41.provide_and_register(request(node, [(de, data)]), node.repository_context())
    assert ErrorCode.UNKNOWN_PATIENT_ID in codes(err.value)
    assert node.store.documents(node.repository_unique_id, [de.unique_id]) == {}
    assert not node.documents.exists(hashlib.sha256(data).hexdigest())
    assert staged_files(node) == []


def test_unreachable_registry_keeps_nothing(fed: Node) -> None:
    class Down:
        def register(self, submission: Submission, documents: Sequence[StoredDocument]) -> RegistryResponse:
            raise RegistryNotAvailable("registry at http://192.0.2.1 did not answer")

    ctx = RepositoryContext(repository_unique_id=fed.repository_unique_id, files=fed.documents, registry=Down())
    data = b"nobody listens"
    with pytest.raises(RegistryNotAvailable):
        iti41.provide_and_register(request(fed, [(source_entry(data), data)]), ctx)
    assert not fed.documents.exists(hashlib.sha256(data).hexdigest())
    assert staged_files(fed) == []


def test_resubmitting_the_same_document_is_accepted_and_stored_once(fed: Node) -> None:
    data = b"sent twice"
    de = source_entry(data)
    iti41.provide_and_register(request(fed, [(de, data)]), fed.repository_context())
    again = dataclasses.replace(de, id=samples.new_uuid())
    iti41.provide_and_register(request(fed, [(again, data)]), fed.repository_context())
    assert fed.store.count_documents() == 1
    assert len(list(fed.documents.objects.rglob("*/*"))) == 1


def test_identical_content_in_two_documents_is_stored_once(fed: Node) -> None:
    data = b"same content, two documents"
    a, b = source_entry(data), source_entry(data)
    iti41.provide_and_register(request(fed, [(a, data), (b, data)]), fed.repository_context())
    held = fed.store.documents(fed.repository_unique_id, [a.unique_id, b.unique_id])
    assert held[a.unique_id].content.sha256 == held[b.unique_id].content.sha256
    assert len([p for p in fed.documents.objects.rglob("*") if p.is_file()]) == 1


def test_zero_byte_document(fed: Node) -> None:
    de = source_entry(b"")
    iti41.provide_and_register(request(fed, [(de, b"")]), fed.repository_context())
    held = fed.store.documents(fed.repository_unique_id, [de.unique_id])[de.unique_id]
    assert held.content == DocumentContent(
        ref="", size=0, sha1=hashlib.sha1(b"").hexdigest(), sha256=hashlib.sha256(b"").hexdigest()
    )
