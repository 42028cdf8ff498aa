"""``xds consent grant|deny|revoke|list|emergencies`` and ``xds audit list``: the local consent registry and the
audit trail from the command line (the same database as the node started with ``--config``).

Exit status: 0 done; 1 nothing to revoke; 2 usage error (a bad patient id, time or scope).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from xds.config import Settings
from xds.consent.local import COMMUNITY, DENY, EMERGENCY, EVERYONE, GRANT, ORGANISATION, Directive
from xds.model.hl7 import CX

if TYPE_CHECKING:
    from xds.node import Node
    from xds.store.consent import EmergencyAccess

_WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def add_parsers(sub: Any, with_config: _WithConfig) -> None:
    """Add the ``consent`` and ``audit`` commands to the ``xds`` parser."""
    consent = sub.add_parser("consent", help="the local consent registry (patients' directives)")
    csub = consent.add_subparsers(dest="consent_command", required=True)
    for name, text in ((GRANT, "record that a patient permits access"), (DENY, "record that a patient refuses")):
        p = with_config(csub.add_parser(name, help=text))
        p.add_argument("patient", help="the patient id (CX, e.g. 123456782^^^&2.16.840.1.113883.2.4.6.3&ISO)")
        who = p.add_mutually_exclusive_group()
        who.add_argument("--community", metavar="HOME", help="only requests through this community (urn:oid:...)")
        who.add_argument("--organisation", metavar="URA", help="only requests from this organisation")
        if name == DENY:
            who.add_argument("--emergency", action="store_true", help="refuse emergency access (break-the-glass)")
        p.add_argument("--category", default="", help="only this data category (a classCode code)")
        p.add_argument("--from", dest="valid_from", metavar="TIME", help="in force from (ISO 8601; default: open)")
        p.add_argument("--until", dest="valid_until", metavar="TIME", help="in force until (ISO 8601; default open)")
        p.add_argument("--source", default="", help="where the directive comes from (a form, a portal, ...)")
    rv = with_config(csub.add_parser("revoke", help="revoke a directive by its number (kept in the history)"))
    rv.add_argument("id", type=int)
    lst = with_config(csub.add_parser("list", help="list directives in force (of one patient)"))
    lst.add_argument("patient", nargs="?")
    lst.add_argument("--all", action="store_true", help="include revoked directives")
    lst.add_argument("--json", action="store_true", help="print JSON")
    em = with_config(csub.add_parser("emergencies", help="list emergency accesses (for the patients' notice)"))
    em.add_argument("patient", nargs="?")
    em.add_argument("--json", action="store_true", help="print JSON")

    audit = sub.add_parser("audit", help="the ATNA audit trail")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    al = with_config(asub.add_parser("list", help="list audit records, newest last"))
    al.add_argument("--patient", metavar="ID", help="only records about this patient")
    al.add_argument("--since", metavar="TIME", help="only records since this time (ISO 8601)")
    al.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    al.add_argument("--xml", action="store_true", help="print each DICOM audit message")
    al.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run a ``consent`` or ``audit`` command."""
    from xds.node import Node

    node = Node.open(settings)
    try:
        if args.command == "audit":
            return _audit(args, node)
        return _consent(args, node)
    except _Usage as exc:
        print(f"xds: {exc}", file=sys.stderr)
        return 2
    finally:
        node.close()


class _Usage(Exception):
    pass


