"""A submission and its audit record are stored together: the ITI-42/ITI-41 record is written inside the
registry transaction that stores the submission, so neither exists without the other."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from tests.support import REPOSITORY, post
from xds import samples
from xds import vocabulary as v
from xds.ebrim import messages, xdsb
from xds.node import Node

PATIENT = samples.patient("audit-tx")


@pytest.fixture
def fed(node: Node) -> Node:
    node.store.add_patient(str(PATIENT))
    return node


def register(client: TestClient) -> tuple[int, str, str]:
    de = samples.document_entry(PATIENT, content=b"x")
    sub = samples.submission(PATIENT, [de])
    answer = post(client, v.ACTION_REGISTER, messages.render_submit_objects_request(sub))
    return answer.http_status, answer.status, de.unique_id


def provide(client: TestClient) -> tuple[int, str, str]:
    de = samples.document_entry(PATIENT, content=b"doc")
    de = dataclasses.replace(de, hash="", size=None, repository_unique_id="")
    sub = samples.submission(PATIENT, [de])
    body = xdsb.render_provide_and_register_inline(messages.render_submit_objects_request(sub), [(de.id, b"doc")])
    answer = post(client, v.ACTION_PROVIDE_AND_REGISTER, body, REPOSITORY)
    return answer.http_status, answer.status, de.unique_id


@pytest.mark.parametrize(("send", "event"), [(register, "ITI-42"), (provide, "ITI-41")])
def test_one_record_per_submission_written_with_it(fed: Node, client: TestClient, send: Any, event: str) -> None:
    status_code, status, _ = send(client)
    assert (status_code, status) == (200, v.RESPONSE_SUCCESS)
    records = [r for r in fed.audit.listing() if r.event == event]
    assert len(records) == 1 and records[0].outcome == 0 and records[0].patient_id == str(PATIENT)


@pytest.mark.parametrize("send", [register, provide])
def test_a_submission_whose_audit_record_fails_is_not_stored(
    fed: Node, client: TestClient, send: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = fed.audit.append

    def fail_inside_the_transaction(records: Any, *, conn: Any = None) -> None:
        if conn is not None:
            raise OSError("audit table unwritable")
        real(records)

    monkeypatch.setattr(fed.audit, "append", fail_inside_the_transaction)
    status_code, status, unique_id = send(client)
    assert status_code != 200 or status != v.RESPONSE_SUCCESS  # not acknowledged
    monkeypatch.undo()
    with fed.engine.connect() as conn:
        stmt = text("SELECT count(*) FROM registry_object WHERE unique_id = :u")
        assert conn.execute(stmt, {"u": unique_id}).scalar_one() == 0  # rolled back with its audit record
    outcomes = [r.outcome for r in fed.audit.listing() if r.event in ("ITI-41", "ITI-42")]
    assert outcomes == [8]  # audited as a failure, after the rollback
