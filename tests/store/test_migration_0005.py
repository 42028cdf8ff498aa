"""Migration 0005 backfills each repository document's patient and data category from the registry.

References
----------
registry_schema/migrations/versions/0005_consent_audit.py
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, text

from registry_schema import migrate
from xds.registry.ports import KIND_DOCUMENT
from xds.store.sql import make_engine
from xds.vocabulary import DE_CLASS_CODE, DE_FORMAT_CODE

REPO = "1.3.6.1.4.1.21367.2017.2.3.99"
PATIENT = "123456782^^^&2.16.840.1.113883.2.4.6.3&ISO"
OTHER = "'; DROP TABLE repository_document; --%^^^&2.16.840.1.113883.2.4.6.3&ISO"  # SQL-shaped on purpose (R11)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A database migrated to 0004, the revision before consent and audit."""
    e = make_engine(database_url)
    migrate.upgrade(e, "0004")
    assert migrate.current_revision(e) == "0004"
    yield e
    e.dispose()


def _downgrade(engine: Engine, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrate.__file__).resolve().parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def _entry(engine: Engine, entry_uuid: str, patient: str, codes: dict[str, str]) -> None:
    with engine.begin() as conn:
        seq = conn.execute(
            text(
                "INSERT INTO registry_object (id, lid, kind, status, version, patient_id, xml)"
                " VALUES (:id, :id, :kind, 'urn:oasis:names:tc:ebxml-regrep:StatusType:Approved', 1, :patient, '<x/>')"
                " RETURNING seq"
            ),
            {"id": entry_uuid, "kind": KIND_DOCUMENT, "patient": patient},
        ).scalar_one()
        for scheme, value in codes.items():
            conn.execute(
                text("INSERT INTO object_code (object_seq, scheme, value) VALUES (:seq, :scheme, :value)"),
                {"seq": seq, "scheme": scheme, "value": value},
            )


def _document(engine: Engine, unique_id: str, entry_uuid: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO repository_document"
                " (repository_unique_id, unique_id, sha256, sha1, size, mime_type, entry_uuid, stored_at, state)"
                " VALUES (:repo, :uid, :sha256, :sha1, 3, 'text/plain', :entry, '2026-11-01T08:00:00+00:00', 'held')"
            ),
            {"repo": REPO, "uid": unique_id, "sha256": "a" * 64, "sha1": "b" * 40, "entry": entry_uuid},
        )


def _keys(engine: Engine) -> dict[str, tuple[str | None, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT unique_id, patient_id, category FROM repository_document"))
        return {r.unique_id: (r.patient_id, r.category) for r in rows}


def test_upgrade_backfills_patient_and_category(engine: Engine) -> None:
    _entry(engine, "urn:uuid:e1", PATIENT, {DE_CLASS_CODE: "CODE^^SCHEME", DE_FORMAT_CODE: "FMT^^FSCHEME"})
    _entry(engine, "urn:uuid:e2", OTHER, {DE_CLASS_CODE: "57016-8"})  # a code without a scheme part
    _entry(engine, "urn:uuid:e3", PATIENT, {DE_FORMAT_CODE: "FMT^^FSCHEME"})  # no classCode
    _document(engine, "1.2.1", "urn:uuid:e1")
    _document(engine, "1.2.2", "urn:uuid:e2")
    _document(engine, "1.2.3", "urn:uuid:e3")
    _document(engine, "1.2.4", "urn:uuid:unknown")  # e.g. registered with a remote registry

    migrate.upgrade(engine)

    assert migrate.current_revision(engine) == migrate.head_revision()
    keys = _keys(engine)
    assert keys["1.2.1"] == (PATIENT, "CODE")
    assert keys["1.2.2"] == (OTHER, "57016-8")
    assert keys["1.2.3"][0] == PATIENT and not keys["1.2.3"][1]  # every category
    assert keys["1.2.4"] == (None, None)


def test_upgrade_without_documents_creates_the_tables(engine: Engine) -> None:
    migrate.upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"consent", "emergency_access", "audit_record"} <= tables
    assert _keys(engine) == {}


def test_downgrade_to_0004_and_up_again(engine: Engine) -> None:
    _entry(engine, "urn:uuid:e1", PATIENT, {DE_CLASS_CODE: "CODE^^SCHEME"})
    _document(engine, "1.2.1", "urn:uuid:e1")
    migrate.upgrade(engine)

    _downgrade(engine, "0004")

    assert migrate.current_revision(engine) == "0004"
    inspector = inspect(engine)
    assert not {"consent", "emergency_access", "audit_record"} & set(inspector.get_table_names())
    columns = {c["name"] for c in inspector.get_columns("repository_document")}
    assert "entry_uuid" in columns and not {"patient_id", "category"} & columns
    with engine.connect() as conn:
        assert conn.execute(text("SELECT unique_id, entry_uuid FROM repository_document")).all() == [
            ("1.2.1", "urn:uuid:e1")
        ]

    migrate.upgrade(engine)
    assert _keys(engine) == {"1.2.1": (PATIENT, "CODE")}
