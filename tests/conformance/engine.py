"""Replay NIST TestSteps against the registry, keeping what each step assigned for later steps.

Theory of operation: an :class:`Engine` owns one node's test client and the per-run memory the NIST engine
keeps in its log files: for every (test, section, step) the uniqueIds it assigned (AssignedUids), the
object ids it sent (AssignedUuids), the SubmissionSet patient id (AssignedPatientId) and its ``<Report>``
values. A register step is loaded, converted from ebRS 2.1 when needed, filled in (:mod:`substitute`),
validated against the XSDs and sent as ITI-42; a query step is filled in, validated and sent as ITI-18.
A Provide and Register step gets the register step's substitutions, its ``<Document>`` files become MTOM
parts (``xdsb:Document`` holds an ``xop:Include``; with ``AssignUuids`` its id is the DocumentEntry's new
UUID, as in NIST's ``ProvideAndRegisterTransaction``) and it goes as ITI-41 to the repository, validated
in XOP-decoded form. A Retrieve step is filled in (``$repuid$``/``$repositoryuid$`` default to the node's
repositoryUniqueId, README §2.4) and goes as ITI-43; its answer's documents are kept for
:mod:`tests.conformance.retrieval`. The XCA steps go to the node's Responding Gateway (``/xca/responding``):
an ``XCQTransaction`` is a query sent as ITI-38 Cross Gateway Query, an ``XCRTransaction`` a retrieve sent as
ITI-39 Cross Gateway Retrieve (MTOM, like ITI-43); ``$home$`` defaults to the node's homeCommunityId, which
is also what NIST's ``$testdata_home$`` report of a test-data section (12318/init) stands for, and every
object of their answers must carry it (:mod:`tests.conformance.community`). An ``IGQTransaction`` (ITI-18) or
``IGRTransaction`` (ITI-43) goes to the node's Initiating Gateway (``/xca/initiating``); its test data lives in
another community, loaded by an engine on that node and taken over with :meth:`Engine.adopt` (every object
must then carry that community's home; a submission reports ``$testdata_home$`` = the home it went to).
An ``XDRProvideAndRegisterTransaction`` is the same ITI-41 push, sent to the node's Document Recipient
(``/xdr/recipient``); its metadata file may already be a whole ``xdsb:ProvideAndRegisterDocumentSetRequest``
(12375, 12376), whose ``lcm:SubmitObjectsRequest`` is then the metadata (the ``xdsb:Document`` elements are
built from the step's ``<Document>`` files, as for any ITI-41).
``<Assert>`` XPaths are evaluated on the answer placed as the NIST log holds it
(``TestStep/XCQTransaction[@step]/Result/...``), with ``$x$`` placeholders and plain ``useAs`` names
(``'requested' = 'returned'``) replaced by their values.
Like NIST's ReportManager, a submission reports ``<id>_uid`` and ``<id>_uuid`` for every uniqueId and UUID
it assigned (``UseReport reportName="Document01_uid"``).

Patients: ``main`` is every test's session patient (NIST 15817/15818 ``pif``), ``alt`` a second fed patient
(NIST 15817b, ``$altpatientid$``) and ``second`` a third one for a test that must load data for another
patient (12374). ``<AltPatientId/>`` uses a fresh id nobody fed; ``<NewPatientId/>`` switches the test to a
fresh fed id.
"""

from __future__ import annotations

import copy
import mimetypes
import re
import uuid
from pathlib import Path
from typing import Final

from lxml import etree
from starlette.testclient import TestClient

from tests.conformance import ebrs21
from tests.conformance import substitute as sub
from tests.conformance.retrieval import Document, Retrieval
from tests.conformance.testplan import Step, UseReport, load_section
from tests.conformance.verdict import Expectation, Result, problems
from tests.support import REGISTRY, REPOSITORY, Answer, post, xop_decoded
from tests.xsd import assert_valid
from xds import vocabulary as v
from xds.ebrim import xdsb
from xds.namespaces import LCM, RIM, XDSB
from xds.node import Node
from xds.soap import mtom

