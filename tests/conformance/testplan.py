"""Read a NIST test: ``index.idx`` (section order) and each section's ``testplan.xml`` (TestSteps).

A TestStep names its expectation (``ExpectedStatus``, ``ExpectedErrorCode``, ``ExpectedErrorMessage``,
``ExpectedContents``), one transaction element (``RegisterTransaction``, ``StoredQueryTransaction``,
``ProvideAndRegisterTransaction``, ``RetrieveTransaction``, ...) and the engine's instructions for that
transaction: ``MetadataFile``, ``UseId``, ``UseReport``, ``Report``, ``NoPatientId``, ``AltPatientId``,
``NewPatientId``, ``NoAssignUids``, ``AssignUuids``, ``NoConvert``. A Provide and Register step names the
files it attaches (``<Document id="Document01">file</Document>``, relative to the section directory); a
Retrieve step may name the bytes it expects back (``<ReferenceDocument uid="$docuid1$">file</ReferenceDocument>``),
the query answer whose size, hash and mimeType the documents must match (``<ReferenceMetadata testdir=".."
step=".."/>``), an ``<ExpectedMimeType>`` and ``<UseRepositoryUniqueId symbol=".."/>`` (the placeholder that
takes the SUT repository's repositoryUniqueId).
The transaction is the step's child element whose name ends in ``Transaction``. ``<Assertions>`` hold XPath
tests of the step's answer (of the previous answer in a ``NullTransaction``).
A step without a transaction element (``NewPatientId`` alone) only changes the engine's state.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

_FLAGS = frozenset({"NoPatientId", "AltPatientId", "NewPatientId", "AssignUuids", "NoConvert", "SOAP11"})


@dataclass(frozen=True, slots=True)
class UseId:
    """``<UseId>``: a value an earlier step assigned.

    ``kind`` is the NIST log section: AssignedUuids, AssignedUids or AssignedPatientId.
    """

    test: str
    section: str
    step: str
    object_id: str
    symbol: str
    kind: str


@dataclass(frozen=True, slots=True)
class UseReport:
    """``<UseReport>``: a named value an earlier step reported."""

    test: str
    section: str
    step: str
    report: str
    symbol: str


@dataclass(frozen=True, slots=True)
class Report:
    """``<Report>``: an XPath over the sent metadata (InputMetadata) or the answer (Result)."""

    name: str
    source: str
    xpath: str


@dataclass(frozen=True, slots=True)
class Step:
    """One TestStep."""

    test: str
    section: str
    id: str
    directory: Path
    expected_status: str
    error_codes: tuple[str, ...]
    error_messages: tuple[str, ...]
    transaction: str
    metadata_file: str
    use_ids: tuple[UseId, ...]
    use_reports: tuple[UseReport, ...]
    reports: tuple[Report, ...]
    contents: tuple[tuple[str, int | None], ...]
    flags: frozenset[str]
    keep_uids: tuple[str, ...]
    assertions: tuple[tuple[str, str], ...] = ()
    documents: tuple[tuple[str, str], ...] = ()
    """``<Document id=..>file</Document>``: (document id, file relative to the section directory)."""
    references: tuple[tuple[str, str], ...] = ()
    """``<ReferenceDocument uid=..>file</ReferenceDocument>``: (uid or its placeholder, file as written)."""
    reference_metadata: tuple[str, str, str] | None = None
    """``<ReferenceMetadata>``: the (test, section, step) whose query answer describes the documents."""
    expected_mime_type: str = ""
    repository_symbols: tuple[str, ...] = ()
    """``<UseRepositoryUniqueId symbol=..>``: placeholders for the SUT repository's repositoryUniqueId."""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.test, self.section, self.id)

    @property
    def label(self) -> str:
        return f"{self.test}/{self.section}#{self.id}"


def sections(tests: Path, test: str) -> list[str]:
    """Section names of ``test`` in ``index.idx`` order."""
    lines = (tests / test / "index.idx").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def load_section(tests: Path, test: str, section: str) -> list[Step]:
    """The TestSteps of ``<tests>/<test>/<section>/testplan.xml``, in file order."""
    directory = tests / test / section
    root = etree.parse(str(directory / "testplan.xml"), etree.XMLParser(no_network=True)).getroot()
    return [_step(e, test, section, directory) for e in root.iterchildren("TestStep")]


def _texts(parent: etree._Element, tag: str) -> tuple[str, ...]:
    return tuple((e.text or "").strip() for e in parent.iterchildren(tag))


