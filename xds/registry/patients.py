"""Patient identity: which patient ids the registry accepts (fed ids, and BSNs where the domain is BSN-based).

References
----------
ITI TF-2 §3.42.4.1.3 ("The Document Registry shall reject a submission whose patient id it does not know,
XDSUnknownPatientId"); ARCHITECTURE.md §5 (BSN rule); DUTCH-CONTEXT.md §3 (the 11-check).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from xds import vocabulary as v
from xds.model.hl7 import CX


class PatientPolicy(StrEnum):
    """``registered``: fed ids only. ``bsn``: fed ids, or any BSN that passes the 11-check."""

    REGISTERED = "registered"
    BSN = "bsn"


class _Known(Protocol):
    def patient_known(self, patient_id: str) -> bool: ...


def bsn_valid(bsn: str) -> bool:
    """The BSN 11-check ("elfproef"): 9 digits (8 padded with a leading 0), weighted sum divisible by 11.

    sum = 9*d1 + 8*d2 + 7*d3 + 6*d4 + 5*d5 + 4*d6 + 3*d7 + 2*d8 - 1*d9; valid iff sum % 11 == 0 and sum != 0.
    """
    if len(bsn) == 8:
        bsn = "0" + bsn
    if len(bsn) != 9 or not bsn.isascii() or not bsn.isdigit():
        return False
    total = sum((9 - i) * int(d) for i, d in enumerate(bsn[:8])) - int(bsn[8])
    return total != 0 and total % 11 == 0


def is_bsn_id(cx: CX) -> bool:
    """True when ``cx`` is a BSN patient id (``<BSN>^^^&2.16.840.1.113883.2.4.6.3&ISO``) passing the 11-check."""
    return (
        cx.is_xds_patient_id()
        and cx.assigning_authority.universal_id == v.BSN_OID
        and len(cx.id_number) == 9
        and bsn_valid(cx.id_number)
    )


def patient_known(cx: CX, store: _Known, policy: PatientPolicy) -> bool:
    """True when the registry accepts submissions for ``cx``."""
    if policy is PatientPolicy.BSN and is_bsn_id(cx):
        return True
    return store.patient_known(str(cx))


__all__ = ["PatientPolicy", "bsn_valid", "is_bsn_id", "patient_known"]