Key = tuple[str, str, str]
PATIENT_DOMAIN: Final = "1.3.6.1.4.1.21367.13.20.1000"
_SESSION_FEEDS: Final = frozenset({"15817", "15818", "15823"})
"""Patient Identity Feed tests whose ``$patientid$`` report is the session patient (15823: the RG's feed)."""
_ALT_FEED: Final = "15817b"
_NIST_LOG_PATH: Final = re.compile(r"//TestStep\[@id='[^']*'\]")
"""Asserts written against the NIST log (``//TestStep[@id='x']//...``) are applied to the answer's own log entry."""
RESPONDING_GATEWAY: Final = "/xca/responding"
INITIATING_GATEWAY: Final = "/xca/initiating"
RECIPIENT: Final = "/xdr/recipient"
_ACTIONS: Final = {
    "RegisterTransaction": v.ACTION_REGISTER,
    "StoredQueryTransaction": v.ACTION_STORED_QUERY,
    "ProvideAndRegisterTransaction": v.ACTION_PROVIDE_AND_REGISTER,
    "XDRProvideAndRegisterTransaction": v.ACTION_PROVIDE_AND_REGISTER,
    "RetrieveTransaction": v.ACTION_RETRIEVE,
    "XCQTransaction": v.ACTION_CROSS_GATEWAY_QUERY,
    "XCRTransaction": v.ACTION_CROSS_GATEWAY_RETRIEVE,
    "IGQTransaction": v.ACTION_STORED_QUERY,
    "IGRTransaction": v.ACTION_RETRIEVE,
}
_PATHS: Final = {
    "ProvideAndRegisterTransaction": REPOSITORY,
    "XDRProvideAndRegisterTransaction": RECIPIENT,
    "RetrieveTransaction": REPOSITORY,
    "XCQTransaction": RESPONDING_GATEWAY,
    "XCRTransaction": RESPONDING_GATEWAY,
    "IGQTransaction": INITIATING_GATEWAY,
    "IGRTransaction": INITIATING_GATEWAY,
}
"""Where each transaction goes (the registry otherwise)."""
_PROVIDES: Final = frozenset({"ProvideAndRegisterTransaction", "XDRProvideAndRegisterTransaction"})
"""ITI-41 pushes: the metadata and the step's ``<Document>`` files as MTOM parts."""
_SUBMISSIONS: Final = frozenset({"RegisterTransaction", *_PROVIDES})
_RETRIEVES: Final = frozenset({"RetrieveTransaction", "XCRTransaction", "IGRTransaction"})
_GATEWAY: Final = frozenset({"XCQTransaction", "XCRTransaction"})
_INITIATING: Final = frozenset({"IGQTransaction", "IGRTransaction"})
_REPOSITORY_UID_SYMBOLS: Final = ("$repuid$", "$repositoryuid$")
_HOME_SYMBOL: Final = "$home$"
_TESTDATA_HOME: Final = "$testdata_home$"


class HarnessError(Exception):
    """The harness cannot run this step (unsupported transaction, missing earlier value...)."""


def new_patient_id() -> str:
    """A fresh HL7 CX patient id in the NIST test affinity domain."""
    return f"{uuid.uuid4().hex[:16]}^^^&{PATIENT_DOMAIN}&ISO"


def _parse(path: Path) -> etree._Element:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False, remove_blank_text=True)
    return etree.parse(str(path), parser).getroot()


