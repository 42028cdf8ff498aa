"""Sample the running server with py-spy and sort the samples into buckets (where the time goes).

py-spy (``pip install py-spy``) samples every thread of the server from outside. Its idle detection does not
recognise every waiting thread, so stacks whose innermost frame is a known wait (a worker thread waiting for work,
the event loop waiting in epoll) are counted apart as "waiting", and the buckets are shares of the rest.
Without ``--native`` a call into C (lxml, sqlite3, the psycopg socket wait) is charged to the Python frame that
made it, which is what the buckets use: "DB driver call" is time inside the driver (including waiting for the
database), "XML parse" is lxml work called from xds.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

_WAITING = (
    "Condition.wait (threading.py",
    "EpollSelector.select (selectors.py",
    "Queue.get (queue.py",
)


def _has(*needles: str) -> Callable[[str, str], bool]:
    return lambda _stack, leaf: any(n in leaf for n in needles)


BUCKETS: list[tuple[str, Callable[[str, str], bool]]] = [
    ("DB connect (pool overflow churn)", lambda s, _l: "_sqlite_connect" in s or "DefaultDialect.connect" in s),
    (
        "DB driver call (sqlite3/psycopg, incl. waiting for the DB)",
        lambda _s, leaf: (
            any(n in leaf for n in ("do_execute", "fetchone", "fetchall", "psycopg/", "do_rollback"))
            or "do_close" in leaf
            or "do_ping" in leaf
        ),
    ),
    ("SQLAlchemy Core (statement build, cache key, results)", _has("sqlalchemy/")),
    (
        "XML: envelope + query parse (lxml) and answer render",
        _has("parser.py", "envelope.py", "decode.py", "sq_params", "ebrim/messages.py", "namespaces.py"),
    ),
    ("xds services + store (python)", _has("xds/store", "xds/registry", "xds/model")),
    ("logging (one JSON line per request)", _has("logging/", "xds/web/logs.py", "json/")),
    ("uvicorn + h11 (HTTP parsing, framing)", _has("h11/", "uvicorn/")),
    ("starlette (routing, request, response)", _has("starlette/")),
    ("threadpool hand-off (anyio, threading)", _has("anyio/", "threading.py", "concurrent/", "queue.py")),
    ("asyncio event loop + socket writes", _has("asyncio/", "selectors.py")),
    ("xds web adapter (soap.py, message ids)", _has("xds/web/", "xds/soap/", "uuid.py")),
]


def py_spy() -> str | None:
    """The py-spy binary (PATH, or next to this Python), or None."""
    found = shutil.which("py-spy")
    if found:
        return found
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else None


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


def summarize(raw: Path) -> dict[str, object]:
    """Bucket shares (% of non-waiting samples), the top innermost frames, and the waiting share."""
    buckets: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    active = waiting = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        leaf = stack.split(";")[-1]
        if leaf.startswith(_WAITING):
            waiting += n
            continue
        active += n
        leaves[leaf] += n
        for name, match in BUCKETS:
            if match(stack, leaf):
                buckets[name] += n
                break
        else:
            buckets["other"] += n
    share = {k: round(100.0 * v / active, 1) for k, v in buckets.most_common()} if active else {}
    top = [(k, round(100.0 * v / active, 1)) for k, v in leaves.most_common(15)] if active else []
    return {"active_samples": active, "waiting_samples": waiting, "buckets_pct": share, "top_frames_pct": top}


__all__ = ["BUCKETS", "py_spy", "start", "summarize"]
