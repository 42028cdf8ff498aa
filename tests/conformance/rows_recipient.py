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
``intendedRecipient`` value sent; for a Failure row nothing at all (no delivery, no staged or published file).

The eight ``12371_*`` XUA variants expect a SOAP Fault because the NIST engine sends them with a defective
SAML assertion (expired, unsigned, ...) that it generates at run time; the assertions are not in the corpus
and the conformance fixture configures no XUA, so they cannot be replayed: they are listed with that reason
(``skip``) and reported as skipped.
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
    ("invalidauthnstatement", "an assertion with an invalid AuthnStatement"),
    ("notyetvalid", "an assertion whose NotBefore is in the future"),
    ("secondauthncontext", "an assertion with a second AuthnContext"),
    ("secondpurposeofuse", "an assertion with a second PurposeOfUse attribute"),
    ("secondrole", "an assertion with a second Role attribute"),
    ("unknownaudience", "an assertion for an audience that is not this recipient"),
    ("unsigned", "an assertion without a signature"),
)


def _rx(rid: str, target: str, **kw: object) -> Row:
    return Row(rid, target, TX, **kw)  # type: ignore[arg-type]


def _xua_fault(n: int, variant: str, what: str) -> Row:
    return _rx(
        f"X{n}",
        f"12371_{variant}/submit#submit",
        skip=f"not replayable: expects a SOAP Fault for {what}; the NIST engine generates that XUA SAML assertion"
        " at run time (it is not in the corpus) and the conformance fixture configures no XUA, so without it"
        " the step is a plain submission that must succeed (as X5 shows)",
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
        note="the NIST engine sends this with an XUA SAML assertion (authorization consent); the conformance"
        " fixture configures no XUA, so it is replayed as the plain submission it otherwise is (same file as"
        " 12371): it checks the metadata, not the assertion",
    ),
    *(_xua_fault(6 + i, variant, what) for i, (variant, what) in enumerate(_XUA_FAULTS)),
)

DELIVERED: Final[dict[str, Delivered]] = {
    "X1": Delivered(NEW, recipients=True),
    "X2": Delivered(NEW),
    "X3": Delivered(UNKNOWN_PATIENT),
    "X4": NOTHING,
    "X5": Delivered(NEW, recipients=True),
}
"""The inbox check of every replayable row."""

__all__ = ["DEFAULT_MAILBOX", "DELIVERED", "NOTHING", "ROWS", "TX", "Delivered"]
