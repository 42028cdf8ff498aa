"""The local consent registry as a policy (xds/consent/local.py): directive checks, validity, evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from xds.consent.local import (
    COMMUNITY,
    DENY,
    EMERGENCY,
    EVERYONE,
    GRANT,
    NAME,
    OPT_IN,
    OPT_OUT,
    ORGANISATION,
    Directive,
    LocalConsentPolicy,
    evaluate,
    refuses_emergency,
)
from xds.consent.model import AccessRequest, Requester

PATIENT = "999999990^^^&2.16.840.1.113883.2.4.6.3&ISO"
OTHER_PATIENT = "999999999^^^&2.16.840.1.113883.2.4.6.3&ISO"
GP = "01234567"
"""URA of the patient's GP."""
HOSPITAL = "87654321"
COMMUNITY_A = "urn:oid:1.2.3.4"
COMMUNITY_B = "urn:oid:1.2.3.5"
GGZ = "GGZ"
LAB = "LAB"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def directive(decision: str = GRANT, who: str = EVERYONE, who_id: str = "", **fields: Any) -> Directive:
    fields.setdefault("patient_id", PATIENT)
    return Directive(decision=decision, who=who, who_id=who_id, **fields)


def request(
    *,
    organisation: str = HOSPITAL,
    community: str = COMMUNITY_A,
    category: str = "",
    patient: str = PATIENT,
    at: datetime = NOW,
) -> AccessRequest:
    requester = Requester(user_id="900000001", organisation_id=organisation, community_id=community)
    return AccessRequest(patient_id=patient, requester=requester, at=at, category=category)


# --- Directive validation --------------------------------------------------------------------------------

INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("bad decision", {"decision": "allow"}, "decision must be one of grant, deny, not 'allow'"),
    ("empty decision", {"decision": ""}, "decision must be one of"),
    ("bad scope", {"who": "anyone"}, "scope must be one of everyone, community, organisation, emergency"),
    ("community without id", {"who": COMMUNITY}, "a community directive names the community"),
    ("organisation without id", {"who": ORGANISATION}, "an? organisation directive names the organisation"),
    ("everyone with id", {"who": EVERYONE, "who_id": GP}, "an everyone directive names nobody"),
    ("emergency with id", {"who": EMERGENCY, "decision": DENY, "who_id": GP}, "an emergency directive names nobody"),
    ("emergency grant", {"who": EMERGENCY, "decision": GRANT}, "only records a refusal"),
    ("emergency with category", {"who": EMERGENCY, "decision": DENY, "category": GGZ}, "only records a refusal"),
    ("empty patient", {"patient_id": ""}, "a directive names its patient"),
    ("naive valid_from", {"valid_from": datetime(2026, 1, 1)}, "time zone"),
    ("naive valid_until", {"valid_until": datetime(2026, 1, 1)}, "time zone"),
    ("naive recorded", {"recorded": datetime(2026, 1, 1)}, "time zone"),
    ("naive revoked", {"revoked": datetime(2026, 1, 1)}, "time zone"),
    ("until equals from", {"valid_from": NOW, "valid_until": NOW}, "valid_until must be after valid_from"),
    ("until before from", {"valid_from": NOW, "valid_until": NOW - HOUR}, "valid_until must be after valid_from"),
]


