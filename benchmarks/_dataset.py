"""Data for the registry benchmark: bulk load, pre-rendered SOAP requests, and the in-process floor.

Shape of the data: every patient has ``ENTRIES_PER_PATIENT`` DocumentEntries, each registered by its own
submission (one SubmissionSet + one DocumentEntry + one HasMember), as a document source that sends each
report when it is made would do: so 100k entries are 300k registry objects. Entries get creation times spread
over 2015-2024. Objects are stored Approved, exactly as ITI-42 stores them (``iti42._Registration._approved``),
through :meth:`SqlTx.insert` (the promoted columns, side tables and stored XML of the product).
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event, func, select, text

from registry_schema.tables import RegistryObjectRow
from xds import samples
from xds import vocabulary as v
from xds.ebrim import messages
from xds.model.hl7 import CX
from xds.model.messages import QueryParameter, QueryResponse, StoredQueryRequest
from xds.model.metadata import Association, RegistryObject, Submission
from xds.registry.sq_params import parse_query
from xds.soap.envelope import CONTENT_TYPE, parse_envelope, render_envelope, request_envelope, soap_content_type
from xds.store.sql import SqlRegistryStore

ENTRIES_PER_PATIENT = 20
SUBMISSIONS_PER_TX = 500
PATIENT_OID = "1.3.6.1.4.1.21367.13.20.1000"
WRITER_OID = "1.3.6.1.4.1.21367.13.20.2000"
"""ITI-42 submits for these patients only, so the queried patients keep exactly 20 entries each."""
WRITER_PATIENTS = 64

QUERY_CONTENT_TYPE = soap_content_type(v.ACTION_STORED_QUERY)
REGISTER_CONTENT_TYPE = soap_content_type(v.ACTION_REGISTER)
assert QUERY_CONTENT_TYPE.startswith(CONTENT_TYPE)


def query_patient(n: int) -> CX:
    """The ``n``-th (0-based) loaded patient."""
    return samples.patient(f"B{n:07d}", PATIENT_OID)


def writer_patient(n: int) -> CX:
    """The ``n``-th patient that ITI-42 submits for."""
    return samples.patient(f"W{n:04d}", WRITER_OID)


def _approved(sub: Submission) -> list[RegistryObject]:
    """The objects as ITI-42 stores them: Approved, version 1 (associations: Approved)."""
    out: list[RegistryObject] = []
    for o in sub.objects():
        if isinstance(o, Association):
            out.append(dataclasses.replace(o, status=v.APPROVED))
        else:
            out.append(dataclasses.replace(o, status=v.APPROVED, version_name="1"))
    return out


def _creation_time(rng: random.Random) -> str:
    return f"{rng.randint(2015, 2024)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 23):02d}0000"


@dataclass
class LoadStats:
    """What one load step did."""

    patients: int
    entries: int
    objects: int
    seconds: float

    @property
    def entries_per_s(self) -> float:
        return self.entries / self.seconds if self.seconds else 0.0


def load_patients(
    store: SqlRegistryStore,
    first: int,
    last: int,
    *,
    seed: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> LoadStats:
    """Feed patients ``first`` .. ``last - 1`` and register ``ENTRIES_PER_PATIENT`` entries for each."""
    rng = random.Random(seed * 1_000_003 + first)
    started = time.perf_counter()
    batch: list[RegistryObject] = []
    submissions = entries = objects = 0
    for n in range(first, last):
        cx = query_patient(n)
        store.add_patient(str(cx))
        for _ in range(ENTRIES_PER_PATIENT):
            de = samples.document_entry(cx, creation_time=_creation_time(rng), title="Report")
            batch += _approved(samples.submission(cx, [de]))
            submissions += 1
            entries += 1
            if submissions % SUBMISSIONS_PER_TX == 0:
                objects += _flush(store, batch)
                batch = []
                if progress:
                    progress(entries, (last - first) * ENTRIES_PER_PATIENT)
    objects += _flush(store, batch)
    return LoadStats(last - first, entries, objects, time.perf_counter() - started)


def _flush(store: SqlRegistryStore, batch: list[RegistryObject]) -> int:
    if batch:
        with store.transaction() as tx:
            tx.insert(batch)
    return len(batch)


def feed_writer_patients(store: SqlRegistryStore) -> None:
    """Feed the patients ITI-42 submits for (no entries preloaded)."""
    for n in range(WRITER_PATIENTS):
        store.add_patient(str(writer_patient(n)))


def count_entries(engine: Engine) -> int:
    """DocumentEntries in the registry."""
    ro = RegistryObjectRow.__table__
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ro).where(ro.c.kind == "DE")).scalar_one())


def analyze(engine: Engine) -> None:
    """Refresh planner statistics (PostgreSQL: what autovacuum would do after a bulk load)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))


# ------------------------------------------------------------------------------------------------- requests


def find_documents_body(cx: CX, port: int) -> bytes:
    """A SOAP 1.2 ITI-18 FindDocuments LeafClass request for ``cx``, statuses Approved."""
    req = StoredQueryRequest(
        query_id=v.SQ_FIND_DOCUMENTS,
        return_type="LeafClass",
        parameters=(
            QueryParameter(name="$XDSDocumentEntryPatientId", values=(f"'{cx}'",)),
            QueryParameter(name="$XDSDocumentEntryStatus", values=(f"('{v.APPROVED}')",)),
        ),
    )
    envelope: bytes = request_envelope(
        action=v.ACTION_STORED_QUERY,
        body=messages.render_adhoc_query_request(req),
        to=f"http://127.0.0.1:{port}/xds/registry",
    )
    return envelope


