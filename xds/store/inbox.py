"""The inbox in the node's database: deliveries, their documents and history, and notification digests.

Theory of operation
-------------------
A delivery is stored in one transaction with its documents' rows, its first history event and its place in a
notification digest (:meth:`SqlInbox.add`); the document bytes are in the document store before that commit
(fsynced) and published after it, like a repository's (:mod:`xds.store.documents`), and
:meth:`SqlInbox.recorded_contents` tells crash recovery which content a delivery holds. Work that must commit
with the delivery, such as the audit record of the request that brought it, runs through
:mod:`xds.store.hooks`.

Digests: a mailbox with notification addresses has at most one *open* digest per patient (``sent`` and
``claimed`` empty). Each delivery for that patient joins it and moves its ``due`` time to the end of the quiet
period (an urgent delivery makes it due now). A sender claims due digests one by one with a conditional update
(:meth:`SqlInbox.claim_due`), so two workers never mail the same digest; a claim older than ``stale_after``
seconds (a sender that died) is taken again. All of this is rows, so pending digests survive a restart.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from registry_schema.tables import DeliveryDocumentRow, DeliveryEventRow, DeliveryRow, DigestRow
from xds.recipient.model import (
    OPEN_STATUSES,
    AlreadyDelivered,
    DeliveredDocument,
    Delivery,
    Event,
    NewDelivery,
)
from xds.store.hooks import run_before_commit
from xds.store.sql import SqlRegistryStore

DEL = cast(Table, DeliveryRow.__table__)
DDOC = cast(Table, DeliveryDocumentRow.__table__)
DEV = cast(Table, DeliveryEventRow.__table__)
DIG = cast(Table, DigestRow.__table__)


def stamp(at: datetime) -> str:
    """A time as stored: ISO 8601 UTC with milliseconds (orders lexically)."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def new_reference() -> str:
    """A delivery reference for people and mails: ``D-`` and ten random hex digits."""
    return f"D-{secrets.token_hex(5)}"


@dataclass(frozen=True, slots=True)
class DueDigest:
    """A digest claimed for sending: its mailbox, how many deliveries and distinct documents, which ones."""

    id: int
    mailbox: str
    patient_key: str
    urgent: bool
    references: tuple[str, ...]
    documents: int


