"""HTTP load generators for the registry benchmark: ``wrk`` with a Lua script, or a raw-asyncio fallback.

Both are closed-loop generators: ``concurrency`` keep-alive HTTP/1.1 connections, each sending the next POST as
soon as the previous answer is read. Both count HTTP statuses other than 200 and answers whose body does not
carry ``ResponseStatusType:Success`` (the registry answers XDS errors with HTTP 200 and status Failure).

Request bodies are either a fixed list (one is picked at random per request) or a list of templates in which
``@@UID@@`` is replaced per request by a unique decimal string (ITI-42: every submission needs new uniqueIds).
They are POSTed to the workload's ``path`` (the registry's by default).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

SUCCESS_MARK = b"ResponseStatusType:Success"
UID_MARK = "@@UID@@"
PATH = "/xds/registry"


@dataclass(frozen=True, slots=True)
class Workload:
    """What to send: a content type, and bodies (``templated``: bodies contain :data:`UID_MARK`)."""

    content_type: str
    bodies: tuple[bytes, ...]
    templated: bool = False
    path: str = PATH


@dataclass(frozen=True, slots=True)
class LoadResult:
    """One closed-loop measurement."""

    generator: str
    concurrency: int
    duration_s: float
    requests: int
    success: int
    failure: int
    non_200: int
    socket_errors: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    generator_cpu_s: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def have_wrk() -> bool:
    """True when the ``wrk`` binary is on PATH."""
    return shutil.which("wrk") is not None


# --------------------------------------------------------------------------------------------------- wrk


_LUA_ESCAPE = re.compile(r'[\x00-\x1f\x7f"\\]')


def _lua_long_string(data: bytes) -> str:
    text = data.decode("utf-8")
    if "\r" in text:
        # a long bracket turns CRLF into LF (MIME bodies need their CRLFs): a quoted string with \ddd escapes
        return '"' + _LUA_ESCAPE.sub(lambda m: f"\\{ord(m.group()):03d}", text) + '"'
    level = 1
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    # a long bracket skips a first newline; the bodies start with '<' so nothing is lost
    return f"[{eq}[{text}]{eq}]"


_WRK_SCRIPT = r"""
local bodies = {
%(bodies)s
}
local templated = %(templated)s
local uid_prefix = "1"
local path = "%(path)s"
local headers = { ["Content-Type"] = %(content_type)s }
local threads = {}
local next_id = 1

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  if args[1] then uid_prefix = args[1] end
  math.randomseed(os.time() * 1000 + tid)
  counter = 0
  ok = 0
  bad = 0
end