@pytest.mark.parametrize(("fields", "message"), [(f, m) for _, f, m in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_directive_is_refused(fields: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"patient_id": PATIENT, "decision": GRANT, **fields}
    with pytest.raises(ValueError, match=message):
        Directive(**values)


VALID: list[dict[str, Any]] = [
    {"decision": GRANT},
    {"decision": DENY, "who": COMMUNITY, "who_id": COMMUNITY_A},
    {"decision": GRANT, "who": ORGANISATION, "who_id": GP, "category": GGZ},
    {"decision": DENY, "who": EMERGENCY},
    {"decision": GRANT, "valid_from": NOW, "valid_until": NOW + HOUR, "recorded": NOW, "revoked": NOW},
]


@pytest.mark.parametrize("fields", VALID)
def test_valid_directive_is_kept(fields: dict[str, Any]) -> None:
    d = Directive(patient_id=PATIENT, **fields)
    assert (d.decision, d.who) == (fields["decision"], fields.get("who", EVERYONE))


def test_times_in_another_zone_compare_by_instant() -> None:
    cet = timezone(HOUR)
    d = directive(
        valid_from=datetime(2026, 11, 25, 13, 0, tzinfo=cet), valid_until=datetime(2026, 11, 25, 14, 0, tzinfo=cet)
    )
    assert d.in_force(NOW)
    assert not d.in_force(NOW - timedelta(seconds=1))
    assert not d.in_force(NOW + HOUR)


# --- in_force --------------------------------------------------------------------------------------------

IN_FORCE: list[tuple[str, dict[str, Any], bool]] = [
    ("no limits", {}, True),
    ("before valid_from", {"valid_from": NOW + HOUR}, False),
    ("at valid_from", {"valid_from": NOW}, True),
    ("after valid_from", {"valid_from": NOW - HOUR}, True),
    ("before valid_until", {"valid_until": NOW + HOUR}, True),
    ("at valid_until (excluded)", {"valid_until": NOW}, False),
    ("after valid_until", {"valid_until": NOW - HOUR}, False),
    ("inside the period", {"valid_from": NOW - HOUR, "valid_until": NOW + HOUR}, True),
    ("revoked before", {"revoked": NOW - HOUR}, False),
    ("revoked at", {"revoked": NOW}, False),
    ("revoked after", {"revoked": NOW + HOUR}, True),
]


@pytest.mark.parametrize(("fields", "expected"), [(f, e) for _, f, e in IN_FORCE], ids=[i for i, _, _ in IN_FORCE])
def test_in_force(fields: dict[str, Any], expected: bool) -> None:
    assert directive(**fields).in_force(NOW) is expected


# --- describe --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "text"),
    [
        (directive(id=3), "grant everyone (#3)"),
        (directive(DENY, ORGANISATION, GP, category=GGZ, id=12), f"deny organisation {GP} category {GGZ} (#12)"),
        (directive(GRANT, COMMUNITY, COMMUNITY_A, id=7), f"grant community {COMMUNITY_A} (#7)"),
        (directive(DENY, EMERGENCY, id=1), "deny emergency (#1)"),
    ],
)
def test_describe(d: Directive, text: str) -> None:
    assert d.describe() == text


# --- evaluate: no matching directive ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stance", "permit", "reason"),
    [
        (OPT_IN, False, "no consent recorded (node stance opt-in)"),
        (OPT_OUT, True, "no objection recorded (node stance opt-out)"),
    ],
)
def test_the_stance_decides_when_nothing_matches(stance: str, permit: bool, reason: str) -> None:
    decision = evaluate([], request(), stance=stance)
    assert (decision.permit, decision.policy, decision.reason, decision.emergency) == (permit, NAME, reason, False)


IGNORED: list[tuple[str, Directive]] = [
    ("other patient", directive(patient_id=OTHER_PATIENT)),
    ("revoked", directive(revoked=NOW - HOUR)),
    ("expired", directive(valid_until=NOW)),
    ("not yet valid", directive(valid_from=NOW + HOUR)),
    ("other community", directive(GRANT, COMMUNITY, COMMUNITY_B)),
    ("other organisation", directive(GRANT, ORGANISATION, GP)),
    ("other category", directive(category=LAB)),
    ("category, whole patient asked", directive(category=GGZ)),
]


@pytest.mark.parametrize("d", [d for _, d in IGNORED], ids=[i for i, _ in IGNORED])
def test_a_grant_that_does_not_apply_leaves_opt_in_denying(d: Directive) -> None:
    decision = evaluate([d], request(category="" if d.category == GGZ else GGZ), stance=OPT_IN)
    assert not decision.permit
    assert decision.reason == "no consent recorded (node stance opt-in)"


@pytest.mark.parametrize("d", [d for _, d in IGNORED], ids=[i for i, _ in IGNORED])
def test_a_deny_that_does_not_apply_leaves_opt_out_permitting(d: Directive) -> None:
    denial = Directive(**{**_fields(d), "decision": DENY})
    decision = evaluate([denial], request(category="" if d.category == GGZ else GGZ), stance=OPT_OUT)
    assert decision.permit
    assert decision.reason == "no objection recorded (node stance opt-out)"


