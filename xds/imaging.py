"""``xds dicom ingest`` and ``xds dicom bsn-report``: DICOM studies into this node as XDS-I.b manifests.

Theory of operation
-------------------
:func:`ingest` scans the files (:func:`xds.dicom.ingest.scan`), groups them by study and, per study:

1. streams each new instance into the document store (hashed on the way, fsynced);
2. builds the study's KOS manifest over *all* its instances, the ones stored earlier included, with this
   node's imaging source id as Retrieve Location UID (:mod:`xds.dicom.kos`);
3. registers the manifest through ITI-41 in-process (:func:`xds.repository.iti41.provide_and_register`), with
   an RPLC of the study's previous manifest when there is one; the instances' rows and the study's new
   manifest are written in the registry's own transaction (:mod:`xds.store.hooks`), so the study, its
   instances and its manifest are stored together or not at all;
4. publishes the instances' files after the commit (crash recovery knows them by their rows).

An instance stored before with the same bytes is not stored again; with other bytes it is refused. Each study's
BSN quality (:func:`xds.dicom.identity.classify`) is recorded for :func:`bsn_report`. Every ingested study is
audited (ITI-41 import).

References
----------
IHE RAD TF-2 §4.68 (Provide and Register Imaging Document Set - MTOM/XOP), RAD TF-3 §4.68.4.1.2.3.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from sqlalchemy import Connection

from xds.audit import transactions as audits
from xds.audit.message import OUTCOME_SUCCESS
from xds.consent.model import Requester
from xds.dicom.identity import (
    BSN_OID,
    Bucket,
    LocalId,
    StudyIdentity,
    bsn_candidates,
    classify,
    is_declared,
    rewrite_bsn_only,
    rewrite_inbound,
    rewrite_outbound,
)
from xds.dicom.ingest import ImagingDefaults, Scanned, manifest_submission, scan, study_manifest
from xds.dicom.kos import build_manifest, manifest_bytes
from xds.dicom.records import InstanceRecord, StudyRecord
from xds.model.hl7 import CX, DTM
from xds.model.messages import DocumentContent, ProvideAndRegisterRequest, RetrievedDocument, RetrieveResponse
from xds.node import Node
from xds.recipient.addressing import Mailbox
from xds.recipient.model import TRANSPORT_DICOM, is_dicom
from xds.repository import iti41
from xds.store.audit import spool_record
from xds.store.hooks import before_commit

log = logging.getLogger("xds.imaging")

LOCAL_SENDER = "local"
"""The sender of studies ingested here (the BSN report counts per sender)."""


@dataclass(frozen=True, slots=True)
class Ingested:
    """What one study's ingest did."""

    study_uid: str
    added: int
    instances: int
    manifest_unique_id: str
    replaced: str
    bsn_bucket: str


