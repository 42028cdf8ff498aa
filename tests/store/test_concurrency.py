"""Two concurrent submissions with the same uniqueId: exactly one succeeds, on every backend."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from xds import samples
from xds.errors import ErrorCode, XDSError
from xds.model.metadata import Submission
from xds.node import Node
from xds.registry.iti42 import register

PID = samples.patient("race-1")


@pytest.mark.parametrize("rounds", [8])
def test_same_unique_id_registered_concurrently_once(node: Node, rounds: int) -> None:
    node.store.add_patient(str(PID))
    ctx = node.registry_context()
    for n in range(rounds):
        uid = f"1.2.3.4.{n}"
        subs = [
            samples.submission(PID, [samples.document_entry(PID, unique_id=uid, content=bytes([i]))]) for i in range(2)
        ]
        barrier = threading.Barrier(2)

        def attempt(i: int, subs: list[Submission] = subs, barrier: threading.Barrier = barrier) -> str:
            barrier.wait()
            try:
                register(subs[i], ctx)
            except XDSError as exc:
                return str(exc.error_code)
            return "ok"

        with ThreadPoolExecutor(2) as pool:
            outcomes = sorted(pool.map(attempt, range(2)))
        assert outcomes[1] == "ok", outcomes
        assert outcomes[0] in (ErrorCode.NON_IDENTICAL_HASH, ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY), outcomes


def test_failure_after_insert_rolls_back_everything(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """All or nothing: when the last step of a submission fails, the objects already inserted are gone too."""
    from xds import vocabulary as v
    from xds.store.sql import SqlTx

    node.store.add_patient(str(PID))
    ctx = node.registry_context()
    original = samples.document_entry(PID)
    register(samples.submission(PID, [original]), ctx)
    new = samples.document_entry(PID)
    rplc = samples.submission(PID, [new], extra=[samples.relation(v.RPLC, new.id, original.id)])

    def explode(self: SqlTx, obj: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(SqlTx, "replace", explode)
    with pytest.raises(RuntimeError):
        register(rplc, ctx)
    monkeypatch.undo()
    with node.store.transaction() as tx:
        assert tx.objects_by_id([new.id, rplc.submission_sets[0].id]) == {}
        assert tx.objects_by_id([original.id])[original.id].status == v.APPROVED
