"""The imaging store's index in the node's database: studies and their instances (XDS-I.b).

The instances' bytes are Part 10 files in the document store (content-addressed, crash-safe, see
:mod:`xds.store.documents`); this module records which SOP Instance UID is which file, in which series and study,
and each study's current KOS manifest (its DocumentEntry in the registry) and BSN quality bucket.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select, update

from registry_schema.tables import ImagingInstanceRow, ImagingStudyRow
from xds.dicom.records import InstanceRecord, StudyRecord
from xds.store.inbox import stamp
from xds.store.sql import SqlRegistryStore, in_chunks

STUDY = cast(Table, ImagingStudyRow.__table__)
INST = cast(Table, ImagingInstanceRow.__table__)


class ConflictingInstance(ValueError):
    """A SOP Instance UID is stored already with other content."""


class SqlImaging:
    """Studies and instances, on the registry store's database and writer queue."""

    def __init__(self, store: SqlRegistryStore) -> None:
        self._store = store

    def add(self, study: StudyRecord, instances: Sequence[InstanceRecord], *, conn: Connection | None = None) -> int:
        """Record ``study`` (created, or its patient, sender and BSN bucket updated) and the ``instances`` not
        recorded yet; the number added. An instance recorded with other content is :class:`ConflictingInstance`
        and nothing is recorded."""

        def run(c: Connection) -> int:
            now = stamp(datetime.now(UTC))
            uids = [i.sop_instance_uid for i in instances]
            known: dict[str, str] = {}
            for chunk in in_chunks(uids, 500):
                known.update(
                    {
                        r.sop_instance_uid: r.sha256
                        for r in c.execute(select(INST).where(INST.c.sop_instance_uid.in_(chunk)))
                    }
                )
            for i in instances:
                if i.sop_instance_uid in known and known[i.sop_instance_uid] != i.sha256:
                    raise ConflictingInstance(f"instance {i.sop_instance_uid} is stored already with other content")
            values: dict[str, Any] = {
                "patient_id": study.patient_id,
                "accession": study.accession[:64],
                "sender": study.sender[:256],
                "bsn_bucket": study.bsn_bucket,
                "bsn_detail": study.bsn_detail,
                "stored_form": study.stored_form,
                "updated": now,
            }
            exists = c.execute(
                select(STUDY.c.study_uid, STUDY.c.patient_id).where(STUDY.c.study_uid == study.study_uid)
            ).first()
            if exists is not None:  # who sent the study and how it carried the BSN stay as first seen
                keep = ("sender", "bsn_bucket", "bsn_detail", "stored_form") if exists.patient_id else ("sender",)
                values = {k: v for k, v in values.items() if k not in keep}
            if exists is None:
                c.execute(
                    insert(STUDY).values(
                        study_uid=study.study_uid,
                        manifest_unique_id="",
                        manifest_entry_uuid="",
                        received=now,
                        **values,
                    )
                )
            else:
                c.execute(update(STUDY).where(STUDY.c.study_uid == study.study_uid).values(values))
            new = [i for i in instances if i.sop_instance_uid not in known]
            new = list({i.sop_instance_uid: i for i in new}.values())
            if new:
                c.execute(
                    insert(INST),
                    [
                        {
                            "sop_instance_uid": i.sop_instance_uid,
                            "study_uid": study.study_uid,
                            "series_uid": i.series_uid,
                            "sop_class_uid": i.sop_class_uid,
                            "transfer_syntax": i.transfer_syntax,
                            "modality": i.modality[:16],
                            "body_part": i.body_part[:64],
                            "size": i.size,
                            "sha256": i.sha256,
                            "stored": now,
                        }
                        for i in new
                    ],
                )
            return len(new)

        if conn is not None:
            return run(conn)
        with self._store.writing() as own:
            return run(own)

    def set_manifest(self, study_uid: str, unique_id: str, entry_uuid: str, *, conn: Connection | None = None) -> None:
        """Record the study's current manifest (after the registry accepted it)."""
        stmt = (
            update(STUDY)
            .where(STUDY.c.study_uid == study_uid)
            .values(manifest_unique_id=unique_id, manifest_entry_uuid=entry_uuid, updated=stamp(datetime.now(UTC)))
        )
        if conn is not None:
            conn.execute(stmt)
            return
        with self._store.writing() as own:
            own.execute(stmt)

    def manifest_entry(self, study_uid: str, *, conn: Connection) -> str:
        """The study's current manifest entryUUID as ``conn``'s transaction sees it (``""``: none or no study)."""
        found = conn.execute(select(STUDY.c.manifest_entry_uuid).where(STUDY.c.study_uid == study_uid)).scalar()
        return str(found or "")

    def study(self, study_uid: str) -> StudyRecord | None:
        """A study, or None."""
        with self._store.engine.connect() as conn:
            r = conn.execute(select(STUDY).where(STUDY.c.study_uid == study_uid)).first()
        return None if r is None else _study(r)

    def study_instances(self, study_uid: str) -> list[InstanceRecord]:
        """The study's instances by series and SOP Instance UID."""
        stmt = select(INST).where(INST.c.study_uid == study_uid).order_by(INST.c.series_uid, INST.c.sop_instance_uid)
        with self._store.engine.connect() as conn:
            return [_instance(r) for r in conn.execute(stmt)]

    def instances(self, sop_instance_uids: Collection[str]) -> dict[str, InstanceRecord]:
        """The stored instances among ``sop_instance_uids``."""
        found: dict[str, InstanceRecord] = {}
        with self._store.engine.connect() as conn:
            for chunk in in_chunks(list(sop_instance_uids), 500):
                found.update(
                    {
                        r.sop_instance_uid: _instance(r)
                        for r in conn.execute(select(INST).where(INST.c.sop_instance_uid.in_(chunk)))
                    }
                )
        return found

    def bucket_counts(self, *, since: datetime | None = None) -> list[tuple[str, str, int]]:
        """(sender, BSN bucket, studies) received since ``since``, counted by the database."""
        stmt = select(STUDY.c.sender, STUDY.c.bsn_bucket, func.count()).group_by(STUDY.c.sender, STUDY.c.bsn_bucket)
        if since is not None:
            stmt = stmt.where(STUDY.c.received >= stamp(since))
        with self._store.engine.connect() as conn:
            return [(str(r[0]), str(r[1]), int(r[2])) for r in conn.execute(stmt)]

    def studies(self, *, since: datetime | None = None) -> list[StudyRecord]:
        """Every study (received since ``since``), oldest first."""
        stmt = select(STUDY).order_by(STUDY.c.received)
        if since is not None:
            stmt = stmt.where(STUDY.c.received >= stamp(since))
        with self._store.engine.connect() as conn:
            return [_study(r) for r in conn.execute(stmt)]

    def recorded_contents(self, sha256s: Collection[str]) -> set[str]:
        """Which of these content addresses a stored instance uses (crash recovery)."""
        found: set[str] = set()
        with self._store.engine.connect() as conn:
            for chunk in in_chunks(list(sha256s), 500):
                found |= {r[0] for r in conn.execute(select(INST.c.sha256).where(INST.c.sha256.in_(chunk)).distinct())}
        return found

    def count(self) -> int:
        """How many instances are stored."""
        with self._store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(INST)).scalar_one())


def _instance(r: Any) -> InstanceRecord:
    return InstanceRecord(
        sop_instance_uid=r.sop_instance_uid,
        study_uid=r.study_uid,
        series_uid=r.series_uid,
        sop_class_uid=r.sop_class_uid,
        transfer_syntax=r.transfer_syntax,
        modality=r.modality,
        body_part=r.body_part,
        size=int(r.size),
        sha256=r.sha256,
    )


def _study(r: Any) -> StudyRecord:
    return StudyRecord(
        study_uid=r.study_uid,
        patient_id=r.patient_id,
        accession=r.accession,
        manifest_unique_id=r.manifest_unique_id,
        manifest_entry_uuid=r.manifest_entry_uuid,
        sender=r.sender,
        bsn_bucket=r.bsn_bucket,
        bsn_detail=r.bsn_detail,
        stored_form=r.stored_form,
        received=datetime.fromisoformat(r.received),
    )


__all__ = ["ConflictingInstance", "SqlImaging"]
