"""The Document Recipient's NIST cases (the testkit's ``XDRProvideAndRegisterTransaction`` steps, ITI-41 as an
XDR push), rows X1 to X13, in the same form as :mod:`tests.conformance.rows`.

None needs earlier sections: each test is one ``submit`` section of one step. 12371, 12373 and
12371_withauthzconsent are ebRS 2.1 files, converted and filled in as the repository rows are (README §2.1,
§2.3: the session patient, new uniqueIds, the harness's sourceId); 12375 and 12376 are whole ebRS 3.0
``xdsb:ProvideAndRegisterDocumentSetRequest`` files whose ``lcm:SubmitObjectsRequest`` is sent
(:mod:`tests.conformance.engine`). They carry no patientId at all, so the patient substitution has nothing
to overwrite.

Beyond the testplan's status, :data:`DELIVERED` says what the node's inbox must hold afterwards: for a
Success row one delivery in the default mailbox (no mailboxes are configured), with the step's documents
(sha1, size and bytes of the files sent, the uniqueIds the harness assigned) and, where asked, every
``intendedRecipient`` value sent; for a Failure or Fault row nothing at all (no delivery, no staged or published file).

X5 to X13 run on a node with XUA (:mod:`tests.conformance.xua_variants`: a test signing certificate in the
trust store, the audience ``urn:xds-node:test``, an assertion required at the Document Recipient), each with
the assertion the NIST engine would have fetched from the Gazelle STS for the profile named after the test
(:data:`XUA`), rebuilt with this node's SAML helpers and sent in a ``wsse:Security`` header. X5
(``withauthzconsent``: a valid assertion with the Authz-Consent attributes) must succeed; the eight others
expect a SOAP Fault, with the WS-Security subcode of :data:`tests.conformance.xua_variants.VARIANTS`, and
nothing stored. Four of them are refusals the Connectathon's X-Service Provider *policy* demands: an
AuthnContextClassRef that names no SAML 2.0 class (refused as malformed), InternetProtocol authentication (not
accepted by default), a purpose of use other than treatment or emergency (not accepted by default), and a role
the policy grants no access (the XUA node accepts only the first-level role, ``[xua] roles``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tests.conformance.rows import META, Row
from xds.recipient.model import NEW, UNKNOWN_PATIENT

TX: Final = "ITI-41 XDR"
DEFAULT_MAILBOX: Final = "inbox"
"""Where every push goes when no mailboxes are configured."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """What the node's inbox must hold after a row's target step (``status`` "": nothing stored)."""

    status: str = ""
    recipients: bool = False
    """The delivery carries every SubmissionSet ``intendedRecipient`` value sent, in order."""


NOTHING: Final = Delivered()

_XUA_FAULTS: Final = (
    ("expired", "an assertion whose NotOnOrAfter has passed"),
    (
        "invalidauthnstatement",
        "an AuthnStatement whose AuthnContextClassRef is urn:oasis:names:tc:SAML:2.0:ac:classes:Invalid (no"
        " SAML 2.0 Authentication Context class: a malformed token)",
    ),
    ("notyetvalid", "an assertion whose NotBefore is in the future"),
    (
        "secondauthncontext",
        "an AuthnStatement whose AuthnContextClassRef is InternetProtocol (not accepted by default: a network"
        " address is not a user's authentication)",
    ),
    (
        "secondpurposeofuse",
        "a PurposeOfUse the policy grants no access (PUBLICHEALTH; accepted by default: treatment, emergency)",
    ),
    ("secondrole", "a Subject-Role the policy grants no access (the XUA node's [xua] roles name the first only)"),
    ("unknownaudience", "an assertion whose Audience is not this recipient"),
    ("unsigned", "an assertion without a signature"),
)
"""(profile, what the assertion carries)."""


def _rx(rid: str, target: str, **kw: object) -> Row:
    return Row(rid, target, TX, **kw)  # type: ignore[arg-type]


def _xua_fault(n: int, variant: str, what: str) -> Row:
    return _rx(
        f"X{n}",
        f"12371_{variant}/submit#submit",
        note=f"sent with {what} (STS profile {variant!r}); the node must answer with a SOAP Fault",
    )


ROWS: Final[tuple[Row, ...]] = (
    _rx("X1", "12371/submit#submit"),
    _rx("X2", "12373/submit#submit"),
    _rx(
        "X3",
        "12375/submit#submit",
        note="limited metadata (urn:ihe:iti:2010:limitedMetadata on the DocumentEntry and the SubmissionSet),"
        " no patientId at all: the delivery waits in the unknown-patient queue",
    ),
    _rx(
        "X4",
        "12376/submit#submit",
        tf_codes=(META,),
        note="12375's metadata without the limited-metadata classifications: full metadata is then required"
        " (ITI TF-3 Table 4.3.1-3), so XDSRegistryMetadataError (README: the testplan gives only the status);"
        " its testplan names itself 12375/submit (copy defect, harmless: the harness reads the 12376 folder)",
    ),
    _rx(
        "X5",
        "12371_withauthzconsent/submit#submit",
        note="sent with a valid assertion carrying the Authz-Consent attributes (urn:ihe:iti:bppc:2007:docid and"
        " the patient's resource-id, STS profile 'withauthzconsent'); the metadata is 12371's",
    ),
    *(_xua_fault(6 + i, *fault) for i, fault in enumerate(_XUA_FAULTS)),
)

XUA: Final[dict[str, str]] = {
    "X5": "withauthzconsent",
    **{f"X{6 + i}": variant for i, (variant, _) in enumerate(_XUA_FAULTS)},
}
"""The rows that run on the XUA node, and the STS profile of the assertion each one sends."""

DELIVERED: Final[dict[str, Delivered]] = {
    "X1": Delivered(NEW, recipients=True),
    "X2": Delivered(NEW),
    "X3": Delivered(UNKNOWN_PATIENT),
    "X4": NOTHING,
    "X5": Delivered(NEW, recipients=True),
    **dict.fromkeys(list(XUA)[1:], NOTHING),
}
"""The inbox check of every row."""

__all__ = ["DEFAULT_MAILBOX", "DELIVERED", "NOTHING", "ROWS", "TX", "XUA", "Delivered"]
