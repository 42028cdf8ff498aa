"""Sample the running server with py-spy and sort the samples into buckets (where the time goes).

py-spy (``pip install py-spy``) samples every thread of the server from outside. Its idle detection does not
recognise every waiting thread, so stacks whose innermost frame is a known wait (a worker thread waiting for work,
the event loop waiting in epoll) are counted apart as "waiting", and the buckets are shares of the rest.
Without ``--native`` a call into C (lxml, sqlite3, the psycopg socket wait) is charged to the Python frame that
made it, which is what the buckets use: "DB driver call" is time inside the driver (including waiting for the
database), "XML parse" is lxml work called from xds.

:data:`BUCKETS` are the registry benchmark's; ``repository.py`` passes its own to :func:`profile_run`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _harness import log
from _loadgen import Generator, Workload

WAITING = (
    "Condition.wait (threading.py",
    "EpollSelector.select (selectors.py",
    "Queue.get (queue.py",
)
"""Innermost frames of a thread that waits (for work, for the network): counted apart, not in a bucket."""

Bucket = tuple[str, Callable[[str, str], bool]]
"""A bucket's name and its test of a sample's (whole stack, innermost frame)."""


def leaf_has(*needles: str) -> Callable[[str, str], bool]:
    """A bucket test: the innermost frame contains one of ``needles``."""
    return lambda _stack, leaf: any(n in leaf for n in needles)


BUCKETS: list[Bucket] = [
    ("DB connect (pool overflow churn)", lambda s, _l: "_sqlite_connect" in s or "DefaultDialect.connect" in s),
    (
        "DB driver call (sqlite3/psycopg, incl. waiting for the DB)",
        lambda _s, leaf: (
            any(n in leaf for n in ("do_execute", "fetchone", "fetchall", "psycopg/", "do_rollback"))
            or "do_close" in leaf
            or "do_ping" in leaf
        ),
    ),
    ("SQLAlchemy Core (statement build, cache key, results)", leaf_has("sqlalchemy/")),
    (
        "XML: envelope + query parse (lxml) and answer render",
        leaf_has("parser.py", "envelope.py", "decode.py", "sq_params", "ebrim/messages.py", "namespaces.py"),
    ),
    ("xds services + store (python)", leaf_has("xds/store", "xds/registry", "xds/model")),
    ("logging (one JSON line per request)", leaf_has("logging/", "xds/web/logs.py", "json/")),
    ("uvicorn + h11 (HTTP parsing, framing)", leaf_has("h11/", "uvicorn/")),
    ("starlette (routing, request, response)", leaf_has("starlette/")),
    ("threadpool hand-off (anyio, threading)", leaf_has("anyio/", "threading.py", "concurrent/", "queue.py")),
    ("asyncio event loop + socket writes", leaf_has("asyncio/", "selectors.py")),
    ("xds web adapter (soap.py, message ids)", leaf_has("xds/web/", "xds/soap/", "uuid.py")),
]


def py_spy() -> str | None:
    """The py-spy binary (PATH, or next to this Python), or None."""
    found = shutil.which("py-spy")
    if found:
        return found
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else None


def available() -> bool:
    """True when py-spy is installed; else says so on stderr (``--profile`` needs it)."""
    if py_spy() is not None:
        return True
    print("--profile needs py-spy (pip install py-spy)", file=sys.stderr)
    return False


def start(pid: int, seconds: float, out: Path, rate: int = 200) -> subprocess.Popen[bytes]:
    """Start ``py-spy record`` (raw collapsed stacks) of ``pid`` for ``seconds``."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    # --nonblocking: the default (stopping the process for every sample) cut the server's throughput ~3x here
    cmd = [exe, "record", "--nonblocking", "--format", "raw", "--rate", str(rate)]
    cmd += ["--duration", str(max(1, round(seconds)))]
    cmd += ["--pid", str(pid), "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def summarize(
    raw: Path, buckets: Sequence[Bucket] = BUCKETS, *, waiting: tuple[str, ...] = WAITING, top: int = 15
) -> dict[str, Any]:
    """Bucket shares (% of non-waiting samples; the first bucket that matches a sample takes it), the ``top``
    innermost frames, and the waiting share."""
    counts: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    active = idle = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        leaf = stack.split(";")[-1]
        if leaf.startswith(waiting):
            idle += n
            continue
        active += n
        leaves[leaf] += n
        for name, match in buckets:
            if match(stack, leaf):
                counts[name] += n
                break
        else:
            counts["other"] += n
    share = {k: round(100.0 * v / active, 1) for k, v in counts.most_common()} if active else {}
    frames = [(k, round(100.0 * v / active, 1)) for k, v in leaves.most_common(top)] if active else []
    return {"active_samples": active, "waiting_samples": idle, "buckets_pct": share, "top_frames_pct": frames}


def profile_run(
    gen: Generator,
    pid: int,
    port: int,
    work: Workload,
    *,
    concurrency: int,
    duration: float,
    raw: Path,
    label: str,
    buckets: Sequence[Bucket] = BUCKETS,
    waiting: tuple[str, ...] = WAITING,
    top: int = 15,
) -> dict[str, Any]:
    """An extra closed-loop run while py-spy samples ``pid`` (not one of the measurements): the raw stacks go
    to ``raw``, the bucket shares are logged and returned with the throughput while profiled."""
    raw.parent.mkdir(parents=True, exist_ok=True)
    log(f"{label}: py-spy on pid {pid} for {duration:.0f} s -> {raw.name}")
    spy = start(pid, duration + 1, raw)
    time.sleep(0.5)
    result = gen.run(port, work, concurrency=concurrency, duration=duration, warmup=0)
    _, err = spy.communicate(timeout=duration + 60)
    if spy.returncode != 0 or not raw.exists():
        return {"error": err.decode("utf-8", "replace")[-1000:]}
    summary = summarize(raw, buckets, waiting=waiting, top=top)
    for name, share in summary["buckets_pct"].items():
        log(f"{label}:   {share:5.1f}%  {name}")
    return {"raw": raw.name, "rps_while_profiled": result.rps, **summary}


__all__ = ["BUCKETS", "WAITING", "Bucket", "available", "leaf_has", "profile_run", "py_spy", "start", "summarize"]
