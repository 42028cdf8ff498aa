"""What a Retrieve step (ITI-43, or ITI-39 to a Responding Gateway) asked for and got back, checked as the
NIST engine's ``RetrieveB`` does and against what the harness itself submitted.

Theory of operation: the engine records, for one RetrieveDocumentSetRequest, the (repositoryUniqueId,
documentUniqueId) of every DocumentRequest, every returned DocumentResponse with its bytes (resolved from
its MTOM part), every document the harness provided earlier in the run (uniqueId -> mimeType, bytes), the
placeholder values it filled in and the ``<ReferenceMetadata>`` query answer. :func:`check` then lists every
way the answer misses:

- the answer's shape: only requested documents, each at most once, from the repository it was requested
  from; the number returned agrees with the status (ITI TF-2 §3.43.4.2.3: Success = all, PartialSuccess =
  some, Failure = none);
- what was submitted: a returned document the harness provided has its mimeType and bytes;
- ``<ReferenceDocument uid=..>file</ReferenceDocument>``: that uid is returned with the file's bytes. NIST
  resolves the file against the section directory; several testplans write it relative to the test
  directory (``submit/my_document.txt`` in ``12021/retrieve``), so that is tried second;
- ``<ReferenceMetadata>``: size, hash and mimeType of each returned document equal the query answer's
  (``RetrieveB.validate_retrieve``);
- ``<ExpectedMimeType>``: each returned document has it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from xds import vocabulary as v
from xds.namespaces import RIM

_EO = f"{{{RIM}}}ExtrinsicObject"
_COUNTS = {"Success": "all", "PartialSuccess": "some", "Failure": "none"}


@dataclass(frozen=True, slots=True)
class Document:
    """One returned DocumentResponse; ``data`` is None when its ``xop:Include`` names no MIME part."""

    repository: str
    uid: str
    mime_type: str
    data: bytes | None


@dataclass(slots=True)
class Retrieval:
    """One ITI-43 or ITI-39 exchange and what the run knows about the documents it names."""

    requested: list[tuple[str, str]]
    returned: list[Document]
    submitted: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    reference_metadata: etree._Element | None = None


def reference_file(directory: Path, name: str) -> Path | None:
    """A ReferenceDocument file: relative to the section directory, else to the test directory."""
    for base in (directory, directory.parent):
        if (base / name).is_file():
            return base / name
    return None


def check(
    r: Retrieval, status: str, *, references: tuple[tuple[str, str], ...], mime_type: str, directory: Path
) -> list[str]:
    """Every way the retrieve answer misses the request, the submissions and the testplan's references."""
    out = _shape(r, status)
    for d in r.returned:
        if d.data is None:
            out.append(f"document {d.uid}: its xop:Include names no MIME part of the answer")
            continue
        if d.uid in r.submitted:
            sent_mime, sent = r.submitted[d.uid]
            if d.mime_type != sent_mime:
                out.append(f"document {d.uid}: mimeType {d.mime_type!r}, submitted as {sent_mime!r}")
            if d.data != sent:
                out.append(f"document {d.uid}: {len(d.data)} bytes differ from the {len(sent)} submitted")
        if mime_type and d.mime_type != mime_type:
            out.append(f"document {d.uid}: mimeType {d.mime_type!r}, ExpectedMimeType {mime_type!r}")
    out += _references(r, references, directory)
    if r.reference_metadata is not None:
        out += _against_metadata(r, r.reference_metadata)
    return out


def _shape(r: Retrieval, status: str) -> list[str]:
    out: list[str] = []
    requested = set(r.requested)
    seen: set[str] = set()
    for d in r.returned:
        if (d.repository, d.uid) not in requested:
            out.append(f"returned document {d.uid} (repository {d.repository}) was not requested")
        if d.uid in seen:
            out.append(f"document {d.uid} returned more than once")
        seen.add(d.uid)
    found = len({(d.repository, d.uid) for d in r.returned} & requested)
    wanted = len(requested)
    implied = "Success" if found == wanted else "Failure" if found == 0 else "PartialSuccess"
    if status in _COUNTS and status != implied:
        out.append(f"status {status} but {found} of {wanted} requested documents returned ({_COUNTS[status]} expected)")
    return out


def _references(r: Retrieval, references: tuple[tuple[str, str], ...], directory: Path) -> list[str]:
    out: list[str] = []
    by_uid = {d.uid: d for d in r.returned}
    for symbol, name in references:
        uid = r.values.get(symbol, symbol)
        path = reference_file(directory, name)
        if path is None:
            out.append(f"ReferenceDocument {name} not found next to {directory}")
            continue
        doc = by_uid.get(uid)
        if doc is None:
            out.append(f"ReferenceDocument {name}: document {uid} ({symbol}) not returned")
        elif doc.data is not None and doc.data != path.read_bytes():
            out.append(f"document {uid}: bytes differ from ReferenceDocument {name}")
    return out


def _against_metadata(r: Retrieval, answer: etree._Element) -> list[str]:
    entries = {_unique_id(eo): eo for eo in answer.iter(_EO)}
    out: list[str] = []
    for d in r.returned:
        eo = entries.get(d.uid)
        if eo is None:
            out.append(f"document {d.uid} is not in the ReferenceMetadata query answer")
            continue
        if eo.get("mimeType") != d.mime_type:
            out.append(f"document {d.uid}: mimeType {d.mime_type!r}, query answer says {eo.get('mimeType')!r}")
        if d.data is None:
            continue
        size, sha1 = _slot(eo, "size"), _slot(eo, "hash")
        if size != str(len(d.data)):
            out.append(f"document {d.uid}: {len(d.data)} bytes, query answer says size {size}")
        if sha1.lower() != hashlib.sha1(d.data).hexdigest():
            out.append(f"document {d.uid}: SHA-1 differs from the query answer's hash {sha1}")
    return out


def _unique_id(eo: etree._Element) -> str:
    for ei in eo.iterchildren(f"{{{RIM}}}ExternalIdentifier"):
        if ei.get("identificationScheme") == v.DE_UNIQUE_ID:
            return ei.get("value", "")
    return ""


def _slot(eo: etree._Element, name: str) -> str:
    values = eo.xpath("rim:Slot[@name=$n]/rim:ValueList/rim:Value/text()", namespaces={"rim": RIM}, n=name)
    return str(values[0]).strip() if isinstance(values, list) and values else ""


__all__ = ["Document", "Retrieval", "check", "reference_file"]
