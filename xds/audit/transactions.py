"""Audit records of the node's transactions (ITI TF-2 "Audit Record Considerations"), one builder each.

Each builder returns the :class:`~xds.audit.message.AuditMessage` that the actor this node plays must write:

=================================  =======  ======================  ======  =====================================
builder                            trans.   actor (this node)       action  EventID
=================================  =======  ======================  ======  =====================================
:func:`registry_stored_query`      ITI-18   Document Registry       E       110112 Query
:func:`register_document_set`      ITI-42   Document Registry       C       110107 Import
:func:`provide_and_register`       ITI-41   Document Repository     C       110107 Import
:func:`retrieve_document_set`      ITI-43   Document Repository     R       110106 Export
:func:`cross_gateway_query`        ITI-38   Responding Gateway      E       110112 Query
:func:`cross_gateway_retrieve`     ITI-39   Responding Gateway      R       110106 Export
:func:`consent_decision`           (none)   consent gate            R       110110 Patient Record
=================================  =======  ======================  ======  =====================================

Theory of operation: data flows from the Source (RoleIDCode 110153) to the Destination (110152). For a query or
an import the requester is the Source and this node the Destination; for a retrieve (Export) this node is the
Source and the requester the Destination. The requesting system's UserID is the content of its
``wsa:ReplyTo`` (the anonymous URI when absent) and its network access point is the peer address; this node's
UserID is its SOAP endpoint. The person behind the request (XUA), when known, is a third participant, the
"Human Requestor", with the XUA role as RoleIDCode; the XUA purposeOfUse goes into ``PurposeOfUse``.
Builders never read the clock or the environment: the time and the node's identity are arguments.

Consent decisions have no IHE-defined audit record. Each decision of the consent gate (ARCHITECTURE.md §7) is
recorded as an attempted read of the patient record: EventID EV(110110, DCM, "Patient Record"), action R,
EventTypeCode EV("consent-decision", "urn:xds-node:audit", "Consent decision"), outcome 0 when permitted and
4 (minor failure) when denied. The Patient participant object carries the decision as ParticipantObjectDetail
``decision`` (permit/deny), ``policy``, ``reason``, ``emergency`` ("true" when the emergency rule,
break-the-glass, opened the access, else "false") and ``category`` (the data category asked about, when any).
The requester is the only requesting participant (no data flowed yet, so no Source/Destination roles); this
node takes part as EV(110150, DCM, "Application").

References
----------
ITI TF-2 §3.18, §3.41, §3.42, §3.43, §3.38 (each transaction's "Security Considerations / Audit Record
Considerations"; ITI-38 Responding Gateway "as if it were a Document Registry"), §3.39.6 (ITI-39 Responding
Gateway "as if it were a Document Repository"), §3.20.7 (ATNA record format), §3.40.4.2 (XUA Human Requestor
and PurposeOfUse); DICOM PS3.15 §A.5 (audit message); DICOM PS3.16 CID 400-402 (event and role codes).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit

from xds import vocabulary as v
from xds.audit.message import (
    NAP_IP_ADDRESS,
    NAP_MACHINE_NAME,
    OBJECT_PERSON,
    OBJECT_SYSTEM,
    OUTCOME_MINOR_FAILURE,
    OUTCOME_SERIOUS_FAILURE,
    OUTCOME_SUCCESS,
    ActiveParticipant,
    AuditMessage,
    AuditSource,
    Code,
    ParticipantObject,
)
from xds.consent.model import AccessRequest, Decision, Requester
from xds.soap.envelope import ANONYMOUS

# --- DICOM PS3.16 CID 400 (Audit Event ID) and CID 402 (Audit Active Participant Role ID) ---------------------
EVENT_EXPORT: Final = Code("110106", "DCM", "Export")
EVENT_IMPORT: Final = Code("110107", "DCM", "Import")
EVENT_PATIENT_RECORD: Final = Code("110110", "DCM", "Patient Record")
EVENT_QUERY: Final = Code("110112", "DCM", "Query")
ROLE_APPLICATION: Final = Code("110150", "DCM", "Application")
ROLE_DESTINATION: Final = Code("110152", "DCM", "Destination Role ID")
ROLE_SOURCE: Final = Code("110153", "DCM", "Source Role ID")

# --- EventTypeCode of each transaction (ITI TF-2, the transaction's audit table) --------------------------------
ITI_18: Final = Code("ITI-18", "IHE Transactions", "Registry Stored Query")
ITI_38: Final = Code("ITI-38", "IHE Transactions", "Cross Gateway Query")
ITI_39: Final = Code("ITI-39", "IHE Transactions", "Cross Gateway Retrieve")
ITI_41: Final = Code("ITI-41", "IHE Transactions", "Provide and Register Document Set-b")
ITI_42: Final = Code("ITI-42", "IHE Transactions", "Register Document Set-b")
ITI_43: Final = Code("ITI-43", "IHE Transactions", "Retrieve Document Set")
CONSENT_DECISION: Final = Code("consent-decision", "urn:xds-node:audit", "Consent decision")
ITI_32: Final = Code("ITI-32", "IHE Transactions", "Distribute Document Set on Media")
RAD_69: Final = Code("RAD-69", "IHE Transactions", "Retrieve Imaging Document Set")
RAD_75: Final = Code("RAD-75", "IHE Transactions", "Cross Gateway Retrieve Imaging Document Set")
ITI_80: Final = Code("ITI-80", "IHE Transactions", "Cross-Gateway Document Provide")
INBOX_ACCEPT: Final = Code("inbox-accept", "urn:xds-node:audit", "Delivery imported from a mailbox")
INBOX_REJECT: Final = Code("inbox-reject", "urn:xds-node:audit", "Delivery rejected")
NOTIFICATION: Final = Code("notification", "urn:xds-node:audit", "Delivery notification mailed")
DICOM_IMPORT: Final = Code("dicom-import", "urn:xds-node:audit", "Received DICOM study waits for its patient")
PUSH: Final = Code("push", "urn:xds-node:audit", "Push sent")
EVENT_USER_AUTHENTICATION: Final = Code("110114", "DCM", "User Authentication")
LOGIN: Final = Code("110122", "DCM", "Login")
"""This node's own EventTypeCode for consent decisions (no IHE code exists)."""

