"""ITI-43 Retrieve Document Set (ITI TF-2 §3.43), Document Repository side.

Theory of operation: each DocumentRequest is answered on its own. A request for another repository gets
XDSUnknownRepositoryId (located at that repositoryUniqueId); an unknown document, and a document the caller
may not see, get the same XDSDocumentUniqueIdError with the same text (located at the documentUniqueId), so
an answer never tells whether a hidden document exists. The mimeType comes from the metadata stored with the
document. Status: Success when every document was found, PartialSuccess when some were, Failure when none.

Consent: a document is released only when the gate permits its (patient, data category) to the requester,
one decision per distinct pair; a document whose patient is not recorded is withheld (fail closed).

References
----------
ITI TF-2 §3.43.4.1.3 (expected actions), §3.43.4.2.2 (response), ITI TF-3 §4.2.4.1 (error codes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from xds import vocabulary as v
from xds.consent.gate import Gate
from xds.consent.model import Requester
from xds.errors import DocumentUniqueIdError, RepositoryError, UnknownRepositoryId, XDSError
from xds.model.messages import RetrievedDocument, RetrieveRequest, RetrieveResponse, outcome_status
from xds.registry.transactions import Transaction
from xds.repository.ports import DocumentFiles, DocumentIndex

log = logging.getLogger("xds.repository")

TRANSACTION = Transaction(
    id="ITI-43",
    title="Retrieve Document Set",
    action=v.ACTION_RETRIEVE,
    response_action=v.ACTION_RETRIEVE_RESPONSE,
    mtom=False,
    is_query=False,
    mtom_response=True,
)


ANONYMOUS = Requester()


@dataclass(frozen=True, slots=True)
class RetrieveContext:
    """What ITI-43 needs besides the request."""

    repository_unique_id: str
    index: DocumentIndex
    files: DocumentFiles
    max_documents: int = 1000
    gate: Gate | None = None
    """The consent gate; None only where a test or a trusted internal caller does without one."""


def retrieve(req: RetrieveRequest, ctx: RetrieveContext, requester: Requester = ANONYMOUS) -> RetrieveResponse:
    """Answer every DocumentRequest for ``requester``: the documents found, an error for each one that is not."""
    if len(req.documents) > ctx.max_documents:
        raise RepositoryError(
            f"{len(req.documents)} DocumentRequests; this repository answers at most {ctx.max_documents} per call"
        )
    ours = [d.document_unique_id for d in req.documents if d.repository_unique_id == ctx.repository_unique_id]
    held = ctx.index.documents(ctx.repository_unique_id, ours) if ours else {}
    if ctx.gate is not None:
        allowed = ctx.gate.permitted(((d.patient_id, d.category) for d in held.values() if d.patient_id), requester)
        held = {uid: d for uid, d in held.items() if d.patient_id and (d.patient_id, d.category) in allowed}
    found: list[RetrievedDocument] = []
    errors: list[XDSError] = []
    for d in req.documents:
        if d.repository_unique_id != ctx.repository_unique_id:
            errors.append(
                UnknownRepositoryId(
                    f"repositoryUniqueId {d.repository_unique_id} is not this repository",
                    location=d.repository_unique_id,
                )
            )
            continue
        doc = held.get(d.document_unique_id)
        if doc is None:
            errors.append(
                DocumentUniqueIdError(
                    f"document {d.document_unique_id} is not available from this repository",
                    location=d.document_unique_id,
                )
            )
            continue
        if not ctx.files.exists(doc.content.sha256):
            log.error("document %s is recorded but its content %s is missing", doc.unique_id, doc.content.sha256)
            errors.append(
                RepositoryError(
                    f"document {d.document_unique_id} cannot be read right now; try again",
                    location=d.document_unique_id,
                )
            )
            continue
        found.append(
            RetrievedDocument(
                repository_unique_id=doc.repository_unique_id,
                document_unique_id=doc.unique_id,
                mime_type=doc.mime_type,
                content=doc.content,
                home_community_id=d.home_community_id,
            )
        )
    status = outcome_status(succeeded=bool(found), failed=bool(errors))
    return RetrieveResponse(status=status, errors=tuple(e.as_item() for e in errors), documents=tuple(found))


__all__ = ["TRANSACTION", "RetrieveContext", "retrieve"]
