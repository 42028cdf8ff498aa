"""``xds inbox list|show|accept|reject|reconcile``, ``xds xdm export|import`` and ``xds push`` / ``xds push
status``: the mailboxes of pushed deliveries, XDM packages and sending pushes from the command line (the same
database as the node started with ``--config``).

Exit status: 0 done; 1 refused (the registry refused an import, a package was refused, the delivery is settled,
the patient is not known here, a push failed, a document's content is missing); 2 usage error (no such delivery,
push or mailbox, missing options).
"""

from __future__ import annotations

import argparse
import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xds.cli_report import REPORTED, report_failure
from xds.config import Settings
from xds.recipient.model import STATUSES, Delivery

if TYPE_CHECKING:
    from xds.node import Node

_WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def add_parsers(sub: Any, with_config: _WithConfig) -> None:
    """Add the ``inbox`` and ``xdm`` commands to the ``xds`` parser."""
    inbox = sub.add_parser("inbox", help="mailboxes of pushed deliveries (XDR, ITI-80, XDM)")
    isub = inbox.add_subparsers(dest="inbox_command", required=True)
    lst = with_config(isub.add_parser("list", help="list deliveries (open ones unless --status says otherwise)"))
    lst.add_argument("mailbox", nargs="?", help="only this mailbox")
    lst.add_argument("--status", choices=("open", "all", *STATUSES), default="open")
    lst.add_argument("--limit", type=int, default=200)
    lst.add_argument("--json", action="store_true", help="print JSON")
    show = with_config(isub.add_parser("show", help="a delivery: sender, message, documents, history"))
    show.add_argument("reference")
    show.add_argument("--json", action="store_true", help="print JSON")
    acc = with_config(isub.add_parser("accept", help="import a delivery into this node's registry and repository"))
    acc.add_argument("reference")
    rej = with_config(isub.add_parser("reject", help="reject a delivery (its documents are deleted)"))
    rej.add_argument("reference")
    rej.add_argument("--reason", required=True, help="why (kept in the delivery's history)")
    rec = with_config(isub.add_parser("reconcile", help="import a delivery of an unknown patient as a local patient"))
    rec.add_argument("reference")
    rec.add_argument("--patient", required=True, metavar="LOCALID", help="the local patient id (CX)")
    rec.add_argument(
        "--force", action="store_true", help="DICOM: file images whose ids disagree (after checking them yourself)"
    )

    xdm = sub.add_parser("xdm", help="XDM packages (ITI-32): export and import ZIP files")
    xsub = xdm.add_subparsers(dest="xdm_command", required=True)
    exp = with_config(xsub.add_parser("export", help="write a patient's documents into an XDM ZIP package"))
    exp.add_argument("--patient", required=True, metavar="ID")
    exp.add_argument("out", type=Path, help="the ZIP file to write")
    imp = with_config(xsub.add_parser("import", help="import an XDM ZIP package as deliveries"))
    imp.add_argument("package", type=Path)
    imp.add_argument("--mailbox", help="deliver to this mailbox (default: by its intendedRecipient)")

    p = with_config(
        sub.add_parser(
            "push",
            help="send documents to a directory entry's mailbox (XDR, ITI-80, else XDM by e-mail);"
            " 'xds push status [REFERENCE]' lists what was sent",
        )
    )
    p.add_argument("files", nargs="*", type=str, metavar="FILE", help="the documents (or: status [REFERENCE])")
    p.add_argument("--study", metavar="UID", help="also send this DICOM study held here (its stored instances)")
    p.add_argument("--to", metavar="RECIPIENT", help="a directory entry: its name or homeCommunityId")
    p.add_argument("--patient", metavar="ID", help="the patient id (CX) the documents are about")
    p.add_argument("--department", default="", help="the receiving department (intendedRecipient XON name)")
    p.add_argument("--organisation", default="", help="the receiving organisation's id, e.g. its URA")
    p.add_argument("--person", default="", help="the addressed person: an id (UZI/AGB) or an XCN")
    p.add_argument("--comment", default="", help="a message for the receiver (SubmissionSet comments)")
    p.add_argument("--title", default="", help="a title for the submission and documents")
    p.add_argument("--urgent", action="store_true", help="notify the receiver at once (no quiet period)")
    p.add_argument("--json", action="store_true", help="status: print JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run an ``inbox`` or ``xdm`` command."""
    from xds.node import Node

    node = Node.open(settings)
    try:
        if args.command == "push":
            return _push(args, node)
        if args.command == "xdm":
            return _xdm(args, node)
        return _inbox(args, node)
    except REPORTED as exc:
        return report_failure(exc)
    finally:
        node.close()


def _inbox(args: argparse.Namespace, node: Node) -> int:
    command = args.inbox_command
    if command == "list":
        status = None if args.status == "all" else args.status
        rows = node.inbox.listing(mailbox=args.mailbox, status=status, limit=args.limit)
        if args.json:
            print(json.dumps([_summary(d) for d in rows], indent=2))
            return 0
        for d in rows:
            flag = " URGENT" if d.urgent else ""
            print(
                f"{d.reference}  {d.received:%Y-%m-%d %H:%M}  {d.mailbox:<12} {d.status:<15} "
                f"{len(d.documents)} doc(s){flag}  {d.sender}  {_one_line(d.message)}"
            )
        return 0
    delivery = node.inbox.get(args.reference)
    if delivery is None:
        raise KeyError(f"no delivery {args.reference}")
    if command == "show":
        if args.json:
            print(json.dumps(_detail(delivery), indent=2))
        else:
            _print_detail(delivery)
        return 0
    if command == "accept":
        done = node.accept_delivery(args.reference)
    elif command == "reconcile":
        done = node.accept_delivery(args.reference, args.patient, force=args.force)
    else:
        done = node.reject_delivery(args.reference, args.reason)
    print(f"{done.reference}: {done.history[-1].detail}")
    return 0


def _xdm(args: argparse.Namespace, node: Node) -> int:
    from xds.exchange import export_xdm, import_xdm
    from xds.recipient.model import TRANSPORT_XDM

    if args.xdm_command == "export":
        n = export_xdm(node, args.patient, args.out)
        print(f"{args.out}: {n} document(s)")
        return 0
    stored = import_xdm(node, args.package, transport=TRANSPORT_XDM, sender="xds xdm import", mailbox=args.mailbox)
    for d in stored:
        print(f"{d.reference}  {d.mailbox}  {d.status}  {len(d.documents)} doc(s)")
    if not stored:
        print("nothing new: the package's submissions were delivered before")
    return 0


def _push(args: argparse.Namespace, node: Node) -> int:
    from xds.model.hl7 import CX
    from xds.push import PushOrder, push, study_images
    from xds.store.pushes import SqlPushes

    if args.files and args.files[0] == "status":
        pushes = SqlPushes(node.store)
        if len(args.files) > 2:
            raise KeyError("xds push status takes at most one reference")
        if len(args.files) == 2:
            found = pushes.get(args.files[1])
            if found is None:
                raise KeyError(f"no push {args.files[1]}")
            rows = [found]
        else:
            rows = pushes.listing()
        if args.json:
            print(json.dumps([_push_summary(x) for x in rows], indent=2))
            return 0
        for x in rows:
            print(
                f"{x.reference}  {x.created:%Y-%m-%d %H:%M}  {x.recipient:<16} {x.status:<9} {x.transport or '-':<9} "
                f"{x.documents} doc(s)  {x.detail}"
            )
            for e in x.history:
                print(f"    {e.at.isoformat(timespec='seconds')}  {e.status:<9} {e.detail}")
        return 0
    if not args.to or not args.patient:
        raise KeyError("xds push needs --to RECIPIENT and --patient ID")
    try:
        patient = CX.parse(args.patient)
    except ValueError as exc:
        raise KeyError(f"--patient {args.patient!r}: {exc}") from None
    scratch = node.settings.data_path / "tmp" / f"push-study-{uuid.uuid4().hex}"
    order = PushOrder(
        recipient=args.to,
        patient=patient,
        files=[Path(f) for f in args.files],
        department=args.department,
        organisation=args.organisation,
        person=args.person,
        comment=args.comment,
        urgent=args.urgent,
        title=args.title,
        images=study_images(node, args.study, str(patient), scratch=scratch) if args.study else (),
    )
    try:
        done = push(node, order)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{done.reference}: {done.status} ({done.transport or '-'}): {done.detail}")
    return 0 if done.status in ("delivered", "mailed") else 1


def _push_summary(x: Any) -> dict[str, Any]:
    return {
        "reference": x.reference,
        "recipient": x.recipient,
        "patient_id": x.patient_id,
        "status": x.status,
        "transport": x.transport,
        "documents": x.documents,
        "created": x.created.isoformat(),
        "updated": x.updated.isoformat(),
        "detail": x.detail,
        "history": [{"at": e.at.isoformat(), "status": e.status, "detail": e.detail} for e in x.history],
    }


def _one_line(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _summary(d: Delivery) -> dict[str, Any]:
    return {
        "reference": d.reference,
        "mailbox": d.mailbox,
        "status": d.status,
        "received": d.received.isoformat(),
        "transport": d.transport,
        "sender": d.sender,
        "urgent": d.urgent,
        "message": d.message,
        "documents": len(d.documents),
        "patient_id": d.patient_id,
        "local_patient_id": d.local_patient_id,
    }


def _detail(d: Delivery) -> dict[str, Any]:
    return {
        **_summary(d),
        "submission_set_unique_id": d.submission_set_uid,
        "intended_recipients": list(d.recipients),
        "documents": [
            {"unique_id": x.unique_id, "mime_type": x.mime_type, "size": x.size, "sha1": x.sha1} for x in d.documents
        ],
        "history": [{"at": e.at.isoformat(), "status": e.status, "detail": e.detail} for e in d.history],
    }


def _print_detail(d: Delivery) -> None:
    print(f"delivery   {d.reference}  ({d.status}{', URGENT' if d.urgent else ''})")
    print(f"mailbox    {d.mailbox}")
    print(f"received   {d.received.isoformat(timespec='seconds')} by {d.transport} from {d.sender}")
    print(f"patient    sender's id {d.patient_id or '(none)'}; local {d.local_patient_id or '(unknown)'}")
    for r in d.recipients:
        print(f"addressed  {r}")
    if d.message:
        print(f"message    {d.message}")
    for x in d.documents:
        print(f"document   {x.unique_id}  {x.mime_type}  {x.size} bytes")
    for e in d.history:
        print(f"history    {e.at.isoformat(timespec='seconds')}  {e.status:<15} {e.detail}")


__all__ = ["add_parsers", "run"]
