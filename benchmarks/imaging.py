"""Imaging benchmark: ``xds dicom ingest`` of a study and RAD-69 Retrieve Imaging Document Set over HTTP, each with
an in-process floor measured in the same run.

::

    python benchmarks/imaging.py [--sizes 100,500] [--series 4] [--workers 1,2] [--batch 50]
                                 [--concurrency 1,4] [--passes 3] [--keep] [--quick]

- **Study**: ``--sizes`` studies (one per size, ``--series`` series, default 4) generated from pydicom's
  ``CT_small.dcm``: new Study, Series and SOP Instance UIDs, the pixel data replaced by 512 x 512 16-bit noise
  (Rows, Columns, Bits set to match), so each file is ~0.5 MiB and unique. Explicit VR Little Endian, as the original.
- **Ingest**, per size, into a fresh SQLite database and data dir (migrated, patient fed in-process): ``xds dicom
  ingest DIR --patient ID --config node.toml --json`` as a subprocess, so the memory is the CLI process's. Wall
  time (process start to exit) -> instances/s and MB/s; its peak RSS from ``os.wait4`` (``ru_maxrss`` of that
  child alone), cross-checked by sampling ``/proc/<pid>/status`` every 10 ms. Memory is bounded when the peak
  does not grow with the study: the sizes are compared.
- **Ingest floor**, in this process, for the same files: read each in 1 MiB chunks, SHA-256 it and write a copy,
  then fsync every copy (the store's own order: stage all, fsync all, publish); and the same with each file
  decoded whole by pydicom and encoded again in memory first (the least the ingest's patient-identity rewrite
  costs). Best of ``--passes``.
- **RAD-69** on the largest study: ``xds serve --workers N`` on its data; the whole study is retrieved in batches
  of ``--batch`` instances (one RetrieveImagingDocumentSetRequest each, rendered with
  :func:`xds.ebrim.xdsi.render_imaging_retrieve_request`) at each ``--concurrency`` (client threads, one
  keep-alive connection each), by two clients: :meth:`xds.client.SoapClient.call` (the MTOM answer parsed and
  streamed into files, every instance's size checked against the stored instance; a first sanity pass checks
  every SHA-256 too), and a lean ``http.client`` reader (the answer split on its MIME boundary, the attachment
  sizes checked), which shows what the server delivers when the client costs little. The ingest rewrites the
  patient identity in each instance, so the stored instances (size, SHA-256, object file) are taken from the
  imaging index. MB/s is 10^6 bytes of DICOM received per second, best of ``--passes`` whole-study passes.
  Server and client CPU and the server's RSS growth during the passes are recorded.
- **RAD-69 floor**: read the same object files from ``<data_dir>/documents/objects/`` in-process (1 MiB chunks,
  1 and N threads), best of ``--passes``.

Prints a table (setup, metric, value) with the ratios and writes ``benchmarks/results/imaging-<timestamp>.json``.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import http.client
import json
import os
import queue
import random
import re
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _repository_io as rio
from _harness import (
    XDS,
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
from _loadgen import Generator

from registry_schema import migrate
from xds import vocabulary as v
from xds.client import SoapClient
from xds.ebrim import xdsb, xdsi
from xds.model.messages import DocumentRequest, ImagingDocumentRequest, ImagingRetrieveRequest
from xds.soap.envelope import request_envelope, soap_content_type
from xds.store.imaging import SqlImaging
from xds.store.sql import SqlRegistryStore, make_engine

MIB = 1 << 20
ROWS = COLUMNS = 512
IMAGING_PATH = "/xds/imaging"
PATIENT = rio.patient(0)
SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


@dataclass
class Options:
    sizes: list[int]
    series: int
    workers: list[int]
    batch: int
    concurrency: list[int]
    passes: int
    keep: bool = False
    stamp: str = ""


@dataclass
class Row:
    setup: str
    metric: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None


@dataclass(frozen=True, slots=True)
class Instance:
    """One generated file: where it is and what the store will hold for it."""

    path: Path
    study: str
    series: str
    sop: str
    size: int
    sha256: str


@dataclass
class Study:
    directory: Path
    instances: list[Instance] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(i.size for i in self.instances)


def print_rows(rows: list[Row]) -> None:
    print_table(
        ("setup", "metric", "value", "target", "met?"),
        [(r.setup, r.metric, *cells(r.value, r.unit, r.target, r.met)) for r in rows],
    )


# ------------------------------------------------------------------------------------------------- the study


def make_study(directory: Path, count: int, series: int, seed: int) -> Study:
    """``count`` instances of one new study in ``series`` series, ~0.5 MiB of noise each, written to ``directory``."""
    source = get_testdata_file("CT_small.dcm", download=False)
    if source is None:
        raise RuntimeError("pydicom's CT_small.dcm test file is not installed")
    template = pydicom.dcmread(source)
    template.Rows, template.Columns = ROWS, COLUMNS
    template.BitsAllocated, template.BitsStored, template.HighBit = 16, 16, 15
    template.SamplesPerPixel, template.PixelRepresentation = 1, 1
    template.PhotometricInterpretation = "MONOCHROME2"
    rng = random.Random(seed)
    study_uid = generate_uid()
    series_uids = [generate_uid() for _ in range(series)]
    directory.mkdir(parents=True)
    study = Study(directory)
    for n in range(count):
        ds = copy.deepcopy(template)
        sop = generate_uid()
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uids[n % series]
        ds.SeriesNumber = n % series + 1
        ds.SOPInstanceUID = sop
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.InstanceNumber = n // series + 1
        ds.PixelData = rng.randbytes(ROWS * COLUMNS * 2)
        path = directory / f"{n:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        data = path.read_bytes()
        study.instances.append(
            Instance(path, study_uid, ds.SeriesInstanceUID, sop, len(data), hashlib.sha256(data).hexdigest())
        )
    return study


def prepare(url: str) -> None:
    """Migrate and feed the benchmark patient."""
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        SqlRegistryStore(engine).add_patient(str(PATIENT))
    finally:
        engine.dispose()


def write_config(workdir: Path) -> Path:
    """The same node.toml :class:`_harness.Server` writes (and will write again over it)."""
    config = workdir / "node.toml"
    config.write_text(
        "[node]\n"
        f'data_dir = "{workdir / "var"}"\n'
        'home_community_id = "urn:oid:1.3.6.1.4.1.21367.2017.2.6.99"\n'
        'repository_unique_id = "1.3.6.1.4.1.21367.2017.2.3.99"\n'
    )
    return config


# ---------------------------------------------------------------------------------------------------- ingest


def _vm_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_ingest(study: Study, url: str, workdir: Path) -> dict[str, Any]:
    """``xds dicom ingest`` as a child process: wall time, its own peak RSS (wait4), sampled RSS over time."""
    config = write_config(workdir)
    env = {**os.environ, "XDS_DATABASE_URL": url}
    env.pop("XDS_CONFIG", None)
    cmd = [str(XDS), "dicom", "ingest", str(study.directory), "--patient", str(PATIENT), "--config", str(config)]
    out, err = (workdir / "ingest.out").open("wb"), (workdir / "ingest.err").open("wb")
    samples: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen([*cmd, "--json"], env=env, stdout=out, stderr=err)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.perf_counter() - t0, _vm_rss_kib(proc.pid)))
            done.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.close()
    err.close()
    if proc.returncode != 0:
        tail = (workdir / "ingest.err").read_bytes()[-2000:].decode("utf-8", "replace")
        raise RuntimeError(f"xds dicom ingest exited with {proc.returncode}: {tail}")
    report = json.loads((workdir / "ingest.out").read_text())
    added = sum(s["added"] for s in report["studies"])
    if added != len(study.instances) or report["skipped"]:
        raise RuntimeError(f"ingest added {added} of {len(study.instances)} instances, skipped {report['skipped']}")
    rss = [kib for _t, kib in samples if kib]
    return {
        "command": " ".join([*cmd, "--json"]),
        "wall_s": round(wall, 3),
        "instances": added,
        "bytes": study.nbytes,
        "instances_per_s": added / wall,
        "mb_per_s": study.nbytes / wall / 1e6,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "sampled_peak_rss_mib": max(rss, default=0) / 1024,
        "child_cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "rss_timeline_mib": [(round(t, 2), round(kib / 1024, 1)) for t, kib in samples[::25]],
        "studies": report["studies"],
    }


def floor_ingest(study: Study, directory: Path, *, passes: int, reencode: bool) -> dict[str, Any]:
    """Per file: read (1 MiB chunks) + SHA-256 + write a copy, then fsync every copy (the store's order: stage
    all, fsync all, publish). With ``reencode``, each file is instead decoded whole with pydicom and encoded
    again in memory first (what the ingest's patient-identity rewrite costs at least), and those bytes are
    hashed and written. Best of ``passes``; the copies are deleted after each pass."""
    best = float("inf")
    for _ in range(passes):
        directory.mkdir(parents=True, exist_ok=True)
        copies: list[Path] = []
        t0 = time.perf_counter()
        for inst in study.instances:
            digest = hashlib.sha256()
            target = directory / f"{inst.sha256}.part"
            with open(target, "xb") as dst:
                if reencode:
                    out = BytesIO()
                    pydicom.dcmread(inst.path).save_as(out)
                    data = out.getvalue()
                    digest.update(data)
                    dst.write(data)
                else:
                    with open(inst.path, "rb") as src:
                        while chunk := src.read(MIB):
                            digest.update(chunk)
                            dst.write(chunk)
            if not reencode and digest.hexdigest() != inst.sha256:
                raise RuntimeError(f"{inst.path} changed")
            copies.append(target)
        for c in copies:
            fd = os.open(c, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        best = min(best, time.perf_counter() - t0)
        for c in copies:
            c.unlink()
    n = len(study.instances)
    return {"seconds": round(best, 3), "instances_per_s": n / best, "mb_per_s": study.nbytes / best / 1e6}


def stored_study(url: str, workdir: Path, study: Study) -> Study:
    """The study as the store holds it (the ingest rewrites the patient identity, so other bytes and sizes):
    each instance's object file, size and SHA-256 from the imaging index, checked against the file."""
    engine = make_engine(url)
    try:
        records = SqlImaging(SqlRegistryStore(engine)).instances([i.sop for i in study.instances])
    finally:
        engine.dispose()
    root = workdir / "var" / "documents" / "objects"
    stored = Study(root)
    for i in study.instances:
        r = records.get(i.sop)
        if r is None:
            raise RuntimeError(f"instance {i.sop} is not in the imaging index")
        path = root / r.sha256[:2] / r.sha256
        if path.stat().st_size != r.size:
            raise RuntimeError(f"instance {i.sop} is stored with another size than recorded")
        stored.instances.append(Instance(path, r.study_uid, r.series_uid, r.sop_instance_uid, r.size, r.sha256))
    return stored


def run_size(
    count: int, opts: Options, state: dict[str, Any], _gen: Generator, workdir: Path
) -> tuple[list[Row], dict[str, Any]]:
    setup = f"ingest n={count}"
    log(f"{setup}: generating {count} instances in {opts.series} series")
    study = make_study(workdir / "study", count, opts.series, seed=count)
    log(f"{setup}: {study.nbytes / MIB:.0f} MiB; xds dicom ingest")
    with fresh_database("", workdir) as url:
        prepare(url)
        busy_before = background_busy(1.0)
        ing = run_ingest(study, url, workdir)
    log(
        f"{setup}: {ing['instances_per_s']:.1f} instances/s, {ing['mb_per_s']:.0f} MB/s, "
        f"peak RSS {ing['peak_rss_mib']:.0f} MiB"
    )
    stored = stored_study(url, workdir, study)
    log(f"{setup}: floor")
    floor = floor_ingest(study, workdir / "floor", passes=opts.passes, reencode=False)
    floor_re = floor_ingest(study, workdir / "floor", passes=opts.passes, reencode=True)
    state["studies"][count] = (stored, url, workdir)
    rows = [
        Row(setup, "study size", study.nbytes / MIB, f"MiB ({count} instances, {opts.series} series)"),
        Row(setup, "machine busy in the second before (other load)", busy_before, "% of all cores"),
        Row(setup, "ingest wall time (process start to exit)", ing["wall_s"], "s"),
        Row(setup, "ingest instances/s", ing["instances_per_s"], "inst/s"),
        Row(setup, "ingest MB/s", ing["mb_per_s"], "MB/s"),
        Row(setup, "floor instances/s (read+SHA-256+copy, fsync all)", floor["instances_per_s"], "inst/s"),
        Row(setup, "floor MB/s", floor["mb_per_s"], "MB/s"),
        Row(setup, "ratio instances/s floor / ingest", floor["instances_per_s"] / ing["instances_per_s"], "x"),
        Row(setup, "floor with pydicom decode+encode, instances/s", floor_re["instances_per_s"], "inst/s"),
        Row(
            setup,
            "ratio instances/s floor(decode+encode) / ingest",
            floor_re["instances_per_s"] / ing["instances_per_s"],
            "x",
        ),
        Row(setup, "stored size (identity rewritten)", stored.nbytes / MIB, "MiB"),
        Row(setup, "ingest peak RSS (wait4 ru_maxrss)", ing["peak_rss_mib"], "MiB"),
        Row(setup, "ingest CPU (user+sys)", ing["child_cpu_s"], "s"),
    ]
    detail = {
        "setup": setup,
        "instances": count,
        "ingest": ing,
        "floor": floor,
        "floor_with_decode_encode": floor_re,
        "busy_before_pct": round(busy_before, 1),
    }
    return rows, detail


# ---------------------------------------------------------------------------------------------------- RAD-69


def batches(study: Study, size: int, source_id: str) -> list[tuple[bytes, list[Instance]]]:
    out = []
    for start in range(0, len(study.instances), size):
        members = study.instances[start : start + size]
        req = ImagingRetrieveRequest(
            documents=tuple(
                ImagingDocumentRequest(
                    study_instance_uid=i.study,
                    series_instance_uid=i.series,
                    document=DocumentRequest(repository_unique_id=source_id, document_unique_id=i.sop),
                )
                for i in members
            ),
            transfer_syntaxes=SYNTAXES,
        )
        out.append((xdsi.render_imaging_retrieve_request(req), members))
    return out


def retrieve_one(soap: SoapClient, body: bytes, members: list[Instance], *, out_dir: Path, check_hash: bool) -> int:
    """One RAD-69 request; every instance checked (size, optionally SHA-256); the DICOM bytes received."""
    reply = soap.call(v.ACTION_RETRIEVE_IMAGING, body, out_dir=out_dir)
    try:
        status, errors, documents = xdsb.retrieve_response(reply.body)
        if reply.http_status != 200 or errors or not status.endswith(":Success"):
            raise RuntimeError(f"RAD-69 answered {reply.http_status} {status} {errors[:2]}")
        expected = {i.sop: i for i in members}
        if sorted(ids.document_unique_id for ids, _m, _p in documents) != sorted(expected):
            raise RuntimeError("RAD-69 answered other instances than asked for")
        total = 0
        for ids, _mime, part in documents:
            inst = expected[ids.document_unique_id]
            if part.cid is None:
                raise RuntimeError("RAD-69 sent an instance inline, not as an MTOM part")
            path = reply.attachments[part.cid]
            size = path.stat().st_size
            if size != inst.size or (check_hash and rio.sha256_file(path) != inst.sha256):
                raise RuntimeError(f"instance {inst.sop} came back with other bytes ({size} of {inst.size})")
            total += size
        return total
    finally:
        reply.discard()


class RawClient:
    """A lean RAD-69 reader: one keep-alive ``http.client`` connection, the answer read whole and split on its
    MIME boundary in C (no MTOM parser, no files). What the server can deliver when the client costs little."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.to = f"http://127.0.0.1:{port}{IMAGING_PATH}"

    def close(self) -> None:
        self.conn.close()

    def retrieve(self, body: bytes, members: list[Instance]) -> int:
        """One RAD-69 request; the sizes of the attachments checked against the stored instances (as a multiset:
        the root part names which is which, not parsed here); the DICOM bytes received."""
        envelope = request_envelope(action=v.ACTION_RETRIEVE_IMAGING, body=body, to=self.to)
        headers = {"content-type": soap_content_type(v.ACTION_RETRIEVE_IMAGING)}
        self.conn.request("POST", IMAGING_PATH, body=envelope, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        found = re.search(r'boundary="?([^";]+)', resp.getheader("content-type", ""))
        if resp.status != 200 or found is None:
            raise RuntimeError(f"RAD-69 answered {resp.status} {resp.getheader('content-type')}: {data[:300]!r}")
        parts = data.split(b"--" + found.group(1).encode())[1:-1]
        root, attachments = parts[0], parts[1:]
        if b"ResponseStatusType:Success" not in root:
            raise RuntimeError(f"RAD-69 did not answer Success: {root[:600]!r}")
        sizes = [len(p) - p.index(b"\r\n\r\n") - 6 for p in attachments]  # part head; CRLF before the boundary
        if sorted(sizes) != sorted(i.size for i in members):
            raise RuntimeError("RAD-69 attachments have other sizes than the stored instances")
        return sum(sizes)


Batch = tuple[bytes, list[Instance]]
"""One RAD-69 request body and the instances it asks for."""
Fetch = Callable[[bytes, list[Instance]], int]
"""One RAD-69 request of a batch: the DICOM bytes received (checked)."""


def retrieve_pass(
    fetchers: Sequence[Fetch], work: list[tuple[bytes, list[Instance]]]
) -> tuple[float, int, list[float]]:
    """The whole study once, its batches shared by one thread per fetcher: wall seconds, bytes, latencies."""
    todo: queue.SimpleQueue[Batch] = queue.SimpleQueue()
    for w in work:
        todo.put(w)
    latencies: list[float] = []

    def worker(fetch: Fetch) -> int:
        got = 0
        while True:
            try:
                body, members = todo.get_nowait()
            except queue.Empty:
                return got
            t0 = time.perf_counter()
            got += fetch(body, members)
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(fetchers)) as pool:
        received = sum(pool.map(worker, fetchers))
    return time.perf_counter() - t0, received, latencies


def floor_reads(files: Sequence[Path], *, threads: int, passes: int) -> dict[str, Any]:
    """Read every file once (1 MiB chunks) over ``threads`` threads; best of ``passes``."""
    nbytes = sum(p.stat().st_size for p in files)

    def read(path: Path) -> int:
        n = 0
        with open(path, "rb") as fh:
            while chunk := fh.read(MIB):
                n += len(chunk)
        return n

    best = float("inf")
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in range(passes):
            t0 = time.perf_counter()
            got = sum(pool.map(read, files))
            best = min(best, time.perf_counter() - t0)
            if got != nbytes:
                raise RuntimeError("an object file changed size")
    return {"threads": threads, "seconds": round(best, 4), "mb_per_s": nbytes / best / 1e6}


def soap_fetcher(soap: SoapClient, out_dir: Path, *, check_hash: bool) -> Fetch:
    return partial(retrieve_one, soap, out_dir=out_dir, check_hash=check_hash)


def run_rad69(
    workers: int, opts: Options, state: dict[str, Any], _gen: Generator, workdir: Path
) -> tuple[list[Row], dict[str, Any]]:
    count = max(state["studies"])
    study, url, datadir = state["studies"][count]
    setup = f"RAD-69 n={count} w={workers}"
    rows: list[Row] = []
    detail: dict[str, Any] = {"setup": setup, "workers": workers, "instances": count, "batch": opts.batch}
    server = Server(url, datadir, workers)
    soaps: list[SoapClient] = []
    raws: list[RawClient] = []
    try:
        health = server.wait_healthy()
        source_id = str(health.get("imaging_source_id") or health["repository_unique_id"])
        log(f"{setup}: xds serve pid {server.pid} (serving: {server_pids(server.pid)}) port {server.port}")
        work = batches(study, opts.batch, source_id)
        top = max(opts.concurrency)
        soaps = [SoapClient(server.url + IMAGING_PATH, timeout=120) for _ in range(top)]
        raws = [RawClient(server.port) for _ in range(top)]
        seconds, got, _lat = retrieve_pass([soap_fetcher(soaps[0], workdir, check_hash=True)], work)
        if got != study.nbytes:
            raise RuntimeError(f"sanity pass received {got} of {study.nbytes} bytes")
        log(f"{setup}: sanity pass (SHA-256 of every instance checked) {seconds:.2f} s")
        fetchers: dict[str, list[Fetch]] = {
            "SoapClient": [soap_fetcher(soap, workdir, check_hash=False) for soap in soaps],
            "raw reader": [r.retrieve for r in raws],
        }
        files = [i.path for i in study.instances]
        busy_before = background_busy(1.0)
        rows.append(Row(setup, "machine busy in the second before (other load)", busy_before, "% of all cores"))
        detail["busy_before_pct"] = round(busy_before, 1)
        for c in opts.concurrency:
            floor = floor_reads(files, threads=c, passes=opts.passes)
            rows.append(Row(setup, f"floor read MB/s ({c} thread{'s' if c > 1 else ''})", floor["mb_per_s"], "MB/s"))
            detail[f"floor_c{c}"] = floor
            for kind, fetch in fetchers.items():
                walls: list[float] = []
                lat: list[float] = []
                self0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                with rio.RssWatch(server_pids(server.pid)) as rss, cpu_window(server.pid) as cpu:
                    for _ in range(opts.passes):
                        wall, got, latencies = retrieve_pass(fetch[:c], work)
                        if got != study.nbytes:
                            raise RuntimeError(f"a pass received {got} of {study.nbytes} bytes")
                        walls.append(wall)
                        lat += latencies
                self1, wall1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                client_pct = 100 * (self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime) / (wall1 - wall0)
                best = min(walls)
                mbs = study.nbytes / best / 1e6
                lat.sort()
                p50 = lat[len(lat) // 2] * 1000
                log(f"{setup}: {kind} c={c} {mbs:.0f} MB/s (floor {floor['mb_per_s']:.0f} MB/s)")
                rows += [
                    Row(setup, f"RAD-69 MB/s, {kind} (c={c}, {opts.batch}/request, best pass)", mbs, "MB/s"),
                    Row(setup, f"  instances/s / request p50 ({kind}, c={c})", count / best, f"inst/s / {p50:.0f} ms"),
                    Row(setup, f"  ratio MB/s floor({c}) / RAD-69 ({kind}, c={c})", floor["mb_per_s"] / mbs, "x"),
                    Row(
                        setup,
                        f"  CPU server / client ({kind}, c={c})",
                        cpu.server_cpu_pct,
                        f"% / {client_pct:.0f}% of 1 core (machine {cpu.machine_busy_pct:.0f}% busy)",
                    ),
                    Row(setup, f"  server RSS growth ({kind}, c={c})", rss.growth_mib, "MiB"),
                ]
                detail[f"{kind}_c{c}"] = {
                    "pass_seconds": [round(w, 3) for w in walls],
                    "bytes_per_pass": study.nbytes,
                    "mb_per_s_best": mbs,
                    "mb_per_s_passes": [study.nbytes / w / 1e6 for w in walls],
                    "request_ms": {"p50": p50, "max": lat[-1] * 1000, "n": len(lat)},
                    "cpu": asdict(cpu),
                    "client_cpu_pct": round(client_pct, 1),
                    "rss": rss.as_dict(),
                }
    finally:
        for soap in soaps:
            soap.close()
        for raw in raws:
            raw.close()
        detail["server_log_tail"] = server.log_tail(1500)
        server.stop()
    return rows, detail


# ------------------------------------------------------------------------------------------------------ main


def _ints(value: str) -> list[int]:
    return [int(x) for x in value.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100,500", help="study sizes in instances, comma-separated (default 100,500)")
    p.add_argument("--series", type=int, default=4, help="series per study (default 4)")
    p.add_argument("--workers", default="1,2", help="xds serve worker counts for RAD-69 (default 1,2)")
    p.add_argument("--batch", type=int, default=50, help="instances per RAD-69 request (default 50)")
    p.add_argument("--concurrency", default="1,4", help="RAD-69 client threads (default 1,4)")
    p.add_argument("--passes", type=int, default=3, help="whole-study passes per measurement, best taken (default 3)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (studies, databases, documents, logs)")
    p.add_argument("--quick", action="store_true", help="smoke check: 20 and 60 instances, 1 worker, 1 pass")
    a = p.parse_args(argv)
    return Options(
        sizes=sorted(_ints("20,60" if a.quick else a.sizes)),
        series=a.series,
        workers=[1] if a.quick else _ints(a.workers),
        batch=a.batch,
        concurrency=_ints(a.concurrency),
        passes=1 if a.quick else a.passes,
        keep=a.keep,
        stamp=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    state: dict[str, Any] = {"studies": {}}
    setups = [(f"ingest n={n}", f"n{n}", partial(run_size, n, opts, state)) for n in opts.sizes]
    setups += [(f"RAD-69 w={w}", f"rad69-w{w}", partial(run_rad69, w, opts, state)) for w in opts.workers]
    run = run_setups("xds-bench-imaging-", "python", setups, keep=opts.keep)
    rows: list[Row] = run.rows
    ingests = [d for d in run.details if "ingest" in d]
    if len(ingests) >= 2:
        small, big = ingests[0], ingests[-1]
        growth = big["ingest"]["peak_rss_mib"] - small["ingest"]["peak_rss_mib"]
        extra = big["instances"] - small["instances"]
        marginal = extra / (big["ingest"]["wall_s"] - small["ingest"]["wall_s"])
        rows += [
            Row(
                "ingest",
                f"peak RSS growth n={small['instances']} -> n={big['instances']}",
                growth,
                f"MiB ({growth * 1024 / extra:.1f} KiB per instance)",
                "bounded (~0)",
                growth <= 16,
            ),
            Row("ingest", f"marginal instances/s (n={small['instances']} -> {big['instances']})", marginal, "inst/s"),
        ]
    print_rows(rows)
    return finish(
        run,
        f"imaging-{opts.stamp}",
        options=asdict(opts),
        targets={"ingest_peak_rss_growth_mib": 16},
        details_key="setups",
    )


if __name__ == "__main__":
    sys.exit(main())