def ingest(
    node: Node,
    paths: Sequence[Path],
    *,
    patient: str,
    include_presentation_states: bool = True,
    progress: Callable[[int, int], None] | None = None,
    defaults: ImagingDefaults | None = None,
    sender: str = LOCAL_SENDER,
    inbound_bsn: str = "",
    force: bool = False,
    confirmed: bool = True,
    on_commit: Callable[[Connection], object] | None = None,
) -> tuple[list[Ingested], list[str]]:
    """Ingest the DICOM files under ``paths`` for the local ``patient``; the studies done and the files skipped.

    The instances are stored ready to leave the node (:func:`outbound_identity`): the patient's verified BSN
    as Patient ID and the hospital id as an Other Patient ID, or, with no verified BSN, the hospital id (never
    an invented BSN; the study records that fact). ``inbound_bsn``: a received study matched to ``patient`` by
    that BSN is filed under the local id with the BSN kept (:func:`xds.dicom.identity.rewrite_inbound`).

    The images must be of that patient (:func:`check_identity`; ``force`` overrides it, for a person who checked);
    ``confirmed=False`` (an automatic import) also refuses images carrying a BSN this node has not verified for
    the patient. ``on_commit`` runs in the (last) study's transaction.

    Raises ValueError (an unknown or malformed patient, no DICOM file, images of another patient, a conflicting
    instance) or the registry's :class:`~xds.errors.XDSError` when it refuses a manifest (that study is then not
    stored at all).
    """
    try:
        cx = CX.parse(patient)
    except ValueError as exc:
        raise ValueError(f"patient id {patient!r}: {exc}") from None
    if not node.store.patient_known(str(cx)) and node.settings.patient_id_policy.value == "registered":
        raise ValueError(f"patient {patient} is not known here (xds patient add)")
    scanned, skipped = scan(paths, include_presentation_states=include_presentation_states)
    if not scanned:
        raise ValueError("no DICOM instance to ingest" + (f": {skipped[0]}" if skipped else ""))
    studies: dict[str, list[Scanned]] = {}
    for s in scanned:
        studies.setdefault(s.record.study_uid, []).append(s)
    rewrite, sent_as = (
        (_inbound(cx, inbound_bsn), "the local id, BSN kept (rewritten with the BSN policy when it leaves)")
        if inbound_bsn
        else outbound_identity(node, cx)
    )
    form = "local" if inbound_bsn else "outbound"
    if not force:
        verified = inbound_bsn or node.bsn_of(str(cx))
        for study_uid, members in studies.items():
            check_identity(study_uid, members, verified=verified, confirmed=confirmed)
    done: list[Ingested] = []
    total, count = len(scanned), 0
    last = list(studies)[-1]
    for study_uid, members in studies.items():
        done.append(
            _ingest_study(
                node,
                study_uid,
                members,
                cx,
                defaults or node.settings.imaging_defaults,
                sender,
                rewrite,
                sent_as,
                on_commit if study_uid == last else None,
                form,
            )
        )
        count += len(members)
        if progress is not None:
            progress(count, total)
    return done, skipped


def check_identity(study_uid: str, members: Sequence[Scanned], *, verified: str, confirmed: bool = True) -> None:
    """Refuse a study whose images may not be of the patient they are to be filed under (ValueError): instances
    of more than one patient (Patient ID and issuer), instances that disagree on the BSN or carry one failing the
    11-check, a declared BSN other than the patient's verified one, and, for an automatic import
    (``confirmed=False``), a declared BSN at all when the patient has no verified BSN to compare it with."""
    ids = {
        (str(s.header.get("PatientID", "") or ""), str(s.header.get("IssuerOfPatientID", "") or "")) for s in members
    }
    if len(ids) > 1:
        raise ValueError(f"study {study_uid} holds instances of {len(ids)} patient ids: not filed (--force overrides)")
    identity = classify(s.header for s in members)
    if identity.bucket in (Bucket.INCONSISTENT, Bucket.BAD_CHECK):
        raise ValueError(f"study {study_uid}: {identity.detail}: not filed (--force overrides)")
    declared = _declared_bsn(identity, members)
    if declared and verified and declared != verified:
        raise ValueError(f"study {study_uid} carries another patient's BSN: not filed (--force overrides)")
    if declared and not verified and not confirmed:
        raise ValueError(f"study {study_uid} carries a BSN not verified for this patient: a person must decide")


def _declared_bsn(identity: StudyIdentity, members: Sequence[Scanned]) -> str:
    """The study's BSN when an issuer declares it (never a guessed one), else ``""``."""
    if not identity.bsn:
        return ""
    found = [f for s in members for f in bsn_candidates(s.header) if f.value == identity.bsn]
    return identity.bsn if any(is_declared(f) for f in found) else ""


