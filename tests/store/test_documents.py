"""The file document store: staging, hashing, publication, and recovery after a crashed process."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from xds.store.documents import FileDocumentStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FileDocumentStore]:
    s = FileDocumentStore(tmp_path)
    yield s
    s.close()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_staged_file_hashes_and_counts(store: FileDocumentStore) -> None:
    staged = store.new_file()
    for chunk in (b"hello ", b"", b"world"):
        staged.write(chunk)
    staged.close()
    c = staged.content
    assert (c.size, c.sha1, c.sha256) == (
        11,
        hashlib.sha1(b"hello world").hexdigest(),
        _sha256(b"hello world"),
    )
    assert Path(c.ref).read_bytes() == b"hello world"
    assert not store.exists(c.sha256)


def test_publish_makes_content_readable_and_keeps_identical_content_once(
    store: FileDocumentStore, tmp_path: Path
) -> None:
    first = store.stage_bytes([b"same bytes"])
    second = store.stage_bytes([b"same ", b"bytes"])
    store.sync([first, second])
    store.publish([first, second])
    assert store.exists(first.sha256)
    assert b"".join(store.chunks(first.sha256)) == b"same bytes"
    assert not Path(first.ref).exists() and not Path(second.ref).exists()
    assert len(list((tmp_path / "objects").rglob("*"))) == 2  # one fan-out directory, one file


def test_discard_deletes_staged_content(store: FileDocumentStore) -> None:
    staged = store.stage_bytes([b"rejected"])
    store.discard([staged])
    assert not Path(staged.ref).exists()
    assert not store.exists(staged.sha256)


def test_abort_removes_a_partial_file(store: FileDocumentStore) -> None:
    staged = store.new_file()
    staged.write(b"partial")
    staged.abort()
    assert not staged.path.exists()


def test_document_size_limit(tmp_path: Path) -> None:
    store = FileDocumentStore(tmp_path, max_document_bytes=4)
    staged = store.new_file()
    with pytest.raises(OSError, match="larger than 4 bytes"):
        staged.write(b"12345")
    staged.abort()
    store.close()


def _stage_and_die(root: str, payloads: list[bytes], published: list[bytes]) -> None:
    """A worker that stages documents, publishes some, and dies without cleaning up (like kill -9)."""
    store = FileDocumentStore(Path(root))
    contents = {p: store.stage_bytes([p]) for p in payloads}
    store.sync(contents.values())
    store.publish([contents[p] for p in published])
    os._exit(0)


def _crashed_worker(root: Path, payloads: list[bytes], published: list[bytes] = ()) -> None:  # type: ignore[assignment]
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_stage_and_die, args=(str(root), payloads, list(published)))
    proc.start()
    proc.join(10)
    assert proc.exitcode == 0


def test_recovery_completes_committed_and_removes_uncommitted(tmp_path: Path) -> None:
    committed, lost = b"committed before the crash", b"never acknowledged"
    _crashed_worker(tmp_path, [committed, lost])
    store = FileDocumentStore(tmp_path)
    asked: list[set[str]] = []

    def rows(addresses: object) -> set[str]:
        asked.append(set(addresses))  # type: ignore[call-overload]
        return {_sha256(committed)} & set(addresses)  # type: ignore[call-overload]

    report = store.recover(rows)
    assert (report.completed, report.removed, report.directories) == (1, 1, 1)
    assert asked == [{_sha256(committed), _sha256(lost)}]
    assert store.exists(_sha256(committed))
    assert not store.exists(_sha256(lost))
    assert b"".join(store.chunks(_sha256(committed))) == committed
    assert list((tmp_path / "staging").iterdir()) == []
    store.close()


def test_recovery_leaves_live_processes_alone(tmp_path: Path) -> None:
    live = FileDocumentStore(tmp_path)
    in_flight = live.stage_bytes([b"a submission in progress"])
    other = FileDocumentStore(tmp_path)
    # ``other`` plays a second worker: it cannot take ``live``'s lock, so it must not touch the file.
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[tuple[int, int, int]] = ctx.Queue()

    def recover_elsewhere() -> None:
        r = other.recover(lambda addresses: set())
        queue.put((r.completed, r.removed, r.directories))

    proc = ctx.Process(target=recover_elsewhere)
    proc.start()
    proc.join(10)
    assert queue.get(timeout=5) == (0, 0, 0)
    assert Path(in_flight.ref).exists()
    live.discard([in_flight])
    live.close()


def test_recovery_skips_when_nothing_was_staged(tmp_path: Path) -> None:
    assert FileDocumentStore(tmp_path / "new").recover(lambda a: set()).directories == 0


def test_close_removes_an_empty_staging_directory(tmp_path: Path) -> None:
    store = FileDocumentStore(tmp_path)
    store.discard([store.stage_bytes([b"x"])])
    store.close()
    assert list((tmp_path / "staging").iterdir()) == []


def test_health_reports_writable_and_free_space(store: FileDocumentStore) -> None:
    report = store.health()
    assert report["writable"] is True
    assert isinstance(report["free_bytes"], int) and report["free_bytes"] > 0


def test_health_reports_an_unwritable_store(tmp_path: Path) -> None:
    blocker = tmp_path / "documents"
    blocker.write_text("a file where the store's directory should be")
    broken = FileDocumentStore(blocker)
    report = broken.health()
    assert str(report["writable"]).startswith("error")
    broken.close()