def query_bodies(loaded_patients: int, count: int, port: int, *, seed: int = 7) -> list[bytes]:
    """``count`` FindDocuments requests for distinct random loaded patients."""
    rng = random.Random(seed)
    picks = rng.sample(range(loaded_patients), min(count, loaded_patients))
    return [find_documents_body(query_patient(n), port) for n in picks]


def register_templates(port: int, uid_mark: str) -> list[bytes]:
    """ITI-42 requests, one per writer patient: a new SubmissionSet + 1 DocumentEntry + HasMember.

    Object ids are symbolic (the registry assigns ``urn:uuid:`` ids); the uniqueIds contain ``uid_mark``, which
    the load generator replaces by a fresh number per request.
    """
    out = []
    for n in range(WRITER_PATIENTS):
        cx = writer_patient(n)
        de = samples.document_entry(cx, entry_id="Document01", unique_id=f"2.25.{uid_mark}1", title="Report")
        ss = samples.submission_set(cx, set_id="SubmissionSet01", unique_id=f"2.25.{uid_mark}2")
        sub = Submission(
            submission_sets=(ss,),
            document_entries=(de,),
            associations=(samples.has_member(ss.id, de.id, assoc_id="Association01"),),
        )
        out.append(
            request_envelope(
                action=v.ACTION_REGISTER,
                body=messages.render_submit_objects_request(sub),
                to=f"http://127.0.0.1:{port}/xds/registry",
            )
        )
    return out


# ---------------------------------------------------------------------------------------------------- floor


@dataclass
class FloorResult:
    """The in-process floor: parse the request, run the indexed select, serialise the same answer."""

    iterations: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    parse_p50_ms: float
    query_p50_ms: float
    render_p50_ms: float
    entries_per_answer: float
    answer_bytes: float
    threads: int = 1


def floor_once(store: SqlRegistryStore, body: bytes) -> tuple[bytes, int, float, float, float]:
    """One request through the floor path: (answer envelope, entries, parse s, query s, render s)."""
    t0 = time.perf_counter()
    env = parse_envelope(body)
    parsed = parse_query(messages.adhoc_query_request(env.body))
    t1 = time.perf_counter()
    objects = store.stored_query(parsed)
    t2 = time.perf_counter()
    answer = messages.adhoc_query_response(QueryResponse(leaf=tuple(o.xml for o in objects)))
    out = render_envelope(action=v.ACTION_STORED_QUERY_RESPONSE, body=answer, relates_to=env.message_id)
    t3 = time.perf_counter()
    return out, len(objects), t1 - t0, t2 - t1, t3 - t2


def measure_floor(
    store: SqlRegistryStore, bodies: Sequence[bytes], *, seconds: float, threads: int = 1, seed: int = 3
) -> FloorResult:
    """The floor over random ``bodies`` for about ``seconds`` (after a short warm-up), in ``threads`` threads.

    One thread is the plain floor. Several threads sharing the store is the floor under the same concurrency as
    the HTTP measurement (what the server's worker threads would do without HTTP, envelope I/O or the event loop).
    """
    for body in bodies[:50]:
        floor_once(store, body)
    samples: list[list[tuple[float, float, float, int, int]]] = [[] for _ in range(threads)]
    started = time.perf_counter()
    deadline = started + seconds

    def work(slot: int) -> None:
        rng = random.Random(seed + slot)
        mine = samples[slot]
        while time.perf_counter() < deadline or len(mine) < 100 // threads + 1:
            out, n, a, b, c = floor_once(store, rng.choice(bodies))
            mine.append((a, b, c, n, len(out)))

    if threads == 1:
        work(0)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(work, range(threads)))
    elapsed = time.perf_counter() - started
    flat = [x for per in samples for x in per]
    totals = sorted(a + b + c for a, b, c, _, _ in flat)
    it = len(totals)
    return FloorResult(
        iterations=it,
        seconds=round(elapsed, 3),
        rps=it / elapsed,
        p50_ms=statistics.median(totals) * 1000,
        p99_ms=totals[min(it - 1, round(0.99 * it) - 1)] * 1000,
        parse_p50_ms=statistics.median(x[0] for x in flat) * 1000,
        query_p50_ms=statistics.median(x[1] for x in flat) * 1000,
        render_p50_ms=statistics.median(x[2] for x in flat) * 1000,
        entries_per_answer=sum(x[3] for x in flat) / it,
        answer_bytes=sum(x[4] for x in flat) / it,
        threads=threads,
    )


def explain_find_documents(store: SqlRegistryStore, body: bytes) -> list[str]:
    """The database's plan for the FindDocuments select of ``body`` (captured SQL, re-run with EXPLAIN)."""
    captured: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        captured.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", grab)
    try:
        floor_once(store, body)
    finally:
        event.remove(store.engine, "before_cursor_execute", grab)
    if not captured:
        return []
    statement, parameters = captured[-1]
    prefix = "EXPLAIN QUERY PLAN " if store.engine.dialect.name == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + statement, parameters).fetchall()
    return [" | ".join(str(c) for c in row) for row in rows]


__all__ = [
    "ENTRIES_PER_PATIENT",
    "QUERY_CONTENT_TYPE",
    "REGISTER_CONTENT_TYPE",
    "FloorResult",
    "LoadStats",
    "analyze",
    "count_entries",
    "explain_find_documents",
    "feed_writer_patients",
    "find_documents_body",
    "floor_once",
    "load_patients",
    "measure_floor",
    "query_bodies",
    "query_patient",
    "register_templates",
]
