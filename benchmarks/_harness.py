"""What both benchmarks stand on: machine and process probes, a fresh database, ``xds serve`` as a subprocess,
the log line, running the setups, the result table and the results file.

- Probes read ``/proc``: the machine's busy jiffies, the CPU seconds of the serving processes (``xds serve
  --workers N`` serves from N children; one worker serves from the process itself), the load average.
- :func:`fresh_database`: a SQLite file in the work dir, or a new schema ``xds_bench_<random>`` on a PostgreSQL
  server (reached with ``options=-csearch_path=<schema>``), dropped at the end, also on failure.
- :class:`Server`: ``xds serve --config <toml> --port <free port> --workers N`` with ``XDS_DATABASE_URL``,
  logging to ``server.log`` in the work dir, waited for until ``GET /health`` is 200.
- :func:`run_setups` runs each setup (a backend, a worker count) in a work dir of its own under one temp dir,
  going on with the next when one fails; :func:`finish` writes ``results/<name>.json`` and says where.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _loadgen import Generator
from sqlalchemy import create_engine, make_url, text

RESULTS = Path(__file__).resolve().parent / "results"
XDS = Path(sys.executable).with_name("xds")


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------------ machine probes


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def proc_stat() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return total - idle, total


def pid_cpu(pid: int, tid: int | None = None) -> float:
    """CPU seconds (user + system) of process ``pid``, or of its thread ``tid``."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        parts = Path(path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def server_pids(pid: int) -> list[int]:
    """The processes that serve requests: ``pid`` itself, or its worker children (``xds serve --workers N``)."""
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        children = []
    workers = [c for c in children if b"resource_tracker" not in _cmdline(c)]  # multiprocessing's helper
    return workers or [pid]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its serving children."""
    return sum(pid_cpu(p) for p in {pid, *server_pids(pid)})


def background_busy(seconds: float = 1.0) -> float:
    """Machine CPU busy % (of all cores) over ``seconds`` while this benchmark is idle: the other agents' load."""
    b0, t0 = proc_stat()
    time.sleep(seconds)
    b1, t1 = proc_stat()
    return 100.0 * (b1 - b0) / max(1, t1 - t0)


@dataclass
class CpuWindow:
    """Machine and server CPU use over one measurement."""

    machine_busy_pct: float = 0.0
    server_cpu_pct: float = 0.0
    """Of one core (100 = one core fully busy), all serving processes together."""
    server_loop_thread_cpu_pct: float = 0.0
    """The server's main thread (the asyncio event loop: HTTP, envelope parsing, response writing)."""
    loadavg: list[float] = field(default_factory=list)


@contextmanager
def cpu_window(server_pid: int, w: CpuWindow | None = None) -> Iterator[CpuWindow]:
    """Fills ``w`` (or a new window) with the CPU use over the ``with`` block."""
    w = CpuWindow() if w is None else w
    b0, t0 = proc_stat()
    s0, m0, wall0 = tree_cpu_seconds(server_pid), pid_cpu(server_pid, server_pid), time.perf_counter()
    yield w
    b1, t1 = proc_stat()
    s1, m1, wall1 = tree_cpu_seconds(server_pid), pid_cpu(server_pid, server_pid), time.perf_counter()
    w.machine_busy_pct = round(100.0 * (b1 - b0) / max(1, t1 - t0), 1)
    w.server_cpu_pct = round(100.0 * (s1 - s0) / max(1e-9, wall1 - wall0), 1)
    w.server_loop_thread_cpu_pct = round(100.0 * (m1 - m0) / max(1e-9, wall1 - wall0), 1)
    w.loadavg = loadavg()


def machine_info(generator: str) -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "generator": generator,
        "loadavg_start": loadavg(),
    }


# ------------------------------------------------------------------------------------------------ databases


