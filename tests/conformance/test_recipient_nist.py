"""NIST XDS Toolkit Document Recipient cases (rows X1 to X13 of :mod:`tests.conformance.rows_recipient`),
replayed against this node's XDR endpoint ``/xdr/recipient`` (ITI-41 Provide and Register Document Set-b
pushed over MTOM/XOP).

Result, on SQLite and PostgreSQL alike: 5 / 5 replayable rows pass (X1 to X5); 8 of the 13 rows are skipped
(X6 to X13, the XUA SOAP Fault variants, whose SAML assertions the corpus does not hold).

How a row runs and is judged: :mod:`tests.conformance.replay` (status and error codes against the testplan;
every request and answer is validated against the XSDs by :mod:`tests.conformance.engine`), then what the
inbox holds (:data:`tests.conformance.rows_recipient.DELIVERED`): one delivery in the default mailbox with the
documents sent (sha1, size, bytes, uniqueIds) and the intendedRecipient values sent, or, for a refused push,
no delivery and no document file at all.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from lxml import etree
from starlette.testclient import TestClient

from tests.conformance.corpus import nist_tests_dir
from tests.conformance.engine import Engine
from tests.conformance.replay import run_row
from tests.conformance.rows import Row
from tests.conformance.rows_recipient import DEFAULT_MAILBOX, DELIVERED, ROWS, Delivered
from tests.conformance.verdict import Result
from xds.namespaces import RIM
from xds.node import Node

pytestmark = pytest.mark.conformance


def _param(row: Row) -> object:
    marks = [pytest.mark.xfail(reason=row.xfail, strict=True)] if row.xfail else []
    if row.skip:
        marks.append(pytest.mark.skip(reason=f"{row.id} {row.target}: {row.skip}"))
    return pytest.param(row, id=row.id, marks=marks)


@pytest.mark.parametrize("row", [_param(r) for r in ROWS])
def test_row(row: Row, client: TestClient, node: Node) -> None:
    engine = Engine(client, node, nist_tests_dir())
    run_row(row, engine)
    result = _target(engine, row)
    check_inbox(row, DELIVERED[row.id], engine, result, node)


def test_every_replayable_row_has_an_inbox_check() -> None:
    assert sorted(r.id for r in ROWS if not r.skip) == sorted(DELIVERED)


def _target(engine: Engine, row: Row) -> Result:
    test, _, section = row.section.partition("/")
    return next(r for r in engine.log if r.step.key == (test, section, row.step))


def _intended_recipients(request: etree._Element | None) -> tuple[str, ...]:
    assert request is not None
    return tuple(
        (value.text or "").strip()
        for slot in request.iter(f"{{{RIM}}}Slot")
        if slot.get("name") == "intendedRecipient"
        for value in slot.iter(f"{{{RIM}}}Value")
    )


def _files(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.rglob(pattern) if p.is_file()) if root.is_dir() else []


def check_inbox(row: Row, expected: Delivered, engine: Engine, result: Result, node: Node) -> None:
    """What the inbox and the document store hold after ``row`` (see :class:`Delivered`)."""
    where = f"{row.id} {row.target}"
    deliveries = node.inbox.listing()
    if not expected.status:
        assert deliveries == [], f"{where}: a refused push left deliveries {[d.reference for d in deliveries]}"
        published = _files(node.documents.objects, "*")
        staged = _files(node.documents.staging_root, "*.part")
        assert not published and not staged, f"{where}: a refused push left files {published + staged}"
        return
    assert len(deliveries) == 1, f"{where}: {len(deliveries)} deliveries, expected 1"
    delivery = node.inbox.get(deliveries[0].reference)
    assert delivery is not None
    assert delivery.mailbox == DEFAULT_MAILBOX, f"{where}: delivered to mailbox {delivery.mailbox!r}"
    assert delivery.status == expected.status, (
        f"{where}: delivery status {delivery.status!r}, expected {expected.status!r}"
    )
    step = result.step
    uids = engine.uids[step.key]
    assert delivery.submission_set_uid == uids["SubmissionSet01"], f"{where}: SubmissionSet uniqueId"
    by_uid = {d.unique_id: d for d in delivery.documents}
    assert len(delivery.documents) == len(step.documents), (
        f"{where}: {len(delivery.documents)} documents delivered, {len(step.documents)} sent"
    )
    for doc_id, name in step.documents:
        data = (step.directory / name).read_bytes()
        got = by_uid.get(uids[doc_id])
        assert got is not None, f"{where}: no delivered document has {doc_id}'s uniqueId {uids[doc_id]}"
        assert (got.sha1, got.size) == (hashlib.sha1(data).hexdigest(), len(data)), (
            f"{where}: {name} delivered as sha1={got.sha1} size={got.size}"
        )
        assert got.sha256 == hashlib.sha256(data).hexdigest(), f"{where}: {name} sha256"
        assert node.documents.path(got.sha256).read_bytes() == data, f"{where}: {name} is not stored as sent"
    assert not _files(node.documents.staging_root, "*.part"), f"{where}: staged files left behind"
    if expected.recipients:
        sent = _intended_recipients(result.request)
        assert sent, f"{where}: the request has no intendedRecipient"
        assert delivery.recipients == sent, f"{where}: delivery recipients {delivery.recipients}, sent {sent}"
