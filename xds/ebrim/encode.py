"""XDS metadata model -> ebRIM 3.0 XML.

Child order follows rim.xsd (Slot*, Name?, Description?, VersionInfo?, Classification*, ExternalIdentifier*).
Nested Classifications and ExternalIdentifiers get ids derived from their parent's id (UUIDv5), so rendering
is deterministic and a stored object renders the same way every time.

References
----------
OASIS ebRIM 3.0 rim.xsd; ITI TF-3 §4.2.3 and Tables 4.2.3.2-1, 4.2.3.3-1, 4.2.3.4-1.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from lxml import etree

from xds import vocabulary as v
from xds.model.metadata import Association, Author, Code, DocumentEntry, Folder, RegistryObject, SubmissionSet
from xds.model.rim import Classification, ExternalIdentifier, InternationalString, LocalizedString, Slot
from xds.namespaces import RIM, XML, qn

_NS_IDS = uuid.UUID("6f0b3c55-4f38-4a59-9d5e-2b1d7f6f0a11")
_RIM = "{" + RIM + "}"
_LANG = qn(XML, "lang")


def child_id(parent: str, n: int) -> str:
    """Deterministic ``urn:uuid:`` for the n-th nested object of ``parent``."""
    return f"urn:uuid:{uuid.uuid5(_NS_IDS, f'{parent}#{n}')}"


class _Ids:
    def __init__(self, parent: str) -> None:
        self.parent = parent
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return child_id(self.parent, self.n)


def _sub(parent: etree._Element, local: str, attrib: dict[str, str] | None = None) -> etree._Element:
    return etree.SubElement(parent, _RIM + local, attrib or {})


def add_slot(parent: etree._Element, name: str, values: Iterable[str], slot_type: str = "") -> None:
    """Append a ``rim:Slot``."""
    s = _sub(parent, "Slot", {"name": name})
    if slot_type:
        s.set("slotType", slot_type)
    vl = _sub(s, "ValueList")
    for value in values:
        _sub(vl, "Value").text = value


def _add_slots(parent: etree._Element, slots: Iterable[Slot]) -> None:
    for s in slots:
        add_slot(parent, s.name, s.values, s.slot_type)


def _add_international(parent: etree._Element, local: str, value: InternationalString) -> None:
    if not value:
        return
    holder = _sub(parent, local)
    for ls in value:
        e = _sub(holder, "LocalizedString")
        if ls.charset:
            e.set("charset", ls.charset)
        if ls.lang:
            e.set(_LANG, ls.lang)
        e.set("value", ls.value)


def _start(tag: str, obj: RegistryObject, extra_attrib: dict[str, str]) -> etree._Element:
    attrib = {"id": obj.id}
    if obj.home:
        attrib["home"] = obj.home
    if obj.lid:
        attrib["lid"] = obj.lid
    attrib.update(extra_attrib)
    if obj.status:
        attrib["status"] = obj.status
    return etree.Element(_RIM + tag, attrib, nsmap={"rim": RIM})


def _names(elem: etree._Element, obj: RegistryObject) -> None:
    _add_international(elem, "Name", obj.title)
    _add_international(elem, "Description", obj.comments)
    if obj.version_name:
        _sub(elem, "VersionInfo", {"versionName": obj.version_name})


def _classification(
    elem: etree._Element, ids: _Ids, owner: str, *, scheme: str = "", node: str = "", rep: str | None = None
) -> etree._Element:
    attrib = {"id": ids.next(), "classifiedObject": owner}
    if scheme:
        attrib["classificationScheme"] = scheme
    if node:
        attrib["classificationNode"] = node
    if rep is not None:
        attrib["nodeRepresentation"] = rep
    return _sub(elem, "Classification", attrib)


def _code(elem: etree._Element, ids: _Ids, owner: str, scheme: str, code: Code) -> None:
    c = _classification(elem, ids, owner, scheme=scheme, rep=code.code)
    add_slot(c, "codingScheme", [code.scheme])
    _add_international(c, "Name", code.display_name)


def _author(elem: etree._Element, ids: _Ids, owner: str, scheme: str, author: Author) -> None:
    c = _classification(elem, ids, owner, scheme=scheme, rep="")
    if author.person is not None:
        add_slot(c, "authorPerson", [str(author.person)])
    if author.institutions:
        add_slot(c, "authorInstitution", [str(x) for x in author.institutions])
    if author.roles:
        add_slot(c, "authorRole", author.roles)
    if author.specialties:
        add_slot(c, "authorSpecialty", author.specialties)
    if author.telecoms:
        add_slot(c, "authorTelecommunication", [str(x) for x in author.telecoms])
    _add_slots(c, author.extra_slots)


def _extras(elem: etree._Element, ids: _Ids, obj: RegistryObject) -> None:
    for gc in obj.extra_classifications:
        _generic(elem, ids, obj.id, gc)


def _generic(elem: etree._Element, ids: _Ids, owner: str, gc: Classification) -> None:
    c = _classification(
        elem,
        ids,
        owner,
        scheme=gc.scheme,
        node=gc.node,
        rep=gc.node_representation if (gc.scheme or gc.node_representation) else None,
    )
    _add_slots(c, gc.slots)
    _add_international(c, "Name", gc.name)


def _external_id(elem: etree._Element, ids: _Ids, owner: str, scheme: str, value: str, name: str) -> None:
    e = _sub(
        elem,
        "ExternalIdentifier",
        {
            "id": ids.next(),
            "registryObject": owner,
            "identificationScheme": scheme,
            "value": value,
        },
    )
    if name:
        _add_international(e, "Name", (LocalizedString(value=name),))


def _extra_ids(elem: etree._Element, ids: _Ids, owner: str, extra: Iterable[ExternalIdentifier]) -> None:
    for x in extra:
        e = _sub(
            elem,
            "ExternalIdentifier",
            {
                "id": ids.next(),
                "registryObject": owner,
                "identificationScheme": x.scheme,
                "value": x.value,
            },
        )
        _add_international(e, "Name", x.name)


def _opt(elem: etree._Element, name: str, value: object | None) -> None:
    if value is not None and value != "":
        add_slot(elem, name, [str(value)])


def document_entry(de: DocumentEntry) -> etree._Element:
    """Render a DocumentEntry as ``rim:ExtrinsicObject``."""
    attrib = {"objectType": de.object_type}
    if de.mime_type:
        attrib["mimeType"] = de.mime_type
    elem = _start("ExtrinsicObject", de, attrib)
    _opt(elem, "creationTime", de.creation_time)
    _opt(elem, "hash", de.hash)
    _opt(elem, "languageCode", de.language_code)
    _opt(elem, "legalAuthenticator", de.legal_authenticator)
    _opt(elem, "repositoryUniqueId", de.repository_unique_id)
    _opt(elem, "serviceStartTime", de.service_start_time)
    _opt(elem, "serviceStopTime", de.service_stop_time)
    _opt(elem, "size", de.size)
    _opt(elem, "sourcePatientId", de.source_patient_id)
    if de.source_patient_info:
        add_slot(elem, "sourcePatientInfo", de.source_patient_info)
    _opt(elem, "URI", de.uri)
    if de.reference_ids:
        add_slot(elem, "urn:ihe:iti:xds:2013:referenceIdList", de.reference_ids)
    _opt(elem, "documentAvailability", de.document_availability)
    _add_slots(elem, de.extra_slots)
    _names(elem, de)
    ids = _Ids(de.id)
    for a in de.authors:
        _author(elem, ids, de.id, v.DE_AUTHOR, a)
    for scheme, code in de.codes():
        _code(elem, ids, de.id, scheme, code)
    if de.limited_metadata:
        _classification(elem, ids, de.id, node=v.DE_LIMITED_METADATA)
    _extras(elem, ids, de)
    if de.patient_id is not None:
        _external_id(elem, ids, de.id, v.DE_PATIENT_ID, str(de.patient_id), "XDSDocumentEntry.patientId")
    if de.unique_id:
        _external_id(elem, ids, de.id, v.DE_UNIQUE_ID, de.unique_id, "XDSDocumentEntry.uniqueId")
    _extra_ids(elem, ids, de.id, de.extra_identifiers)
    return elem


def submission_set(ss: SubmissionSet) -> etree._Element:
    """Render a SubmissionSet as ``rim:RegistryPackage``."""
    elem = _start("RegistryPackage", ss, {"objectType": v.OT_REGISTRY_PACKAGE})
    _opt(elem, "submissionTime", ss.submission_time)
    if ss.intended_recipients:
        add_slot(elem, "intendedRecipient", ss.intended_recipients)
    _add_slots(elem, ss.extra_slots)
    _names(elem, ss)
    ids = _Ids(ss.id)
    _classification(elem, ids, ss.id, node=v.SS_NODE)
    for a in ss.authors:
        _author(elem, ids, ss.id, v.SS_AUTHOR, a)
    if ss.content_type_code is not None:
        _code(elem, ids, ss.id, v.SS_CONTENT_TYPE_CODE, ss.content_type_code)
    if ss.limited_metadata:
        _classification(elem, ids, ss.id, node=v.SS_LIMITED_METADATA)
    _extras(elem, ids, ss)
    if ss.unique_id:
        _external_id(elem, ids, ss.id, v.SS_UNIQUE_ID, ss.unique_id, "XDSSubmissionSet.uniqueId")
    if ss.source_id:
        _external_id(elem, ids, ss.id, v.SS_SOURCE_ID, ss.source_id, "XDSSubmissionSet.sourceId")
    if ss.patient_id is not None:
        _external_id(elem, ids, ss.id, v.SS_PATIENT_ID, str(ss.patient_id), "XDSSubmissionSet.patientId")
    _extra_ids(elem, ids, ss.id, ss.extra_identifiers)
    return elem


def folder(fol: Folder) -> etree._Element:
    """Render a Folder as ``rim:RegistryPackage``."""
    elem = _start("RegistryPackage", fol, {"objectType": v.OT_REGISTRY_PACKAGE})
    _opt(elem, "lastUpdateTime", fol.last_update_time)
    _add_slots(elem, fol.extra_slots)
    _names(elem, fol)
    ids = _Ids(fol.id)
    _classification(elem, ids, fol.id, node=v.FOLDER_NODE)
    for code in fol.codes:
        _code(elem, ids, fol.id, v.FOLDER_CODE_LIST, code)
    if fol.limited_metadata:
        _classification(elem, ids, fol.id, node=v.FOLDER_LIMITED_METADATA)
    _extras(elem, ids, fol)
    if fol.patient_id is not None:
        _external_id(elem, ids, fol.id, v.FOLDER_PATIENT_ID, str(fol.patient_id), "XDSFolder.patientId")
    if fol.unique_id:
        _external_id(elem, ids, fol.id, v.FOLDER_UNIQUE_ID, fol.unique_id, "XDSFolder.uniqueId")
    _extra_ids(elem, ids, fol.id, fol.extra_identifiers)
    return elem


def association(a: Association) -> etree._Element:
    """Render an Association."""
    elem = _start(
        "Association",
        a,
        {
            "objectType": v.OT_ASSOCIATION,
            "associationType": a.association_type,
            "sourceObject": a.source,
            "targetObject": a.target,
        },
    )
    _add_slots(elem, a.extra_slots)
    _names(elem, a)
    ids = _Ids(a.id)
    _extras(elem, ids, a)
    _extra_ids(elem, ids, a.id, a.extra_identifiers)
    return elem


def any_object(obj: RegistryObject) -> etree._Element:
    """Render any XDS object."""
    if isinstance(obj, DocumentEntry):
        return document_entry(obj)
    if isinstance(obj, SubmissionSet):
        return submission_set(obj)
    if isinstance(obj, Folder):
        return folder(obj)
    return association(obj)


def to_bytes(obj: RegistryObject) -> bytes:
    """The object as a standalone UTF-8 XML fragment (no declaration), as the registry stores it."""
    return etree.tostring(any_object(obj), encoding="utf-8")


__all__ = [
    "add_slot",
    "any_object",
    "association",
    "child_id",
    "document_entry",
    "folder",
    "submission_set",
    "to_bytes",
]
