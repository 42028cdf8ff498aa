"""Crash safety of the repository over a real socket: ``kill -9`` of ``xds serve`` during a burst of ITI-41.

Theory of operation: 16 client threads send 200 Provide and Register submissions (1-3 documents each, from a
few bytes to 1 MiB, a few documents sharing content) with :class:`~xds.client.SoapClient`, as MTOM, each over a
connection of its own (no keep-alive, so with two workers both get some). After the
``kill_after``-th acknowledgement (HTTP 200 with status Success) the server's whole process group gets SIGKILL,
so the in-flight submissions die in whatever phase they are in: body streaming, staging, fsync, the registry
transaction, the rename into ``objects/``, or the answer on its way. The clients record every outcome; the
server is restarted on the same configuration (its recovery runs at start) and then

- every acknowledged submission is found by ITI-18 GetDocuments, with the hash and size of its bytes, and
  ITI-43 returns those bytes exactly;
- every unacknowledged submission is registered completely (SubmissionSet and every document, all
  retrievable) or not at all;
- the ``repository_document`` rows are exactly the registered documents, each with its file, and no file in
  ``objects/`` lacks a row (or differs from its name, the SHA-256 of its content);
- no staging directory of the dead process is left, nor any staged file;
- an interrupted submission that left nothing behind can be sent again and is accepted.

The kill moment is counted in acknowledgements, not seconds, so it lands in the same stretch of the burst on a
fast or a loaded machine; the test asserts that some submissions were acknowledged and some were cut off in
flight, otherwise it would prove nothing.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import os
import random
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from lxml import etree
from sqlalchemy import create_engine, select

from registry_schema.tables import RegistryObjectRow, RepositoryDocument
from tests.conftest import backends
from tests.e2e._node import NodeFiles, health, new_node, serving
from tests.support import q
from xds import samples
from xds import vocabulary as v
from xds.client import SoapClient
from xds.ebrim import messages
from xds.model.messages import QueryParameter, StoredQueryRequest
from xds.model.metadata import DocumentEntry, Submission
from xds.namespaces import RIM, qn

pytestmark = pytest.mark.e2e

PATIENT = samples.patient("crash-1")
SUBMISSIONS = 200
THREADS = 16
MIB = 1 << 20
TIMEOUT = 120.0

ACKED, INTERRUPTED, REFUSED, UNSENT = "acknowledged", "interrupted", "refused", "unsent"
"""Outcomes of one submission; anything else is the text of an unexpected answer."""


@pytest.fixture(params=backends())
def node_files(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NodeFiles]:
    with new_node(tmp_path, request.param) as files:
        yield files


# --- the submissions --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Doc:
    unique_id: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Planned:
    """One ITI-41 submission and its documents' content (by DocumentEntry id)."""

    n: int
    submission: Submission
    contents: Mapping[str, bytes]

    @property
    def set_unique_id(self) -> str:
        return self.submission.submission_sets[0].unique_id

    @property
    def docs(self) -> tuple[Doc, ...]:
        return tuple(Doc(de.unique_id, self.contents[de.id]) for de in self.submission.document_entries)


def _size(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.08:
        return MIB + rng.randrange(-4096, 4096)
    if r < 0.40:
        return rng.randrange(16 * 1024, 256 * 1024)
    return rng.randrange(1, 8 * 1024)


def _entry(data: bytes) -> DocumentEntry:
    """An ITI-41 DocumentEntry: hash, size and repositoryUniqueId are left to the repository."""
    de = samples.document_entry(PATIENT, content=data, mime_type="application/octet-stream")
    return dataclasses.replace(de, hash="", size=None, repository_unique_id="")


def _planned(n: int, contents: Sequence[bytes]) -> Planned:
    entries = [_entry(data) for data in contents]
    return Planned(n, samples.submission(PATIENT, entries), {de.id: c for de, c in zip(entries, contents, strict=True)})


def plan(seed: int) -> list[Planned]:
    """200 submissions of 1-3 documents; about one document in 20 repeats earlier content (deduplicated)."""
    rng = random.Random(seed)
    seen: list[bytes] = []
    out = []
    for n in range(SUBMISSIONS):
        contents = []
        for _ in range(rng.randint(1, 3)):
            data = rng.choice(seen) if seen and rng.random() < 0.05 else rng.randbytes(_size(rng))
            seen.append(data)
            contents.append(data)
        out.append(_planned(n, contents))
    return out


def _sources(url: str) -> SoapClient:
    """A client for the burst's threads that opens a new connection for every submission."""
    transport = httpx.HTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))
    return SoapClient(f"{url}/xds/repository", timeout=TIMEOUT, transport=transport)


