"""The file document store: content-addressed, crash-safe, shared by every worker of a node.

Theory of operation
-------------------
Layout under the store's root (``<data_dir>/documents`` by default)::

    objects/ab/abcdef...        published content, named by its SHA-256 (never rewritten, never partial)
    staging/<owner>/            one directory per process; ``lock`` is flock-ed for the process lifetime
    staging/<owner>/<n>.part    a document streaming in (or waiting for the registry's answer)

A document's bytes stream into a staging file while SHA-1 (for the metadata) and SHA-256 (the address) are
computed (:class:`StagedFile`, a :class:`~xds.soap.mtom.PartSink`). Before the registry commits, the file
is fsynced (:meth:`FileDocumentStore.sync`); after the commit it is renamed into ``objects/``
(:meth:`FileDocumentStore.publish`), and only then is the submission acknowledged. A rejected submission's
files are deleted (:meth:`FileDocumentStore.discard`).

Crash safety: a process that dies (kill -9, power loss) leaves its staging directory behind, with its lock
released by the kernel. :meth:`FileDocumentStore.recover` (run when a node opens) takes every unlocked
staging directory, hashes each file in it and asks the database whether that content was committed: if
so, it completes the rename (the crash hit between commit and rename); if not, the file is deleted (the
submission was never acknowledged). Live processes' directories are locked and skipped, so recovery is safe
while other workers run. Content is never in ``objects/`` unless a committed row references it.

SHA-256 is the address because SHA-1 collisions can be constructed: with SHA-1 addresses, a colliding
document could make the store serve other bytes for an existing document.

References
----------
ITI TF-2 §3.41.4.1.3 (the repository stores the document, computes hash and size, then registers).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from xds.model.messages import DocumentContent

log = logging.getLogger("xds.documents")

READ_CHUNK: Final = 1024 * 1024
_LOCK: Final = "lock"


@dataclass(frozen=True, slots=True)
class Recovery:
    """What :meth:`FileDocumentStore.recover` did."""

    completed: int = 0
    removed: int = 0
    directories: int = 0


class StagedFile:
    """One document streaming into a staging file, hashed on the way (a :class:`~xds.soap.mtom.PartSink`)."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self._fh: IO[bytes] | None = open(path, "xb")  # noqa: SIM115 - closed in close()/abort()
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self._limit = limit
        self.size = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        """Append ``data`` (hashing it)."""
        assert self._fh is not None, "write after close"
        self.size += len(data)
        if self.size > self._limit:
            raise OSError(f"document larger than {self._limit} bytes")
        self._sha1.update(data)
        self._sha256.update(data)
        self._fh.write(data)

    def close(self) -> None:
        """The part ended: close the file (fsync comes later, off the event loop)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.closed = True

    def abort(self) -> None:
        """Parsing failed: close and delete."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.path.unlink(missing_ok=True)

    @property
    def content(self) -> DocumentContent:
        """The staged content (valid after :meth:`close`)."""
        return DocumentContent(
            ref=str(self.path), size=self.size, sha1=self._sha1.hexdigest(), sha256=self._sha256.hexdigest()
        )


