"""Client side of the repository benchmark: ITI-41/ITI-43 messages, streamed big transfers, server RSS, the floor.

- :func:`provide_templates`: ITI-41 MTOM bodies with one ~100 KiB text document each, in which ``@@UID@@``
  (the load generator's per-request number) stands in the SubmissionSet and DocumentEntry uniqueIds *and* in
  the document, so every submission stores new content (the store is content-addressed: identical bytes
  would be kept once and skip the rename). All templates share one boundary, hence one Content-Type.
- :func:`retrieve_bodies`: the ITI-43 requests of the load generator. Both are rendered here rather than sent
  with :class:`~xds.client.SoapClient` because wrk (or the asyncio fallback) sends them: the client renders
  and sends in one call, and its Python would cap the rate far below what the node can take.
- Everything else goes through :class:`~xds.client.SoapClient` (:func:`client`): :func:`provide` preloads
  documents, :func:`provide_file` / :func:`retrieve_file` stream one document from a file and back into a
  file (neither side ever holds it), while :class:`RssWatch` reads the server processes' VmRSS/VmHWM from
  ``/proc``.
- :func:`floor_submissions` / :func:`floor_reads`: what the disk work of ITI-41 and ITI-43 costs in-process
  (SHA-1 + SHA-256 + write + fsync of the same bytes; reading the same files back).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import statistics
import string
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from _loadgen import UID_MARK

from xds import samples
from xds import vocabulary as v
from xds.client import RetrievedFile, SoapClient
from xds.ebrim import messages, xdsb
from xds.model.hl7 import CX
from xds.model.messages import DocumentRequest, RetrieveRequest
from xds.model.metadata import DocumentEntry, Submission
from xds.soap import mtom
from xds.soap.envelope import request_envelope, soap_content_type

MIB = 1 << 20
PATH = "/xds/repository"
PATIENT_OID = "1.3.6.1.4.1.21367.13.20.3000"
PATIENTS = 8
BOUNDARY = "MIMEBoundary_xdsbench0000000000000000000000000000"
ROOT_CID = "root.0@xds-bench"
PROVIDE_CONTENT_TYPE = mtom.mtom_content_type(
    boundary=BOUNDARY, root_cid=ROOT_CID, action=v.ACTION_PROVIDE_AND_REGISTER
)
RETRIEVE_CONTENT_TYPE = soap_content_type(v.ACTION_RETRIEVE)


def patient(n: int) -> CX:
    """The ``n``-th benchmark patient (fed before the server starts)."""
    return samples.patient(f"R{n:03d}", PATIENT_OID)


def _iti41_entry(cx: CX, *, entry_id: str = "", unique_id: str = "") -> DocumentEntry:
    """A DocumentEntry as a source sends it in ITI-41: hash, size and repositoryUniqueId left to the repository."""
    de = samples.document_entry(
        cx, entry_id=entry_id, unique_id=unique_id, mime_type="text/plain", title="Benchmark report"
    )
    return dataclasses.replace(de, hash="", size=None, repository_unique_id="")


def _envelope(action: str, body: bytes, port: int) -> bytes:
    return request_envelope(action=action, body=body, to=f"http://127.0.0.1:{port}{PATH}")


def text_document(size: int, seed: int) -> bytes:
    """``size`` bytes of printable text starting with the uid mark (wrk's Lua strings must be valid UTF-8)."""
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + "     .,;"
    head = f"{UID_MARK}\n".encode()
    lines, total = [head], len(head)
    while total < size:
        line = "".join(rng.choices(alphabet, k=99)).encode() + b"\n"
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:size]


def provide_templates(port: int, kib: int, count: int = 8) -> list[bytes]:
    """ITI-41 bodies with one ``kib`` KiB document each (symbolic object ids; see the module docstring)."""
    out = []
    for n in range(count):
        cx = patient(n % PATIENTS)
        de = _iti41_entry(cx, entry_id="Document01", unique_id=f"2.25.{UID_MARK}1")
        ss = samples.submission_set(cx, set_id="SubmissionSet01", unique_id=f"2.25.{UID_MARK}2")
        sub = Submission(
            submission_sets=(ss,),
            document_entries=(de,),
            associations=(samples.has_member(ss.id, de.id, assoc_id="Association01"),),
        )
        body = xdsb.render_provide_and_register_request(
            messages.render_submit_objects_request(sub), [(de.id, "doc1@xds-bench")]
        )
        _, data = mtom.render_mtom(
            envelope=_envelope(v.ACTION_PROVIDE_AND_REGISTER, body, port),
            action=v.ACTION_PROVIDE_AND_REGISTER,
            parts=[("doc1@xds-bench", "text/plain", text_document(kib * 1024, seed=n))],
            boundary=BOUNDARY,
            root_cid=ROOT_CID,
        )
        out.append(data)
    return out


def retrieve_body(port: int, repository: str, unique_id: str) -> bytes:
    """The ITI-43 request envelope for one document."""
    req = RetrieveRequest(documents=(DocumentRequest(repository_unique_id=repository, document_unique_id=unique_id),))
    return _envelope(v.ACTION_RETRIEVE, xdsb.render_retrieve_request(req), port)


def retrieve_bodies(port: int, repository: str, unique_ids: Sequence[str]) -> list[bytes]:
    """One ITI-43 request per document."""
    return [retrieve_body(port, repository, u) for u in unique_ids]


# ----------------------------------------------------------------------------------- through the SOAP client


def client(port: int) -> SoapClient:
    """A keep-alive client of the node's repository endpoint (generous timeouts: big documents are fsynced)."""
    return SoapClient(f"http://127.0.0.1:{port}{PATH}", timeout=600)


