"""ITI-32 Distribute Document Set on Media (ITI TF-2 §3.32), Portable Media Importer side: the XDM ZIP reader.

Theory of operation
-------------------
:func:`read_package` is lenient about layout and strict about safety. It works in three passes:

1. **Screen** every ZIP entry before anything is written: refuse the whole package on a name with ``..``, an
   absolute path, a drive letter or a NUL, on a symbolic link (``S_IFLNK`` in the external attributes), on
   more entries than :attr:`Limits.max_entries`, on declared sizes beyond :attr:`Limits.max_total_bytes` and
   on a declared compression ratio beyond :attr:`Limits.max_ratio`. Junk (``__MACOSX/``, ``.DS_Store``,
   ``._*``, ``*.swp``) and directory entries are set aside.
2. **Decode** each ``IHE_XDM/<subset>/METADATA.XML`` (any case, ``\\`` or ``/``, under an optional top folder)
   with the hardened :func:`~xds.ebrim.parser.parse_xml` and
   :func:`~xds.ebrim.messages.submit_objects_request`. ebRS 2.1 metadata (XDM before 2010) is refused by name.
   The legacy multi-value URI (values ``"1|part"``, ``"2|part"``, ...) is joined before decoding.
3. **Extract** each document a DocumentEntry's ``URI`` names (relative to its subset, matched without regard
   to case) into ``into/<subset>/``, streaming: the bytes are counted as they come, so the total and ratio caps
   hold even when a header lies, and every destination is resolved and checked to lie under ``into``. SHA-1
   and size are checked against the entry. On any failure the files written so far are removed.

Every refusal is an :class:`XdmError` (a :class:`ValueError`) naming the entry or document.

References
----------
ITI TF-1 §16 (XDM); ITI TF-2 §3.32.4.1 (media content), §3.32.4.2 (Portable Media Importer); ITI TF-3 §4.1,
§4.2.3.2.24 (DocumentEntry.URI, with the legacy ``n|part`` multi-value form); PKWARE APPNOTE §4.4.15
(external file attributes); OWASP "zip slip" and decompression-bomb guidance.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from lxml import etree

from xds.ebrim.messages import submit_objects_request
from xds.ebrim.parser import XMLError, parse_xml
from xds.errors import XDSError
from xds.model.metadata import DocumentEntry, Submission
from xds.namespaces import RIM, RIM21, RS21, qn

CHUNK: Final = 1024 * 1024
MIB: Final = 1024 * 1024

_SLOT: Final = qn(RIM, "Slot")
_VALUE: Final = qn(RIM, "Value")
_EXTRINSIC_OBJECT: Final = qn(RIM, "ExtrinsicObject")
_DRIVE: Final = re.compile(r"^[A-Za-z]:")
_METADATA: Final = re.compile(r"^(?:.*/)?ihe_xdm/([^/]+)/metadata\.xml$")
_LEGACY_URI_PART: Final = re.compile(r"^(\d+)\|(.*)$", re.DOTALL)


class XdmError(ValueError):
    """The package is refused: unsafe, over a limit, or its metadata and documents do not agree."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Caps enforced while reading a package (defaults suit e-mail attachments with room to spare)."""

    max_total_bytes: int = 2 * 1024 * MIB
    """Uncompressed bytes of all entries together."""
    max_entries: int = 10_000
    """ZIP entries, directories and junk included."""
    max_ratio: int = 200
    """Uncompressed : compressed size of one entry ..."""
    ratio_floor: int = MIB
    """... checked only once the entry has grown beyond this many bytes."""
    max_metadata_bytes: int = 16 * MIB
    """Size of one METADATA.XML."""


@dataclass(frozen=True, slots=True)
class Subset:
    """One ``IHE_XDM/<name>`` directory: its submission and the extracted file of each DocumentEntry id."""

    name: str
    submission: Submission
    documents: dict[str, Path]


def read_package(path: str | Path, into: Path, *, limits: Limits = Limits()) -> list[Subset]:
    """Read the XDM ZIP at ``path``, extracting its documents under ``into`` (created if missing).

    Raises
    ------
    XdmError
        The package is unsafe, over a limit in ``limits``, not an XDM package, or inconsistent. Nothing is
        left behind in ``into`` then.
    """
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise XdmError(f"{path}: not a readable ZIP file: {exc}") from None
    with zf:
        entries = _screen(zf.infolist(), limits)
        into.mkdir(parents=True, exist_ok=True)
        extraction = _Extraction(zf, into.resolve(), limits)
        try:
            return [extraction.subset(name, meta, entries) for name, meta in _subsets(entries)]
        except BaseException:
            extraction.undo()
            raise


def entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's path with ``/`` separators (Windows tools write ``\\``)."""
    return info.filename.replace("\\", "/")