@contextmanager
def fresh_database(base: str, workdir: Path) -> Iterator[str]:
    """A SQLite file in ``workdir`` (``base`` empty), or a new schema on the PostgreSQL server ``base``, dropped
    afterwards, also on failure."""
    if not base:
        yield f"sqlite:///{workdir / 'registry.sqlite3'}"
        return
    schema = f"xds_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


# ---------------------------------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``xds serve`` as a subprocess on a free port, logs to a file."""

    def __init__(self, url: str, workdir: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.log_path = workdir / "server.log"
        config = workdir / "node.toml"
        config.write_text(
            "[node]\n"
            f'data_dir = "{workdir / "var"}"\n'
            'home_community_id = "urn:oid:1.3.6.1.4.1.21367.2017.2.6.99"\n'
            'repository_unique_id = "1.3.6.1.4.1.21367.2017.2.3.99"\n'
        )
        env = {**os.environ, "XDS_DATABASE_URL": url}
        env.pop("XDS_CONFIG", None)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                str(XDS),
                "serve",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> tuple[int, dict[str, Any]]:
        """``GET /health``: the HTTP status and the report."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    def wait_healthy(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until ``GET /health`` is 200; its report (node identities, backend, ...)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"xds serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                status, report = self.health()
                if status == 200:
                    return report
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"xds serve not healthy after {timeout} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


# -------------------------------------------------------------------------------------------------- results


def fmt(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e6:
        return f"{int(value):,}"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def cells(value: float, unit: str, target: str, met: bool | None) -> tuple[str, str, str]:
    """The value, target and met? cells of a result row."""
    return f"{fmt(value)} {unit}".strip(), target, "" if met is None else ("yes" if met else "NO")


def print_table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> None:
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))
    print()


# ---------------------------------------------------------------------------------------------------- a run

Setup = Callable[[Generator, Path], tuple[list[Any], dict[str, Any]]]
"""One setup: given the load generator and its work dir, its result rows and details."""


@dataclass
class Run:
    """What :func:`run_setups` collected: rows and details of the setups that finished, the failures."""

    started: datetime
    workroot: Path
    keep: bool
    machine: dict[str, Any]
    rows: list[Any] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def run_setups(prefix: str, generator: str, setups: Sequence[tuple[str, str, Setup]], *, keep: bool) -> Run:
    """Run each ``(label, dir name, setup)`` in ``<temp dir>/<dir name>`` (removed unless ``keep``); a setup that
    raises is logged and listed as failed, and the others run all the same."""
    workroot = Path(tempfile.mkdtemp(prefix=prefix))
    run = Run(datetime.now(UTC), workroot, keep, {})
    gen = Generator(generator, workroot)
    run.machine = info = machine_info(gen.name)
    log(f"generator {gen.name}; {info['nproc']} CPUs ({info['cpu_model']}); load average {info['loadavg_start']}")
    try:
        for label, name, setup in setups:
            workdir = workroot / name
            workdir.mkdir()
            try:
                rows, detail = setup(gen, workdir)
            except Exception as exc:  # report the other setups all the same
                log(f"{label}: FAILED: {type(exc).__name__}: {exc}")
                run.failed.append(f"{label}: {type(exc).__name__}: {exc}")
                continue
            run.rows += rows
            run.details.append(detail)
    finally:
        if not keep:
            shutil.rmtree(workroot, ignore_errors=True)
    info["loadavg_end"] = loadavg()
    return run


def finish(run: Run, name: str, *, options: dict[str, Any], targets: dict[str, Any], details_key: str) -> int:
    """Write ``results/<name>.json``, log where; the exit status (1 when a setup failed)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    payload = {
        "started": run.started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": options,
        "machine": run.machine,
        "targets": targets,
        "rows": [asdict(r) for r in run.rows],
        details_key: run.details,
        "failed": run.failed,
    }
    out.write_text(json.dumps(payload, indent=2))
    kept = f"; kept {run.workroot}" if run.keep else ""
    log(f"load average at end {run.machine['loadavg_end']}; results in {out}{kept}")
    return 1 if run.failed else 0
