"""XDM packages in and out of a node: ``xds xdm import`` (and XDM by e-mail) and ``xds xdm export``.

Theory of operation
-------------------
Import: the package is read by the safe reader (:func:`xds.xdm.reader.read_package`) into a scratch directory
under the node's data directory, so nothing is ever written elsewhere; each document is then staged into the
document store and each SUBSET becomes a delivery through the Document Recipient
(:func:`xds.recipient.iti41.receive`): the same checks, mailbox routing, unknown-patient queue and notification
as an XDR push. A package is all or nothing: every SUBSET is checked first (the error names the one refused, and
two subsets with one SubmissionSet are refused), then all deliveries are stored in one transaction, before any is
imported automatically. The scratch directory is removed in every case.

Export: the patient's approved DocumentEntries (FindDocuments through the consent gate, as the local operator)
go into one new SubmissionSet in one SUBSET, the documents streamed from the document store into the ZIP
(:func:`xds.xdm.writer.write_package`). Each import and export is audited (ITI-32).

References
----------
ITI TF-2 §3.32 (Distribute Document Set on Media), ITI TF-1 §16.
"""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

from xds import vocabulary as v
from xds.audit import transactions as audits
from xds.audit.message import Code
from xds.audit.transactions import DocumentRef
from xds.consent.model import PURPOSE_TREATMENT, Requester
from xds.ebrim.decode import document_entry
from xds.ebrim.parser import parse_xml
from xds.errors import XDSError
from xds.model.hl7 import CX, DTM
from xds.model.messages import DocumentContent, ProvideAndRegisterRequest, QueryParameter, StoredQueryRequest
from xds.model.metadata import Submission, SubmissionSet
from xds.model.rim import text
from xds.node import Node
from xds.recipient import iti41 as recipient
from xds.recipient.addressing import mailbox_named
from xds.recipient.model import Delivery
from xds.registry import iti18
from xds.samples import has_member
from xds.xdm.reader import Limits, XdmError, read_package
from xds.xdm.writer import write_package

OPERATOR = Requester(user_id="local-operator", purpose_of_use=PURPOSE_TREATMENT, source="local")
"""Who exports on the command line: the node's operator, for treatment."""


def import_xdm(
    node: Node,
    package: Path,
    *,
    transport: str,
    sender: str,
    mailbox: str | None = None,
    limits: Limits | None = None,
) -> list[Delivery]:
    """Import an XDM package as deliveries (one per SUBSET and mailbox); XdmError or XDSError when refused."""
    box = mailbox_named(mailbox, node.settings.mailboxes) if mailbox else None
    scratch = node.settings.data_path / "tmp" / f"xdm-{uuid.uuid4().hex}"
    ctx = node.recipient_context()
    staged: list[DocumentContent] = []
    try:
        subsets = read_package(package, scratch, limits=limits or Limits())
        plans: list[recipient.Plan] = []
        seen: dict[tuple[str, str], str] = {}
        try:
            for subset in subsets:
                documents: list[tuple[str, DocumentContent]] = []
                for entry_id, path in subset.documents.items():
                    content = node.documents.stage_file(path)
                    staged.append(content)
                    documents.append((entry_id, content))
                request = ProvideAndRegisterRequest(submission=subset.submission, documents=tuple(documents))
                try:
                    planned = recipient.plan(
                        request,
                        ctx,
                        transport=transport,
                        sender=f"{sender} ({package.name} {subset.name})",
                        mailbox=box,
                        strict=False,
                    )
                except XDSError as exc:
                    raise XdmError(f"{subset.name}: " + "; ".join(i.code_context for i in exc.items())) from None
                for new, _ in planned.news:
                    key = (new.mailbox, new.submission_set_uid)
                    if key in seen:
                        raise XdmError(f"{subset.name} repeats the SubmissionSet of {seen[key]} ({key[1]})")
                    seen[key] = subset.name
                plans.append(planned)
        except BaseException:
            node.documents.discard(staged)
            raise
        receipt = recipient.store(ctx, plans, extra=(box,) if box else ())  # every subset or none
    except Exception as exc:
        _audit(node, audits.ITI_32, export=False, peer=sender, ok=False, description=f"import refused: {exc}")
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    stored = list(receipt.deliveries)
    _audit(
        node,
        audits.ITI_32,
        export=False,
        peer=sender,
        ok=True,
        patients=sorted({d.local_patient_id or d.patient_id for d in stored}),
        description=f"imported {package.name} as {', '.join(d.reference for d in stored) or 'nothing new'}",
    )
    return stored


