"""NIST XDS Toolkit registry cases (conformance README Table A, N16 to N77), replayed against this registry.

How a row runs and is judged: :mod:`tests.conformance.replay`; the rows, their chains and documented
overrides: :mod:`tests.conformance.rows`.
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.conformance.replay import replay
from tests.conformance.rows import ROWS, Row
from xds.node import Node

pytestmark = pytest.mark.conformance


def _param(row: Row) -> object:
    marks = [pytest.mark.xfail(reason=row.xfail, run=False, strict=True)] if row.xfail else []
    return pytest.param(row, id=row.id, marks=marks)


@pytest.mark.parametrize("row", [_param(r) for r in ROWS])
def test_row(row: Row, client: TestClient, node: Node) -> None:
    replay(row, client, node)
