"""Repository benchmark: ITI-41 and ITI-43 over HTTP against the real node, with an in-process floor.

::

    python benchmarks/repository.py [--workers 1,2] [--database-url postgresql+psycopg://...] [--duration 10]
                                    [--concurrency 16] [--retrieve-concurrency 1,16] [--document-kib 100]
                                    [--big-mib 200] [--generator auto|wrk|python] [--profile] [--keep] [--quick]

For each worker count: a fresh database (a SQLite file in a temp dir, or a fresh schema on the PostgreSQL
server of ``--database-url``, dropped at the end), patients fed in-process, ``xds serve --workers N`` started
as a subprocess; then

- ITI-41 Provide and Register, one ``--document-kib`` KiB document per submission (new content and uniqueIds
  every time) at ``--concurrency`` keep-alive connections: submissions/s, p50, p99. An answer is a durable
  acknowledgement: the node answers after fsync, commit and rename;
- ITI-43 Retrieve of 1 MiB documents (64 preloaded, one per request) at each ``--retrieve-concurrency``: MB/s
  (10^6 bytes of document per second) and latency;
- one ``--big-mib`` MiB document streamed in (ITI-41) and out (ITI-43): growth of the server processes' RSS;
- the floor, in this process and on the same file system: SHA-1 + SHA-256 + write + fsync of the same
  document bytes per submission, and reading the server's own 1 MiB object files back.

Prints a table (setup, metric, value, target, met?) with the ratios to the floor and writes JSON to
``benchmarks/results/repository-<timestamp>.json``. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _profile
import _repository_io as rio
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
    server_pids,
)
from _loadgen import Generator, LoadResult, Workload

from registry_schema import migrate
from xds.client import SoapClient
from xds.store.sql import SqlRegistryStore, make_engine

TARGET_SUBMISSIONS = 300.0
TARGET_RETRIEVE_MB_S = 400.0
TARGET_RSS_MIB = 32.0
RETRIEVE_MIB = 1


@dataclass
class Options:
    workers: list[int]
    database_url: str
    duration: float
    warmup: float
    concurrency: int
    retrieve_concurrency: list[int]
    document_kib: int
    retrieve_documents: int
    big_mib: int
    floor_seconds: float
    generator: str
    profile: bool = False
    keep: bool = False
    stamp: str = ""

    @property
    def backend(self) -> str:
        return "postgresql" if self.database_url else "sqlite"


@dataclass
class Row:
    setup: str
    metric: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None


def print_rows(rows: list[Row]) -> None:
    print_table(
        ("setup", "metric", "value", "target", "met?"),
        [(r.setup, r.metric, *cells(r.value, r.unit, r.target, r.met)) for r in rows],
    )


# ------------------------------------------------------------------------------------------------ databases


def prepare(url: str) -> None:
    """Migrate and feed the benchmark patients."""
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        store = SqlRegistryStore(engine)
        for n in range(rio.PATIENTS):
            store.add_patient(str(rio.patient(n)))
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------- measuring


@dataclass
class Window(CpuWindow):
    """CPU use over one measurement (the server's processes, the machine) and the machine's before it."""

    busy_before_pct: float = 0.0


def measure(
    gen: Generator, server: Server, work: Workload, *, concurrency: int, opts: Options
) -> tuple[LoadResult, Window]:
    """Warm up, note the machine's load while idle, then one closed-loop run with its CPU window."""
    gen.run(server.port, work, concurrency=concurrency, duration=opts.warmup, warmup=0)
    window = Window(busy_before_pct=round(background_busy(1.0), 1))
    with cpu_window(server.pid, window):
        result = gen.run(server.port, work, concurrency=concurrency, duration=opts.duration, warmup=0)
    return result, window


def errors(r: LoadResult) -> int:
    return r.failure + r.socket_errors + r.non_200


def big_transfer(soap: SoapClient, pid: int, repository: str, workdir: Path, mib: int) -> dict[str, Any]:
    """One ``mib`` MiB document in and out, streamed from and to files; server RSS growth each way."""
    source, back = workdir / "big.bin", workdir / "big-back"
    back.mkdir()
    sha256 = rio.make_file(source, mib)
    pids = server_pids(pid)
    try:
        t0 = time.perf_counter()
        with rio.RssWatch(pids) as inbound:
            uid = rio.provide(soap, [source], rio.patient(2))[0]
        t1 = time.perf_counter()
        source.unlink()
        with rio.RssWatch(pids) as outbound:
            document = rio.retrieve_file(soap, repository, uid, back)
        t2 = time.perf_counter()
        if (document.size, rio.sha256_file(document.path)) != (mib * rio.MIB, sha256):
            raise RuntimeError("the big document came back with other bytes")
    finally:
        source.unlink(missing_ok=True)
        shutil.rmtree(back, ignore_errors=True)
    return {
        "mib": mib,
        "in": inbound.as_dict() | {"seconds": round(t1 - t0, 2), "mb_per_s": mib * rio.MIB / (t1 - t0) / 1e6},
        "out": outbound.as_dict() | {"seconds": round(t2 - t1, 2), "mb_per_s": mib * rio.MIB / (t2 - t1) / 1e6},
    }


# ---------------------------------------------------------------------------------------------- profiling

WAITING = (*_profile.WAITING, "wait (threading.py")

BUCKETS: list[_profile.Bucket] = [
    ("fsync of staged files (FileDocumentStore.sync)", _profile.leaf_has("sync (xds/store/documents.py")),
    ("document bytes: hash + write (StagedFile.write)", _profile.leaf_has("write (xds/store/documents.py")),
    (
        "publish / discard (rename, unlink)",
        _profile.leaf_has("publish (xds/store/documents.py", "discard (xds/store/documents.py"),
    ),
    ("MTOM parsing (python_multipart + xds/soap/mtom.py)", _profile.leaf_has("python_multipart/", "xds/soap/mtom.py")),
    (
        "DB driver (execute, commit; incl. waiting for the DB)",
        _profile.leaf_has("do_execute", "do_commit", "do_rollback", "psycopg/", "fetchall", "fetchone"),
    ),
    ("SQLAlchemy Python", _profile.leaf_has("sqlalchemy/")),
    (
        "XML: envelope/metadata parse, validation, encode",
        _profile.leaf_has("xds/ebrim/", "xds/soap/envelope.py", "xds/validation.py", "xds/model/", "lxml"),
    ),
    (
        "registry + repository services, store (python)",
        _profile.leaf_has("xds/registry/", "xds/store/", "xds/repository/"),
    ),
    ("uvicorn + httptools (HTTP)", _profile.leaf_has("uvicorn/", "httptools")),
    ("starlette", _profile.leaf_has("starlette/")),
    (
        "threadpool (anyio to_thread, incl. the file reads it runs)",
        _profile.leaf_has("anyio/", "threading.py", "concurrent/", "queue.py"),
    ),
    ("asyncio event loop + socket writes", _profile.leaf_has("asyncio/", "selectors.py", "uvloop")),
    ("logging", _profile.leaf_has("logging/", "json/", "xds/web/logs.py")),
    ("xds web adapter (soap.py, repository.py)", _profile.leaf_has("xds/web/", "uuid.py")),
]
"""Where the repository's time goes; the first bucket whose needles the innermost frame holds takes a sample."""


def profile(
    gen: Generator, server: Server, work: Workload, concurrency: int, opts: Options, label: str
) -> dict[str, Any]:
    """py-spy on the (first) serving process during an extra run; not one of the measurements."""
    return _profile.profile_run(
        gen,
        server_pids(server.pid)[0],
        server.port,
        work,
        concurrency=concurrency,
        duration=opts.duration,
        raw=RESULTS / f"repository-{opts.stamp}-{label}.pyspy.txt",
        label=label,
        buckets=BUCKETS,
        waiting=WAITING,
        top=20,
    )


# ------------------------------------------------------------------------------------------------- a setup


def run_setup(workers: int, opts: Options, gen: Generator, workdir: Path) -> tuple[list[Row], dict[str, Any]]:
    setup = f"{opts.backend} w={workers}"
    rows: list[Row] = []
    detail: dict[str, Any] = {"setup": setup, "workers": workers, "backend": opts.backend}
    c = opts.concurrency
    with fresh_database(opts.database_url, workdir) as url:
        prepare(url)
        server = Server(url, workdir, workers)
        soap = rio.client(server.port)
        try:
            repository = str(server.wait_healthy()["repository_unique_id"])
            log(f"{setup}: xds serve pid {server.pid} (serving: {server_pids(server.pid)}) port {server.port}")

            probe = rio.text_document(opts.document_kib * 1024, seed=99)
            uid = rio.provide(soap, [probe], rio.patient(0))[0]
            back = rio.retrieve_file(soap, repository, uid, workdir)
            if rio.sha256_file(back.path) != hashlib.sha256(probe).hexdigest():
                raise RuntimeError("sanity check: ITI-43 returned other bytes than ITI-41 stored")
            back.path.unlink()

            log(f"{setup}: ITI-41 ({opts.document_kib} KiB documents) at concurrency {c}")
            templates = tuple(rio.provide_templates(server.port, opts.document_kib))
            provide = Workload(rio.PROVIDE_CONTENT_TYPE, templates, templated=True, path=rio.PATH)
            r41, w41 = measure(gen, server, provide, concurrency=c, opts=opts)
            log(f"{setup}: ITI-41 {r41.rps:,.0f} sub/s p50 {r41.p50_ms:.1f} ms, {errors(r41)} errors")

            rng = random.Random(43)
            documents = [rng.randbytes(RETRIEVE_MIB * rio.MIB) for _ in range(opts.retrieve_documents)]
            uids = rio.provide(soap, documents, rio.patient(1))
            bodies = tuple(rio.retrieve_bodies(server.port, repository, uids))
            retrieve = Workload(rio.RETRIEVE_CONTENT_TYPE, bodies, path=rio.PATH)
            r43: dict[int, tuple[LoadResult, Window]] = {}
            for rc in opts.retrieve_concurrency:
                log(f"{setup}: ITI-43 ({RETRIEVE_MIB} MiB documents) at concurrency {rc}")
                r43[rc] = measure(gen, server, retrieve, concurrency=rc, opts=opts)
                log(f"{setup}: ITI-43 c={rc} {r43[rc][0].rps * RETRIEVE_MIB * rio.MIB / 1e6:,.0f} MB/s")

            log(f"{setup}: one {opts.big_mib} MiB document in and out")
            big = big_transfer(soap, server.pid, repository, workdir, opts.big_mib)
            log(f"{setup}: RSS growth in {big['in']['growth_mib']:.1f} MiB, out {big['out']['growth_mib']:.1f} MiB")

            log(f"{setup}: floor")
            floor_dir = workdir / "floor"
            content = rio.text_document(opts.document_kib * 1024, seed=7)
            f41 = rio.floor_submissions(floor_dir, content, seconds=opts.floor_seconds)
            f41c = rio.floor_submissions(floor_dir, content, seconds=opts.floor_seconds, threads=c)
            objects = workdir / "var" / "documents" / "objects"
            files = [objects / h[:2] / h for h in (hashlib.sha256(d).hexdigest() for d in documents)]
            f43 = {
                rc: rio.floor_reads(files, seconds=opts.floor_seconds, threads=rc)
                for rc in {1, *opts.retrieve_concurrency}
            }

            prof: dict[str, Any] = {}
            if opts.profile:
                prof["iti41"] = profile(gen, server, provide, c, opts, f"{opts.backend}-w{workers}-iti41")
                top = max(opts.retrieve_concurrency)
                prof["iti43"] = profile(gen, server, retrieve, top, opts, f"{opts.backend}-w{workers}-iti43")
        finally:
            soap.close()
            detail["server_log_tail"] = server.log_tail(1500)
            server.stop()

    rows += [
        Row(
            setup,
            f"ITI-41 submissions/s (c={c})",
            r41.rps,
            "sub/s",
            f">= {TARGET_SUBMISSIONS:.0f}",
            r41.rps >= TARGET_SUBMISSIONS,
        ),
        Row(setup, f"ITI-41 p50 (c={c})", r41.p50_ms, "ms"),
        Row(setup, f"ITI-41 p99 (c={c})", r41.p99_ms, "ms"),
        Row(setup, "ITI-41 errors (Failure/non-200/socket)", errors(r41), "", "0", errors(r41) == 0),
        Row(setup, f"server CPU during ITI-41 (c={c})", w41.server_cpu_pct, "% of 1 core"),
        Row(setup, "machine busy during / before ITI-41", w41.machine_busy_pct, f"% / {w41.busy_before_pct:.0f}%"),
        Row(setup, "floor sub/s (hash+write+fsync, 1 thread)", f41.ops_per_s, "ops/s"),
        Row(setup, "floor p50 (1 thread)", f41.p50_ms, "ms"),
        Row(setup, f"floor sub/s ({c} threads)", f41c.ops_per_s, "ops/s"),
        Row(setup, f"floor p50 ({c} threads)", f41c.p50_ms, "ms"),
        Row(setup, f"ratio sub/s floor(1 thread) / HTTP(c={c})", f41.ops_per_s / r41.rps, "x"),
        Row(setup, f"ratio sub/s floor({c} threads) / HTTP(c={c})", f41c.ops_per_s / r41.rps, "x"),
        Row(setup, f"ratio p50 HTTP(c={c}) / floor({c} threads)", r41.p50_ms / f41c.p50_ms, "x"),
    ]
    for rc, (r, w) in r43.items():
        mbs = r.rps * RETRIEVE_MIB * rio.MIB / 1e6
        floor = f43[rc]
        rows += [
            Row(
                setup,
                f"ITI-43 MB/s (c={rc})",
                mbs,
                "MB/s",
                f">= {TARGET_RETRIEVE_MB_S:.0f}",
                mbs >= TARGET_RETRIEVE_MB_S,
            ),
            Row(setup, f"ITI-43 p50 / p99 (c={rc})", r.p50_ms, f"ms / {r.p99_ms:.1f} ms"),
            Row(setup, f"ITI-43 errors (c={rc})", errors(r), "", "0", errors(r) == 0),
            Row(setup, f"server CPU during ITI-43 (c={rc})", w.server_cpu_pct, "% of 1 core"),
            Row(setup, f"floor read MB/s ({rc} thread{'s' if rc > 1 else ''})", floor.mb_per_s, "MB/s"),
            Row(setup, f"ratio MB/s floor({rc}) / HTTP(c={rc})", floor.mb_per_s / mbs, "x"),
        ]
    for way, what in (("in", "ITI-41"), ("out", "ITI-43")):
        growth = big[way]["growth_mib"]
        rows += [
            Row(
                setup,
                f"RSS growth, {opts.big_mib} MiB {way} ({what})",
                growth,
                "MiB",
                f"<= {TARGET_RSS_MIB:.0f} MiB",
                growth <= TARGET_RSS_MIB,
            ),
            Row(setup, f"  {opts.big_mib} MiB {way}: throughput", big[way]["mb_per_s"], "MB/s"),
        ]
    detail |= {
        "iti41": r41.as_dict() | {"cpu": asdict(w41), "document_kib": opts.document_kib},
        "iti43": {
            str(rc): r.as_dict() | {"cpu": asdict(w), "document_mib": RETRIEVE_MIB} for rc, (r, w) in r43.items()
        },
        "big": big,
        "floor_submissions": [asdict(f41), asdict(f41c)],
        "floor_reads": {str(rc): asdict(f) for rc, f in f43.items()},
        "profile": prof,
    }
    return rows, detail


# --------------------------------------------------------------------------------------------------- main


def _ints(value: str) -> list[int]:
    return [int(x) for x in value.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", default="1", help="xds serve worker counts, comma-separated (default 1)")
    p.add_argument("--database-url", default="", help="PostgreSQL server (a fresh schema is used); default SQLite")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    p.add_argument("--concurrency", type=int, default=16, help="ITI-41 connections (default 16)")
    p.add_argument("--retrieve-concurrency", default="1,16", help="ITI-43 connection counts (default 1,16)")
    p.add_argument("--document-kib", type=int, default=100, help="ITI-41 document size (default 100 KiB)")
    p.add_argument("--big-mib", type=int, default=200, help="size of the in/out memory check (default 200 MiB)")
    p.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--profile", action="store_true", help="sample the server with py-spy during extra runs")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (database, documents, server log)")
    p.add_argument("--quick", action="store_true", help="smoke check: 2 s runs, 16 retrieve documents, 64 MiB")
    a = p.parse_args(argv)
    return Options(
        workers=_ints(a.workers),
        database_url=a.database_url,
        duration=2.0 if a.quick else a.duration,
        warmup=0.5 if a.quick else 1.0,
        concurrency=a.concurrency,
        retrieve_concurrency=_ints(a.retrieve_concurrency),
        document_kib=a.document_kib,
        retrieve_documents=16 if a.quick else 64,
        big_mib=64 if a.quick else a.big_mib,
        floor_seconds=1.0 if a.quick else max(1.0, a.duration / 2),
        generator=a.generator,
        profile=a.profile,
        keep=a.keep,
        stamp=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.profile and not _profile.available():
        return 2
    setups = [(f"{opts.backend} w={w}", f"w{w}", partial(run_setup, w, opts)) for w in opts.workers]
    run = run_setups("xds-bench-repo-", opts.generator, setups, keep=opts.keep)
    print_rows(run.rows)
    database_url = make_url(opts.database_url).render_as_string() if opts.database_url else ""
    return finish(
        run,
        f"repository-{opts.stamp}",
        options=asdict(opts) | {"database_url": database_url},
        targets={
            "iti41_submissions_per_s": TARGET_SUBMISSIONS,
            "iti43_mb_per_s": TARGET_RETRIEVE_MB_S,
            "rss_growth_mib": TARGET_RSS_MIB,
        },
        details_key="setups",
    )


if __name__ == "__main__":
    sys.exit(main())
