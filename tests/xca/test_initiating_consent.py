"""The Initiating Gateway's consent gate on what remote communities answer (per patient and data category) and
the audit records of its outbound calls, with community B a real node on a real socket."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from tests.audit.test_message import SCHEMA
from tests.support import serving
from tests.xca.test_initiating import B_HOME, PATIENT, community, context, find_documents, run
from xds import samples
from xds import vocabulary as v
from xds.app import create_app
from xds.audit.message import AuditMessage, render
from xds.config import Settings
from xds.consent.gate import Gate
from xds.consent.model import AccessRequest, Decision, deny, permit
from xds.model.metadata import Code
from xds.model.rim import text
from xds.node import Node
from xds.registry import iti42

GGZ = Code(code="GGZ", scheme="1.2.3.4.99", display_name=text("Mental health"))


class DenyCategory:
    """Denies one data category, permits the rest; keeps every question."""

    name = "test"

    def __init__(self, category: str) -> None:
        self.category = category
        self.asked: list[tuple[str, str]] = []

    def decide(self, request: AccessRequest) -> Decision:
        self.asked.append((request.patient_id, request.category))
        return deny(self.name, "no") if request.category == self.category else permit(self.name, "yes")


@pytest.fixture
def community_b(tmp_path: Path) -> Iterator[str]:
    """Node B with two documents of PATIENT: one REPORTS (the samples' classCode), one GGZ."""
    b = Node.open(Settings(data_dir=str(tmp_path / "b"), home_community_id=B_HOME))
    b.store.add_patient(str(PATIENT))
    entries = [
        samples.document_entry(PATIENT, content=b"report"),
        samples.document_entry(PATIENT, content=b"ggz", class_code=GGZ),
    ]
    iti42.register(samples.submission(PATIENT, entries), b.registry_context())
    try:
        with serving(create_app(b)) as url:
            yield f"{url}/xca/responding"
    finally:
        b.close()


def test_a_denied_category_from_a_remote_community_is_left_out(node: Node, community_b: str) -> None:
    policy = DenyCategory("GGZ")
    recorded: list[Decision] = []
    gate = Gate(policies=(policy,), record=lambda _request, decision: recorded.append(decision))
    ctx = dataclasses.replace(context(node, [community(B_HOME, community_b)]), gate=gate)
    answer = run(find_documents(), ctx)
    assert answer.status == v.RESPONSE_SUCCESS
    assert len(answer.leaf) == 1 and "REPORTS" in answer.leaf[0] and "GGZ" not in answer.leaf[0]
    assert sorted(set(policy.asked)) == [(str(PATIENT), ""), (str(PATIENT), "GGZ"), (str(PATIENT), "REPORTS")]
    assert [d.permit for d in recorded].count(False) == 1  # GGZ, decided once


def test_every_remote_object_released_when_the_gate_permits(node: Node, community_b: str) -> None:
    gate = Gate(policies=(DenyCategory("nothing"),), record=lambda _r, _d: None)
    ctx = dataclasses.replace(context(node, [community(B_HOME, community_b)]), gate=gate)
    assert len(run(find_documents(), ctx).leaf) == 2


# --- the audit records of the outbound calls -------------------------------------------------------------------


def test_each_outbound_call_is_audited_as_the_initiating_gateway(node: Node, community_b: str) -> None:
    kept: list[AuditMessage] = []
    silent_home = "urn:oid:1.3.6.1.4.1.21367.2017.2.6.201"
    ctx = dataclasses.replace(
        context(node, [community(B_HOME, community_b), community(silent_home, "http://127.0.0.1:9/none")]),
        audit=kept.extend,
        audit_node=lambda: node.audit_node,
    )
    run(find_documents(), ctx)
    by_destination = {m.participants[-1].user_id: m for m in kept if m.type_codes and m.type_codes[0].code == "ITI-38"}
    assert set(by_destination) == {community_b, "http://127.0.0.1:9/none"}
    assert by_destination[community_b].outcome == 0 and by_destination["http://127.0.0.1:9/none"].outcome == 8
    for message in kept:
        assert SCHEMA.validate(etree.fromstring(render(message))), SCHEMA.error_log
        source = message.participants[0]
        assert source.user_is_requestor and source.role_id_codes[0].code == "110153"  # this node asked
        patients = [o.id for o in message.objects if o.type_code == 1]
        assert patients == [str(PATIENT)]


def test_a_busy_thread_pool_does_not_eat_the_fan_outs_deadline(node: Node, community_b: str) -> None:
    """Nothing between the start of the deadline and the outbound calls waits for a worker thread: with every
    worker busy, community B is still asked and answers in time."""
    import asyncio
    import threading

    import anyio.to_thread

    from xca import initiating
    from xca.assertions import OutboundAssertions

    release = threading.Event()
    timer = threading.Timer(3.0, release.set)  # a broken gateway waits for the worker, then misses the deadline
    timer.daemon = True
    timer.start()
    ctx = dataclasses.replace(
        context(node, [community(B_HOME, community_b)], deadline=1.0), assertions=OutboundAssertions("forward")
    )

    async def go() -> object:
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = 1
        blocker = asyncio.ensure_future(anyio.to_thread.run_sync(release.wait))
        await asyncio.sleep(0.05)
        try:
            return await initiating.query(find_documents(), ctx)
        finally:
            release.set()
            await blocker
            await ctx.client.aclose()

    answer = asyncio.run(go())
    homes = {leaf.split('home="', 1)[1].split('"', 1)[0] for leaf in answer.leaf}  # type: ignore[attr-defined]
    assert B_HOME in homes  # B answered; only our own (in-process, threaded) part may have missed the deadline


def test_the_patient_is_read_like_the_registry_reads_it(node: Node, community_b: str) -> None:
    """A patient id sent as a one-element list, ``('id')``, is decided as that patient, not as the raw text."""
    policy = DenyCategory("nothing")
    gate = Gate(policies=(policy,), record=lambda _r, _d: None)
    ctx = dataclasses.replace(context(node, [community(B_HOME, community_b)]), gate=gate)
    request = find_documents()
    listed = tuple(
        dataclasses.replace(p, values=(f"('{PATIENT}')",)) if p.name == "$XDSDocumentEntryPatientId" else p
        for p in request.parameters
    )
    run(dataclasses.replace(request, parameters=listed), ctx)
    assert {patient for patient, _ in policy.asked} == {str(PATIENT)}
