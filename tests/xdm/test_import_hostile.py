"""Hostile XDM packages through :func:`xds.exchange.import_xdm`, the node level (the reader alone is
:mod:`tests.xdm.test_reader`): zip slip (parent-relative, absolute, drive letter), a symbolic link, a 300 MiB
zip bomb (refused by ratio, by total, and by the streaming count when the header lies) and a flood of 100,000
entries, with a valid package for contrast.

For each hostile package: :class:`~xds.xdm.reader.XdmError` naming the problem; no delivery; nothing written
outside the node's data directory (the sentinel ``tmp_path/outside`` stays empty, no ``evil*`` file anywhere
under ``tmp_path``); the import scratch space ``<data_dir>/tmp`` empty; no staged file left in the document store
(only the staging directories' ``lock`` files) and nothing published; one ITI-32 audit record with outcome 8
(serious failure).
"""

from __future__ import annotations

import io
import re
import stat
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from xds import samples
from xds.audit.message import OUTCOME_SERIOUS_FAILURE, OUTCOME_SUCCESS
from xds.exchange import import_xdm
from xds.model.metadata import Submission
from xds.node import Node
from xds.recipient.model import TRANSPORT_XDM
from xds.xdm import reader
from xds.xdm.reader import Limits, XdmError
from xds.xdm.writer import write_package

MIB: Final = 1024 * 1024
BOMB_MIB: Final = 300
FLOOD: Final = 100_000
DOCUMENT: Final = (
    b'<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"><title>hostile</title></ClinicalDocument>'
)
META: Final = "IHE_XDM/SUBSET01/METADATA.XML"
DOC: Final = "IHE_XDM/SUBSET01/DOC00001.XML"

# --- packages ---------------------------------------------------------------------------------------------


def submission() -> tuple[Submission, dict[str, bytes]]:
    p = samples.patient("hostile")
    de = samples.document_entry(p, content=DOCUMENT, mime_type="text/xml")
    return samples.submission(p, [de]), {de.id: DOCUMENT}


def valid_entries() -> dict[str, bytes]:
    """A valid one-document package written by :mod:`xds.xdm.writer`, as entry name -> bytes."""
    buf = io.BytesIO()
    write_package(buf, [submission()])
    with zipfile.ZipFile(buf) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    assert META in entries and DOC in entries, sorted(entries)
    return entries


def uri_to(entries: dict[str, bytes], uri: str) -> dict[str, bytes]:
    """``entries`` with the DocumentEntry's URI slot naming ``uri`` instead of DOC00001.XML."""
    meta = entries[META]
    assert meta.count(b">DOC00001.XML<") == 1
    return {**entries, META: meta.replace(b">DOC00001.XML<", b">" + uri.encode() + b"<")}


def write_zip(path: Path, entries: dict[str, bytes], extra: Sequence[tuple[zipfile.ZipInfo, bytes]] = ()) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for info, data in extra:
            zf.writestr(info, data)
    return path


def raw_entry(name: str, *, link: bool = False) -> zipfile.ZipInfo:
    """An entry named exactly ``name`` (ZipInfo() may normalise a leading slash), optionally a symlink."""
    info = zipfile.ZipInfo("placeholder")
    info.filename = name
    if link:
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def traversal(folder: Path) -> Path:
    """ITI TF-2 §3.32 media with a zip-slip entry, and the metadata's URI pointing at it."""
    name = "IHE_XDM/SUBSET01/../../../evil.txt"
    return write_zip(folder / "case.zip", uri_to(valid_entries(), "../../../evil.txt"), [(raw_entry(name), DOCUMENT)])


def deep_traversal(folder: Path) -> Path:
    """A zip-slip entry aimed at ``tmp_path/outside`` from the scratch directory ``tmp_path/var/tmp/xdm-*``."""
    name = "IHE_XDM/SUBSET01/../../../../../outside/evil.txt"
    uri = "../../../../outside/evil.txt"
    return write_zip(folder / "case.zip", uri_to(valid_entries(), uri), [(raw_entry(name), DOCUMENT)])


