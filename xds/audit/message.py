"""DICOM audit message (DICOM PS3.15 Annex A.5): the model and its XML rendering.

An :class:`AuditMessage` is one ATNA audit record: what happened (event identification), who took part
(active participants), who reports it (audit source) and which data it concerned (participant objects).
:func:`render` writes it as the ``<AuditMessage>`` XML of the DICOM Audit Message Schema, in no namespace,
with the elements in the schema's order. Coded values use the DICOM 2013+ attribute names ``csd-code`` /
``codeSystemName`` / ``originalText`` (the "EV(code, system, meaning)" triplets of IHE map onto them).

Values are set through lxml (attributes and text are escaped by the serialiser, never concatenated).
Characters that XML 1.0 cannot carry at all (NUL, most C0 controls, lone surrogates) are replaced by U+FFFD
rather than failing: an audit record must not be lost because a peer sent a hostile identifier.
Binary values (``ParticipantObjectQuery``, ``ParticipantObjectDetail/@value``) are base64 encoded, as the
schema requires "to protect against text contents that contain XML fragments".

References
----------
DICOM PS3.15 §A.5.1 (DICOM Audit Message Schema), §A.5.1.2 (codes used within the schema),
§A.5.2 (general message format conventions, Table A.5.2-1); IHE ITI TF-2 §3.20.7 (ATNA audit record format)
and §3.40.4.2 (XUA: PurposeOfUse in EventIdentification).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from lxml import etree

ACTIONS: Final = frozenset({"C", "R", "U", "D", "E"})
"""EventActionCode: Create, Read, Update, Delete, Execute (PS3.15 §A.5.1)."""
OUTCOMES: Final = frozenset({0, 4, 8, 12})
"""EventOutcomeIndicator: success, minor failure, serious failure, major failure (PS3.15 §A.5.1)."""

OUTCOME_SUCCESS: Final = 0
OUTCOME_MINOR_FAILURE: Final = 4
"""E.g. an XDS PartialSuccess, or a request refused by policy."""
OUTCOME_SERIOUS_FAILURE: Final = 8
"""E.g. an XDS Failure."""
OUTCOME_MAJOR_FAILURE: Final = 12

NAP_MACHINE_NAME: Final = 1
"""NetworkAccessPointTypeCode "Machine Name, including DNS name"."""
NAP_IP_ADDRESS: Final = 2
"""NetworkAccessPointTypeCode "IP Address"."""

OBJECT_PERSON: Final = 1
OBJECT_SYSTEM: Final = 2
OBJECT_ORGANIZATION: Final = 3
OBJECT_OTHER: Final = 4

SOURCE_TYPE_APPLICATION_SERVER: Final = "4"
"""AuditSourceTypeCode "Application Server process or thread" (PS3.15 §A.5.1.2.1)."""
_SOURCE_TYPES: Final = frozenset("123456789")

_NOT_XML_CHAR: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class Code:
    """A coded value, "EV(code, codeSystemName, originalText)" in IHE tables.

    Rendered as ``csd-code``, ``codeSystemName`` and ``originalText`` (required by the schema; the code itself
    stands in when no display name is given).
    """

    code: str
    system_name: str
    display_name: str = ""

    def __post_init__(self) -> None:
        if not self.code.strip():
            raise ValueError("a coded value needs a code (csd-code)")
        if not self.system_name.strip():
            raise ValueError(f"coded value {self.code!r} needs a codeSystemName")


@dataclass(frozen=True, slots=True, kw_only=True)
class ActiveParticipant:
    """A user or process taking part in the event (PS3.15 Table A.5.2-1 "Active Participant")."""

    user_id: str
    user_is_requestor: bool
    alternative_user_id: str = ""
    user_name: str = ""
    role_id_codes: tuple[Code, ...] = ()
    network_access_point_type_code: int | None = None
    """1 machine name, 2 IP address, 3 telephone number, 4 e-mail address, 5 URI."""
    network_access_point_id: str = ""

    def __post_init__(self) -> None:
        if not self.user_id:
            raise ValueError("an active participant needs a UserID")
        nap_type = self.network_access_point_type_code
        if nap_type is not None and nap_type not in range(1, 6):
            raise ValueError(f"NetworkAccessPointTypeCode must be 1..5, not {nap_type}")
        if (nap_type is None) != (not self.network_access_point_id):
            raise ValueError("NetworkAccessPointID and NetworkAccessPointTypeCode go together")


@dataclass(frozen=True, slots=True)
class AuditSource:
    """The system that reports the event (``AuditSourceIdentification``).

    ``type_codes`` holds DICOM's own source types as the strings ``"1"``..``"9"`` (rendered as a bare
    ``csd-code``, which the schema explicitly allows) or a :class:`Code` from another terminology.
    """

    id: str
    enterprise_site_id: str = ""
    type_codes: tuple[str | Code, ...] = (SOURCE_TYPE_APPLICATION_SERVER,)

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("an audit source needs an AuditSourceID")
        for code in self.type_codes:
            if isinstance(code, str) and code not in _SOURCE_TYPES:
                raise ValueError(f"AuditSourceTypeCode {code!r} is not one of DICOM's values 1..9")


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantObject:
    """Data the event concerned: a patient, a document, a query, a submission set (PS3.15 Table A.5.2-1)."""

    id: str
    id_type_code: Code
    type_code: int | None = None
    """1 person, 2 system object, 3 organization, 4 other."""
    type_code_role: int | None = None
    """1 patient, 3 report, 20 job, 24 query, ... (PS3.15 §A.5.1.2.2)."""
    data_life_cycle: int | None = None
    sensitivity: str = ""
    name: str = ""
    query: bytes | None = None
    """The query as received, base64 in the output; the schema allows a name or a query, not both."""
    details: tuple[tuple[str, bytes], ...] = ()
    """``ParticipantObjectDetail`` (type, value) pairs; values are base64 in the output."""

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a participant object needs a ParticipantObjectID")
        _check_range("ParticipantObjectTypeCode", self.type_code, 1, 4)
        _check_range("ParticipantObjectTypeCodeRole", self.type_code_role, 1, 26)
        _check_range("ParticipantObjectDataLifeCycle", self.data_life_cycle, 1, 15)
        if self.name and self.query is not None:
            raise ValueError("ParticipantObjectName and ParticipantObjectQuery are alternatives (PS3.15 §A.5.1)")
        for detail_type, _ in self.details:
            if not detail_type:
                raise ValueError("a ParticipantObjectDetail needs a type")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditMessage:
    """One audit record (``AuditMessage``)."""

    event_id: Code
    action: str
    """EventActionCode: C, R, U, D or E."""
    outcome: int
    """EventOutcomeIndicator: 0, 4, 8 or 12."""
    time: datetime
    """EventDateTime; must carry a time zone (rendered in UTC, PS3.15 §A.5.2.5)."""
    participants: tuple[ActiveParticipant, ...]
    source: AuditSource
    type_codes: tuple[Code, ...] = ()
    outcome_description: str = ""
    purpose_of_use: tuple[Code, ...] = ()
    objects: tuple[ParticipantObject, ...] = ()

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"EventActionCode must be one of C, R, U, D, E, not {self.action!r}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"EventOutcomeIndicator must be 0, 4, 8 or 12, not {self.outcome!r}")
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise ValueError("EventDateTime must be an aware datetime (PS3.15 §A.5.2.5: unambiguous as to time zone)")
        if not self.participants:
            raise ValueError("an audit message needs at least one ActiveParticipant (PS3.15 §A.5.1)")


def _check_range(name: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise ValueError(f"{name} must be {low}..{high}, not {value}")


def _safe(value: str) -> str:
    """``value`` with every character XML 1.0 cannot represent replaced by U+FFFD."""
    return _NOT_XML_CHAR.sub("\ufffd", value)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _set(element: etree._Element, name: str, value: str | int | None) -> None:
    """Set attribute ``name`` unless ``value`` is None or empty."""
    if value is not None and value != "":
        element.set(name, _safe(str(value)))


def _coded(parent: etree._Element, tag: str, code: Code) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.set("csd-code", _safe(code.code))
    element.set("codeSystemName", _safe(code.system_name))
    element.set("originalText", _safe(code.display_name or code.code))
    return element


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event(root: etree._Element, message: AuditMessage) -> None:
    event = etree.SubElement(root, "EventIdentification")
    event.set("EventActionCode", message.action)
    event.set("EventDateTime", _time(message.time))
    event.set("EventOutcomeIndicator", str(message.outcome))
    _coded(event, "EventID", message.event_id)
    for code in message.type_codes:
        _coded(event, "EventTypeCode", code)
    if message.outcome_description:
        etree.SubElement(event, "EventOutcomeDescription").text = _safe(message.outcome_description)
    for code in message.purpose_of_use:
        _coded(event, "PurposeOfUse", code)


def _participant(root: etree._Element, participant: ActiveParticipant) -> None:
    element = etree.SubElement(root, "ActiveParticipant")
    _set(element, "UserID", participant.user_id)
    _set(element, "AlternativeUserID", participant.alternative_user_id)
    _set(element, "UserName", participant.user_name)
    element.set("UserIsRequestor", "true" if participant.user_is_requestor else "false")
    _set(element, "NetworkAccessPointID", participant.network_access_point_id)
    _set(element, "NetworkAccessPointTypeCode", participant.network_access_point_type_code)
    for code in participant.role_id_codes:
        _coded(element, "RoleIDCode", code)


def _source(root: etree._Element, source: AuditSource) -> None:
    element = etree.SubElement(root, "AuditSourceIdentification")
    _set(element, "AuditEnterpriseSiteID", source.enterprise_site_id)
    _set(element, "AuditSourceID", source.id)
    for code in source.type_codes:
        if isinstance(code, Code):
            _coded(element, "AuditSourceTypeCode", code)
        else:
            etree.SubElement(element, "AuditSourceTypeCode").set("csd-code", code)


def _object(root: etree._Element, obj: ParticipantObject) -> None:
    element = etree.SubElement(root, "ParticipantObjectIdentification")
    _set(element, "ParticipantObjectID", obj.id)
    _set(element, "ParticipantObjectTypeCode", obj.type_code)
    _set(element, "ParticipantObjectTypeCodeRole", obj.type_code_role)
    _set(element, "ParticipantObjectDataLifeCycle", obj.data_life_cycle)
    _set(element, "ParticipantObjectSensitivity", obj.sensitivity)
    _coded(element, "ParticipantObjectIDTypeCode", obj.id_type_code)
    if obj.name:
        etree.SubElement(element, "ParticipantObjectName").text = _safe(obj.name)
    elif obj.query is not None:
        etree.SubElement(element, "ParticipantObjectQuery").text = _b64(obj.query)
    for detail_type, value in obj.details:
        detail = etree.SubElement(element, "ParticipantObjectDetail")
        detail.set("type", _safe(detail_type))
        detail.set("value", _b64(value))


def to_element(message: AuditMessage) -> etree._Element:
    """``message`` as an ``<AuditMessage>`` element (PS3.15 §A.5.1 element order)."""
    root = etree.Element("AuditMessage")
    _event(root, message)
    for participant in message.participants:
        _participant(root, participant)
    _source(root, message.source)
    for obj in message.objects:
        _object(root, obj)
    return root


def render(message: AuditMessage) -> bytes:
    """``message`` as a UTF-8 XML document with an XML declaration."""
    return etree.tostring(to_element(message), xml_declaration=True, encoding="UTF-8")


__all__ = [
    "ACTIONS",
    "NAP_IP_ADDRESS",
    "NAP_MACHINE_NAME",
    "OBJECT_ORGANIZATION",
    "OBJECT_OTHER",
    "OBJECT_PERSON",
    "OBJECT_SYSTEM",
    "OUTCOMES",
    "OUTCOME_MAJOR_FAILURE",
    "OUTCOME_MINOR_FAILURE",
    "OUTCOME_SERIOUS_FAILURE",
    "OUTCOME_SUCCESS",
    "SOURCE_TYPE_APPLICATION_SERVER",
    "ActiveParticipant",
    "AuditMessage",
    "AuditSource",
    "Code",
    "ParticipantObject",
    "render",
    "to_element",
]