def _submit(client: SoapClient, planned: Planned) -> str:
    """Send one submission as MTOM (:meth:`SoapClient.provide_and_register`) and name its outcome."""
    try:
        answer = client.provide_and_register(planned.submission, planned.contents)
    except httpx.ConnectError:
        return REFUSED
    except httpx.TransportError:  # the connection broke while the request or the answer was on its way
        return INTERRUPTED
    return ACKED if answer.status == v.RESPONSE_SUCCESS else f"{answer.status} {answer.errors}"


def burst(
    client: SoapClient, planned: Sequence[Planned], *, kill_after: int, kill: Callable[[], None]
) -> dict[int, str]:
    """Send everything from ``THREADS`` threads; ``kill()`` after ``kill_after`` acknowledgements."""
    outcomes: dict[int, str] = {}
    done = threading.Condition()
    killed = threading.Event()

    def one(p: Planned) -> None:
        try:
            result = UNSENT if killed.is_set() else _submit(client, p)
        except Exception as exc:  # an unusable answer (ClientError, ...): recorded, so the outcome check names it
            result = f"error: {exc!r}"
        with done:
            outcomes[p.n] = result
            done.notify_all()

    with ThreadPoolExecutor(THREADS) as pool:
        for p in planned:
            pool.submit(one, p)
        with done:
            enough = done.wait_for(
                lambda: sum(o == ACKED for o in outcomes.values()) >= kill_after or len(outcomes) == len(planned),
                timeout=TIMEOUT,
            )
        assert enough, f"only {Counter(outcomes.values())} after {TIMEOUT:.0f} s"
        kill()
        killed.set()
    return outcomes


# --- what the restarted node holds ------------------------------------------------------------------------


def registered(url: str, unique_ids: Sequence[str]) -> dict[str, tuple[str, int]]:
    """ITI-18 GetDocuments: uniqueId -> (hash, size) of the DocumentEntries the registry holds."""
    found: dict[str, tuple[str, int]] = {}
    with SoapClient(f"{url}/xds/registry", timeout=TIMEOUT) as client:
        for i in range(0, len(unique_ids), 100):
            req = StoredQueryRequest(
                query_id=v.SQ_GET_DOCUMENTS,
                parameters=(QueryParameter(name="$XDSDocumentEntryUniqueId", values=(q(*unique_ids[i : i + 100]),)),),
            )
            answer = client.call(v.ACTION_STORED_QUERY, messages.render_adhoc_query_request(req)).body
            assert answer.get("status") == v.RESPONSE_SUCCESS, etree.tostring(answer)[:2000]
            for eo in answer.iter(qn(RIM, "ExtrinsicObject")):
                uid = next(
                    e.get("value", "")
                    for e in eo.iter(qn(RIM, "ExternalIdentifier"))
                    if e.get("identificationScheme") == v.DE_UNIQUE_ID
                )
                slots = {
                    s.get("name"): s.findtext(f"{qn(RIM, 'ValueList')}/{qn(RIM, 'Value')}")
                    for s in eo.iter(qn(RIM, "Slot"))
                }
                found[uid] = (slots.get("hash") or "", int(slots.get("size") or -1))
    return found


def retrieved(url: str, unique_ids: Sequence[str], directory: Path) -> dict[str, bytes]:
    """ITI-43 for ``unique_ids``, 32 per request: uniqueId -> the bytes returned; every one must be found."""
    out: dict[str, bytes] = {}
    repository = str(health(url)["repository_unique_id"])
    with SoapClient(f"{url}/xds/repository", timeout=TIMEOUT) as client:
        for i in range(0, len(unique_ids), 32):
            result = client.retrieve(repository, unique_ids[i : i + 32], out_dir=directory)
            assert result.status == v.RESPONSE_SUCCESS, result.errors
            for document in result.documents:
                out[document.ids.document_unique_id] = document.path.read_bytes()
                document.path.unlink()
    return out