def uri_escape(folder: Path) -> Path:
    """Every entry name is safe, but the metadata's URI climbs out of its subset to ``IHE_XDM/evil.txt``."""
    entries = {**uri_to(valid_entries(), "../evil.txt"), "IHE_XDM/evil.txt": DOCUMENT}
    return write_zip(folder / "case.zip", entries)


def absolute(folder: Path) -> Path:
    return write_zip(folder / "case.zip", valid_entries(), [(raw_entry("/etc/evil"), b"pwned")])


def drive(folder: Path) -> Path:
    return write_zip(folder / "case.zip", valid_entries(), [(raw_entry("C:\\evil"), b"pwned")])


def symlink(folder: Path) -> Path:
    """A symlink entry to the sentinel directory, named by the metadata's URI."""
    link = raw_entry("IHE_XDM/SUBSET01/EVIL.XML", link=True)
    return write_zip(folder / "case.zip", uri_to(valid_entries(), "EVIL.XML"), [(link, b"../../../../outside/evil")])


@pytest.fixture(scope="session")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid package whose document DOC00001.XML is 300 MiB of zeros, deflated (about 1000:1).

    Written once per session, streaming (``ZipFile.open(name, "w")``), so this test's memory stays small.
    """
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    zeros = bytes(MIB)
    started = time.perf_counter()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in valid_entries().items():
            if name != DOC:
                zf.writestr(name, data)
        with zf.open(DOC, "w") as out:
            for _ in range(BOMB_MIB):
                out.write(zeros)
    print(f"\nbomb package written in {time.perf_counter() - started:.2f}s ({path.stat().st_size} bytes)")
    info = zipfile.ZipFile(path).getinfo(DOC)
    assert info.file_size == BOMB_MIB * MIB and info.file_size > 200 * info.compress_size
    return path


@pytest.fixture(scope="session")
def flood(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid package plus tiny stored entries up to 100,000 entries in all (written once per session)."""
    path = tmp_path_factory.mktemp("flood") / "flood.zip"
    started = time.perf_counter()
    entries = valid_entries()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for n in range(FLOOD - len(entries)):
            zf.writestr(f"IHE_XDM/SUBSET01/F{n:06d}.TXT", b"x")
    print(f"\nflood package written in {time.perf_counter() - started:.2f}s ({path.stat().st_size} bytes)")
    return path


# --- checks -----------------------------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    sentinel = tmp_path / "outside"
    sentinel.mkdir()
    return sentinel


def assert_refused(node: Node, package: Path, pattern: str, tmp_path: Path, *, limits: Limits | None = None) -> float:
    """Import ``package``: refused with an XdmError matching ``pattern`` and no trace; answers the seconds taken."""
    started = time.perf_counter()
    with pytest.raises(XdmError, match=pattern) as refused:
        import_xdm(node, package, transport=TRANSPORT_XDM, sender="hostile-sender", limits=limits)
    elapsed = time.perf_counter() - started
    assert node.inbox.listing() == []
    assert list((tmp_path / "outside").iterdir()) == []
    assert [p for p in tmp_path.rglob("*") if p.name.lower().startswith("evil")] == []
    scratch = node.settings.data_path / "tmp"
    assert not scratch.exists() or list(scratch.iterdir()) == []
    staging = node.documents.staging_root
    leftovers = [p for p in staging.rglob("*") if not p.is_dir() and p.name != "lock"] if staging.exists() else []
    assert leftovers == []
    published = node.documents.objects
    assert not published.exists() or [p for p in published.rglob("*") if not p.is_dir()] == []
    records = node.audit.listing()
    assert [(r.event, r.outcome) for r in records] == [("ITI-32", OUTCOME_SERIOUS_FAILURE)]
    assert b"import refused" in records[0].xml
    assert str(refused.value)
    return elapsed


