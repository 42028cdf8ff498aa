"""Self-tests of the NIST replay harness: testplan reading, ebRS 2.1 conversion, substitutions, contents,
retrieve checks, NIST-log asserts and the homeCommunityId checks of XCA answers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from lxml import etree
from starlette.testclient import TestClient

from tests.conformance import community, contents, ebrs21, retrieval
from tests.conformance import substitute as sub
from tests.conformance.corpus import nist_tests_dir
from tests.conformance.engine import Engine
from tests.conformance.retrieval import Document, Retrieval
from tests.conformance.rows import ROWS
from tests.conformance.rows_gateway import ROWS as GATEWAY_ROWS
from tests.conformance.rows_repository import ROWS as REPOSITORY_ROWS
from tests.conformance.testplan import load_section, sections
from tests.conformance.verdict import Expectation, Result, problems
from tests.xsd import assert_valid
from xds import vocabulary as v
from xds.namespaces import QUERY, RIM, RS, XDSB
from xds.node import Node

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


@pytest.mark.parametrize("row", (*ROWS, *REPOSITORY_ROWS, *GATEWAY_ROWS), ids=lambda r: r.id)
def test_every_row_names_existing_sections_and_steps(row: object) -> None:
    tests = nist_tests_dir()
    for ref in (*row.chain, row.section, *row.then):  # type: ignore[attr-defined]
        test, _, section = ref.partition("@")[0].partition("/")
        assert section in sections(tests, test) or (tests / test / section / "testplan.xml").is_file(), ref
        for step in load_section(tests, test, section):
            for doc_id, name in step.documents:
                assert (step.directory / name).is_file(), (ref, doc_id, name)
    steps = [s.id for s in load_section(tests, *row.section.split("/"))]  # type: ignore[attr-defined]
    assert row.step in steps  # type: ignore[attr-defined]


def test_repository_testplan_reading() -> None:
    tests = nist_tests_dir()
    pnr = load_section(tests, "12021", "submit")[0]
    assert pnr.transaction == "ProvideAndRegisterTransaction"
    assert pnr.documents == (("Document01", "my_document.txt"), ("Document02", "my_document2.txt"))
    ret = load_section(tests, "12021", "retrieve")[0]
    assert ret.transaction == "RetrieveTransaction" and ret.reference_metadata == ("12021", "query", "by_uid")
    assert ret.references == (("$docuid1$", "submit/my_document.txt"), ("$docuid2$", "submit/my_document2.txt"))
    # testdir="submit" is no section below 12021/retrieve; it names the test's own submit section
    assert {(u.test, u.section, u.step) for u in ret.use_ids} == {("12021", "submit", "submit")}
    assert retrieval.reference_file(ret.directory, "submit/my_document.txt") == tests / "12021/submit/my_document.txt"
    assert load_section(tests, "12028", "retrieve")[0].expected_mime_type == "text/plain"
    uuids = load_section(tests, "11983", "submit_no_doc")[0]
    assert "AssignUuids" in uuids.flags and uuids.documents == () and uuids.error_messages == ("XDSMissingDocument",)


def _retrieval(*returned: Document) -> Retrieval:
    return Retrieval(
        requested=[("1.2", "d1"), ("1.2", "d2")],
        returned=list(returned),
        submitted={"d1": ("text/plain", b"one"), "d2": ("text/xml", b"<two/>")},
        values={"$uid$": "d1"},
    )


def test_retrieve_checks() -> None:
    here = nist_tests_dir() / "12021" / "retrieve"
    one, two = Document("1.2", "d1", "text/plain", b"one"), Document("1.2", "d2", "text/xml", b"<two/>")
    assert retrieval.check(_retrieval(one, two), "Success", references=(), mime_type="", directory=here) == []
    assert retrieval.check(_retrieval(one), "PartialSuccess", references=(), mime_type="", directory=here) == []
    assert retrieval.check(_retrieval(), "Failure", references=(), mime_type="", directory=here) == []
    for status, docs in (("Success", (one,)), ("Failure", (one,)), ("PartialSuccess", (one, two))):
        assert retrieval.check(_retrieval(*docs), status, references=(), mime_type="", directory=here), status
    wrong = Document("1.2", "d1", "text/xml", b"uno")
    assert len(retrieval.check(_retrieval(wrong, two), "Success", references=(), mime_type="", directory=here)) == 2
    elsewhere = Document("9.9", "d2", "text/xml", b"<two/>")
    assert retrieval.check(_retrieval(one, elsewhere), "PartialSuccess", references=(), mime_type="", directory=here)
    assert retrieval.check(_retrieval(one, one), "PartialSuccess", references=(), mime_type="", directory=here)
    assert retrieval.check(_retrieval(one, two), "Success", references=(), mime_type="text/plain", directory=here)
    refs = (("$uid$", "submit/my_document.txt"),)  # not b"one"
    assert retrieval.check(_retrieval(one, two), "Success", references=refs, mime_type="", directory=here)
    missing = (("$uid$", "submit/no_such_file.txt"),)
    assert retrieval.check(_retrieval(one, two), "Success", references=missing, mime_type="", directory=here)


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


def test_retrieve_checks_against_the_reference_metadata() -> None:
    here = nist_tests_dir() / "12021" / "retrieve"

    def answer(size: str, sha1: str) -> etree._Element:
        return etree.fromstring(
            f'<r xmlns:rim="{RIM}"><rim:RegistryObjectList><rim:ExtrinsicObject id="x" mimeType="text/plain">'
            f'<rim:Slot name="size"><rim:ValueList><rim:Value>{size}</rim:Value></rim:ValueList></rim:Slot>'
            f'<rim:Slot name="hash"><rim:ValueList><rim:Value>{sha1}</rim:Value></rim:ValueList></rim:Slot>'
            f'<rim:ExternalIdentifier id="e" registryObject="x" identificationScheme="{v.DE_UNIQUE_ID}" value="d1"/>'
            "</rim:ExtrinsicObject></rim:RegistryObjectList></r>"
        )

    r = Retrieval(requested=[("1.2", "d1")], returned=[Document("1.2", "d1", "text/plain", b"one")])
    r.reference_metadata = answer("3", hashlib.sha1(b"one").hexdigest().upper())
    assert retrieval.check(r, "Success", references=(), mime_type="", directory=here) == []
    r.reference_metadata = answer("4", hashlib.sha1(b"two").hexdigest())
    assert len(retrieval.check(r, "Success", references=(), mime_type="", directory=here)) == 2


def test_gateway_testplan_reading() -> None:
    tests = nist_tests_dir()
    xcq = load_section(tests, "12311", "getdocs")[0]
    assert xcq.transaction == "XCQTransaction" and len(xcq.assertions) == 1
    assert {(u.test, u.section, u.object_id, u.symbol) for u in xcq.use_ids} == {
        ("12318", "init", "Document01", "$doc_uuid_1$"),
        ("12318", "init", "Document02", "$doc_uuid_2$"),
    }
    assert [(r.test, r.report, r.symbol) for r in xcq.use_reports] == [("12318", "$testdata_home$", "$home$")]
    xcr = load_section(tests, "12312", "correct")[0]
    assert xcr.transaction == "XCRTransaction" and xcr.expected_mime_type == "text/plain"
    assert xcr.references == (("$docuid$", "../../12318/init/my_document.txt"),)
    found = retrieval.reference_file(xcr.directory, xcr.references[0][1])
    assert found is not None and found.resolve() == (tests / "12318/init/my_document.txt").resolve()
    missing = load_section(tests, "12312", "missing_home")[0]
    assert missing.error_codes == ("XDSMissingHomeCommunityId",) and missing.expected_status == "Failure"


_HOME = "urn:oid:1.2.3"


def _query_answer(*homes: str | None, kind: str = "ObjectRef") -> etree._Element:
    objects = "".join(
        f'<rim:{kind} id="urn:uuid:0000000{n}-0000-4000-8000-000000000000"{f" home={h!r}" if h else ""}/>'
        for n, h in enumerate(homes)
    )
    return etree.fromstring(
        f'<query:AdhocQueryResponse xmlns:query="{QUERY}" xmlns:rim="{RIM}" status="{v.RESPONSE_SUCCESS}">'
        f"<rim:RegistryObjectList>{objects}</rim:RegistryObjectList></query:AdhocQueryResponse>"
    )


def _retrieve_answer(*homes: str | None) -> etree._Element:
    docs = "".join(
        f"<xdsb:DocumentResponse>{f'<xdsb:HomeCommunityId>{h}</xdsb:HomeCommunityId>' if h else ''}"
        f"<xdsb:RepositoryUniqueId>1.2</xdsb:RepositoryUniqueId><xdsb:DocumentUniqueId>d{n}</xdsb:DocumentUniqueId>"
        "<xdsb:mimeType>text/plain</xdsb:mimeType><xdsb:Document>b25l</xdsb:Document></xdsb:DocumentResponse>"
        for n, h in enumerate(homes)
    )
    return etree.fromstring(
        f'<xdsb:RetrieveDocumentSetResponse xmlns:xdsb="{XDSB}" xmlns:rs="{RS}">'
        f'<rs:RegistryResponse status="{v.RESPONSE_SUCCESS}"/>{docs}</xdsb:RetrieveDocumentSetResponse>'
    )


def test_community_checks() -> None:
    assert community.check(_query_answer(_HOME, _HOME), _HOME) == []
    assert community.check(_query_answer(_HOME, _HOME, kind="ExtrinsicObject"), _HOME) == []
    assert len(community.check(_query_answer(_HOME, None, "urn:oid:9"), _HOME)) == 2
    assert len(community.check(_query_answer(None, kind="Association"), _HOME)) == 1
    assert len(community.check(_query_answer(None, kind="RegistryPackage"), _HOME)) == 1
    assert community.check(_query_answer(None, kind="Classification"), _HOME) == []  # not a homed object
    assert community.check(_retrieve_answer(_HOME, _HOME), _HOME) == []
    assert len(community.check(_retrieve_answer(_HOME, None, "urn:oid:9"), _HOME)) == 2
    assert community.check(etree.fromstring(f'<rs:RegistryResponse xmlns:rs="{RS}" status="x"/>'), _HOME) == []
    step = load_section(nist_tests_dir(), "12310", "finddocs")[0]
    body = _query_answer(None, kind="ExtrinsicObject")
    assert problems(Expectation("Success"), Result(step, "Success", body=body, home=_HOME)) == [
        community.check(body, _HOME)[0]
    ]
    assert problems(Expectation("Success"), Result(step, "Success", body=body)) == []  # not an XCA answer


def test_xca_asserts_read_the_answer_as_the_nist_log_holds_it(client: TestClient, node: Node) -> None:
    """12309's asserts name ``//XCQTransaction[@step="finddocs"]/Result/...`` and ``@home = '$home$'``; 12312's
    ``//Result[1]/...`` and ``= '$repositoryuid$'``: they hold of a right answer and fail on a wrong one."""
    engine = Engine(client, node, nist_tests_dir())
    home = node.home_community_id
    step = load_section(nist_tests_dir(), "12309", "finddocs")[0]
    engine.pids[("12318", "init", "init")] = engine.patients["main"]

    def failed(body: etree._Element) -> list[str]:
        result = Result(step, "Success", body=body)
        engine._assertions(step, result)
        return [f.split(" ")[1] for f in result.failed_assertions]

    assert failed(_query_answer(home, home)) == []
    assert failed(_query_answer(home, "urn:oid:9")) == ["Object2HomeCommunityId"]
    assert failed(_query_answer(home, home, home)) == ["ObjectRefCount"]
    step = load_section(nist_tests_dir(), "12312", "correct")[0]
    engine.uids[("12318", "init", "init")] = {"Document01": "d0"}
    engine.reports[("12318", "init", "init")] = {"Document01_uid": "d0"}
    engine.reports[("12318", "query", "query")] = {"repuid": "1.2"}
    assert failed(_retrieve_answer(home)) == []
    assert failed(_retrieve_answer("urn:oid:9")) == ["HomeCommunityId"]
    assert failed(_retrieve_answer(home, home)) == ["OneDocument"]
