"""ebRIM 3.0 XML -> XDS metadata model.

Theory of operation: a ``rim:RegistryObjectList`` holds ExtrinsicObjects (DocumentEntries), RegistryPackages
(SubmissionSets and Folders, told apart by a classification on the node ``SS_NODE`` / ``FOLDER_NODE``, nested
or at top level), Associations, top-level Classifications and ObjectRefs. Top-level classifications are
attached to the object they classify before that object is decoded, so both placements give the same model.
Named slots, classifications and external identifiers become typed fields; the rest is kept as extras.
Malformed values raise :class:`~xds.errors.MetadataError` naming the object and the attribute.

References
----------
ITI TF-3 §4.2.3 (metadata attributes) and Tables 4.3.1-3 to 4.3.1-5 (metadata optionality per actor).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TypeVar

from lxml import etree

from xds import vocabulary as v
from xds.errors import MetadataError
from xds.model.hl7 import CX, DTM, XCN, XON, XTN
from xds.model.metadata import (
    Association,
    Author,
    Code,
    DocumentEntry,
    Folder,
    ObjectRef,
    RegistryObject,
    Submission,
    SubmissionSet,
)
from xds.model.rim import Classification, ExternalIdentifier, InternationalString, LocalizedString, Slot
from xds.namespaces import RIM, XML, qn

_T = TypeVar("_T")

_EXTRINSIC = qn(RIM, "ExtrinsicObject")
_PACKAGE = qn(RIM, "RegistryPackage")
_ASSOCIATION = qn(RIM, "Association")
_CLASSIFICATION = qn(RIM, "Classification")
_EXTERNAL_ID = qn(RIM, "ExternalIdentifier")
_OBJECT_REF = qn(RIM, "ObjectRef")
_SLOT = qn(RIM, "Slot")
_NAME = qn(RIM, "Name")
_DESCRIPTION = qn(RIM, "Description")
_VERSION_INFO = qn(RIM, "VersionInfo")
_LOCALIZED = qn(RIM, "LocalizedString")
_VALUE = qn(RIM, "Value")
_LANG = qn(XML, "lang")

_DE_CODE_FIELDS = {
    v.DE_CLASS_CODE: "class_code",
    v.DE_TYPE_CODE: "type_code",
    v.DE_FORMAT_CODE: "format_code",
    v.DE_HEALTHCARE_FACILITY_TYPE_CODE: "healthcare_facility_type_code",
    v.DE_PRACTICE_SETTING_CODE: "practice_setting_code",
}
_DE_CODE_LISTS = {v.DE_CONFIDENTIALITY_CODE: "confidentiality_codes", v.DE_EVENT_CODE: "event_codes"}
_LIMITED = {v.DE_LIMITED_METADATA, v.SS_LIMITED_METADATA, v.FOLDER_LIMITED_METADATA}


# --- small readers ---------------------------------------------------------------------------------------


def international(elem: etree._Element | None) -> InternationalString:
    """Decode a ``rim:Name`` / ``rim:Description``."""
    if elem is None:
        return ()
    return tuple(
        LocalizedString(value=ls.get("value", ""), lang=ls.get(_LANG, ""), charset=ls.get("charset", ""))
        for ls in elem.iterchildren(_LOCALIZED)
    )


def slots(elem: etree._Element) -> list[Slot]:
    """Decode the direct ``rim:Slot`` children of ``elem``."""
    out = []
    for s in elem.iterchildren(_SLOT):
        name = s.get("name", "")
        if not name:
            raise MetadataError("Slot without a name", location=elem.get("id", ""))
        values = tuple((val.text or "") for val in s.iter(_VALUE))
        out.append(Slot(name=name, values=values, slot_type=s.get("slotType", "")))
    return out


def _convert(owner: str, what: str, value: str, fn: Callable[[str], _T]) -> _T:
    try:
        return fn(value)
    except ValueError as exc:
        raise MetadataError(f"{owner}: {what} {value!r} is malformed: {exc}", location=owner) from None


def _single(owner: str, slot: Slot) -> str:
    if len(slot.values) != 1:
        raise MetadataError(f"{owner}: slot {slot.name} must have exactly one value", location=owner)
    return slot.values[0]


def _code(owner: str, c: etree._Element, what: str) -> Code:
    code = c.get("nodeRepresentation", "")
    schemes = [s for s in slots(c) if s.name == "codingScheme"]
    if len(schemes) != 1 or len(schemes[0].values) != 1:
        raise MetadataError(f"{owner}: {what} needs exactly one codingScheme value", location=owner)
    if not code:
        raise MetadataError(f"{owner}: {what} has an empty nodeRepresentation", location=owner)
    return Code(code=code, scheme=schemes[0].values[0], display_name=international(c.find(_NAME)))


def _author(owner: str, c: etree._Element) -> Author:
    person: XCN | None = None
    institutions: tuple[XON, ...] = ()
    roles: tuple[str, ...] = ()
    specialties: tuple[str, ...] = ()
    telecoms: tuple[XTN, ...] = ()
    extra: list[Slot] = []
    for s in slots(c):
        if s.name == "authorPerson":
            person = _convert(owner, "authorPerson", _single(owner, s), XCN.parse)
        elif s.name == "authorInstitution":
            institutions = tuple(_convert(owner, "authorInstitution", x, XON.parse) for x in s.values)
        elif s.name == "authorRole":
            roles = s.values
        elif s.name == "authorSpecialty":
            specialties = s.values
        elif s.name == "authorTelecommunication":
            telecoms = tuple(_convert(owner, "authorTelecommunication", x, XTN.parse) for x in s.values)
        else:
            extra.append(s)
    return Author(
        person=person,
        institutions=institutions,
        roles=roles,
        specialties=specialties,
        telecoms=telecoms,
        extra_slots=tuple(extra),
    )


def _generic_classification(c: etree._Element) -> Classification:
    return Classification(
        scheme=c.get("classificationScheme", ""),
        node=c.get("classificationNode", ""),
        node_representation=c.get("nodeRepresentation", ""),
        name=international(c.find(_NAME)),
        slots=tuple(slots(c)),
    )


def _common(elem: etree._Element) -> dict[str, object]:
    owner = elem.get("id", "")
    if not owner:
        raise MetadataError(f"{etree.QName(elem).localname} without an id attribute")
    version = elem.find(_VERSION_INFO)
    return {
        "id": owner,
        "lid": elem.get("lid", ""),
        "home": elem.get("home", ""),
        "status": elem.get("status", ""),
        "version_name": version.get("versionName", "") if version is not None else "",
        "title": international(elem.find(_NAME)),
        "comments": international(elem.find(_DESCRIPTION)),
    }


def _identifiers(elem: etree._Element, fields: dict[str, object], named: dict[str, str]) -> list[ExternalIdentifier]:
    """Put the named ExternalIdentifiers (scheme -> field) into ``fields``; return the others."""
    owner = str(fields["id"])
    extra: list[ExternalIdentifier] = []
    for e in elem.iterchildren(_EXTERNAL_ID):
        scheme, value = e.get("identificationScheme", ""), e.get("value", "")
        name = named.get(scheme)
        if name == "patient_id":
            fields[name] = _cx(owner, "patientId", value)
        elif name:
            fields[name] = value
        else:
            extra.append(ExternalIdentifier(scheme=scheme, value=value, name=international(e.find(_NAME))))
    return extra


def _cx(owner: str, what: str, value: str) -> CX:
    return _convert(owner, what, value, CX.parse)


def _dtm(owner: str, slot: Slot) -> DTM:
    return _convert(owner, slot.name, _single(owner, slot), DTM)


# --- objects ---------------------------------------------------------------------------------------------


def document_entry(elem: etree._Element, classifications: Iterable[etree._Element] = ()) -> DocumentEntry:
    """Decode one ``rim:ExtrinsicObject``."""
    fields = _common(elem)
    owner = str(fields["id"])
    fields["object_type"] = elem.get("objectType", "")
    fields["mime_type"] = elem.get("mimeType", "")
    extra_slots: list[Slot] = []
    for s in slots(elem):
        _de_slot(owner, s, fields, extra_slots)
    extra_cls: list[Classification] = []
    authors: list[Author] = []
    for c in [*elem.iterchildren(_CLASSIFICATION), *classifications]:
        scheme = c.get("classificationScheme", "")
        if scheme in _DE_CODE_FIELDS:
            name = _DE_CODE_FIELDS[scheme]
            if name in fields:
                raise MetadataError(f"{owner}: more than one {name}", location=owner)
            fields[name] = _code(owner, c, name)
        elif scheme in _DE_CODE_LISTS:
            name = _DE_CODE_LISTS[scheme]
            fields[name] = (*fields.get(name, ()), _code(owner, c, name))  # type: ignore[misc]
        elif scheme == v.DE_AUTHOR:
            authors.append(_author(owner, c))
        elif c.get("classificationNode") == v.DE_LIMITED_METADATA:
            fields["limited_metadata"] = True
        else:
            extra_cls.append(_generic_classification(c))
    extra_ids = _identifiers(elem, fields, {v.DE_PATIENT_ID: "patient_id", v.DE_UNIQUE_ID: "unique_id"})
    return _build(DocumentEntry, fields, authors=tuple(authors), slots=extra_slots, cls=extra_cls, ids=extra_ids)


def _de_slot(owner: str, s: Slot, fields: dict[str, object], extra: list[Slot]) -> None:
    n = s.name
    if n in ("creationTime", "serviceStartTime", "serviceStopTime"):
        fields[
            {"creationTime": "creation_time", "serviceStartTime": "service_start_time"}.get(n, "service_stop_time")
        ] = _dtm(owner, s)
    elif n == "sourcePatientId":
        fields["source_patient_id"] = _cx(owner, n, _single(owner, s))
    elif n == "sourcePatientInfo":
        fields["source_patient_info"] = s.values
    elif n == "hash":
        fields["hash"] = _single(owner, s)
    elif n == "size":
        fields["size"] = _convert(owner, n, _single(owner, s), _size)
    elif n == "repositoryUniqueId":
        fields["repository_unique_id"] = _single(owner, s)
    elif n == "languageCode":
        fields["language_code"] = _single(owner, s)
    elif n == "legalAuthenticator":
        fields["legal_authenticator"] = _convert(owner, n, _single(owner, s), XCN.parse)
    elif n == "URI":
        fields["uri"] = _single(owner, s)
    elif n == "urn:ihe:iti:xds:2013:referenceIdList":
        fields["reference_ids"] = s.values
    elif n == "documentAvailability":
        fields["document_availability"] = _single(owner, s)
    else:
        extra.append(s)


def _size(value: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise ValueError("size must be a non-negative integer")
    return int(value)


def _build(
    kind: type[_T],
    fields: dict[str, object],
    *,
    authors: tuple[Author, ...] | None = None,
    slots: list[Slot],
    cls: list[Classification],
    ids: list[ExternalIdentifier],
) -> _T:
    kwargs = dict(fields)
    if authors is not None:
        kwargs["authors"] = authors
    kwargs["extra_slots"] = tuple(slots)
    kwargs["extra_classifications"] = tuple(cls)
    kwargs["extra_identifiers"] = tuple(ids)
    try:
        return kind(**kwargs)
    except (TypeError, ValueError) as exc:
        owner = str(fields.get("id", ""))
        raise MetadataError(f"{owner}: {exc}", location=owner) from None


def registry_package(elem: etree._Element, classifications: Iterable[etree._Element] = ()) -> SubmissionSet | Folder:
    """Decode one ``rim:RegistryPackage`` as SubmissionSet or Folder, by its classification node."""
    every = [*elem.iterchildren(_CLASSIFICATION), *classifications]
    nodes = {c.get("classificationNode", "") for c in every}
    owner = elem.get("id", "")
    if v.SS_NODE in nodes and v.FOLDER_NODE in nodes:
        raise MetadataError(f"{owner}: RegistryPackage classified as both SubmissionSet and Folder", location=owner)
    if v.SS_NODE in nodes:
        return _submission_set(elem, every)
    if v.FOLDER_NODE in nodes:
        return _folder(elem, every)
    raise MetadataError(f"{owner}: RegistryPackage is neither a SubmissionSet nor a Folder", location=owner)


def _submission_set(elem: etree._Element, every: list[etree._Element]) -> SubmissionSet:
    fields = _common(elem)
    owner = str(fields["id"])
    extra_slots: list[Slot] = []
    for s in slots(elem):
        if s.name == "submissionTime":
            fields["submission_time"] = _dtm(owner, s)
        elif s.name == "intendedRecipient":
            fields["intended_recipients"] = s.values
        else:
            extra_slots.append(s)
    authors: list[Author] = []
    extra_cls: list[Classification] = []
    for c in every:
        scheme, node = c.get("classificationScheme", ""), c.get("classificationNode", "")
        if node == v.SS_NODE:
            continue
        if node == v.SS_LIMITED_METADATA:
            fields["limited_metadata"] = True
        elif scheme == v.SS_AUTHOR:
            authors.append(_author(owner, c))
        elif scheme == v.SS_CONTENT_TYPE_CODE:
            if "content_type_code" in fields:
                raise MetadataError(f"{owner}: more than one contentTypeCode", location=owner)
            fields["content_type_code"] = _code(owner, c, "contentTypeCode")
        else:
            extra_cls.append(_generic_classification(c))
    named = {v.SS_PATIENT_ID: "patient_id", v.SS_UNIQUE_ID: "unique_id", v.SS_SOURCE_ID: "source_id"}
    extra_ids = _identifiers(elem, fields, named)
    return _build(SubmissionSet, fields, authors=tuple(authors), slots=extra_slots, cls=extra_cls, ids=extra_ids)


def _folder(elem: etree._Element, every: list[etree._Element]) -> Folder:
    fields = _common(elem)
    owner = str(fields["id"])
    extra_slots: list[Slot] = []
    for s in slots(elem):
        if s.name == "lastUpdateTime":
            fields["last_update_time"] = _dtm(owner, s)
        else:
            extra_slots.append(s)
    codes: list[Code] = []
    extra_cls: list[Classification] = []
    for c in every:
        scheme, node = c.get("classificationScheme", ""), c.get("classificationNode", "")
        if node == v.FOLDER_NODE:
            continue
        if node == v.FOLDER_LIMITED_METADATA:
            fields["limited_metadata"] = True
        elif scheme == v.FOLDER_CODE_LIST:
            codes.append(_code(owner, c, "codeList"))
        else:
            extra_cls.append(_generic_classification(c))
    fields["codes"] = tuple(codes)
    extra_ids = _identifiers(elem, fields, {v.FOLDER_PATIENT_ID: "patient_id", v.FOLDER_UNIQUE_ID: "unique_id"})
    return _build(Folder, fields, slots=extra_slots, cls=extra_cls, ids=extra_ids)


def association(elem: etree._Element, classifications: Iterable[etree._Element] = ()) -> Association:
    """Decode one ``rim:Association``."""
    fields = _common(elem)
    fields["association_type"] = elem.get("associationType", "")
    fields["source"] = elem.get("sourceObject", "")
    fields["target"] = elem.get("targetObject", "")
    extra_cls = [_generic_classification(c) for c in [*elem.iterchildren(_CLASSIFICATION), *classifications]]
    extra_ids = _identifiers(elem, fields, {})
    return _build(Association, fields, slots=slots(elem), cls=extra_cls, ids=extra_ids)


def registry_object_list(container: etree._Element) -> Submission:
    """Decode the children of a ``rim:RegistryObjectList`` into a :class:`Submission`."""
    top_cls: dict[str, list[etree._Element]] = defaultdict(list)
    for c in container.iterchildren(_CLASSIFICATION):
        top_cls[c.get("classifiedObject", "")].append(c)
    known: set[str] = set()
    sets: list[SubmissionSet] = []
    entries: list[DocumentEntry] = []
    folders: list[Folder] = []
    assocs: list[Association] = []
    refs: list[ObjectRef] = []
    for child in container:
        tag = child.tag
        oid = child.get("id", "")
        if tag == _EXTRINSIC:
            entries.append(document_entry(child, top_cls.get(oid, ())))
        elif tag == _PACKAGE:
            pkg = registry_package(child, top_cls.get(oid, ()))
            (sets if isinstance(pkg, SubmissionSet) else folders).append(pkg)  # type: ignore[arg-type]
        elif tag == _ASSOCIATION:
            assocs.append(association(child, top_cls.get(oid, ())))
        elif tag == _OBJECT_REF:
            refs.append(ObjectRef(id=oid, home=child.get("home", "")))
        elif tag == _CLASSIFICATION:
            continue
        else:
            raise MetadataError(f"unexpected element {etree.QName(child).localname} in RegistryObjectList")
        known.add(oid)
    for target in top_cls:
        if target not in known:
            raise MetadataError(
                f"Classification classifies {target!r}, which is not in the submission", location=target
            )
    return Submission(
        submission_sets=tuple(sets),
        document_entries=tuple(entries),
        folders=tuple(folders),
        associations=tuple(assocs),
        object_refs=tuple(refs),
    )


def any_object(elem: etree._Element) -> RegistryObject:
    """Decode one stored object element (ExtrinsicObject, RegistryPackage or Association)."""
    if elem.tag == _EXTRINSIC:
        return document_entry(elem)
    if elem.tag == _PACKAGE:
        return registry_package(elem)
    if elem.tag == _ASSOCIATION:
        return association(elem)
    raise MetadataError(f"not a registry object: {etree.QName(elem).text}")


__all__ = [
    "any_object",
    "association",
    "document_entry",
    "international",
    "registry_object_list",
    "registry_package",
    "slots",
]
