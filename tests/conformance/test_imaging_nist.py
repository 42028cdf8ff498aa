"""NIST Imaging Document Source cases of RAD-69 Retrieve Imaging Document Set (``$T/ids_4812/case-0..9``,
``$T/ids_2018-4811/case-00..09``) replayed against the node's Imaging Document Source at ``/xds/imaging``.

Each case runs on a fresh node whose imaging source id is the RepositoryUniqueId of the legal requests
(``1.3.6.1.4.1.21367.13.80.110``, read from case 0 / 00) and which holds the synthesized instances of
:data:`tests.conformance.rows_imaging.INSTANCES` (ingested with :func:`xds.imaging.ingest` for one fed patient
per NIST test; without the NIST code lists, see :func:`settings`). The request file is sent unchanged as the
SOAP 1.2 Body (``wsa:Action`` ``urn:ihe:rad:2009:RetrieveImagingDocumentSet``); the answer is XSD-validated
(XOP-decoded) and judged by :func:`tests.conformance.rows_imaging.expected`: status, ``ExpectedErrorMessage``, a
non-empty RegistryErrorList where the testplan asserts one, and the gold-standard errorCode with its severity. A
Failure answer must carry no document. For Success every requested instance comes back as ``application/dicom``
under the requested RepositoryUniqueId and DocumentUniqueId, its bytes equal to the stored instance's, in a
transfer syntax the request accepts, with the requested Study/Series/SOP Instance UIDs and the synthesized pixel
data. Before sending, :func:`check_premise` checks that the data make each case test what its name says (e.g.
case 3's instance is held, in the requested study but another series).

Result, on SQLite and PostgreSQL alike: RAD-69: passed 20/20.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Final

import pydicom
import pytest
from lxml import etree
from pydicom.data import get_testdata_file
from pydicom.uid import UID
from starlette.testclient import TestClient

from tests.conformance.corpus import nist_tests_dir
from tests.conformance.rows_imaging import (
    CASES,
    EXPLICIT_LE,
    IMAGING,
    INSTANCES,
    LEGAL,
    TX,
    Case,
    Expected,
    Instance,
    expected,
)
from tests.support import Answer, post
from xds import samples
from xds import vocabulary as v
from xds.config import Settings
from xds.dicom.rad69 import DICOM_MIME
from xds.imaging import ingest
from xds.namespaces import RS, XDSB, XDSI, qn
from xds.node import Node
from xds.soap import mtom

pytestmark = pytest.mark.conformance

PATIENTS: Final = {d: str(samples.patient(f"nist-{d}")) for d in {i.dataset for i in INSTANCES}}
"""One fed patient per NIST test's data set."""
_STATUS: Final = {
    v.RESPONSE_SUCCESS: "Success",
    v.RESPONSE_FAILURE: "Failure",
    v.RESPONSE_PARTIAL_SUCCESS: "PartialSuccess",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Asked:
    """One DocumentRequest of a RAD-69 request file."""

    study: str
    series: str
    repository: str
    sop: str


def case_dir(case: Case) -> Path:
    """The case's folder in the testkit (skips when the corpus is absent)."""
    return nist_tests_dir() / case.test / case.section


def read_request(case: Case) -> tuple[bytes, list[Asked], list[str]]:
    """The request file's bytes, its DocumentRequests and its TransferSyntaxUIDs (as written)."""
    raw = (case_dir(case) / case.request).read_bytes()
    root = etree.fromstring(raw, etree.XMLParser(no_network=True))
    asked = [
        Asked(
            study.get("studyInstanceUID", ""),
            series.get("seriesInstanceUID", ""),
            (doc.findtext(qn(XDSB, "RepositoryUniqueId")) or "").strip(),
            (doc.findtext(qn(XDSB, "DocumentUniqueId")) or "").strip(),
        )
        for study in root.iterchildren(qn(XDSI, "StudyRequest"))
        for series in study.iterchildren(qn(XDSI, "SeriesRequest"))
        for doc in series.iterchildren(qn(XDSB, "DocumentRequest"))
    ]
    syntaxes = [(s.text or "").strip() for s in root.iter(qn(XDSI, "TransferSyntaxUID"))]
    return raw, asked, syntaxes


def source_id() -> str:
    """The RepositoryUniqueId both legal requests (case 0, case 00) name: the imaging source under test."""
    ids = {a.repository for c in CASES if c.id in LEGAL for a in read_request(c)[1]}
    assert len(ids) == 1, ids
    return ids.pop()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The imaging source id the NIST requests address, and no NIST code lists: the NIST imaging setup
    (ids_2018-4801b) submits the KOS to a NIST repository simulator, so the affinity domain plays no part in
    RAD-69, and the node's own imaging codes (``[imaging]`` defaults) are not in NIST's ``codes.xml``."""
    return dataclasses.replace(settings, imaging_source_id=source_id(), code_lists="")


@pytest.fixture(autouse=True)
def _rad69(request: pytest.FixtureRequest) -> None:
    """Count this module's cases in the conformance summary (tests/conformance/conftest.py), skips included."""
    callspec = getattr(request.node, "callspec", None)
    backend = callspec.params.get("database_url", "") if callspec else ""
    request.node.user_properties.append(("nist_tx", f"{TX} [{backend}]"))


def write_instance(directory: Path, instance: Instance, number: int) -> Path:
    """A CT instance from pydicom's CT_small.dcm (Explicit VR Little Endian) with ``instance``'s UIDs."""
    source = get_testdata_file("CT_small.dcm", download=False)
    assert source is not None
    ds = pydicom.dcmread(source)
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT_LE
    ds.StudyInstanceUID, ds.SeriesInstanceUID = instance.study, instance.series
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID(instance.sop)
    ds.InstanceNumber = number
    ds.AccessionNumber = f"NIST{number}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{number}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def synthesized(node: Node, tmp_path: Path) -> dict[str, Path]:
    """Every instance of INSTANCES ingested into ``node``: SOP Instance UID -> the file written."""
    files: dict[str, Path] = {}
    for dataset, patient in PATIENTS.items():
        node.store.add_patient(patient)
        directory = tmp_path / "dicom" / dataset
        for n, instance in enumerate(INSTANCES, start=1):
            if instance.dataset == dataset:
                files[instance.sop] = write_instance(directory, instance, n)
        done, skipped = ingest(node, [directory], patient=patient)
        assert skipped == [] and sum(d.added for d in done) == sum(i.dataset == dataset for i in INSTANCES)
    return files


def _param(case: Case) -> pytest.ParameterSet:
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


def _errors(answer: Answer) -> list[tuple[str, str, str]]:
    """(errorCode, severity, codeContext) of every returned RegistryError."""
    return [
        (e.get("errorCode", ""), e.get("severity", ""), e.get("codeContext", ""))
        for e in answer.body.iter(qn(RS, "RegistryError"))
    ]


def judge(want: Expected, answer: Answer) -> list[str]:
    """Every way ``answer`` misses what the testplan expects (README §2.7 and the case readmes)."""
    out: list[str] = []
    got = _STATUS.get(answer.status, answer.status)
    errors = _errors(answer)
    if got != want.status:
        out.append(f"status {got!r}, expected {want.status!r}")
    for msg in want.messages:
        if not any(msg in code or msg in context for code, sev, context in errors if sev != v.SEVERITY_WARNING):
            out.append(f"no Error-severity RegistryError mentions {msg!r} (ExpectedErrorMessage)")
    if want.error_list_not_empty and not errors:
        out.append("RegistryErrorList is empty (registryErrorListNotEmpty)")
    for g in want.gold:
        if not any(code == g.code and sev == g.severity for code, sev, _ in errors):
            where = "commented-out gold standard" if g.commented_out else "gold standard"
            out.append(f"no RegistryError {g.code} with severity {g.severity.rsplit(':', 1)[-1]} ({where})")
    if want.status == "Failure" and (answer.attachments or answer.body.find(qn(XDSB, "DocumentResponse")) is not None):
        out.append("a Failure answer carries documents")
    return out


def check_documents(
    answer: Answer, node: Node, asked: list[Asked], syntaxes: list[str], files: dict[str, Path]
) -> None:
    """Every requested instance came back: metadata, the stored bytes, the requested UIDs and pixel data."""
    responses = list(answer.body.iterchildren(qn(XDSB, "DocumentResponse")))
    assert len(responses) == len(asked) == len(answer.attachments)
    held = node.imaging.instances([a.sop for a in asked])
    for a, response in zip(asked, responses, strict=True):
        assert response.findtext(qn(XDSB, "RepositoryUniqueId")) == a.repository
        assert response.findtext(qn(XDSB, "DocumentUniqueId")) == a.sop
        assert response.findtext(qn(XDSB, "mimeType")) == DICOM_MIME
        (include,) = mtom.xop_includes(response)
        content = answer.attachments[mtom.resolve_include(include)]
        instance = held[a.sop]
        assert content == node.documents.path(instance.sha256).read_bytes()
        assert instance.transfer_syntax in syntaxes
        ds = pydicom.dcmread(io.BytesIO(content))
        assert (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID) == (a.study, a.series, a.sop)
        assert ds.file_meta.TransferSyntaxUID in syntaxes
        assert ds.PixelData == pydicom.dcmread(files[a.sop]).PixelData


def check_premise(case: Case, node: Node, asked: list[Asked]) -> None:
    """The synthesized data make the case test what its name says, not a plain unknown instance."""
    held = node.imaging.instances([a.sop for a in asked])
    for a in asked:
        instance = held.get(a.sop)
        if "Unknown_SOP_Instance_UID" in case.section:
            assert instance is None
            assert any(i.series_uid == a.series for i in node.imaging.study_instances(a.study))
            continue
        assert instance is not None, f"{a.sop} is not held"
        if "not_in_requested_series" in case.section:
            assert instance.study_uid == a.study and instance.series_uid != a.series
        elif "not_in_requested_study" in case.section:
            assert instance.study_uid != a.study
        elif a.study and a.series:
            assert (instance.study_uid, instance.series_uid) == (a.study, a.series)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_rad69_case(case: Case, client: TestClient, node: Node, synthesized: dict[str, Path]) -> None:
    raw, asked, syntaxes = read_request(case)
    want = expected(case_dir(case))
    check_premise(case, node, asked)
    answer = post(client, v.ACTION_RETRIEVE_IMAGING, raw, IMAGING)
    assert answer.http_status == 200, answer.raw[:2000]
    found = judge(want, answer)
    assert not found, f"{case.id}: {found}; answer errors={_errors(answer)}"
    if want.status == "Success":
        check_documents(answer, node, asked, syntaxes, synthesized)
