"""Alembic migrations of the registry schema (run through ``xds db upgrade``)."""
