"""Alembic environment: runs migrations on the connection handed over by :mod:`registry_schema.migrate`."""

from __future__ import annotations

from alembic import context

from registry_schema.tables import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through registry_schema.migrate
    raise RuntimeError("run migrations through `xds db upgrade` (registry_schema.migrate.upgrade)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