function request()
  local body = bodies[math.random(#bodies)]
  if templated then
    counter = counter + 1
    local uid = string.format("%%s%%d%%09d", uid_prefix, tid, counter)
    body = string.gsub(body, "@@UID@@", uid)
  end
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if status == 200 and string.find(body, "ResponseStatusType:Success", 1, true) then
    ok = ok + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local ok_total, bad_total = 0, 0
  for _, t in ipairs(threads) do
    ok_total = ok_total + (t:get("ok") or 0)
    bad_total = bad_total + (t:get("bad") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"success":%%d,"failure":%%d,"non_200":%%d,' ..
    '"socket_errors":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d,"mean_us":%%f}\n',
    summary.requests, summary.duration, ok_total, bad_total, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def write_wrk_script(work: Workload, directory: Path) -> Path:
    """The Lua script for ``work`` (bodies embedded as Lua long strings)."""
    script = _WRK_SCRIPT % {
        "bodies": ",\n".join(_lua_long_string(b) for b in work.bodies),
        "templated": "true" if work.templated else "false",
        "path": work.path,
        "content_type": json.dumps(work.content_type),
    }
    fd, name = tempfile.mkstemp(prefix="wrk-", suffix=".lua", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(script)
    return Path(name)


def _run_prefix() -> str:
    """Leading digits of the uids one run generates: random per run, so uids never repeat across runs."""
    return str(random.SystemRandom().randrange(10**8, 10**9))


def _children_cpu() -> float:
    ru = os.times()
    return ru.children_user + ru.children_system


def run_wrk(script: Path, port: int, *, concurrency: int, duration: float) -> LoadResult:
    """Run ``wrk`` for ``duration`` seconds at ``concurrency`` connections (2 threads, or 1 for one connection)."""
    threads = min(2, concurrency)
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{PATH}",
        "--",
        _run_prefix(),
    ]
    cpu0 = _children_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    cpu = _children_cpu() - cpu0
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    d = json.loads(line[len("WRKJSON ") :])
    secs = d["duration_us"] / 1e6
    return LoadResult(
        generator="wrk",
        concurrency=concurrency,
        duration_s=round(secs, 3),
        requests=d["requests"],
        success=d["success"],
        failure=d["failure"],
        non_200=d["non_200"],
        socket_errors=d["socket_errors"],
        rps=d["requests"] / secs if secs else 0.0,
        p50_ms=d["p50_us"] / 1000,
        p90_ms=d["p90_us"] / 1000,
        p99_ms=d["p99_us"] / 1000,
        max_ms=d["max_us"] / 1000,
        mean_ms=d["mean_us"] / 1000,
        generator_cpu_s=round(cpu, 3),
    )


# ----------------------------------------------------------------------------------------- asyncio fallback


def _http_request(port: int, content_type: str, body: bytes, path: str = PATH) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode("latin-1") + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length) if length else b""


@dataclass
class _Tally:
    latencies: list[float]
    requests: int = 0
    success: int = 0
    non_200: int = 0
    socket_errors: int = 0


async def _worker(port: int, work: Workload, wid: int, deadline: float, tally: _Tally | None) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    rng = random.Random(wid * 7919 + time.time_ns())
    fixed = [_http_request(port, work.content_type, b, work.path) for b in work.bodies] if not work.templated else []
    counter = 0
    prefix = _run_prefix()
    try:
        while time.perf_counter() < deadline:
            if work.templated:
                counter += 1
                uid = f"{prefix}{wid}{counter:09d}".encode()
                body = rng.choice(work.bodies).replace(UID_MARK.encode(), uid)
                req = _http_request(port, work.content_type, body, work.path)
            else:
                req = rng.choice(fixed)
            t0 = time.perf_counter()
            writer.write(req)
            status, body = await _read_response(reader)
            elapsed = time.perf_counter() - t0
            if tally is None:
                continue
            tally.latencies.append(elapsed)
            tally.requests += 1
            if status != 200:
                tally.non_200 += 1
            elif SUCCESS_MARK in body[:4096]:
                tally.success += 1
    except (OSError, asyncio.IncompleteReadError):
        if tally is not None:
            tally.socket_errors += 1
    finally:
        writer.close()


async def _run_python(port: int, work: Workload, concurrency: int, duration: float, record: bool) -> _Tally:
    tally = _Tally(latencies=[])
    deadline = time.perf_counter() + duration
    await asyncio.gather(*(_worker(port, work, i + 1, deadline, tally if record else None) for i in range(concurrency)))
    return tally


def _pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    idx = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[idx]


def run_python(port: int, work: Workload, *, concurrency: int, duration: float) -> LoadResult:
    """The asyncio fallback (raw streams, keep-alive); runs in this process."""
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    tally = asyncio.run(_run_python(port, work, concurrency, duration, True))
    secs = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    lat = sorted(tally.latencies)
    requests, success, non_200, errors = tally.requests, tally.success, tally.non_200, tally.socket_errors
    return LoadResult(
        generator="python-asyncio",
        concurrency=concurrency,
        duration_s=round(secs, 3),
        requests=requests,
        success=success,
        failure=requests - success,
        non_200=non_200,
        socket_errors=errors,
        rps=requests / secs if secs else 0.0,
        p50_ms=_pct(lat, 50) * 1000,
        p90_ms=_pct(lat, 90) * 1000,
        p99_ms=_pct(lat, 99) * 1000,
        max_ms=(lat[-1] if lat else 0.0) * 1000,
        mean_ms=(sum(lat) / len(lat) if lat else 0.0) * 1000,
        generator_cpu_s=round(cpu, 3),
    )


class Generator:
    """Runs measurements with wrk (preferred) or the asyncio fallback."""

    def __init__(self, kind: str, directory: Path) -> None:
        if kind == "auto":
            kind = "wrk" if have_wrk() else "python"
        if kind == "wrk" and not have_wrk():
            raise RuntimeError("wrk is not installed (apt-get install -y wrk), use --generator python")
        self.kind = kind
        self.directory = directory
        self._scripts: list[tuple[Workload, Path]] = []

    @property
    def name(self) -> str:
        return "wrk" if self.kind == "wrk" else "python-asyncio"

    def run(self, port: int, work: Workload, *, concurrency: int, duration: float, warmup: float) -> LoadResult:
        """Warm up for ``warmup`` seconds (not recorded), then measure for ``duration`` seconds."""
        if self.kind == "wrk":
            script = next((path for w, path in self._scripts if w is work), None)
            if script is None:
                script = write_wrk_script(work, self.directory)
                self._scripts.append((work, script))
            if warmup > 0:
                run_wrk(script, port, concurrency=concurrency, duration=warmup)
            return run_wrk(script, port, concurrency=concurrency, duration=duration)
        if warmup > 0:
            asyncio.run(_run_python(port, work, concurrency, warmup, False))
        return run_python(port, work, concurrency=concurrency, duration=duration)


__all__ = ["PATH", "UID_MARK", "Generator", "LoadResult", "Workload", "have_wrk"]