def _screen(infos: list[zipfile.ZipInfo], limits: Limits) -> dict[str, zipfile.ZipInfo]:
    """Refuse the package on any unsafe entry; answer the useful files by lower-case name."""
    if len(infos) > limits.max_entries:
        raise XdmError(f"{len(infos)} ZIP entries exceed the limit of {limits.max_entries}")
    declared = 0
    files: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = _check_entry(info, limits)
        declared += _declared_size(info)
        if declared > limits.max_total_bytes:
            raise XdmError(f"entry {info.filename!r}: uncompressed total exceeds {limits.max_total_bytes} bytes")
        if not info.is_dir() and not name.endswith("/") and not _is_junk(name):
            if name.lower() in files:
                raise XdmError(f"entry {info.filename!r}: more than one entry of that name (ignoring case)")
            files[name.lower()] = info
    return files


def _check_entry(info: zipfile.ZipInfo, limits: Limits) -> str:
    name = entry_name(info)
    parts = name.split("/")
    if "\x00" in name or name.startswith("/") or _DRIVE.match(name) or ".." in parts:
        raise XdmError(f"entry {info.filename!r}: absolute or parent-relative path (zip slip)")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise XdmError(f"entry {info.filename!r}: symbolic links are not allowed")
    size = _declared_size(info)
    if size > limits.ratio_floor and size > limits.max_ratio * max(info.compress_size, 1):
        raise XdmError(f"entry {info.filename!r}: compression ratio over {limits.max_ratio}:1 (zip bomb)")
    return name


def _declared_size(info: zipfile.ZipInfo) -> int:
    """What the central directory claims the entry inflates to: checked up front, then counted for real."""
    return info.file_size


def _is_junk(name: str) -> bool:
    """Files archivers and editors leave behind: ``__MACOSX/``, ``.DS_Store``, ``._x`` forks, ``*.swp``."""
    parts = name.lower().split("/")
    base = parts[-1]
    return "__macosx" in parts or base in {".ds_store", "thumbs.db"} or base.startswith("._") or base.endswith(".swp")


def _subsets(files: dict[str, zipfile.ZipInfo]) -> list[tuple[str, zipfile.ZipInfo]]:
    found = []
    for lower, info in sorted(files.items()):
        if _METADATA.match(lower):
            found.append((entry_name(info).split("/")[-2], info))
    if not found:
        raise XdmError("not an XDM package: no IHE_XDM/<subset>/METADATA.XML entry")
    return found


def _decode(data: bytes, entry: str) -> Submission:
    """Decode one METADATA.XML (ITI TF-3 §4.1: an ``lcm:SubmitObjectsRequest``)."""
    try:
        root = parse_xml(data)
    except XMLError as exc:
        raise XdmError(f"{entry}: {exc}") from None
    if etree.QName(root).namespace in (RS21, RIM21) or root.find(f".//{{{RIM21}}}LeafRegistryObjectList") is not None:
        raise XdmError(
            f"{entry}: ebRS 2.1 XDM packages (XDM before 2010) are not supported; "
            "the metadata must be an ebRS 3.0 lcm:SubmitObjectsRequest (ITI TF-3 §4.1)"
        )
    _join_legacy_uris(root)
    try:
        return submit_objects_request(root)
    except XDSError as exc:
        raise XdmError(f"{entry}: invalid metadata: {exc}") from None


def _join_legacy_uris(root: etree._Element) -> None:
    """Rewrite a multi-value URI slot ``"1|abc" "2|def"`` as the single value ``"abcdef"``.

    ITI TF-3 §4.2.3.2.24 (older editions): a URI longer than one slot value (128 characters) was split over
    several values, each prefixed by its 1-based position and ``|``; the parts may come in any order.
    """
    for slot in root.iter(_SLOT):
        parent = slot.getparent()
        if slot.get("name") != "URI" or parent is None or parent.tag != _EXTRINSIC_OBJECT:
            continue
        values = list(slot.iter(_VALUE))
        if len(values) < 2:
            continue
        parts = [_LEGACY_URI_PART.match(v.text or "") for v in values]
        if not all(parts):
            raise XdmError(f"{parent.get('id')}: URI slot has several values that are not of the form n|part")
        joined = "".join(m.group(2) for m in sorted((m for m in parts if m), key=lambda m: int(m.group(1))))
        values[0].text = joined
        for extra in values[1:]:
            extra_parent = extra.getparent()
            if extra_parent is not None:
                extra_parent.remove(extra)


