"""Forwarding ITI-41 to a registry on another node (ITI-42 over SOAP), without dangling documents.

Theory of operation: with a remote registry the repository cannot commit its records in the registry's
transaction, so it runs a small protocol around the call:

1. the documents are recorded ``pending`` (committed locally; not retrievable);
2. ITI-42 is sent;
3. the registry accepted: the records become ``held`` (retrievable). It rejected, or the request never
   reached it: the records are deleted and its errors are relayed unchanged (XDSRegistryNotAvailable when it
   could not be reached).
4. The outcome is unknown (the request went out, no usable answer came back: a timeout, a dropped
   connection): the registry is asked whether it holds the documents' uniqueIds (ITI-18 GetDocuments). Yes:
   as 3, accepted. No: as 3, rejected. No answer either: the records stay pending and the content is kept
   (:class:`OutcomeUnknown` tells ITI-41 to publish it, still unretrievable), and the submitter gets
   XDSRegistryNotAvailable. :meth:`RemoteRegistry.reconcile` (run when a node opens, and by
   ``xds repository reconcile``) settles pending records later by the same question.

The registry is all or nothing, so the documents of one submission are either all registered or none.

References
----------
ITI TF-2 §3.41.4.1.3 (the repository forwards the metadata with ITI-42 and relays the registry's answer),
ITI TF-2 §3.18.4.1.2.3.7.5 (GetDocuments by uniqueId).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from xds.errors import RegistryNotAvailable
from xds.model.messages import RegistryResponse, StoredDocument
from xds.model.metadata import Submission

log = logging.getLogger("xds.repository")


class RegistryUnreachable(RegistryNotAvailable):
    """The request never reached the registry (connection refused, name not resolved): nothing registered."""


class OutcomeUnknown(RegistryNotAvailable):
    """The request was sent but no usable answer came back: it may or may not have been registered."""


class RemoteRegistryClient(Protocol):
    """ITI-42 and ITI-18 to the remote registry (an adapter over SOAP)."""

    def register(self, submission: Submission) -> RegistryResponse:
        """Send ITI-42. Raise the registry's errors as :class:`~xds.errors.RelayedErrors`,
        :class:`RegistryUnreachable` or :class:`OutcomeUnknown`."""
        ...

    def registered(self, unique_ids: Collection[str]) -> set[str]:
        """Which of these DocumentEntry uniqueIds the registry holds; raise RegistryNotAvailable if unsure."""
        ...


class PendingDocuments(Protocol):
    """The repository's records of documents whose registration is in flight."""

    def record_pending(self, documents: Sequence[StoredDocument]) -> None: ...

    def settle_pending(self, documents: Sequence[StoredDocument], *, accepted: bool) -> None: ...

    def pending_documents(self, *, older_than: str) -> list[StoredDocument]: ...


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What :meth:`RemoteRegistry.reconcile` settled."""

    held: int = 0
    dropped: tuple[StoredDocument, ...] = ()
    unknown: int = 0


class RemoteRegistry:
    """Registers ITI-41 submissions at a remote registry (implements :class:`~xds.repository.ports.Registry`)."""

    def __init__(self, client: RemoteRegistryClient, records: PendingDocuments) -> None:
        self.client, self.records = client, records

    def register(self, submission: Submission, documents: Sequence[StoredDocument]) -> RegistryResponse:
        self.records.record_pending(documents)
        try:
            response = self.client.register(submission)
        except OutcomeUnknown:
            found = self._ask([d.unique_id for d in documents])
            if found is None:
                log.warning("ITI-42 outcome unknown for %d documents; left pending", len(documents))
                raise
            self.records.settle_pending(documents, accepted=found)
            if not found:
                raise RegistryNotAvailable("the registry did not answer and did not register the submission") from None
            return RegistryResponse()
        except BaseException:
            self.records.settle_pending(documents, accepted=False)
            raise
        self.records.settle_pending(documents, accepted=True)
        return response

    def reconcile(self, *, older_than: str, batch: int = 100) -> Reconciled:
        """Settle documents left pending before ``older_than`` (ISO 8601 UTC) by asking the registry.

        The registry is asked about ``batch`` uniqueIds at a time; a batch it cannot answer stays pending.
        """
        pending = self.records.pending_documents(older_than=older_than)
        held, dropped, unknown = 0, [], 0
        for start in range(0, len(pending), batch):
            docs = pending[start : start + batch]
            try:
                found = self.client.registered([d.unique_id for d in docs])
            except RegistryNotAvailable:
                unknown += len(docs)
                continue
            accepted = [d for d in docs if d.unique_id in found]
            refused = [d for d in docs if d.unique_id not in found]
            self.records.settle_pending(accepted, accepted=True)
            self.records.settle_pending(refused, accepted=False)
            held += len(accepted)
            dropped += refused
        if pending:
            log.warning(
                "reconciled %d pending documents: %d held, %d dropped, %d unknown",
                len(pending),
                held,
                len(dropped),
                unknown,
            )
        return Reconciled(held, tuple(dropped), unknown)

    def _ask(self, unique_ids: list[str]) -> bool | None:
        """True: all registered; False: none; None: the registry cannot tell us now."""
        try:
            found = self.client.registered(unique_ids)
        except RegistryNotAvailable:
            return None
        return bool(found) and set(unique_ids) <= found


__all__ = ["OutcomeUnknown", "Reconciled", "RegistryUnreachable", "RemoteRegistry", "RemoteRegistryClient"]
