"""The consent gate's vocabulary: who asks (:class:`Requester`), for what (:class:`AccessRequest`), and the
answer (:class:`Decision`) of a :class:`ConsentPolicy`.

Theory of operation: every point where patient data leaves the node (ITI-18, ITI-43, ITI-38, ITI-39, and the
initiating gateway before it answers a consumer) asks the gate one question per (patient, data category) it
is about to release. A policy answers permit or deny with a reason; the gate combines policies (all must
permit), applies the emergency rule, fails closed (a policy that raises, times out or cannot decide means
deny) and audits every decision.

Data categories are the DocumentEntry classCode values (``code^^scheme`` as stored, or the bare code); an
empty category means "no particular category" (a question about the patient as a whole).

References
----------
ARCHITECTURE.md §7; ../shared/DUTCH-CONTEXT.md §1.4 (Mitz); IHE ITI TF-2 §3.40 (XUA purposeOfUse).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

PURPOSE_TREATMENT: Final = "TREATMENT"
"""purposeOfUse of regular care (NHIN PurposeOfUse code system 2.16.840.1.113883.3.18.7.1)."""
PURPOSE_EMERGENCY: Final = "EMERGENCY"
"""purposeOfUse of emergency access ("spoed", break-the-glass)."""

SOURCE_XUA: Final = "xua"
"""The requester was taken from a verified XUA assertion."""
SOURCE_TLS: Final = "tls"
"""The requester's organisation was taken from its TLS client certificate."""
SOURCE_ANONYMOUS: Final = "anonymous"
"""Nothing identified the requester (allowed only where configured)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Requester:
    """Who asks: a person in an organisation, possibly through another community's gateway."""

    user_id: str = ""
    """The user (XUA Subject NameID), e.g. a UZI number."""
    user_name: str = ""
    role: str = ""
    """The user's role code (XUA ``urn:oasis:names:tc:xacml:2.0:subject:role``), as ``code^^system`` or code."""
    organisation_id: str = ""
    """The care provider's id, in the Netherlands its URA (XUA ``...:subject:organization-id`` or the client
    certificate)."""
    organisation_name: str = ""
    care_provider_type: str = ""
    """Mitz "zorgaanbiedertype" (care-provider category code) of the organisation, when known."""
    community_id: str = ""
    """homeCommunityId of the requesting community for cross-community requests (ITI-38/39); "" for local."""
    purpose_of_use: str = PURPOSE_TREATMENT
    source: str = SOURCE_ANONYMOUS
    address: str = ""
    """The network peer (IP address) the request came from."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessRequest:
    """One question to a policy: may ``requester`` see ``patient_id``'s data of ``category`` at ``at``?"""

    patient_id: str
    """The patient in this node's own domain (CX ``id^^^&oid&ISO``)."""
    requester: Requester
    at: datetime
    category: str = ""
    bsn: str = ""
    """The patient's BSN when known (a remote decision point asks by BSN)."""
    data_holder: str = ""
    """This node's organisation id (URA): who holds the data."""


@dataclass(frozen=True, slots=True)
class Decision:
    """A policy's answer. ``policy`` names who decided; ``reason`` says why, for the audit trail."""

    permit: bool
    policy: str
    reason: str
    emergency: bool = False
    """True when access was opened by the emergency rule (break-the-glass): always flagged in the audit."""


class ConsentPolicy(Protocol):
    """One source of consent decisions. ``decide`` may raise; the gate then denies (fail closed)."""

    name: str

    def decide(self, request: AccessRequest) -> Decision:
        """Permit or deny ``request``."""
        ...


def deny(policy: str, reason: str) -> Decision:
    """A deny decision."""
    return Decision(False, policy, reason)


def permit(policy: str, reason: str) -> Decision:
    """A permit decision."""
    return Decision(True, policy, reason)


__all__ = [
    "PURPOSE_EMERGENCY",
    "PURPOSE_TREATMENT",
    "SOURCE_ANONYMOUS",
    "SOURCE_TLS",
    "SOURCE_XUA",
    "AccessRequest",
    "ConsentPolicy",
    "Decision",
    "Requester",
    "deny",
    "permit",
]