# --- ParticipantObjectIDTypeCode ------------------------------------------------------------------------------
PATIENT_NUMBER: Final = Code("2", "RFC-3881", "Patient Number")
REPORT_NUMBER: Final = Code("9", "RFC-3881", "Report Number")
SUBMISSION_SET: Final = Code(v.SS_NODE, "IHE XDS Metadata", "submission set classificationNode")

# --- ParticipantObjectTypeCodeRole (PS3.15 §A.5.1.2.2) ---------------------------------------------------------
ROLE_PATIENT: Final = 1
ROLE_REPORT: Final = 3
ROLE_JOB: Final = 20
ROLE_QUERY: Final = 24

# --- ParticipantObjectDetail types ------------------------------------------------------------------------------
DETAIL_QUERY_ENCODING: Final = "QueryEncoding"
DETAIL_QUERY_HOME_COMMUNITY: Final = "urn:ihe:iti:xca:2010:homeCommunityId"
"""homeCommunityId detail of a query object (ITI-18, ITI-38)."""
DETAIL_REPOSITORY: Final = "Repository Unique Id"
DETAIL_DOCUMENT_HOME_COMMUNITY: Final = "ihe:homeCommunityID"
"""homeCommunityId detail of a document object (ITI-43, ITI-39)."""

PURPOSE_OF_USE_SYSTEM: Final = "2.16.840.1.113883.3.18.7.1"
"""NHIN PurposeOfUse code system, as carried by XUA."""
ROLE_SYSTEM_UNKNOWN: Final = "urn:oasis:names:tc:xacml:2.0:subject:role"
"""codeSystemName of an XUA role given without a code system: the XUA attribute it came from."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditNode:
    """This node as it appears in its own audit records."""

    source_id: str
    """AuditSourceID: the identity of the process issuing the record."""
    enterprise_site_id: str
    """AuditEnterpriseSiteID: the site (organisation) within the enterprise."""
    host: str
    """The node's machine name or IP address (its NetworkAccessPointID)."""
    endpoint: str
    """The SOAP endpoint URI of the actor audited: the node's UserID."""
    process_id: str = ""
    """AlternativeUserID: the process id in the local system logs, when wanted."""


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """One document of a retrieve: its uniqueId, repositoryUniqueId and homeCommunityId."""

    unique_id: str
    repository_id: str
    home_community_id: str = ""