def _consent(args: argparse.Namespace, node: Node) -> int:
    command = args.consent_command
    if command in (GRANT, DENY):
        who, who_id = EVERYONE, ""
        if args.community is not None:
            if not args.community.strip():
                raise _Usage("--community names a homeCommunityId (urn:oid:...)")
            who, who_id = COMMUNITY, args.community.strip()
        elif args.organisation is not None:
            if not args.organisation.strip():
                raise _Usage("--organisation names an organisation (URA)")
            who, who_id = ORGANISATION, args.organisation.strip()
        elif getattr(args, "emergency", False):
            who = EMERGENCY
        try:
            directive = Directive(
                patient_id=_patient(args.patient),
                decision=command,
                who=who,
                who_id=who_id,
                category=args.category,
                valid_from=_time(args.valid_from),
                valid_until=_time(args.valid_until),
                source=args.source,
            )
        except ValueError as exc:
            raise _Usage(str(exc)) from None
        stored = node.consents.add(directive)
        print(f"{stored.describe()} for {stored.patient_id}")
        return 0
    if command == "revoke":
        if node.consents.revoke(args.id):
            print(f"revoked #{args.id}")
            return 0
        print(f"xds: no directive #{args.id} in force", file=sys.stderr)
        return 1
    if command == "emergencies":
        rows = node.consents.emergency_accesses(_patient(args.patient) if args.patient else None)
        if args.json:
            print(json.dumps([_access(r) for r in rows]))
        else:
            for r in rows:
                print(f"{r.at.isoformat()}\t{r.patient_id}\t{r.requester}\t{r.organisation_id}\t{r.reason}")
        return 0
    patient = _patient(args.patient) if args.patient else None
    directives = node.consents.listing(patient, include_revoked=args.all)
    if args.json:
        print(json.dumps([_directive(d) for d in directives]))
    else:
        for d in directives:
            period = f"{_text(d.valid_from) or '-'}..{_text(d.valid_until) or '-'}"
            revoked = f"\trevoked {_text(d.revoked)}" if d.revoked else ""
            print(f"#{d.id}\t{d.patient_id}\t{d.describe()}\t{period}\t{d.source}{revoked}")
    return 0


def _audit(args: argparse.Namespace, node: Node) -> int:
    patient = _patient(args.patient) if args.patient else None
    rows = node.audit.listing(patient_id=patient, since=_time(args.since), limit=max(1, args.limit))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "recorded": r.recorded.isoformat(),
                        "event": r.event,
                        "outcome": r.outcome,
                        "patient_id": r.patient_id,
                        "sent": _text(r.sent),
                        **({"xml": r.xml.decode()} if args.xml else {}),
                    }
                    for r in rows
                ]
            )
        )
        return 0
    for r in rows:
        sent = f"sent {_text(r.sent)}" if r.sent else "unsent"
        print(f"#{r.id}\t{r.recorded.isoformat()}\t{r.event}\toutcome {r.outcome}\t{r.patient_id or '-'}\t{sent}")
        if args.xml:
            print(r.xml.decode())
    return 0


def _patient(text: str) -> str:
    try:
        cx = CX.parse(text)
    except ValueError as exc:
        raise _Usage(str(exc)) from None
    if not cx.is_xds_patient_id():
        raise _Usage(f"{text!r} is not an XDS patient id (id^^^&OID&ISO)")
    return str(cx)


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise _Usage(f"{text!r} is not an ISO 8601 time (e.g. 2026-12-01 or 2026-12-01T08:00:00+01:00)") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _text(at: datetime | None) -> str:
    return at.isoformat() if at is not None else ""


def _directive(d: Directive) -> dict[str, object]:
    return {
        "id": d.id,
        "patient_id": d.patient_id,
        "decision": d.decision,
        "who": d.who,
        "who_id": d.who_id,
        "category": d.category,
        "valid_from": _text(d.valid_from),
        "valid_until": _text(d.valid_until),
        "source": d.source,
        "recorded": _text(d.recorded),
        "revoked": _text(d.revoked),
    }


def _access(r: EmergencyAccess) -> dict[str, object]:
    return {
        "id": r.id,
        "patient_id": r.patient_id,
        "at": r.at.isoformat(),
        "requester": r.requester,
        "organisation_id": r.organisation_id,
        "reason": r.reason,
        "notified": _text(r.notified),
    }


__all__ = ["add_parsers", "run"]
