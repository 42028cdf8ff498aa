"""``xds dicom ingest DIR|FILE... --patient ID``, ``xds dicom import DIR|FILE... --sender NAME`` and
``xds dicom bsn-report``: DICOM studies as XDS-I.b manifests,
and how well senders put the BSN into DICOM (the same database as the node started with ``--config``).

Exit status: 0 done; 1 refused (no DICOM file, an unknown patient, a conflicting instance, the registry refused
a manifest); 2 usage error (an unknown mailbox too, :mod:`xds.cli_report`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xds.cli_report import REPORTED, report_failure
from xds.config import Settings

_WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
BUCKETS = ("correct", "wrong-tag", "bad-check", "inconsistent", "missing")


def add_parsers(sub: Any, with_config: _WithConfig) -> None:
    """Add the ``dicom`` commands to the ``xds`` parser."""
    dicom = sub.add_parser("dicom", help="DICOM studies (XDS-I.b) and the BSN in DICOM")
    dsub = dicom.add_subparsers(dest="dicom_command", required=True)
    ing = with_config(dsub.add_parser("ingest", help="store a study and register its KOS manifest"))
    ing.add_argument("paths", nargs="+", type=Path, metavar="DIR|FILE")
    ing.add_argument("--patient", required=True, metavar="LOCALID", help="the local patient id (CX)")
    ing.add_argument("--no-pr", action="store_true", help="leave presentation states out")
    ing.add_argument(
        "--force", action="store_true", help="file images whose ids disagree or name another BSN (you checked them)"
    )
    ing.add_argument("--json", action="store_true", help="print JSON")
    imp = with_config(
        dsub.add_parser("import", help="file received studies under the patient their BSN names (else: inbox)")
    )
    imp.add_argument("paths", nargs="+", type=Path, metavar="DIR|FILE")
    imp.add_argument("--sender", required=True, help="who sent them (the BSN report counts per sender)")
    imp.add_argument("--mailbox", help="the mailbox for studies that wait (default: the default mailbox)")
    rep = with_config(dsub.add_parser("bsn-report", help="studies per BSN quality bucket"))
    rep.add_argument("--since", metavar="DATE", help="only studies received since (ISO 8601 date or time)")
    rep.add_argument("--by", choices=("sender",), help="one row per sender")
    rep.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run a ``dicom`` command."""
    from xds.imaging import bsn_report, ingest, receive_studies
    from xds.node import Node

    node = Node.open(settings)
    try:
        if args.dicom_command == "bsn-report":
            try:
                since = _utc(datetime.fromisoformat(args.since)) if args.since else None
            except ValueError:
                print(f"xds: --since {args.since!r} is not an ISO 8601 date or time", file=sys.stderr)
                return 2
            report = bsn_report(node, since=since, by_sender=args.by == "sender")
            if args.json:
                print(json.dumps(report, indent=2))
                return 0
            print(f"{'sender':<24} " + " ".join(f"{b:>12}" for b in BUCKETS) + f" {'total':>8}")
            for sender, counts in report.items():
                row = " ".join(f"{counts.get(b, 0):>12}" for b in BUCKETS)
                print(f"{sender:<24} {row} {sum(counts.values()):>8}")
            return 0
        if args.dicom_command == "import":
            received = receive_studies(node, args.paths, sender=args.sender, mailbox=args.mailbox)
            for d in received.filed:
                print(f"filed study {d.study_uid}: {d.instances} instance(s), manifest {d.manifest_unique_id}")
            for reference in received.waiting:
                print(f"waiting {reference}: not filed (see xds inbox show {reference})")
            for reason in received.skipped:
                print(f"skipped {reason}", file=sys.stderr)
            for reason in received.failed:
                print(f"xds: failed {reason}", file=sys.stderr)
            return 1 if received.failed else 0
        done, skipped = ingest(
            node,
            args.paths,
            patient=args.patient,
            include_presentation_states=not args.no_pr,
            progress=_progress,
            force=args.force,
        )
        print(file=sys.stderr)
        if args.json:
            rows = [
                {
                    "study_instance_uid": d.study_uid,
                    "added": d.added,
                    "instances": d.instances,
                    "manifest_unique_id": d.manifest_unique_id,
                    "replaced": d.replaced,
                    "bsn": d.bsn_bucket,
                }
                for d in done
            ]
            print(json.dumps({"studies": rows, "skipped": skipped}, indent=2))
            return 0
        for d in done:
            again = f", replaces {d.replaced}" if d.replaced else ""
            added = f"{d.added} new of {d.instances} instance(s)"
            print(f"study {d.study_uid}: {added}, manifest {d.manifest_unique_id}{again} (BSN: {d.bsn_bucket})")
        for reason in skipped:
            print(f"skipped {reason}", file=sys.stderr)
        return 0
    except REPORTED as exc:
        return report_failure(exc)
    finally:
        node.close()


def _utc(at: datetime) -> datetime:
    """A time given with an offset, converted to UTC; one without, taken as UTC."""
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def _progress(done: int, total: int) -> None:
    """A one-line progress bar on stderr."""
    width = 30
    filled = width * done // max(total, 1)
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} instances", end="", file=sys.stderr, flush=True)


__all__ = ["add_parsers", "run"]
