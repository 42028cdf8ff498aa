"""xds.ebrim encode/decode: every model survives render -> hardened parse -> decode, and renders valid ebRIM.

Property tests generate DocumentEntries (Stable and On-Demand), SubmissionSets, Folders and Associations with
codes, authors, times, extras and limited metadata. Table tests decode hand-written ebRIM 3.0 fragments.

References
----------
ITI TF-3 §4.2.3 (metadata attributes), §4.2.2 (associations); OASIS ebRIM 3.0 rim.xsd.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.xsd import assert_valid, requires_corpus
from xds import vocabulary as v
from xds.ebrim import decode, encode
from xds.ebrim.parser import parse_xml
from xds.errors import ErrorCode, MetadataError
from xds.model import (
    CX,
    DTM,
    HD,
    XCN,
    XON,
    XTN,
    Association,
    Author,
    Classification,
    Code,
    DocumentEntry,
    ExternalIdentifier,
    Folder,
    LocalizedString,
    Slot,
    Submission,
    SubmissionSet,
)
from xds.namespaces import LCM, RIM

PROPERTY = settings(max_examples=100, deadline=None)

# --- strategies -----------------------------------------------------------------------------------------

# XML-safe printable text: no control characters (Cc), no surrogates (Cs), no U+FFFE/U+FFFF.
_CHARS = st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufffe\uffff")


def texts(max_size: int = 24, min_size: int = 0) -> st.SearchStrategy[str]:
    """Printable text within the ebRIM LongName (256) / FreeFormText (1024) limits."""
    return st.text(_CHARS, min_size=min_size, max_size=max_size)


uuid_urns = st.uuids(version=4).map(lambda u: f"urn:uuid:{u}")
symbolic_ids = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,15}", fullmatch=True)
ids = st.one_of(uuid_urns, symbolic_ids)
oids = st.lists(st.integers(0, 99999), min_size=1, max_size=8).map(lambda arcs: ".".join(map(str, [1, 2, *arcs])))
dtms = st.from_regex(r"[0-9]{4}([0-9]{2}){0,5}", fullmatch=True).map(DTM)
languages = st.sampled_from(["", "en-US", "nl-NL", "de", "fr-CA"])

localized = st.builds(
    LocalizedString, value=texts(40), lang=languages, charset=st.sampled_from(["", "UTF-8", "ISO-8859-1"])
)
international = st.lists(localized, max_size=2).map(tuple)


def slots(reserved: frozenset[str] = frozenset(), max_size: int = 2) -> st.SearchStrategy[tuple[Slot, ...]]:
    """Slots whose names are not among ``reserved`` (names the decoder maps to typed fields)."""
    slot = st.builds(
        Slot,
        name=texts(20, min_size=1).filter(lambda n: n not in reserved),
        values=st.lists(texts(30), max_size=3).map(tuple),
        slot_type=st.sampled_from(["", "urn:oasis:names:tc:ebxml-regrep:DataType:String"]),
    )
    return st.lists(slot, max_size=max_size).map(tuple)


# HL7 components: short, without the '^' / '&' delimiters, so rendered values stay within LongName.
_COMPONENT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="^&\ufffe\uffff"), max_size=8
)
hds = st.builds(HD, namespace_id=_COMPONENT, universal_id=st.one_of(st.just(""), oids), universal_id_type=_COMPONENT)


def hl7(kind: type[Any]) -> st.SearchStrategy[Any]:
    """Values of an HL7 composite type with short components."""
    return st.builds(kind, **{f.name: hds if f.type in ("HD", HD) else _COMPONENT for f in dataclasses.fields(kind)})


patient_ids = st.builds(
    CX,
    id_number=st.from_regex(r"[0-9A-Z]{1,10}", fullmatch=True),
    assigning_authority=st.builds(HD, universal_id=oids, universal_id_type=st.just("ISO")),
)
cxs = st.one_of(patient_ids, hl7(CX))
codes = st.builds(Code, code=texts(16, min_size=1), scheme=texts(24, min_size=1), display_name=international)

AUTHOR_SLOTS = frozenset(
    {"authorPerson", "authorInstitution", "authorRole", "authorSpecialty", "authorTelecommunication"}
)
authors = st.builds(
    Author,
    person=st.none() | hl7(XCN),
    institutions=st.lists(hl7(XON), max_size=2).map(tuple),
    roles=st.lists(texts(12), max_size=2).map(tuple),
    specialties=st.lists(texts(12), max_size=2).map(tuple),
    telecoms=st.lists(hl7(XTN), max_size=2).map(tuple),
    extra_slots=slots(AUTHOR_SLOTS, max_size=1),
)

# Generic classifications and identifiers use fresh UUID schemes/nodes, so they never hit a named one.
classifications = st.builds(
    Classification,
    scheme=st.just("") | uuid_urns,
    node=st.just("") | uuid_urns,
    node_representation=texts(16),
    name=international,
    slots=slots(max_size=1),
)
identifiers = st.builds(ExternalIdentifier, scheme=uuid_urns, value=texts(30), name=international)


def registry_object(**overrides: Any) -> dict[str, Any]:
    """Keyword strategies for the attributes every XDS object shares."""
    common: dict[str, Any] = {
        "id": ids,
        "lid": st.just("") | uuid_urns,
        "home": st.sampled_from(["", "urn:oid:1.2.3.4.5"]),
        "status": st.sampled_from(["", v.APPROVED, v.DEPRECATED, v.SUBMITTED]),
        "version_name": st.sampled_from(["", "1", "2.1"]),
        "title": international,
        "comments": international,
        "extra_classifications": st.lists(classifications, max_size=2).map(tuple),
        "extra_identifiers": st.lists(identifiers, max_size=2).map(tuple),
    }
    common.update(overrides)
    return common


DE_SLOTS = frozenset({
    "creationTime", "serviceStartTime", "serviceStopTime", "sourcePatientId", "sourcePatientInfo", "hash", "size",
    "repositoryUniqueId", "languageCode", "legalAuthenticator", "URI", "urn:ihe:iti:xds:2013:referenceIdList",
    "documentAvailability",
})  # fmt: skip
SS_SLOTS = frozenset({"submissionTime", "intendedRecipient"})
FOLDER_SLOTS = frozenset({"lastUpdateTime"})

document_entries = st.builds(
    DocumentEntry,
    **registry_object(extra_slots=slots(DE_SLOTS)),
    object_type=st.sampled_from([v.DE_STABLE, v.DE_ON_DEMAND]),
    mime_type=st.sampled_from(["", "text/plain", "application/pdf", "application/dicom"]),
    unique_id=st.just("") | oids,
    patient_id=st.none() | cxs,
    source_patient_id=st.none() | cxs,
    source_patient_info=st.lists(texts(30), max_size=3).map(tuple),
    class_code=st.none() | codes,
    type_code=st.none() | codes,
    format_code=st.none() | codes,
    healthcare_facility_type_code=st.none() | codes,
    practice_setting_code=st.none() | codes,
    confidentiality_codes=st.lists(codes, max_size=2).map(tuple),
    event_codes=st.lists(codes, max_size=3).map(tuple),
    authors=st.lists(authors, max_size=2).map(tuple),
    creation_time=st.none() | dtms,
    service_start_time=st.none() | dtms,
    service_stop_time=st.none() | dtms,
    hash=st.just("") | st.from_regex(r"[0-9a-f]{40}", fullmatch=True),
    size=st.none() | st.integers(0, 2**63 - 1),
    repository_unique_id=st.just("") | oids,
    language_code=languages,
    legal_authenticator=st.none() | hl7(XCN),
    uri=st.just("") | st.from_regex(r"https://example\.org/[a-z0-9/]{0,30}", fullmatch=True),
    reference_ids=st.lists(texts(30), max_size=2).map(tuple),
    document_availability=st.sampled_from(
        ["", "urn:ihe:iti:2010:DocumentAvailability:Online", "urn:ihe:iti:2010:DocumentAvailability:Offline"]
    ),
    limited_metadata=st.booleans(),
)

submission_sets = st.builds(
    SubmissionSet,
    **registry_object(extra_slots=slots(SS_SLOTS)),
    unique_id=st.just("") | oids,
    source_id=st.just("") | oids,
    patient_id=st.none() | cxs,
    submission_time=st.none() | dtms,
    content_type_code=st.none() | codes,
    authors=st.lists(authors, max_size=2).map(tuple),
    intended_recipients=st.lists(texts(30), max_size=2).map(tuple),
    limited_metadata=st.booleans(),
)

folders = st.builds(
    Folder,
    **registry_object(extra_slots=slots(FOLDER_SLOTS)),
    unique_id=st.just("") | oids,
    patient_id=st.none() | cxs,
    codes=st.lists(codes, max_size=3).map(tuple),
    last_update_time=st.none() | dtms,
    limited_metadata=st.booleans(),
)

_ss_status = st.lists(
    st.sampled_from([v.SS_STATUS_ORIGINAL, v.SS_STATUS_REFERENCE]).map(
        lambda s: Slot(name="SubmissionSetStatus", values=(s,))
    ),
    max_size=1,
)
associations = st.builds(
    Association,
    **registry_object(
        extra_slots=st.tuples(_ss_status, slots(frozenset({"SubmissionSetStatus"}), max_size=1)).map(
            lambda pair: (*pair[0], *pair[1])
        )
    ),
    association_type=st.sampled_from(sorted(v.ASSOCIATION_TYPES)),
    source=ids,
    target=ids,
)

KINDS = {
    "DocumentEntry": document_entries,
    "SubmissionSet": submission_sets,
    "Folder": folders,
    "Association": associations,
}

# --- properties -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@PROPERTY
@given(data=st.data())
def test_decode_encode_roundtrip(kind: str, data: st.DataObject) -> None:
    obj = data.draw(KINDS[kind])
    assert decode.any_object(parse_xml(encode.to_bytes(obj))) == obj


@pytest.mark.parametrize("kind", KINDS)
@PROPERTY
@given(data=st.data())
def test_rendering_is_stable(kind: str, data: st.DataObject) -> None:
    # A stored object renders byte-for-byte the same after a decode (ids of nested objects are UUIDv5).
    xml = encode.to_bytes(data.draw(KINDS[kind]))
    assert encode.to_bytes(decode.any_object(parse_xml(xml))) == xml


@requires_corpus
@pytest.mark.parametrize("kind", KINDS)
@PROPERTY
@given(data=st.data())
def test_rendered_xml_is_schema_valid(kind: str, data: st.DataObject) -> None:
    obj = data.draw(KINDS[kind])
    assert_valid(encode.to_bytes(obj), what=kind)


@PROPERTY
@given(st.lists(st.one_of(document_entries, submission_sets, folders, associations), max_size=4))
def test_registry_object_list_roundtrip(objects: list[Any]) -> None:
    container = f'<rim:RegistryObjectList xmlns:rim="{RIM}">'.encode()
    xml = container + b"".join(encode.to_bytes(o) for o in objects) + b"</rim:RegistryObjectList>"
    got = decode.registry_object_list(parse_xml(xml))
    assert got == Submission(
        submission_sets=tuple(o for o in objects if isinstance(o, SubmissionSet)),
        document_entries=tuple(o for o in objects if isinstance(o, DocumentEntry)),
        folders=tuple(o for o in objects if isinstance(o, Folder)),
        associations=tuple(o for o in objects if isinstance(o, Association)),
    )


@PROPERTY
@given(associations)
def test_submission_set_status_survives(a: Association) -> None:
    assert decode.any_object(parse_xml(encode.to_bytes(a))).submission_set_status == a.submission_set_status


# --- hand-written ebRIM 3.0 --------------------------------------------------------------------------------


def value_slot(name: str, *values: str) -> str:
    vals = "".join(f"<rim:Value>{x}</rim:Value>" for x in values)
    return f'<rim:Slot name="{name}"><rim:ValueList>{vals}</rim:ValueList></rim:Slot>'


def code_classification(cid: str, owner: str, scheme: str, code: str, coding_scheme: str) -> str:
    return (
        f'<rim:Classification id="{cid}" classifiedObject="{owner}" classificationScheme="{scheme}" '
        f'nodeRepresentation="{code}">{value_slot("codingScheme", coding_scheme)}'
        f'<rim:Name><rim:LocalizedString value="{code} display"/></rim:Name></rim:Classification>'
    )


def node_classification(cid: str, owner: str, node: str) -> str:
    return f'<rim:Classification id="{cid}" classifiedObject="{owner}" classificationNode="{node}"/>'


def patient_identifier(owner: str, scheme: str) -> str:
    return (
        f'<rim:ExternalIdentifier id="ei-{owner}" registryObject="{owner}" identificationScheme="{scheme}" '
        'value="123^^^&amp;1.2.3&amp;ISO"><rim:Name><rim:LocalizedString value="patientId"/></rim:Name>'
        "</rim:ExternalIdentifier>"
    )


def extrinsic(*, slots_xml: str = "", classifications_xml: str = "", owner: str = "Document01") -> str:
    return (
        f'<rim:ExtrinsicObject id="{owner}" mimeType="text/plain" objectType="{v.DE_STABLE}">'
        f"{slots_xml}{classifications_xml}{patient_identifier(owner, v.DE_PATIENT_ID)}</rim:ExtrinsicObject>"
    )


def package(owner: str, inner: str = "") -> str:
    return (
        f'<rim:RegistryPackage id="{owner}" objectType="{v.OT_REGISTRY_PACKAGE}">'
        f"{value_slot('submissionTime', '20240131')}{inner}</rim:RegistryPackage>"
    )


def object_list(*children: str) -> bytes:
    body = "".join(children)
    return f'<rim:RegistryObjectList xmlns:rim="{RIM}" xmlns:lcm="{LCM}">{body}</rim:RegistryObjectList>'.encode()


CLASS_CODE = code_classification("cl01", "Document01", v.DE_CLASS_CODE, "REPORTS", "1.3.6.1.4.1.21367.100.1")

EQUIVALENT = {
    "SubmissionSet node nested vs top level": (
        object_list(package("SubmissionSet01", node_classification("c1", "SubmissionSet01", v.SS_NODE))),
        object_list(package("SubmissionSet01"), node_classification("c1", "SubmissionSet01", v.SS_NODE)),
    ),
    "Folder node nested vs top level": (
        object_list(package("Folder01", node_classification("c1", "Folder01", v.FOLDER_NODE))),
        object_list(package("Folder01"), node_classification("c1", "Folder01", v.FOLDER_NODE)),
    ),
    "classCode nested vs top level": (
        object_list(extrinsic(classifications_xml=CLASS_CODE)),
        object_list(extrinsic(), CLASS_CODE),
    ),
}


@pytest.mark.parametrize(("nested", "top_level"), EQUIVALENT.values(), ids=EQUIVALENT.keys())
def test_classification_placement_gives_the_same_model(nested: bytes, top_level: bytes) -> None:
    a = decode.registry_object_list(parse_xml(nested))
    b = decode.registry_object_list(parse_xml(top_level))
    assert a == b
    assert a.objects()


def test_hand_written_document_entry_decodes() -> None:
    xml = object_list(
        extrinsic(
            slots_xml=value_slot("creationTime", "20240131123000")
            + value_slot("size", "42")
            + value_slot("hash", "da39a3ee5e6b4b0d3255bfef95601890afd80709")
            + value_slot("custom", "a", "b"),
            classifications_xml=CLASS_CODE,
        )
    )
    (de,) = decode.registry_object_list(parse_xml(xml)).document_entries
    assert de.id == "Document01"
    assert de.object_type == v.DE_STABLE
    assert de.creation_time == DTM("20240131123000")
    assert de.size == 42
    assert de.hash == "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    assert de.patient_id == CX(id_number="123", assigning_authority=HD(universal_id="1.2.3", universal_id_type="ISO"))
    assert de.class_code == Code(
        code="REPORTS", scheme="1.3.6.1.4.1.21367.100.1", display_name=(LocalizedString(value="REPORTS display"),)
    )
    assert de.extra_slots == (Slot(name="custom", values=("a", "b")),)


@requires_corpus
@pytest.mark.parametrize("sample", [x for pair in EQUIVALENT.values() for x in pair])
def test_hand_written_samples_are_schema_valid(sample: bytes) -> None:
    assert_valid(sample)


SS_NODE = node_classification("c1", "SubmissionSet01", v.SS_NODE)

INVALID = {
    # name: (RegistryObjectList, text the MetadataError must name)
    "RegistryPackage without SS/Folder node": (object_list(package("SubmissionSet01")), "neither"),
    "RegistryPackage with both nodes": (
        object_list(
            package("P1", node_classification("c1", "P1", v.SS_NODE) + node_classification("c2", "P1", v.FOLDER_NODE))
        ),
        "both",
    ),
    "creationTime with dashes": (
        object_list(extrinsic(slots_xml=value_slot("creationTime", "2024-01-31"))),
        "creationTime",
    ),
    "creationTime of odd length": (
        object_list(extrinsic(slots_xml=value_slot("creationTime", "20241"))),
        "creationTime",
    ),
    "creationTime twice": (
        object_list(extrinsic(slots_xml=value_slot("creationTime", "2024", "2025"))),
        "creationTime",
    ),
    "serviceStartTime with letters": (
        object_list(extrinsic(slots_xml=value_slot("serviceStartTime", "2024ab"))),
        "serviceStartTime",
    ),
    "submissionTime malformed": (
        object_list(
            f'<rim:RegistryPackage id="SubmissionSet01">{value_slot("submissionTime", "yesterday")}'
            f"{SS_NODE}</rim:RegistryPackage>"
        ),
        "submissionTime",
    ),
    "size not an integer": (object_list(extrinsic(slots_xml=value_slot("size", "12kb"))), "size"),
    "size negative": (object_list(extrinsic(slots_xml=value_slot("size", "-1"))), "size"),
    "size decimal": (object_list(extrinsic(slots_xml=value_slot("size", "1.5"))), "size"),
    "size empty": (object_list(extrinsic(slots_xml=value_slot("size", ""))), "size"),
    "two classCodes": (
        object_list(extrinsic(classifications_xml=CLASS_CODE + CLASS_CODE.replace('id="cl01"', 'id="cl02"'))),
        "class_code",
    ),
    "classCode nested and top level": (
        object_list(extrinsic(classifications_xml=CLASS_CODE), CLASS_CODE),
        "class_code",
    ),
    "classCode without codingScheme": (
        object_list(
            extrinsic(classifications_xml=CLASS_CODE.replace(value_slot("codingScheme", "1.3.6.1.4.1.21367.100.1"), ""))
        ),
        "codingScheme",
    ),
    "patientId not a CX": (object_list(extrinsic().replace("123^^^&amp;1.2.3&amp;ISO", "1^2^3^4^5^6^7")), "patientId"),
    "classification of an unknown object": (
        object_list(extrinsic(), node_classification("c9", "Nowhere", v.SS_NODE)),
        "Nowhere",
    ),
    "ExtrinsicObject without id": (object_list(extrinsic().replace(' id="Document01"', "", 1)), "without an id"),
}


@pytest.mark.parametrize(("xml", "named"), INVALID.values(), ids=INVALID.keys())
def test_malformed_metadata_is_a_metadata_error(xml: bytes, named: str) -> None:
    with pytest.raises(MetadataError) as info:
        decode.registry_object_list(parse_xml(xml))
    assert info.value.error_code is ErrorCode.REGISTRY_METADATA_ERROR
    assert named in str(info.value)


def test_size_with_non_ascii_digits_is_a_metadata_error() -> None:
    with pytest.raises(MetadataError):
        decode.registry_object_list(parse_xml(object_list(extrinsic(slots_xml=value_slot("size", "\u0663")))))


def test_any_object_refuses_a_non_registry_object() -> None:
    with pytest.raises(MetadataError, match="not a registry object"):
        decode.any_object(parse_xml(f'<rim:ObjectRef xmlns:rim="{RIM}" id="x"/>'.encode()))


def test_any_object_refuses_an_unclassified_package() -> None:
    with pytest.raises(MetadataError, match="neither"):
        decode.any_object(parse_xml(object_list(package("P1")))[0])
