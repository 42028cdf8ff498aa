"""The consent gate (xds/consent/gate.py): combining policies, failing closed, auditing, the emergency rule."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from xds.consent.gate import EMERGENCY_RULE, EmergencyRefusals, Gate
from xds.consent.local import DENY, OPT_OUT, Directive, LocalConsentPolicy
from xds.consent.local import EMERGENCY as LOCAL_EMERGENCY
from xds.consent.model import (
    PURPOSE_EMERGENCY,
    PURPOSE_TREATMENT,
    AccessRequest,
    ConsentPolicy,
    Decision,
    Requester,
    deny,
    permit,
)

PATIENT = "999999990^^^&2.16.840.1.113883.2.4.6.3&ISO"
OTHER_PATIENT = "999999999^^^&2.16.840.1.113883.2.4.6.3&ISO"
BSN = "999999990"
HOME = "urn:oid:1.2.3.4"
REMOTE = "urn:oid:5.6.7.8"
HOLDER = "12345678"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
GGZ = "GGZ"
LAB = "LAB"
LOCAL = Requester(user_id="900000001", organisation_id="87654321")
CROSS = Requester(user_id="900000002", organisation_id="11223344", community_id=REMOTE)
EMERGENCY = Requester(user_id="900000003", organisation_id="87654321", purpose_of_use=PURPOSE_EMERGENCY)


class Policy:
    """A fake policy: answers ``outcome`` (or raises it) and keeps every request it was asked."""

    def __init__(self, name: str, outcome: bool | Decision | Exception = True) -> None:
        self.name = name
        self.outcome = outcome
        self.calls: list[AccessRequest] = []

    def decide(self, request: AccessRequest) -> Decision:
        self.calls.append(request)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        if isinstance(self.outcome, Decision):
            return self.outcome
        return (permit if self.outcome else deny)(self.name, f"{self.name} says {self.outcome}")


@dataclass
class Record:
    """A fake audit trail; raises ``failure`` when set."""

    calls: list[tuple[AccessRequest, Decision]] = field(default_factory=list)
    failure: Exception | None = None

    def __call__(self, request: AccessRequest, decision: Decision) -> None:
        self.calls.append((request, decision))
        if self.failure is not None:
            raise self.failure


@dataclass
class Refusals:
    """A fake emergency-refusal source: the patients in ``refusing`` refuse; raises ``failure`` when set."""

    refusing: set[str] = field(default_factory=set)
    failure: Exception | None = None
    calls: list[tuple[str, datetime]] = field(default_factory=list)

    def refuses_emergency(self, patient_id: str, at: datetime) -> object | None:
        self.calls.append((patient_id, at))
        if self.failure is not None:
            raise self.failure
        return "refusal" if patient_id in self.refusing else None


def gate(
    *policies: ConsentPolicy,
    record: Record | None = None,
    emergency: EmergencyRefusals | None = None,
    home: str = HOME,
) -> Gate:
    return Gate(
        policies=policies,
        record=record if record is not None else Record(),
        emergency=emergency,
        home_community_id=home,
        data_holder=HOLDER,
        bsn=lambda patient: BSN if patient == PATIENT else "",
        clock=lambda: NOW,
    )


# --- combining policies ----------------------------------------------------------------------------------


def test_one_permitting_policy_decides() -> None:
    decision = gate(Policy("a")).decide(PATIENT, LOCAL)
    assert decision == Decision(True, "a", "a says True")


def test_all_permits_combine_their_names_and_reasons() -> None:
    a, b, c = Policy("a"), Policy("b"), Policy("c")
    decision = gate(a, b, c).decide(PATIENT, LOCAL, GGZ)
    assert decision == Decision(True, "a+b+c", "a says True; b says True; c says True")
    assert (len(a.calls), len(b.calls), len(c.calls)) == (1, 1, 1)


@pytest.mark.parametrize(
    ("outcomes", "policy", "asked"),
    [
        ((False,), "a", 1),
        ((False, True), "a", 1),
        ((True, False), "b", 2),
        ((True, False, False), "b", 2),
        ((True, True, False), "c", 3),
    ],
)
def test_the_first_deny_decides(outcomes: tuple[bool, ...], policy: str, asked: int) -> None:
    policies = [Policy(name, outcome) for name, outcome in zip("abc", outcomes, strict=False)]
    decision = gate(*policies).decide(PATIENT, LOCAL)
    assert decision == Decision(False, policy, f"{policy} says False")
    assert [len(p.calls) for p in policies] == [1] * asked + [0] * (len(policies) - asked)


def test_a_policys_own_deny_is_returned_unchanged() -> None:
    own = Decision(False, "mitz", "no consent at Mitz")
    assert gate(Policy("a"), Policy("mitz", own)).decide(PATIENT, LOCAL) is own


def test_no_policy_denies() -> None:
    record = Record()
    decision = gate(record=record).decide(PATIENT, LOCAL)
    assert (decision.permit, decision.policy) == (False, "gate")
    assert record.calls == [(record.calls[0][0], decision)]


@pytest.mark.parametrize("position", [0, 1])
def test_a_failing_policy_denies_and_is_logged(position: int, caplog: pytest.LogCaptureFixture) -> None:
    policies = [Policy("a"), Policy("b")]
    policies[position] = Policy("broken", TimeoutError("decision point is down"))
    with caplog.at_level(logging.WARNING, logger="xds.consent"):
        decision = gate(*policies).decide(PATIENT, LOCAL)
    assert decision == Decision(False, "broken", "the policy could not decide (TimeoutError)")
    assert not decision.emergency
    assert len(policies[1].calls) == (0 if position == 0 else 1)
    [entry] = [r for r in caplog.records if r.name == "xds.consent"]
    assert entry.levelno == logging.WARNING
    assert entry.getMessage() == "consent policy failed; access denied"
    assert entry.__dict__["policy"] == "broken"
    assert entry.__dict__["error"] == "TimeoutError: decision point is down"


# --- the access request and the audit record -------------------------------------------------------------


@pytest.mark.parametrize("outcome", [True, False, RuntimeError("boom")], ids=["permit", "deny", "raises"])
def test_every_decision_is_recorded_once_with_its_request(outcome: bool | Exception) -> None:
    record = Record()
    decision = gate(Policy("a", outcome), record=record).decide(PATIENT, CROSS, GGZ)
    [(request, recorded)] = record.calls
    assert recorded is decision
    assert request == AccessRequest(
        patient_id=PATIENT, requester=CROSS, at=NOW, category=GGZ, bsn=BSN, data_holder=HOLDER
    )


def test_the_policy_gets_the_same_request_that_is_recorded() -> None:
    policy, record = Policy("a"), Record()
    gate(policy, record=record).decide(PATIENT, CROSS, LAB)
    assert policy.calls == [record.calls[0][0]]


def test_the_clock_is_read_per_decision() -> None:
    times = iter([NOW, NOW.replace(hour=13)])
    policy = Policy("a")
    g = Gate(policies=[policy], record=Record(), clock=lambda: next(times))
    g.decide(PATIENT, LOCAL)
    g.decide(PATIENT, LOCAL)
    assert [r.at for r in policy.calls] == [NOW, NOW.replace(hour=13)]


def test_category_defaults_to_the_whole_patient() -> None:
    policy = Policy("a")
    gate(policy).decide(PATIENT, LOCAL)
    assert policy.calls[0].category == ""


def test_a_decision_that_cannot_be_recorded_is_a_deny(caplog: pytest.LogCaptureFixture) -> None:
    policy, record = Policy("a"), Record(failure=OSError("disk full"))
    with caplog.at_level(logging.ERROR, logger="xds.consent"):
        decision = gate(policy, record=record).decide(PATIENT, LOCAL)
    assert (decision.permit, decision.policy) == (False, "audit")
    assert len(policy.calls) == 1
    assert len(record.calls) == 1
    assert record.calls[0][1].permit
    [entry] = [r for r in caplog.records if r.name == "xds.consent"]
    assert entry.levelno == logging.ERROR
    assert entry.__dict__["error"] == "OSError: disk full"


def test_an_emergency_permit_that_cannot_be_recorded_is_a_deny() -> None:
    record = Record(failure=OSError("disk full"))
    decision = gate(emergency=Refusals(), record=record).decide(PATIENT, EMERGENCY)
    assert (decision.permit, decision.policy, decision.emergency) == (False, "audit", False)
    assert record.calls[0][1].emergency


# --- requester's community ----------------------------------------------------------------------------------


def test_a_local_consumer_asks_as_the_home_community() -> None:
    policy, record = Policy("a"), Record()
    gate(policy, record=record).decide(PATIENT, LOCAL)
    asked = policy.calls[0].requester
    assert asked.community_id == HOME
    assert (asked.user_id, asked.organisation_id) == (LOCAL.user_id, LOCAL.organisation_id)
    assert record.calls[0][0].requester.community_id == HOME
    assert LOCAL.community_id == ""


def test_a_cross_community_requester_keeps_its_community() -> None:
    policy = Policy("a")
    gate(policy).decide(PATIENT, CROSS)
    assert policy.calls[0].requester is CROSS


def test_without_a_home_community_a_local_consumer_stays_local() -> None:
    policy = Policy("a")
    gate(policy, home="").decide(PATIENT, LOCAL)
    assert policy.calls[0].requester.community_id == ""


# --- BSN ------------------------------------------------------------------------------------------------


def test_an_unknown_bsn_is_empty() -> None:
    policy = Policy("a")
    gate(policy).decide(OTHER_PATIENT, LOCAL)
    assert policy.calls[0].bsn == ""


def test_a_failing_bsn_lookup_is_empty_and_still_decides() -> None:
    def broken(_patient: str) -> str:
        raise LookupError("no PIX")

    policy, record = Policy("a"), Record()
    decision = Gate(policies=[policy], record=record, bsn=broken, clock=lambda: NOW).decide(PATIENT, LOCAL)
    assert decision.permit
    assert policy.calls[0].bsn == ""
    assert record.calls[0][0].bsn == ""


# --- permitted -------------------------------------------------------------------------------------------


class ByKey:
    """A fake policy that permits the (patient, category) keys in ``allowed`` and counts its calls."""

    name = "by-key"

    def __init__(self, allowed: set[tuple[str, str]]) -> None:
        self.allowed = allowed
        self.calls: list[tuple[str, str]] = []

    def decide(self, request: AccessRequest) -> Decision:
        key = (request.patient_id, request.category)
        self.calls.append(key)
        return (permit if key in self.allowed else deny)(self.name, str(key))


def test_permitted_asks_once_per_distinct_key() -> None:
    keys = [(PATIENT, GGZ), (PATIENT, LAB), (PATIENT, GGZ), (OTHER_PATIENT, LAB), (PATIENT, ""), (PATIENT, LAB)]
    policy, record = ByKey({(PATIENT, LAB), (OTHER_PATIENT, LAB), (PATIENT, "")}), Record()
    allowed = gate(policy, record=record).permitted(iter(keys), LOCAL)
    assert allowed == {(PATIENT, LAB), (OTHER_PATIENT, LAB), (PATIENT, "")}
    assert policy.calls == [(PATIENT, GGZ), (PATIENT, LAB), (OTHER_PATIENT, LAB), (PATIENT, "")]
    assert len(record.calls) == 4


def test_permitted_of_nothing_asks_nothing() -> None:
    policy = ByKey(set())
    assert gate(policy).permitted([], LOCAL) == set()
    assert policy.calls == []


def test_permitted_denies_everything_when_nothing_may_be_recorded() -> None:
    policy = ByKey({(PATIENT, GGZ)})
    assert gate(policy, record=Record(failure=OSError("x"))).permitted([(PATIENT, GGZ)], LOCAL) == set()


# --- the emergency rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize("policies", [(), ("deny",), ("raise",), ("permit", "deny")])
def test_emergency_access_is_permitted_without_asking_the_policies(policies: Sequence[str]) -> None:
    outcomes: dict[str, bool | Exception] = {"permit": True, "deny": False, "raise": AssertionError("asked")}
    fakes = [Policy(name, outcomes[name]) for name in policies]
    refusals, record = Refusals(), Record()
    decision = gate(*fakes, record=record, emergency=refusals).decide(PATIENT, EMERGENCY, GGZ)
    assert decision == Decision(True, EMERGENCY_RULE, "emergency access (break-the-glass)", emergency=True)
    assert all(p.calls == [] for p in fakes)
    assert refusals.calls == [(PATIENT, NOW)]
    assert record.calls == [(record.calls[0][0], decision)]
    assert record.calls[0][0].requester.purpose_of_use == PURPOSE_EMERGENCY


def test_emergency_access_is_denied_when_the_patient_refuses() -> None:
    policy, record = Policy("a"), Record()
    refusals = Refusals(refusing={PATIENT})
    decision = gate(policy, record=record, emergency=refusals).decide(PATIENT, EMERGENCY)
    assert (decision.permit, decision.policy, decision.emergency) == (False, EMERGENCY_RULE, False)
    assert decision.reason == "the patient refuses emergency access"
    assert policy.calls == []
    assert record.calls[0][1] is decision


def test_emergency_refusal_is_per_patient() -> None:
    refusals = Refusals(refusing={OTHER_PATIENT})
    allowed = gate(emergency=refusals).permitted([(PATIENT, GGZ), (OTHER_PATIENT, GGZ)], EMERGENCY)
    assert allowed == {(PATIENT, GGZ)}


def test_emergency_access_is_denied_when_the_refusal_cannot_be_read() -> None:
    policy, record = Policy("a"), Record()
    refusals = Refusals(failure=ConnectionError("database down"))
    decision = gate(policy, record=record, emergency=refusals).decide(PATIENT, EMERGENCY)
    assert (decision.permit, decision.policy, decision.emergency) == (False, EMERGENCY_RULE, False)
    assert "ConnectionError" in decision.reason
    assert policy.calls == []
    assert len(record.calls) == 1


@pytest.mark.parametrize(("outcome", "expected"), [(True, True), (False, False)])
def test_without_the_emergency_rule_an_emergency_is_decided_by_the_policies(outcome: bool, expected: bool) -> None:
    policy = Policy("a", outcome)
    decision = gate(policy, emergency=None).decide(PATIENT, EMERGENCY)
    assert (decision.permit, decision.policy, decision.emergency) == (expected, "a", False)
    assert len(policy.calls) == 1
    assert policy.calls[0].requester.purpose_of_use == PURPOSE_EMERGENCY


def test_without_the_emergency_rule_and_without_policies_an_emergency_is_denied() -> None:
    decision = gate(emergency=None).decide(PATIENT, EMERGENCY)
    assert (decision.permit, decision.policy, decision.emergency) == (False, "gate", False)


def test_the_emergency_rule_applies_to_emergency_purpose_only() -> None:
    policy, refusals = Policy("a", False), Refusals()
    decision = gate(policy, emergency=refusals).decide(PATIENT, LOCAL)
    assert LOCAL.purpose_of_use == PURPOSE_TREATMENT
    assert (decision.permit, decision.policy, decision.emergency) == (False, "a", False)
    assert refusals.calls == []
    assert len(policy.calls) == 1


# --- with the local consent registry ---------------------------------------------------------------------


def test_the_local_registry_as_policy_and_emergency_source() -> None:
    directives = [
        Directive(id=1, patient_id=PATIENT, decision=DENY),
        Directive(id=2, patient_id=OTHER_PATIENT, decision=DENY, who=LOCAL_EMERGENCY),
    ]
    local = LocalConsentPolicy(lambda patient: [d for d in directives if d.patient_id == patient], stance=OPT_OUT)
    g = gate(local, emergency=local)
    treatment = g.decide(PATIENT, LOCAL)
    assert (treatment.permit, treatment.reason) == (False, "the patient's directive deny everyone (#1)")
    assert g.decide(PATIENT, EMERGENCY).emergency
    refused = g.decide(OTHER_PATIENT, EMERGENCY)
    assert (refused.permit, refused.policy) == (False, EMERGENCY_RULE)