def _fields(d: Directive) -> dict[str, Any]:
    return {name: getattr(d, name) for name in Directive.__dataclass_fields__}


@pytest.mark.parametrize("stance", ["", "opt_out", "bogus"])
def test_an_unknown_stance_fails_closed(stance: str) -> None:
    assert not evaluate([], request(), stance=stance).permit


def test_emergency_directives_take_no_part_in_evaluate() -> None:
    refusal = directive(DENY, EMERGENCY)
    decision = evaluate([refusal], request(), stance=OPT_OUT)
    assert decision.permit
    assert decision.reason == "no objection recorded (node stance opt-out)"


def test_an_emergency_refusal_does_not_outrank_a_grant() -> None:
    decision = evaluate([directive(DENY, EMERGENCY, id=1), directive(GRANT, id=2)], request(), stance=OPT_IN)
    assert decision.permit
    assert decision.reason == "the patient's directive grant everyone (#2)"


# --- evaluate: matching directives -----------------------------------------------------------------------


@pytest.mark.parametrize("stance", [OPT_IN, OPT_OUT])
@pytest.mark.parametrize(
    ("d", "permit"),
    [
        (directive(GRANT), True),
        (directive(DENY), False),
        (directive(GRANT, COMMUNITY, COMMUNITY_A), True),
        (directive(DENY, COMMUNITY, COMMUNITY_A), False),
        (directive(GRANT, ORGANISATION, HOSPITAL), True),
        (directive(DENY, ORGANISATION, HOSPITAL), False),
        (directive(GRANT, category=GGZ), True),
        (directive(DENY, category=GGZ), False),
        (directive(GRANT, valid_from=NOW - HOUR, valid_until=NOW + HOUR, revoked=NOW + HOUR), True),
    ],
    ids=lambda v: v.describe() if isinstance(v, Directive) else None,
)
def test_a_matching_directive_overrides_the_stance(d: Directive, permit: bool, stance: str) -> None:
    decision = evaluate([d], request(category=GGZ), stance=stance)
    assert decision.permit is permit
    assert decision.policy == NAME


def _d(decision: str, who: str, category: str = "", ident: int = 0) -> Directive:
    who_id = {EVERYONE: "", COMMUNITY: COMMUNITY_A, ORGANISATION: HOSPITAL}[who]
    return directive(decision, who, who_id, category=category, id=ident)


# (winner, loser): the first is more specific, or equally specific and a deny.
PRECEDENCE: list[tuple[str, Directive, Directive]] = [
    ("organisation grant beats community deny", _d(GRANT, ORGANISATION), _d(DENY, COMMUNITY)),
    ("organisation deny beats community grant", _d(DENY, ORGANISATION), _d(GRANT, COMMUNITY)),
    ("organisation grant beats everyone deny", _d(GRANT, ORGANISATION), _d(DENY, EVERYONE)),
    ("community grant beats everyone deny", _d(GRANT, COMMUNITY), _d(DENY, EVERYONE)),
    ("community deny beats everyone grant", _d(DENY, COMMUNITY), _d(GRANT, EVERYONE)),
    ("level beats category", _d(GRANT, ORGANISATION), _d(DENY, COMMUNITY, GGZ)),
    ("level beats category (everyone)", _d(DENY, COMMUNITY), _d(GRANT, EVERYONE, GGZ)),
    ("category grant beats all-categories deny", _d(GRANT, EVERYONE, GGZ), _d(DENY, EVERYONE)),
    ("category deny beats all-categories grant", _d(DENY, EVERYONE, GGZ), _d(GRANT, EVERYONE)),
    ("organisation category beats organisation", _d(GRANT, ORGANISATION, GGZ), _d(DENY, ORGANISATION)),
    ("community category beats community", _d(DENY, COMMUNITY, GGZ), _d(GRANT, COMMUNITY)),
    ("deny beats grant (everyone)", _d(DENY, EVERYONE), _d(GRANT, EVERYONE)),
    ("deny beats grant (community)", _d(DENY, COMMUNITY), _d(GRANT, COMMUNITY)),
    ("deny beats grant (organisation)", _d(DENY, ORGANISATION), _d(GRANT, ORGANISATION)),
    ("deny beats grant (category)", _d(DENY, ORGANISATION, GGZ), _d(GRANT, ORGANISATION, GGZ)),
]


