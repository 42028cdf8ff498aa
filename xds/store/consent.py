"""The local consent registry and the emergency-access records in the node's database.

Directives are never deleted: ``revoke`` stamps them, so the history of what a patient decided stays
(an auditor asks what was in force when). Times are ISO 8601 UTC strings, which order lexically.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, update

from registry_schema.tables import ConsentRow, EmergencyAccessRow
from xds.consent.local import Directive
from xds.store.sql import SqlRegistryStore

CON = cast(Table, ConsentRow.__table__)
EMA = cast(Table, EmergencyAccessRow.__table__)


def _stamp(at: datetime | None) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds") if at is not None else ""


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True, slots=True)
class EmergencyAccess:
    """One emergency access to a patient's data (for the patient's notification)."""

    id: int
    patient_id: str
    at: datetime
    requester: str
    organisation_id: str
    reason: str
    notified: datetime | None


class SqlConsentStore:
    """Consent directives and emergency-access records, on the registry store's database and writer queue."""

    def __init__(self, store: SqlRegistryStore) -> None:
        self._store = store

    def add(self, directive: Directive) -> Directive:
        """Store a new directive; returns it with its id and recording time."""
        recorded = directive.recorded or datetime.now(UTC)
        row = {
            "patient_id": directive.patient_id,
            "decision": directive.decision,
            "who": directive.who,
            "who_id": directive.who_id,
            "category": directive.category,
            "valid_from": _stamp(directive.valid_from),
            "valid_until": _stamp(directive.valid_until),
            "source": directive.source,
            "recorded": _stamp(recorded),
            "revoked": None,
        }
        with self._store.writing() as conn:
            new_id = conn.execute(insert(CON).values(row).returning(CON.c.id)).scalar_one()
        return _directive({**row, "id": new_id})

    def revoke(self, directive_id: int, *, at: datetime | None = None) -> bool:
        """Revoke a directive from ``at`` (now); False when there is no such directive in force."""
        with self._store.writing() as conn:
            result = conn.execute(
                update(CON)
                .where(CON.c.id == directive_id, CON.c.revoked.is_(None))
                .values(revoked=_stamp(at or datetime.now(UTC)))
            )
            return bool(result.rowcount)

    def directives(self, patient_id: str) -> list[Directive]:
        """Every directive of one patient, revoked ones included (the policy ignores them)."""
        with self._store.engine.connect() as conn:
            rows = conn.execute(select(CON).where(CON.c.patient_id == patient_id).order_by(CON.c.id))
            return [_directive(r._mapping) for r in rows]

    def listing(self, patient_id: str | None = None, *, include_revoked: bool = False) -> list[Directive]:
        """Directives by id, of one patient or of all."""
        stmt = select(CON).order_by(CON.c.id)
        if patient_id is not None:
            stmt = stmt.where(CON.c.patient_id == patient_id)
        if not include_revoked:
            stmt = stmt.where(CON.c.revoked.is_(None))
        with self._store.engine.connect() as conn:
            return [_directive(r._mapping) for r in conn.execute(stmt)]

    def record_emergency(
        self, *, patient_id: str, at: datetime, requester: str, organisation_id: str, reason: str
    ) -> int:
        """Keep an emergency access for the patient's notification; returns its id."""
        row = {
            "patient_id": patient_id[:256],
            "at": _stamp(at),
            "requester": requester[:512],
            "organisation_id": organisation_id[:128],
            "reason": reason[:512],
            "notified": None,
        }
        with self._store.writing() as conn:
            return int(conn.execute(insert(EMA).values(row).returning(EMA.c.id)).scalar_one())

    def emergency_accesses(self, patient_id: str | None = None) -> list[EmergencyAccess]:
        """Emergency accesses by time, of one patient or of all."""
        stmt = select(EMA).order_by(EMA.c.at, EMA.c.id)
        if patient_id is not None:
            stmt = stmt.where(EMA.c.patient_id == patient_id)
        with self._store.engine.connect() as conn:
            return [
                EmergencyAccess(
                    id=r.id,
                    patient_id=r.patient_id,
                    at=datetime.fromisoformat(r.at),
                    requester=r.requester,
                    organisation_id=r.organisation_id,
                    reason=r.reason,
                    notified=_time(r.notified),
                )
                for r in conn.execute(stmt)
            ]


def _directive(r: Any) -> Directive:
    return Directive(
        id=int(r["id"]),
        patient_id=r["patient_id"],
        decision=r["decision"],
        who=r["who"],
        who_id=r["who_id"],
        category=r["category"],
        valid_from=_time(r["valid_from"]),
        valid_until=_time(r["valid_until"]),
        source=r["source"],
        recorded=_time(r["recorded"]),
        revoked=_time(r["revoked"]),
    )


__all__ = ["EmergencyAccess", "SqlConsentStore"]
