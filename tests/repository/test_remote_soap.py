"""A repository whose registry is another node: ITI-41 forwarded as ITI-42 over a real socket.

Node B (every configured backend) is the registry, served by uvicorn; node A (SQLite) is the repository with
``registry_url`` pointing at B. The SOAP adapter's failure classification is unit-tested with httpx mocks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from tests.support import REPOSITORY, Answer, post, serving
from xds import samples
from xds import vocabulary as v
from xds.app import create_app
from xds.config import Settings
from xds.ebrim import messages, xdsb
from xds.errors import ErrorCode, RegistryError, RegistryErrorItem, RelayedErrors, Severity
from xds.model.messages import DocumentRequest, RegistryResponse, RetrieveRequest
from xds.model.metadata import DocumentEntry
from xds.node import Node
from xds.registry_client import SoapRegistry
from xds.repository.remote import OutcomeUnknown, RegistryUnreachable
from xds.soap.envelope import CONTENT_TYPE, render_envelope
from xds.soap.faults import SoapFault, render_fault

PATIENT = samples.patient("remote-soap")


@pytest.fixture
def registry_url(node: Node) -> Iterator[str]:
    """Node B, serving its registry."""
    node.store.add_patient(str(PATIENT))
    with serving(create_app(node)) as url:
        yield f"{url}/xds/registry"


def repository_node(tmp_path: Path, registry_url: str, **kw: object) -> Node:
    settings = Settings(
        data_dir=str(tmp_path / "a"),
        repository_unique_id="1.3.6.1.4.1.21367.2017.2.3.100",
        registry_url=registry_url,
        registry_timeout=5.0,
        **kw,  # type: ignore[arg-type]
    )
    return Node.open(settings)


def entry(data: bytes) -> DocumentEntry:
    de = samples.document_entry(PATIENT, content=data)
    return dataclasses.replace(de, hash="", size=None, repository_unique_id="")


def provide(client: TestClient, de: DocumentEntry, data: bytes) -> Answer:
    body = xdsb.render_provide_and_register_request(
        messages.render_submit_objects_request(samples.submission(PATIENT, [de])), [(de.id, "d@x")]
    )
    return post(client, v.ACTION_PROVIDE_AND_REGISTER, body, REPOSITORY, parts=[("d@x", "text/plain", data)])


def retrieve(client: TestClient, node: Node, uid: str) -> Answer:
    req = RetrieveRequest(
        documents=(DocumentRequest(repository_unique_id=node.repository_unique_id, document_unique_id=uid),)
    )
    return post(client, v.ACTION_RETRIEVE, xdsb.render_retrieve_request(req), REPOSITORY)


def test_provide_registers_at_the_remote_registry_and_is_retrievable_here(
    registry_url: str, node: Node, tmp_path: Path
) -> None:
    a = repository_node(tmp_path, registry_url)
    data = b"stored at A, registered at B"
    de = entry(data)
    try:
        with TestClient(create_app(a)) as client:
            assert provide(client, de, data).status == v.RESPONSE_SUCCESS
            got = retrieve(client, a, de.unique_id)
        assert got.status == v.RESPONSE_SUCCESS and list(got.attachments.values()) == [data]
        with node.store.transaction() as tx:
            (stored,) = tx.objects_by_unique_id([de.unique_id])
        assert stored.hash == hashlib.sha1(data).hexdigest()
        assert f"<rim:Value>{a.repository_unique_id}</rim:Value>" in stored.xml  # repositoryUniqueId slot set by A
        assert node.store.count_documents() == 0, "B holds the metadata, not the document"
    finally:
        a.close()


def test_the_remote_registry_s_errors_are_relayed_unchanged(registry_url: str, tmp_path: Path) -> None:
    a = repository_node(tmp_path, registry_url)
    stranger = samples.patient("not-fed-at-B")
    data = b"for a patient B does not know"
    de = dataclasses.replace(
        samples.document_entry(stranger, content=data), hash="", size=None, repository_unique_id=""
    )
    body = xdsb.render_provide_and_register_request(
        messages.render_submit_objects_request(samples.submission(stranger, [de])), [(de.id, "d@x")]
    )
    try:
        with TestClient(create_app(a)) as client:
            answer = post(client, v.ACTION_PROVIDE_AND_REGISTER, body, REPOSITORY, parts=[("d@x", "x/y", data)])
        assert answer.status == v.RESPONSE_FAILURE and answer.error_codes == [ErrorCode.UNKNOWN_PATIENT_ID]
        assert a.store.count_documents() == 0
        assert not a.documents.exists(hashlib.sha256(data).hexdigest())
    finally:
        a.close()


def test_an_unreachable_registry_is_registry_not_available_and_nothing_is_kept(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    a = repository_node(tmp_path, f"http://127.0.0.1:{closed_port}/xds/registry")
    data = b"nobody to register with"
    try:
        with TestClient(create_app(a)) as client:
            answer = provide(client, entry(data), data)
        assert answer.error_codes == [ErrorCode.REGISTRY_NOT_AVAILABLE]
        assert a.store.count_documents() == 0
        assert not a.documents.exists(hashlib.sha256(data).hexdigest())
    finally:
        a.close()


# --- classification of failures (httpx mocks) -------------------------------------------------------------


def mocked(handler: object) -> SoapRegistry:
    return SoapRegistry("http://registry.test/xds/registry", transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


def raising(exc: Exception) -> object:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


SUB = samples.submission(PATIENT, [samples.document_entry(PATIENT)])


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ConnectError("refused"), RegistryUnreachable),
        (httpx.ConnectTimeout("slow connect"), RegistryUnreachable),
        (httpx.ReadTimeout("no answer"), OutcomeUnknown),
        (httpx.RemoteProtocolError("dropped"), OutcomeUnknown),
    ],
)
def test_transport_failures_are_sorted_by_whether_the_request_went_out(exc: Exception, kind: type) -> None:
    with pytest.raises(kind):
        mocked(raising(exc)).register(SUB)


def soap(body: bytes, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=body, headers={"content-type": CONTENT_TYPE})


def test_a_sender_fault_is_a_rejection_and_a_receiver_fault_an_unknown_outcome() -> None:
    sender = render_fault(SoapFault("bad request", code="Sender"))
    receiver = render_fault(SoapFault("crashed", code="Receiver"))
    with pytest.raises(RegistryError):
        mocked(lambda r: soap(sender, 400)).register(SUB)
    with pytest.raises(OutcomeUnknown):
        mocked(lambda r: soap(receiver, 500)).register(SUB)


def test_an_html_error_page_is_an_unknown_outcome() -> None:
    page = httpx.Response(502, content=b"<html>Bad Gateway</html>", headers={"content-type": "text/html"})
    with pytest.raises(OutcomeUnknown):
        mocked(lambda r: page).register(SUB)


def test_a_failure_answer_is_relayed_with_every_error() -> None:
    items = (
        RegistryErrorItem(error_code="XDSPatientIdDoesNotMatch", code_context="a", location="x"),
        RegistryErrorItem(error_code="XDSRegistryMetadataError", code_context="b", severity=Severity.WARNING),
    )
    body = messages.registry_response(RegistryResponse(status=v.RESPONSE_FAILURE, errors=items))
    envelope = render_envelope(action=v.ACTION_REGISTER_RESPONSE, body=body)
    with pytest.raises(RelayedErrors) as err:
        mocked(lambda r: soap(envelope)).register(SUB)
    assert err.value.items() == items


def test_xds_repository_reconcile_settles_pending_records(registry_url: str, node: Node, tmp_path: Path) -> None:
    from xds.cli import main
    from xds.model.messages import StoredDocument
    from xds.registry import iti42

    registered = samples.document_entry(PATIENT, content=b"registered at B")
    iti42.register(samples.submission(PATIENT, [registered]), node.registry_context())
    config = tmp_path / "a.toml"
    config.write_text(
        f'[node]\ndata_dir = "{tmp_path / "a"}"\nrepository_unique_id = "1.3.6.1.4.1.21367.2017.2.3.100"\n'
        f'[repository]\nregistry_url = "{registry_url}"\n'
    )
    a = repository_node(tmp_path, registry_url)
    try:
        pending = []
        for uid, data in ((registered.unique_id, b"registered at B"), ("1.2.3.4.404", b"never registered")):
            content = a.documents.stage_bytes([data])
            a.documents.publish([content])
            pending.append(
                StoredDocument(
                    repository_unique_id=a.repository_unique_id, unique_id=uid, mime_type="text/plain", content=content
                )
            )
        a.store.record_pending(pending)
    finally:
        a.close()
    assert main(["repository", "reconcile", "--all", "--config", str(config)]) == 0
    a = repository_node(tmp_path, registry_url)
    try:
        assert set(a.store.documents(a.repository_unique_id, [registered.unique_id, "1.2.3.4.404"])) == {
            registered.unique_id
        }
        assert not a.documents.exists(hashlib.sha256(b"never registered").hexdigest())
        assert a.documents.exists(hashlib.sha256(b"registered at B").hexdigest())
    finally:
        a.close()
