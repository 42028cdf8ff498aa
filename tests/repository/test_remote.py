"""Forwarding ITI-41 to a remote registry: pending records, relayed errors, unknown outcomes, reconciliation."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

import pytest

from xds import samples
from xds import vocabulary as v
from xds.errors import ErrorCode, RegistryErrorItem, RegistryNotAvailable, RelayedErrors
from xds.model.messages import DocumentRequest, ProvideAndRegisterRequest, RegistryResponse, RetrieveRequest
from xds.model.metadata import Submission
from xds.node import Node
from xds.repository import iti41, iti43
from xds.repository.iti41 import RepositoryContext
from xds.repository.remote import OutcomeUnknown, RegistryUnreachable, RemoteRegistry

PATIENT = samples.patient("remote")
LATER = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="seconds")


class FakeRegistry:
    """A remote registry whose behaviour each test scripts."""

    def __init__(self, *, on_register: Exception | None = None, stores: bool = True, lookup: bool = True) -> None:
        self.on_register, self.stores, self.lookup = on_register, stores, lookup
        self.held: set[str] = set()
        self.sent: list[Submission] = []

    def register(self, submission: Submission) -> RegistryResponse:
        self.sent.append(submission)
        if self.stores:
            self.held |= {de.unique_id for de in submission.document_entries}
        if self.on_register is not None:
            raise self.on_register
        return RegistryResponse()

    def registered(self, unique_ids: Collection[str]) -> set[str]:
        if not self.lookup:
            raise RegistryNotAvailable("no answer")
        return self.held & set(unique_ids)


def provide(node: Node, registry: FakeRegistry, data: bytes = b"forwarded document") -> str:
    de = dataclasses.replace(samples.document_entry(PATIENT, content=data), hash="", size=None, repository_unique_id="")
    req = ProvideAndRegisterRequest(
        submission=samples.submission(PATIENT, [de]), documents=((de.id, node.documents.stage_bytes([data])),)
    )
    ctx = RepositoryContext(
        repository_unique_id=node.repository_unique_id,
        files=node.documents,
        registry=RemoteRegistry(registry, node.store),
    )
    iti41.provide_and_register(req, ctx)
    return de.unique_id


def retrievable(node: Node, uid: str) -> bool:
    return uid in node.store.documents(node.repository_unique_id, [uid])


def test_accepted_submission_is_held_and_retrievable(node: Node) -> None:
    registry = FakeRegistry()
    uid = provide(node, registry)
    assert retrievable(node, uid)
    assert registry.sent[0].document_entries[0].repository_unique_id == node.repository_unique_id
    assert node.store.pending_documents(older_than=LATER) == []


def test_rejection_is_relayed_unchanged_and_nothing_kept(node: Node) -> None:
    item = RegistryErrorItem(error_code="XDSPatientIdDoesNotMatch", code_context="their words", location="x")
    registry = FakeRegistry(on_register=RelayedErrors((item,)), stores=False)
    with pytest.raises(RelayedErrors) as err:
        provide(node, registry, b"rejected remotely")
    assert err.value.items() == (item,)
    assert node.store.count_documents() == 0
    assert not node.documents.exists(hashlib.sha256(b"rejected remotely").hexdigest())


def test_unreachable_registry_is_registry_not_available(node: Node) -> None:
    registry = FakeRegistry(on_register=RegistryUnreachable("connection refused"), stores=False)
    with pytest.raises(RegistryNotAvailable) as err:
        provide(node, registry)
    assert err.value.error_code == ErrorCode.REGISTRY_NOT_AVAILABLE
    assert node.store.count_documents() == 0


def test_lost_answer_of_a_registration_that_happened_counts_as_accepted(node: Node) -> None:
    registry = FakeRegistry(on_register=OutcomeUnknown("read timeout"), stores=True)
    uid = provide(node, registry)
    assert retrievable(node, uid)


def test_lost_answer_of_a_registration_that_did_not_happen_keeps_nothing(node: Node) -> None:
    registry = FakeRegistry(on_register=OutcomeUnknown("read timeout"), stores=False)
    with pytest.raises(RegistryNotAvailable):
        provide(node, registry, b"never registered")
    assert node.store.count_documents() == 0
    assert not node.documents.exists(hashlib.sha256(b"never registered").hexdigest())


@pytest.mark.parametrize("registered_meanwhile", [True, False])
def test_unknown_outcome_stays_pending_until_reconciled(node: Node, registered_meanwhile: bool) -> None:
    data = b"outcome unknown"
    registry = FakeRegistry(on_register=OutcomeUnknown("read timeout"), stores=registered_meanwhile, lookup=False)
    with pytest.raises(OutcomeUnknown):
        provide(node, registry, data)
    (pending,) = node.store.pending_documents(older_than=LATER)
    assert not retrievable(node, pending.unique_id)
    assert node.documents.exists(pending.content.sha256), "content is kept while the outcome is unknown"

    registry.lookup = True
    result = RemoteRegistry(registry, node.store).reconcile(older_than=LATER)
    assert node.store.pending_documents(older_than=LATER) == []
    assert retrievable(node, pending.unique_id) is registered_meanwhile
    assert (result.held, len(result.dropped), result.unknown) == (
        int(registered_meanwhile),
        int(not registered_meanwhile),
        0,
    )
    if not registered_meanwhile:
        node.documents.remove_unreferenced([d.content.sha256 for d in result.dropped], node.store.recorded_contents)
        assert not node.documents.exists(pending.content.sha256)


def test_reconcile_leaves_recent_pending_records_alone(node: Node) -> None:
    registry = FakeRegistry(on_register=OutcomeUnknown("read timeout"), lookup=False)
    with pytest.raises(OutcomeUnknown):
        provide(node, registry)
    earlier = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    registry.lookup = True
    assert RemoteRegistry(registry, node.store).reconcile(older_than=earlier).held == 0
    assert len(node.store.pending_documents(older_than=LATER)) == 1


def test_pending_documents_are_not_retrievable_over_iti43(node: Node) -> None:
    registry = FakeRegistry(on_register=OutcomeUnknown("read timeout"), lookup=False)
    with pytest.raises(OutcomeUnknown):
        provide(node, registry)
    (pending,) = node.store.pending_documents(older_than=LATER)
    req = RetrieveRequest(
        documents=(
            DocumentRequest(repository_unique_id=node.repository_unique_id, document_unique_id=pending.unique_id),
        )
    )
    resp = iti43.retrieve(req, node.retrieve_context())
    assert resp.status == v.RESPONSE_FAILURE
    assert resp.errors[0].error_code == ErrorCode.DOCUMENT_UNIQUE_ID_ERROR