def _step(e: etree._Element, test: str, section: str, directory: Path) -> Step:
    tx = next((c for c in e.iterchildren() if isinstance(c.tag, str) and c.tag.endswith("Transaction")), None)
    scopes = [e] if tx is None else [e, tx]
    flags = frozenset(str(c.tag) for s in scopes for c in s.iterchildren() if c.tag in _FLAGS)
    keep = tuple(c.get("id", "") for s in scopes for c in s.iterchildren("NoAssignUids") if c.get("id"))
    if any(not c.get("id") for s in scopes for c in s.iterchildren("NoAssignUids")):
        flags = flags | {"NoAssignUids"}
    return Step(
        test=test,
        section=section,
        id=e.get("id", ""),
        directory=directory,
        expected_status=(_texts(e, "ExpectedStatus") or ("Success",))[0],
        error_codes=_texts(e, "ExpectedErrorCode"),
        error_messages=_texts(e, "ExpectedErrorMessage"),
        transaction="" if tx is None else str(tx.tag),
        metadata_file=(_texts(tx, "MetadataFile") or ("",))[0] if tx is not None else "",
        use_ids=tuple(_use_id(u, directory) for s in scopes for u in s.iterchildren("UseId")),
        use_reports=tuple(_use_report(u, test, section) for s in scopes for u in s.iterchildren("UseReport")),
        reports=tuple(
            Report(r.get("name", ""), r.get("section", ""), (r.text or "").strip())
            for s in scopes
            for r in s.iterchildren("Report")
        ),
        contents=_contents(tx),
        flags=flags,
        keep_uids=keep,
        assertions=tuple(
            (a.get("id", ""), (a.text or "").strip())
            for s in scopes
            for block in s.iterchildren("Assertions")
            for a in block.iter("Assert")
        ),
        documents=tuple((d.get("id", ""), (d.text or "").strip()) for d in _children(tx, "Document")),
        references=tuple((d.get("uid", ""), (d.text or "").strip()) for d in _children(tx, "ReferenceDocument")),
        reference_metadata=next(
            ((*_where(directory, r.get("testdir")), r.get("step", "")) for r in _children(tx, "ReferenceMetadata")),
            None,
        ),
        expected_mime_type=next(((m.text or "").strip() for m in _children(tx, "ExpectedMimeType")), ""),
        repository_symbols=tuple(u.get("symbol") or "$repuid$" for u in _children(tx, "UseRepositoryUniqueId")),
    )


def _children(tx: etree._Element | None, tag: str) -> list[etree._Element]:
    return [] if tx is None else list(tx.iterchildren(tag))


def _where(directory: Path, testdir: str | None) -> tuple[str, str]:
    """The (test, section) a ``testdir`` names: relative to the section directory, as NIST resolves it, or,
    when that is no section, relative to the test directory (``12021/retrieve`` writes ``testdir="submit"``)."""
    test, section = directory.parent.name, directory.name
    if not testdir:
        return test, section
    tests = directory.parent.parent
    for base in (posixpath.join(test, section), test):
        parts = posixpath.normpath(posixpath.join(base, testdir)).split("/")
        if len(parts) == 2 and (tests / parts[0] / parts[1] / "testplan.xml").is_file():
            break
    return parts[0], parts[1] if len(parts) > 1 else ""


def _use_id(u: etree._Element, directory: Path) -> UseId:
    t, s = _where(directory, u.get("testdir"))
    return UseId(t, s, u.get("step", ""), u.get("id", ""), u.get("symbol", ""), u.get("section", ""))


def _use_report(u: etree._Element, test: str, section: str) -> UseReport:
    named = u.get("section") or section
    return UseReport(
        u.get("test") or test,
        section if named == "THIS" else named,  # NIST: THIS is the section the step is in
        u.get("step", ""),
        u.get("reportName", ""),
        u.get("useAs", ""),
    )


def _contents(tx: etree._Element | None) -> tuple[tuple[str, int | None], ...]:
    block = None if tx is None else tx.find("ExpectedContents")
    if block is None:
        return ()
    out: list[tuple[str, int | None]] = []
    for c in block.iterchildren():
        if isinstance(c.tag, str):
            count = c.get("count")
            out.append((c.tag, int(count) if count is not None else None))
    return tuple(out)


__all__ = ["Report", "Step", "UseId", "UseReport", "load_section", "sections"]
