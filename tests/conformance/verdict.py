"""What a NIST step expects, what the registry answered, and how the two compare (README §2.7).

- ``ExpectedStatus``: the answer's status (Success, Failure, PartialSuccess).
- ``ExpectedErrorCode``: must be one of the returned ``RegistryError/@errorCode`` values (exact match).
- ``ExpectedErrorMessage``: a substring of the ``errorCode`` or ``codeContext`` of some Error-severity
  RegistryError.
- ``ExpectedContents``: see :mod:`tests.conformance.contents`.
- ``<Assertions>``: each ``Assert`` XPath is true of the answer (checked by the engine).
- A Retrieve step: the documents returned, see :mod:`tests.conformance.retrieval` (``ReferenceDocument``,
  ``ExpectedMimeType``, ``ReferenceMetadata``, and the bytes and mimeType the harness submitted).
- An XCA step (ITI-38, ITI-39 to a Responding Gateway): every returned object carries the gateway's
  homeCommunityId, see :mod:`tests.conformance.community`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from tests.conformance import community, contents, retrieval
from tests.conformance.retrieval import Retrieval
from tests.conformance.testplan import Step
from xds import vocabulary as v
from xds.namespaces import RS, SOAP12

STATUS: Final = {
    v.RESPONSE_SUCCESS: "Success",
    v.RESPONSE_FAILURE: "Failure",
    v.RESPONSE_PARTIAL_SUCCESS: "PartialSuccess",
}


@dataclass(frozen=True, slots=True)
class Expectation:
    """A step's expected outcome (from its testplan, or a documented override)."""

    status: str
    codes: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    contents: tuple[tuple[str, int | None], ...] = ()
    references: tuple[tuple[str, str], ...] = ()
    mime_type: str = ""

    @classmethod
    def of(cls, step: Step) -> Expectation:
        return cls(
            step.expected_status,
            step.error_codes,
            step.error_messages,
            step.contents,
            step.references,
            step.expected_mime_type,
        )


@dataclass(frozen=True, slots=True)
class Error:
    """One returned ``rs:RegistryError``."""

    code: str
    context: str
    severity: str

    @property
    def is_error(self) -> bool:
        return self.severity != v.SEVERITY_WARNING


@dataclass(slots=True)
class Result:
    """What one step sent and got back (``status`` is "" for a step that sends nothing)."""

    step: Step
    status: str = ""
    errors: list[Error] = field(default_factory=list)
    body: etree._Element | None = None
    request: etree._Element | None = None
    failed_assertions: list[str] = field(default_factory=list)
    retrieval: Retrieval | None = None
    home: str = ""
    """The homeCommunityId every returned object must carry (XCA answers; empty: not checked)."""

    @classmethod
    def of_answer(cls, step: Step, body: etree._Element, request: etree._Element) -> Result:
        if body.tag == f"{{{SOAP12}}}Fault":
            reason = " ".join(t.strip() for t in body.itertext() if t.strip())
            return cls(step, "Fault", [Error("SOAP Fault", reason, v.SEVERITY_ERROR)], body, request)
        errors = [
            Error(e.get("errorCode", ""), e.get("codeContext", ""), e.get("severity", v.SEVERITY_ERROR))
            for e in body.iter(f"{{{RS}}}RegistryError")
        ]
        status = body.get("status")
        if status is None:  # RetrieveDocumentSetResponse: the status is on its rs:RegistryResponse
            inner = body.find(f"{{{RS}}}RegistryResponse")
            status = "" if inner is None else inner.get("status", "")
        return cls(step, STATUS.get(status, status), errors, body, request)

    def describe(self) -> str:
        """The answer in one line: status, then each error as code (severity): context."""
        errs = "; ".join(f"{e.code}{'' if e.is_error else ' (warning)'}: {e.context}" for e in self.errors)
        if self.body is None:
            return f"status={self.status or '-'} (nothing sent)"
        kinds = contents.classify(self.body)
        types = sorted(e.get("associationType", "").rsplit(":", 1)[-1] for k, e in kinds if k == "Associations")
        counts = dict(contents.tally(self.body))
        tail = f" associationTypes={types}" if types else ""
        if self.retrieval is not None:
            tail += f" documents={[(d.uid, d.mime_type) for d in self.retrieval.returned]}"
        return f"status={self.status or '-'} errors=[{errs}] objects={counts}{tail}"


def problems(expected: Expectation, result: Result) -> list[str]:
    """Every way ``result`` misses ``expected`` (empty: the step passed)."""
    out = list(result.failed_assertions)
    if result.body is None:
        return out
    if result.status != expected.status:
        out.append(f"status {result.status!r}, expected {expected.status!r}")
    returned = {e.code for e in result.errors}
    out += [f"errorCode {c} not returned" for c in expected.codes if c not in returned]
    for msg in expected.messages:
        if not any(msg in e.code or msg in e.context for e in result.errors if e.is_error):
            out.append(f"no Error-severity RegistryError mentions {msg!r}")
    if expected.contents and result.body is not None:
        out += contents.check(result.body, expected.contents)
    if result.home:
        out += community.check(result.body, result.home)
    if result.retrieval is not None:
        out += retrieval.check(
            result.retrieval,
            result.status,
            references=expected.references,
            mime_type=expected.mime_type,
            directory=result.step.directory,
        )
    return out


__all__ = ["STATUS", "Error", "Expectation", "Result", "problems"]