@pytest.mark.parametrize("stance", [OPT_IN, OPT_OUT])
@pytest.mark.parametrize("order", ["winner first", "loser first"])
@pytest.mark.parametrize(("winner", "loser"), [(w, lo) for _, w, lo in PRECEDENCE], ids=[i for i, _, _ in PRECEDENCE])
def test_the_most_specific_directive_decides(winner: Directive, loser: Directive, order: str, stance: str) -> None:
    winner = Directive(**{**_fields(winner), "id": 1})
    loser = Directive(**{**_fields(loser), "id": 2})
    directives = [winner, loser] if order == "winner first" else [loser, winner]
    decision = evaluate(directives, request(category=GGZ), stance=stance)
    assert decision.permit is (winner.decision == GRANT)
    assert decision.reason == f"the patient's directive {winner.describe()}"


def test_a_category_directive_decides_for_that_category_only() -> None:
    directives = [_d(GRANT, EVERYONE, ident=1), _d(DENY, EVERYONE, GGZ, ident=2)]
    assert not evaluate(directives, request(category=GGZ), stance=OPT_IN).permit
    lab = evaluate(directives, request(category=LAB), stance=OPT_IN)
    assert lab.permit
    assert lab.reason == "the patient's directive grant everyone (#1)"


def test_among_several_grants_the_first_is_named() -> None:
    directives = [_d(GRANT, EVERYONE, ident=5), _d(GRANT, EVERYONE, ident=6)]
    assert evaluate(directives, request(), stance=OPT_IN).reason == "the patient's directive grant everyone (#5)"


def test_among_several_denials_the_first_deny_is_named() -> None:
    directives = [_d(GRANT, EVERYONE, ident=4), _d(DENY, EVERYONE, ident=5), _d(DENY, EVERYONE, ident=6)]
    decision = evaluate(directives, request(), stance=OPT_OUT)
    assert (decision.permit, decision.reason) == (False, "the patient's directive deny everyone (#5)")


def test_an_ignored_specific_directive_does_not_shadow_a_general_one() -> None:
    directives = [
        directive(GRANT, ORGANISATION, HOSPITAL, revoked=NOW - HOUR, id=1),
        directive(GRANT, ORGANISATION, GP, id=2),
        directive(DENY, id=3),
    ]
    decision = evaluate(directives, request(), stance=OPT_OUT)
    assert (decision.permit, decision.reason) == (False, "the patient's directive deny everyone (#3)")


def test_a_directive_in_force_is_followed_after_the_previous_one_expired() -> None:
    directives = [
        directive(GRANT, valid_until=NOW, id=1),
        directive(DENY, valid_from=NOW, id=2),
    ]
    before = evaluate(directives, request(at=NOW - HOUR), stance=OPT_OUT)
    after = evaluate(directives, request(at=NOW), stance=OPT_OUT)
    assert (before.permit, before.reason) == (True, "the patient's directive grant everyone (#1)")
    assert (after.permit, after.reason) == (False, "the patient's directive deny everyone (#2)")


# --- evaluate: scenarios ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("organisation", "category", "permit"),
    [
        (GP, "", True),
        (GP, GGZ, True),
        (HOSPITAL, "", False),
        (HOSPITAL, GGZ, False),
        ("", "", False),
    ],
)
def test_opt_out_deny_everyone_but_my_gp(organisation: str, category: str, permit: bool) -> None:
    directives = [directive(DENY, id=1), directive(GRANT, ORGANISATION, GP, id=2)]
    decision = evaluate(directives, request(organisation=organisation, category=category), stance=OPT_OUT)
    assert decision.permit is permit
    expected = f"grant organisation {GP} (#2)" if permit else "deny everyone (#1)"
    assert decision.reason == f"the patient's directive {expected}"