def outbound_identity(node: Node, patient: CX) -> tuple[Callable[[Dataset], object], str]:
    """How instances of ``patient`` are written to leave the node, and what that is in words."""
    if patient.assigning_authority.universal_id == BSN_OID:
        bsn = patient.id_number
        return (lambda ds: rewrite_bsn_only(ds, bsn=bsn)), "BSN as Patient ID"
    local = LocalId(id=patient.id_number, oid=patient.assigning_authority.universal_id)
    bsn = node.bsn_of(str(patient))
    if bsn:
        return (lambda ds: rewrite_outbound(ds, bsn=bsn, local=local)), "BSN as Patient ID, hospital id kept"
    return (lambda ds: rewrite_outbound(ds, bsn=None, local=local)), "hospital id only: no verified BSN"


def _inbound(patient: CX, bsn: str) -> Callable[[Dataset], object]:
    if patient.assigning_authority.universal_id == BSN_OID:
        return lambda ds: rewrite_bsn_only(ds, bsn=bsn)
    local = LocalId(id=patient.id_number, oid=patient.assigning_authority.universal_id)
    return lambda ds: rewrite_inbound(ds, local=local, bsn=bsn)


def rewritten(path: Path, rewrite: Callable[[Dataset], object], limit: int) -> bytes:
    """The instance at ``path`` with its patient identity rewritten (read whole: the identity sits before the
    pixel data, and pydicom writes a file as one dataset); ValueError beyond ``limit`` bytes."""
    if path.stat().st_size > limit:
        raise ValueError(f"{path}: larger than {limit} bytes (max_attachment_bytes)")
    ds = pydicom.dcmread(path)
    rewrite(ds)
    out = BytesIO()
    ds.save_as(out)
    return out.getvalue()


def _ingest_study(
    node: Node,
    study_uid: str,
    members: list[Scanned],
    patient: CX,
    defaults: ImagingDefaults,
    sender: str,
    rewrite: Callable[[Dataset], object],
    sent_as: str,
    on_commit: Callable[[Connection], object] | None = None,
    form: str = "outbound",
) -> Ingested:
    earlier = node.imaging.study(study_uid)
    if earlier is not None and earlier.patient_id and earlier.patient_id != str(patient):
        raise ValueError(f"study {study_uid} is stored for another patient ({earlier.patient_id})")
    if earlier is not None and earlier.patient_id and earlier.stored_form != form:
        raise ValueError(f"study {study_uid} is stored in {earlier.stored_form} form: add instances the same way")
    known = {i.sop_instance_uid: i for i in node.imaging.study_instances(study_uid)}
    staged: list[DocumentContent] = []
    new: list[InstanceRecord] = []
    try:
        for s in members:
            content = node.documents.stage_bytes([rewritten(s.path, rewrite, node.settings.max_attachment_bytes)])
            old = known.get(s.record.sop_instance_uid)
            if old is not None:
                node.documents.discard([content])
                if old.sha256 != content.sha256:
                    raise ValueError(f"instance {s.record.sop_instance_uid} is stored already with other content")
                continue
            staged.append(content)
            new.append(dataclasses.replace(s.record, size=content.size, sha256=content.sha256))
        node.documents.sync(staged)
        instances = [*known.values(), *new]
        accession = next((s.accession for s in members if s.accession), earlier.accession if earlier else "")
        manifest = study_manifest(
            study_uid,
            instances,
            members[0].header,
            patient=patient,
            retrieve_location_uid=node.imaging_source_id,
            accession=accession,
        )
        kos = build_manifest(manifest)
        rewrite(kos)  # the manifest names the patient as its instances do
        kos_uid = str(kos.SOPInstanceUID)
        now = DTM(datetime.now(UTC).strftime("%Y%m%d%H%M%S"))
        sub, de_id = manifest_submission(
            manifest,
            kos_uid,
            patient=patient,
            source_id=node.repository_unique_id,
            defaults=defaults,
            accession_issuer=node.repository_unique_id,
            replaces=earlier.manifest_entry_uuid if earlier else "",
            body_parts=[i.body_part for i in instances],
            now=now,
        )
        identity = classify(s.header for s in members)
        record = StudyRecord(
            study_uid=study_uid,
            patient_id=str(patient),
            accession=accession,
            sender=sender,
            bsn_bucket=str(identity.bucket),
            bsn_detail=f"{identity.detail}; stored with {sent_as}",
            stored_form=form,
        )
        kos_content = node.documents.stage_bytes([manifest_bytes(kos)])
        audit = spool_record(
            audits.provide_and_register(
                node=node.audit_node,
                requester=Requester(user_id="local-operator", source="local"),
                time=datetime.now(UTC),
                outcome=OUTCOME_SUCCESS,
                submission_set_id=sub.submission_sets[0].unique_id,
                patient_id=str(patient),
            ),
            "ITI-41",
        )

        expected = earlier.manifest_entry_uuid if earlier else ""

        def within(conn: Connection) -> None:
            if node.imaging.manifest_entry(study_uid, conn=conn) != expected:  # another ingest of it got in first
                raise ValueError(f"study {study_uid} was changed by another ingest meanwhile: ingest it again")
            node.imaging.add(record, new, conn=conn)
            node.imaging.set_manifest(study_uid, kos_uid, de_id, conn=conn)
            node.audit.append([audit], conn=conn)
            if on_commit is not None:
                on_commit(conn)

        request = ProvideAndRegisterRequest(submission=sub, documents=((de_id, kos_content),))
        with before_commit(within):
            iti41.provide_and_register(request, node.repository_context())
    except BaseException:
        node.documents.discard(staged)
        raise
    node.documents.publish(staged)
    return Ingested(
        study_uid=study_uid,
        added=len(new),
        instances=len(instances),
        manifest_unique_id=kos_uid,
        replaced=earlier.manifest_unique_id if earlier else "",
        bsn_bucket=str(identity.bucket),
    )


