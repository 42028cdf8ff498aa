"""ITI-41 Provide and Register Document Set-b, Document Recipient side (XDR, ITI TF-2 §3.41 and ITI TF-1 §15).

Theory of operation: a push is checked like a repository's submission, but for a recipient: limited metadata
(``urn:ihe:iti:2010:limitedMetadata``) is accepted, the source need not know our repository, and the patient
need not be known here. The documents must match the DocumentEntries, with any stated size and hash
(XDSMissingDocument, XDSMissingDocumentMetadata, XDSRepositoryMetadataError); the SubmissionSet's
``intendedRecipient`` values must be ``XON|XCN|XTN`` (XDSRegistryMetadataError) and route the push to one or
more mailboxes (:mod:`xds.recipient.addressing`). The patient is matched (:mod:`xds.recipient.patients`): a
delivery for no known patient goes to the unknown-patient queue instead of being attached to anyone.

All or nothing: the documents are made durable, then every mailbox's delivery is stored in one transaction,
and only then are the documents published and the push acknowledged; a refused push keeps no bytes. A re-send
(the same SubmissionSet uniqueId to the same mailbox with the same documents) is acknowledged without a second
delivery, so it is neither listed nor notified twice; the same uniqueId with other documents is
XDSDuplicateUniqueIdInRegistry. A mailbox with ``auto_import`` imports a delivery for a known patient at once;
when that import fails, the delivery stays in the mailbox with the reason in its history.

ITI-80 Cross-Gateway Document Provide (:mod:`xca.responding`) delivers through the same function.

References
----------
ITI TF-2 §3.41.4.1.3 (Document Recipient expected actions), ITI TF-3 §4.2.3.3.7 (intendedRecipient), Table
4.3.1-3 (Metadata-Limited optionality), §4.1.14 (extra slots, the urgent marker), ITI TF-2 §3.80.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from xds.ebrim.messages import render_submit_objects_request
from xds.errors import DuplicateUniqueIdInRegistry, MetadataError, XDSError, XDSErrors
from xds.model.messages import DocumentContent, ProvideAndRegisterRequest
from xds.model.metadata import Submission, SubmissionSet
from xds.model.rim import InternationalString
from xds.recipient.addressing import IntendedRecipient, Mailbox, NoMailbox, route
from xds.recipient.model import (
    NEW,
    UNKNOWN_PATIENT,
    URGENT_SLOT,
    AlreadyDelivered,
    DeliveredDocument,
    Delivery,
    NewDelivery,
)
from xds.recipient.patients import match_patient
from xds.recipient.ports import Inbox, PatientDirectory
from xds.registry.patients import PatientPolicy
from xds.repository import iti41 as repository_iti41
from xds.repository.iti41 import prepare
from xds.repository.ports import DocumentFiles
from xds.validation import Rules, validate_submission

log = logging.getLogger("xds.recipient")

TRANSACTION: Final = dataclasses.replace(
    repository_iti41.TRANSACTION, title="Provide and Register Document Set-b (XDR)"
)
"""ITI-41 as the Document Recipient answers it: the repository's message, action and MTOM."""

RULES = Rules(allow_limited_metadata=True, require_repository_fields=False)
"""A recipient's metadata rules: full or limited metadata; hash, size and repositoryUniqueId are its to fill."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecipientContext:
    """What a Document Recipient needs besides the request."""

    mailboxes: tuple[Mailbox, ...]
    inbox: Inbox
    files: DocumentFiles
    patients: PatientDirectory
    policy: PatientPolicy = PatientPolicy.REGISTERED
    auto_import: Callable[[str], object] | None = None
    """Imports a delivery by reference (``xds inbox accept``); called for ``auto_import`` mailboxes."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a push left: the deliveries stored, and the mailboxes that had it already (a re-send)."""

    deliveries: tuple[Delivery, ...]
    resent: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """A checked push, not stored yet: the deliveries to store (with their quiet periods), the earlier
    deliveries it re-sends, and its staged documents."""

    news: tuple[tuple[NewDelivery, float | None], ...]
    resent: tuple[tuple[str, str], ...]
    """(reference, history note) of each mailbox that had this push already."""
    contents: tuple[DocumentContent, ...]