@pytest.mark.parametrize(
    ("category", "permit"),
    [(GGZ, False), (LAB, True), ("", True)],
)
def test_opt_in_grant_everyone_but_hide_ggz(category: str, permit: bool) -> None:
    directives = [directive(GRANT, id=1), directive(DENY, category=GGZ, id=2)]
    for organisation, community in ((GP, COMMUNITY_A), (HOSPITAL, COMMUNITY_B)):
        decision = evaluate(
            directives, request(organisation=organisation, community=community, category=category), stance=OPT_IN
        )
        assert decision.permit is permit


# --- refuses_emergency -----------------------------------------------------------------------------------


def test_refuses_emergency_finds_the_refusal_in_force() -> None:
    refusal = directive(DENY, EMERGENCY, id=9)
    found = refuses_emergency([directive(DENY, id=1), refusal], PATIENT, NOW)
    assert found is refusal


@pytest.mark.parametrize(
    "directives",
    [
        [],
        [directive(DENY), directive(DENY, ORGANISATION, GP), directive(DENY, category=GGZ)],
        [directive(DENY, EMERGENCY, patient_id=OTHER_PATIENT)],
        [directive(DENY, EMERGENCY, revoked=NOW)],
        [directive(DENY, EMERGENCY, valid_until=NOW)],
        [directive(DENY, EMERGENCY, valid_from=NOW + HOUR)],
    ],
    ids=["none", "other scopes", "other patient", "revoked", "expired", "not yet valid"],
)
def test_refuses_emergency_none(directives: list[Directive]) -> None:
    assert refuses_emergency(directives, PATIENT, NOW) is None


# --- LocalConsentPolicy ----------------------------------------------------------------------------------


class Directives:
    """A directives callable that records which patients it was asked about."""

    def __init__(self, directives: Sequence[Directive]) -> None:
        self.directives = directives
        self.asked: list[str] = []

    def __call__(self, patient_id: str) -> Sequence[Directive]:
        self.asked.append(patient_id)
        return [d for d in self.directives if d.patient_id == patient_id]


@pytest.mark.parametrize("stance", ["", "opt_in", "OPT-IN", "deny"])
def test_policy_refuses_an_unknown_stance(stance: str) -> None:
    with pytest.raises(ValueError, match="consent stance must be one of opt-in, opt-out"):
        LocalConsentPolicy(Directives([]), stance=stance)


@pytest.mark.parametrize(("stance", "permit"), [(OPT_IN, False), (OPT_OUT, True)])
def test_policy_keeps_its_stance(stance: str, permit: bool) -> None:
    policy = LocalConsentPolicy(Directives([]), stance=stance)
    assert policy.stance == stance
    assert policy.name == NAME
    assert policy.decide(request()).permit is permit


def test_policy_decides_on_the_requested_patients_directives() -> None:
    source = Directives([directive(DENY, patient_id=OTHER_PATIENT, id=1), directive(GRANT, id=2)])
    policy = LocalConsentPolicy(source, stance=OPT_IN)
    decision = policy.decide(request(category=GGZ))
    assert source.asked == [PATIENT]
    assert (decision.permit, decision.policy, decision.reason) == (
        True,
        NAME,
        "the patient's directive grant everyone (#2)",
    )
    other = policy.decide(request(patient=OTHER_PATIENT))
    assert source.asked == [PATIENT, OTHER_PATIENT]
    assert (other.permit, other.reason) == (False, "the patient's directive deny everyone (#1)")


def test_policy_ignores_other_patients_even_if_the_callable_returns_them() -> None:
    policy = LocalConsentPolicy(lambda _patient: [directive(GRANT, patient_id=OTHER_PATIENT)], stance=OPT_IN)
    assert not policy.decide(request()).permit


def test_policy_refuses_emergency_through_the_callable() -> None:
    refusal = directive(DENY, EMERGENCY, valid_until=NOW + HOUR, id=4)
    source = Directives([refusal])
    policy = LocalConsentPolicy(source, stance=OPT_OUT)
    assert policy.refuses_emergency(PATIENT, NOW) is refusal
    assert policy.refuses_emergency(PATIENT, NOW + HOUR) is None
    assert policy.refuses_emergency(OTHER_PATIENT, NOW) is None
    assert source.asked == [PATIENT, PATIENT, OTHER_PATIENT]
