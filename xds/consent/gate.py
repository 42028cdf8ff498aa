"""The consent gate: one decision per (patient, data category) before any of a patient's data leaves the node.

Theory of operation: the gate asks every configured policy (all must permit; the first deny decides) and fails
closed: a policy that raises is a deny naming the failure. A requester whose purpose of use is EMERGENCY is
handled by the emergency rule when the node allows it: access is permitted unless the patient refused
emergency access in the local registry, without asking the other policies (a remote decision point that is
down must not stop emergency care), and the decision is flagged ``emergency``. Where the refusal cannot be
read, the emergency rule denies too.

Every decision goes to ``record`` (the audit trail, and the patient-notification record for emergency access)
before it is used; a decision that cannot be recorded is not used: the gate denies (nothing leaves unaudited).
Within a SOAP request ``record`` only collects the decision (:func:`xds.store.audit.batch`); the adapter
writes the request's decisions with its own audit record in one transaction and withholds the answer if
that fails, which keeps the same promise at one commit per request.

Within one request the gate asks once per (patient, category): :meth:`Gate.permitted` takes every key a
result touches and answers a set of permitted keys.

References
----------
ARCHITECTURE.md §7; ../shared/DUTCH-CONTEXT.md §1.4.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from xds.consent.model import PURPOSE_EMERGENCY, AccessRequest, ConsentPolicy, Decision, Requester, deny

log = logging.getLogger("xds.consent")

EMERGENCY_RULE = "emergency"


class EmergencyRefusals(Protocol):
    """Where a patient's refusal of emergency access is kept (the local consent registry)."""

    def refuses_emergency(self, patient_id: str, at: datetime) -> object | None:
        """The refusal (any object but None) when the patient refuses emergency access at ``at``, else None."""
        ...


@dataclass(frozen=True, slots=True)
class Gate:
    """The node's consent gate.

    ``record`` is called with every decision (audit, emergency notification) and must raise when it cannot
    keep it. ``home_community_id`` stands for the requester's community when a local consumer asks.
    """

    policies: Sequence[ConsentPolicy]
    record: Callable[[AccessRequest, Decision], None]
    emergency: EmergencyRefusals | None = None
    """Set when the node allows emergency access; None: an EMERGENCY purpose is decided like any other."""
    home_community_id: str = ""
    data_holder: str = ""
    bsn: Callable[[str], str] = field(default=lambda _patient: "")
    """The BSN of a patient id (for remote decision points), "" when unknown."""
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def decide(self, patient_id: str, requester: Requester, category: str = "") -> Decision:
        """The decision for one (patient, category), recorded; deny when it cannot be recorded."""
        if not requester.community_id and self.home_community_id:
            requester = replace(requester, community_id=self.home_community_id)
        request = AccessRequest(
            patient_id=patient_id,
            requester=requester,
            at=self.clock(),
            category=category,
            bsn=self._bsn(patient_id),
            data_holder=self.data_holder,
        )
        decision = self._decide(request)
        try:
            self.record(request, decision)
        except Exception as exc:
            log.error(
                "a consent decision could not be recorded; access denied",
                extra={"patient_id": patient_id, "error": f"{type(exc).__name__}: {exc}"},
            )
            return deny("audit", "the decision could not be recorded")
        return decision

    def permitted(self, keys: Iterable[tuple[str, str]], requester: Requester) -> set[tuple[str, str]]:
        """The (patient, category) keys ``requester`` may see: one decision per distinct key."""
        return {key for key in dict.fromkeys(keys) if self.decide(key[0], requester, key[1]).permit}

    def _bsn(self, patient_id: str) -> str:
        try:
            return self.bsn(patient_id)
        except Exception:
            return ""

    def _decide(self, request: AccessRequest) -> Decision:
        if request.requester.purpose_of_use == PURPOSE_EMERGENCY and self.emergency is not None:
            try:
                refusal = self.emergency.refuses_emergency(request.patient_id, request.at)
            except Exception as exc:
                return deny(EMERGENCY_RULE, f"the patient's emergency directive cannot be read ({type(exc).__name__})")
            if refusal is not None:
                return deny(EMERGENCY_RULE, "the patient refuses emergency access")
            return Decision(True, EMERGENCY_RULE, "emergency access (break-the-glass)", emergency=True)
        if not self.policies:
            return deny("gate", "no consent policy is configured")
        permits: list[Decision] = []
        for policy in self.policies:
            try:
                decision = policy.decide(request)
            except Exception as exc:
                log.warning(
                    "consent policy failed; access denied",
                    extra={"policy": policy.name, "error": f"{type(exc).__name__}: {exc}"},
                )
                return deny(policy.name, f"the policy could not decide ({type(exc).__name__})")
            if not decision.permit:
                return decision
            permits.append(decision)
        if len(permits) == 1:
            return permits[0]
        return Decision(True, "+".join(d.policy for d in permits), "; ".join(d.reason for d in permits))


__all__ = ["EMERGENCY_RULE", "EmergencyRefusals", "Gate"]
