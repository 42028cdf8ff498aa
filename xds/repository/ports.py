"""What the repository services need from storage and from the registry, and nothing more.

The file document store (:mod:`xds.store.documents`), the SQL store and the registry clients implement these
protocols; tests may swap in others.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Protocol

from xds.model.messages import DocumentContent, RegistryResponse, StoredDocument
from xds.model.metadata import Submission


class DocumentFiles(Protocol):
    """Staged and published document content."""

    def sync(self, contents: Iterable[DocumentContent]) -> None:
        """Make staged content durable (before the registry commits)."""
        ...

    def publish(self, contents: Iterable[DocumentContent]) -> None:
        """Make staged content retrievable (after the registry committed)."""
        ...

    def discard(self, contents: Iterable[DocumentContent]) -> None:
        """Delete staged content (the submission was rejected)."""
        ...

    def exists(self, sha256: str) -> bool:
        """True when published content with this address exists."""
        ...


class DocumentIndex(Protocol):
    """Which documents the repository holds."""

    def documents(self, repository_unique_id: str, unique_ids: Collection[str]) -> dict[str, StoredDocument]:
        """The held documents among ``unique_ids``, by uniqueId."""
        ...


class Registry(Protocol):
    """The registry an ITI-41 submission is forwarded to (ITI-42), in-process or remote."""

    def register(self, submission: Submission, documents: Sequence[StoredDocument]) -> RegistryResponse:
        """Register ``submission`` and record ``documents`` as held, both or neither.

        Raises the registry's :class:`~xds.errors.XDSError` (its codes unchanged) when it rejects, and
        :class:`~xds.errors.RegistryNotAvailable` when it cannot be reached.
        """
        ...


__all__ = ["DocumentFiles", "DocumentIndex", "Registry"]
