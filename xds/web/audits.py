"""The audit record of each transaction the node answers, read off the request as received.

Each function returns an :data:`~xds.web.soap.Audit` for one operation: given the request and the status of
the answer, the DICOM audit message of :mod:`xds.audit.transactions`. They read the few values an audit
record names (stored query id, patient id, submission set uniqueId, document ids) straight from the request
element, so a request that failed to decode is audited as well.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from lxml import etree

from xds import vocabulary as v
from xds.audit.message import AuditMessage
from xds.audit.transactions import DocumentRef, outcome_for_status
from xds.namespaces import RIM, XDSB, qn
from xds.node import Node
from xds.registry.sq_params import first_value
from xds.web.soap import Audit, SoapRequest

_PATIENT_SLOTS: Final = (
    "$XDSDocumentEntryPatientId",
    "$XDSSubmissionSetPatientId",
    "$XDSFolderPatientId",
    "$patientId",
)
_ADHOC_QUERY: Final = qn(RIM, "AdhocQuery")
_SLOT: Final = qn(RIM, "Slot")
_VALUE: Final = f"{qn(RIM, 'ValueList')}/{qn(RIM, 'Value')}"
_EXTERNAL_IDENTIFIER: Final = qn(RIM, "ExternalIdentifier")
_DOCUMENT_REQUEST: Final = qn(XDSB, "DocumentRequest")
_NONE: Final = "(none)"
"""The id an audit record names when the request carried none (a malformed request is audited too)."""

QueryBuilder = Callable[..., AuditMessage]


def query(node: Node, builder: QueryBuilder) -> Audit:
    """ITI-18 or ITI-38 (``builder`` = :func:`~xds.audit.transactions.registry_stored_query` or
    :func:`~xds.audit.transactions.cross_gateway_query`)."""

    def audit(req: SoapRequest, status: str) -> AuditMessage:
        adhoc = req.body.find(_ADHOC_QUERY)
        patient = ""
        if adhoc is not None:
            for slot in adhoc.iter(_SLOT):
                if slot.get("name") in _PATIENT_SLOTS:
                    patient = first_value(slot.findtext(_VALUE) or "")
                    break
        return builder(
            node=node.audit_node,
            requester=req.requester,
            time=datetime.now(UTC),
            outcome=outcome_for_status(_status(status)),
            query=etree.tostring(req.body),
            query_id=(adhoc.get("id", "") if adhoc is not None else "") or _NONE,
            patient_id=patient,
            home_community_id=adhoc.get("home", "") if adhoc is not None else "",
            reply_to=req.envelope.reply_to,
        )

    return audit


def retrieve(node: Node, builder: QueryBuilder) -> Audit:
    """ITI-43 or ITI-39 (:func:`~xds.audit.transactions.retrieve_document_set` or ``cross_gateway_retrieve``)."""

    def audit(req: SoapRequest, status: str) -> AuditMessage:
        documents = [
            DocumentRef(
                unique_id=(d.findtext(qn(XDSB, "DocumentUniqueId")) or "").strip() or _NONE,
                repository_id=(d.findtext(qn(XDSB, "RepositoryUniqueId")) or "").strip(),
                home_community_id=(d.findtext(qn(XDSB, "HomeCommunityId")) or "").strip(),
            )
            for d in req.body.iter(_DOCUMENT_REQUEST)
        ]
        return builder(
            node=node.audit_node,
            requester=req.requester,
            time=datetime.now(UTC),
            outcome=outcome_for_status(_status(status)),
            documents=documents,
            reply_to=req.envelope.reply_to,
        )

    return audit


def submission(node: Node, builder: QueryBuilder) -> Audit:
    """ITI-42 or ITI-41 (:func:`~xds.audit.transactions.register_document_set` or ``provide_and_register``)."""

    def audit(req: SoapRequest, status: str) -> AuditMessage:
        unique_id = patient = ""
        for ext in req.body.iter(_EXTERNAL_IDENTIFIER):
            scheme = ext.get("identificationScheme")
            if scheme == v.SS_UNIQUE_ID and not unique_id:
                unique_id = ext.get("value", "")
            elif scheme == v.SS_PATIENT_ID and not patient:
                patient = ext.get("value", "")
        return builder(
            node=node.audit_node,
            requester=req.requester,
            time=datetime.now(UTC),
            outcome=outcome_for_status(_status(status)),
            submission_set_id=unique_id or _NONE,
            patient_id=patient,
            reply_to=req.envelope.reply_to,
        )

    return audit


def _status(short: str) -> str:
    """The transaction log's short status (Success, PartialSuccess, Failure) as a response status URN."""
    return {
        "Success": v.RESPONSE_SUCCESS,
        "PartialSuccess": v.RESPONSE_PARTIAL_SUCCESS,
    }.get(short, v.RESPONSE_FAILURE)


__all__ = ["query", "retrieve", "submission"]
