"""Deliveries: what a mailbox holds, as the inbox services and the command line see it.

A delivery is one received SubmissionSet routed to one mailbox (a submission addressed to two mailboxes is two
deliveries sharing the documents' content). Its ``status`` moves ``new`` (patient known, waiting) or
``unknown-patient`` (waiting for ``xds inbox reconcile``) to ``accepted`` (imported into this node's registry
and repository) or ``rejected``; every step is an :class:`Event` of its history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

NEW: Final = "new"
UNKNOWN_PATIENT: Final = "unknown-patient"
ACCEPTED: Final = "accepted"
REJECTED: Final = "rejected"
STATUSES: Final = (NEW, UNKNOWN_PATIENT, ACCEPTED, REJECTED)
OPEN_STATUSES: Final = (NEW, UNKNOWN_PATIENT)

TRANSPORT_XDR: Final = "xdr"
TRANSPORT_ITI80: Final = "iti-80"
TRANSPORT_XDM: Final = "xdm"
TRANSPORT_XDM_EMAIL: Final = "xdm-email"
TRANSPORT_DICOM: Final = "dicom"
"""Received DICOM studies that wait for a person (unknown patient, doubtful BSN): ``xds dicom import``."""
DICOM_MIME: Final = "application/dicom"

URGENT_SLOT: Final = "urn:xds-node:push:priority"
"""SubmissionSet slot a sender sets to ``urgent`` for a delivery that is notified at once (no quiet period).
Extra slots must be named ``urn:`` but not ``urn:ihe:`` (ITI TF-3 §4.1.14)."""


@dataclass(frozen=True, slots=True)
class DeliveredDocument:
    """One document of a delivery, its content in the document store under ``sha256``."""

    entry_id: str
    unique_id: str
    mime_type: str
    size: int
    sha1: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Event:
    """One step of a delivery's history."""

    at: datetime
    status: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NewDelivery:
    """A delivery to be stored (the store gives it its id and reference)."""

    mailbox: str
    status: str
    transport: str
    sender: str
    patient_id: str
    local_patient_id: str
    message: str
    urgent: bool
    submission_set_uid: str
    recipients: tuple[str, ...]
    metadata_xml: bytes
    documents: tuple[DeliveredDocument, ...]
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """A stored delivery."""

    id: int
    reference: str
    mailbox: str
    status: str
    transport: str
    sender: str
    patient_id: str
    local_patient_id: str
    message: str
    urgent: bool
    received: datetime
    submission_set_uid: str
    recipients: tuple[str, ...]
    documents: tuple[DeliveredDocument, ...] = ()
    history: tuple[Event, ...] = ()

    @property
    def is_open(self) -> bool:
        """Still waiting for accept, reconcile or reject."""
        return self.status in OPEN_STATUSES


class AlreadyDelivered(Exception):
    """The same SubmissionSet reached the same mailbox in another request at the same time (the inbox's unique
    index refused the second): check the push again, it is now a re-send."""


def is_dicom(delivery: Delivery) -> bool:
    """True for a delivery of DICOM instances (a waiting study, or images pushed by XDR or XDM): it is filed as
    images (one manifest per study), not registered as documents."""
    return delivery.transport == TRANSPORT_DICOM or (
        bool(delivery.documents) and all(d.mime_type == DICOM_MIME for d in delivery.documents)
    )


__all__ = [
    "ACCEPTED",
    "DICOM_MIME",
    "NEW",
    "OPEN_STATUSES",
    "REJECTED",
    "STATUSES",
    "TRANSPORT_DICOM",
    "TRANSPORT_ITI80",
    "TRANSPORT_XDM",
    "TRANSPORT_XDM_EMAIL",
    "TRANSPORT_XDR",
    "UNKNOWN_PATIENT",
    "URGENT_SLOT",
    "AlreadyDelivered",
    "DeliveredDocument",
    "Delivery",
    "Event",
    "NewDelivery",
    "is_dicom",
]