def outcome_for_status(status: str) -> int:
    """EventOutcomeIndicator of an XDS response status: Success 0, PartialSuccess 4, anything else 8."""
    return {v.RESPONSE_SUCCESS: OUTCOME_SUCCESS, v.RESPONSE_PARTIAL_SUCCESS: OUTCOME_MINOR_FAILURE}.get(
        status, OUTCOME_SERIOUS_FAILURE
    )


def _access_point(address: str) -> tuple[int | None, str]:
    """(NetworkAccessPointTypeCode, NetworkAccessPointID) of a host name or IP address."""
    if not address:
        return None, ""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return NAP_MACHINE_NAME, address
    return NAP_IP_ADDRESS, address


def _code(value: str, default_system: str) -> Code:
    """A :class:`Code` from ``code^^system`` (HL7 CE-style, as stored) or a bare code."""
    code, _, system = value.partition("^^")
    return Code(code, system or default_system)


def _system(user_id: str, host: str, role: Code, *, requestor: bool, alternative: str = "") -> ActiveParticipant:
    """A system taking part: its UserID, its host or address as the network access point, its role."""
    nap_type, nap_id = _access_point(host)
    return ActiveParticipant(
        user_id=user_id,
        alternative_user_id=alternative,
        user_is_requestor=requestor,
        role_id_codes=(role,),
        network_access_point_type_code=nap_type,
        network_access_point_id=nap_id,
    )


def _requesting_system(requester: Requester, reply_to: str, role: Code) -> ActiveParticipant:
    """The requesting system: UserID is its ``wsa:ReplyTo``, its address the network access point."""
    return _system(reply_to or ANONYMOUS, requester.address, role, requestor=True)


def _this_node(node: AuditNode, role: Code) -> ActiveParticipant:
    """This node answering: UserID is its endpoint, AlternativeUserID its process id."""
    return _system(node.endpoint, node.host, role, requestor=False, alternative=node.process_id)


def _to_this_node(requester: Requester, reply_to: str, node: AuditNode) -> tuple[ActiveParticipant, ...]:
    """Participants of a request sent to this node: the requesting system (source), its user, this node."""
    return (
        _requesting_system(requester, reply_to, ROLE_SOURCE),
        *_human_requestor(requester),
        _this_node(node, ROLE_DESTINATION),
    )


def _human_requestor(requester: Requester) -> tuple[ActiveParticipant, ...]:
    """The Human Requestor (XUA Subject), none when the request named no user."""
    if not requester.user_id:
        return ()
    roles = (_code(requester.role, ROLE_SYSTEM_UNKNOWN),) if requester.role else ()
    return (
        ActiveParticipant(
            user_id=requester.user_id, user_name=requester.user_name, user_is_requestor=True, role_id_codes=roles
        ),
    )


def _purpose(requester: Requester) -> tuple[Code, ...]:
    purpose = requester.purpose_of_use
    return (Code(purpose, PURPOSE_OF_USE_SYSTEM, purpose),) if purpose else ()


def _source(node: AuditNode) -> AuditSource:
    return AuditSource(node.source_id, node.enterprise_site_id)


def _patients(patient_ids: Sequence[str]) -> tuple[ParticipantObject, ...]:
    return tuple(
        ParticipantObject(id=pid, id_type_code=PATIENT_NUMBER, type_code=OBJECT_PERSON, type_code_role=ROLE_PATIENT)
        for pid in patient_ids
        if pid
    )


def _query_object(type_code: Code, query_id: str, query: bytes, encoding: str, home: str) -> ParticipantObject:
    details = [(DETAIL_QUERY_ENCODING, encoding.encode())]
    if home:
        details.append((DETAIL_QUERY_HOME_COMMUNITY, home.encode()))
    return ParticipantObject(
        id=query_id,
        id_type_code=type_code,
        type_code=OBJECT_SYSTEM,
        type_code_role=ROLE_QUERY,
        query=query,
        details=tuple(details),
    )


