"""The registry's storage port: what the services need from a store, and nothing more.

The SQLAlchemy adapter (:mod:`xds.store.sql`) implements these protocols; tests may swap in another.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from xds.model.messages import StoredDocument
from xds.model.metadata import RegistryObject
from xds.registry.sq_params import ParsedQuery

KIND_DOCUMENT = "DE"
KIND_SUBMISSION_SET = "SS"
KIND_FOLDER = "FD"
KIND_ASSOCIATION = "AS"


@dataclass(frozen=True, slots=True)
class StoredObject:
    """A registry object as stored: its promoted keys and its ebRIM XML."""

    id: str
    kind: str
    status: str
    xml: str
    lid: str = ""
    patient_id: str | None = None
    unique_id: str | None = None
    hash: str | None = None
    home: str | None = None
    assoc_type: str | None = None
    source: str | None = None
    target: str | None = None
    seq: int = 0


class RegistryTx(Protocol):
    """One database transaction of a submission (all or nothing)."""

    def objects_by_id(self, ids: Collection[str]) -> dict[str, StoredObject]:
        """Stored objects with these ids."""
        ...

    def objects_by_unique_id(self, unique_ids: Collection[str]) -> list[StoredObject]:
        """Stored DocumentEntries, SubmissionSets and Folders carrying these uniqueIds."""
        ...

    def associations(
        self, *, sources: Collection[str] = (), targets: Collection[str] = (), types: Collection[str] = ()
    ) -> list[StoredObject]:
        """Associations whose source is in ``sources`` or whose target is in ``targets``, of ``types``."""
        ...

    def insert(self, objects: Sequence[RegistryObject], *, reused_unique_ids: Collection[str] = ()) -> None:
        """Store new objects (their ids are final ``urn:uuid:`` values) and claim their uniqueIds.

        ``reused_unique_ids`` are already claimed by a DocumentEntry with the identical hash; every other
        uniqueId is claimed now, and a claim that already exists fails the transaction.
        """
        ...

    def replace(self, obj: RegistryObject) -> None:
        """Rewrite a stored object after a status or lastUpdateTime change."""
        ...

    def patient_known(self, patient_id: str) -> bool:
        """True when the patient id was fed to the registry."""
        ...

    def record_documents(self, documents: Sequence[StoredDocument]) -> None:
        """Record documents this node's repository holds, in this transaction (ITI-41 on the same node).

        A document already recorded with the same content is left as it is.
        """
        ...


class RegistryStore(Protocol):
    """The registry's view of its database."""

    def transaction(self) -> AbstractContextManager[RegistryTx]:
        """A write transaction; commits on normal exit, rolls back on an exception."""
        ...

    def stored_query(self, query: ParsedQuery) -> list[StoredObject]:
        """Run one validated stored query (read only)."""
        ...

    def patient_known(self, patient_id: str) -> bool:
        """True when the patient id was fed to the registry."""
        ...

    def consent_keys(self, ids: Collection[str]) -> dict[str, tuple[str, str]]:
        """(patient id, data category) of the objects among ``ids`` that belong to a patient."""
        ...


__all__ = [
    "KIND_ASSOCIATION",
    "KIND_DOCUMENT",
    "KIND_FOLDER",
    "KIND_SUBMISSION_SET",
    "RegistryStore",
    "RegistryTx",
    "StoredObject",
]
