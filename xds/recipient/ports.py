"""What the Document Recipient services need from storage, and nothing more.

:class:`xds.store.inbox.SqlInbox` and :class:`xds.store.sql.SqlRegistryStore` implement these protocols;
tests may swap in others.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from xds.recipient.model import Delivery, NewDelivery


class Inbox(Protocol):
    """Stored deliveries."""

    def add(
        self, deliveries: Sequence[tuple[NewDelivery, float | None]], *, notes: Sequence[tuple[str, str]] = ()
    ) -> list[Delivery]:
        """Store deliveries (with their quiet periods, None: not notified) and add ``(reference, detail)``
        "re-sent" notes to earlier ones, all in one transaction."""
        ...

    def find_resent(self, mailbox: str, submission_set_uid: str) -> Delivery | None:
        """The delivery of ``mailbox`` that came with this SubmissionSet uniqueId, or None."""
        ...

    def get(self, reference: str) -> Delivery | None:
        """A delivery with its documents and history."""
        ...

    def metadata(self, reference: str) -> bytes:
        """The SubmitObjectsRequest a delivery arrived with."""
        ...

    def note(self, reference: str, status: str, detail: str) -> None:
        """Add a history event."""
        ...

    def set_status(
        self,
        reference: str,
        status: str,
        detail: str,
        *,
        local_patient_id: str | None = None,
        expect: Collection[str] = ...,
    ) -> None:
        """Move a delivery to ``status`` with a history event (ValueError when it is not in ``expect``)."""
        ...


class PatientDirectory(Protocol):
    """Which patients this node knows."""

    def patient_known(self, patient_id: str) -> bool:
        """True when ``patient_id`` was fed."""
        ...

    def patients_with_alias(self, alias: str) -> list[str]:
        """The fed patients that have ``alias`` as another id."""
        ...


__all__ = ["Inbox", "PatientDirectory"]
