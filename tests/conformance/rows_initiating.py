"""Table A of the conformance README, rows N93 to N95: the Initiating Gateway's NIST cases (ITI-18 and ITI-43
sent to ``/xca/initiating``, which fans out ITI-38 and ITI-39 to the communities of its directory).

NIST runs these against Responding Gateway simulators loaded by test 15807 (README §2.5): ``onedoc1`` (one
document, the "Single document in Community 1" patient) for 15808 and 15809, ``registryError`` (one document
in Community 2, for a patient Community 1 answers with XDSRegistryError) for 15814. Here Community 1/2 are
real: ``community`` lists the sections sent as ITI-41 to the repository of a second node B (its own database
and homeCommunityId, served on a socket), which is the only entry, besides the node's own registry, in the
directory of the node under test A. With ``registry_error`` a second fake community joins the directory and
answers every ITI-38 with a valid AdhocQueryResponse, status Failure, one RegistryError XDSRegistryError.

Placeholders: ``$patient_id$`` is the patient 15807 registered in B (fed in A too: one patient-id domain);
``$home$``, ``$repositoryuid$`` and ``$docuid$`` of 15809 are 15808's reports of A's answer (so B's);
``$testdata_home$`` is B's homeCommunityId (the community 15807 went to). Every returned object must carry
B's home (:mod:`tests.conformance.community`); the retrieved document must be the bytes and mimeType sent to
B (:mod:`tests.conformance.retrieval`). The steps after the target in its section (NullTransaction
validations of home, mimeType, uniqueId) run as follow-ups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tests.conformance.rows import Row
from xds.errors import ErrorCode

QUERY_TX: Final = "ITI-18 via IG"
RETRIEVE_TX: Final = "ITI-43 via IG"


@dataclass(frozen=True, slots=True)
class InitiatingRow(Row):
    """A Table A row for the Initiating Gateway: ``chain`` and the target run on A, ``community`` on B."""

    community: tuple[str, ...] = ()
    registry_error: bool = False


ROWS: Final[tuple[InitiatingRow, ...]] = (
    InitiatingRow("N93", "15808/SingleDocumentFindDocuments#finddocs", QUERY_TX, community=("15807/onedoc1",)),
    InitiatingRow(
        "N94",
        "15809/OneDocRetrieve#retrieve",
        RETRIEVE_TX,
        ("15808/SingleDocumentFindDocuments",),
        community=("15807/onedoc1",),
    ),
    InitiatingRow(
        "N95",
        "15814/XDSRegistryError#finddocs",
        QUERY_TX,
        community=("15807/registryError",),
        registry_error=True,
        tf_codes=(ErrorCode.REGISTRY_ERROR,),
        note="the testplan states only PartialSuccess; its readme (and ITI TF-2 §3.18.4.1.3 / XCA ITI TF-1"
        " §18.2.3: the Initiating Gateway returns every community's errors) requires the community's"
        " XDSRegistryError to be passed back with the DocumentEntry, and an XDSUnavailableCommunity would"
        " also make PartialSuccess, so the code is checked",
    ),
)

__all__ = ["QUERY_TX", "RETRIEVE_TX", "ROWS", "InitiatingRow"]
