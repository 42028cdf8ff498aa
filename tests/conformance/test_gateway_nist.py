"""NIST XDS Toolkit Responding Gateway cases (conformance README Table A, N84 to N92), replayed against this
node's Responding Gateway endpoint ``/xca/responding`` (ITI-38 Cross Gateway Query, ITI-39 Cross Gateway
Retrieve over MTOM/XOP), with the test data put into the community through ``/xds/repository`` (ITI-41).

How a row runs and is judged: :mod:`tests.conformance.replay`, :mod:`tests.conformance.community` (the
homeCommunityId on every returned object) and :mod:`tests.conformance.retrieval` (the documents); the rows,
their chains and documented overrides: :mod:`tests.conformance.rows_gateway`.
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.conformance.replay import replay
from tests.conformance.rows import Row
from tests.conformance.rows_gateway import ROWS
from xds.node import Node

pytestmark = pytest.mark.conformance


def _param(row: Row) -> object:
    marks = [pytest.mark.xfail(reason=row.xfail, strict=True)] if row.xfail else []
    return pytest.param(row, id=row.id, marks=marks)


@pytest.mark.parametrize("row", [_param(r) for r in ROWS])
def test_row(row: Row, client: TestClient, node: Node) -> None:
    replay(row, client, node)