def _document_object(document: DocumentRef) -> ParticipantObject:
    details = [(DETAIL_REPOSITORY, document.repository_id.encode())]
    if document.home_community_id:
        details.append((DETAIL_DOCUMENT_HOME_COMMUNITY, document.home_community_id.encode()))
    return ParticipantObject(
        id=document.unique_id,
        id_type_code=REPORT_NUMBER,
        type_code=OBJECT_SYSTEM,
        type_code_role=ROLE_REPORT,
        details=tuple(details),
    )


def _submission_set_object(unique_id: str) -> ParticipantObject:
    return ParticipantObject(
        id=unique_id, id_type_code=SUBMISSION_SET, type_code=OBJECT_SYSTEM, type_code_role=ROLE_JOB
    )


def _query(
    type_code: Code,
    node: AuditNode,
    requester: Requester,
    time: datetime,
    outcome: int,
    query: bytes,
    query_id: str,
    patient_id: str,
    home_community_id: str,
    reply_to: str,
    query_encoding: str,
) -> AuditMessage:
    """A query as recorded by its responder (ITI-18 registry, ITI-38 responding gateway)."""
    return AuditMessage(
        event_id=EVENT_QUERY,
        action="E",
        outcome=outcome,
        time=time,
        type_codes=(type_code,),
        purpose_of_use=_purpose(requester),
        participants=_to_this_node(requester, reply_to, node),
        source=_source(node),
        objects=(
            *_patients((patient_id,)),
            _query_object(type_code, query_id, query, query_encoding, home_community_id),
        ),
    )


def registry_stored_query(
    *,
    node: AuditNode,
    requester: Requester,
    time: datetime,
    outcome: int,
    query: bytes,
    query_id: str,
    patient_id: str = "",
    home_community_id: str = "",
    reply_to: str = ANONYMOUS,
    query_encoding: str = "UTF-8",
) -> AuditMessage:
    """ITI-18 Registry Stored Query, as the Document Registry records it (ITI TF-2 §3.18, Audit Record Considerations).

    ``query`` is the ``AdhocQueryRequest`` exactly as received; ``query_id`` its stored query id;
    ``patient_id`` the CX patient id the query names, "" for a query by object id.
    """
    return _query(
        ITI_18, node, requester, time, outcome, query, query_id, patient_id, home_community_id, reply_to, query_encoding
    )


def cross_gateway_query(
    *,
    node: AuditNode,
    requester: Requester,
    time: datetime,
    outcome: int,
    query: bytes,
    query_id: str,
    patient_id: str = "",
    home_community_id: str = "",
    reply_to: str = ANONYMOUS,
    query_encoding: str = "UTF-8",
) -> AuditMessage:
    """ITI-38 Cross Gateway Query, as the Responding Gateway records it (ITI TF-2 §3.38, Security
    Considerations): the ITI-18 record with the ITI-38 EventTypeCode and query ParticipantObjectIDTypeCode."""
    return _query(
        ITI_38, node, requester, time, outcome, query, query_id, patient_id, home_community_id, reply_to, query_encoding
    )


def _import(
    type_code: Code,
    node: AuditNode,
    requester: Requester,
    time: datetime,
    outcome: int,
    submission_set_id: str,
    patient_id: str,
    reply_to: str,
) -> AuditMessage:
    """A submission as recorded by its receiver (ITI-42 registry, ITI-41 repository)."""
    return AuditMessage(
        event_id=EVENT_IMPORT,
        action="C",
        outcome=outcome,
        time=time,
        type_codes=(type_code,),
        purpose_of_use=_purpose(requester),
        participants=_to_this_node(requester, reply_to, node),
        source=_source(node),
        objects=(*_patients((patient_id,)), _submission_set_object(submission_set_id)),
    )


def register_document_set(
    *,
    node: AuditNode,
    requester: Requester,
    time: datetime,
    outcome: int,
    submission_set_id: str,
    patient_id: str,
    reply_to: str = ANONYMOUS,
) -> AuditMessage:
    """ITI-42 Register Document Set-b, as the Document Registry records it (ITI TF-2 §3.42, Audit Record
    Considerations).

    ``submission_set_id`` is the SubmissionSet's uniqueId, ``patient_id`` its CX patient id.
    """
    return _import(ITI_42, node, requester, time, outcome, submission_set_id, patient_id, reply_to)