class Engine:
    """One run of NIST sections against one registry node."""

    def __init__(self, client: TestClient, node: Node, tests: Path) -> None:
        self.client, self.node, self.tests = client, node, tests
        self.patients = {name: self._fed(new_patient_id()) for name in ("main", "alt", "second")}
        self.current: dict[str, str] = {}
        self.uids: dict[Key, dict[str, str]] = {}
        self.uuids: dict[Key, dict[str, str]] = {}
        self.pids: dict[Key, str] = {}
        self.reports: dict[Key, dict[str, str]] = {}
        self.submitted: dict[str, tuple[str, bytes]] = {}
        """DocumentEntry.uniqueId -> (mimeType, bytes) of every document a successful ITI-41 provided."""
        self.log: list[Result] = []
        self.data_home = node.home_community_id
        """The community holding the test data (:meth:`adopt`): what an Initiating Gateway answer must carry."""

    def adopt(self, other: Engine) -> None:
        """Take over what ``other`` (an engine on another community) assigned and reported, as NIST's logs
        are shared between the sections of a session: its test data is now the data the Initiating Gateway
        steps find in that community. Its patients are fed here too (one patient-id affinity domain)."""
        self.uids |= other.uids
        self.uuids |= other.uuids
        self.pids |= other.pids
        self.reports |= other.reports
        self.submitted |= other.submitted
        for test, pid in other.current.items():
            self.current.setdefault(test, self._fed(pid))
        self.data_home = other.node.home_community_id

    def _fed(self, pid: str) -> str:
        self.node.store.add_patient(pid)
        return pid

    # --- sections ----------------------------------------------------------------------------------------

    def prepare(self, ref: str, role: str = "prerequisite") -> None:
        """Run every step of ``test/section[@patient]``; each must meet its own expectation."""
        test, section = self._enter(ref)
        for step in load_section(self.tests, test, section):
            self._checked(step, role)

    def target(self, ref: str, step_id: str) -> Result:
        """Run ``test/section`` up to step ``step_id`` (earlier steps checked); return that step's result."""
        test, section = self._enter(ref)
        steps = load_section(self.tests, test, section)
        if step_id not in [s.id for s in steps]:
            raise HarnessError(f"{test}/{section} has no step {step_id!r}")
        for step in steps:
            if step.id == step_id:
                return self.run(step)
            self._checked(step, "earlier")
        raise AssertionError("unreachable")

    def _enter(self, ref: str) -> tuple[str, str]:
        path, _, patient = ref.partition("@")
        test, _, section = path.partition("/")
        self.current.setdefault(test, self.patients[patient or "main"])
        return test, section

    def after(self, ref: str, step_id: str) -> None:
        """Run the steps of ``test/section`` that follow ``step_id`` (its checks: NullTransaction asserts...)."""
        test, section = self._enter(ref)
        steps = load_section(self.tests, test, section)
        ids = [s.id for s in steps]
        for step in steps[ids.index(step_id) + 1 :]:
            self._checked(step, "follow-up")

    def _checked(self, step: Step, role: str) -> None:
        result = self.run(step)
        found = problems(Expectation.of(step), result)
        if found:
            raise AssertionError(f"{role} step {step.label} failed: {'; '.join(found)}\n  answer: {result.describe()}")

    # --- one step ----------------------------------------------------------------------------------------

    def run(self, step: Step) -> Result:
        """Send one step and remember what it assigned."""
        if "NewPatientId" in step.flags:
            self.current[step.test] = self._fed(new_patient_id())
        if step.transaction == "PatientIdentityFeedTransaction":
            self._fed(self.current[step.test])  # ids are fed up front; a feed step only repeats that
        if step.transaction in ("", "NullTransaction", "PatientIdentityFeedTransaction"):
            result = Result(step)  # sends nothing
        elif step.transaction in _ACTIONS:
            result = self._send(step)
        else:
            raise HarnessError(f"{step.label}: {step.transaction} is not supported by this harness")
        self._assertions(step, result)
        self.log.append(result)
        return result

    def _assertions(self, step: Step, result: Result) -> None:
        """``<Assert>`` XPaths on this answer, or the previous one for a NullTransaction, with the step's
        placeholders filled in (``= '$home$'``)."""
        if not step.assertions:
            return
        answered = [r for r in (*self.log, result) if r.body is not None]
        if not answered:
            raise HarnessError(f"{step.label}: assertions but no answer to check them against")
        log = _log_entry(answered[-1])
        needed = step.use_reports or any("$" in xpath for _, xpath in step.assertions)
        values = self._values(step) if needed else {}
        literal = sorted((k for k in values if not sub.PLACEHOLDER.fullmatch(k)), key=len, reverse=True)
        for name, xpath in step.assertions:
            expr = sub.PLACEHOLDER.sub(lambda m: values.get(m.group(0), m.group(0)), _NIST_LOG_PATH.sub("", xpath))
            for symbol in literal:  # NIST replaces a plain useAs name (``'requested' = 'returned'``) as text
                expr = expr.replace(symbol, values[symbol])
            left = sub.PLACEHOLDER.findall(expr)
            if left:
                raise HarnessError(f"{step.label}: assertion {name}: placeholders without a value: {sorted(left)}")
            try:
                ok = bool(log.xpath(expr))
            except etree.XPathError as exc:
                raise HarnessError(f"{step.label}: assertion {name}: {exc}") from None
            if not ok:
                result.failed_assertions.append(f"assertion {name} is false: {' '.join(xpath.split())}")

    def _send(self, step: Step) -> Result:
        root = _parse(step.directory / step.metadata_file)
        if step.transaction in _PROVIDES:
            root = _submit_objects(step, root)
        if ebrs21.is_ebrs21(root) and "NoConvert" not in step.flags:
            root = ebrs21.to_ebrs30(root)
        values = self._values(step)
        sub.fill(root, values)
        if step.transaction in _SUBMISSIONS:
            self._register_substitutions(step, root)
        left = sub.leftovers(root)
        if left:
            raise HarnessError(f"{step.label}: placeholders without a value: {sorted(left)}")
        self._record_reports(step, root, "InputMetadata")
        if step.transaction in _PROVIDES:
            return self._provide(step, root)
        assert_valid(root, what=f"request of {step.label}")
        if step.transaction in _RETRIEVES:
            return self._retrieve(step, root, values)
        path = _PATHS.get(step.transaction, REGISTRY)
        answer = post(self.client, _ACTIONS[step.transaction], etree.tostring(root), path)
        self._record_reports(step, answer.body, "Result")
        return self._gateway(step, Result.of_answer(step, answer.body, root))

    def _gateway(self, step: Step, result: Result) -> Result:
        """An XCA answer must carry this community's homeCommunityId on what it returns."""
        if step.transaction in _GATEWAY:
            result.home = self.node.home_community_id
        elif step.transaction in _INITIATING:
            result.home = self.data_home
        return result

    def _provide(self, step: Step, submit: etree._Element) -> Result:
        """ITI-41 (to the repository, or to the Document Recipient for XDR): the metadata and each ``<Document>``
        file as an MTOM part."""
        ids = self.uuids[step.key]
        documents: list[tuple[str, str]] = []
        parts: list[tuple[str, str, bytes]] = []
        for n, (doc_id, name) in enumerate(step.documents, 1):
            path = step.directory / name
            if not path.is_file():
                raise HarnessError(f"{step.label}: Document {doc_id} file {name} not found")
            cid = mtom.new_content_id(n)
            documents.append((ids.get(doc_id, doc_id), cid))
            parts.append((cid, mimetypes.guess_type(name)[0] or "application/octet-stream", path.read_bytes()))
        body = xdsb.render_provide_and_register_request(submit, documents)
        request = etree.fromstring(body)
        assert_valid(xop_decoded(request, {cid: data for cid, _, data in parts}), what=f"request of {step.label}")
        answer = post(self.client, v.ACTION_PROVIDE_AND_REGISTER, body, _PATHS[step.transaction], parts=parts)
        self._record_reports(step, answer.body, "Result")
        result = Result.of_answer(step, answer.body, request)
        if result.status == "Success":
            mime_types = {e.get("id", ""): e.get("mimeType", "") for e in submit.iter(f"{{{RIM}}}ExtrinsicObject")}
            for (symbolic, _), (doc_id, _), (_, _, data) in zip(step.documents, documents, parts, strict=True):
                uid = self.uids[step.key].get(symbolic)
                if uid is not None and doc_id in mime_types:
                    self.submitted[uid] = (mime_types[doc_id], data)
        return result

    def _retrieve(self, step: Step, request: etree._Element, values: dict[str, str]) -> Result:
        """ITI-43 or ITI-39 (as MTOM, as the NIST engine sends it); the answer's documents go to the result."""
        action, path = _ACTIONS[step.transaction], _PATHS[step.transaction]
        answer = post(self.client, action, etree.tostring(request), path, parts=[])
        self._record_reports(step, answer.body, "Result")
        result = self._gateway(step, Result.of_answer(step, answer.body, request))
        if answer.body.tag == xdsb.RETRIEVE_RESPONSE:
            result.retrieval = Retrieval(
                requested=[
                    (_text(r, "RepositoryUniqueId"), _text(r, "DocumentUniqueId"))
                    for r in request.iterchildren(f"{{{XDSB}}}DocumentRequest")
                ],
                returned=_returned(answer),
                submitted=dict(self.submitted),
                values=values,
                reference_metadata=self._answer_of(step, step.reference_metadata),
            )
        return result

    def _answer_of(self, step: Step, key: Key | None) -> etree._Element | None:
        if key is None:
            return None
        found = next((r.body for r in reversed(self.log) if r.step.key == key and r.body is not None), None)
        if found is None:
            raise HarnessError(f"{step.label}: ReferenceMetadata step {'/'.join(key)} has not run")
        return found

    def _register_substitutions(self, step: Step, root: etree._Element) -> None:
        pid = new_patient_id() if "AltPatientId" in step.flags else self.current[step.test]
        if "NoPatientId" not in step.flags:
            sub.set_patient(root, pid)
        enabled = "NoAssignUids" not in step.flags
        self.uids[step.key] = sub.assign_uids(root, enabled=enabled, keep=step.keep_uids)
        sub.set_source_id(root)
        self.uuids[step.key] = sub.assign_uuids(root, enabled="AssignUuids" in step.flags)
        self.pids[step.key] = sub.submission_patient(root)
        reports = self.reports.setdefault(step.key, {})
        reports[_TESTDATA_HOME] = self.node.home_community_id  # the community this test data went into
        reports.update({f"{k}_uid": u for k, u in self.uids[step.key].items() if k})
        reports.update({f"{k}_uuid": u for k, u in self.uuids[step.key].items() if k})

    def _record_reports(self, step: Step, root: etree._Element, source: str) -> None:
        for r in step.reports:
            if r.source == source:
                value = sub.report(root, r.xpath)
                if value is not None:
                    self.reports.setdefault(step.key, {})[r.name] = value

    # --- placeholder values ------------------------------------------------------------------------------

    def _values(self, step: Step) -> dict[str, str]:
        values: dict[str, str] = {}
        for u in step.use_ids:
            key = (u.test, u.section, u.step)
            found: str | None
            if u.kind == "AssignedPatientId":
                found = self.pids.get(key)
            else:
                tables = {"AssignedUuids": self.uuids, "AssignedUids": self.uids}
                found = tables.get(u.kind, {}).get(key, {}).get(u.object_id)
            if found is None:
                raise HarnessError(
                    f"{step.label}: no {u.kind} value for {u.object_id!r} of {'/'.join(key)}"
                    " (not run, or the registry assigned it)"
                )
            values[u.symbol] = found
        for r in step.use_reports:
            values[r.symbol] = self._report(step, r)
        if step.transaction in _RETRIEVES:
            values |= dict.fromkeys(step.repository_symbols, self.node.repository_unique_id)
            for symbol in _REPOSITORY_UID_SYMBOLS:
                values.setdefault(symbol, self.node.repository_unique_id)
        if step.transaction in _GATEWAY:
            values.setdefault(_HOME_SYMBOL, self.node.home_community_id)
        return values

    def _report(self, step: Step, r: UseReport) -> str:
        if r.test in _SESSION_FEEDS and r.report == "$patientid$":
            return self.current[step.test]
        if r.test == _ALT_FEED and r.report == "$patientid$":
            return self.patients["alt"]
        value = self.reports.get((r.test, r.section, r.step), {}).get(r.report)
        if value is None and r.report == _TESTDATA_HOME:
            return self.node.home_community_id  # the test data went into this community (12318/init)
        if value is None:
            raise HarnessError(f"{step.label}: no report {r.report!r} from {r.test}/{r.section}#{r.step}")
        return value


