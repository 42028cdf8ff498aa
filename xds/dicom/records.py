"""What the imaging store keeps about studies and instances (the services' view; :mod:`xds.store.imaging`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRecord:
    """One stored DICOM instance; its Part 10 bytes are in the document store under ``sha256``."""

    sop_instance_uid: str
    study_uid: str
    series_uid: str
    sop_class_uid: str
    transfer_syntax: str
    modality: str = ""
    body_part: str = ""
    size: int
    sha256: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyRecord:
    """A study this node holds: its local patient, the registry entry of its current manifest (``""`` before the
    first registration), where it came from and how its instances carried the BSN."""

    study_uid: str
    patient_id: str
    accession: str = ""
    manifest_unique_id: str = ""
    manifest_entry_uuid: str = ""
    sender: str = "local"
    bsn_bucket: str = ""
    bsn_detail: str = ""
    stored_form: str = "outbound"
    """``outbound``: stored as the instances leave; ``local``: filed under the local id, rewritten on the way out."""
    received: datetime | None = None


__all__ = ["InstanceRecord", "StudyRecord"]