def provide_and_register(
    *,
    node: AuditNode,
    requester: Requester,
    time: datetime,
    outcome: int,
    submission_set_id: str,
    patient_id: str,
    reply_to: str = ANONYMOUS,
) -> AuditMessage:
    """ITI-41 Provide and Register Document Set-b, as the Document Repository records it (ITI TF-2 §3.41,
    Audit Record Considerations)."""
    return _import(ITI_41, node, requester, time, outcome, submission_set_id, patient_id, reply_to)


def cross_gateway_document_provide(
    *,
    node: AuditNode,
    requester: Requester,
    time: datetime,
    outcome: int,
    submission_set_id: str,
    patient_id: str,
    reply_to: str = ANONYMOUS,
) -> AuditMessage:
    """ITI-80 Cross-Gateway Document Provide, as the Responding Gateway records it (ITI TF-2 §3.80.5): an
    import, like ITI-41's."""
    return _import(ITI_80, node, requester, time, outcome, submission_set_id, patient_id, reply_to)


def _export(
    type_code: Code,
    node: AuditNode,
    requester: Requester,
    time: datetime,
    outcome: int,
    documents: Sequence[DocumentRef],
    patient_ids: Sequence[str],
    reply_to: str,
) -> AuditMessage:
    """A retrieve as recorded by the side that sends the documents (ITI-43 repository, ITI-39 responder)."""
    return AuditMessage(
        event_id=EVENT_EXPORT,
        action="R",
        outcome=outcome,
        time=time,
        type_codes=(type_code,),
        purpose_of_use=_purpose(requester),
        participants=(
            _this_node(node, ROLE_SOURCE),
            _requesting_system(requester, reply_to, ROLE_DESTINATION),
            *_human_requestor(requester),
        ),
        source=_source(node),
        objects=(*_patients(patient_ids), *(_document_object(d) for d in documents)),
    )


def retrieve_document_set(
    *,
    node: AuditNode,
    requester: Requester,
    time: datetime,
    outcome: int,
    documents: Sequence[DocumentRef],
    patient_ids: Sequence[str] = (),
    reply_to: str = ANONYMOUS,
) -> AuditMessage:
    """ITI-43 Retrieve Document Set, as the Document Repository records it (ITI TF-2 §3.43.6).

    The repository is the Source of the data and the Document Consumer its Destination. ``patient_ids``
    are the patients of the documents, when known.
    """
    return _export(ITI_43, node, requester, time, outcome, documents, patient_ids, reply_to)


def retrieve_imaging_document_set(
    *,
    node: AuditNode,
    requester: Requester,
    time: datetime,
    outcome: int,
    documents: Sequence[DocumentRef],
    patient_ids: Sequence[str] = (),
    reply_to: str = ANONYMOUS,
) -> AuditMessage:
    """RAD-69 Retrieve Imaging Document Set, as the Imaging Document Source records it (RAD TF-3 §4.69.4.1.4):
    an export, like ITI-43, the documents being DICOM instances."""
    return _export(RAD_69, node, requester, time, outcome, documents, patient_ids, reply_to)


def cross_gateway_retrieve_imaging_document_set(
    *,
    node: AuditNode,
    requester: Requester,
    time: datetime,
    outcome: int,
    documents: Sequence[DocumentRef],
    patient_ids: Sequence[str] = (),
    reply_to: str = ANONYMOUS,
) -> AuditMessage:
    """RAD-75 Cross Gateway Retrieve Imaging Document Set, as the Responding Gateway records it."""
    return _export(RAD_75, node, requester, time, outcome, documents, patient_ids, reply_to)


def cross_gateway_retrieve(
    *,
    node: AuditNode,
    requester: Requester,
    time: datetime,
    outcome: int,
    documents: Sequence[DocumentRef],
    patient_ids: Sequence[str] = (),
    reply_to: str = ANONYMOUS,
) -> AuditMessage:
    """ITI-39 Cross Gateway Retrieve, as the Responding Gateway records it (ITI TF-2 §3.39.6): "as if it
    were a Document Repository" with the ITI-39 EventTypeCode."""
    return _export(ITI_39, node, requester, time, outcome, documents, patient_ids, reply_to)


