"""Registry benchmark: ITI-18 FindDocuments and ITI-42 over HTTP against the real node, with an in-process floor.

::

    python benchmarks/registry.py [--sizes 10000,100000] [--backends sqlite,postgresql] [--duration 10]
                                  [--concurrency 16] [--generator auto|wrk|python] [--quick]

For each backend (a fresh SQLite file in a temp dir; a fresh PostgreSQL schema, dropped at the end) and each size
(in increasing order, each topping up the previous): bulk-load DocumentEntries in-process (20 per patient), start
``xds serve`` as a subprocess, then measure

- ITI-18 FindDocuments LeafClass (statuses Approved, 20 entries per answer) at ``--concurrency`` keep-alive
  connections: req/s, p50, p99; and at one connection (p50 without queueing);
- the in-process floor for the same requests: parse the envelope and query, run the indexed select, render the
  same answer envelope (single thread: p50 and req/s);
- ITI-42 submissions/s (a new SubmissionSet + 1 DocumentEntry for an existing patient per request) at the same
  concurrency, counting Success and Failure.

Prints a table (backend, size, metric, value, target, met?) and writes JSON to
``benchmarks/results/registry-<timestamp>.json``. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _dataset as ds
import _profile
from _harness import (
    RESULTS,
    CpuWindow,
    Server,
    background_busy,
    cells,
    cpu_window,
    finish,
    fresh_database,
    log,
    print_table,
    run_setups,
)
from _loadgen import UID_MARK, Generator, LoadResult, Workload

from registry_schema import migrate
from xds.store.sql import SqlRegistryStore, make_engine

PG_BASE = os.environ.get("XDS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

TARGET_RPS = 1000.0
TARGET_P99_MS = 10.0
TARGET_RATIO = 2.0
TARGET_GROWTH = 1.25
QUERY_PATIENTS = 400
"""Distinct patients in the ITI-18 request mix."""


# ------------------------------------------------------------------------------------------------ sanity


def post(port: int, body: bytes, content_type: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/xds/registry", body=body, headers={"Content-Type": content_type})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def check_answers(port: int, queries: list[bytes], templates: list[bytes]) -> dict[str, Any]:
    """Sample a few answers before measuring: queries give Success with 20 entries; a submission succeeds."""
    sizes = []
    for body in queries[:3]:
        status, answer = post(port, body, ds.QUERY_CONTENT_TYPE)
        entries = answer.count(b"<rim:ExtrinsicObject ")
        if status != 200 or b"ResponseStatusType:Success" not in answer or entries != ds.ENTRIES_PER_PATIENT:
            raise RuntimeError(f"unexpected ITI-18 answer (HTTP {status}, {entries} entries): {answer[:1500]!r}")
        sizes.append(len(answer))
    probe = templates[0].replace(UID_MARK.encode(), str(uuid.uuid4().int).encode())
    status, answer = post(port, probe, ds.REGISTER_CONTENT_TYPE)
    if status != 200 or b"ResponseStatusType:Success" not in answer:
        raise RuntimeError(f"unexpected ITI-42 answer (HTTP {status}): {answer[:1500]!r}")
    return {"iti18_answer_bytes": sizes, "iti18_entries_per_answer": ds.ENTRIES_PER_PATIENT}


# -------------------------------------------------------------------------------------------------- results


@dataclass
class Row:
    backend: str
    size: int
    metric: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None


def print_rows(rows: list[Row]) -> None:
    print_table(
        ("backend", "size", "metric", "value", "target", "met?"),
        [(r.backend, f"{r.size:,}", r.metric, *cells(r.value, r.unit, r.target, r.met)) for r in rows],
    )


# ---------------------------------------------------------------------------------------------------- stages


@dataclass
class Options:
    sizes: list[int]
    backends: list[str]
    duration: float
    concurrency: int
    warmup: float
    c1_duration: float
    floor_seconds: float
    iti42_duration: float
    generator: str
    repeat: int = 1
    keep: bool = False
    profile: bool = False
    workers: int = 1
    stamp: str = ""


def measure(
    gen: Generator, server: Server, work: Workload, *, concurrency: int, duration: float, warmup: float
) -> tuple[LoadResult, CpuWindow, float]:
    idle = background_busy(1.0)
    with cpu_window(server.pid) as cpu:
        # the window includes the warm-up; the server share is what matters, and it is steady
        result = gen.run(server.port, work, concurrency=concurrency, duration=duration, warmup=warmup)
    return result, cpu, round(idle, 1)


def ratio_row(backend: str, size: int, metric: str, value: float) -> Row:
    return Row(backend, size, metric, value, "x", f"<= {TARGET_RATIO:.0f}", value <= TARGET_RATIO)


def profile_server(gen: Generator, server: Server, work: Workload, opts: Options, label: str) -> dict[str, Any]:
    """An extra ITI-18 run at the same concurrency while py-spy samples the server (not one of the measurements)."""
    raw = RESULTS / f"registry-{opts.stamp}-{label}.pyspy.txt"
    return _profile.profile_run(
        gen, server.pid, server.port, work, concurrency=opts.concurrency, duration=opts.duration, raw=raw, label=label
    )


def run_backend(backend: str, opts: Options, gen: Generator, workdir: Path) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    detail: dict[str, Any] = {"backend": backend, "sizes": {}}
    with fresh_database(PG_BASE if backend == "postgresql" else "", workdir) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        store = SqlRegistryStore(engine)
        ds.feed_writer_patients(store)
        server: Server | None = None
        loaded = 0
        p50_by_size: dict[int, float] = {}
        floor_by_size: dict[int, float] = {}
        try:
            for size in sorted(opts.sizes):
                want = size // ds.ENTRIES_PER_PATIENT
                log(f"{backend}: loading patients {loaded:,}..{want:,} ({(want - loaded) * 20:,} entries)")

                def progress(done: int, total: int) -> None:
                    if done % 20_000 == 0:
                        log(f"{backend}:   {done:,}/{total:,} entries")

                stats = ds.load_patients(store, loaded, want, progress=progress)
                loaded = want
                ds.analyze(engine)
                entries = ds.count_entries(engine)
                log(
                    f"{backend}: loaded {stats.entries:,} entries in {stats.seconds:.1f} s "
                    f"({stats.entries_per_s:,.0f} entries/s); registry holds {entries:,} entries"
                )
                rows.append(Row(backend, size, "load rate", stats.entries_per_s, "entries/s"))

                if server is None:
                    server = Server(url, workdir, opts.workers)
                    server.wait_healthy()
                    log(f"{backend}: xds serve pid {server.pid} on port {server.port}")
                queries = ds.query_bodies(loaded, QUERY_PATIENTS, server.port)
                templates = ds.register_templates(server.port, UID_MARK)
                sample = check_answers(server.port, queries, templates)
                plan = ds.explain_find_documents(store, queries[0])

                q_work = Workload(ds.QUERY_CONTENT_TYPE, tuple(queries))
                rounds: list[dict[str, Any]] = []
                for rnd in range(opts.repeat):
                    tag = f"{backend} {size:,} round {rnd + 1}/{opts.repeat}"
                    log(f"{tag}: ITI-18 at concurrency {opts.concurrency}")
                    r_q16, r_cpu16, r_idle16 = measure(
                        gen, server, q_work, concurrency=opts.concurrency, duration=opts.duration, warmup=opts.warmup
                    )
                    log(f"{tag}: ITI-18 at concurrency 1")
                    r_q1, r_cpu1, r_idle1 = measure(
                        gen, server, q_work, concurrency=1, duration=opts.c1_duration, warmup=min(1.0, opts.warmup)
                    )
                    log(f"{tag}: in-process floor")
                    r_floor = ds.measure_floor(store, queries, seconds=opts.floor_seconds)
                    log(f"{tag}: in-process floor in {opts.concurrency} threads")
                    r_floor_c = ds.measure_floor(store, queries, seconds=opts.floor_seconds, threads=opts.concurrency)
                    log(
                        f"{tag}: ITI-18 {r_q16.rps:,.0f} req/s p50 {r_q16.p50_ms:.1f} ms (background "
                        f"{r_idle16:.0f}%); c=1 p50 {r_q1.p50_ms:.2f} ms; floor p50 {r_floor.p50_ms:.2f} ms"
                    )
                    rounds.append(
                        {
                            "q16": (r_q16, r_cpu16, r_idle16),
                            "q1": (r_q1, r_cpu1, r_idle1),
                            "floor": r_floor,
                            "floor_c": r_floor_c,
                        }
                    )
                # best of the rounds, per measurement: other agents' load only ever makes numbers worse
                q16, cpu16, idle16 = max((r["q16"] for r in rounds), key=lambda m: m[0].rps)
                q1, cpu1, idle1 = min((r["q1"] for r in rounds), key=lambda m: m[0].p50_ms)
                floor = min((r["floor"] for r in rounds), key=lambda f: f.p50_ms)
                floor_c = max((r["floor_c"] for r in rounds), key=lambda f: f.rps)
                log(f"{backend} {size:,}: ITI-42 at concurrency {opts.concurrency}")
                r_work = Workload(ds.REGISTER_CONTENT_TYPE, tuple(templates), templated=True)
                r16, cpu42, idle42 = measure(
                    gen, server, r_work, concurrency=opts.concurrency, duration=opts.iti42_duration, warmup=1.0
                )
                prof = None
                if opts.profile and size == max(opts.sizes):
                    prof = profile_server(gen, server, q_work, opts, f"{backend}-{size}")
                c = opts.concurrency
                ok_q = q16.non_200 == 0 and q16.failure == 0 and q16.socket_errors == 0
                rows += [
                    Row(
                        backend,
                        size,
                        f"ITI-18 req/s (c={opts.concurrency})",
                        q16.rps,
                        "req/s",
                        f">= {TARGET_RPS:,.0f}",
                        q16.rps >= TARGET_RPS,
                    ),
                    Row(backend, size, f"ITI-18 p50 (c={opts.concurrency})", q16.p50_ms, "ms"),
                    Row(
                        backend,
                        size,
                        f"ITI-18 p99 (c={opts.concurrency})",
                        q16.p99_ms,
                        "ms",
                        f"<= {TARGET_P99_MS:.0f} ms",
                        q16.p99_ms <= TARGET_P99_MS,
                    ),
                    Row(
                        backend,
                        size,
                        "ITI-18 errors (non-200/Failure/socket)",
                        q16.non_200 + q16.failure + q16.socket_errors,
                        "",
                        "0",
                        ok_q,
                    ),
                    Row(backend, size, "ITI-18 p50 (c=1)", q1.p50_ms, "ms"),
                    Row(backend, size, "ITI-18 req/s (c=1)", q1.rps, "req/s"),
                    Row(backend, size, f"server CPU during ITI-18 (c={c})", cpu16.server_cpu_pct, "% of 1 core"),
                    Row(
                        backend,
                        size,
                        f"  of which event-loop thread (c={c})",
                        cpu16.server_loop_thread_cpu_pct,
                        "% of 1 core",
                    ),
                    Row(backend, size, f"machine busy during ITI-18 (c={c})", cpu16.machine_busy_pct, "% of all cores"),
                    Row(backend, size, "machine busy before ITI-18 (idle bench)", idle16, "% of all cores"),
                    Row(backend, size, "floor p50 (in-process, 1 thread)", floor.p50_ms, "ms"),
                    Row(backend, size, "floor req/s (1 thread)", floor.rps, "req/s"),
                    Row(backend, size, f"floor p50 ({opts.concurrency} threads)", floor_c.p50_ms, "ms"),
                    Row(backend, size, f"floor req/s ({opts.concurrency} threads)", floor_c.rps, "req/s"),
                    ratio_row(backend, size, f"ratio p50 HTTP(c={c}) / floor(1 thread)", q16.p50_ms / floor.p50_ms),
                    ratio_row(backend, size, "ratio p50 HTTP(c=1) / floor(1 thread)", q1.p50_ms / floor.p50_ms),
                    ratio_row(
                        backend, size, f"ratio p50 HTTP(c={c}) / floor({c} threads)", q16.p50_ms / floor_c.p50_ms
                    ),
                    ratio_row(backend, size, f"ratio req/s floor(1 thread) / HTTP(c={c})", floor.rps / q16.rps),
                    Row(backend, size, f"ITI-42 submissions/s (c={opts.concurrency})", r16.rps, "sub/s"),
                    Row(backend, size, "ITI-42 p50", r16.p50_ms, "ms"),
                    Row(
                        backend,
                        size,
                        "ITI-42 Failure + non-200",
                        r16.failure + r16.socket_errors,
                        "",
                        "0",
                        r16.failure == 0 and r16.socket_errors == 0,
                    ),
                ]
                p50_by_size[size] = q16.p50_ms
                floor_by_size[size] = floor.p50_ms
                detail["sizes"][str(size)] = {
                    "entries_in_registry": entries,
                    "patients_loaded": loaded,
                    "load": asdict(stats) | {"entries_per_s": stats.entries_per_s},
                    "sample": sample,
                    "plan": plan,
                    "iti18_c": q16.as_dict() | {"cpu": asdict(cpu16), "background_busy_pct": idle16},
                    "iti18_c1": q1.as_dict() | {"cpu": asdict(cpu1), "background_busy_pct": idle1},
                    "floor": asdict(floor),
                    "floor_c": asdict(floor_c),
                    "rounds": [
                        {
                            "iti18_c": r["q16"][0].as_dict() | {"background_busy_pct": r["q16"][2]},
                            "iti18_c1": r["q1"][0].as_dict() | {"background_busy_pct": r["q1"][2]},
                            "floor": asdict(r["floor"]),
                            "floor_c": asdict(r["floor_c"]),
                        }
                        for r in rounds
                    ],
                    "iti42_c": r16.as_dict() | {"cpu": asdict(cpu42), "background_busy_pct": idle42},
                    "profile": prof,
                }
                log(
                    f"{backend} {size:,}: ITI-18 {q16.rps:,.0f} req/s p50 {q16.p50_ms:.2f} ms "
                    f"p99 {q16.p99_ms:.2f} ms (server CPU {cpu16.server_cpu_pct:.0f}%, machine "
                    f"{cpu16.machine_busy_pct:.0f}%, idle-bench {idle16:.0f}%); c=1 p50 {q1.p50_ms:.2f} ms; "
                    f"floor p50 {floor.p50_ms:.2f} ms {floor.rps:,.0f} req/s, in {c} threads {floor_c.rps:,.0f} req/s; "
                    f"ITI-42 {r16.rps:,.0f}/s "
                    f"({r16.success} ok, {r16.failure} failed)"
                )
            if len(p50_by_size) > 1:
                small, large = min(p50_by_size), max(p50_by_size)
                growth = p50_by_size[large] / p50_by_size[small]
                rows.append(
                    Row(
                        backend,
                        large,
                        f"ITI-18 p50 growth {small:,} -> {large:,}",
                        growth,
                        "x",
                        f"<= {TARGET_GROWTH}",
                        growth <= TARGET_GROWTH,
                    )
                )
                fg = floor_by_size[large] / floor_by_size[small]
                rows.append(Row(backend, large, f"floor p50 growth {small:,} -> {large:,}", fg, "x"))
        finally:
            if server is not None:
                detail["server_log_tail"] = server.log_tail(1500)
                server.stop()
            engine.dispose()
    return rows, detail


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000", help="DocumentEntry counts, comma-separated")
    p.add_argument("--backends", default="sqlite,postgresql", help="sqlite, postgresql or both")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per ITI-18 measurement (default 10)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of (ITI-18 c=N, ITI-18 c=1, floor) per size; the best of each is reported (noisy machines)",
    )
    p.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk if installed (auto), or the Python asyncio fallback",
    )
    p.add_argument("--quick", action="store_true", help="smoke check: sizes 1000, duration 2")
    p.add_argument("--workers", type=int, default=1, help="xds serve worker processes (default 1)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (SQLite file, server log)")
    p.add_argument(
        "--profile",
        action="store_true",
        help="at the largest size, sample the server with py-spy during an extra ITI-18 run",
    )
    a = p.parse_args(argv)
    sizes = [1000] if a.quick else [int(s) for s in a.sizes.split(",") if s.strip()]
    duration = 2.0 if a.quick else a.duration
    backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    for b in backends:
        if b not in ("sqlite", "postgresql"):
            p.error(f"unknown backend {b!r}")
    for s in sizes:
        if s < ds.ENTRIES_PER_PATIENT * 10:
            p.error(f"size {s} is too small (at least {ds.ENTRIES_PER_PATIENT * 10})")
    return Options(
        sizes=sizes,
        backends=backends,
        duration=duration,
        concurrency=a.concurrency,
        warmup=1.0 if a.quick else 2.0,
        c1_duration=1.0 if a.quick else max(1.0, duration / 2),
        floor_seconds=1.0 if a.quick else max(1.0, duration / 2),
        iti42_duration=1.0 if a.quick else 5.0,
        generator=a.generator,
        repeat=max(1, a.repeat),
        keep=a.keep,
        profile=a.profile,
        workers=max(1, a.workers),
        stamp=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.profile and not _profile.available():
        return 2
    setups = [(backend, backend, partial(run_backend, backend, opts)) for backend in opts.backends]
    run = run_setups("xds-bench-", opts.generator, setups, keep=opts.keep)
    if opts.repeat > 1:
        print(f"\nITI-18 and floor rows: best of {opts.repeat} rounds (all rounds are in the JSON)")
    print_rows(run.rows)
    return finish(
        run,
        f"registry-{opts.stamp}",
        options=asdict(opts),
        targets={
            "iti18_rps": TARGET_RPS,
            "iti18_p99_ms": TARGET_P99_MS,
            "ratio_to_floor": TARGET_RATIO,
            "p50_growth": TARGET_GROWTH,
            "applies_to": "PostgreSQL at 100k entries (shown for every row)",
        },
        details_key="backends",
    )


if __name__ == "__main__":
    sys.exit(main())
