"""NIST XDS Toolkit Document Recipient cases (rows X1 to X13 of :mod:`tests.conformance.rows_recipient`),
replayed against this node's XDR endpoint ``/xdr/recipient`` (ITI-41 Provide and Register Document Set-b
pushed over MTOM/XOP).

Result, on SQLite and PostgreSQL alike: 13 of the 13 rows pass (X1 to X4 on the stock node; X5, the valid
Authz-Consent assertion, succeeds on the XUA node, and the eight XUA variants X6 to X13 are refused there with
a SOAP Fault and nothing stored). None is skipped.

X1 to X4 run on the stock node (no XUA). X5 to X13 run on :func:`xua_node`: a signing certificate made at
test time is its XUA trust store, ``urn:xds-node:test`` its audience, and the Document Recipient requires an
assertion (``[xua] required = ["recipient"]``); each row sends the assertion of its STS profile
(:mod:`tests.conformance.xua_variants`) in the ``wsse:Security`` header of the ITI-41 push. A Fault row must
also carry the WS-Security subcode of its profile.

How a row runs and is judged: :mod:`tests.conformance.replay` (status and error codes against the testplan;
every request and answer is validated against the XSDs by :mod:`tests.conformance.engine`), then what the
inbox holds (:data:`tests.conformance.rows_recipient.DELIVERED`): one delivery in the default mailbox with the
documents sent (sha1, size, bytes, uniqueIds) and the intendedRecipient values sent, or, for a refused push,
no delivery and no document file at all.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree
from starlette.testclient import TestClient

from tests.conformance.corpus import nist_tests_dir
from tests.conformance.engine import Engine
from tests.conformance.replay import run_row
from tests.conformance.rows import Row
from tests.conformance.rows_recipient import DEFAULT_MAILBOX, DELIVERED, NOTHING, ROWS, XUA, Delivered
from tests.conformance.verdict import Result
from tests.conformance.xua_variants import (
    AUDIENCE,
    POLICY_ROLE,
    VARIANTS,
    Signer,
    XuaClient,
    assertion,
    new_signer,
)
from xds.app import create_app
from xds.config import Settings
from xds.namespaces import RIM, SOAP12
from xds.node import Node
from xds.security.xua import INVALID_SECURITY_TOKEN

pytestmark = pytest.mark.conformance


def _param(row: Row) -> object:
    marks = [pytest.mark.xfail(reason=row.xfail, strict=True)] if row.xfail else []
    if row.skip:
        marks.append(pytest.mark.skip(reason=f"{row.id} {row.target}: {row.skip}"))
    return pytest.param(row, id=row.id, marks=marks)


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    """The test X-Assertion Provider whose certificate the XUA node trusts."""
    return new_signer(tmp_path_factory.mktemp("xua"))


@pytest.fixture
def xua_node(settings: Settings, signer: Signer) -> Iterator[Node]:
    """The stock conformance node with XUA: ``signer`` trusted, our audience, an assertion required at the
    Document Recipient."""
    n = Node.open(
        dataclasses.replace(
            settings,
            xua_trusted_certs=(signer.trust_store,),
            xua_audiences=(AUDIENCE,),
            xua_required=("recipient",),
            xua_roles=tuple(r.partition("^^")[0] for r in POLICY_ROLE),
        )
    )
    yield n
    n.close()


@pytest.fixture
def xua_client(xua_node: Node) -> Iterator[XuaClient]:
    with XuaClient(create_app(xua_node)) as c:
        yield c


@pytest.mark.parametrize("row", [_param(r) for r in ROWS])
def test_row(row: Row, request: pytest.FixtureRequest, settings: Settings, signer: Signer) -> None:
    """``settings`` puts the backend (``database_url``) in the test's parameters; the node, stock or XUA, is
    then made for the row."""
    variant = VARIANTS[XUA[row.id]] if row.id in XUA else None
    node: Node = request.getfixturevalue("xua_node" if variant else "node")
    client: TestClient = request.getfixturevalue("xua_client" if variant else "client")
    engine = Engine(client, node, nist_tests_dir())
    if variant is not None:
        assert isinstance(client, XuaClient)
        now = datetime.now(UTC)
        client.assertion = assertion(variant, signer, now=now, patient=engine.patients["main"])
    run_row(row, engine)
    result = _target(engine, row)
    if variant is not None and variant.fault:
        assert fault_subcode(result) == variant.fault, f"{row.id}: fault subcode {fault_subcode(result)!r}"
    check_inbox(row, DELIVERED[row.id], engine, result, node)


def test_every_row_has_an_inbox_check() -> None:
    assert sorted(r.id for r in ROWS if not r.skip) == sorted(DELIVERED)
    assert all(variant in VARIANTS for variant in XUA.values())


def test_the_xua_node_refuses_a_push_without_an_assertion(xua_client: XuaClient, xua_node: Node) -> None:
    """X1's push without any assertion: the Document Recipient requires one, so a Fault and nothing stored
    (this is what makes X5 to X13 test the assertion, not the metadata)."""
    row = next(r for r in ROWS if r.id == "X1")
    engine = Engine(xua_client, xua_node, nist_tests_dir())
    result = engine.target(row.section, row.step)
    assert result.status == "Fault", result.describe()
    assert fault_subcode(result) == INVALID_SECURITY_TOKEN
    check_inbox(row, NOTHING, engine, result, xua_node)


def fault_subcode(result: Result) -> str:
    """The ``env:Subcode/env:Value`` of a SOAP 1.2 Fault answer, as a Clark name (``""`` for no Fault)."""
    if result.body is None or result.body.tag != f"{{{SOAP12}}}Fault":
        return ""
    value = result.body.find(f"{{{SOAP12}}}Code/{{{SOAP12}}}Subcode/{{{SOAP12}}}Value")
    if value is None or not value.text:
        return ""
    prefix, _, local = value.text.strip().partition(":")
    namespace = value.nsmap.get(prefix) if local else None
    return f"{{{namespace}}}{local}" if namespace else value.text.strip()


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
