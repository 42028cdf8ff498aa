"""Tests of :mod:`xds.xdm.reader`: lenient about layout (NIST samples, Mac/Windows archivers), strict about
safety (zip slip, symlinks, bombs, entry floods) and about metadata/document agreement (hash, size, URI)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from tests.conformance.corpus import MISSING, corpus_dir
from xds import samples
from xds.ebrim.messages import render_submit_objects_request
from xds.model.metadata import Submission
from xds.xdm import reader
from xds.xdm.reader import Limits, Subset, XdmError, read_package
from xds.xdm.writer import DocumentSource, write_package

XML_DOC = b'<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"/>'
PDF_DOC = b"%PDF-1.4\n" + bytes(range(256)) * 40
JPG_DOC = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8
DIRECT_MESSAGES = "nist-iheos-toolkit2/xdstools2/src/main/webapp/toolkitx/testkit/direct-messages"
SMALL = Limits(max_total_bytes=1024 * 1024, max_entries=1000)
DEFAULT = Limits()

# --- helpers ----------------------------------------------------------------------------------------------


def documents() -> tuple[Submission, dict[str, bytes]]:
    p = samples.patient()
    content = {"text/xml": XML_DOC, "application/pdf": PDF_DOC, "image/jpeg": JPG_DOC}
    entries = [samples.document_entry(p, content=c, mime_type=m) for m, c in content.items()]
    return samples.submission(p, entries), {de.id: content[de.mime_type] for de in entries}


def package(*pairs: tuple[Submission, Mapping[str, DocumentSource]]) -> dict[str, bytes]:
    """An XDM package written by :mod:`xds.xdm.writer`, as entry name -> bytes."""
    buf = io.BytesIO()
    write_package(buf, list(pairs) or [documents()])
    with zipfile.ZipFile(buf) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def zip_file(
    path: Path, entries: Mapping[str, bytes] | Sequence[zipfile.ZipInfo | tuple[zipfile.ZipInfo | str, bytes]]
) -> Path:
    """Write ``entries`` (name -> bytes, or ZipInfo objects with optional content) to ``path``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        items = entries.items() if isinstance(entries, dict) else entries
        for item in items:
            if isinstance(item, zipfile.ZipInfo):
                zf.writestr(item, b"")
            else:
                zf.writestr(item[0], item[1])
    return path


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path below ``root`` with its content (None for a directory)."""
    return {p.relative_to(root).as_posix(): None if p.is_dir() else p.read_bytes() for p in root.rglob("*")}


@pytest.fixture
def refused(tmp_path: Path) -> Iterator[Callable[[Path, str], None]]:
    """``refused(zip, pattern)``: reading fails with an XdmError matching ``pattern`` and changes nothing.

    The package is read into ``tmp_path/sandbox/into``; afterwards ``tmp_path`` holds what it held before (so
    nothing escaped ``into``) and ``into`` holds nothing (so a refused package leaves nothing behind).
    """
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    into = sandbox / "into"

    def check(path: Path, pattern: str, limits: Limits = DEFAULT) -> None:
        before = tree(tmp_path)
        with pytest.raises(XdmError, match=pattern):
            read_package(path, into, limits=limits)
        after = tree(tmp_path)
        assert {k: v for k, v in after.items() if not k.startswith("sandbox/into")} == before
        assert not into.exists() or list(into.iterdir()) == []

    yield check


def by_id(subsets: list[Subset]) -> dict[str, bytes]:
    return {i: p.read_bytes() for s in subsets for i, p in s.documents.items()}


# --- round trip -------------------------------------------------------------------------------------------


def test_round_trip_keeps_metadata_bytes_and_hashes(tmp_path: Path) -> None:
    sub, docs = documents()
    path = zip_file(tmp_path / "xdm.zip", package((sub, docs)))
    (subset,) = read_package(path, tmp_path / "out")
    assert subset.name == "SUBSET01"
    assert subset.submission.submission_sets == sub.submission_sets
    assert subset.submission.associations == sub.associations
    assert [dataclasses.replace(de, uri="") for de in subset.submission.document_entries] == list(sub.document_entries)
    assert by_id([subset]) == docs
    for de in subset.submission.document_entries:
        assert hashlib.sha1(subset.documents[de.id].read_bytes()).hexdigest() == de.hash
    names = sorted(p.name for p in subset.documents.values())
    assert names == ["DOC00001.XML", "DOC00002.PDF", "DOC00003.JPG"]
    assert all(p.is_relative_to(tmp_path / "out" / "SUBSET01") for p in subset.documents.values())


def test_several_subsets(tmp_path: Path) -> None:
    first, second = documents(), documents()
    path = zip_file(tmp_path / "xdm.zip", package(first, second))
    subsets = read_package(path, tmp_path / "out")
    assert [s.name for s in subsets] == ["SUBSET01", "SUBSET02"]
    assert [s.submission.submission_sets for s in subsets] == [first[0].submission_sets, second[0].submission_sets]
    assert by_id(subsets) == {**first[1], **second[1]}


# --- lenient ----------------------------------------------------------------------------------------------


def test_windows_paths_any_case_a_top_folder_and_junk(tmp_path: Path) -> None:
    sub, docs = documents()
    entries = {f"Export\\{name.replace('/', chr(92)).lower()}": data for name, data in package((sub, docs)).items()}
    entries |= {
        "__MACOSX/IHE_XDM/SUBSET01/._DOC00001.XML": b"\x00\x05\x16\x07",
        "Export\\ihe_xdm\\.DS_Store": b"\x00\x00\x00\x01Bud1",
        "Export\\ihe_xdm\\subset01\\.METADATA.XML.swp": b"b0VIM",
    }
    subsets = read_package(zip_file(tmp_path / "xdm.zip", entries), tmp_path / "out")
    assert [s.name for s in subsets] == ["subset01"]
    assert by_id(subsets) == docs


def test_legacy_multi_value_uri(tmp_path: Path) -> None:
    sub, docs = documents()
    entries = package((sub, docs))
    meta = entries["IHE_XDM/SUBSET01/METADATA.XML"].decode()
    split = "<rim:Value>2|0001.XML</rim:Value><rim:Value>1|DOC0</rim:Value>"
    entries["IHE_XDM/SUBSET01/METADATA.XML"] = meta.replace("<rim:Value>DOC00001.XML</rim:Value>", split).encode()
    assert split.encode() in entries["IHE_XDM/SUBSET01/METADATA.XML"]
    (subset,) = read_package(zip_file(tmp_path / "xdm.zip", entries), tmp_path / "out")
    first = sub.document_entries[0].id
    assert subset.submission.document_entries[0].uri == "DOC00001.XML"
    assert subset.documents[first].read_bytes() == XML_DOC


def test_two_entries_may_share_one_file(tmp_path: Path) -> None:
    sub, docs = documents()
    entries = edited(sub, docs, uri="DOC00002.PDF", hash=hashlib.sha1(PDF_DOC).hexdigest(), size=len(PDF_DOC))
    (subset,) = read_package(zip_file(tmp_path / "x.zip", entries), tmp_path / "out")
    first, second, _ = (subset.documents[de.id] for de in sub.document_entries)
    assert first == second and first.read_bytes() == PDF_DOC


def nist_samples() -> list[Path]:
    base = corpus_dir()
    return sorted((base / DIRECT_MESSAGES).glob("*_in_XDM.zip")) if base else []


@pytest.mark.skipif(not nist_samples(), reason=MISSING + "; needs testkit/direct-messages/*_in_XDM.zip")
@pytest.mark.parametrize("path", nist_samples(), ids=lambda p: p.name)
def test_nist_direct_samples(path: Path, tmp_path: Path) -> None:
    (subset,) = read_package(path, tmp_path / "out")
    (de,) = subset.submission.document_entries
    content = subset.documents[de.id].read_bytes()
    assert de.mime_type == "text/xml"
    assert de.uri.lower() == path.name.removesuffix("_in_XDM.zip").lower() + ".xml"
    assert hashlib.sha1(content).hexdigest() == de.hash and len(content) == de.size
    original = path.with_name(path.name.removesuffix("_in_XDM.zip") + ".xml")
    assert content == original.read_bytes()
    assert [p.name for p in (tmp_path / "out").rglob("*") if p.is_file()] == [subset.documents[de.id].name]


def test_nist_samples_are_found_when_the_corpus_is_there() -> None:
    if corpus_dir() is None:
        pytest.skip(MISSING)
    assert len(nist_samples()) >= 6


# --- safe: hostile packages ------------------------------------------------------------------------------


def with_extra(name: str) -> dict[str, bytes]:
    return {**package(), name: b"pwned"}


@pytest.mark.parametrize(
    "name",
    [
        "../evil",
        "IHE_XDM/SUBSET01/../../evil",
        "/abs",
        "/tmp/evil",
        "C:\\x",
        "c:/windows/evil",
        "IHE_XDM\\..\\..\\evil",
    ],
)
def test_path_traversal_is_refused(name: str, tmp_path: Path, refused: Callable[..., None]) -> None:
    info = zipfile.ZipInfo("placeholder")
    info.filename = name  # ZipInfo() would strip a leading slash on some platforms
    path = zip_file(tmp_path / "evil.zip", [*list(package().items()), (info, b"pwned")])
    assert name in zipfile.ZipFile(path).namelist()
    refused(path, re.escape(repr(name)) + ".*zip slip")


def test_symlink_entry_is_refused(tmp_path: Path, refused: Callable[..., None]) -> None:
    link = zipfile.ZipInfo("IHE_XDM/SUBSET01/LINK.XML")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = zip_file(tmp_path / "link.zip", [*list(package().items()), (link, b"../../../../etc/passwd")])
    refused(path, "'IHE_XDM/SUBSET01/LINK.XML': symbolic links are not allowed")


def test_compression_bomb_is_refused(tmp_path: Path, refused: Callable[..., None]) -> None:
    path = zip_file(tmp_path / "bomb.zip", {**package(), "IHE_XDM/SUBSET01/ZEROS.BIN": bytes(3 * 1024 * 1024)})
    info = zipfile.ZipFile(path).getinfo("IHE_XDM/SUBSET01/ZEROS.BIN")
    assert info.file_size > 200 * info.compress_size
    refused(path, "'IHE_XDM/SUBSET01/ZEROS.BIN': compression ratio over 200:1")


def test_high_ratio_is_fine_below_one_mebibyte(tmp_path: Path) -> None:
    path = zip_file(tmp_path / "small.zip", {**package(), "IHE_XDM/SUBSET01/ZEROS.BIN": bytes(1024 * 1024)})
    assert len(read_package(path, tmp_path / "out")) == 1


def test_total_size_is_capped(tmp_path: Path, refused: Callable[..., None]) -> None:
    path = zip_file(tmp_path / "big.zip", {**package(), "IHE_XDM/SUBSET01/RANDOM.BIN": os.urandom(2 * 1024 * 1024)})
    refused(path, "uncompressed total exceeds 1048576", SMALL)


@pytest.mark.parametrize(
    ("limits", "pattern"),
    [
        (Limits(max_total_bytes=25_000), "DOC00002.PDF': uncompressed total exceeds 25000"),
        (Limits(max_ratio=1, ratio_floor=100), "compression ratio over 1:1"),
        (Limits(max_metadata_bytes=1000), "METADATA.XML': larger than 1000 bytes"),
    ],
)
def test_caps_hold_while_streaming_when_headers_lie(
    limits: Limits, pattern: str, tmp_path: Path, refused: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulate a lying central directory: no header check refuses anything, so only the counting can.
    monkeypatch.setattr(reader, "_declared_size", lambda info: 0)
    path = zip_file(tmp_path / "lying.zip", package())
    refused(path, pattern, limits)


def test_entry_flood_is_refused(tmp_path: Path, refused: Callable[..., None]) -> None:
    flood = [zipfile.ZipInfo(f"IHE_XDM/SUBSET01/E{n:05d}.TXT") for n in range(1001 - len(package()))]
    path = zip_file(tmp_path / "flood.zip", [*list(package().items()), *flood])
    assert len(zipfile.ZipFile(path).infolist()) == 1001
    refused(path, "1001 ZIP entries exceed the limit of 1000", SMALL)


def test_corrupt_entry_is_refused(tmp_path: Path, refused: Callable[..., None]) -> None:
    entries = package()
    path = tmp_path / "corrupt.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    raw = bytearray(path.read_bytes())
    at = raw.index(PDF_DOC)
    raw[at + 100] ^= 0xFF
    path.write_bytes(bytes(raw))
    refused(path, "'IHE_XDM/SUBSET01/DOC00002.PDF': cannot be read: Bad CRC-32")


def test_not_a_zip(tmp_path: Path, refused: Callable[..., None]) -> None:
    path = tmp_path / "xdm.zip"
    path.write_bytes(b"not a zip at all")
    refused(path, "not a readable ZIP file")


# --- metadata and documents must agree ---------------------------------------------------------------------


def edited(sub: Submission, docs: Mapping[str, DocumentSource], **changes: object) -> dict[str, bytes]:
    """A package whose METADATA.XML carries the first DocumentEntry with ``changes`` (written after the fact)."""
    entries = package((sub, docs))
    (first, *rest) = [
        dataclasses.replace(de, uri=f"DOC0000{n}.{ext}")
        for n, (de, ext) in enumerate(zip(sub.document_entries, ("XML", "PDF", "JPG"), strict=True), 1)
    ]
    changed = dataclasses.replace(sub, document_entries=(dataclasses.replace(first, **changes), *rest))  # type: ignore[arg-type]
    entries["IHE_XDM/SUBSET01/METADATA.XML"] = render_submit_objects_request(changed)
    return entries


def test_hash_mismatch(tmp_path: Path, refused: Callable[..., None]) -> None:
    sub, docs = documents()
    path = zip_file(tmp_path / "x.zip", edited(sub, docs, hash="da39a3ee5e6b4b0d3255bfef95601890afd80709"))
    refused(path, f"DocumentEntry {sub.document_entries[0].id} .*SHA-1 .* does not match the hash da39a3ee")


def test_hash_is_compared_without_regard_to_case(tmp_path: Path) -> None:
    sub, docs = documents()
    upper = hashlib.sha1(XML_DOC).hexdigest().upper()
    path = zip_file(tmp_path / "x.zip", edited(sub, docs, hash=upper))
    assert read_package(path, tmp_path / "out")[0].submission.document_entries[0].hash == upper


def test_size_mismatch(tmp_path: Path, refused: Callable[..., None]) -> None:
    sub, docs = documents()
    path = zip_file(tmp_path / "x.zip", edited(sub, docs, size=len(XML_DOC) + 1))
    refused(path, f"DocumentEntry {sub.document_entries[0].id} .*{len(XML_DOC)} bytes do not match the size")


def test_missing_document(tmp_path: Path, refused: Callable[..., None]) -> None:
    entries = package()
    del entries["IHE_XDM/SUBSET01/DOC00002.PDF"]
    refused(zip_file(tmp_path / "x.zip", entries), "URI 'DOC00002.PDF' names no file in IHE_XDM/SUBSET01/")


def test_entry_without_uri(tmp_path: Path, refused: Callable[..., None]) -> None:
    sub, docs = documents()
    refused(zip_file(tmp_path / "x.zip", edited(sub, docs, uri="")), "no URI slot naming its file")


def test_uri_leaving_the_subset(tmp_path: Path, refused: Callable[..., None]) -> None:
    sub, docs = documents()
    entries = {**edited(sub, docs, uri="../SUBSET02/DOC00001.XML"), "IHE_XDM/SUBSET02/DOC00001.XML": XML_DOC}
    refused(zip_file(tmp_path / "x.zip", entries), "URI '../SUBSET02/DOC00001.XML' leaves its subset directory")


def test_no_metadata(tmp_path: Path, refused: Callable[..., None]) -> None:
    entries = {k: v for k, v in package().items() if not k.endswith("METADATA.XML")}
    refused(zip_file(tmp_path / "x.zip", entries), "not an XDM package: no IHE_XDM/<subset>/METADATA.XML")


@pytest.mark.parametrize(
    ("metadata", "pattern"),
    [
        (b"<not-closed>", "METADATA.XML: not well-formed XML"),
        (b'<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>', "METADATA.XML: a DOCTYPE / DTD is not allowed"),
        (b"<x/>", "METADATA.XML: invalid metadata: expected lcm:SubmitObjectsRequest"),
    ],
)
def test_bad_metadata(metadata: bytes, pattern: str, tmp_path: Path, refused: Callable[..., None]) -> None:
    entries = {**package(), "IHE_XDM/SUBSET01/METADATA.XML": metadata}
    refused(zip_file(tmp_path / "x.zip", entries), pattern)


EBRS21 = [
    b'<SubmitObjectsRequest xmlns="urn:oasis:names:tc:ebxml-regrep:registry:xsd:2.1">'
    b'<LeafRegistryObjectList xmlns="urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1"/></SubmitObjectsRequest>',
    b'<rim:LeafRegistryObjectList xmlns:rim="urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1"/>',
]


@pytest.mark.parametrize("metadata", EBRS21, ids=["SubmitObjectsRequest", "LeafRegistryObjectList"])
def test_ebrs21_package_is_refused_by_name(metadata: bytes, tmp_path: Path, refused: Callable[..., None]) -> None:
    entries = {"IHE_XDM/SUBSET01/METADATA.XML": metadata, "IHE_XDM/SUBSET01/DOC1.XML": XML_DOC}
    refused(zip_file(tmp_path / "x.zip", entries), r"ebRS 2\.1 XDM packages \(XDM before 2010\) are not supported")


def test_a_later_failure_removes_earlier_subsets(tmp_path: Path, refused: Callable[..., None]) -> None:
    entries = package(documents(), documents())
    del entries["IHE_XDM/SUBSET02/DOC00003.JPG"]
    refused(zip_file(tmp_path / "x.zip", entries), "names no file in IHE_XDM/SUBSET02/")


def test_existing_content_of_into_is_kept(tmp_path: Path) -> None:
    into = tmp_path / "into"
    (into / "SUBSET01").mkdir(parents=True)
    (into / "SUBSET01" / "KEEP.TXT").write_bytes(b"mine")
    entries = package()
    del entries["IHE_XDM/SUBSET01/DOC00003.JPG"]
    with pytest.raises(XdmError):
        read_package(zip_file(tmp_path / "x.zip", entries), into)
    assert tree(into) == {"SUBSET01": None, "SUBSET01/KEEP.TXT": b"mine"}


def test_into_symlinked_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    into = tmp_path / "into"
    into.mkdir()
    (into / "SUBSET01").symlink_to(outside)
    with pytest.raises(XdmError, match="would be written outside"):
        read_package(zip_file(tmp_path / "x.zip", package()), into)
    assert list(outside.iterdir()) == []
