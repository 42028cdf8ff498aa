"""Memory of the repository under one big document: 200 MiB in (ITI-41) and out (ITI-43), streamed both ways.

The client never holds the document either: it is generated on disk in 1 MiB chunks and goes both ways
through the project's own :class:`~xds.client.SoapClient`, which streams it from the file as MTOM (Content-Length
known in advance) and writes the answer's attachment to a file; the bytes are compared by SHA-256 afterwards.

The server's memory is read from ``/proc/<pid>/status``: VmRSS before each direction, and the peak during it,
both as VmHWM (reset to the current RSS before the transfer by writing ``5`` to ``/proc/<pid>/clear_refs``)
and as the largest VmRSS seen by a sampler thread (the fallback where the reset is not allowed). Growth, the
peak minus the RSS before, must stay within 32 MiB for each direction: the document is streamed to and from
disk, never buffered.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest

from tests.e2e._node import health, new_node, serving
from xds import samples
from xds import vocabulary as v
from xds.client import RetrievedFile, SoapClient

pytestmark = pytest.mark.e2e

MIB = 1 << 20
DOCUMENT_MIB = 200
LIMIT_MIB = 32
PATIENT = samples.patient("memory-1")


# --- the server and its memory ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Served:
    url: str
    pid: int
    repository: str


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """``xds serve`` (one process, SQLite) with the test patient fed."""
    with new_node(tmp_path) as files:
        fed = files.cli("patient", "add", str(PATIENT))
        assert fed.returncode == 0, fed.stderr
        with serving(files) as proc:
            yield Served(files.url, proc.pid, str(health(files.url)["repository_unique_id"]))


def status_kib(pid: int, field: str) -> int:
    """A ``VmRSS``/``VmHWM``-style field of ``/proc/<pid>/status``, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class RssWatch:
    """Server RSS before (VmRSS) and at its peak during a ``with`` block (VmHWM after a reset, and sampling)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before_kib = self.peak_kib = self.sampled_kib = 0
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssWatch:
        self.before_kib = status_kib(self.pid, "VmRSS")
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux 4.0+)
            self.hwm_reset = True
        except OSError:
            pass
        self._thread.start()
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        hwm = status_kib(self.pid, "VmHWM") if self.hwm_reset else 0
        self.peak_kib = max(hwm, self.sampled_kib)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.sampled_kib = max(self.sampled_kib, status_kib(self.pid, "VmRSS"))
            self._stop.wait(0.005)

    @property
    def growth_mib(self) -> float:
        return (self.peak_kib - self.before_kib) / 1024

    def report(self, what: str, seconds: float, size: int) -> str:
        return (
            f"{what}: {size / MIB:.0f} MiB in {seconds:.1f} s ({size / MIB / seconds:.0f} MiB/s); server RSS "
            f"{self.before_kib / 1024:.1f} MiB before, peak {self.peak_kib / 1024:.1f} MiB "
            f"(VmHWM reset: {self.hwm_reset}; sampled {self.sampled_kib / 1024:.1f} MiB), "
            f"growth {self.growth_mib:.1f} MiB"
        )


# --- the document, both ways -----------------------------------------------------------------------------


def make_file(path: Path, mib: int, seed: int) -> str:
    """``mib`` MiB of pseudo-random bytes written in 1 MiB chunks; returns their SHA-256."""
    rng, digest = random.Random(seed), hashlib.sha256()
    with path.open("wb") as fh:
        for _ in range(mib):
            chunk = rng.randbytes(MIB)
            digest.update(chunk)
            fh.write(chunk)
    return digest.hexdigest()


def provide_from_file(client: SoapClient, path: Path) -> tuple[str, str]:
    """ITI-41 with the file as the one document, streamed from disk: the status and the DocumentEntry uniqueId."""
    de = dataclasses.replace(
        samples.document_entry(PATIENT, mime_type="application/octet-stream"),
        hash="",
        size=None,
        repository_unique_id="",
    )
    answer = client.provide_and_register(samples.submission(PATIENT, [de]), {de.id: path})
    return answer.status, de.unique_id


def retrieve_to_file(client: SoapClient, repository: str, unique_id: str, directory: Path) -> RetrievedFile:
    """ITI-43 for one document, the answer parsed as it arrives; the document lands in a file in ``directory``."""
    result = client.retrieve(repository, [unique_id], out_dir=directory)
    assert result.status == v.RESPONSE_SUCCESS, result.errors
    assert len(result.documents) == 1
    return result.documents[0]


def sha256_of(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# --- the test ---------------------------------------------------------------------------------------------


def test_200_mib_document_in_and_out_in_bounded_memory(served: Served, tmp_path: Path) -> None:
    small = tmp_path / "warm-up.bin"
    big = tmp_path / "document.bin"
    back = tmp_path / "retrieved"
    back.mkdir()
    try:
        with SoapClient(f"{served.url}/xds/repository", timeout=300) as client:
            # warm up both paths (imports, thread pool, allocator arenas) so they do not count as growth
            make_file(small, 1, seed=1)
            status, uid = provide_from_file(client, small)
            assert status == v.RESPONSE_SUCCESS
            retrieve_to_file(client, served.repository, uid, back)

            sha256 = make_file(big, DOCUMENT_MIB, seed=200)
            size = big.stat().st_size
            started = time.perf_counter()
            with RssWatch(served.pid) as inbound:
                status, uid = provide_from_file(client, big)
            print("\n" + inbound.report("ITI-41 in ", time.perf_counter() - started, size))
            assert status == v.RESPONSE_SUCCESS
            big.unlink()

            started = time.perf_counter()
            with RssWatch(served.pid) as outbound:
                document = retrieve_to_file(client, served.repository, uid, back)
            print(outbound.report("ITI-43 out", time.perf_counter() - started, size))
            assert (document.size, sha256_of(document.path)) == (size, sha256)

        assert inbound.growth_mib <= LIMIT_MIB, inbound.report("ITI-41", 1, size)
        assert outbound.growth_mib <= LIMIT_MIB, outbound.report("ITI-43", 1, size)
    finally:
        small.unlink(missing_ok=True)
        big.unlink(missing_ok=True)
        shutil.rmtree(back, ignore_errors=True)
