"""The NIST engine's automatic substitutions on an ebRS 3.0 request (conformance README §2.3 and §2.4).

Each function changes the request in place and returns what it assigned, so later steps can refer to it
(``UseId ... section="AssignedUids|AssignedUuids|AssignedPatientId"``):

- :func:`fill` puts ``$name$`` placeholder values into attribute values and element text;
- :func:`set_patient` overwrites every DocumentEntry/SubmissionSet/Folder ``patientId`` (unless NoPatientId);
- :func:`assign_uids` gives every DocumentEntry/SubmissionSet/Folder a new ``uniqueId`` OID (unless
  NoAssignUids; ``NoAssignUids id="X"`` keeps object X's value);
- :func:`set_source_id` sets ``SubmissionSet.sourceId`` (always, as the NIST engine does);
- :func:`assign_uuids` replaces symbolic object ids by ``urn:uuid:`` values everywhere they are referenced.

Values are put into the parsed tree, never into the XML text, so a patient id's ``&`` is escaped by the
serializer.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Final

from lxml import etree

from xds import vocabulary as v
from xds.namespaces import RIM

PLACEHOLDER: Final = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*\$")
SOURCE_ID: Final = "1.3.6.1.4.1.21367.2017.2.1.4242"
"""sourceId the harness puts in every SubmissionSet."""

_PATIENT_SCHEMES: Final = frozenset({v.DE_PATIENT_ID, v.SS_PATIENT_ID, v.FOLDER_PATIENT_ID})
_UID_SCHEMES: Final = frozenset({v.DE_UNIQUE_ID, v.SS_UNIQUE_ID, v.FOLDER_UNIQUE_ID})
_OBJECTS: Final = frozenset({f"{{{RIM}}}{n}" for n in ("ExtrinsicObject", "RegistryPackage", "Association")})
_REFERENCES: Final = ("id", "sourceObject", "targetObject", "classifiedObject", "registryObject")
_EXTERNAL_ID: Final = f"{{{RIM}}}ExternalIdentifier"


def new_oid() -> str:
    """A fresh OID under the UUID arc 2.25."""
    return f"2.25.{uuid.uuid4().int}"


def _elements(root: etree._Element) -> Iterator[etree._Element]:
    return (e for e in root.iter() if isinstance(e.tag, str))


def fill(root: etree._Element, values: dict[str, str]) -> None:
    """Replace each known ``$name$`` token in attribute values and text."""

    def sub(text: str) -> str:
        return PLACEHOLDER.sub(lambda m: values.get(m.group(0), m.group(0)), text)

    for e in _elements(root):
        for name, value in e.attrib.items():
            if "$" in value:
                e.set(name, sub(value))
        if e.text and "$" in e.text:
            e.text = sub(e.text)


def leftovers(root: etree._Element) -> set[str]:
    """Placeholder tokens still in the request."""
    found: set[str] = set()
    for e in _elements(root):
        for text in [*e.attrib.values(), e.text or ""]:
            found.update(PLACEHOLDER.findall(text))
    return found


def _identifiers(root: etree._Element, schemes: Iterable[str]) -> Iterator[tuple[str, etree._Element]]:
    wanted = frozenset(schemes)
    for ei in root.iter(_EXTERNAL_ID):
        if ei.get("identificationScheme") in wanted:
            parent = ei.getparent()
            owner = ei.get("registryObject") or (parent.get("id") if parent is not None else None)
            yield owner or "", ei


def set_patient(root: etree._Element, patient_id: str) -> None:
    """Overwrite every DocumentEntry/SubmissionSet/Folder patientId with ``patient_id``."""
    for _, ei in _identifiers(root, _PATIENT_SCHEMES):
        ei.set("value", patient_id)


def submission_patient(root: etree._Element) -> str:
    """The SubmissionSet's patientId (what NIST records as AssignedPatientId)."""
    return next((ei.get("value", "") for _, ei in _identifiers(root, [v.SS_PATIENT_ID])), "")


def assign_uids(root: etree._Element, *, enabled: bool, keep: Iterable[str] = ()) -> dict[str, str]:
    """New uniqueIds (unless disabled or kept); returns object id -> uniqueId for every object."""
    kept = frozenset(keep)
    out: dict[str, str] = {}
    for owner, ei in _identifiers(root, _UID_SCHEMES):
        if enabled and owner not in kept:
            ei.set("value", new_oid())
        out[owner] = ei.get("value", "")
    return out


def set_source_id(root: etree._Element, source_id: str = SOURCE_ID) -> None:
    """Set every SubmissionSet.sourceId."""
    for _, ei in _identifiers(root, [v.SS_SOURCE_ID]):
        ei.set("value", source_id)


def assign_uuids(root: etree._Element, *, enabled: bool) -> dict[str, str]:
    """Symbolic ids -> new ``urn:uuid:`` (when enabled); returns the id map including kept UUID ids."""
    ids = [e.get("id", "") for e in _elements(root) if e.tag in _OBJECTS]
    mapping = {i: i for i in ids if i.startswith("urn:uuid:")}
    if not enabled:
        return mapping
    fresh = {i: f"urn:uuid:{uuid.uuid4()}" for i in ids if i and not i.startswith("urn:uuid:")}
    for e in _elements(root):
        for name in _REFERENCES:
            value = e.get(name)
            if value in fresh:
                e.set(name, fresh[value])
    return {**mapping, **fresh}


def report(root: etree._Element, xpath: str) -> str | None:
    """The first result of a NIST ``<Report>`` XPath, as text (None when nothing matches)."""
    result = root.xpath(xpath)
    if not isinstance(result, list):
        return str(result)
    if not result:
        return None
    first = result[0]
    return (first.text or "") if isinstance(first, etree._Element) else str(first)


__all__ = [
    "PLACEHOLDER",
    "SOURCE_ID",
    "assign_uids",
    "assign_uuids",
    "fill",
    "leftovers",
    "new_oid",
    "report",
    "set_patient",
    "set_source_id",
    "submission_patient",
]
