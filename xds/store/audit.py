"""The durable ATNA spool: audit messages wait in the node's database until the forwarder delivered them.

A record is written before the answer it audits is sent (or in the transaction of the work it records), so
a crash or an unreachable Audit Record Repository loses nothing; the forwarder marks records ``sent`` only
after the repository took them (:mod:`xds.audit.syslog`).

Within a request (:func:`batch`), :meth:`SqlAuditSpool.record` collects records (the consent decisions) instead
of writing each: the SOAP adapter writes them with the transaction's own record in one database transaction
(one commit, one fsync) before the answer goes out, and withholds the answer when that fails.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Connection, Table, func, insert, select, update

from registry_schema.tables import AuditRecordRow
from xds.audit.message import OBJECT_PERSON, AuditMessage, render
from xds.store.sql import SqlRegistryStore

AUD = cast(Table, AuditRecordRow.__table__)


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One audit message to keep: what it records (``event``, e.g. ``ITI-18``), its outcome and patient."""

    event: str
    outcome: int
    xml: bytes
    patient_id: str = ""
    recorded: datetime | None = None


@dataclass(frozen=True, slots=True)
class SpooledRecord:
    """A kept audit message, as listed."""

    id: int
    recorded: datetime
    event: str
    outcome: int
    patient_id: str
    xml: bytes
    sent: datetime | None


_BATCH: ContextVar[list[SpoolRecord] | None] = ContextVar("xds_audit_batch", default=None)
_SEEN: ContextVar[set[str] | None] = ContextVar("xds_audit_batch_seen", default=None)


@contextmanager
def batch() -> Iterator[list[SpoolRecord]]:
    """Collect the records :meth:`SqlAuditSpool.record` is given in this context (the caller writes them).

    The context is copied into worker threads (``anyio.to_thread``), so records of work done there land too.
    """
    pending: list[SpoolRecord] = []
    token, seen = _BATCH.set(pending), _SEEN.set(set())
    try:
        yield pending
    finally:
        _BATCH.reset(token)
        _SEEN.reset(seen)


def first_in_batch(key: str) -> bool:
    """True the first time ``key`` is asked about within the current :func:`batch` (always True outside one):
    for what should happen once per request, such as an emergency-access record per patient."""
    seen = _SEEN.get()
    if seen is None:
        return True
    if key in seen:
        return False
    seen.add(key)
    return True


def spool_record(message: AuditMessage, event: str = "") -> SpoolRecord:
    """``message`` rendered as a spool record: ``event`` (default its first EventTypeCode), outcome, patient,
    and its time as the recording time."""
    patients = [o.id for o in message.objects if o.type_code == OBJECT_PERSON]
    kind = event or (message.type_codes[0].code if message.type_codes else message.event_id.code)
    return SpoolRecord(
        event=kind,
        outcome=message.outcome,
        xml=render(message),
        patient_id=patients[0] if patients else "",
        recorded=message.time,
    )


class SqlAuditSpool:
    """The spool on the registry store's database (implements the forwarder's ``Outbox``)."""

    def __init__(self, store: SqlRegistryStore) -> None:
        self._store = store

    def append(self, records: Sequence[SpoolRecord], *, conn: Connection | None = None) -> None:
        """Keep ``records``; in ``conn``'s transaction when given (the work they record), else in their own."""
        if not records:
            return
        now = datetime.now(UTC)
        rows = [
            {
                "recorded": (r.recorded or now).astimezone(UTC).isoformat(timespec="milliseconds"),
                "event": r.event[:64],
                "outcome": r.outcome,
                "patient_id": r.patient_id[:256] or None,  # the column's width; a longer id was never a patient
                "xml": r.xml.decode("utf-8"),
                "sent": None,
            }
            for r in records
        ]
        if conn is not None:
            conn.execute(insert(AUD), rows)
            return
        with self._store.writing() as own:
            own.execute(insert(AUD), rows)

    def record(self, records: Sequence[SpoolRecord]) -> None:
        """Keep ``records``: into the request's :func:`batch` when there is one, else written now."""
        pending = _BATCH.get()
        if pending is not None:
            pending.extend(records)
            return
        self.append(records)

    def unsent(self, limit: int) -> list[tuple[int, bytes]]:
        """The oldest ``limit`` records not yet delivered: (id, audit message)."""
        stmt = select(AUD.c.id, AUD.c.xml).where(AUD.c.sent.is_(None)).order_by(AUD.c.id).limit(limit)
        with self._store.engine.connect() as conn:
            return [(int(r.id), r.xml.encode("utf-8")) for r in conn.execute(stmt)]

    def mark_sent(self, ids: Sequence[int]) -> None:
        """Record that the Audit Record Repository took these records."""
        if not ids:
            return
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self._store.writing() as conn:
            conn.execute(update(AUD).where(AUD.c.id.in_(list(ids))).values(sent=stamp))

    def listing(
        self, *, patient_id: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[SpooledRecord]:
        """The newest ``limit`` records (of one patient, since a time), oldest first."""
        stmt = select(AUD).order_by(AUD.c.id.desc()).limit(limit)
        if patient_id is not None:
            stmt = stmt.where(AUD.c.patient_id == patient_id)
        if since is not None:
            stmt = stmt.where(AUD.c.recorded >= since.astimezone(UTC).isoformat(timespec="milliseconds"))
        with self._store.engine.connect() as conn:
            rows = list(conn.execute(stmt))
        return [
            SpooledRecord(
                id=int(r.id),
                recorded=datetime.fromisoformat(r.recorded),
                event=r.event,
                outcome=int(r.outcome),
                patient_id=r.patient_id or "",
                xml=r.xml.encode("utf-8"),
                sent=datetime.fromisoformat(r.sent) if r.sent else None,
            )
            for r in reversed(rows)
        ]

    def count_unsent(self) -> int:
        """How many records wait for delivery (for /health and /metrics)."""
        with self._store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(AUD).where(AUD.c.sent.is_(None))).scalar_one())


__all__ = ["SpoolRecord", "SpooledRecord", "SqlAuditSpool", "batch", "first_in_batch", "spool_record"]
