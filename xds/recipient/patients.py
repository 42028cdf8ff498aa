"""Which local patient a received submission is about, or none: never a guess.

Theory of operation: every patient id the sender gave is a candidate (the SubmissionSet's and each
DocumentEntry's patientId, each sourcePatientId, and the ``PID-3`` identifiers of sourcePatientInfo). A
candidate names a local patient when it is a fed patient id, when it is recorded as another id of exactly one fed
patient (``xds patient alias add``), or, where the node's patient policy is BSN-based, when it is a BSN that
passes the 11-check (the BSN id is then the local id, as the registry accepts it). All candidates must lead to the
same local patient; when none does, or two lead to different patients, the delivery waits in the
unknown-patient queue for a person to decide (``xds inbox reconcile``).

References
----------
DUTCH-CONTEXT.md §3 and §6 (BSN, mix-ups of patients), ARCHITECTURE.md §5 (known patients).
"""

from __future__ import annotations

from dataclasses import dataclass

from xds.model.hl7 import CX
from xds.model.metadata import Submission
from xds.recipient.ports import PatientDirectory
from xds.registry.patients import PatientPolicy, is_bsn_id


@dataclass(frozen=True, slots=True)
class PatientMatch:
    """The local patient (``""``: none), the sender's main patient id, and why."""

    local_patient_id: str
    sender_patient_id: str
    reason: str


def candidates(sub: Submission) -> list[CX]:
    """The patient ids a submission gives, in order, without repeats."""
    found: list[CX] = []
    for ss in sub.submission_sets:
        if ss.patient_id is not None:
            found.append(ss.patient_id)
    for de in sub.document_entries:
        if de.patient_id is not None:
            found.append(de.patient_id)
        if de.source_patient_id is not None:
            found.append(de.source_patient_id)
        for info in de.source_patient_info:
            if info.startswith("PID-3|"):
                for value in info[6:].split("~"):
                    try:
                        found.append(CX.parse(value))
                    except ValueError:
                        continue
    unique: dict[str, CX] = {}
    for cx in found:
        unique.setdefault(str(cx), cx)
    return list(unique.values())


def match_patient(sub: Submission, directory: PatientDirectory, policy: PatientPolicy) -> PatientMatch:
    """The local patient of ``sub`` (see the module docstring)."""
    ids = candidates(sub)
    sender = str(ids[0]) if ids else ""
    leads: dict[str, str] = {}
    for cx in ids:
        text = str(cx)
        if directory.patient_known(text):
            leads.setdefault(text, f"{text} is a known patient")
            continue
        owners = directory.patients_with_alias(text)
        if len(owners) == 1:
            leads.setdefault(owners[0], f"{text} is an alias of {owners[0]}")
        elif len(owners) > 1:
            return PatientMatch("", sender, f"{text} is an alias of {len(owners)} patients")
        elif policy is PatientPolicy.BSN and is_bsn_id(cx):
            leads.setdefault(text, f"{text} is a valid BSN")
    if not leads:
        why = "no patient id was given" if not ids else "no given patient id is known here"
        return PatientMatch("", sender, why)
    if len(leads) > 1:
        return PatientMatch("", sender, "the given patient ids lead to different patients: " + ", ".join(sorted(leads)))
    local, reason = next(iter(leads.items()))
    return PatientMatch(local, sender, reason)


__all__ = ["PatientMatch", "candidates", "match_patient"]
