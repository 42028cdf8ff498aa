"""Fixtures and reporting for the NIST conformance replay.

- ``settings`` is overridden so the node validates codes against the NIST affinity domain (``codes.xml``),
  as the NIST registry does (README §2.6); the database fixtures stay the stock ones (every backend).
- A terminal summary counts Table A rows passed / failed / xfailed per transaction and backend.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.conformance.corpus import codes_xml
from xds.config import Settings

_RESULTS: dict[str, tuple[str, str]] = {}
"""nodeid -> (transaction [backend], outcome)."""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The stock settings, with the NIST code lists."""
    return dataclasses.replace(settings, code_lists=str(codes_xml()))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if getattr(item, "originalname", "") != "test_row":
            continue
        row = item.callspec.params.get("row")  # type: ignore[attr-defined]
        if row is not None:
            backend = str(item.callspec.params.get("database_url", ""))  # type: ignore[attr-defined]
            item.user_properties.append(("nist_tx", f"{row.tx} [{backend}]"))


def _outcome(report: pytest.TestReport) -> str | None:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.when == "call":
        return report.outcome
    if report.outcome == "failed":
        return "error"
    return "skipped" if report.outcome == "skipped" else None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    tx = dict(report.user_properties).get("nist_tx")
    outcome = _outcome(report)
    if tx and outcome and (outcome != "passed" or report.nodeid not in _RESULTS):
        _RESULTS[report.nodeid] = (str(tx), outcome)


def _lines() -> Iterator[str]:
    per_tx: dict[str, Counter[str]] = {}
    for tx, outcome in _RESULTS.values():
        per_tx.setdefault(tx, Counter())[outcome] += 1
    for tx in sorted(per_tx):
        c = per_tx[tx]
        total = sum(c.values())
        rest = ", ".join(f"{k} {n}" for k, n in sorted(c.items()) if k != "passed")
        yield f"{tx}: passed {c['passed']}/{total}" + (f" ({rest})" if rest else "")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _RESULTS:
        terminalreporter.section("NIST XDS Toolkit conformance (README Table A)")
        for line in _lines():
            terminalreporter.write_line(line)