def leaving(node: Node, answer: RetrieveResponse) -> RetrieveResponse:
    """A RAD-69 / RAD-75 answer whose instances of received studies (stored under the local id) are rewritten as
    they leave the node (:func:`outbound_identity`: the verified BSN as Patient ID, else the hospital id, never an
    unverified BSN), each into a staged copy the answer consumes. Instances stored in outbound form go as they
    are, byte for byte."""
    ours = [d for d in answer.documents if not d.content.ref]
    if not ours:
        return answer
    instances = node.imaging.instances([d.document_unique_id for d in ours])
    studies = {uid: node.imaging.study(uid) for uid in {i.study_uid for i in instances.values()}}
    out: list[RetrievedDocument] = []
    staged: list[DocumentContent] = []
    try:
        for d in answer.documents:
            instance = instances.get(d.document_unique_id) if not d.content.ref else None
            study = studies.get(instance.study_uid) if instance is not None else None
            if instance is None or study is None or study.stored_form != "local" or not study.patient_id:
                out.append(d)
                continue
            rewrite, _ = outbound_identity(node, CX.parse(study.patient_id))
            data = rewritten(node.documents.path(instance.sha256), rewrite, node.settings.max_attachment_bytes)
            content = node.documents.stage_bytes([data])
            staged.append(content)
            out.append(dataclasses.replace(d, content=content))
    except BaseException:
        node.documents.discard(staged)
        raise
    return dataclasses.replace(answer, documents=tuple(out))


def bsn_report(node: Node, *, since: datetime | None = None, by_sender: bool = False) -> dict[str, dict[str, int]]:
    """Studies per BSN bucket (per sender with ``by_sender``, else under ``"all"``), received since ``since``."""
    counts: dict[str, Counter[str]] = {}
    for sender, bucket, n in node.imaging.bucket_counts(since=since):
        counts.setdefault(sender if by_sender else "all", Counter())[bucket or "missing"] += n
    return {k: dict(sorted(c.items())) for k, c in sorted(counts.items())}


__all__ = ["LOCAL_SENDER", "Ingested", "bsn_report", "ingest", "leaving", "outbound_identity", "rewritten"]


@dataclass(frozen=True, slots=True)
class Received:
    """What :func:`receive_studies` did: studies filed under a local patient, and deliveries that wait."""

    filed: tuple[Ingested, ...]
    waiting: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: tuple[str, ...] = ()


