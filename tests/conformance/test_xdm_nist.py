"""NIST Direct/XDM samples (conformance README Table D, rows D9 to D14): the six
``$T/../direct-messages/*_in_XDM.zip`` packages imported through :func:`xds.exchange.import_xdm` (ITI-32
Distribute Document Set on Media, Portable Media Importer) into a fresh node each (all six carry the same
SubmissionSet uniqueId, so they cannot share one node's inbox).

Result, on SQLite and PostgreSQL alike: Table D: 6/6. Each package becomes exactly one delivery in the
``unknown-patient`` status (the samples' patients are not fed here); each document's stored bytes are the bytes
of the ZIP entry its METADATA.XML ``URI`` slot names (looked up without regard to case: the ``CCDA_*`` URIs are
upper-case, their files mixed-case), with the ``hash`` and ``size`` slots as sha1 and size; the delivery's
history notes what the metadata lacks before it could be imported (e.g. the SubmissionSet's contentTypeCode).

Reconciling the delivery to a local patient is then refused, and that is the honest outcome, not a gap in the
test: every sample's DocumentEntry uniqueId (``...688879.02004...``) has an OID arc with a leading zero, which
the OID rules forbid (ITI TF-2 Appendix B), so the registry answers XDSRegistryMetadataError (alongside the NIST
affinity domain's code-list findings) and the delivery stays open with an ``import-failed`` event.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Final

import pytest
from lxml import etree

from tests.conformance.corpus import nist_tests_dir
from xds import samples
from xds.errors import ErrorCode, XDSError
from xds.exchange import import_xdm
from xds.namespaces import RIM
from xds.node import Node
from xds.recipient.model import TRANSPORT_XDM, UNKNOWN_PATIENT
from xds.vocabulary import DE_UNIQUE_ID

pytestmark = pytest.mark.conformance

SAMPLES: Final = (
    ("D9", "C32_Sample1"),
    ("D10", "C32_Sample2"),
    ("D11", "CCDA_Ambulatory"),
    ("D12", "CCDA_Inpatient"),
    ("D13", "CCR_Sample1"),
    ("D14", "CCR_Sample2"),
)
"""README Table D, in its order."""

LOCAL_PATIENT: Final = str(samples.patient("xdm-nist"))


@pytest.fixture(autouse=True)
def _table_d(request: pytest.FixtureRequest) -> None:
    """Count this module's rows in the conformance summary (tests/conformance/conftest.py), skips included."""
    callspec = getattr(request.node, "callspec", None)
    backend = callspec.params.get("database_url", "") if callspec else ""
    request.node.user_properties.append(("nist_tx", f"ITI-32 XDM import, Table D [{backend}]"))


def sample_zip(name: str) -> Path:
    """``$T/../direct-messages/<name>_in_XDM.zip`` (skips when the corpus is absent)."""
    path = nist_tests_dir().parent / "direct-messages" / f"{name}_in_XDM.zip"
    if not path.is_file():
        pytest.skip(f"{path} not in the NIST corpus")
    return path


def _slot(element: etree._Element, name: str) -> str:
    for slot in element.iter(f"{{{RIM}}}Slot"):
        if slot.get("name") == name:
            return "".join(v.text or "" for v in slot.iter(f"{{{RIM}}}Value"))
    return ""


def expected_documents(path: Path) -> dict[str, tuple[bytes, str, int]]:
    """What the package says, read independently of the node: uniqueId -> (bytes of the file its URI names,
    its hash slot, its size slot)."""
    out: dict[str, tuple[bytes, str, int]] = {}
    with zipfile.ZipFile(path) as zf:
        names = {n.replace("\\", "/").lower(): n for n in zf.namelist()}
        (meta,) = [
            n
            for low, n in names.items()
            if low.endswith("/metadata.xml") and "ihe_xdm/" in low and "__macosx" not in low
        ]
        directory = meta.replace("\\", "/").rsplit("/", 1)[0]
        root = etree.fromstring(zf.read(meta))
        for eo in root.iter(f"{{{RIM}}}ExtrinsicObject"):
            (unique_id,) = [
                x.get("value", "")
                for x in eo.iter(f"{{{RIM}}}ExternalIdentifier")
                if x.get("identificationScheme") == DE_UNIQUE_ID
            ]
            content = zf.read(names[f"{directory}/{_slot(eo, 'URI')}".lower()])
            out[unique_id] = (content, _slot(eo, "hash").lower(), int(_slot(eo, "size")))
    return out


@pytest.mark.parametrize("name", [pytest.param(n, id=i) for i, n in SAMPLES])
def test_nist_xdm_sample(name: str, node: Node) -> None:
    path = sample_zip(name)
    expected = expected_documents(path)
    assert expected, f"{path.name}: METADATA.XML names no document"

    stored = import_xdm(node, path, transport=TRANSPORT_XDM, sender="nist-sample")
    listing = node.inbox.listing()
    assert [d.reference for d in stored] == [d.reference for d in listing]
    (delivery,) = listing
    assert delivery.status == UNKNOWN_PATIENT
    assert delivery.transport == TRANSPORT_XDM
    assert sorted(d.unique_id for d in delivery.documents) == sorted(expected)
    for doc in delivery.documents:
        content, sha1, size = expected[doc.unique_id]
        assert node.documents.path(doc.sha256).read_bytes() == content
        assert (doc.sha1, doc.size) == (sha1, size)
        assert (doc.sha1, doc.size, doc.sha256) == (
            hashlib.sha1(content).hexdigest(),
            len(content),
            hashlib.sha256(content).hexdigest(),
        )

    full = node.inbox.get(delivery.reference)
    assert full is not None
    received = full.history[0]
    assert received.status == UNKNOWN_PATIENT
    assert path.name in received.detail
    assert "metadata to complete before import" in received.detail
    assert "required attribute contentTypeCode is missing" in received.detail
    assert [(r.event, r.outcome) for r in node.audit.listing()] == [("ITI-32", 0)]

    # Reconcile: refused, because the samples' DocumentEntry uniqueIds are not valid OIDs (leading zeros).
    node.store.add_patient(LOCAL_PATIENT)
    with pytest.raises(XDSError) as refused:
        node.accept_delivery(delivery.reference, LOCAL_PATIENT)
    items = refused.value.items()
    assert {i.error_code for i in items} == {ErrorCode.REGISTRY_METADATA_ERROR}
    bad_oid = [i.code_context for i in items if "is not a valid OID" in i.code_context]
    assert bad_oid, [i.code_context for i in items]
    assert all(".02004." in c for c in bad_oid)
    after = node.inbox.get(delivery.reference)
    assert after is not None and after.is_open and after.status == UNKNOWN_PATIENT
    assert after.history[-1].status == "import-failed"
    assert "XDSRegistryMetadataError" in after.history[-1].detail
    assert "is not a valid OID" in after.history[-1].detail
    staged = [p.name for p in node.documents.staging_root.rglob("*") if p.is_file()]
    assert set(staged) <= {"lock"}, staged
