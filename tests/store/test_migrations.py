"""The Alembic migrations build exactly the schema the table definitions describe, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from registry_schema import Base, migrate
from xds.store.sql import make_engine


def test_migrated_schema_matches_tables(database_url: str) -> None:
    engine = make_engine(database_url)
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    migrate.upgrade(engine)  # idempotent
    engine.dispose()
