"""NIST XDS Toolkit repository cases (conformance README Table A, N1 to N15 and N78 to N83), replayed
against this node's repository endpoint ``/xds/repository`` (ITI-41 Provide and Register over MTOM/XOP,
ITI-43 Retrieve).

How a row runs and is judged: :mod:`tests.conformance.replay` and, for the documents a retrieve returns,
:mod:`tests.conformance.retrieval`; the rows, their chains and documented overrides:
:mod:`tests.conformance.rows_repository`.
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.conformance.replay import replay
from tests.conformance.rows import Row
from tests.conformance.rows_repository import ROWS
from xds.node import Node

pytestmark = pytest.mark.conformance


def _param(row: Row) -> object:
    marks = [pytest.mark.xfail(reason=row.xfail, strict=True)] if row.xfail else []
    return pytest.param(row, id=row.id, marks=marks)


@pytest.mark.parametrize("row", [_param(r) for r in ROWS])
def test_row(row: Row, client: TestClient, node: Node) -> None:
    replay(row, client, node)
