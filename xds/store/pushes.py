"""The pushes this node sent (``xds push``), with every attempt, in the node's database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, update

from registry_schema.tables import PushEventRow, PushRow
from xds.store.inbox import stamp
from xds.store.sql import SqlRegistryStore

PUSH = cast(Table, PushRow.__table__)
PEV = cast(Table, PushEventRow.__table__)


@dataclass(frozen=True, slots=True)
class PushEvent:
    """One attempt or outcome."""

    at: datetime
    status: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Push:
    """A push as recorded: ``status`` is ``sending``, ``delivered`` (XDR/ITI-80 accepted), ``mailed`` (XDM by
    e-mail handed to the relay) or ``failed``."""

    id: int
    reference: str
    recipient: str
    patient_id: str
    submission_set_uid: str
    documents: int
    status: str
    transport: str
    created: datetime
    updated: datetime
    detail: str
    history: tuple[PushEvent, ...] = ()


class SqlPushes:
    """Pushes and their history, on the registry store's database."""

    def __init__(self, store: SqlRegistryStore) -> None:
        self._store = store

    def create(
        self, *, reference: str, recipient: str, patient_id: str, submission_set_uid: str, documents: int
    ) -> int:
        """Record a push about to be sent; its id."""
        now = stamp(datetime.now(UTC))
        row = {
            "reference": reference,
            "recipient": recipient,
            "patient_id": patient_id[:256],
            "submission_set_uid": submission_set_uid,
            "documents": documents,
            "status": "sending",
            "transport": "",
            "created": now,
            "updated": now,
            "detail": "",
        }
        with self._store.writing() as conn:
            push_id = int(conn.execute(insert(PUSH).values(row).returning(PUSH.c.id)).scalar_one())
            conn.execute(insert(PEV).values(push_id=push_id, at=now, status="sending", detail="created"))
        return push_id

    def record(
        self, push_id: int, status: str, detail: str, *, transport: str | None = None, final: bool = False
    ) -> None:
        """Add an attempt (``final``: also the push's outcome)."""
        now = stamp(datetime.now(UTC))
        with self._store.writing() as conn:
            conn.execute(insert(PEV).values(push_id=push_id, at=now, status=status, detail=detail[:4000]))
            changes: dict[str, Any] = {"updated": now}
            if transport is not None:
                changes["transport"] = transport
            if final:
                changes.update(status=status, detail=detail[:4000])
            conn.execute(update(PUSH).where(PUSH.c.id == push_id).values(changes))

    def listing(self, *, limit: int = 100) -> list[Push]:
        """The newest ``limit`` pushes, oldest first."""
        with self._store.engine.connect() as conn:
            rows = list(conn.execute(select(PUSH).order_by(PUSH.c.id.desc()).limit(limit)))
        return [_push(r) for r in reversed(rows)]

    def get(self, reference: str) -> Push | None:
        """One push with its history."""
        with self._store.engine.connect() as conn:
            row = conn.execute(select(PUSH).where(PUSH.c.reference == reference)).first()
            if row is None:
                return None
            events = tuple(
                PushEvent(datetime.fromisoformat(e.at), e.status, e.detail)
                for e in conn.execute(select(PEV).where(PEV.c.push_id == row.id).order_by(PEV.c.id))
            )
        return _push(row, events)


def _push(r: Any, history: tuple[PushEvent, ...] = ()) -> Push:
    return Push(
        id=int(r.id),
        reference=r.reference,
        recipient=r.recipient,
        patient_id=r.patient_id,
        submission_set_uid=r.submission_set_uid,
        documents=int(r.documents),
        status=r.status,
        transport=r.transport,
        created=datetime.fromisoformat(r.created),
        updated=datetime.fromisoformat(r.updated),
        detail=r.detail,
        history=history,
    )


__all__ = ["Push", "PushEvent", "SqlPushes"]
