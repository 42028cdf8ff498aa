"""Tests of :mod:`xds.xdm.writer`: the XDM ZIP layout of ITI TF-2 §3.32.4.1 and the metadata it carries."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest
from lxml import etree

from tests.xsd import assert_valid
from xds import samples
from xds.ebrim.messages import submit_objects_request
from xds.ebrim.parser import parse_xml
from xds.model.metadata import DocumentEntry, Submission
from xds.xdm.writer import DocumentSource, extension, write_package

XML_DOC = b'<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"/>'
PDF_DOC = b"%PDF-1.4\n" + bytes(range(256)) * 40
TXT_DOC = b"plain text\r\n" * 100
_8_3 = re.compile(r"^[A-Z0-9_]{1,8}(\.[A-Z0-9_]{1,3})?$")


def three_documents() -> tuple[Submission, dict[str, bytes]]:
    """A submission of an XML, a PDF and a plain-text document, with their content."""
    p = samples.patient()
    content = {"text/xml": XML_DOC, "application/pdf": PDF_DOC, "text/plain": TXT_DOC}
    entries = [samples.document_entry(p, content=c, mime_type=m, title=m) for m, c in content.items()]
    return samples.submission(p, entries), {de.id: content[de.mime_type] for de in entries}


def write(*pairs: tuple[Submission, Mapping[str, DocumentSource]], **kw: str) -> zipfile.ZipFile:
    buf = io.BytesIO()
    write_package(buf, list(pairs), **kw)
    return zipfile.ZipFile(io.BytesIO(buf.getvalue()))


def metadata(zf: zipfile.ZipFile, subset: str = "SUBSET01") -> Submission:
    return submit_objects_request(parse_xml(zf.read(f"IHE_XDM/{subset}/METADATA.XML")))


EXTENSIONS = [
    ("text/xml", "XML"),
    ("application/xml", "XML"),
    ("application/fhir+xml", "XML"),
    ("Text/XML; charset=UTF-8", "XML"),
    ("application/pdf", "PDF"),
    ("text/plain", "TXT"),
    ("application/dicom", "DCM"),
    ("image/jpeg", "JPG"),
    ("application/json", "BIN"),
    ("", "BIN"),
]


@pytest.mark.parametrize(("mime_type", "expected"), EXTENSIONS)
def test_extension_follows_the_mime_type(mime_type: str, expected: str) -> None:
    assert extension(mime_type) == expected


def test_layout_is_readme_index_and_one_subset_of_8_3_upper_case_names() -> None:
    zf = write(three_documents())
    names = zf.namelist()
    assert sorted(names) == [
        "IHE_XDM/SUBSET01/DOC00001.XML",
        "IHE_XDM/SUBSET01/DOC00002.PDF",
        "IHE_XDM/SUBSET01/DOC00003.TXT",
        "IHE_XDM/SUBSET01/METADATA.XML",
        "INDEX.HTM",
        "README.TXT",
    ]
    assert all(_8_3.match(part) for name in names for part in name.split("/"))


def test_documents_are_written_byte_for_byte() -> None:
    sub, docs = three_documents()
    zf = write((sub, docs))
    for de in metadata(zf).document_entries:
        assert zf.read(f"IHE_XDM/SUBSET01/{de.uri}") == docs[de.id]


def test_metadata_carries_uri_hash_and_size_of_the_bytes_written() -> None:
    sub, docs = three_documents()
    wrong = [dataclasses.replace(de, hash="0" * 40, size=1, uri="elsewhere") for de in sub.document_entries]
    zf = write((dataclasses.replace(sub, document_entries=tuple(wrong)), docs))
    for de in metadata(zf).document_entries:
        content = zf.read(f"IHE_XDM/SUBSET01/{de.uri}")
        assert de.hash == hashlib.sha1(docs[de.id]).hexdigest() == hashlib.sha1(content).hexdigest()
        assert de.size == len(docs[de.id])


def test_metadata_is_otherwise_the_submission() -> None:
    sub, docs = three_documents()
    decoded = metadata(write((sub, docs)))
    assert decoded.submission_sets == sub.submission_sets
    assert decoded.associations == sub.associations
    assert [_without_location(de) for de in decoded.document_entries] == list(sub.document_entries)


def _without_location(de: DocumentEntry) -> DocumentEntry:
    return dataclasses.replace(de, uri="")


def test_metadata_is_schema_valid() -> None:
    assert_valid(write(three_documents()).read("IHE_XDM/SUBSET01/METADATA.XML"), what="METADATA.XML")


def test_index_links_readme_metadata_and_every_document() -> None:
    zf = write(three_documents(), three_documents())
    page = etree.fromstring(zf.read("INDEX.HTM"))
    assert etree.QName(page).namespace == "http://www.w3.org/1999/xhtml"
    links = set(page.xpath("//h:a/@href", namespaces={"h": "http://www.w3.org/1999/xhtml"}))
    files = {n for n in zf.namelist() if n != "INDEX.HTM"}
    assert links == files
    assert len(links) == 1 + 2 * 4


def test_readme_names_author_origin_application_and_content() -> None:
    zf = write(three_documents(), author_text="Dr. A. Jansen, Ziekenhuis Voorbeeld", origin="xdm@example.org")
    readme = zf.read("README.TXT").decode("utf-8")
    assert "Dr. A. Jansen, Ziekenhuis Voorbeeld" in readme
    assert "xdm@example.org" in readme
    assert "Application:  xds " in readme
    assert "IHE_XDM/SUBSET01/DOC00002.PDF" in readme


def test_several_submissions_become_numbered_subsets() -> None:
    first, second = three_documents(), three_documents()
    zf = write(first, second)
    assert metadata(zf, "SUBSET01").submission_sets == first[0].submission_sets
    assert metadata(zf, "SUBSET02").submission_sets == second[0].submission_sets


def test_compressed_media_is_stored_and_text_deflated() -> None:
    zf = write(three_documents())
    kinds = {i.filename.rsplit(".", 1)[1]: i.compress_type for i in zf.infolist()}
    assert kinds["PDF"] == zipfile.ZIP_STORED
    assert kinds["XML"] == kinds["TXT"] == kinds["HTM"] == zipfile.ZIP_DEFLATED


def test_a_path_source_is_streamed(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(range(256)) * 12_000)  # 3 MB: more than one chunk
    p = samples.patient()
    de = samples.document_entry(p, mime_type="application/octet-stream")
    zf = write((samples.submission(p, [de]), {de.id: source}))
    (entry,) = metadata(zf).document_entries
    assert entry.uri == "DOC00001.BIN"
    assert entry.size == source.stat().st_size
    assert zf.read("IHE_XDM/SUBSET01/DOC00001.BIN") == source.read_bytes()


def test_writes_to_a_path(tmp_path: Path) -> None:
    out = tmp_path / "XDM.ZIP"
    write_package(out, [three_documents()])
    assert zipfile.ZipFile(out).testzip() is None


def test_content_is_needed_for_every_entry(tmp_path: Path) -> None:
    sub, docs = three_documents()
    missing = sub.document_entries[1].id
    del docs[missing]
    out = tmp_path / "XDM.ZIP"
    with pytest.raises(ValueError, match=f"no document content for DocumentEntry {missing}"):
        write_package(out, [(sub, docs)])
    assert not out.exists()


def test_content_for_no_entry_is_refused() -> None:
    sub, docs = three_documents()
    docs["urn:uuid:stray"] = b"x"
    with pytest.raises(ValueError, match="document content for no DocumentEntry: urn:uuid:stray"):
        write_package(io.BytesIO(), [(sub, docs)])


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    p = samples.patient()
    de = samples.document_entry(p)
    out = tmp_path / "XDM.ZIP"
    with pytest.raises(FileNotFoundError):
        write_package(out, [(samples.submission(p, [de]), {de.id: tmp_path / "absent.txt"})])
    assert list(tmp_path.iterdir()) == []


def test_at_least_one_and_at_most_99_subsets() -> None:
    with pytest.raises(ValueError, match="at least one submission"):
        write_package(io.BytesIO(), [])
    empty: tuple[Submission, dict[str, DocumentSource]] = (Submission(), {})
    with pytest.raises(ValueError, match="at most 99 subsets"):
        write_package(io.BytesIO(), [empty] * 100)