# --- tests ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    build: Callable[[Path], Path]
    pattern: str


CASES: Final = {
    "traversal": Case(traversal, re.escape("'IHE_XDM/SUBSET01/../../../evil.txt'") + ".*zip slip"),
    "traversal-to-outside": Case(deep_traversal, re.escape("../outside/evil.txt'") + ".*zip slip"),
    "uri-leaving-subset": Case(uri_escape, re.escape("URI '../evil.txt' leaves its subset directory")),
    "absolute": Case(absolute, re.escape("'/etc/evil'") + ".*absolute .*zip slip"),
    "drive-letter": Case(drive, re.escape(repr("C:\\evil")) + ".*zip slip"),
    "symlink": Case(symlink, "'IHE_XDM/SUBSET01/EVIL.XML': symbolic links are not allowed"),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_unsafe_entry_is_refused(case: Case, node: Node, tmp_path: Path, outside: Path) -> None:
    folder = tmp_path / "packages"
    folder.mkdir()
    package = case.build(folder)
    assert_refused(node, package, case.pattern, tmp_path)


def test_zip_bomb_is_refused_by_ratio(bomb: Path, node: Node, tmp_path: Path, outside: Path) -> None:
    elapsed = assert_refused(node, bomb, f"'{DOC}': compression ratio over 200:1 \\(zip bomb\\)", tmp_path)
    print(f"\nzip bomb refused by ratio in {elapsed:.3f}s")


def test_zip_bomb_is_refused_by_total(bomb: Path, node: Node, tmp_path: Path, outside: Path) -> None:
    limits = Limits(max_total_bytes=256 * MIB, max_ratio=10**9)
    elapsed = assert_refused(
        node, bomb, f"'{DOC}': uncompressed total exceeds {256 * MIB} bytes", tmp_path, limits=limits
    )
    print(f"\nzip bomb refused by total in {elapsed:.3f}s")


def test_zip_bomb_with_a_lying_header_is_refused_while_streaming(
    bomb: Path, node: Node, tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A central directory that understates every size: no up-front check refuses anything, so the bytes
    # counted while extracting into the scratch directory must, and that partial file must go.
    monkeypatch.setattr(reader, "_declared_size", lambda info: 0)
    elapsed = assert_refused(node, bomb, f"'{DOC}': compression ratio over 200:1", tmp_path)
    print(f"\nzip bomb (lying header) refused while streaming in {elapsed:.3f}s")


def test_entry_flood_is_refused_quickly(flood: Path, node: Node, tmp_path: Path, outside: Path) -> None:
    assert len(zipfile.ZipFile(flood).infolist()) == FLOOD
    elapsed = assert_refused(node, flood, f"{FLOOD} ZIP entries exceed the limit of 10000", tmp_path)
    print(f"\n{FLOOD} entries refused in {elapsed:.3f}s")
    assert elapsed < 10


def test_valid_package_for_contrast(node: Node, tmp_path: Path, outside: Path) -> None:
    folder = tmp_path / "packages"
    folder.mkdir()
    package = write_zip(folder / "case.zip", valid_entries())
    stored = import_xdm(node, package, transport=TRANSPORT_XDM, sender="friendly-sender")
    (delivery,) = node.inbox.listing()
    assert [d.reference for d in stored] == [delivery.reference]
    assert delivery.transport == TRANSPORT_XDM
    (doc,) = delivery.documents
    assert node.documents.path(doc.sha256).read_bytes() == DOCUMENT
    assert list(outside.iterdir()) == []
    scratch = node.settings.data_path / "tmp"
    assert not scratch.exists() or list(scratch.iterdir()) == []
    staging = node.documents.staging_root
    assert [p.name for p in staging.rglob("*") if not p.is_dir()] == ["lock"]
    assert [(r.event, r.outcome) for r in node.audit.listing()] == [("ITI-32", OUTCOME_SUCCESS)]
