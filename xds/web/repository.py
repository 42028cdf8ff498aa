"""The Document Repository actor at ``/xds/repository``: ITI-41 and ITI-43 wired to their services.

ITI-41 documents arrive staged (MTOM attachments streamed to the document store by the SOAP adapter) or
inline (base64 in ``xdsb:Document``, staged here). Once handed to :func:`xds.repository.iti41.provide_and_register`
the service owns them: it publishes them when the registry accepted, and deletes them otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from xds.audit import transactions as tx
from xds.ebrim import messages, xdsb
from xds.model.messages import (
    DocumentContent,
    ProvideAndRegisterRequest,
    RetrieveResponse,
)
from xds.node import Node
from xds.repository import iti41, iti43
from xds.soap import faults, mtom
from xds.soap.faults import SoapFault
from xds.soap.wsdl import repository_wsdl
from xds.store.documents import FileDocumentStore, StagedFile
from xds.web import audits
from xds.web.soap import MtomReply, Operation, OutPart, SoapActor, SoapRequest, close_parts, file_part, node_actor

READ_AHEAD_DOCUMENT: Final = 2 * 1024 * 1024
"""Documents up to this size are read in the handler's thread, in one go."""
READ_AHEAD_BYTES: Final = 8 * 1024 * 1024
"""At most this much of one answer is held in memory; the rest streams from the files."""


def retrieve_parts(answer: RetrieveResponse, store: FileDocumentStore) -> MtomReply:
    """A retrieve answer (ITI-43, ITI-39) as MTOM: small documents read now, large ones streamed from disk.

    A document whose content has a ``ref`` is a staged file this answer consumes (a gateway's copy of a
    remote community's document): it is unlinked once opened, so nothing is left behind whatever happens.
    Runs in a worker thread.
    """
    cids = [mtom.new_content_id(n) for n in range(1, len(answer.documents) + 1)]
    parts: list[OutPart] = []
    budget = READ_AHEAD_BYTES
    try:
        for cid, d in zip(cids, answer.documents, strict=True):
            content_type = mtom.part_content_type(d.mime_type)
            path = Path(d.content.ref) if d.content.ref else store.path(d.content.sha256)
            part = file_part(cid, content_type, path, read_below=min(budget, READ_AHEAD_DOCUMENT) + 1)
            if d.content.ref:
                path.unlink(missing_ok=True)
            budget -= part.size if isinstance(part.content, bytes) else 0
            parts.append(part)
    except BaseException:
        close_parts(parts)
        store.discard(d.content for d in answer.documents)
        raise
    return MtomReply(xdsb.retrieve_response_root(answer, cids), tuple(parts))


def provide_request(req: SoapRequest, store: FileDocumentStore) -> ProvideAndRegisterRequest:
    """The ITI-41 (or ITI-80) request in ``req``, its documents staged: MTOM parts as streamed, inline base64
    staged here. From here on the caller's service owns every staged document (publishes or deletes it);
    attachments no Document names are deleted now."""
    message = xdsb.provide_and_register_request(req.body)
    submission = messages.submit_objects_request(message.submit)
    documents: list[tuple[str, DocumentContent]] = []
    inline: list[DocumentContent] = []
    try:
        for part in message.documents:
            if part.cid is not None:
                attachment = req.attachments.get(part.cid)
                if attachment is None or not isinstance(attachment.sink, StagedFile):
                    raise SoapFault(
                        f"Document {part.id}: xop:Include cid:{part.cid} names no MIME part of this message",
                        subcode=faults.BAD_MTOM,
                    )
                documents.append((part.id, attachment.sink.content))
            else:
                content = store.stage_bytes([xdsb.inline_bytes(part)])
                inline.append(content)
                documents.append((part.id, content))
    except BaseException:
        store.discard(inline)
        raise
    for attachment in req.attachments.values():
        req.claim(attachment)  # the service publishes or deletes them now
    referenced = {c.ref for _, c in documents}
    store.discard(
        a.sink.content
        for a in req.attachments.values()
        if isinstance(a.sink, StagedFile) and a.sink.content.ref not in referenced
    )
    return ProvideAndRegisterRequest(submission=submission, documents=tuple(documents))


def repository_actor(node: Node) -> SoapActor:
    """The repository's SOAP endpoint."""
    provide_ctx = node.repository_context()
    retrieve_ctx = node.retrieve_context()
    store = node.documents

    def provide(req: SoapRequest) -> bytes:
        request = provide_request(req, store)
        return messages.registry_response(iti41.provide_and_register(request, provide_ctx))

    def retrieve(req: SoapRequest) -> MtomReply:
        return retrieve_parts(iti43.retrieve(xdsb.retrieve_request(req.body), retrieve_ctx, req.requester), store)

    return node_actor(
        node,
        "Document Repository",
        [
            Operation(
                iti41.TRANSACTION,
                provide,
                messages.registry_failure,
                audits.submission(node, tx.provide_and_register),
                audit_in_transaction=True,
            ),
            Operation(
                iti43.TRANSACTION, retrieve, xdsb.retrieve_failure, audits.retrieve(node, tx.retrieve_document_set)
            ),
        ],
        wsdl=repository_wsdl,
        role="repository",
    )


__all__ = ["provide_request", "repository_actor", "retrieve_parts"]
