"""Self-tests of the NIST replay harness: testplan reading, ebRS 2.1 conversion, substitutions, contents."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from tests.conformance import contents, ebrs21
from tests.conformance import substitute as sub
from tests.conformance.corpus import nist_tests_dir
from tests.conformance.rows import ROWS
from tests.conformance.testplan import load_section, sections
from tests.xsd import assert_valid
from xds import vocabulary as v
from xds.namespaces import RIM

pytestmark = pytest.mark.conformance

_ORDER = ("Slot", "Name", "Description", "VersionInfo", "Classification", "ExternalIdentifier")


def _parse(path: Path) -> etree._Element | None:
    try:
        return etree.parse(str(path), etree.XMLParser(no_network=True, resolve_entities=False)).getroot()
    except etree.XMLSyntaxError:
        return None  # a few corpus files are empty or broken (README "Known defects")


def _submissions() -> list[tuple[Path, etree._Element]]:
    found = [(p, _parse(p)) for p in sorted(nist_tests_dir().rglob("*.xml")) if p.name != "testplan.xml"]
    return [(p, r) for p, r in found if r is not None and ebrs21.is_ebrs21(r)]


def _local(e: etree._Element) -> str:
    return etree.QName(e).localname


def test_every_ebrs21_submission_converts_to_valid_ebrs30() -> None:
    converted = 0
    for path, root in _submissions():
        out = ebrs21.to_ebrs30(root)
        assert_valid(out, what=str(path))
        before = [_local(e) for e in root.iter() if isinstance(e.tag, str)]
        after = [_local(e) for e in out.iter() if isinstance(e.tag, str)]
        assert sorted(before[2:]) == sorted(after[2:]), path  # same objects, only the two wrappers renamed
        for e in out.iter(f"{{{RIM}}}Association"):
            assert e.get("associationType", "").startswith("urn:"), path  # 2.1 short names expanded
        for e in out.iter():
            kids = [_local(c) for c in e if isinstance(c.tag, str) and _local(c) in _ORDER]
            assert kids == sorted(kids, key=_ORDER.index), (path, e.get("id"))
        converted += 1
    assert converted >= 300  # README: 375 NIST submissions are ebRS 2.1


def test_conversion_fills_what_ebrim30_requires() -> None:
    root = _parse(nist_tests_dir() / "11992" / "rplc" / "metadata.xml")
    assert root is not None
    out = ebrs21.to_ebrs30(root)
    de = out.find(f".//{{{RIM}}}ExtrinsicObject")
    assert de is not None
    assert all(
        c.get("classifiedObject") == "Document01" and c.get("id", "").startswith("urn:uuid:")
        for c in de.iterchildren(f"{{{RIM}}}Classification")
    )
    identifiers = de.iterchildren(f"{{{RIM}}}ExternalIdentifier")
    assert all(e.get("registryObject") == "Document01" for e in identifiers)
    kinds = {a.get("associationType"): a.get("id") for a in out.iter(f"{{{RIM}}}Association")}
    assert kinds == {v.HAS_MEMBER: "Association01", v.RPLC: "Association02"}


def test_substitutions_rewrite_references_and_escape_values() -> None:
    source = _parse(nist_tests_dir() / "11992" / "rplc" / "metadata.xml")
    assert source is not None
    root = ebrs21.to_ebrs30(source)
    pid = "abc^^^&1.2.3&ISO"
    sub.fill(root, {"$rplc_doc_uuid$": "urn:uuid:00000000-0000-4000-8000-000000000001", "$patientid$": pid})
    assert not sub.leftovers(root)
    uids = sub.assign_uids(root, enabled=True, keep=["SubmissionSet01"])
    assert uids["SubmissionSet01"] == "SubmissionSet01" and uids["Document01"].startswith("2.25.")
    ids = sub.assign_uuids(root, enabled=True)
    assert set(ids) == {"Document01", "SubmissionSet01", "Association01", "Association02"}
    refs = {a.get(n, "") for a in root.iter() for n in ("sourceObject", "targetObject", "classifiedObject")}
    assert not refs & set(ids) - {""}
    assert sub.submission_patient(root) == pid
    assert b"abc^^^&amp;1.2.3&amp;ISO" in etree.tostring(root)


def test_testplan_reading() -> None:
    tests = nist_tests_dir()
    assert sections(tests, "12346") == ["single_doc", "doc_w_fol", "two_doc_w_fol", "doc_for_rplc", "rplc"]
    resubmit = load_section(tests, "12004", "submit")[1]
    assert resubmit.keep_uids == ("Document01",) and "NoPatientId" in resubmit.flags
    assert [(u.test, u.section, u.step, u.kind) for u in resubmit.use_ids] == [
        ("12004", "submit", "submit", "AssignedUids")
    ]
    query = load_section(tests, "12368", "doc_leafclass")[0]
    assert [(u.test, u.section) for u in query.use_ids] == [("12346", "single_doc"), ("12374", "submit_doc")]
    assert query.error_codes == ("XDSResultNotSinglePatient",) and query.contents == (("Documents", 0),)
    alt = load_section(tests, "11996", "submit")[0]
    assert "AltPatientId" in alt.flags and alt.error_messages == ("XDSUnknownPatientId",)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_every_row_names_existing_sections_and_steps(row: object) -> None:
    tests = nist_tests_dir()
    for ref in (*row.chain, row.section, *row.then):  # type: ignore[attr-defined]
        test, _, section = ref.partition("@")[0].partition("/")
        assert section in sections(tests, test) or (tests / test / section / "testplan.xml").is_file(), ref
    steps = [s.id for s in load_section(tests, *row.section.split("/"))]  # type: ignore[attr-defined]
    assert row.step in steps  # type: ignore[attr-defined]


def test_contents_counts_packages_by_classification_node() -> None:
    body = etree.fromstring(
        f'<r xmlns:rim="{RIM}"><rim:RegistryObjectList>'
        f'<rim:RegistryPackage id="s"/><rim:RegistryPackage id="f"/><rim:ExtrinsicObject id="d"/>'
        f'<rim:Classification id="c1" classifiedObject="s" classificationNode="{v.SS_NODE}"/>'
        f'<rim:Classification id="c2" classifiedObject="f" classificationNode="{v.FOLDER_NODE}"/>'
        f"</rim:RegistryObjectList></r>"
    )
    assert contents.tally(body) == {"SubmissionSets": 1, "Folders": 1, "Documents": 1}
    assert contents.check(body, (("SSwithOneDocOneFol", None),)) == []
    assert contents.check(body, (("None", None),)) != []
    with pytest.raises(contents.UnsupportedExpectation):
        contents.check(body, (("Mystery", None),))