class FileDocumentStore:
    """Documents as content-addressed files under one root directory."""

    def __init__(self, root: Path, *, max_document_bytes: int = 1 << 42) -> None:
        self.root = root
        self.objects = root / "objects"
        self.staging_root = root / "staging"
        self.max_document_bytes = max_document_bytes
        self._own: Path | None = None
        self._lock_fh: IO[bytes] | None = None
        self._pid = 0

    # --- staging ---------------------------------------------------------------------------------------

    def _staging(self) -> Path:
        """This process's staging directory, created and locked on first use (and again after a fork)."""
        if self._own is None or self._pid != os.getpid():
            self.objects.mkdir(parents=True, exist_ok=True)
            self.staging_root.mkdir(parents=True, exist_ok=True)
            own = self.staging_root / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            own.mkdir()
            fh = open(own / _LOCK, "wb")  # noqa: SIM115 - held for the process lifetime
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._own, self._lock_fh, self._pid = own, fh, os.getpid()
        return self._own

    def new_file(self) -> StagedFile:
        """A new staging file for one document."""
        return StagedFile(self._staging() / f"{uuid.uuid4().hex}.part", self.max_document_bytes)

    def stage_bytes(self, chunks: Iterable[bytes]) -> DocumentContent:
        """Stage content given in memory (inline base64 documents)."""
        staged = self.new_file()
        try:
            for chunk in chunks:
                staged.write(chunk)
        except BaseException:
            staged.abort()
            raise
        staged.close()
        return staged.content

    def stage_copy(self, sha256: str, *, sha1: str, size: int) -> DocumentContent:
        """Stage published content again (a hard link, or a copy across file systems), for a second submission
        of the same bytes (a delivery imported into the repository). FileNotFoundError when it is not
        published."""
        source = self.path(sha256)
        staged = self._staging() / f"{uuid.uuid4().hex}.part"
        try:
            os.link(source, staged)
        except FileNotFoundError:
            raise
        except OSError:
            shutil.copyfile(source, staged)
        return DocumentContent(ref=str(staged), size=size, sha1=sha1, sha256=sha256)

    def stage_file(self, path: Path) -> DocumentContent:
        """Stage a copy of the file at ``path`` (read in chunks: an extracted XDM document, a DICOM instance)."""

        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as fh:
                while chunk := fh.read(READ_CHUNK):
                    yield chunk

        return self.stage_bytes(chunks())

    @staticmethod
    def sync(contents: Iterable[DocumentContent]) -> None:
        """fsync staged files: their bytes are on disk before the registry commits."""
        for c in contents:
            fd = os.open(c.ref, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def publish(self, contents: Iterable[DocumentContent]) -> None:
        """Move staged files into ``objects/`` (the registry accepted them); identical content is kept once.

        Under the objects lock, so that :meth:`remove_unreferenced` never deletes a file another submission has
        just committed a reference to and found already there."""
        with self._objects_lock():
            for c in contents:
                target = self.path(c.sha256)
                if target.exists():
                    Path(c.ref).unlink(missing_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(c.ref, target)

    @staticmethod
    def discard(contents: Iterable[DocumentContent]) -> None:
        """Delete staged files (the submission was rejected)."""
        for c in contents:
            if c.ref:
                Path(c.ref).unlink(missing_ok=True)

    def remove_unreferenced(self, sha256s: Collection[str], referenced: Callable[[Collection[str]], set[str]]) -> int:
        """Delete published content no record references any more (a remote registry refused it late, a delivery
        was rejected)."""
        with self._objects_lock():  # the check and the deletion are one step against publish
            gone = set(sha256s) - referenced(set(sha256s))
            for digest in gone:
                self.path(digest).unlink(missing_ok=True)
        return len(gone)

    @contextlib.contextmanager
    def _objects_lock(self) -> Iterator[None]:
        """An exclusive flock shared by every process of the node: publishing and removing take turns."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "objects.lock", "ab") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # --- reading ---------------------------------------------------------------------------------------

    def path(self, sha256: str) -> Path:
        """Where content with this SHA-256 lives once published."""
        return self.objects / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        """True when content with this SHA-256 is published."""
        return self.path(sha256).is_file()

    def chunks(self, sha256: str, *, size: int = READ_CHUNK) -> Iterator[bytes]:
        """The published content in chunks."""
        with open(self.path(sha256), "rb") as fh:
            while chunk := fh.read(size):
                yield chunk

    # --- recovery and health -----------------------------------------------------------------------------

    def recover(self, committed: Callable[[Collection[str]], set[str]]) -> Recovery:
        """Finish or undo what dead processes left in staging (see the module docstring).

        ``committed`` answers which SHA-256 addresses committed rows reference.
        """
        if not self.staging_root.is_dir():
            return Recovery()
        completed = removed = dirs = 0
        for directory in sorted(self.staging_root.iterdir()):
            if directory == self._own or not directory.is_dir():
                continue
            with _dead_owner(directory) as dead:
                if not dead:
                    continue
                files = [p for p in directory.iterdir() if p.name != _LOCK]
                hashed = {p: _sha256_of(p) for p in files}
                keep = committed(set(hashed.values()))
                for p, digest in hashed.items():
                    target = self.path(digest)
                    if digest in keep and not target.exists():
                        target.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(p, target)
                        completed += 1
                    else:
                        p.unlink()
                        removed += digest not in keep
                shutil.rmtree(directory, ignore_errors=True)
                dirs += 1
        if completed or removed:
            log.warning("document store recovery: %d completed, %d removed, %d directories", completed, removed, dirs)
        return Recovery(completed, removed, dirs)

    def health(self) -> dict[str, object]:
        """Writable (a file can be created and fsynced) and free space."""
        try:
            staged = self.stage_bytes([b"health"])
            self.sync([staged])
            self.discard([staged])
            writable: bool | str = True
        except OSError as exc:
            writable = f"error: {exc.strerror or exc}"
        try:
            usage = shutil.disk_usage(self.root)
            free: int | None = usage.free
        except OSError:
            free = None
        return {"path": str(self.root), "writable": writable, "free_bytes": free}

    def close(self) -> None:
        """Release this process's staging lock and remove its (empty) staging directory."""
        if self._own is not None and self._pid == os.getpid():
            leftovers = [p for p in self._own.iterdir() if p.name != _LOCK]
            if not leftovers:
                shutil.rmtree(self._own, ignore_errors=True)
            if self._lock_fh is not None:
                self._lock_fh.close()
        self._own, self._lock_fh = None, None


@contextlib.contextmanager
def _dead_owner(directory: Path) -> Iterator[bool]:
    """Lock a staging directory; True when its owner is gone (the lock was free)."""
    try:
        fh = open(directory / _LOCK, "ab")  # noqa: SIM115
    except OSError:
        yield True  # no lock file: the owner died before creating it
        return
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        fh.close()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["READ_CHUNK", "FileDocumentStore", "Recovery", "StagedFile"]
