"""Consent, XUA and audit benchmark: what the gate, the assertion check and the audit write cost per request.

::

    python benchmarks/consent.py [--samples 2000] [--database-url URL] [--keep]

In this process, on a node of its own (SQLite under a temporary directory, or ``--database-url``):

- **gate**: one consent decision from the local registry (the patient has 5 directives, one matching), the audit
  record of the decision included (``Node.gate().decide``), target p99 <= 1 ms; and the decision alone
  (``LocalConsentPolicy.decide``: one indexed read) to show what the audit write adds;
- **xua**: verification of one signed assertion in a WS-Security header (``XuaVerifier.verify``: locate,
  shape checks, xmlsec RSA-SHA256 verification, conditions, attributes), target <= 2 ms uncached (a verifier
  with no cache); and cached: the same assertion again, whose signature the verifier remembers (every other
  check still runs);
- **audit**: one audit record rendered and written to the spool in its own transaction (``SqlAuditSpool
  .append``), target <= 0.3 ms; and the render alone.

Floor, in the same run: an indexed primary-key ``SELECT`` on the same database (what any decision that reads
the database costs) and a one-row ``INSERT`` committed on the node's writer queue (what any durable write
costs: SQLite runs ``synchronous=FULL``, so every commit is an fsync). Also measured: what one SOAP request
pays, its decision and its transaction record batched into one commit (:func:`xds.store.audit.batch`).
Prints a table and writes ``benchmarks/results/consent-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trustme
from lxml import etree
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import RESULTS, log, machine_info, print_table

from xds import samples
from xds.audit import message as audit_message
from xds.audit import transactions as audits
from xds.config import Settings
from xds.consent.local import DENY, GRANT, ORGANISATION, Directive, LocalConsentPolicy
from xds.consent.model import AccessRequest, Requester
from xds.node import Node
from xds.security import saml
from xds.security.xua import XuaSettings, XuaVerifier
from xds.soap.envelope import WSSE
from xds.store.audit import SpoolRecord, batch

TARGET_GATE_P99_MS = 1.0
TARGET_XUA_MS = 2.0
TARGET_AUDIT_MS = 0.3
PATIENT = str(samples.patient("bench-consent"))
URA = "01234567"


def timed(fn: Callable[[], object], n: int) -> list[float]:
    """Milliseconds of ``n`` calls, after 50 warm-up calls."""
    for _ in range(50):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def pct(xs: list[float], p: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(p * len(xs)))]


def header_with_assertion(workdir: Path) -> tuple[etree._Element, str]:
    leaf = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert("idp.example.nl", key_type=trustme.KeyType.RSA)
    cert = leaf.cert_chain_pems[0].bytes()
    trusted = workdir / "trusted.pem"
    trusted.write_bytes(cert)
    now = datetime.now(UTC)
    assertion = saml.build_assertion(
        issuer="https://idp.example.nl",
        subject="UZI-123456789",
        audience="urn:bench",
        not_before=now - timedelta(minutes=1),
        not_on_or_after=now + timedelta(hours=1),
        attributes={
            saml.SUBJECT_ID: ["Dr. Bench"],
            saml.ORGANIZATION_ID: [URA],
            saml.SUBJECT_ROLE: ["01.015^^2.16.840.1.113883.2.4.15.111"],
            saml.PURPOSE_OF_USE: ["TREATMENT^^2.16.840.1.113883.3.18.7.1"],
            saml.RESOURCE_ID: [PATIENT],
        },
        assertion_id=f"_{uuid.uuid4().hex}",
        issue_instant=now,
    )
    signed = saml.sign_assertion(assertion, leaf.private_key_pem.bytes(), cert)
    header = etree.Element("{http://www.w3.org/2003/05/soap-envelope}Header")
    etree.SubElement(header, f"{{{WSSE}}}Security").append(signed)
    return etree.fromstring(etree.tostring(header)), str(trusted)


def run(samples_n: int, database_url: str, keep: bool) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="xds-bench-consent-"))
    started = datetime.now(UTC)
    info = machine_info("in-process")
    log(f"{info['nproc']} CPUs ({info['cpu_model']}); load average {info['loadavg_start']}; work dir {workdir}")
    header, trusted = header_with_assertion(workdir)
    node = Node.open(Settings(data_dir=str(workdir / "var"), database_url=database_url, organisation_id=URA))
    try:
        for n in range(4):
            node.consents.add(Directive(patient_id=PATIENT, decision=DENY, who=ORGANISATION, who_id=f"9999{n:04d}"))
        node.consents.add(Directive(patient_id=PATIENT, decision=GRANT, who=ORGANISATION, who_id=URA))
        requester = Requester(user_id="UZI-1", organisation_id=URA, address="127.0.0.1")
        gate = node.gate()
        local = LocalConsentPolicy(node.consents.directives, stance="opt-in")
        request = AccessRequest(patient_id=PATIENT, requester=requester, at=datetime.now(UTC))
        assert gate.decide(PATIENT, requester).permit and local.decide(request).permit

        log(f"gate: {samples_n} decisions")
        gate_ms = timed(lambda: gate.decide(PATIENT, requester), samples_n)
        local_ms = timed(lambda: local.decide(request), samples_n)
        with node.engine.connect() as conn:
            select_ms = timed(lambda: conn.execute(text("SELECT id FROM consent WHERE id = 1")).fetchall(), samples_n)

        log(f"xua: {samples_n} verifications")
        xua_settings = XuaSettings(trusted_certs=(trusted,), audiences=("urn:bench",))
        uncached = XuaVerifier(xua_settings, cache_size=0)
        cached = XuaVerifier(xua_settings)
        now = datetime.now(UTC)
        assert uncached.verify(header, now=now) is not None and cached.verify(header, now=now) is not None
        xua_ms = timed(lambda: uncached.verify(header, now=now), samples_n)
        xua_cached_ms = timed(lambda: cached.verify(header, now=now), samples_n)

        log(f"audit: {samples_n} records")
        msg = audits.registry_stored_query(
            node=node.audit_node,
            requester=requester,
            time=datetime.now(UTC),
            outcome=0,
            query=b"<query:AdhocQueryRequest/>" * 20,
            query_id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
            patient_id=PATIENT,
        )
        render_ms = timed(lambda: audit_message.render(msg), samples_n)
        with node.store.writing() as conn:
            conn.execute(text("CREATE TABLE bench_floor (xml TEXT)"))
        xml_text = audit_message.render(msg).decode()

        def durable_insert() -> None:
            with node.store.writing() as conn:
                conn.execute(text("INSERT INTO bench_floor (xml) VALUES (:x)"), {"x": xml_text})

        commit_ms = timed(durable_insert, samples_n)

        def one_request() -> None:  # what a SOAP request does: decisions batched, one write with its own record
            with batch() as pending:
                gate.decide(PATIENT, requester)
            record = SpoolRecord(event="ITI-18", outcome=0, xml=audit_message.render(msg), patient_id=PATIENT)
            node.audit.append([*pending, record])

        request_ms = timed(one_request, samples_n)
        audit_ms = timed(
            lambda: node.audit.append(
                [SpoolRecord(event="ITI-18", outcome=0, xml=audit_message.render(msg), patient_id=PATIENT)]
            ),
            samples_n,
        )
    finally:
        node.close()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)

    def row(name: str, xs: list[float], floor: list[float] | None, target: float, key: str) -> list[str]:
        value = pct(xs, 0.99) if key == "p99" else statistics.median(xs)
        floor_value = (pct(floor, 0.99) if key == "p99" else statistics.median(floor)) if floor else None
        return [
            name,
            f"{value:.3f} ms ({key})",
            f"{floor_value:.3f} ms" if floor_value is not None else "",
            f"{value / floor_value:.1f}" if floor_value else "",
            f"<= {target:g} ms" if target else "",
            ("yes" if value <= target else "NO") if target else "",
        ]

    rows = [
        row("gate decision + its audit record", gate_ms, select_ms, TARGET_GATE_P99_MS, "p99"),
        row("gate decision + its audit record", gate_ms, select_ms, 0, "p50"),
        row("local registry decision alone", local_ms, select_ms, TARGET_GATE_P99_MS, "p99"),
        row("XUA verification (uncached)", xua_ms, None, TARGET_XUA_MS, "p50"),
        row("XUA verification (uncached)", xua_ms, None, 0, "p99"),
        row("XUA verification (cached signature)", xua_cached_ms, None, 0, "p50"),
        row("XUA verification (cached signature)", xua_cached_ms, None, 0, "p99"),
        row("audit record render + spool write", audit_ms, commit_ms, TARGET_AUDIT_MS, "p50"),
        row("audit record render + spool write", audit_ms, commit_ms, 0, "p99"),
        row("audit render alone", render_ms, None, 0, "p50"),
        row("a request: decision + ITI-18 record, one commit", request_ms, commit_ms, 0, "p50"),
        row("a request: decision + ITI-18 record, one commit", request_ms, commit_ms, 0, "p99"),
    ]
    info["loadavg_end"] = [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    print_table(["metric", "measured", "floor", "ratio", "target", "met?"], rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"consent-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    payload: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "machine": info,
        "database": database_url or "sqlite",
        "samples": samples_n,
        "rows": rows,
        "ms": {
            "gate": gate_ms,
            "local": local_ms,
            "select_floor": select_ms,
            "xua": xua_ms,
            "xua_cached": xua_cached_ms,
            "audit": audit_ms,
            "render": render_ms,
            "commit_floor": commit_ms,
            "request": request_ms,
        },
    }
    out.write_text(json.dumps(payload, indent=1))
    log(f"results in {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--database-url", default="", help="default: SQLite in a temporary directory")
    p.add_argument("--keep", action="store_true")
    a = p.parse_args(argv)
    return run(a.samples, a.database_url, a.keep)


if __name__ == "__main__":
    sys.exit(main())
