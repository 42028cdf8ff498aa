"""ITI-32 Distribute Document Set on Media (ITI TF-2 §3.32), Portable Media Creator side: the XDM ZIP writer.

Theory of operation
-------------------
:func:`write_package` lays out one ZIP file the way XDM media is laid out (ITI TF-1 §16, ITI TF-2 §3.32.4.1)::

    README.TXT                     who made the package, contact/origin, the creating application
    INDEX.HTM                      an XHTML index linking README.TXT, every document and every METADATA.XML
    IHE_XDM/SUBSET01/METADATA.XML  one lcm:SubmitObjectsRequest per submission
    IHE_XDM/SUBSET01/DOC00001.XML  the documents, 8.3 upper-case names, extension from the mimeType
    IHE_XDM/SUBSET02/...

Documents are streamed into the ZIP in chunks (a :class:`~pathlib.Path` is never read whole) while their
SHA-1 and size are computed, so the ``hash``/``size`` in METADATA.XML always describe the bytes written, whatever
the entry said; the entry's ``URI`` slot is set to the document's file name, relative to its subset directory
(ITI TF-3 §4.2.3.2.24). METADATA.XML is written after its documents, once those values are known.

References
----------
ITI TF-1 §16 (XDM); ITI TF-2 §3.32.4.1 (media content, ZIP over e-mail); ITI TF-3 §4.1, §4.2.3.2.24
(DocumentEntry.URI), §4.2.3.2.14/§4.2.3.2.20 (hash, size); ISO 9660 level 1 (8.3 file names).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, Final

from lxml import etree
from lxml.builder import ElementMaker

import xds
from xds.ebrim.messages import render_submit_objects_request
from xds.model.metadata import DocumentEntry, Submission

DocumentSource = Path | bytes
"""A document's content: a file (streamed) or bytes."""

ROOT_DIR: Final = "IHE_XDM"
README: Final = "README.TXT"
INDEX: Final = "INDEX.HTM"
METADATA: Final = "METADATA.XML"
MAX_SUBSETS: Final = 99
"""``SUBSETnn``: a 9-character ``SUBSET100`` would break the 8-character directory names of ISO 9660."""
MAX_DOCUMENTS: Final = 99_999
"""``DOCnnnnn``: five digits after the 3-letter prefix fill the 8-character base name."""
CHUNK: Final = 1024 * 1024

_EXTENSIONS: Final[Mapping[str, str]] = {
    "text/xml": "XML",
    "application/xml": "XML",
    "application/pdf": "PDF",
    "text/plain": "TXT",
    "application/dicom": "DCM",
    "image/jpeg": "JPG",
}
"""mimeType -> file extension (any ``*/*+xml`` is XML too; everything else is BIN)."""
_STORED: Final = frozenset({"application/pdf", "image/jpeg"})
"""Media types that are already compressed: stored, not deflated."""
_XHTML: Final = "http://www.w3.org/1999/xhtml"


def extension(mime_type: str) -> str:
    """The 8.3 extension for ``mime_type``: XML, PDF, TXT, DCM, JPG, else BIN."""
    base = mime_type.split(";", 1)[0].strip().lower()
    if base in _EXTENSIONS:
        return _EXTENSIONS[base]
    return "XML" if base.endswith("+xml") else "BIN"


def subset_dir(index: int) -> str:
    """``IHE_XDM/SUBSETnn`` for the 1-based ``index``."""
    return f"{ROOT_DIR}/SUBSET{index:02d}"


def write_package(
    out: BinaryIO | str | os.PathLike[str],
    submissions: Sequence[tuple[Submission, Mapping[str, DocumentSource]]],
    *,
    author_text: str = "",
    origin: str = "",
) -> None:
    """Write an XDM ZIP package: one ``IHE_XDM/SUBSETnn`` per ``(submission, documents)`` pair.

    ``documents`` maps each DocumentEntry id of the submission to its content; an entry without content, or
    content for no entry, is refused with :class:`ValueError` before anything is written. When ``out`` is a
    path, a partly written file is removed on failure.
    """
    _check(submissions)
    try:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            listing = [_write_subset(zf, i, sub, docs) for i, (sub, docs) in enumerate(submissions, 1)]
            _write_text(zf, README, _readme(listing, author_text, origin).encode("utf-8"))
            _write_text(zf, INDEX, _index(listing, author_text))
    except BaseException:
        if isinstance(out, str | os.PathLike):
            Path(out).unlink(missing_ok=True)
        raise