def push_event(
    *,
    node: AuditNode,
    type_code: Code,
    time: datetime,
    outcome: int,
    export: bool,
    peer: str = "",
    patient_ids: Sequence[str] = (),
    submission_set_id: str = "",
    documents: Sequence[DocumentRef] = (),
    description: str = "",
) -> AuditMessage:
    """A step of a push, as this node records it: ``export`` (data leaves: a push sent, a package written, a
    notification mailed) or import (a delivery received, imported, rejected). ``type_code`` names the step
    (:data:`ITI_41`, :data:`ITI_80`, :data:`ITI_32`, :data:`INBOX_ACCEPT`, ...); ``peer`` is the other side
    (an endpoint, an e-mail address, a file), ``description`` the outcome in words (never patient data)."""
    here = _this_node(node, ROLE_SOURCE if export else ROLE_DESTINATION)
    participants = [here]
    if peer:
        participants.append(_system(peer, "", ROLE_DESTINATION if export else ROLE_SOURCE, requestor=not export))
    objects = [*_patients(patient_ids)]
    if submission_set_id:
        objects.append(_submission_set_object(submission_set_id))
    objects += [_document_object(d) for d in documents]
    return AuditMessage(
        event_id=EVENT_EXPORT if export else EVENT_IMPORT,
        action="R" if export else "C",
        outcome=outcome,
        time=time,
        type_codes=(type_code,),
        participants=tuple(participants),
        source=_source(node),
        objects=tuple(objects),
        outcome_description=description,
    )


def _decision_details(request: AccessRequest, decision: Decision) -> tuple[tuple[str, bytes], ...]:
    details = [
        ("decision", b"permit" if decision.permit else b"deny"),
        ("policy", decision.policy.encode()),
        ("reason", decision.reason.encode()),
        ("emergency", b"true" if decision.emergency else b"false"),
    ]
    if request.category:
        details.append(("category", request.category.encode()))
    return tuple(details)


def _requesting_party(requester: Requester) -> ActiveParticipant:
    """The requester as a whole: user, else organisation, else community, else its address."""
    nap_type, nap_id = _access_point(requester.address)
    user_id = requester.user_id or requester.organisation_id or requester.community_id or nap_id or ANONYMOUS
    roles = (_code(requester.role, ROLE_SYSTEM_UNKNOWN),) if requester.role and requester.user_id else ()
    return ActiveParticipant(
        user_id=user_id,
        alternative_user_id=requester.organisation_id if requester.user_id else "",
        user_name=requester.user_name or requester.organisation_name,
        user_is_requestor=True,
        role_id_codes=roles,
        network_access_point_type_code=nap_type,
        network_access_point_id=nap_id,
    )


def consent_decision(*, node: AuditNode, request: AccessRequest, decision: Decision) -> AuditMessage:
    """One consent gate decision (no IHE transaction: see the module docstring). The time is ``request.at``."""
    patient = ParticipantObject(
        id=request.patient_id,
        id_type_code=PATIENT_NUMBER,
        type_code=OBJECT_PERSON,
        type_code_role=ROLE_PATIENT,
        details=_decision_details(request, decision),
    )
    return AuditMessage(
        event_id=EVENT_PATIENT_RECORD,
        action="R",
        outcome=OUTCOME_SUCCESS if decision.permit else OUTCOME_MINOR_FAILURE,
        time=request.at,
        type_codes=(CONSENT_DECISION,),
        purpose_of_use=_purpose(request.requester),
        participants=(_requesting_party(request.requester), _this_node(node, ROLE_APPLICATION)),
        source=_source(node),
        objects=(patient,),
    )


def _peer(endpoint: str, role: Code, *, requestor: bool) -> ActiveParticipant:
    """Another node, named by its SOAP endpoint URL (its host is the network access point)."""
    return _system(endpoint, urlsplit(endpoint).hostname or "", role, requestor=requestor)


def _this_node_asking(node: AuditNode, role: Code) -> ActiveParticipant:
    """This node as the requesting system of an outbound call (its UserID is the anonymous ReplyTo)."""
    return _system(ANONYMOUS, node.host, role, requestor=True, alternative=node.process_id)