def match_bsn(node: Node, bsn: str) -> str:
    """The local patient a BSN belongs to (a fed BSN id, the one patient with it as alias, or the BSN id itself
    under a BSN policy); ``""`` when none or more than one."""
    if not bsn:
        return ""
    bsn_id = f"{bsn}^^^&{BSN_OID}&ISO"
    if node.store.patient_known(bsn_id):
        return bsn_id
    owners = node.store.patients_with_alias(bsn_id)
    if len(owners) == 1:
        return owners[0]
    if not owners and node.settings.patient_id_policy.value == "bsn":
        return bsn_id
    return ""


def receive_studies(node: Node, paths: Sequence[Path], *, sender: str, mailbox: str | None = None) -> Received:
    """File received DICOM studies (a CD/DVD, a USB stick, a push) under the local patient their BSN names.

    A study whose instances carry one valid BSN declared by an issuer (the agreed place or a known wrong one; a
    bare number that only looks like a BSN is never used) of exactly one local patient, and pass
    :func:`check_identity`, is rewritten to the local id, the BSN kept, and ingested (its BSN quality counted for
    ``sender``). Any other study (no BSN, a BSN failing the 11-check, instances that disagree, a BSN of no or
    several local patients) is not imported: it waits as a delivery in the unknown-patient queue (``xds inbox
    reconcile``), unchanged, with the reason, and is counted in the BSN report already. Each study is handled
    on its own: one that fails is listed in ``failed`` and the others go on.
    """
    from xds.recipient.addressing import mailbox_named

    scanned, skipped = scan(paths)
    if not scanned:
        raise ValueError("no DICOM instance to import" + (f": {skipped[0]}" if skipped else ""))
    studies: dict[str, list[Scanned]] = {}
    for s in scanned:
        studies.setdefault(s.record.study_uid, []).append(s)
    box = mailbox_named(mailbox, node.settings.mailboxes) if mailbox else None
    filed: list[Ingested] = []
    waiting: list[str] = []
    failed: list[str] = []
    for study_uid, members in studies.items():
        try:
            identity = classify(s.header for s in members)
            declared = _declared_bsn(identity, members)
            local = match_bsn(node, declared) if identity.bucket in (Bucket.CORRECT, Bucket.WRONG_TAG) else ""
            if local:
                try:
                    [done], _ = ingest(
                        node, [s.path for s in members], patient=local, sender=sender, inbound_bsn=declared
                    )
                except ValueError as exc:  # the images do not hold together: a person decides
                    waiting += _wait(node, study_uid, members, sender, identity, str(exc), box)
                else:
                    filed.append(done)
                continue
            why = (
                identity.detail
                if identity.bucket not in (Bucket.CORRECT, Bucket.WRONG_TAG)
                else "no BSN declared by an issuer"
                if not declared
                else "the BSN belongs to no patient here (or to several)"
            )
            waiting += _wait(node, study_uid, members, sender, identity, why, box)
        except Exception as exc:
            log.exception("study %s could not be imported", study_uid)
            failed.append(f"study {study_uid}: {exc}")
    return Received(tuple(filed), tuple(waiting), tuple(skipped), tuple(failed))


def _wait(
    node: Node,
    study_uid: str,
    members: list[Scanned],
    sender: str,
    identity: StudyIdentity,
    why: str,
    box: Mailbox | None,
) -> list[str]:
    """Put a study in the unknown-patient queue (audited), and count it in the BSN report."""
    from xds.recipient import iti41 as recipient

    request = _waiting_request(node, study_uid, members, sender, why)
    ctx = node.recipient_context()
    try:
        planned = recipient.plan(request, ctx, transport=TRANSPORT_DICOM, sender=sender, mailbox=box, strict=False)
    except BaseException:
        node.documents.discard(c for _, c in request.documents)
        raise
    receipt = recipient.store(ctx, [planned])
    references = [d.reference for d in receipt.deliveries] or [ref for ref, _ in planned.resent]
    if node.imaging.study(study_uid) is None:  # counted now; filed (with a patient) when a person decides
        node.imaging.add(
            StudyRecord(
                study_uid=study_uid,
                patient_id="",
                sender=sender,
                bsn_bucket=str(identity.bucket),
                bsn_detail=f"{identity.detail}; waiting: {why}",
            ),
            [],
        )
    description = f"study {study_uid} waits as {', '.join(references)}: {why}"[:500]
    node.audit.append([node.push_record(audits.DICOM_IMPORT, peer=sender, description=description)])
    return references