class _Extraction:
    """Streams entries out of one ZIP under one root, counting bytes; remembers what it wrote to undo it."""

    def __init__(self, zf: zipfile.ZipFile, root: Path, limits: Limits) -> None:
        self._zf = zf
        self._root = root
        self._limits = limits
        self._total = 0
        self._created: list[Path] = []
        self._extracted: dict[str, tuple[Path, str, int]] = {}

    def subset(self, name: str, meta: zipfile.ZipInfo, files: dict[str, zipfile.ZipInfo]) -> Subset:
        """Decode one subset's metadata and extract the document of each of its DocumentEntries."""
        if _declared_size(meta) > self._limits.max_metadata_bytes:
            raise XdmError(f"entry {meta.filename!r}: larger than {self._limits.max_metadata_bytes} bytes")
        data = b"".join(self._stream(meta, self._limits.max_metadata_bytes))
        submission = _decode(data, meta.filename)
        directory = entry_name(meta).rsplit("/", 1)[0]
        target = self._mkdir(name)
        documents: dict[str, Path] = {}
        for de in submission.document_entries:
            documents[de.id] = self._document(de, directory, target, files)
        return Subset(name=name, submission=submission, documents=documents)

    def _document(self, de: DocumentEntry, directory: str, target: Path, files: dict[str, zipfile.ZipInfo]) -> Path:
        uri = de.uri.replace("\\", "/").removeprefix("./")
        if not uri:
            raise XdmError(f"DocumentEntry {de.id}: no URI slot naming its file")
        if uri.startswith("/") or _DRIVE.match(uri) or ".." in uri.split("/") or "\x00" in uri:
            raise XdmError(f"DocumentEntry {de.id}: URI {de.uri!r} leaves its subset directory")
        info = files.get(f"{directory}/{uri}".lower())
        if info is None:
            raise XdmError(f"DocumentEntry {de.id}: URI {de.uri!r} names no file in {directory}/")
        if info.filename not in self._extracted:
            self._extracted[info.filename] = self._extract(info, target, entry_name(info)[len(directory) + 1 :])
        dest, digest, size = self._extracted[info.filename]
        _verify(de, digest, size)
        return dest

    def _extract(self, info: zipfile.ZipInfo, target: Path, relative: str) -> tuple[Path, str, int]:
        """Stream one entry to ``target/relative``; answer the file, its SHA-1 and its size."""
        dest = self._destination(target, relative)
        sha1 = hashlib.sha1()
        size = 0
        with dest.open("xb") as out:
            self._created.append(dest)
            for chunk in self._stream(info, self._limits.max_total_bytes):
                sha1.update(chunk)
                size += len(chunk)
                out.write(chunk)
        return dest, sha1.hexdigest(), size

    def _mkdir(self, name: str) -> Path:
        target = self._destination(self._root, name)
        self._makedirs(target)
        return target

    def _makedirs(self, path: Path) -> None:
        """Create ``path`` and its missing parents below the root, remembering only the ones created here."""
        if path == self._root or path.is_dir():
            return
        self._makedirs(path.parent)
        path.mkdir()
        self._created.append(path)

    def _destination(self, base: Path, relative: str) -> Path:
        dest = (base / relative).resolve()
        if not dest.is_relative_to(self._root) or dest == self._root:
            raise XdmError(f"{relative!r} would be written outside {self._root}")
        if dest.exists() and not dest.is_dir():
            raise XdmError(f"{dest} already exists")
        self._makedirs(dest.parent)
        return dest

    def _stream(self, info: zipfile.ZipInfo, cap: int) -> Iterator[bytes]:
        """The entry's bytes in chunks, refused as soon as the running count breaks the entry, total or ratio
        cap: the header's ``file_size`` is only a claim."""
        try:
            yield from self._checked(info, cap)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise XdmError(f"entry {info.filename!r}: cannot be read: {exc}") from None

    def _checked(self, info: zipfile.ZipInfo, cap: int) -> Iterator[bytes]:
        count = 0
        limits = self._limits
        with self._zf.open(info) as src:
            while chunk := src.read(CHUNK):
                count += len(chunk)
                self._total += len(chunk)
                if count > cap:
                    raise XdmError(f"entry {info.filename!r}: larger than {cap} bytes")
                if self._total > limits.max_total_bytes:
                    raise XdmError(f"entry {info.filename!r}: uncompressed total exceeds {limits.max_total_bytes}")
                if count > limits.ratio_floor and count > limits.max_ratio * max(info.compress_size, 1):
                    raise XdmError(f"entry {info.filename!r}: compression ratio over {limits.max_ratio}:1")
                yield chunk

    def undo(self) -> None:
        """Remove every file and directory this extraction created."""
        for path in reversed(self._created):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _verify(de: DocumentEntry, digest: str, size: int) -> None:
    """ITI TF-3 §4.2.3.2.14 hash (SHA-1 hex) and §4.2.3.2.20 size, when the entry carries them."""
    if de.hash and de.hash.lower() != digest:
        raise XdmError(f"DocumentEntry {de.id} ({de.uri}): SHA-1 {digest} does not match the hash {de.hash}")
    if de.size is not None and de.size != size:
        raise XdmError(f"DocumentEntry {de.id} ({de.uri}): {size} bytes do not match the size {de.size}")


__all__ = ["Limits", "Subset", "XdmError", "entry_name", "read_package"]