def _check(submissions: Sequence[tuple[Submission, Mapping[str, DocumentSource]]]) -> None:
    if not submissions:
        raise ValueError("an XDM package needs at least one submission")
    if len(submissions) > MAX_SUBSETS:
        raise ValueError(f"{len(submissions)} submissions: XDM names at most {MAX_SUBSETS} subsets (SUBSETnn)")
    for n, (sub, docs) in enumerate(submissions, 1):
        ids = [de.id for de in sub.document_entries]
        missing = [i for i in ids if i not in docs]
        unknown = sorted(set(docs) - set(ids))
        if missing:
            raise ValueError(f"submission {n}: no document content for DocumentEntry {', '.join(missing)}")
        if unknown:
            raise ValueError(f"submission {n}: document content for no DocumentEntry: {', '.join(unknown)}")
        if len(ids) > MAX_DOCUMENTS:
            raise ValueError(f"submission {n}: more than {MAX_DOCUMENTS} documents")


@dataclasses.dataclass(frozen=True, slots=True)
class _Listed:
    """What README.TXT and INDEX.HTM say about one subset: its directory and (file name, entry) pairs."""

    directory: str
    files: tuple[tuple[str, DocumentEntry], ...]


def _write_subset(zf: zipfile.ZipFile, index: int, sub: Submission, docs: Mapping[str, DocumentSource]) -> _Listed:
    directory = subset_dir(index)
    entries: list[DocumentEntry] = []
    for n, de in enumerate(sub.document_entries, 1):
        name = f"DOC{n:05d}.{extension(de.mime_type)}"
        digest, size = _write_document(zf, f"{directory}/{name}", de.mime_type, docs[de.id])
        entries.append(dataclasses.replace(de, hash=digest, size=size, uri=name))
    metadata = render_submit_objects_request(dataclasses.replace(sub, document_entries=tuple(entries)))
    _write_text(zf, f"{directory}/{METADATA}", metadata)
    return _Listed(directory, tuple((de.uri, de) for de in entries))


def _zipinfo(name: str, compression: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.compress_type = compression
    info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
    return info


def _write_text(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    zf.writestr(_zipinfo(name, zipfile.ZIP_DEFLATED), data)


def _write_document(zf: zipfile.ZipFile, name: str, mime_type: str, source: DocumentSource) -> tuple[str, int]:
    """Stream ``source`` into entry ``name``; answer the SHA-1 (lower-case hex) and size of what was written."""
    stored = mime_type.split(";", 1)[0].strip().lower() in _STORED
    info = _zipinfo(name, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
    sha1 = hashlib.sha1()
    size = 0
    with zf.open(info, "w", force_zip64=True) as dst:
        for chunk in _chunks(source):
            sha1.update(chunk)
            size += len(chunk)
            dst.write(chunk)
    return sha1.hexdigest(), size


def _chunks(source: DocumentSource) -> Iterator[bytes]:
    if isinstance(source, bytes):
        yield source
        return
    with source.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _readme(listing: Sequence[_Listed], author_text: str, origin: str) -> str:
    """README.TXT: contact information of the institution that created the media and the name and version of the
    application that created it (ITI TF-2 §3.32.4.1)."""
    lines = [
        "IHE XDM package (ITI-32 Distribute Document Set on Media, ZIP over e-mail)",
        "",
        f"Created by:   {author_text or '(not stated)'}",
        f"Origin:       {origin or '(not stated)'}",
        f"Application:  xds {xds.__version__} (IHE XDS.b registry/repository, XDM Portable Media Creator)",
        f"Created at:   {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        "",
        "Contents:",
        f"  {README}      this file",
        f"  {INDEX}       index of the content, for a web browser",
    ]
    for subset in listing:
        lines.append(f"  {subset.directory}/{METADATA}  XDS metadata of the documents below")
        lines += [f"  {subset.directory}/{name}  {de.mime_type}" for name, de in subset.files]
    return "\r\n".join(lines) + "\r\n"


def _index(listing: Sequence[_Listed], author_text: str) -> bytes:
    """INDEX.HTM: XHTML linking README.TXT, every document and every METADATA.XML (ITI TF-2 §3.32.4.1)."""
    h = ElementMaker(namespace=_XHTML, nsmap={None: _XHTML})
    items = [h.li(h.a("README.TXT: about this package", href=README))]
    for subset in listing:
        for name, de in subset.files:
            title = de.title[0].value if de.title else name
            items.append(h.li(h.a(f"{title} ({de.mime_type})", href=f"{subset.directory}/{name}")))
        items.append(h.li(h.a(f"{subset.directory}: metadata", href=f"{subset.directory}/{METADATA}")))
    heading = "XDM package" + (f" from {author_text}" if author_text else "")
    page = h.html(h.head(h.title(heading)), h.body(h.h1(heading), h.ul(*items)))
    return etree.tostring(page, xml_declaration=True, encoding="UTF-8", pretty_print=True)


__all__ = ["DocumentSource", "extension", "subset_dir", "write_package"]
