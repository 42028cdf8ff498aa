"""Patient identity: the BSN 11-check and the per-domain patient id policy."""

from __future__ import annotations

import pytest

from xds import vocabulary as v
from xds.model.hl7 import CX
from xds.registry.patients import PatientPolicy, bsn_valid, is_bsn_id, patient_known

# DUTCH-CONTEXT.md §3: checked locally
VALID = ["999999990", "100202020", "100197243", "249566758", "123456782", "900186021", "12345672"]
INVALID = [
    "999999999",
    "000000000",
    "12345678a",
    "1234567",
    "1000000000",
    "",
    "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff12",
]


@pytest.mark.parametrize("bsn", VALID)
def test_valid_bsn(bsn: str) -> None:
    assert bsn_valid(bsn)


@pytest.mark.parametrize("bsn", INVALID)
def test_invalid_bsn(bsn: str) -> None:
    assert not bsn_valid(bsn)


class _Fed:
    def __init__(self, *ids: str) -> None:
        self.ids = set(ids)

    def patient_known(self, patient_id: str) -> bool:
        return patient_id in self.ids


BSN = CX.parse(f"999999990^^^&{v.BSN_OID}&ISO")
BAD_BSN = CX.parse(f"999999999^^^&{v.BSN_OID}&ISO")
LOCAL = CX.parse("123^^^&1.2.3&ISO")
BSN_OTHER_AUTHORITY = CX.parse("999999990^^^&1.2.3&ISO")


@pytest.mark.parametrize(
    ("cx", "policy", "fed", "known"),
    [
        (BSN, PatientPolicy.BSN, (), True),
        (BSN, PatientPolicy.REGISTERED, (), False),
        (BAD_BSN, PatientPolicy.BSN, (), False),
        (BSN_OTHER_AUTHORITY, PatientPolicy.BSN, (), False),
        (LOCAL, PatientPolicy.BSN, (str(LOCAL),), True),
        (LOCAL, PatientPolicy.REGISTERED, (str(LOCAL),), True),
        (LOCAL, PatientPolicy.REGISTERED, (), False),
    ],
)
def test_patient_known(cx: CX, policy: PatientPolicy, fed: tuple[str, ...], known: bool) -> None:
    assert patient_known(cx, _Fed(*fed), policy) is known
    assert is_bsn_id(cx) is (cx in (BSN,))