def _submit_objects(step: Step, root: etree._Element) -> etree._Element:
    """The ``SubmitObjectsRequest`` of an ITI-41 metadata file: the file itself, or the one a whole
    ``xdsb:ProvideAndRegisterDocumentSetRequest`` holds."""
    if root.tag != xdsb.PROVIDE_AND_REGISTER_REQUEST:
        return root
    found = root.find(f"{{{LCM}}}SubmitObjectsRequest")
    if found is None:
        raise HarnessError(f"{step.label}: {step.metadata_file} holds no lcm:SubmitObjectsRequest")
    return found


def _text(parent: etree._Element, local: str) -> str:
    child = parent.find(f"{{{XDSB}}}{local}")
    return (child.text or "").strip() if child is not None else ""


def _returned(answer: Answer) -> list[Document]:
    """The DocumentResponses of an ITI-43/ITI-39 answer, each with the bytes of its MTOM part (or inline
    base64)."""
    _, _, documents = xdsb.retrieve_response(answer.body)
    out = []
    for ids, mime_type, part in documents:
        data = answer.attachments.get(part.cid) if part.cid is not None else xdsb.inline_bytes(part)
        out.append(Document(ids.repository_unique_id, ids.document_unique_id, mime_type, data))
    return out


def _log_entry(result: Result) -> etree._Element:
    """The answer as the NIST log holds it: ``TestStep[@id]/<Transaction step=..>/Result/<answer>``, so asserts
    such as ``//XCQTransaction[@step="finddocs"]/Result/*[local-name()='AdhocQueryResponse']`` or
    ``//Result[1]/*[...]`` apply."""
    entry = etree.Element("TestStep", id=result.step.id)
    tx = etree.SubElement(entry, result.step.transaction or "NullTransaction", step=result.step.id)
    assert result.body is not None
    etree.SubElement(tx, "Result").append(copy.deepcopy(result.body))
    return entry


__all__ = ["INITIATING_GATEWAY", "RECIPIENT", "RESPONDING_GATEWAY", "Engine", "HarnessError", "new_patient_id"]
