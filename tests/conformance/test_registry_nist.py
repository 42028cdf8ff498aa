"""NIST XDS Toolkit registry cases (conformance README Table A, N16 to N77), replayed against this registry.

Each row runs its prerequisite sections on a fresh node (their steps must meet their own expectations),
then the target step, and compares the answer with the testplan: status, ``ExpectedErrorCode`` (exact
match), ``ExpectedErrorMessage`` (substring of an Error's code or context) and ``ExpectedContents``. Rows
may override the testplan for a documented reason, and add TF-implied error codes; a few rows then run the
NIST evaluation sections their Table A note refers to (see :mod:`tests.conformance.rows`).
"""

from __future__ import annotations

import dataclasses

import pytest
from starlette.testclient import TestClient

from tests.conformance.corpus import nist_tests_dir
from tests.conformance.engine import Engine
from tests.conformance.rows import ROWS, Row
from tests.conformance.verdict import Expectation, problems
from xds.node import Node

pytestmark = pytest.mark.conformance


def _param(row: Row) -> object:
    marks = [pytest.mark.xfail(reason=row.xfail, run=False, strict=True)] if row.xfail else []
    return pytest.param(row, id=row.id, marks=marks)


def expectation(row: Row, base: Expectation) -> Expectation:
    """The testplan's expectation with the row's documented overrides and TF-implied codes."""
    codes = base.codes if row.codes is None else row.codes
    return dataclasses.replace(
        base,
        status=row.status or base.status,
        codes=tuple(dict.fromkeys((*codes, *row.tf_codes))),
        messages=base.messages if row.codes is None else (),
    )


@pytest.mark.parametrize("row", [_param(r) for r in ROWS])
def test_row(row: Row, client: TestClient, node: Node) -> None:
    engine = Engine(client, node, nist_tests_dir())
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
