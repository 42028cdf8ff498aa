"""XCA benchmark: the initiating gateway's ITI-38 fan-out to 50 simulated communities, against the real node.

::

    python benchmarks/xca.py [--communities 50] [--latency-ms 100] [--deadline 2] [--rounds 10]
                             [--repeat 50] [--in-flight 500] [--keep] [--quick]

The communities are one asyncio HTTP/1.1 server in a helper process (this script with ``--fakes``), one path
per community (``/c/<n>/xca/responding``): each answers a canned ITI-38 AdhocQueryResponse (three
ExtrinsicObjects rendered by the node's own registry, carrying that community's ``home``) after
``await asyncio.sleep(latency)``. Community ``n - 1`` can be switched to never answer (``GET /control/silent``).
Node A is ``xds serve`` (SQLite, one worker) with the communities as ``[[communities]]`` and ``[gateway]
timeout = deadline = --deadline``. An httpx async client in this process sends ITI-18 FindDocuments to A's
``/xca/initiating``; then

- (a) one community silent: time to the answer minus the deadline (target <= 50 ms), ``--rounds`` times;
- (b) all answering: p50 of the answer time over ``--repeat`` sequential queries minus the responders' latency
  (every one answers after ``--latency-ms``, so the slowest answers then), target <= 5 ms; also minus the floor's
  p50;
- (c) ``--in-flight`` fan-outs at once (all answering): peak RSS of the node (target: within 256 MiB), how many
  answered, with what status, and how long the last took. No floor: :class:`Floor` holds one socket per
  community, so it cannot run fan-outs side by side.

Floor, in this process in the same run (:class:`Floor`): the same fan-out done with the least a Python gateway
does: kept-alive asyncio sockets, request bytes rendered once, the node's hardened XML parse of every answer and
one serialization of the merged objects; (a) ``asyncio.wait`` with the deadline, (b) every answer. This process
runs on uvloop when it is installed, as ``xds serve`` does.

Prints a table and writes ``benchmarks/results/xca-<UTC time>.json``. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _harness; this script never imports the xca package

from _harness import RESULTS, XDS, free_port, log, machine_info, print_table

from xds import samples
from xds import vocabulary as v
from xds.config import Settings
from xds.ebrim import messages
from xds.ebrim.parser import parse_xml
from xds.model.messages import QueryParameter, StoredQueryRequest
from xds.namespaces import RIM
from xds.node import Node
from xds.registry import iti18, iti42
from xds.soap.envelope import render_envelope, request_envelope, soap_content_type

TARGET_OVER_DEADLINE_MS = 50.0
TARGET_OVERHEAD_MS = 5.0
TARGET_RSS_MIB = 256.0
CLIENT_TIMEOUT = 300.0
HOME_MARK = "@@HOME@@"
_T = TypeVar("_T")
NODE_HOME = "urn:oid:1.3.6.1.4.1.21367.2017.2.6.400"
PATIENT = samples.patient("bench-xca")


def community_home(n: int) -> str:
    return f"urn:oid:1.3.6.1.4.1.21367.2017.2.6.4{n + 1:02d}" if n < 99 else f"urn:oid:1.3.6.1.4.1.21367.9.{n}"


@dataclass(frozen=True, slots=True)
class Options:
    communities: int = 50
    latency_ms: float = 100.0
    deadline: float = 2.0
    rounds: int = 10
    repeat: int = 50
    in_flight: int = 500
    keep: bool = False
    quick: bool = False


@dataclass(frozen=True, slots=True)
class Row:
    metric: str
    value: str
    floor: str
    ratio: str
    target: str
    met: str


# ----------------------------------------------------------------------------------- the fake communities


def find_documents(home: str = "") -> StoredQueryRequest:
    return StoredQueryRequest(
        query_id=v.SQ_FIND_DOCUMENTS,
        parameters=(
            QueryParameter(name="$XDSDocumentEntryPatientId", values=(f"'{PATIENT}'",)),
            QueryParameter(name="$XDSDocumentEntryStatus", values=(f"('{v.APPROVED}')",)),
        ),
        home=home,
    )


def canned_answer(workdir: Path) -> bytes:
    """An ITI-38 answer envelope with three ExtrinsicObjects (stored and rendered by a node's own registry), each
    with ``home`` = :data:`HOME_MARK`."""
    node = Node.open(Settings(data_dir=str(workdir / "canned")))
    try:
        node.store.add_patient(str(PATIENT))
        entries = [samples.document_entry(PATIENT, content=f"doc {i}".encode()) for i in range(3)]
        iti42.register(samples.submission(PATIENT, entries), node.registry_context())
        answer = iti18.stored_query(find_documents(), node.query_context())
    finally:
        node.close()
    assert len(answer.leaf) == 3 and not any(" home=" in f.split(">", 1)[0] for f in answer.leaf)
    leaf = tuple(re.sub(r"^(<[^\s>]+)", rf'\1 home="{HOME_MARK}"', f, count=1) for f in answer.leaf)
    body = messages.adhoc_query_response(dataclasses.replace(answer, leaf=leaf))
    return render_envelope(action=v.ACTION_CROSS_GATEWAY_QUERY_RESPONSE, body=body)


async def serve_fakes(port: int, template: bytes, n: int, latency: float) -> None:
    """The helper process: ``n`` communities on one port, one path each; ``/control/silent/<k|none>``."""
    bodies = [template.replace(HOME_MARK.encode(), community_home(i).encode()) for i in range(n)]
    silent: set[int] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                path = lines[0].split(b" ")[1].decode()
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                parts = path.strip("/").split("/")
                if parts[0] == "control":
                    silent.clear()
                    if parts[2] != "none":
                        silent.add(int(parts[2]))
                    body, ctype = b"ok", b"text/plain"
                else:
                    k = int(parts[1])
                    if k in silent:
                        await asyncio.sleep(3600)
                    await asyncio.sleep(latency)
                    body, ctype = bodies[k], b"application/soap+xml; charset=utf-8"
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (ctype, len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


class Fakes:
    """The helper process serving the fake communities."""

    def __init__(self, workdir: Path, opts: Options) -> None:
        self.port = free_port()
        template = workdir / "answer.xml"
        template.write_bytes(canned_answer(workdir))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--fakes",
                str(self.port),
                str(template),
                str(opts.communities),
                str(opts.latency_ms / 1000),
            ]
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the fake communities did not start") from None
                time.sleep(0.1)

    def url(self, n: int) -> str:
        return f"http://127.0.0.1:{self.port}/c/{n}/xca/responding"

    def silence(self, n: int | None) -> None:
        httpx.get(f"http://127.0.0.1:{self.port}/control/silent/{'none' if n is None else n}", timeout=5)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# --------------------------------------------------------------------------------------------------- node A


class InitiatingNode:
    """``xds serve`` with the fake communities in ``[[communities]]``."""

    def __init__(self, workdir: Path, fakes: Fakes, opts: Options) -> None:
        self.port = free_port()
        self.log_path = workdir / "server.log"
        config = workdir / "node.toml"
        lines = [
            f'[node]\nhost = "127.0.0.1"\nport = {self.port}\ndata_dir = "{workdir / "var"}"\n',
            f'home_community_id = "{NODE_HOME}"\n',
            f"\n[gateway]\ntimeout = {opts.deadline}\ndeadline = {opts.deadline}\n",
        ]
        for n in range(opts.communities):
            lines.append(
                f'\n[[communities]]\nhome_community_id = "{community_home(n)}"\nquery_url = "{fakes.url(n)}"\n'
            )
        config.write_text("".join(lines))
        env = {k: val for k, val in os.environ.items() if not k.startswith("XDS_")}
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(XDS), "serve", "--config", str(config)], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"xds serve did not start:\n{self.log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


# ------------------------------------------------------------------------------------------------ measuring


@dataclass(frozen=True, slots=True)
class Answer:
    seconds: float
    status: str
    unavailable: int
    objects: int


def _status(body: bytes) -> str:
    for status in (v.RESPONSE_PARTIAL_SUCCESS, v.RESPONSE_SUCCESS, v.RESPONSE_FAILURE):
        if status.encode() in body:
            return status.rsplit(":", 1)[1]
    return "?"


async def ask(client: httpx.AsyncClient, url: str, envelope: bytes) -> Answer:
    started = time.perf_counter()
    try:
        resp = await client.post(
            url, content=envelope, headers={"content-type": soap_content_type(v.ACTION_STORED_QUERY)}
        )
    except httpx.HTTPError as exc:  # counted, not fatal: (c) reports how many fan-outs got no answer
        return Answer(time.perf_counter() - started, f"client {type(exc).__name__}", 0, 0)
    seconds = time.perf_counter() - started
    body = resp.content
    return Answer(
        seconds,
        _status(body) if resp.status_code == 200 else f"HTTP {resp.status_code}",
        body.count(b'errorCode="XDSUnavailableCommunity"'),
        body.count(b"<rim:ExtrinsicObject"),
    )


class Floor:
    """The least a Python gateway does per fan-out, in this process: one kept-alive asyncio socket per community,
    the ITI-38 request bytes rendered once, the answer framed by its Content-Length, parsed with the node's
    hardened parser, and the objects of all answers serialized into one AdhocQueryResponse. No HTTP library,
    no per-community error handling, no WS-Addressing checks, no deadline bookkeeping beyond ``asyncio.wait``."""

    def __init__(self, port: int, urls: list[str], envelope: bytes) -> None:
        self.port = port
        self.requests = [
            b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (
                httpx.URL(u).raw_path,
                soap_content_type(v.ACTION_CROSS_GATEWAY_QUERY).encode(),
                len(envelope),
                envelope,
            )
            for u in urls
        ]
        self.conns: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def _one(self, n: int) -> list[bytes]:
        if n not in self.conns:
            self.conns[n] = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.conns[n]
        try:
            writer.write(self.requests[n])
            head = await reader.readuntil(b"\r\n\r\n")
            match = _CONTENT_LENGTH.search(head)
            raw = await reader.readexactly(int(match.group(1)) if match else 0)
        except BaseException:
            del self.conns[n]  # a request is outstanding on it: never reuse
            writer.close()
            raise
        objects = parse_xml(raw).find(f".//{{{RIM}}}RegistryObjectList")
        return [etree.tostring(c) for c in objects] if objects is not None else []

    async def fanout(self, deadline: float) -> float:
        """Seconds until every answer is parsed and the merged answer serialized, or the deadline."""
        started = time.perf_counter()
        tasks = [asyncio.ensure_future(self._one(n)) for n in range(len(self.requests))]
        done, pending = await asyncio.wait(tasks, timeout=deadline)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        merged = b"".join(b"".join(t.result()) for t in done)
        _ = b'<query:AdhocQueryResponse status="Success"><rim:RegistryObjectList>%s</rim:RegistryObjectList>' % merged
        return time.perf_counter() - started

    def close(self) -> None:
        for _, writer in self.conns.values():
            writer.close()


_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


def p50(xs: list[float]) -> float:
    return statistics.median(xs)


async def measure(opts: Options, node: InitiatingNode, fakes: Fakes) -> tuple[list[Row], dict[str, Any]]:
    gateway = f"{node.url}/xca/initiating"
    query = request_envelope(
        action=v.ACTION_STORED_QUERY, body=messages.render_adhoc_query_request(find_documents()), to=gateway
    )
    urls = [fakes.url(n) for n in range(opts.communities)]
    limits = httpx.Limits(max_connections=opts.in_flight + 10, max_keepalive_connections=opts.in_flight + 10)
    timeout = httpx.Timeout(CLIENT_TIMEOUT)
    rows: list[Row] = []
    details: dict[str, Any] = {}
    silent = opts.communities - 1
    cx38 = request_envelope(
        action=v.ACTION_CROSS_GATEWAY_QUERY,
        body=messages.render_adhoc_query_request(find_documents(community_home(0))),
        to=urls[0],
    )
    floor = Floor(fakes.port, urls, cx38)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        # (a) one community silent
        fakes.silence(silent)
        log(f"(a) community {silent} silent, {opts.rounds} rounds")
        await ask(client, gateway, query)  # warm-up: the node's pool connects to every community
        late: list[float] = []
        answers_a: list[Answer] = []
        for _ in range(opts.rounds):
            a = await ask(client, gateway, query)
            answers_a.append(a)
            late.append((a.seconds - opts.deadline) * 1000)
        await floor.fanout(opts.deadline)  # warm-up: connect to every community
        floor_late = [(await floor.fanout(opts.deadline) - opts.deadline) * 1000 for _ in range(opts.rounds)]
        ok_a = all(a.status == "PartialSuccess" and a.unavailable == 1 for a in answers_a)
        rows.append(
            Row(
                "(a) answer - deadline, p50 (1 silent)",
                f"{p50(late):.1f} ms",
                f"{p50(floor_late):.1f} ms",
                "",
                f"<= {TARGET_OVER_DEADLINE_MS:g} ms",
                "yes" if p50(late) <= TARGET_OVER_DEADLINE_MS and ok_a else "NO",
            )
        )
        rows.append(
            Row(
                "(a) answer - deadline, max",
                f"{max(late):.1f} ms",
                f"{max(floor_late):.1f} ms",
                "",
                f"<= {TARGET_OVER_DEADLINE_MS:g} ms",
                "yes" if max(late) <= TARGET_OVER_DEADLINE_MS else "NO",
            )
        )
        details["a"] = {
            "over_deadline_ms": late,
            "floor_over_deadline_ms": floor_late,
            "answers": [asdict(a) for a in answers_a],
        }

        # (b) all answering
        fakes.silence(None)
        log(f"(b) all answering, {opts.repeat} queries, each with the floor")
        for _ in range(3):
            await ask(client, gateway, query)
            await floor.fanout(opts.deadline * 5)
        times: list[float] = []
        floor_times: list[float] = []
        answers_b: list[Answer] = []
        for _ in range(opts.repeat):  # interleaved, so that the machine's other load hits both alike
            a = await ask(client, gateway, query)
            answers_b.append(a)
            times.append(a.seconds * 1000)
            floor_times.append(await floor.fanout(opts.deadline * 5) * 1000)
        overhead = p50(times) - p50(floor_times)
        ok_b = all(a.status == "Success" and a.objects == 3 * opts.communities for a in answers_b)
        rows.append(
            Row(
                f"(b) fan-out p50 ({opts.communities} x {opts.latency_ms:g} ms)",
                f"{p50(times):.1f} ms",
                f"{p50(floor_times):.1f} ms",
                f"{p50(times) / p50(floor_times):.2f}",
                "",
                "" if ok_b else "NO (answers)",
            )
        )
        over_latency = p50(times) - opts.latency_ms
        rows.append(
            Row(
                "(b) overhead over the slowest responder, p50",
                f"{over_latency:.1f} ms",
                f"{p50(floor_times) - opts.latency_ms:.1f} ms",
                "",
                f"<= {TARGET_OVERHEAD_MS:g} ms",
                "yes" if over_latency <= TARGET_OVERHEAD_MS and ok_b else "NO",
            )
        )
        rows.append(Row("(b) node p50 - floor p50", f"{overhead:.1f} ms", "", "", "", ""))
        details["b"] = {"ms": times, "floor_ms": floor_times, "answers": [asdict(a) for a in answers_b]}

        # (c) many fan-outs at once
        log(f"(c) {opts.in_flight} fan-outs at once")
        base_rss = node.rss_mib()
        peak = base_rss
        stop = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, node.rss_mib())
                await asyncio.sleep(0.02)

        sampler = asyncio.create_task(sample())
        started = time.perf_counter()
        answers_c = await asyncio.gather(*(ask(client, gateway, query) for _ in range(opts.in_flight)))
        wall = time.perf_counter() - started
        stop.set()
        await sampler
        statuses: dict[str, int] = {}
        for a in answers_c:
            statuses[a.status] = statuses.get(a.status, 0) + 1
        complete = sum(a.objects == 3 * opts.communities for a in answers_c)
        rows.append(
            Row(
                f"(c) {opts.in_flight} fan-outs at once: node RSS peak",
                f"{peak:.0f} MiB (start {base_rss:.0f})",
                "",
                "",
                f"<= {TARGET_RSS_MIB:g} MiB",
                "yes" if peak <= TARGET_RSS_MIB and len(answers_c) == opts.in_flight else "NO",
            )
        )
        rows.append(
            Row(
                f"(c) {opts.in_flight} fan-outs: last answer after",
                f"{wall:.2f} s",
                "",
                "",
                "",
                "",
            )
        )
        rows.append(
            Row(
                f"(c) {opts.in_flight} fan-outs: answers with all {opts.communities} communities",
                f"{complete} of {len(answers_c)}",
                "",
                "",
                "",
                ", ".join(f"{k} {n}" for k, n in sorted(statuses.items())),
            )
        )
        details["c"] = {
            "rss_start_mib": base_rss,
            "rss_peak_mib": peak,
            "wall_s": wall,
            "statuses": statuses,
            "complete": complete,
            "latency_s": sorted(a.seconds for a in answers_c),
        }
    floor.close()
    return rows, details


def _run_loop(main: Coroutine[Any, Any, _T]) -> _T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def run(opts: Options) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="xds-bench-xca-"))
    started = datetime.now(UTC)
    info = machine_info("httpx")
    log(f"{info['nproc']} CPUs ({info['cpu_model']}); load average {info['loadavg_start']}; work dir {workdir}")
    fakes = node = None
    failed: list[str] = []
    rows: list[Row] = []
    details: dict[str, Any] = {}
    try:
        fakes = Fakes(workdir, opts)
        node = InitiatingNode(workdir, fakes, opts)
        log(f"node at {node.url}, {opts.communities} communities at :{fakes.port}, latency {opts.latency_ms:g} ms")
        rows, details = _run_loop(measure(opts, node, fakes))
        details["server_log_tail"] = node.log_path.read_bytes()[-3000:].decode("utf-8", "replace")
    except Exception as exc:
        log(f"FAILED: {type(exc).__name__}: {exc}")
        failed.append(f"{type(exc).__name__}: {exc}")
    finally:
        if node is not None:
            node.stop()
        if fakes is not None:
            fakes.stop()
        if not opts.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    info["loadavg_end"] = [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    print_table(["metric", "node A", "floor", "ratio", "target", "met?"], [list(asdict(r).values()) for r in rows])
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"xca-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    payload = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": asdict(opts),
        "machine": info,
        "targets": {
            "over_deadline_ms": TARGET_OVER_DEADLINE_MS,
            "overhead_p50_ms": TARGET_OVERHEAD_MS,
            "rss_mib": TARGET_RSS_MIB,
        },
        "rows": [asdict(r) for r in rows],
        "details": details,
        "failed": failed,
    }
    out.write_text(json.dumps(payload, indent=2))
    log(f"load average at end {info['loadavg_end']}; results in {out}")
    return 1 if failed else 0


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--communities", type=int, default=50)
    p.add_argument("--latency-ms", type=float, default=100.0)
    p.add_argument("--deadline", type=float, default=2.0)
    p.add_argument("--rounds", type=int, default=10, help="(a): queries with one silent community")
    p.add_argument("--repeat", type=int, default=50, help="(b): sequential queries, all answering")
    p.add_argument("--in-flight", type=int, default=500, help="(c): fan-outs at once")
    p.add_argument("--keep", action="store_true", help="keep the work dir (node log, configuration)")
    p.add_argument("--quick", action="store_true", help="smoke check: 3 rounds, 10 repeats, 50 in flight")
    a = p.parse_args(argv)
    opts = Options(a.communities, a.latency_ms, a.deadline, a.rounds, a.repeat, a.in_flight, a.keep, a.quick)
    if a.quick:
        opts = dataclasses.replace(opts, rounds=3, repeat=10, in_flight=50)
    return opts


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--fakes"]:
        port, template, n, latency = args[1:5]
        asyncio.run(serve_fakes(int(port), Path(template).read_bytes(), int(n), float(latency)))
        return 0
    return run(parse_args(args))


if __name__ == "__main__":
    sys.exit(main())
