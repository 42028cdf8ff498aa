"""ITI-41 Provide and Register Document Set-b (ITI TF-2 §3.41), Document Repository side.

Theory of operation: the documents arrive already staged (streamed to disk and hashed by the adapter). Every
DocumentEntry must have exactly one Document and every Document a DocumentEntry (XDSMissingDocument,
XDSMissingDocumentMetadata); a size or hash the source stated must match the bytes (XDSRepositoryMetadataError,
hash compared case-insensitively). The repository then sets repositoryUniqueId, hash and size, makes the
staged bytes durable and forwards the submission as ITI-42 together with the documents it will hold: the
registry commits both or neither. Only after the registry accepted are the documents published
(retrievable); when it rejects, the staged bytes are deleted and its errors are relayed unchanged.

A crash between the registry's commit and the publication is repaired when the node next opens
(:meth:`xds.store.documents.FileDocumentStore.recover`). With a remote registry whose answer was lost
(:class:`~xds.repository.remote.OutcomeUnknown`) the content is published but its record stays pending,
so it is not retrievable until the outcome is known (:mod:`xds.repository.remote`).

References
----------
ITI TF-2 §3.41.4.1.3 (expected actions), ITI TF-3 §4.2.3.2.18 (hash), §4.2.3.2.19 (repositoryUniqueId),
§4.2.3.2.20 (size), ITI TF-3 §4.2.4.1 (error codes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from xds import vocabulary as v
from xds.errors import MissingDocument, MissingDocumentMetadata, RepositoryMetadataError, XDSError, XDSErrors
from xds.model.messages import DocumentContent, ProvideAndRegisterRequest, RegistryResponse, StoredDocument
from xds.model.metadata import DocumentEntry, Submission
from xds.registry.transactions import Transaction
from xds.repository.ports import DocumentFiles, Registry
from xds.repository.remote import OutcomeUnknown

TRANSACTION = Transaction(
    id="ITI-41",
    title="Provide and Register Document Set-b",
    action=v.ACTION_PROVIDE_AND_REGISTER,
    response_action=v.ACTION_PROVIDE_AND_REGISTER_RESPONSE,
    mtom=True,
    is_query=False,
)


@dataclass(frozen=True, slots=True)
class RepositoryContext:
    """What ITI-41 needs besides the request."""

    repository_unique_id: str
    files: DocumentFiles
    registry: Registry


def provide_and_register(req: ProvideAndRegisterRequest, ctx: RepositoryContext) -> RegistryResponse:
    """Store and register, all or nothing; raise :class:`XDSErrors` (or the registry's errors) otherwise."""
    contents = [c for _, c in req.documents]
    try:
        submission, held = prepare(req, ctx.repository_unique_id)
        ctx.files.sync(contents)
        response = ctx.registry.register(submission, held)
    except OutcomeUnknown:
        ctx.files.publish(contents)  # recorded as pending, not retrievable until the registry's answer is known
        raise
    except BaseException:
        ctx.files.discard(contents)
        raise
    ctx.files.publish(contents)
    return response


def prepare(
    req: ProvideAndRegisterRequest, repository: str, *, foreign: bool = False
) -> tuple[Submission, list[StoredDocument]]:
    """Match documents to DocumentEntries and check each one's stated size and hash against its bytes; the
    submission comes back with hash, size and ``repository`` filled in, with the documents to hold.

    ``foreign``: the entries may name another repository (a Document Recipient receiving another node's
    metadata); otherwise a repositoryUniqueId that is not ``repository`` is an error.
    """
    documents = dict(req.documents)
    errors: list[XDSError] = []
    entries: list[DocumentEntry] = []
    held: list[StoredDocument] = []
    for de in req.submission.document_entries:
        content = documents.get(de.id)
        if content is None:
            errors.append(
                MissingDocument(
                    f"DocumentEntry {de.id} (uniqueId {de.unique_id}) has no Document in the request",
                    location=de.id,
                )
            )
            continue
        errors += _check(de, content, "" if foreign else repository)
        entries.append(dataclasses.replace(de, hash=content.sha1, size=content.size, repository_unique_id=repository))
        held.append(
            StoredDocument(
                repository_unique_id=repository,
                unique_id=de.unique_id,
                mime_type=de.mime_type,
                content=content,
                patient_id=str(de.patient_id) if de.patient_id is not None else "",
                category=de.class_code.code if de.class_code is not None else "",
            )
        )
    described = {de.id for de in req.submission.document_entries}
    for doc_id in documents.keys() - described:
        errors.append(
            MissingDocumentMetadata(f"Document {doc_id} has no DocumentEntry in the metadata", location=doc_id)
        )
    if errors:
        raise XDSErrors(errors)
    return dataclasses.replace(req.submission, document_entries=tuple(entries)), held


def _check(de: DocumentEntry, content: DocumentContent, repository: str) -> list[XDSError]:
    errors: list[XDSError] = []
    if de.size is not None and de.size != content.size:
        errors.append(
            RepositoryMetadataError(
                f"DocumentEntry {de.unique_id}: size {de.size} does not match the document ({content.size} bytes)",
                location=de.unique_id,
            )
        )
    if de.hash and de.hash.lower() != content.sha1:
        errors.append(
            RepositoryMetadataError(
                f"DocumentEntry {de.unique_id}: hash {de.hash} does not match the document's SHA-1 {content.sha1}",
                location=de.unique_id,
            )
        )
    if repository and de.repository_unique_id and de.repository_unique_id != repository:
        errors.append(
            RepositoryMetadataError(
                f"DocumentEntry {de.unique_id}: repositoryUniqueId {de.repository_unique_id} is not this"
                f" repository ({repository})",
                location=de.unique_id,
            )
        )
    return errors


__all__ = ["TRANSACTION", "RepositoryContext", "prepare", "provide_and_register"]
