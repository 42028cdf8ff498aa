"""The local consent registry as a policy: a patient's directives, kept in this node's database.

Theory of operation: a directive grants or denies access to one patient's data, for a scope of requesters
(everyone, one community, one organisation by URA), optionally for one data category only, within an optional
validity period. A ``deny`` directive with scope ``emergency`` records that the patient refuses emergency
access (break-the-glass); the gate reads it through :meth:`LocalConsentPolicy.refuses_emergency`.

To decide, the policy takes the patient's directives that are in force at the moment asked and match the
request, and lets the most specific ones decide: an organisation directive beats a community directive, which
beats an everyone directive; at the same level, one for the asked category beats one for all categories; among
equally specific directives, deny beats grant. With no matching directive the node's default stance decides:
``opt-in`` denies ("no consent recorded"), ``opt-out`` permits ("no objection recorded").

So under opt-out a patient can deny everyone and still grant their own GP's organisation, and under opt-in a
grant for everyone can exclude one category with a deny for that category.

References
----------
ARCHITECTURE.md §7; ../shared/DUTCH-CONTEXT.md §1.4.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from xds.consent.model import AccessRequest, Decision, deny, permit

GRANT: Final = "grant"
DENY: Final = "deny"
DECISIONS: Final = (GRANT, DENY)

EVERYONE: Final = "everyone"
COMMUNITY: Final = "community"
ORGANISATION: Final = "organisation"
EMERGENCY: Final = "emergency"
SCOPES: Final = (EVERYONE, COMMUNITY, ORGANISATION, EMERGENCY)

OPT_IN: Final = "opt-in"
OPT_OUT: Final = "opt-out"
STANCES: Final = (OPT_IN, OPT_OUT)

NAME: Final = "local"

_RANK: Final = {EVERYONE: 1, COMMUNITY: 2, ORGANISATION: 3}


@dataclass(frozen=True, slots=True, kw_only=True)
class Directive:
    """One consent directive of a patient (table ``consent``)."""

    id: int = 0
    patient_id: str
    decision: str
    who: str = EVERYONE
    who_id: str = ""
    category: str = ""
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    source: str = ""
    recorded: datetime | None = None
    revoked: datetime | None = None

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, not {self.decision!r}")
        if self.who not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {self.who!r}")
        if self.who in (COMMUNITY, ORGANISATION) and not self.who_id:
            raise ValueError(f"{'an' if self.who == ORGANISATION else 'a'} {self.who} directive names the {self.who}")
        if self.who in (EVERYONE, EMERGENCY) and self.who_id:
            raise ValueError(f"an {self.who} directive names nobody")
        if self.who == EMERGENCY and (self.decision != DENY or self.category):
            raise ValueError("the emergency scope only records a refusal (deny) of emergency access to everything")
        if not self.patient_id:
            raise ValueError("a directive names its patient")
        if "^" in self.category:
            raise ValueError("a category is a classCode code alone, without ^^ and its coding scheme")
        for value in (self.valid_from, self.valid_until, self.recorded, self.revoked):
            if value is not None and value.tzinfo is None:
                raise ValueError("directive times must carry a time zone")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")

    def in_force(self, at: datetime) -> bool:
        """Not revoked and ``valid_from <= at < valid_until``."""
        if self.revoked is not None and self.revoked <= at:
            return False
        if self.valid_from is not None and at < self.valid_from:
            return False
        return self.valid_until is None or at < self.valid_until

    def describe(self) -> str:
        """A short text for reasons and listings: ``deny organisation 01234567 category X (#12)``."""
        scope = self.who if not self.who_id else f"{self.who} {self.who_id}"
        category = f" category {self.category}" if self.category else ""
        return f"{self.decision} {scope}{category} (#{self.id})"


def evaluate(directives: Sequence[Directive], request: AccessRequest, *, stance: str) -> Decision:
    """The local registry's decision for ``request`` from the patient's ``directives`` (pure)."""
    requester = request.requester
    best: tuple[int, int] = (0, 0)
    deciding: list[Directive] = []
    for d in directives:
        if d.who == EMERGENCY or d.patient_id != request.patient_id or not d.in_force(request.at):
            continue
        if d.who == COMMUNITY and d.who_id != requester.community_id:
            continue
        if d.who == ORGANISATION and d.who_id != requester.organisation_id:
            continue
        if d.category and d.category != request.category:
            continue
        rank = (_RANK[d.who], 1 if d.category else 0)
        if rank > best:
            best, deciding = rank, [d]
        elif rank == best:
            deciding.append(d)
    if deciding:
        denials = [d for d in deciding if d.decision == DENY]
        if denials:
            return deny(NAME, f"the patient's directive {denials[0].describe()}")
        return permit(NAME, f"the patient's directive {deciding[0].describe()}")
    if stance == OPT_OUT:
        return permit(NAME, "no objection recorded (node stance opt-out)")
    return deny(NAME, "no consent recorded (node stance opt-in)")


def refuses_emergency(directives: Sequence[Directive], patient_id: str, at: datetime) -> Directive | None:
    """The directive by which the patient refuses emergency access, if one is in force."""
    for d in directives:
        if d.who == EMERGENCY and d.patient_id == patient_id and d.in_force(at):
            return d
    return None


class LocalConsentPolicy:
    """The local consent registry as a :class:`~xds.consent.model.ConsentPolicy`.

    ``directives`` reads one patient's directives (revoked ones may be included; they are ignored).
    """

    name = NAME

    def __init__(self, directives: Callable[[str], Sequence[Directive]], *, stance: str) -> None:
        if stance not in STANCES:
            raise ValueError(f"consent stance must be one of {', '.join(STANCES)}, not {stance!r}")
        self._directives = directives
        self.stance = stance

    def decide(self, request: AccessRequest) -> Decision:
        return evaluate(self._directives(request.patient_id), request, stance=self.stance)

    def refuses_emergency(self, patient_id: str, at: datetime) -> Directive | None:
        """The patient's refusal of emergency access in force at ``at``, or None."""
        return refuses_emergency(self._directives(patient_id), patient_id, at)


__all__ = [
    "COMMUNITY",
    "DECISIONS",
    "DENY",
    "EMERGENCY",
    "EVERYONE",
    "GRANT",
    "NAME",
    "OPT_IN",
    "OPT_OUT",
    "ORGANISATION",
    "SCOPES",
    "STANCES",
    "Directive",
    "LocalConsentPolicy",
    "evaluate",
    "refuses_emergency",
]