def receive(
    req: ProvideAndRegisterRequest,
    ctx: RecipientContext,
    *,
    transport: str,
    sender: str,
    mailbox: Mailbox | None = None,
    strict: bool = True,
) -> Receipt:
    """Check a push and store it in its mailboxes (``mailbox``: in that one, whatever it is addressed to), all
    or nothing; raise :class:`XDSErrors` otherwise.

    ``strict=False`` (media import, XDM): metadata rule violations do not refuse the delivery; they are kept in
    its history, and the import into the registry (which checks everything) decides. Documents must still match
    their entries, with matching size and hash.
    """
    for attempt in (1, 2):
        try:
            planned = plan(req, ctx, transport=transport, sender=sender, mailbox=mailbox, strict=strict)
        except BaseException:
            ctx.files.discard(c for _, c in req.documents)
            raise
        try:
            return store(ctx, [planned], extra=(mailbox,) if mailbox else (), keep_on_race=attempt == 1)
        except AlreadyDelivered:  # a concurrent identical push won: plan again, it is a re-send now
            continue
    raise AssertionError("unreachable: the second attempt stores or raises")


def store(
    ctx: RecipientContext, plans: Sequence[Plan], *, extra: Sequence[Mailbox] = (), keep_on_race: bool = False
) -> Receipt:
    """Store checked pushes (several: one XDM package's subsets) in one transaction, all or none: the documents
    are made durable first and published only after the commit; once committed nothing is deleted. Then the
    deliveries of ``auto_import`` mailboxes (among the configured ones and ``extra``) are imported.

    :class:`~xds.recipient.model.AlreadyDelivered` (a concurrent identical push committed first) keeps the staged
    documents when ``keep_on_race`` (the caller plans again), else discards them and becomes XDSErrors."""
    contents = [c for p in plans for c in p.contents]
    try:
        ctx.files.sync(contents)
        stored = ctx.inbox.add([n for p in plans for n in p.news], notes=[r for p in plans for r in p.resent])
    except AlreadyDelivered:
        if keep_on_race:
            raise
        ctx.files.discard(contents)
        raise XDSErrors(
            [DuplicateUniqueIdInRegistry("the same SubmissionSet was delivered concurrently; send it again")]
        ) from None
    except BaseException:
        ctx.files.discard(contents)
        raise
    ctx.files.publish(contents)  # committed: from here on the bytes stay, whatever happens
    if ctx.auto_import is not None:
        boxes = {m.name: m for m in (*ctx.mailboxes, *extra)}
        for d in stored:
            if d.status == NEW and boxes[d.mailbox].auto_import:
                _auto_import(ctx, d)
    return Receipt(tuple(stored), tuple(ref for p in plans for ref, _ in p.resent))


def plan(
    req: ProvideAndRegisterRequest,
    ctx: RecipientContext,
    *,
    transport: str,
    sender: str,
    mailbox: Mailbox | None = None,
    strict: bool = True,
) -> Plan:
    """Check a push and decide its deliveries, storing nothing; raise :class:`XDSErrors` when it is refused."""
    findings = validate_submission(req.submission, RULES)
    if len(req.submission.submission_sets) != 1:
        strict = True  # a delivery is one SubmissionSet, whatever the source
    errors: list[XDSError] = list(findings) if strict else []
    errors += _lengths(req.submission)
    recipients: list[IntendedRecipient] = []
    for ss in req.submission.submission_sets:
        for value in ss.intended_recipients:
            try:
                recipients.append(IntendedRecipient.parse(value))
            except ValueError as exc:
                errors.append(
                    MetadataError(f"SubmissionSet {ss.id}: intendedRecipient {value!r}: {exc}", location=ss.id)
                )
    try:
        submission, _held = prepare(req, "", foreign=True)
    except XDSErrors as exc:
        errors += exc.errors
        submission = req.submission
    if errors:
        raise XDSErrors(errors)
    try:
        mailboxes = (mailbox,) if mailbox is not None else route(recipients, ctx.mailboxes)
    except NoMailbox as exc:
        raise XDSErrors([MetadataError(str(exc), location=submission.submission_sets[0].id)]) from None
    ss = submission.submission_sets[0]
    match = match_patient(submission, ctx.patients, ctx.policy)
    documents = _documents(submission, dict(req.documents))
    metadata = render_submit_objects_request(submission)
    status = NEW if match.local_patient_id else UNKNOWN_PATIENT
    detail = f"received by {transport} from {sender or '(unknown sender)'}; patient: {match.reason}"
    if findings and not strict:
        detail += "; metadata to complete before import: " + "; ".join(f.code_context for f in findings[:20])
    news: list[tuple[NewDelivery, float | None]] = []
    resent: list[tuple[str, str]] = []
    for box in mailboxes:
        earlier = ctx.inbox.find_resent(box.name, ss.unique_id)
        if earlier is not None:
            if _same_documents(earlier, documents):
                resent.append((earlier.reference, f"the same submission arrived again by {transport} from {sender}"))
                continue
            raise XDSErrors(
                [
                    DuplicateUniqueIdInRegistry(
                        f"SubmissionSet uniqueId {ss.unique_id} was delivered to mailbox {box.name} before"
                        f" ({earlier.reference}) with other documents",
                        location=ss.unique_id,
                    )
                ]
            )
        new = NewDelivery(
            mailbox=box.name,
            status=status,
            transport=transport,
            sender=sender,
            patient_id=match.sender_patient_id,
            local_patient_id=match.local_patient_id,
            message=_message(ss),
            urgent=is_urgent(ss),
            submission_set_uid=ss.unique_id,
            recipients=tuple(ss.intended_recipients),
            metadata_xml=metadata,
            documents=documents,
            detail=detail,
        )
        news.append((new, box.quiet_period if box.notify else None))
    return Plan(tuple(news), tuple(resent), tuple(c for _, c in req.documents))


