"""ATNA audit messages: the DICOM PS3.15 A.5 model and renderer (xds.audit.message) and the per-transaction
builders (xds.audit.transactions).

Every rendered message is parsed with the hardened parser and validated against
``tests/data/audit/dicom-audit-message.xsd`` (written from PS3.15 §A.5.1).
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from xds import vocabulary as v
from xds.audit import transactions as t
from xds.audit.message import (
    ActiveParticipant,
    AuditMessage,
    AuditSource,
    Code,
    ParticipantObject,
    render,
)
from xds.consent.model import PURPOSE_EMERGENCY, AccessRequest, Decision, Requester
from xds.ebrim.parser import parse_xml

XSD = Path(__file__).resolve().parents[1] / "data" / "audit" / "dicom-audit-message.xsd"
SCHEMA = etree.XMLSchema(etree.parse(str(XSD)))

TIME = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
NODE = t.AuditNode(
    source_id="xds-node-1",
    enterprise_site_id="1.2.3.4.5",
    host="xds.example.org",
    endpoint="https://xds.example.org/xds/registry",
    process_id="4242",
)
REQUESTER = Requester(
    user_id="900012345",
    user_name="Dr. A. Arts",
    role="01.015^^2.16.528.1.1007.3.1",
    organisation_id="00001234",
    organisation_name="Ziekenhuis",
    purpose_of_use="TREATMENT",
    address="192.0.2.10",
)
PATIENT = "9999'--%^^^&2.16.840.1.113883.2.4.6.3&ISO"
QUERY_ID = "urn:uuid:" + "14d4debf-8f97-4251-9a74-a90016b0af0d"
QUERY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0">'
    b"<!-- byte-exact --><x>&lt;script&gt; \xc3\xa9</x></query:AdhocQueryRequest>"
)
REPLY_TO = "https://consumer.example.org/reply"
HOME = "urn:oid:1.2.3.99"
DOCS = (
    t.DocumentRef("1.2.3.4.100", "1.2.3.4.9", HOME),
    t.DocumentRef("1.2.3.4.101", "1.2.3.4.9"),
)


def rendered(message: AuditMessage) -> etree._Element:
    """``message`` rendered, parsed with the hardened parser and validated against the DICOM schema."""
    root = parse_xml(render(message))
    SCHEMA.assertValid(root)
    return root


def one(element: etree._Element, path: str) -> etree._Element:
    """The element at ``path`` below ``element``, which must exist."""
    found = element.find(path)
    assert found is not None, path
    return found


def code_of(element: etree._Element) -> tuple[str | None, str | None, str | None]:
    return element.get("csd-code"), element.get("codeSystemName"), element.get("originalText")


def details(obj: etree._Element) -> dict[str, bytes]:
    return {d.get("type", ""): base64.b64decode(d.get("value", "")) for d in obj.findall("ParticipantObjectDetail")}


def participant_with_role(root: etree._Element, role: str) -> etree._Element:
    (found,) = [p for p in root.findall("ActiveParticipant") if p.find(f"RoleIDCode[@csd-code='{role}']") is not None]
    return found


def objects_with_role(root: etree._Element, role: str) -> list[etree._Element]:
    return root.findall(f"ParticipantObjectIdentification[@ParticipantObjectTypeCodeRole='{role}']")


def _query(builder: Callable[..., AuditMessage], **kw: object) -> AuditMessage:
    args: dict[str, object] = {
        "node": NODE,
        "requester": REQUESTER,
        "time": TIME,
        "outcome": 0,
        "query": QUERY,
        "query_id": QUERY_ID,
        "patient_id": PATIENT,
        "home_community_id": HOME,
        "reply_to": REPLY_TO,
    }
    return builder(**(args | kw))


def _import(builder: Callable[..., AuditMessage], **kw: object) -> AuditMessage:
    args: dict[str, object] = {
        "node": NODE,
        "requester": REQUESTER,
        "time": TIME,
        "outcome": 0,
        "submission_set_id": "1.2.3.4.55",
        "patient_id": PATIENT,
        "reply_to": REPLY_TO,
    }
    return builder(**(args | kw))


def _export(builder: Callable[..., AuditMessage], **kw: object) -> AuditMessage:
    args: dict[str, object] = {
        "node": NODE,
        "requester": REQUESTER,
        "time": TIME,
        "outcome": 0,
        "documents": DOCS,
        "patient_ids": (PATIENT,),
        "reply_to": REPLY_TO,
    }
    return builder(**(args | kw))


def _consent(permit: bool = True, emergency: bool = False, requester: Requester = REQUESTER) -> AuditMessage:
    request = AccessRequest(patient_id=PATIENT, requester=requester, at=TIME, category="11488-4^^2.16.840.1.113883.6.1")
    decision = Decision(permit, "mitz", "no consent registered" if not permit else "opt-in", emergency=emergency)
    return t.consent_decision(node=NODE, request=request, decision=decision)


BUILDS: dict[str, Callable[[], AuditMessage]] = {
    "ITI-18": lambda: _query(t.registry_stored_query),
    "ITI-38": lambda: _query(t.cross_gateway_query),
    "ITI-41": lambda: _import(t.provide_and_register),
    "ITI-42": lambda: _import(t.register_document_set),
    "ITI-43": lambda: _export(t.retrieve_document_set),
    "ITI-39": lambda: _export(t.cross_gateway_retrieve),
    "consent": _consent,
}

# (build, EventID, action, EventTypeCode) per ITI TF-2 audit tables; the consent record is this node's choice.
EVENTS = [
    ("ITI-18", ("110112", "DCM", "Query"), "E", ("ITI-18", "IHE Transactions", "Registry Stored Query")),
    ("ITI-38", ("110112", "DCM", "Query"), "E", ("ITI-38", "IHE Transactions", "Cross Gateway Query")),
    ("ITI-41", ("110107", "DCM", "Import"), "C", ("ITI-41", "IHE Transactions", "Provide and Register Document Set-b")),
    ("ITI-42", ("110107", "DCM", "Import"), "C", ("ITI-42", "IHE Transactions", "Register Document Set-b")),
    ("ITI-43", ("110106", "DCM", "Export"), "R", ("ITI-43", "IHE Transactions", "Retrieve Document Set")),
    ("ITI-39", ("110106", "DCM", "Export"), "R", ("ITI-39", "IHE Transactions", "Cross Gateway Retrieve")),
    (
        "consent",
        ("110110", "DCM", "Patient Record"),
        "R",
        ("consent-decision", "urn:xds-node:audit", "Consent decision"),
    ),
]


@pytest.mark.parametrize(("build", "event_id", "action", "type_code"), EVENTS)
def test_event_identification(
    build: str, event_id: tuple[str, str, str], action: str, type_code: tuple[str, str, str]
) -> None:
    root = rendered(BUILDS[build]())
    event = root.find("EventIdentification")
    assert event is not None
    assert code_of(one(event, "EventID")) == event_id
    assert [code_of(c) for c in event.findall("EventTypeCode")] == [type_code]
    assert event.get("EventActionCode") == action
    assert event.get("EventDateTime") == "2026-03-01T12:30:15.250Z"
    assert [code_of(c) for c in event.findall("PurposeOfUse")] == [
        ("TREATMENT", "2.16.840.1.113883.3.18.7.1", "TREATMENT")
    ]


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_document_shape(build: str) -> None:
    data = render(BUILDS[build]())
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = rendered(BUILDS[build]())
    assert root.tag == "AuditMessage" and not root.nsmap
    tags = [child.tag for child in root]
    first_source = tags.index("AuditSourceIdentification")
    assert tags[0] == "EventIdentification"
    assert set(tags[1:first_source]) == {"ActiveParticipant"}
    assert set(tags[first_source + 1 :]) == {"ParticipantObjectIdentification"}
    source = root.find("AuditSourceIdentification")
    assert source is not None
    assert (source.get("AuditSourceID"), source.get("AuditEnterpriseSiteID")) == ("xds-node-1", "1.2.3.4.5")
    assert [c.get("csd-code") for c in source.findall("AuditSourceTypeCode")] == ["4"]


@pytest.mark.parametrize("build", ["ITI-18", "ITI-38", "ITI-41", "ITI-42"])
def test_requester_is_source_and_node_is_destination(build: str) -> None:
    root = rendered(BUILDS[build]())
    source = participant_with_role(root, "110153")
    assert source.get("UserID") == REPLY_TO
    assert source.get("UserIsRequestor") == "true"
    assert (source.get("NetworkAccessPointID"), source.get("NetworkAccessPointTypeCode")) == ("192.0.2.10", "2")
    destination = participant_with_role(root, "110152")
    assert destination.get("UserID") == NODE.endpoint
    assert destination.get("AlternativeUserID") == "4242"
    assert destination.get("UserIsRequestor") == "false"
    # a host name is a machine name (1), not an IP address (2)
    assert (destination.get("NetworkAccessPointID"), destination.get("NetworkAccessPointTypeCode")) == (
        "xds.example.org",
        "1",
    )


@pytest.mark.parametrize("build", ["ITI-43", "ITI-39"])
def test_node_is_source_of_an_export(build: str) -> None:
    root = rendered(BUILDS[build]())
    assert participant_with_role(root, "110153").get("UserID") == NODE.endpoint
    assert participant_with_role(root, "110153").get("UserIsRequestor") == "false"
    destination = participant_with_role(root, "110152")
    assert destination.get("UserID") == REPLY_TO
    assert destination.get("NetworkAccessPointID") == "192.0.2.10"


@pytest.mark.parametrize("build", ["ITI-18", "ITI-38", "ITI-41", "ITI-42", "ITI-43", "ITI-39"])
def test_human_requestor_from_xua(build: str) -> None:
    root = rendered(BUILDS[build]())
    (human,) = root.findall("ActiveParticipant[@UserID='900012345']")
    assert human.get("UserName") == "Dr. A. Arts"
    assert human.get("UserIsRequestor") == "true"
    assert [code_of(c)[:2] for c in human.findall("RoleIDCode")] == [("01.015", "2.16.528.1.1007.3.1")]


def test_anonymous_requester_has_no_human_requestor_and_no_access_point() -> None:
    message = t.registry_stored_query(
        node=NODE, requester=Requester(purpose_of_use=""), time=TIME, outcome=0, query=QUERY, query_id=QUERY_ID
    )
    root = rendered(message)
    assert len(root.findall("ActiveParticipant")) == 2
    source = participant_with_role(root, "110153")
    assert source.get("UserID") == "http://www.w3.org/2005/08/addressing/anonymous"
    assert source.get("NetworkAccessPointID") is None and source.get("NetworkAccessPointTypeCode") is None
    assert root.findall("EventIdentification/PurposeOfUse") == []
    assert objects_with_role(root, "1") == []  # a query by object id names no patient


@pytest.mark.parametrize("build", ["ITI-18", "ITI-38", "ITI-41", "ITI-42", "ITI-43", "ITI-39", "consent"])
def test_patient_object(build: str) -> None:
    (patient,) = objects_with_role(rendered(BUILDS[build]()), "1")
    assert patient.get("ParticipantObjectID") == PATIENT
    assert patient.get("ParticipantObjectTypeCode") == "1"
    assert code_of(one(patient, "ParticipantObjectIDTypeCode")) == ("2", "RFC-3881", "Patient Number")


@pytest.mark.parametrize(("build", "id_type"), [("ITI-18", "ITI-18"), ("ITI-38", "ITI-38")])
def test_query_object_carries_the_request_bytes(build: str, id_type: str) -> None:
    (query,) = objects_with_role(rendered(BUILDS[build]()), "24")
    assert query.get("ParticipantObjectID") == QUERY_ID
    assert query.get("ParticipantObjectTypeCode") == "2"
    assert code_of(one(query, "ParticipantObjectIDTypeCode"))[0] == id_type
    assert base64.b64decode(query.findtext("ParticipantObjectQuery", "")) == QUERY
    assert details(query) == {"QueryEncoding": b"UTF-8", "urn:ihe:iti:xca:2010:homeCommunityId": HOME.encode()}


def test_query_without_home_community_has_only_the_encoding_detail() -> None:
    (query,) = objects_with_role(rendered(_query(t.registry_stored_query, home_community_id="")), "24")
    assert details(query) == {"QueryEncoding": b"UTF-8"}


@pytest.mark.parametrize("build", ["ITI-43", "ITI-39"])
def test_document_objects_carry_repository_and_home(build: str) -> None:
    documents = objects_with_role(rendered(BUILDS[build]()), "3")
    assert [d.get("ParticipantObjectID") for d in documents] == ["1.2.3.4.100", "1.2.3.4.101"]
    for document in documents:
        assert document.get("ParticipantObjectTypeCode") == "2"
        assert code_of(one(document, "ParticipantObjectIDTypeCode")) == ("9", "RFC-3881", "Report Number")
    assert details(documents[0]) == {"Repository Unique Id": b"1.2.3.4.9", "ihe:homeCommunityID": HOME.encode()}
    assert details(documents[1]) == {"Repository Unique Id": b"1.2.3.4.9"}


@pytest.mark.parametrize("build", ["ITI-41", "ITI-42"])
def test_submission_set_object(build: str) -> None:
    (submission_set,) = objects_with_role(rendered(BUILDS[build]()), "20")
    assert submission_set.get("ParticipantObjectID") == "1.2.3.4.55"
    assert submission_set.get("ParticipantObjectTypeCode") == "2"
    id_type = submission_set.find("ParticipantObjectIDTypeCode")
    assert id_type is not None and id_type.get("csd-code") == v.SS_NODE
    assert id_type.get("codeSystemName") == "IHE XDS Metadata"


@pytest.mark.parametrize("outcome", [0, 4, 8, 12])
def test_outcome_is_recorded(outcome: int) -> None:
    root = rendered(_export(t.retrieve_document_set, outcome=outcome))
    assert one(root, "EventIdentification").get("EventOutcomeIndicator") == str(outcome)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (v.RESPONSE_SUCCESS, 0),
        (v.RESPONSE_PARTIAL_SUCCESS, 4),
        (v.RESPONSE_FAILURE, 8),
        ("something else", 8),
    ],
)
def test_outcome_for_status(status: str, outcome: int) -> None:
    assert t.outcome_for_status(status) == outcome


@pytest.mark.parametrize(
    ("permit", "emergency", "outcome", "decision", "flag"),
    [
        (True, False, "0", b"permit", b"false"),
        (False, False, "4", b"deny", b"false"),
        (True, True, "0", b"permit", b"true"),
    ],
)
def test_consent_decision(permit: bool, emergency: bool, outcome: str, decision: bytes, flag: bytes) -> None:
    requester = Requester(
        user_id="900012345", organisation_id="00001234", purpose_of_use=PURPOSE_EMERGENCY, address="2001:db8::1"
    )
    root = rendered(_consent(permit, emergency, requester))
    assert one(root, "EventIdentification").get("EventOutcomeIndicator") == outcome
    assert one(root, "EventIdentification/PurposeOfUse").get("csd-code") == "EMERGENCY"
    (patient,) = objects_with_role(root, "1")
    found = details(patient)
    assert found["decision"] == decision
    assert found["emergency"] == flag
    assert found["policy"] == b"mitz"
    assert found["reason"] == (b"opt-in" if permit else b"no consent registered")
    assert found["category"] == b"11488-4^^2.16.840.1.113883.6.1"
    (requesting,) = root.findall("ActiveParticipant[@UserIsRequestor='true']")
    assert (requesting.get("UserID"), requesting.get("AlternativeUserID")) == ("900012345", "00001234")
    assert requesting.get("NetworkAccessPointTypeCode") == "2"
    assert participant_with_role(root, "110150").get("UserID") == NODE.endpoint


def test_consent_decision_of_an_organisation_without_user() -> None:
    requester = Requester(organisation_id="00001234", organisation_name="Ziekenhuis")
    root = rendered(_consent(requester=requester))
    (requesting,) = root.findall("ActiveParticipant[@UserIsRequestor='true']")
    assert (requesting.get("UserID"), requesting.get("UserName")) == ("00001234", "Ziekenhuis")
    assert requesting.findall("RoleIDCode") == []


NASTY = "<a & 'b'> \"c\" ]]> é"


def test_xml_special_characters_round_trip() -> None:
    requester = Requester(user_id=NASTY, user_name=NASTY, role=NASTY, address=NASTY)
    message = _query(
        t.registry_stored_query, requester=requester, patient_id=NASTY, query_id=NASTY, home_community_id=NASTY
    )
    data = render(message)
    assert b"<a &" not in data
    root = rendered(message)
    human = root.findall("ActiveParticipant")[1]
    assert (human.get("UserID"), human.get("UserName")) == (NASTY, NASTY)
    assert one(human, "RoleIDCode").get("csd-code") == NASTY
    assert participant_with_role(root, "110153").get("NetworkAccessPointID") == NASTY
    assert objects_with_role(root, "1")[0].get("ParticipantObjectID") == NASTY
    (query,) = objects_with_role(root, "24")
    assert query.get("ParticipantObjectID") == NASTY
    assert details(query)["urn:ihe:iti:xca:2010:homeCommunityId"] == NASTY.encode()


def test_characters_xml_cannot_carry_are_replaced_not_fatal() -> None:
    message = _query(t.registry_stored_query, patient_id="p\x00\x1b1", query_id="q\ud800")
    root = rendered(message)
    assert objects_with_role(root, "1")[0].get("ParticipantObjectID") == "p\ufffd\ufffd1"
    assert objects_with_role(root, "24")[0].get("ParticipantObjectID") == "q\ufffd"


def test_outcome_description_and_names_render_in_schema_order() -> None:
    obj = ParticipantObject(id="o1", id_type_code=Code("x", "y"), name="Name & <co>", sensitivity="N")
    message = AuditMessage(
        event_id=Code("110100", "DCM", "Application Activity"),
        action="E",
        outcome=8,
        time=TIME,
        outcome_description="failed: <RegistryError/>",
        participants=(ActiveParticipant(user_id="me", user_is_requestor=False),),
        source=AuditSource("src", type_codes=(Code("4", "security-source-type", "Application Server"),)),
        objects=(obj,),
    )
    root = rendered(message)
    event = root.find("EventIdentification")
    assert event is not None
    assert [c.tag for c in event] == ["EventID", "EventOutcomeDescription"]
    assert event.findtext("EventOutcomeDescription") == "failed: <RegistryError/>"
    assert root.findtext("ParticipantObjectIdentification/ParticipantObjectName") == "Name & <co>"
    assert code_of(one(root, "AuditSourceIdentification/AuditSourceTypeCode"))[1] == "security-source-type"


def test_event_time_is_rendered_in_utc() -> None:
    amsterdam = timezone(timedelta(hours=1))
    message = _import(t.register_document_set, time=datetime(2026, 3, 1, 13, 30, tzinfo=amsterdam))
    assert one(rendered(message), "EventIdentification").get("EventDateTime") == "2026-03-01T12:30:00.000Z"


BASE_MESSAGE = AuditMessage(
    event_id=Code("110112", "DCM", "Query"),
    action="E",
    outcome=0,
    time=TIME,
    participants=(ActiveParticipant(user_id="me", user_is_requestor=True),),
    source=AuditSource("src"),
)


def _message(**kw: Any) -> AuditMessage:
    """:data:`BASE_MESSAGE` with ``kw`` changed (``replace`` runs the checks again)."""
    return dataclasses.replace(BASE_MESSAGE, **kw)


def test_base_message_is_valid() -> None:
    assert rendered(_message()).find("ParticipantObjectIdentification") is None


INVALID: list[tuple[str, Callable[[], object]]] = [
    ("action", lambda: _message(action="X")),
    ("lowercase action", lambda: _message(action="e")),
    ("outcome", lambda: _message(outcome=3)),
    ("naive time", lambda: _message(time=datetime(2026, 3, 1, 12, 0))),
    ("no participants", lambda: _message(participants=())),
    ("empty code", lambda: Code("", "DCM")),
    ("code without system", lambda: Code("110112", " ")),
    ("empty user id", lambda: ActiveParticipant(user_id="", user_is_requestor=True)),
    (
        "access point type",
        lambda: ActiveParticipant(
            user_id="u", user_is_requestor=True, network_access_point_type_code=6, network_access_point_id="h"
        ),
    ),
    (
        "access point without id",
        lambda: ActiveParticipant(user_id="u", user_is_requestor=True, network_access_point_type_code=2),
    ),
    (
        "access point without type",
        lambda: ActiveParticipant(user_id="u", user_is_requestor=True, network_access_point_id="h"),
    ),
    ("source id", lambda: AuditSource("")),
    ("source type", lambda: AuditSource("s", type_codes=("10",))),
    ("object id", lambda: ParticipantObject(id="", id_type_code=Code("x", "y"))),
    ("object type", lambda: ParticipantObject(id="o", id_type_code=Code("x", "y"), type_code=5)),
    ("object role", lambda: ParticipantObject(id="o", id_type_code=Code("x", "y"), type_code_role=27)),
    ("life cycle", lambda: ParticipantObject(id="o", id_type_code=Code("x", "y"), data_life_cycle=0)),
    ("name and query", lambda: ParticipantObject(id="o", id_type_code=Code("x", "y"), name="n", query=b"q")),
    ("detail type", lambda: ParticipantObject(id="o", id_type_code=Code("x", "y"), details=(("", b"v"),))),
    ("naive builder time", lambda: _query(t.registry_stored_query, time=datetime(2026, 3, 1))),
    ("builder outcome", lambda: _export(t.retrieve_document_set, outcome=1)),
]


@pytest.mark.parametrize(("case", "build"), INVALID, ids=[case for case, _ in INVALID])
def test_invalid_input_is_refused(case: str, build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


@pytest.mark.parametrize(
    "breakage",
    [
        "drop EventID",
        "source before participants",
        "bad outcome",
        "query and name",
        "detail not base64",
    ],
)
def test_the_schema_catches_broken_messages(breakage: str) -> None:
    """The XSD is strict enough to fail: each breakage of a valid message makes it invalid."""
    root = rendered(_query(t.registry_stored_query))
    query = objects_with_role(root, "24")[0]
    if breakage == "drop EventID":
        one(root, "EventIdentification").remove(one(root, "EventIdentification/EventID"))
    elif breakage == "source before participants":
        root.insert(1, one(root, "AuditSourceIdentification"))
    elif breakage == "bad outcome":
        one(root, "EventIdentification").set("EventOutcomeIndicator", "1")
    elif breakage == "query and name":
        one(query, "ParticipantObjectQuery").addprevious(etree.Element("ParticipantObjectName"))
    else:
        one(query, "ParticipantObjectDetail").set("value", "not base64!")
    assert not SCHEMA.validate(root)