def provide(soap: SoapClient, documents: Sequence[Path | bytes], cx: CX) -> list[str]:
    """Send each document (bytes, or a file streamed from disk) in a submission of its own (ITI-41); returns
    their uniqueIds."""
    uids = []
    for content in documents:
        de = _iti41_entry(cx)
        answer = soap.provide_and_register(
            samples.submission(cx, [de]), {de.id: content}, mime_types={de.id: "application/octet-stream"}
        )
        if answer.status != v.RESPONSE_SUCCESS:
            raise RuntimeError(f"ITI-41 answered {answer.status}: {answer.errors}")
        uids.append(de.unique_id)
    return uids


def make_file(path: Path, mib: int, seed: int = 200) -> str:
    """``mib`` MiB of pseudo-random bytes written in 1 MiB chunks; returns their SHA-256."""
    rng, digest = random.Random(seed), hashlib.sha256()
    with path.open("wb") as fh:
        for _ in range(mib):
            chunk = rng.randbytes(MIB)
            digest.update(chunk)
            fh.write(chunk)
    return digest.hexdigest()


def retrieve_file(soap: SoapClient, repository: str, unique_id: str, directory: Path) -> RetrievedFile:
    """ITI-43 of one document, streamed into a new file in ``directory``."""
    result = soap.retrieve(repository, [unique_id], out_dir=directory)
    if result.status != v.RESPONSE_SUCCESS or len(result.documents) != 1:
        for document in result.documents:
            document.path.unlink()
        raise RuntimeError(f"ITI-43 answered {result.status} {result.errors} with {len(result.documents)} documents")
    return result.documents[0]


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# ------------------------------------------------------------------------------------------ server memory


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class RssWatch:
    """Per server process: VmRSS before a ``with`` block and its peak during it (VmHWM reset via
    ``/proc/<pid>/clear_refs``, Linux 4.0+, and a sampler thread as a cross-check); ``growth_mib`` is the
    largest growth of any process."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self.before: dict[int, int] = {}
        self.sampled: dict[int, int] = {}
        self.peak: dict[int, int] = {}
        self.hwm_reset = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssWatch:
        for pid in self.pids:
            self.before[pid] = self.sampled[pid] = _status_kib(pid, "VmRSS")
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                self.hwm_reset = False
        self._thread.start()
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        for pid in self.pids:
            hwm = _status_kib(pid, "VmHWM") if self.hwm_reset else 0
            self.peak[pid] = max(hwm, self.sampled[pid])

    def _sample(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                self.sampled[pid] = max(self.sampled[pid], _status_kib(pid, "VmRSS"))
            self._stop.wait(0.005)

    @property
    def growth_mib(self) -> float:
        return max((self.peak[p] - self.before[p]) / 1024 for p in self.pids)

    def as_dict(self) -> dict[str, object]:
        return {
            "growth_mib": round(self.growth_mib, 2),
            "hwm_reset": self.hwm_reset,
            "processes": {
                str(p): {
                    "rss_before_kib": self.before[p],
                    "peak_kib": self.peak[p],
                    "sampled_peak_kib": self.sampled[p],
                }
                for p in self.pids
            },
        }


# ---------------------------------------------------------------------------------------------------- floor


@dataclass(frozen=True, slots=True)
class Floor:
    """An in-process floor: operations per second (or MB/s) and per-operation latency."""

    what: str
    threads: int
    operations: int
    seconds: float
    ops_per_s: float
    mb_per_s: float
    p50_ms: float
    p99_ms: float


def _timed(what: str, threads: int, seconds: float, nbytes: int, once: Callable[[int, int], None]) -> Floor:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    started = time.perf_counter()
    deadline = started + seconds

    def work(slot: int) -> None:
        mine = latencies[slot]
        while time.perf_counter() < deadline or len(mine) < 20:
            t0 = time.perf_counter()
            once(slot, len(mine))
            mine.append(time.perf_counter() - t0)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(work, range(threads)))
    elapsed = time.perf_counter() - started
    flat = sorted(x for per in latencies for x in per)
    n = len(flat)
    return Floor(
        what=what,
        threads=threads,
        operations=n,
        seconds=round(elapsed, 3),
        ops_per_s=n / elapsed,
        mb_per_s=n * nbytes / elapsed / 1e6,
        p50_ms=statistics.median(flat) * 1000,
        p99_ms=flat[min(n - 1, round(0.99 * n) - 1)] * 1000,
    )


def floor_submissions(directory: Path, content: bytes, *, seconds: float, threads: int = 1) -> Floor:
    """Per submission: SHA-1 + SHA-256 of ``content``, write it to a new file, fsync, close."""
    directory.mkdir(parents=True, exist_ok=True)
    run = uuid.uuid4().hex[:8]

    def once(slot: int, n: int) -> None:
        sha1, sha256 = hashlib.sha1(usedforsecurity=False), hashlib.sha256()
        sha1.update(content)
        sha256.update(content)
        with open(directory / f"{run}-{slot}-{n}.part", "xb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        sha1.hexdigest()
        sha256.hexdigest()

    try:
        return _timed("hash + write + fsync", threads, seconds, len(content), once)
    finally:
        for p in directory.glob(f"{run}-*.part"):
            p.unlink()


def floor_reads(files: Sequence[Path], *, seconds: float, threads: int = 1) -> Floor:
    """Per document: read one of ``files`` (1 MiB chunks, as the server streams them)."""
    size = files[0].stat().st_size
    rngs = [random.Random(slot) for slot in range(threads)]

    def once(slot: int, _n: int) -> None:
        with open(rngs[slot].choice(files), "rb") as fh:
            while fh.read(MIB):
                pass

    return _timed("read file", threads, seconds, size, once)