def _waiting_request(
    node: Node, study_uid: str, members: list[Scanned], sender: str, why: str
) -> ProvideAndRegisterRequest:
    """A received study as a limited-metadata submission: one DocumentEntry per instance, the files unchanged."""
    from xds.model.metadata import DocumentEntry, Submission, SubmissionSet
    from xds.model.rim import text
    from xds.samples import has_member

    now = DTM(datetime.now(UTC).strftime("%Y%m%d%H%M%S"))
    ss = SubmissionSet(
        id="SubmissionSet01",
        unique_id=study_uid,
        source_id=node.repository_unique_id,
        submission_time=now,
        limited_metadata=True,
        title=text(f"DICOM study {study_uid}"),
        comments=text(f"received from {sender}; not filed: {why}"),
    )
    entries, documents, associations = [], [], []
    for n, s in enumerate(members, 1):
        de_id = f"Document{n:05d}"
        entries.append(
            DocumentEntry(
                id=de_id, mime_type="application/dicom", unique_id=s.record.sop_instance_uid, limited_metadata=True
            )
        )
        documents.append((de_id, node.documents.stage_file(s.path)))
        associations.append(has_member(ss.id, de_id))
    submission = Submission(submission_sets=(ss,), document_entries=tuple(entries), associations=tuple(associations))
    return ProvideAndRegisterRequest(submission=submission, documents=tuple(documents))


def accept_study(node: Node, reference: str, patient: str, *, confirmed: bool = True, force: bool = False) -> Ingested:
    """File a DICOM delivery under the local ``patient`` (``xds inbox accept`` / ``reconcile``): its instances
    are ingested like a study of ours (stored as they will leave the node, one manifest), and the delivery is
    marked accepted, with its audit record, in the same transaction. ``confirmed``: a person chose the patient
    (reconcile); an automatic import refuses images whose BSN this node has not verified for the patient."""
    from xds.recipient.model import ACCEPTED, OPEN_STATUSES

    delivery = node.inbox.get(reference)
    if delivery is None:
        raise KeyError(f"no delivery {reference}")
    if not is_dicom(delivery):
        raise ValueError(f"delivery {reference} is not a DICOM study")
    if delivery.status not in OPEN_STATUSES:
        raise ValueError(f"delivery {reference} is {delivery.status} already")
    paths = [node.documents.path(d.sha256) for d in delivery.documents]
    found, _ = scan(paths)
    studies = {s.record.study_uid for s in found}
    if len(studies) != 1:
        raise ValueError(f"delivery {reference} holds {len(studies)} studies: import them with xds dicom ingest")
    detail = f"filed under patient {patient} as study {next(iter(studies))}"
    record = node.inbox_record(audits.INBOX_ACCEPT, delivery, patient, f"{reference}: {detail}")

    def settle(conn: Connection) -> None:
        node.inbox.set_status(reference, ACCEPTED, detail, local_patient_id=patient, conn=conn)
        node.audit.append([record], conn=conn)

    try:
        [done], _ = ingest(
            node, paths, patient=patient, sender=delivery.sender, confirmed=confirmed, force=force, on_commit=settle
        )
    except Exception as exc:
        node.inbox.note(reference, "import-failed", f"not filed: {exc}")
        raise
    return done


__all__ += ["TRANSPORT_DICOM", "Received", "accept_study", "is_dicom", "match_bsn", "receive_studies"]
