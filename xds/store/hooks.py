"""Work that must commit with a registry transaction, set by an adapter for the request it serves.

The SOAP adapter registers, for a submission (ITI-41, ITI-42), a hook that writes the transaction's audit
record; :meth:`xds.store.sql.SqlRegistryStore.transaction` runs it on the transaction's connection just before
the commit, so the submission and its audit record are stored together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import Connection

_BEFORE_COMMIT: ContextVar[Callable[[Connection], None] | None] = ContextVar("xds_before_commit", default=None)


@contextmanager
def before_commit(hook: Callable[[Connection], None] | None) -> Iterator[None]:
    """Run ``hook(connection)`` before the commit of each registry write transaction in this context (the
    context is copied into worker threads); None: nothing to run."""
    token = _BEFORE_COMMIT.set(hook)
    try:
        yield
    finally:
        _BEFORE_COMMIT.reset(token)


def run_before_commit(conn: Connection) -> None:
    """Called by the store inside a registry transaction, after its work and before its commit."""
    hook = _BEFORE_COMMIT.get()
    if hook is not None:
        hook(conn)


__all__ = ["before_commit", "run_before_commit"]