def export_xdm(node: Node, patient: str, out: Path, *, requester: Requester = OPERATOR) -> int:
    """Write the patient's approved documents into an XDM package at ``out``; the number of documents.

    ValueError when the patient has no document this requester may see.
    """
    cx = CX.parse(patient)
    query = StoredQueryRequest(
        query_id=v.SQ_FIND_DOCUMENTS,
        parameters=(
            QueryParameter(name="$XDSDocumentEntryPatientId", values=(f"'{patient}'",)),
            QueryParameter(name="$XDSDocumentEntryStatus", values=(f"('{v.APPROVED}')",)),
        ),
    )
    answer = iti18.stored_query(query, node.query_context(), requester)
    if answer.errors:
        raise ValueError("; ".join(e.code_context for e in answer.errors))
    entries = [document_entry(parse_xml(x.encode("utf-8"))) for x in answer.leaf]
    entries = [e for e in entries if e.object_type == v.DE_STABLE]
    if not entries:
        raise ValueError(f"patient {patient} has no document to export")
    held = node.store.documents(node.repository_unique_id, [e.unique_id for e in entries])
    missing = [e.unique_id for e in entries if e.unique_id not in held]
    if missing:
        raise ValueError(f"documents held by another repository cannot be exported: {', '.join(missing)}")
    ss = SubmissionSet(
        id="urn:uuid:" + str(uuid.uuid4()),
        unique_id=f"2.25.{uuid.uuid4().int}",
        source_id=node.repository_unique_id,
        patient_id=cx,
        submission_time=DTM(datetime.now(UTC).strftime("%Y%m%d%H%M%S")),
        content_type_code=node.settings.import_defaults.content_type_code,
        title=text("XDM export"),
    )
    fresh = [dataclasses.replace(e, id="urn:uuid:" + str(uuid.uuid4()), lid="", status="", home="") for e in entries]
    members = tuple(has_member(ss.id, e.id, status=v.SS_STATUS_REFERENCE) for e in fresh)
    submission = Submission(submission_sets=(ss,), document_entries=tuple(fresh), associations=members)
    files = {
        e.id: node.documents.path(held[old.unique_id].content.sha256) for e, old in zip(fresh, entries, strict=True)
    }
    try:
        write_package(out, [(submission, files)], author_text=node.settings.organisation_id or node.home_community_id)
    except Exception as exc:
        _audit(node, audits.ITI_32, export=True, peer=str(out), ok=False, patients=[patient], description=str(exc))
        raise
    refs = [DocumentRef(e.unique_id, node.repository_unique_id) for e in entries]
    _audit(
        node,
        audits.ITI_32,
        export=True,
        peer=str(out),
        ok=True,
        patients=[patient],
        documents=refs,
        submission_set=ss.unique_id,
        description=f"exported {len(entries)} documents",
    )
    return len(entries)


def _audit(
    node: Node,
    kind: Code,
    *,
    export: bool,
    peer: str,
    ok: bool,
    patients: list[str] | tuple[str, ...] = (),
    documents: list[DocumentRef] | tuple[DocumentRef, ...] = (),
    submission_set: str = "",
    description: str = "",
) -> None:
    record = node.push_record(
        kind,
        ok=ok,
        export=export,
        peer=peer,
        patient_ids=patients,
        submission_set_id=submission_set,
        documents=documents,
        description=description[:500],
    )
    node.audit.append([record])


__all__ = ["OPERATOR", "export_xdm", "import_xdm"]