class SqlInbox:
    """Deliveries and digests, on the registry store's database and writer queue."""

    def __init__(self, store: SqlRegistryStore) -> None:
        self._store = store

    # --- deliveries ------------------------------------------------------------------------------------

    def add(
        self,
        deliveries: Sequence[tuple[NewDelivery, float | None]],
        *,
        notes: Sequence[tuple[str, str]] = (),
        at: datetime | None = None,
    ) -> list[Delivery]:
        """Store deliveries (one submission's, one per mailbox; or one XDM package's) in one transaction, each
        with its documents and first event; with a quiet period (seconds; None: its mailbox is not notified)
        each joins its patient's open digest. ``notes`` are ``(reference, detail)`` "re-sent" events for
        earlier deliveries, in the same transaction. Hooks of :mod:`xds.store.hooks` run in it too."""
        now = at or datetime.now(UTC)
        try:
            return self._add(deliveries, notes, now)
        except IntegrityError as exc:
            message = str(exc.orig)
            if "uq_delivery_resend" in message or "delivery.mailbox, delivery.submission_set_uid" in message:
                raise AlreadyDelivered(message) from None  # the same push committed meanwhile
            raise

    def _add(
        self,
        deliveries: Sequence[tuple[NewDelivery, float | None]],
        notes: Sequence[tuple[str, str]],
        now: datetime,
    ) -> list[Delivery]:
        stored: list[Delivery] = []
        with self._store.writing() as conn:
            for new, quiet_period in deliveries:
                reference = new_reference()
                delivery_id, detail = self._insert(conn, new, reference, now)
                if quiet_period is not None:
                    digest_id = self._join_digest(conn, new, now, quiet_period)
                    conn.execute(update(DEL).where(DEL.c.id == delivery_id).values(digest_id=digest_id))
                stored.append(_stored(new, delivery_id, reference, now, detail))
            for reference, detail in notes:
                self.note(reference, "re-sent", detail, conn=conn)
            run_before_commit(conn)
        return stored  # built from what was written: nothing after the commit can fail

    def _insert(self, conn: Connection, new: NewDelivery, reference: str, now: datetime) -> tuple[int, str]:
        row = {
            "reference": reference,
            "mailbox": new.mailbox,
            "status": new.status,
            "transport": new.transport,
            "sender": new.sender[:512],
            "patient_id": new.patient_id[:256],
            "local_patient_id": new.local_patient_id,
            "message": new.message,
            "urgent": new.urgent,
            "received": stamp(now),
            "submission_set_uid": new.submission_set_uid[:128],
            "recipients": "\n".join(new.recipients),
            "metadata_xml": new.metadata_xml.decode("utf-8"),
            "digest_id": None,
        }
        delivery_id = int(conn.execute(insert(DEL).values(row).returning(DEL.c.id)).scalar_one())
        if new.documents:
            conn.execute(
                insert(DDOC),
                [
                    {
                        "delivery_id": delivery_id,
                        "entry_id": d.entry_id,
                        "unique_id": d.unique_id,
                        "mime_type": d.mime_type,
                        "size": d.size,
                        "sha1": d.sha1,
                        "sha256": d.sha256,
                    }
                    for d in new.documents
                ],
            )
        detail = new.detail or f"received by {new.transport} from {new.sender or '(unknown sender)'}"
        conn.execute(insert(DEV).values(delivery_id=delivery_id, at=stamp(now), status=new.status, detail=detail))
        return delivery_id, detail

    @staticmethod
    def _join_digest(conn: Connection, new: NewDelivery, now: datetime, quiet_period: float) -> int:
        key = patient_key(new.local_patient_id, new.patient_id)
        due = stamp(now) if new.urgent else stamp(now + timedelta(seconds=quiet_period))
        open_digest = conn.execute(
            select(DIG.c.id, DIG.c.due, DIG.c.urgent).where(
                DIG.c.mailbox == new.mailbox,
                DIG.c.patient_key == key,
                DIG.c.sent.is_(None),
                DIG.c.claimed.is_(None),
            )
        ).first()
        if open_digest is not None:
            urgent = new.urgent or bool(open_digest.urgent)
            # routine: the quiet period restarts; urgent (this delivery or an earlier one): never later than it was
            changes: dict[str, Any] = {"due": min(due, open_digest.due) if urgent else due, "urgent": urgent}
            still_open = conn.execute(
                update(DIG)
                .where(DIG.c.id == open_digest.id, DIG.c.sent.is_(None), DIG.c.claimed.is_(None))
                .values(changes)
            ).rowcount
            if still_open:
                return int(open_digest.id)
            # a sender claimed it meanwhile (another worker, PostgreSQL): its mail is decided; open a new digest
        values = {
            "mailbox": new.mailbox,
            "patient_key": key,
            "opened": stamp(now),
            "due": due,
            "urgent": new.urgent,
            "claimed": None,
            "sent": None,
            "error": None,
        }
        return int(conn.execute(insert(DIG).values(values).returning(DIG.c.id)).scalar_one())

    def get(self, reference: str) -> Delivery | None:
        """A delivery with its documents and history, or None."""
        with self._store.engine.connect() as conn:
            row = conn.execute(select(DEL).where(DEL.c.reference == reference)).first()
            if row is None:
                return None
            return self._delivery(conn, row, full=True)

    def metadata(self, reference: str) -> bytes:
        """The SubmitObjectsRequest a delivery arrived with (KeyError when there is no such delivery)."""
        with self._store.engine.connect() as conn:
            xml = conn.execute(select(DEL.c.metadata_xml).where(DEL.c.reference == reference)).scalar()
        if xml is None:
            raise KeyError(reference)
        return str(xml).encode("utf-8")

    def find_resent(self, mailbox: str, submission_set_uid: str) -> Delivery | None:
        """The delivery of this mailbox that came with this SubmissionSet uniqueId (a re-send), or None.

        Rejected deliveries do not count: their documents are gone, so the same push again is a new delivery.
        """
        if not submission_set_uid:
            return None
        with self._store.engine.connect() as conn:
            row = conn.execute(
                select(DEL)
                .where(
                    DEL.c.mailbox == mailbox,
                    DEL.c.submission_set_uid == submission_set_uid,
                    DEL.c.status != "rejected",
                )
                .order_by(DEL.c.id)
            ).first()
            return None if row is None else self._delivery(conn, row, full=True)

    def listing(self, *, mailbox: str | None = None, status: str | None = None, limit: int = 200) -> list[Delivery]:
        """The newest ``limit`` deliveries (of a mailbox, in a status; ``open``: new or unknown-patient; ``all``
        or None: any), oldest first, with their documents."""
        stmt = select(DEL).order_by(DEL.c.id.desc()).limit(limit)
        if mailbox is not None:
            stmt = stmt.where(func.lower(DEL.c.mailbox) == mailbox.lower())
        if status == "open":
            stmt = stmt.where(DEL.c.status.in_(OPEN_STATUSES))
        elif status is not None and status != "all":
            stmt = stmt.where(DEL.c.status == status)
        with self._store.engine.connect() as conn:
            rows = list(conn.execute(stmt))
            return [self._delivery(conn, r, full=False) for r in reversed(rows)]

    def _delivery(self, conn: Connection, row: Any, *, full: bool) -> Delivery:
        docs = tuple(
            DeliveredDocument(
                entry_id=d.entry_id,
                unique_id=d.unique_id,
                mime_type=d.mime_type,
                size=int(d.size),
                sha1=d.sha1,
                sha256=d.sha256,
            )
            for d in conn.execute(select(DDOC).where(DDOC.c.delivery_id == row.id).order_by(DDOC.c.id))
        )
        history: tuple[Event, ...] = ()
        if full:
            history = tuple(
                Event(at=_time(e.at), status=e.status, detail=e.detail)
                for e in conn.execute(select(DEV).where(DEV.c.delivery_id == row.id).order_by(DEV.c.id))
            )
        return Delivery(
            id=int(row.id),
            reference=row.reference,
            mailbox=row.mailbox,
            status=row.status,
            transport=row.transport,
            sender=row.sender,
            patient_id=row.patient_id,
            local_patient_id=row.local_patient_id,
            message=row.message,
            urgent=bool(row.urgent),
            received=_time(row.received),
            submission_set_uid=row.submission_set_uid,
            recipients=tuple(x for x in row.recipients.split("\n") if x),
            documents=docs,
            history=history,
        )

    def note(self, reference: str, status: str, detail: str, *, conn: Connection | None = None) -> None:
        """Add a history event without changing the status (``status`` names the event, e.g. ``re-sent``)."""
        self._event(reference, status, detail, conn=conn, change=None)

    def set_status(
        self,
        reference: str,
        status: str,
        detail: str,
        *,
        local_patient_id: str | None = None,
        expect: Collection[str] = OPEN_STATUSES,
        conn: Connection | None = None,
    ) -> None:
        """Move a delivery to ``status`` (from one of ``expect``, else ValueError), with a history event; in
        ``conn``'s transaction when given (an import commits with the registry's transaction)."""
        changes: dict[str, Any] = {"status": status}
        if local_patient_id is not None:
            changes["local_patient_id"] = local_patient_id
        self._event(reference, status, detail, conn=conn, change=(changes, tuple(expect)))

    def _event(
        self,
        reference: str,
        status: str,
        detail: str,
        *,
        conn: Connection | None,
        change: tuple[dict[str, Any], tuple[str, ...]] | None,
    ) -> None:
        def run(c: Connection) -> None:
            delivery_id = c.execute(select(DEL.c.id).where(DEL.c.reference == reference)).scalar()
            if delivery_id is None:
                raise KeyError(reference)
            if change is not None:
                values, expect = change
                done = c.execute(
                    update(DEL).where(DEL.c.id == delivery_id, DEL.c.status.in_(expect)).values(values)
                ).rowcount
                if not done:
                    current = c.execute(select(DEL.c.status).where(DEL.c.id == delivery_id)).scalar()
                    raise ValueError(f"delivery {reference} is {current}, not {' or '.join(expect)}")
            c.execute(
                insert(DEV).values(delivery_id=delivery_id, at=stamp(datetime.now(UTC)), status=status, detail=detail)
            )

        if conn is not None:
            run(conn)
            return
        with self._store.writing() as own:
            run(own)

    def recorded_contents(self, sha256s: Collection[str]) -> set[str]:
        """Which of these content addresses an open or accepted delivery holds (crash recovery)."""
        if not sha256s:
            return set()
        stmt = (
            select(DDOC.c.sha256)
            .join(DEL, DEL.c.id == DDOC.c.delivery_id)
            .where(DDOC.c.sha256.in_(list(sha256s)), DEL.c.status != "rejected")
            .distinct()
        )
        with self._store.engine.connect() as conn:
            return {r[0] for r in conn.execute(stmt)}

    def counts(self) -> dict[str, int]:
        """Deliveries per status, and digests waiting to be mailed (for ``/health``)."""
        with self._store.engine.connect() as conn:
            out = {
                str(r[0]): int(r[1]) for r in conn.execute(select(DEL.c.status, func.count()).group_by(DEL.c.status))
            }
            out["pending_digests"] = int(
                conn.execute(select(func.count()).select_from(DIG).where(DIG.c.sent.is_(None))).scalar_one()
            )
        return out

    # --- digests ---------------------------------------------------------------------------------------

    def claim_due(self, *, now: datetime | None = None, stale_after: float = 300.0, limit: int = 50) -> list[DueDigest]:
        """Claim the digests due by ``now`` (and those a dead sender claimed over ``stale_after`` seconds ago)."""
        now = now or datetime.now(UTC)
        stale = stamp(now - timedelta(seconds=stale_after))
        ready = and_(DIG.c.sent.is_(None), DIG.c.due <= stamp(now))
        claimable = or_(DIG.c.claimed.is_(None), DIG.c.claimed < stale)
        with self._store.engine.connect() as conn:
            ids = [
                int(r.id)
                for r in conn.execute(select(DIG.c.id).where(ready, claimable).order_by(DIG.c.due).limit(limit))
            ]
        claimed: list[DueDigest] = []
        for digest_id in ids:
            with self._store.writing() as conn:
                taken = conn.execute(
                    update(DIG).where(DIG.c.id == digest_id, ready, claimable).values(claimed=stamp(now))
                ).rowcount
                if not taken:
                    continue  # another worker took it
                claimed.append(self._due(conn, digest_id))
        return claimed

    @staticmethod
    def _due(conn: Connection, digest_id: int) -> DueDigest:
        d = conn.execute(select(DIG).where(DIG.c.id == digest_id)).one()
        refs = tuple(
            r.reference
            for r in conn.execute(select(DEL.c.reference).where(DEL.c.digest_id == digest_id).order_by(DEL.c.id))
        )
        documents = conn.execute(
            select(func.count(func.distinct(DDOC.c.unique_id)))
            .select_from(DDOC.join(DEL, DEL.c.id == DDOC.c.delivery_id))
            .where(DEL.c.digest_id == digest_id)
        ).scalar_one()
        return DueDigest(int(d.id), d.mailbox, d.patient_key, bool(d.urgent), refs, int(documents))

    def digest_sent(self, digest_id: int, detail: str, *, at: datetime | None = None) -> None:
        """Record that a claimed digest was mailed (and note it in each delivery's history)."""
        when = stamp(at or datetime.now(UTC))
        with self._store.writing() as conn:
            conn.execute(update(DIG).where(DIG.c.id == digest_id).values(sent=when, error=None))
            ids = [r.id for r in conn.execute(select(DEL.c.id).where(DEL.c.digest_id == digest_id))]
            if ids:
                conn.execute(
                    insert(DEV), [{"delivery_id": i, "at": when, "status": "notified", "detail": detail} for i in ids]
                )

    def digest_failed(self, digest_id: int, error: str, *, retry_after: float) -> None:
        """Release a claimed digest that could not be mailed: it is due again after ``retry_after`` seconds."""
        due = stamp(datetime.now(UTC) + timedelta(seconds=retry_after))
        with self._store.writing() as conn:
            conn.execute(update(DIG).where(DIG.c.id == digest_id).values(claimed=None, error=error[:2000], due=due))

    def pending_digests(self) -> list[tuple[int, str, str, datetime, bool]]:
        """Digests not yet mailed: (id, mailbox, patient key, due, urgent), by due time."""
        with self._store.engine.connect() as conn:
            rows = conn.execute(select(DIG).where(DIG.c.sent.is_(None)).order_by(DIG.c.due))
            return [(int(r.id), r.mailbox, r.patient_key, _time(r.due), bool(r.urgent)) for r in rows]


def _stored(new: NewDelivery, delivery_id: int, reference: str, now: datetime, detail: str) -> Delivery:
    """The delivery as :meth:`SqlInbox.add` wrote it (times at the stored millisecond precision)."""
    at = datetime.fromisoformat(stamp(now))
    return Delivery(
        id=delivery_id,
        reference=reference,
        mailbox=new.mailbox,
        status=new.status,
        transport=new.transport,
        sender=new.sender[:512],
        patient_id=new.patient_id[:256],
        local_patient_id=new.local_patient_id,
        message=new.message,
        urgent=new.urgent,
        received=at,
        submission_set_uid=new.submission_set_uid[:128],
        recipients=new.recipients,
        documents=new.documents,
        history=(Event(at=at, status=new.status, detail=detail),),
    )


def patient_key(local_patient_id: str, patient_id: str) -> str:
    """Whom a digest is about: the local patient, else the sender's patient id (never shown in a mail)."""
    return local_patient_id or f"sender:{patient_id}"


__all__ = ["DueDigest", "SqlInbox", "new_reference", "patient_key", "stamp"]
