"""``xds serve`` as a subprocess for the end-to-end tests: a node's files, start-up until healthy, stop or kill.

A node is a configuration file on a free port, a data directory and a database: SQLite in the data directory,
or a schema of its own on the PostgreSQL server of ``XDS_TEST_DATABASE_URL``, dropped afterwards
(:func:`new_node`). :func:`serving` runs ``xds serve`` on it, as often as a test needs (a restart keeps the
files), in a process group of its own so that a signal reaches every worker, appending to one log file, and
waits until ``GET /health`` answers 200. The CLI runs with the same environment: the test's, without ``XDS_*``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import pg_drop_schema, pg_schema_url

START_SECONDS = 60.0
"""How long ``xds serve`` may take to answer ``GET /health`` with 200."""


@dataclass(frozen=True, slots=True)
class NodeFiles:
    """One node's configuration, database and data directory (the server process comes and goes)."""

    config: Path
    port: int
    data_dir: Path
    database_url: str
    env: dict[str, str]
    log: Path

    @property
    def url(self) -> str:
        """The node's base URL (``/health``, ``/xds/registry``, ``/xds/repository`` are below it)."""
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``xds ARGS --config <this node's>``."""
        return xds(*args, "--config", str(self.config), env=self.env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    """The test's environment without ``XDS_*`` (so only the configuration file speaks)."""
    return {k: val for k, val in os.environ.items() if not k.startswith("XDS_")}


def xds(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the CLI (``python -m xds ARGS``) and capture its output."""
    return subprocess.run([sys.executable, "-m", "xds", *args], env=env, capture_output=True, text=True, timeout=60)


@contextmanager
def new_node(tmp_path: Path, backend: str = "sqlite") -> Iterator[NodeFiles]:
    """A node's files under ``tmp_path`` on ``backend`` (``sqlite`` or ``postgresql``); its schema is dropped after."""
    port, data_dir = free_port(), tmp_path / "var"
    database_url, db_line, schema, base = f"sqlite:///{data_dir / 'registry.sqlite3'}", "", "", ""
    if backend == "postgresql":
        base = os.environ["XDS_TEST_DATABASE_URL"]
        database_url, schema = pg_schema_url(base)
        db_line = f'database_url = "{database_url}"\n'
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\nport = {port}\ndata_dir = "{data_dir}"\n{db_line}')
    try:
        yield NodeFiles(config, port, data_dir, database_url, clean_env(), tmp_path / "server.log")
    finally:
        if schema:
            pg_drop_schema(base, schema)


def health(url: str) -> dict[str, Any]:
    """The node's ``GET /health`` report."""
    report: dict[str, Any] = httpx.get(f"{url}/health", timeout=10).json()
    return report


@contextmanager
def serving(files: NodeFiles, workers: int = 1) -> Iterator[subprocess.Popen[bytes]]:
    """``xds serve --workers N`` until the block ends (SIGTERM, SIGKILL after 15 s), answering from the start.

    The process is the leader of its own group: ``os.killpg(proc.pid, ...)`` reaches every worker. With one
    worker ``proc.pid`` is the serving process itself.
    """
    with files.log.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "xds", "serve", "--config", str(files.config), "--workers", str(workers)],
            env=files.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_healthy(files, proc)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_healthy(files: NodeFiles, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            if httpx.get(f"{files.url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"xds serve did not start: {files.log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)


__all__ = ["START_SECONDS", "NodeFiles", "clean_env", "free_port", "health", "new_node", "serving", "xds"]
