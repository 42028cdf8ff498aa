"""Shared fixtures: a fresh database per test (SQLite, and PostgreSQL when XDS_TEST_DATABASE_URL is set),
a node on it, and a Starlette TestClient for the node's ASGI app.

PostgreSQL tests run in a schema of their own (``xds_t_<random>``), created before and dropped after the test,
so nothing an earlier run left behind on the server matters.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from xds.app import create_app
from xds.config import Settings
from xds.node import Node

PG_ENV = "XDS_TEST_DATABASE_URL"


def backends() -> list[str]:
    """``sqlite`` always; ``postgresql`` when the environment names a server."""
    return ["sqlite", "postgresql"] if os.environ.get(PG_ENV) else ["sqlite"]


@pytest.fixture(scope="session")
def pg_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def pg_schema_url(base: str) -> tuple[str, str]:
    """A new schema on the server at ``base`` and the URL whose connections use it."""
    schema = f"xds_t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def pg_drop_schema(base: str, schema: str) -> None:
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own, on each configured backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.sqlite3'}"
        return
    base = os.environ[PG_ENV]
    url, schema = pg_schema_url(base)
    try:
        yield url
    finally:
        pg_drop_schema(base, schema)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=str(tmp_path / "var"),
        database_url=database_url,
        home_community_id="urn:oid:1.3.6.1.4.1.21367.2017.2.6.99",
        repository_unique_id="1.3.6.1.4.1.21367.2017.2.3.99",
    )


@pytest.fixture
def node(settings: Settings) -> Iterator[Node]:
    n = Node.open(settings)
    yield n
    n.close()


@pytest.fixture
def client(node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(node)) as c:
        yield c
