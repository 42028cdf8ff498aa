"""The SQLAlchemy registry store: SQLite (embedded default) and PostgreSQL behind one code path.

Theory of operation: a submission runs in one transaction (:meth:`SqlRegistryStore.transaction`). On SQLite
the write transaction starts with ``BEGIN IMMEDIATE`` so concurrent writers queue on the database lock
instead of failing half-way; on PostgreSQL the unique constraint on ``(unique_id, version)`` decides which of
two concurrent submissions of one uniqueId wins, and the loser gets XDSDuplicateUniqueIdInRegistry.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, create_engine, delete, event, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from registry_schema.tables import (
    CommunityEntry,
    NodeSetting,
    ObjectAuthor,
    ObjectCode,
    ObjectReferenceId,
    Patient,
    PatientAlias,
    RepositoryDocument,
    UniqueIdClaim,
)
from xds import vocabulary as v
from xds.communities import SOURCE_DATABASE, STRING_KEYS, community_from_mapping
from xds.ebrim.encode import to_bytes
from xds.errors import DuplicateUniqueIdInRegistry
from xds.model.hl7 import DTM
from xds.model.messages import DocumentContent, StoredDocument
from xds.model.metadata import DocumentEntry, Folder, RegistryObject, SubmissionSet
from xds.registry.ports import (
    KIND_ASSOCIATION,
    KIND_DOCUMENT,
    KIND_FOLDER,
    KIND_SUBMISSION_SET,
    StoredObject,
)
from xds.registry.sq_params import ParsedQuery
from xds.store import queries
from xds.store.hooks import run_before_commit
from xds.store.queries import COLUMNS, RO, to_objects

OC = cast(Table, ObjectCode.__table__)
OA = cast(Table, ObjectAuthor.__table__)
OREF = cast(Table, ObjectReferenceId.__table__)
PAT = cast(Table, Patient.__table__)
ALIAS = cast(Table, PatientAlias.__table__)
NS = cast(Table, NodeSetting.__table__)
CLAIM = cast(Table, UniqueIdClaim.__table__)
RD = cast(Table, RepositoryDocument.__table__)
COM = cast(Table, CommunityEntry.__table__)
HELD = "held"
PENDING = "pending"


def make_engine(url: str, *, pool_size: int = 16) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout, foreign keys and immediate write locks.

    The pool keeps ``pool_size`` connections open (about the request concurrency a worker sees), so a busy
    node does not open and close a connection per request beyond it.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=2 * pool_size,
        )
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # No pre-ping: it costs a round trip per request; a connection the server dropped fails one request and
    # SQLAlchemy then invalidates the pool. Connections are recycled after 30 minutes.
    return create_engine(url, pool_size=pool_size, max_overflow=2 * pool_size, pool_recycle=1800)


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")


def _dtm(value: DTM | None) -> str | None:
    return None if value is None else value.padded


def _row(obj: RegistryObject) -> dict[str, Any]:
    """Promoted search keys of one object (registry_schema.tables.RegistryObjectRow)."""
    row: dict[str, Any] = {
        "id": obj.id,
        "lid": obj.lid or obj.id,
        "status": obj.status,
        "home": obj.home or None,
        "version": int(obj.version_name) if obj.version_name.isdigit() else 1,
        "xml": to_bytes(obj).decode(),
        "object_type": None,
        "patient_id": None,
        "unique_id": None,
        "hash": None,
        "size": None,
        "repository_unique_id": None,
        "creation_time": None,
        "service_start_time": None,
        "service_stop_time": None,
        "submission_time": None,
        "last_update_time": None,
        "source_id": None,
        "assoc_type": None,
        "source_object": None,
        "target_object": None,
    }
    if isinstance(obj, DocumentEntry):
        row.update(
            kind=KIND_DOCUMENT,
            object_type=obj.object_type,
            patient_id=str(obj.patient_id),
            unique_id=obj.unique_id,
            hash=obj.hash.lower() or None,
            size=obj.size,
            repository_unique_id=obj.repository_unique_id or None,
            creation_time=_dtm(obj.creation_time),
            service_start_time=_dtm(obj.service_start_time),
            service_stop_time=_dtm(obj.service_stop_time),
        )
    elif isinstance(obj, SubmissionSet):
        row.update(
            kind=KIND_SUBMISSION_SET,
            patient_id=str(obj.patient_id),
            unique_id=obj.unique_id,
            submission_time=_dtm(obj.submission_time),
            source_id=obj.source_id,
        )
    elif isinstance(obj, Folder):
        row.update(
            kind=KIND_FOLDER,
            patient_id=str(obj.patient_id),
            unique_id=obj.unique_id,
            last_update_time=_dtm(obj.last_update_time),
        )
    else:
        row.update(
            kind=KIND_ASSOCIATION,
            assoc_type=obj.association_type,
            source_object=obj.source,
            target_object=obj.target,
        )
    return row


def _side_rows(
    seq: int, obj: RegistryObject
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    codes: list[tuple[str, str]] = []
    persons: set[str] = set()
    refs: set[str] = set()
    if isinstance(obj, DocumentEntry):
        codes = [(s, c.query_form()) for s, c in obj.codes()]
        persons = {str(a.person) for a in obj.authors if a.person is not None}
        refs = set(obj.reference_ids)
    elif isinstance(obj, SubmissionSet):
        if obj.content_type_code is not None:
            codes = [(v.SS_CONTENT_TYPE_CODE, obj.content_type_code.query_form())]
        persons = {str(a.person) for a in obj.authors if a.person is not None}
    elif isinstance(obj, Folder):
        codes = [(v.FOLDER_CODE_LIST, c.query_form()) for c in obj.codes]
    return (
        [{"object_seq": seq, "scheme": s, "value": val} for s, val in dict.fromkeys(codes)],
        [{"object_seq": seq, "person": p} for p in sorted(persons)],
        [{"object_seq": seq, "value": r} for r in sorted(refs)],
    )


class SqlTx:
    """One write transaction (implements :class:`xds.registry.ports.RegistryTx`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def objects_by_id(self, ids: Collection[str]) -> dict[str, StoredObject]:
        if not ids:
            return {}
        found = to_objects(self.conn.execute(select(*COLUMNS).where(RO.c.id.in_(list(ids)))))
        return {o.id: o for o in found}

    def objects_by_unique_id(self, unique_ids: Collection[str]) -> list[StoredObject]:
        if not unique_ids:
            return []
        return to_objects(self.conn.execute(select(*COLUMNS).where(RO.c.unique_id.in_(list(unique_ids)))))

    def associations(
        self, *, sources: Collection[str] = (), targets: Collection[str] = (), types: Collection[str] = ()
    ) -> list[StoredObject]:
        ends = []
        if sources:
            ends.append(RO.c.source_object.in_(list(sources)))
        if targets:
            ends.append(RO.c.target_object.in_(list(targets)))
        if not ends:
            return []
        stmt = select(*COLUMNS).where(RO.c.kind == KIND_ASSOCIATION, *ends)
        if types:
            stmt = stmt.where(RO.c.assoc_type.in_(list(types)))
        return to_objects(self.conn.execute(stmt.order_by(RO.c.seq)))

    def insert(self, objects: Sequence[RegistryObject], *, reused_unique_ids: Collection[str] = ()) -> None:
        if not objects:
            return
        rows = [_row(o) for o in objects]
        claims = [
            {"unique_id": r["unique_id"], "kind": r["kind"], "hash": r["hash"]}
            for r in rows
            if r["unique_id"] and r["unique_id"] not in reused_unique_ids
        ]
        if claims:
            self.conn.execute(insert(CLAIM), claims)
        stmt = insert(RO).returning(RO.c.seq, sort_by_parameter_order=True)
        seqs = [r[0] for r in self.conn.execute(stmt, rows)]
        codes, persons, refs = [], [], []
        for seq, obj in zip(seqs, objects, strict=True):
            c, p, r = _side_rows(seq, obj)
            codes += c
            persons += p
            refs += r
        for table, rows in ((OC, codes), (OA, persons), (OREF, refs)):
            if rows:
                self.conn.execute(insert(table), rows)

    def replace(self, obj: RegistryObject) -> None:
        row = _row(obj)
        values = {k: row[k] for k in ("status", "xml", "last_update_time")}
        self.conn.execute(update(RO).where(RO.c.id == obj.id).values(**values))

    def patient_known(self, patient_id: str) -> bool:
        return self.conn.execute(select(PAT.c.id).where(PAT.c.id == patient_id)).first() is not None

    def record_documents(self, documents: Sequence[StoredDocument], *, state: str = HELD) -> None:
        if not documents:
            return
        known = {
            (r.repository_unique_id, r.unique_id)
            for r in self.conn.execute(
                select(RD.c.repository_unique_id, RD.c.unique_id).where(  # the primary key, both columns
                    RD.c.repository_unique_id.in_({d.repository_unique_id for d in documents}),
                    RD.c.unique_id.in_([d.unique_id for d in documents]),
                )
            )
        }
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        rows = [
            {
                "repository_unique_id": d.repository_unique_id,
                "unique_id": d.unique_id,
                "sha256": d.content.sha256,
                "sha1": d.content.sha1,
                "size": d.content.size,
                "mime_type": d.mime_type,
                "entry_uuid": d.entry_uuid,
                "stored_at": stamp,
                "state": state,
                "patient_id": d.patient_id or None,
                "category": d.category or None,
            }
            for d in documents
            if (d.repository_unique_id, d.unique_id) not in known
        ]
        if rows:
            self.conn.execute(insert(RD), rows)


def in_chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in lists of at most ``size`` (bounded IN lists)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _stored_document(r: Any) -> StoredDocument:
    return StoredDocument(
        repository_unique_id=r.repository_unique_id,
        unique_id=r.unique_id,
        mime_type=r.mime_type,
        entry_uuid=r.entry_uuid,
        content=DocumentContent(ref="", size=r.size, sha1=r.sha1, sha256=r.sha256),
        patient_id=r.patient_id or "",
        category=r.category or "",
    )


def _community(r: Any) -> dict[str, Any]:
    tls = {"ca_file": r.tls_ca_file, "cert_file": r.tls_cert_file, "key_file": r.tls_key_file, "verify": r.tls_verify}
    return {**{k: getattr(r, k) for k in STRING_KEYS}, "timeout": r.timeout, "tls": tls, "added": r.added}


class _WriterQueue:
    """Mutual exclusion of SQLite writers: a thread lock, then (for a database file) an flock shared by all
    processes that open it. The kernel releases the flock when a process dies, so a crash never wedges it."""

    def __init__(self, lock_path: str | None) -> None:
        self._threads = threading.Lock()
        self._path = lock_path
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            if self._path is not None:
                if self._fd is None or self._pid != os.getpid():
                    self._fd, self._pid = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


def _unique_violation(exc: IntegrityError) -> bool:
    """True for a unique/primary-key violation (SQLSTATE 23505; SQLite's "UNIQUE constraint failed")."""
    if getattr(exc.orig, "sqlstate", None) == "23505":
        return True
    return "UNIQUE constraint failed" in str(exc.orig)


class SqlRegistryStore:
    """The registry store over one SQLAlchemy engine (implements :class:`xds.registry.ports.RegistryStore`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = engine.execution_options(write=True)
        # Reads on PostgreSQL run in autocommit: READ COMMITTED gives each statement its own snapshot anyway,
        # and BEGIN/ROLLBACK would add two round trips to every query.
        self._reader = (
            engine if engine.dialect.name == "sqlite" else engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        # SQLite has one writer. Writers queue on a lock instead of polling the database lock (SQLite's busy
        # handler sleeps and retries, so an unlucky writer waited seconds): a thread lock within the process,
        # and an flock on a file beside the database between the worker processes of a node.
        self._write_lock: AbstractContextManager[object] = contextlib.nullcontext()
        if engine.dialect.name == "sqlite":
            database = engine.url.database
            self._write_lock = _WriterQueue(f"{database}.writer" if database and database != ":memory:" else None)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._write_lock, self._writer.begin() as conn:
            yield conn

    def writing(self) -> AbstractContextManager[Connection]:
        """A write transaction on the node's writer queue, for the other stores of this database."""
        return self._write()

    @contextmanager
    def transaction(self) -> Iterator[SqlTx]:
        try:
            with self._write() as conn:
                yield SqlTx(conn)
                run_before_commit(conn)  # e.g. the audit record of the submission (xds.store.hooks)
        except IntegrityError as exc:
            if not _unique_violation(exc):
                raise  # a bug (not-null, foreign key...), not a race: the adapter logs it as an internal error
            raise DuplicateUniqueIdInRegistry(
                "a uniqueId or id of this submission was registered concurrently"
            ) from exc

    def stored_query(self, query: ParsedQuery) -> list[StoredObject]:
        with self._reader.connect() as conn:
            return queries.run(conn, query)

    def patient_known(self, patient_id: str) -> bool:
        with self.engine.connect() as conn:
            return SqlTx(conn).patient_known(patient_id)

    def consent_keys(self, ids: Collection[str]) -> dict[str, tuple[str, str]]:
        """(patient id, data category) of the DocumentEntries, SubmissionSets and Folders among ``ids``.

        The category is a DocumentEntry's classCode code ("" for the others). Ids of associations and of
        unknown objects are absent from the answer.
        """
        if not ids:
            return {}
        found: dict[int, tuple[str, str]] = {}
        with self._reader.connect() as conn:
            for chunk in in_chunks(list(ids), 500):
                rows = conn.execute(
                    select(RO.c.seq, RO.c.id, RO.c.patient_id).where(RO.c.id.in_(chunk), RO.c.patient_id.is_not(None))
                )
                found.update({int(r.seq): (r.id, r.patient_id) for r in rows})
            categories: dict[int, str] = {}
            for seqs in in_chunks(list(found), 500):
                codes = conn.execute(
                    select(OC.c.object_seq, OC.c.value).where(OC.c.object_seq.in_(seqs), OC.c.scheme == v.DE_CLASS_CODE)
                )
                for r in codes:
                    categories.setdefault(int(r.object_seq), r.value.split("^^", 1)[0])
        return {oid: (patient, categories.get(seq, "")) for seq, (oid, patient) in found.items()}

    def add_patient(self, patient_id: str) -> bool:
        """Feed a patient id; False when it was already known."""
        with self._write() as conn:
            if SqlTx(conn).patient_known(patient_id):
                return False
            conn.execute(insert(PAT).values(id=patient_id, added=datetime.now(UTC).isoformat(timespec="seconds")))
            return True

    def remove_patient(self, patient_id: str) -> bool:
        """Forget a fed patient id (documents stay); False when it was not known."""
        with self._write() as conn:
            return bool(conn.execute(delete(PAT).where(PAT.c.id == patient_id)).rowcount)

    def add_alias(self, patient_id: str, alias: str) -> bool:
        """Record ``alias`` (another domain's id) for the fed ``patient_id``; False when already recorded.

        Raises
        ------
        ValueError
            When ``patient_id`` is not a fed patient id.
        """
        with self._write() as conn:
            if not SqlTx(conn).patient_known(patient_id):
                raise ValueError(f"{patient_id} is not a fed patient id")
            where = (ALIAS.c.patient_id == patient_id, ALIAS.c.alias == alias)
            if conn.execute(select(ALIAS.c.alias).where(*where)).first() is not None:
                return False
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            conn.execute(insert(ALIAS).values(patient_id=patient_id, alias=alias, added=stamp))
            return True

    def remove_alias(self, patient_id: str, alias: str) -> bool:
        """Forget an alias; False when it was not recorded."""
        with self._write() as conn:
            where = (ALIAS.c.patient_id == patient_id, ALIAS.c.alias == alias)
            return bool(conn.execute(delete(ALIAS).where(*where)).rowcount)

    def aliases(self, patient_id: str) -> list[str]:
        """The recorded aliases of ``patient_id``, sorted."""
        with self.engine.connect() as conn:
            stmt = select(ALIAS.c.alias).where(ALIAS.c.patient_id == patient_id).order_by(ALIAS.c.alias)
            return [r[0] for r in conn.execute(stmt)]

    def patients_with_alias(self, alias: str) -> list[str]:
        """The fed patients that have ``alias`` recorded as another id, sorted."""
        with self.engine.connect() as conn:
            stmt = select(ALIAS.c.patient_id).where(ALIAS.c.alias == alias).order_by(ALIAS.c.patient_id)
            return [r[0] for r in conn.execute(stmt)]

    def list_patients(self) -> list[tuple[str, str]]:
        """Fed patient ids with the time they were added, oldest first."""
        with self.engine.connect() as conn:
            return [(r.id, r.added) for r in conn.execute(select(PAT).order_by(PAT.c.added, PAT.c.id))]

    def documents(self, repository_unique_id: str, unique_ids: Collection[str]) -> dict[str, StoredDocument]:
        """The retrievable (held) documents of this repository among ``unique_ids`` (read only)."""
        if not unique_ids:
            return {}
        stmt = select(RD).where(
            RD.c.repository_unique_id == repository_unique_id,
            RD.c.unique_id.in_(list(unique_ids)),
            RD.c.state == HELD,
        )
        with self._reader.connect() as conn:
            return {r.unique_id: _stored_document(r) for r in conn.execute(stmt)}

    # --- documents forwarded to a remote registry (pending until it accepted) ------------------------------

    def record_pending(self, documents: Sequence[StoredDocument]) -> None:
        """Record documents as pending, committed before ITI-42 goes to the remote registry."""
        with self._write() as conn:
            SqlTx(conn).record_documents(documents, state=PENDING)

    def settle_pending(self, documents: Sequence[StoredDocument], *, accepted: bool) -> None:
        """The remote registry accepted (pending -> held) or did not (pending rows deleted)."""
        if not documents:
            return
        with self._write() as conn:
            for d in documents:
                where = (
                    RD.c.repository_unique_id == d.repository_unique_id,
                    RD.c.unique_id == d.unique_id,
                    RD.c.state == PENDING,
                )
                if accepted:
                    conn.execute(update(RD).where(*where).values(state=HELD))
                else:
                    conn.execute(delete(RD).where(*where))

    def pending_documents(self, *, older_than: str) -> list[StoredDocument]:
        """Pending documents recorded before ``older_than`` (ISO 8601 UTC), for reconciliation."""
        stmt = select(RD).where(RD.c.state == PENDING, RD.c.stored_at < older_than).order_by(RD.c.stored_at)
        with self.engine.connect() as conn:
            return [_stored_document(r) for r in conn.execute(stmt)]

    def recorded_contents(self, sha256s: Collection[str]) -> set[str]:
        """Which of these content addresses some recorded document uses (crash recovery)."""
        if not sha256s:
            return set()
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(select(RD.c.sha256).where(RD.c.sha256.in_(list(sha256s))).distinct())}

    def count_documents(self) -> int:
        """How many documents the repository tables record (all repositories)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(RD)).scalar_one())

    # --- community directory (xds community add|list|remove; TOML entries are not stored) -------------------

    def add_community(self, community: Mapping[str, Any]) -> bool:
        """Add a directory entry given in the ``[[communities]]`` shape; False when its homeCommunityId is present.

        The entry is validated first (:func:`xds.communities.community_from_mapping`, ``ValueError``).
        """
        c = community_from_mapping(community, source=SOURCE_DATABASE)
        row = {
            "home_community_id": c.home_community_id,
            "query_url": c.query_url,
            "retrieve_url": c.retrieve_url,
            "push_url": c.push_url,
            "push_transaction": c.push_transaction,
            "name": c.name,
            "xdm_email": c.xdm_email,
            "assigning_authority": c.assigning_authority,
            "timeout": c.timeout,
            "tls_ca_file": c.tls.ca_file,
            "tls_cert_file": c.tls.cert_file,
            "tls_key_file": c.tls.key_file,
            "tls_verify": c.tls.verify,
            "added": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        try:
            with self._write() as conn:
                if conn.execute(
                    select(COM.c.home_community_id).where(COM.c.home_community_id == c.home_community_id)
                ).first():
                    return False
                conn.execute(insert(COM).values(row))
        except IntegrityError as exc:
            if not _unique_violation(exc):
                raise
            return False  # added concurrently
        return True

    def remove_community(self, home_community_id: str) -> bool:
        """Remove a directory entry added with :meth:`add_community`; False when there is none."""
        with self._write() as conn:
            return bool(conn.execute(delete(COM).where(COM.c.home_community_id == home_community_id)).rowcount)

    def list_communities(self) -> list[dict[str, Any]]:
        """The stored directory entries by homeCommunityId, each in the ``[[communities]]`` shape plus ``added``."""
        with self.engine.connect() as conn:
            return [_community(r) for r in conn.execute(select(COM).order_by(COM.c.home_community_id))]

    def setting(self, key: str, default: str) -> str:
        """A node setting, stored with ``default`` on first use (generated identities)."""
        with self._write() as conn:
            found = conn.execute(select(NS.c.value).where(NS.c.key == key)).scalar()
            if found is not None:
                return str(found)
            conn.execute(insert(NS).values(key=key, value=default))
            return default


__all__ = ["SqlRegistryStore", "SqlTx", "in_chunks", "make_engine"]