def outbound_query(
    *,
    node: AuditNode,
    requester: Requester,
    time: datetime,
    outcome: int,
    query: bytes,
    query_id: str,
    patient_id: str,
    home_community_id: str,
    destination: str,
) -> AuditMessage:
    """ITI-38 as the Initiating Gateway records it (ITI TF-2 §3.38.6): this node the Source and requestor, the
    consumer's user as Human Requestor, the Responding Gateway at ``destination`` the Destination."""
    return AuditMessage(
        event_id=EVENT_QUERY,
        action="E",
        outcome=outcome,
        time=time,
        type_codes=(ITI_38,),
        purpose_of_use=_purpose(requester),
        participants=(
            _this_node_asking(node, ROLE_SOURCE),
            *_human_requestor(requester),
            _peer(destination, ROLE_DESTINATION, requestor=False),
        ),
        source=_source(node),
        objects=(
            *_patients((patient_id,)),
            _query_object(ITI_38, query_id, query, "UTF-8", home_community_id),
        ),
    )


def outbound_retrieve(
    *,
    node: AuditNode,
    requester: Requester,
    time: datetime,
    outcome: int,
    documents: Sequence[DocumentRef],
    source: str,
    transaction: Code = ITI_39,
) -> AuditMessage:
    """ITI-39 as the Initiating Gateway records it (ITI TF-2 §3.39.6): Import; the Responding Gateway at
    ``source`` the Source, this node the Destination and requestor, the consumer's user as Human Requestor.

    ``transaction`` is :data:`RAD_75` for a Cross Gateway Retrieve Imaging Document Set (XCA-I), recorded
    the same way with its own EventTypeCode (RAD TF-3 §4.75.4.1.4)."""
    return AuditMessage(
        event_id=EVENT_IMPORT,
        action="C",
        outcome=outcome,
        time=time,
        type_codes=(transaction,),
        purpose_of_use=_purpose(requester),
        participants=(
            _peer(source, ROLE_SOURCE, requestor=False),
            _this_node_asking(node, ROLE_DESTINATION),
            *_human_requestor(requester),
        ),
        source=_source(node),
        objects=tuple(_document_object(d) for d in documents),
    )


def authentication_failure(
    *, node: AuditNode, address: str, time: datetime, reason: str, transaction: Code | None = None
) -> AuditMessage:
    """An XUA assertion (ITI-40) this node refused: DICOM User Authentication, Login, serious failure.

    ``reason`` is the short reason also sent in the SOAP fault; ``transaction`` the IHE transaction asked for.
    """
    nap_type, nap_id = _access_point(address)
    peer = ActiveParticipant(
        user_id=nap_id or ANONYMOUS,
        user_is_requestor=True,
        network_access_point_type_code=nap_type,
        network_access_point_id=nap_id,
    )
    return AuditMessage(
        event_id=EVENT_USER_AUTHENTICATION,
        action="E",
        outcome=OUTCOME_SERIOUS_FAILURE,
        outcome_description=reason[:256],
        time=time,
        type_codes=(LOGIN, *((transaction,) if transaction is not None else ())),
        participants=(peer, _this_node(node, ROLE_APPLICATION)),
        source=_source(node),
    )


__all__ = [
    "CONSENT_DECISION",
    "EVENT_EXPORT",
    "EVENT_IMPORT",
    "EVENT_PATIENT_RECORD",
    "EVENT_QUERY",
    "EVENT_USER_AUTHENTICATION",
    "ITI_18",
    "ITI_38",
    "ITI_39",
    "ITI_41",
    "ITI_42",
    "ITI_43",
    "LOGIN",
    "PATIENT_NUMBER",
    "RAD_69",
    "RAD_75",
    "REPORT_NUMBER",
    "ROLE_DESTINATION",
    "ROLE_SOURCE",
    "SUBMISSION_SET",
    "AuditNode",
    "DocumentRef",
    "authentication_failure",
    "consent_decision",
    "cross_gateway_query",
    "cross_gateway_retrieve",
    "outbound_query",
    "outbound_retrieve",
    "outcome_for_status",
    "provide_and_register",
    "register_document_set",
    "registry_stored_query",
    "retrieve_document_set",
]
