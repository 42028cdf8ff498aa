"""``xds push``: send documents to another organisation's mailbox, by XDR, ITI-80 or XDM by e-mail.

Theory of operation
-------------------
The recipient is a community directory entry (``[[communities]]`` or ``xds community add``), named by its
``name`` or homeCommunityId. The files become one SubmissionSet for the patient, addressed with
``intendedRecipient`` (``XON|XCN``: the department and organisation, the person), with the sender's message as
the SubmissionSet's comments and, for an urgent push, the urgent slot
(:data:`~xds.recipient.model.URGENT_SLOT`).

When the entry has a ``push_url`` the node sends ITI-41 (XDR) to it, or ITI-80 Cross-Gateway Document Provide
when its ``push_transaction`` says the URL is a community's gateway. A transport failure (refused, timeout,
HTTP 5xx, a SOAP fault from the receiver's side) is retried ``[push] retries`` times with a growing pause;
an answer that refuses the submission (a RegistryResponse with errors, a Sender fault, HTTP 4xx) is final:
sending the same content again elsewhere would not help, and the sender must see why. So is a recipient
certificate that does not verify: someone in between must not be able to divert documents to e-mail.
When the entry has no push URL, or the endpoint stayed down, the node writes an XDM package and mails it to
the entry's ``xdm_email`` through the ``[smtp]`` relay, asking for a disposition notification. Every attempt is
recorded (``xds push status``) and audited.

References
----------
ITI TF-1 §15 (XDR), §16 (XDM), ITI TF-2 §3.41, §3.80, §3.32 (ZIP over Email).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from xds import vocabulary as v
from xds.audit import transactions as audits
from xds.audit.message import Code
from xds.client import ClientError, SoapClient, SoapFaultError
from xds.communities import SOURCE_DATABASE, Community, community_from_mapping
from xds.mail.messages import xdm_message
from xds.mail.send import MailError, send_message
from xds.mail.settings import SmtpSettings, smtp_settings_from_mapping
from xds.model.hl7 import CX, XCN, XON
from xds.model.metadata import Submission
from xds.model.rim import Slot, text
from xds.node import Node
from xds.recipient.model import DICOM_MIME, URGENT_SLOT
from xds.security.tls import client_context
from xds.store.pushes import Push, SqlPushes
from xds.xdm.writer import write_package

log = logging.getLogger("xds.push")

DELIVERED = "delivered"
MAILED = "mailed"
FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class PushOrder:
    """What to push, to whom, with which message."""

    recipient: str
    patient: CX
    files: Sequence[Path]
    department: str = ""
    organisation: str = ""
    person: str = ""
    comment: str = ""
    urgent: bool = False
    title: str = ""
    images: Sequence[tuple[str, Path]] = ()
    """DICOM instances to send with the files: (SOP Instance UID, stored file), as :func:`study_images` gives."""


class Refused(Exception):
    """The recipient answered and refused the submission (not worth retrying or mailing)."""


def study_images(node: Node, study_uid: str, patient: str, *, scratch: Path) -> list[tuple[str, Path]]:
    """The stored instances of ``patient``'s study, ready to leave the node (stored with the outbound patient
    identity, :mod:`xds.imaging`): (SOP Instance UID, file). ValueError when the study is not held here, or is
    another patient's (a push must not send one patient's images under another's id). Instances of a received
    study are written to ``scratch`` rewritten as they leave (the caller removes it)."""
    study = node.imaging.study(study_uid)
    instances = node.imaging.study_instances(study_uid)
    if study is None or not instances:
        raise ValueError(f"no study {study_uid} is held here (xds dicom ingest)")
    if study.patient_id not in (patient, *node.store.patients_with_alias(patient)):
        raise ValueError(f"study {study_uid} is not of patient {patient}")
    if study.stored_form == "local":  # a received study, filed under the local id: rewritten as it leaves
        from xds.imaging import outbound_identity, rewritten

        rewrite, _ = outbound_identity(node, CX.parse(study.patient_id))
        scratch.mkdir(parents=True, exist_ok=True)
        copies = []
        for i in instances:
            copy = scratch / f"{i.sop_instance_uid}.dcm"
            copy.write_bytes(rewritten(node.documents.path(i.sha256), rewrite, node.settings.max_attachment_bytes))
            copies.append((i.sop_instance_uid, copy))
        return copies
    return [(i.sop_instance_uid, node.documents.path(i.sha256)) for i in instances]


def directory(node: Node) -> list[Community]:
    """Every directory entry: the configuration file's and the database's."""
    entries = [community_from_mapping(c, check_files=False) for c in node.settings.communities]
    for row in node.store.list_communities():
        entries.append(
            community_from_mapping(
                {k: x for k, x in row.items() if k != "added"}, source=SOURCE_DATABASE, check_files=False
            )
        )
    return entries


def find_recipient(node: Node, name: str) -> Community:
    """The directory entry named ``name`` (its name, or its homeCommunityId); KeyError when there is none."""
    for c in directory(node):
        if name in (c.name, c.home_community_id) or (c.name and c.name.lower() == name.lower()):
            return c
    raise KeyError(f"no directory entry {name!r} (xds community list shows the directory)")


def intended_recipient(order: PushOrder) -> str:
    """The ``XON|XCN`` intendedRecipient value of ``order`` ("" when it names neither).

    ValueError for a value with an HL7 separator that would make it address someone else (``|`` separates the
    parts, ``~`` repeats, ``^`` and ``&`` separate components outside an XCN given whole).
    """
    for what, value, forbidden in (
        ("department", order.department, "|~^&\\"),
        ("organisation", order.organisation, "|~^&\\"),
        ("person", order.person, "|~\\" if "^" in order.person else "|~^&\\"),
    ):
        bad = sorted({c for c in value if c in forbidden})
        if bad:
            raise ValueError(f"--{what} {value!r} contains {' '.join(bad)}: HL7 separators are not allowed there")
    xon = ""
    if order.department or order.organisation:
        xon = str(XON(organization_name=order.department, organization_identifier=order.organisation))
    xcn = ""
    if order.person:
        xcn = order.person if "^" in order.person else str(XCN(id_number=order.person))
        XCN.parse(xcn)  # ValueError for a malformed person
    return f"{xon}|{xcn}" if xcn else xon


def build(order: PushOrder) -> tuple[Submission, dict[str, Path]]:
    """The submission of ``order`` and its files by DocumentEntry id."""
    from xds.cli import build_submission

    sub, files = build_submission(list(order.files), order.patient, title=order.title or None)
    if order.images:
        pictures, image_files = build_submission(
            [p for _, p in order.images], order.patient, title="DICOM instance", mime_type=DICOM_MIME
        )
        entries = tuple(
            dataclasses.replace(de, unique_id=uid)  # an instance's uniqueId is its SOP Instance UID (XDS-I.b)
            for de, (uid, _) in zip(pictures.document_entries, order.images, strict=True)
        )
        ss_id = sub.submission_sets[0].id
        members = tuple(dataclasses.replace(a, source=ss_id) for a in pictures.associations if a.target in image_files)
        sub = dataclasses.replace(
            sub,
            document_entries=(*sub.document_entries, *entries),
            associations=(*sub.associations, *members),
        )
        files = {**files, **image_files}
    ss = sub.submission_sets[0]
    recipient = intended_recipient(order)
    ss = dataclasses.replace(
        ss,
        intended_recipients=(recipient,) if recipient else (),
        comments=text(order.comment) if order.comment else (),
        title=text(order.title) if order.title else ss.title,
        extra_slots=(*ss.extra_slots, *((Slot(name=URGENT_SLOT, values=("urgent",)),) if order.urgent else ())),
    )
    return dataclasses.replace(sub, submission_sets=(ss,)), files


def push(
    node: Node,
    order: PushOrder,
    *,
    sleep: Callable[[float], None] = time.sleep,
    smtp: SmtpSettings | None = None,
) -> Push:
    """Send ``order`` (see the module docstring); the recorded push with its outcome."""
    entry = find_recipient(node, order.recipient)
    for path in order.files:
        if not path.is_file():
            raise ValueError(f"{path}: no such file")
    if not order.files and not order.images:
        raise ValueError("nothing to push: name at least one file or a study")
    if order.files and order.images:  # the receiver files a push of images as a study: send documents apart
        raise ValueError("push a study on its own (files and a study go as two pushes)")
    sub, files = build(order)
    ss = sub.submission_sets[0]
    reference = f"P-{secrets.token_hex(5)}"
    pushes = SqlPushes(node.store)
    push_id = pushes.create(
        reference=reference,
        recipient=entry.name or entry.home_community_id,
        patient_id=str(order.patient),
        submission_set_uid=ss.unique_id,
        documents=len(files),
    )
    smtp = smtp or smtp_settings_from_mapping(node.settings.smtp or {})
    reason = "the entry has no push URL"
    if entry.push_url:
        try:
            outcome = _send_soap(node, entry, sub, files, pushes, push_id, sleep)
        except Refused as exc:
            pushes.record(push_id, FAILED, f"refused by {entry.push_url}: {exc}", final=True)
            _audit(node, entry, sub, ok=False, description=f"{reference} refused: {exc}")
            return _get(pushes, reference)
        if outcome is None:
            pushes.record(push_id, DELIVERED, f"accepted by {entry.push_url}", final=True)
            _audit(node, entry, sub, ok=True, description=f"{reference} delivered")
            return _get(pushes, reference)
        reason = f"{entry.push_url} is unreachable: {outcome}"
    if not entry.xdm_email:
        pushes.record(push_id, FAILED, f"{reason}, and the entry has no XDM e-mail address", final=True)
        _audit(node, entry, sub, ok=False, description=f"{reference} not delivered")
        return _get(pushes, reference)
    try:
        _mail_xdm(node, entry, sub, files, smtp, reference)
    except (MailError, OSError, ValueError) as exc:
        pushes.record(push_id, FAILED, f"{reason}; XDM by e-mail failed: {exc}", transport="xdm-email", final=True)
        _audit(node, entry, sub, ok=False, kind=audits.ITI_32, description=f"{reference} XDM e-mail failed")
        return _get(pushes, reference)
    pushes.record(
        push_id, MAILED, f"{reason}; XDM package mailed to {entry.xdm_email}", transport="xdm-email", final=True
    )
    _audit(node, entry, sub, ok=True, kind=audits.ITI_32, peer=entry.xdm_email, description=f"{reference} mailed")
    return _get(pushes, reference)


def _get(pushes: SqlPushes, reference: str) -> Push:
    found = pushes.get(reference)
    assert found is not None
    return found


def _send_soap(
    node: Node,
    entry: Community,
    sub: Submission,
    files: dict[str, Path],
    pushes: SqlPushes,
    push_id: int,
    sleep: Callable[[float], None],
) -> str | None:
    """Send by XDR or ITI-80 with retries; None when accepted, else the last transport failure. Raises
    :class:`Refused` when the recipient refused the submission."""
    settings = node.settings
    iti80 = entry.push_transaction == "ITI-80"
    action = v.ACTION_CROSS_GATEWAY_DOCUMENT_PROVIDE if iti80 else v.ACTION_PROVIDE_AND_REGISTER
    transport_name = "iti-80" if iti80 else "xdr"
    last = ""
    attempts = max(1, settings.push_retries + 1)
    for attempt in range(1, attempts + 1):
        try:
            with SoapClient(entry.push_url, timeout=settings.push_timeout, transport=_transport(entry)) as client:
                response = client.provide_and_register(sub, files, action=action)
        except SoapFaultError as exc:
            if exc.code == "Sender":
                raise Refused(str(exc)) from None
            last = str(exc)
        except (ClientError, httpx.HTTPError, OSError) as exc:
            if _certificate_refused(exc):  # never a reason to send the documents another way (a downgrade)
                raise Refused(f"the recipient's TLS certificate was not accepted: {exc}") from None
            status = getattr(exc, "http_status", 0)
            if 400 <= status < 500:
                raise Refused(f"HTTP {status}: {exc}") from None
            last = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
        else:
            if response.status == v.RESPONSE_SUCCESS:
                pushes.record(push_id, "attempt", f"attempt {attempt}: accepted", transport=transport_name)
                return None
            if response.status == v.RESPONSE_PARTIAL_SUCCESS:
                warnings = "; ".join(f"{e.error_code}: {e.code_context}" for e in response.errors)
                pushes.record(
                    push_id, "attempt", f"attempt {attempt}: accepted with {warnings}", transport=transport_name
                )
                return None
            raise Refused("; ".join(f"{e.error_code}: {e.code_context}" for e in response.errors) or response.status)
        pushes.record(push_id, "attempt", f"attempt {attempt} of {attempts} failed: {last}", transport=transport_name)
        log.warning("push to %s, attempt %d of %d failed: %s", entry.push_url, attempt, attempts, last)
        if attempt < attempts:
            sleep(settings.push_retry_delay * attempt)
    return last


def _certificate_refused(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a failed certificate verification."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _transport(entry: Community) -> httpx.HTTPTransport:
    tls = entry.tls
    verify: object = client_context(tls.ca_file, tls.cert_file, tls.key_file) if tls.verify else False
    return httpx.HTTPTransport(verify=verify)  # type: ignore[arg-type]


def _mail_xdm(
    node: Node, entry: Community, sub: Submission, files: dict[str, Path], smtp: SmtpSettings, reference: str
) -> None:
    if not smtp.configured:
        raise MailError("e-mail is not configured ([smtp] host)")
    scratch = node.settings.data_path / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    package = scratch / f"push-{uuid.uuid4().hex}.zip"
    origin = node.settings.organisation_id or node.home_community_id
    try:
        write_package(package, [(sub, dict(files))], author_text=origin, origin=origin)
        message = xdm_message(
            from_address=smtp.from_address,
            to=entry.xdm_email,
            subject=f"XDM package {reference}",
            body=(
                f"This mail carries an IHE XDM package ({len(files)} document(s)), reference {reference}.\n"
                "Open it with an XDM importer, or open INDEX.HTM in the ZIP with a browser.\n"
            ),
            zip_path=package,
            filename=f"{reference}.zip",
        )
        send_message(smtp, message)
    finally:
        package.unlink(missing_ok=True)


def _audit(
    node: Node,
    entry: Community,
    sub: Submission,
    *,
    ok: bool,
    description: str,
    kind: Code | None = None,
    peer: str = "",
) -> None:
    ss = sub.submission_sets[0]
    kind = kind or (audits.ITI_80 if entry.push_transaction == "ITI-80" else audits.ITI_41)
    record = node.push_record(
        kind,
        ok=ok,
        export=True,
        peer=peer or entry.push_url or entry.xdm_email,
        patient_ids=(str(ss.patient_id),) if ss.patient_id else (),
        submission_set_id=ss.unique_id,
        description=description,
        event=f"push {kind.code}",
    )
    node.audit.append([record])


__all__ = [
    "DELIVERED",
    "FAILED",
    "MAILED",
    "PushOrder",
    "directory",
    "find_recipient",
    "intended_recipient",
    "push",
    "study_images",
]
