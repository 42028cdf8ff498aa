"""Table A of the conformance README, rows N84 to N92: the Responding Gateway's NIST cases (ITI-38 Cross
Gateway Query, ITI-39 Cross Gateway Retrieve), in the same form as :mod:`tests.conformance.rows`.

Chains (README §2.5): RG tests 12309 to 12313 need 12318/init, the P&R of two documents into the
community's repository (sent as ITI-41 to ``/xds/repository``, as row N15 does); the retrieves also need
12318/query, whose ``repuid`` report fills ``$repositoryuid$``. The target steps go to ``/xca/responding``
(:mod:`tests.conformance.engine`); ``$home$`` is the node's homeCommunityId (README §2.4). 15815 and 15831
send their files as they are and need no data.

Every object an ITI-38 answer returns and every DocumentResponse of an ITI-39 answer must carry the node's
homeCommunityId (:mod:`tests.conformance.community`); a retrieved document must come back with the bytes and
mimeType 12318/init submitted (:mod:`tests.conformance.retrieval`).
"""

from __future__ import annotations

from typing import Final

from tests.conformance.rows import Row
from xds.errors import ErrorCode

SEED: Final = ("12318/init",)
"""The Responding Gateway's test data (README §2.5)."""
SEED_REPOSITORY: Final = (*SEED, "12318/query")
"""The same, and the query reporting the repositoryUniqueId the retrieves name."""


def _r38(rid: str, target: str, chain: tuple[str, ...] = SEED, **kw: object) -> Row:
    return Row(rid, target, "ITI-38", chain, **kw)  # type: ignore[arg-type]


def _r39(rid: str, target: str, chain: tuple[str, ...] = SEED_REPOSITORY, **kw: object) -> Row:
    return Row(rid, target, "ITI-39", chain, **kw)  # type: ignore[arg-type]


ROWS: Final[tuple[Row, ...]] = (
    _r38("N84", "12309/finddocs#finddocs"),
    _r38("N85", "12310/finddocs#finddocs"),
    _r38("N86", "12311/getdocs#getdocs"),
    _r39("N87", "12312/correct#retrieve_small"),
    _r39("N88", "12312/missing_home#retrieve"),
    _r39(
        "N89",
        "12313/retrieve_two#retrieve_two",
        references=(
            ("$docuid1$", "../../12318/init/my_document.txt"),
            ("$docuid2$", "../../12318/init/summary.xml"),
        ),
        mime_type="",
        note="testplan defect: 12313/retrieve_two names ../12318/my_document.txt and ../12318/my_document2.txt"
        " as its ReferenceDocuments and text/plain as ExpectedMimeType, but the data it retrieves is"
        " 12318/init's: Document01 = init/my_document.txt (text/plain), Document02 = init/summary.xml"
        " (text/xml); the references are the files actually sent, and each document is checked against the"
        " mimeType it was submitted with instead of one ExpectedMimeType",
    ),
    _r38("N90", "15815/UnknownCommunity#getdocs", ()),
    _r38(
        "N91",
        "15815/MissingCommunity#getdocs",
        (),
        note="source inconsistent (README known defects): the Goal text says XDSUnknownCommunity, the"
        " ExpectedErrorCode XDSMissingHomeCommunityId; a GetDocuments without AdhocQuery/@home is the missing"
        " case (ITI TF-2 §3.38.4.1.2, ITI TF-3 Table 4.2.4.1-2), so the ExpectedErrorCode is used",
    ),
    _r39(
        "N92",
        "15831/Missing_Home#retrieve",
        (),
        tf_codes=(ErrorCode.MISSING_HOME_COMMUNITY_ID,),
        note="15831 is written for an On-Demand Responding Gateway (its testplan says 15830/Retrieve_OnDemand,"
        " README known defects), but it needs no on-demand document: it asks for repository 1.1.1, document"
        " 1.1.1 without HomeCommunityId, which any Responding Gateway must refuse with"
        " XDSMissingHomeCommunityId and no DocumentResponse (ITI TF-2 §3.39.4.1.2), so it runs as is",
    ),
)

__all__ = ["ROWS", "SEED", "SEED_REPOSITORY"]