_MAX: Final = {"uniqueId": 128, "mimeType": 128}
"""What a delivery keeps of these values (longer ones are refused, not cut)."""


def _lengths(sub: Submission) -> list[XDSError]:
    """Values longer than the inbox keeps them: refused with a clear error, checked for media imports too."""
    out: list[XDSError] = []
    objects: list[tuple[str, str, str]] = [("uniqueId", ss.id, ss.unique_id) for ss in sub.submission_sets]
    for de in sub.document_entries:
        objects += [("uniqueId", de.id, de.unique_id), ("mimeType", de.id, de.mime_type)]
    for attr, oid, value in objects:
        if len(value) > _MAX[attr]:
            out.append(MetadataError(f"{oid}: {attr} is longer than {_MAX[attr]} characters", location=oid))
    return out


def _documents(sub: Submission, contents: dict[str, DocumentContent]) -> tuple[DeliveredDocument, ...]:
    return tuple(
        DeliveredDocument(
            entry_id=de.id,
            unique_id=de.unique_id,
            mime_type=de.mime_type,
            size=contents[de.id].size,
            sha1=contents[de.id].sha1,
            sha256=contents[de.id].sha256,
        )
        for de in sub.document_entries
    )


def _same_documents(earlier: Delivery, documents: tuple[DeliveredDocument, ...]) -> bool:
    def key(docs: tuple[DeliveredDocument, ...]) -> set[tuple[str, str]]:
        return {(d.unique_id, d.sha256) for d in docs}

    return key(earlier.documents) == key(documents)


def _text(value: InternationalString) -> str:
    return " / ".join(s.value for s in value if s.value)


def _message(ss: SubmissionSet) -> str:
    """The sender's free-text message: the SubmissionSet's comments, else its title."""
    return _text(ss.comments) or _text(ss.title)


def is_urgent(ss: SubmissionSet) -> bool:
    """True when the sender marked the submission urgent (:data:`~xds.recipient.model.URGENT_SLOT`)."""
    return any(value.strip().lower() == "urgent" for value in ss.slot(URGENT_SLOT) or ())


def _auto_import(ctx: RecipientContext, d: Delivery) -> None:
    assert ctx.auto_import is not None
    try:
        ctx.auto_import(d.reference)
    except Exception as exc:  # the delivery is stored: a failed import leaves it in the mailbox, with the reason
        reason = "; ".join(e.code_context for e in exc.items()) if isinstance(exc, XDSError) else str(exc)
        log.warning("automatic import of %s failed: %s", d.reference, reason or type(exc).__name__)
        try:
            ctx.inbox.note(d.reference, "import-failed", f"automatic import failed: {reason or type(exc).__name__}")
        except Exception:
            log.exception("could not note the failed import of %s", d.reference)


__all__ = ["RULES", "TRANSACTION", "Plan", "Receipt", "RecipientContext", "is_urgent", "plan", "receive", "store"]
