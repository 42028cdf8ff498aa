"""Run one Table A row on a fresh node: its chain, its target step, the comparison, its follow-ups.

Each row runs its prerequisite sections (their steps must meet their own expectations), then the target
step, and compares the answer with the testplan: status, ``ExpectedErrorCode`` (exact match),
``ExpectedErrorMessage`` (substring of an Error's code or context), ``ExpectedContents`` and, for a
retrieve, the documents (:mod:`tests.conformance.retrieval`). Rows may override the testplan for a
documented reason and add TF-implied error codes (:mod:`tests.conformance.rows`); ``then`` sections run last.
"""

from __future__ import annotations

import dataclasses

from starlette.testclient import TestClient

from tests.conformance.corpus import nist_tests_dir
from tests.conformance.engine import Engine
from tests.conformance.rows import Row
from tests.conformance.verdict import Expectation, problems
from xds.node import Node


def expectation(row: Row, base: Expectation) -> Expectation:
    """The testplan's expectation with the row's documented overrides and TF-implied codes."""
    codes = base.codes if row.codes is None else row.codes
    return dataclasses.replace(
        base,
        status=row.status or base.status,
        codes=tuple(dict.fromkeys((*codes, *row.tf_codes))),
        messages=base.messages if row.codes is None else (),
        references=base.references if row.references is None else row.references,
        mime_type=base.mime_type if row.mime_type is None else row.mime_type,
    )


def replay(row: Row, client: TestClient, node: Node) -> None:
    """Run ``row``; an AssertionError says how the node's answer misses the expectation."""
    run_row(row, Engine(client, node, nist_tests_dir()))


def run_row(row: Row, engine: Engine) -> None:
    """Run ``row`` on ``engine`` (which may already hold another community's test data, see
    :meth:`Engine.adopt`)."""
    for ref in row.chain:
        engine.prepare(ref)
    result = engine.target(row.section, row.step)
    expected = expectation(row, Expectation.of(result.step))
    found = problems(expected, result)
    assert not found, (
        f"{row.id} {row.target}: "
        + "; ".join(found)
        + f"\n  expected: {expected}\n  answer:   {result.describe()}"
        + (f"\n  note: {row.note}" if row.note else "")
    )
    for ref in row.then:
        engine.prepare(ref, role="follow-up")


__all__ = ["expectation", "replay", "run_row"]