def database_rows(url: str) -> tuple[dict[str, str], set[str]]:
    """``repository_document`` uniqueId -> sha256, and the uniqueIds of the registered SubmissionSets."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            docs = {
                str(r.unique_id): str(r.sha256)
                for r in conn.execute(select(RepositoryDocument.unique_id, RepositoryDocument.sha256))
            }
            sets = {
                str(u)
                for u in conn.execute(
                    select(RegistryObjectRow.unique_id).where(RegistryObjectRow.kind == "SS")
                ).scalars()
            }
    finally:
        engine.dispose()
    return docs, sets


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def check_store(documents: Path, rows: dict[str, str]) -> None:
    """Every object file is named by its SHA-256 and referenced by a row; every row has its file;
    every staging directory left belongs to a live process and holds no staged file."""
    files = {p.name: p for p in (documents / "objects").rglob("*") if p.is_file()}
    for name, path in files.items():
        assert _sha256(path) == name, f"{path} does not hold the content its name says"
    referenced = set(rows.values())
    assert set(files) - referenced == set(), "object files no repository_document row references"
    assert referenced - set(files) == set(), "repository_document rows whose content is missing"
    for directory in (documents / "staging").iterdir():
        assert [p.name for p in directory.iterdir() if p.name != "lock"] == [], f"staged files left in {directory}"
        with (directory / "lock").open("ab") as fh, pytest.raises(BlockingIOError):
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: a live process's directory


# --- the test ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kill_after", "workers"),
    [(2, 1), (40, 1), (110, 1), (60, 2)],
    ids=["early", "middle", "late", "two-workers"],
)
def test_kill_9_during_provide_and_register(
    node_files: NodeFiles, kill_after: int, workers: int, tmp_path: Path
) -> None:
    files = node_files
    fed = files.cli("patient", "add", str(PATIENT))
    assert fed.returncode == 0, fed.stderr
    planned = plan(seed=kill_after * 1000 + workers)
    with serving(files, workers) as proc, _sources(files.url) as client:

        def kill() -> None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

        outcomes = burst(client, planned, kill_after=kill_after, kill=kill)
    counts = Counter(outcomes.values())
    print(f"kill after {kill_after} acknowledgements ({workers} worker(s)): {dict(counts)}")
    assert set(counts) <= {ACKED, INTERRUPTED, REFUSED, UNSENT}, counts
    assert counts[ACKED] >= kill_after, counts
    assert counts[INTERRUPTED] >= 1, f"nothing was in flight when the server died: {counts}"

    with serving(files, workers):
        by_number = {p.n: p for p in planned}
        every_uid = [d.unique_id for p in planned for d in p.docs]
        held = registered(files.url, every_uid)
        (tmp_path / "retrieved").mkdir()
        content = retrieved(files.url, sorted(held), tmp_path / "retrieved")
        rows, sets = database_rows(files.database_url)

        complete_unacked = 0
        for n, outcome in outcomes.items():
            p = by_number[n]
            present = [d.unique_id in held for d in p.docs]
            if outcome == ACKED:
                assert all(present), f"acknowledged submission {n} is not (completely) registered"
            assert all(present) or not any(present), f"submission {n} ({outcome}) is half registered: {present}"
            assert (p.set_unique_id in sets) == all(present), f"submission {n}: SubmissionSet and documents disagree"
            if outcome != ACKED and all(present):
                complete_unacked += 1
            for d in p.docs:
                if d.unique_id in held:
                    assert held[d.unique_id] == (hashlib.sha1(d.data).hexdigest(), len(d.data))
                    assert content[d.unique_id] == d.data, f"document {d.unique_id} came back with other bytes"
                    assert rows[d.unique_id] == hashlib.sha256(d.data).hexdigest()
        assert set(rows) == set(held), "repository_document rows differ from the registered documents"
        check_store(files.data_dir / "documents", rows)

        again = [by_number[n] for n, o in sorted(outcomes.items()) if o == INTERRUPTED]
        again = [p for p in again if not any(d.unique_id in held for d in p.docs)][:3]
        with _sources(files.url) as client:
            resent = [_submit(client, p) for p in again]
        assert resent == [ACKED] * len(again), f"a cut-off submission cannot be sent again: {resent}"
        recovery = [line for line in files.log.read_text().splitlines() if "document store recovery" in line]
        print(
            f"  registered after restart: {len(held)} documents, {len(rows)} rows, "
            f"{complete_unacked} unacknowledged submissions complete; resent {len(again)}; {recovery[-1:]}"
        )
