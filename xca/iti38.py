"""ITI-38 Cross Gateway Query (ITI TF-2 §3.38), Responding Gateway side.

Theory of operation: the query runs on this community's registry exactly as ITI-18 does
(:func:`xds.registry.iti18.stored_query`). Queries that carry no patient id (the "GetX" queries, keyed by
entryUUID or uniqueId) must name the community they address in ``AdhocQuery/@home``
(XDSMissingHomeCommunityId); a ``home`` that is not this community is XDSUnknownCommunity. Every object of
the answer carries ``home`` = this community's homeCommunityId, so the initiating side can address GetX
queries and retrieves back to us: ObjectRefs get the attribute, LeafClass fragments (stored XML, answered
without parsing) get it inserted into their start tag.

References
----------
ITI TF-2 §3.38.4.1.2 (home attribute on the request), §3.38.4.1.3 (expected actions: home on every returned
object), §3.18.4.1.2.3.7 (the stored queries), ITI TF-3 Table 4.2.4.1-2 (XDSMissingHomeCommunityId,
XDSUnknownCommunity).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Final
from xml.sax.saxutils import quoteattr

from xds import vocabulary as v
from xds.consent.model import Requester
from xds.errors import MissingHomeCommunityId, UnknownCommunity
from xds.model.messages import QueryResponse, StoredQueryRequest
from xds.registry import iti18
from xds.registry.iti18 import QueryContext
from xds.registry.transactions import Transaction

TRANSACTION = Transaction(
    id="ITI-38",
    title="Cross Gateway Query",
    action=v.ACTION_CROSS_GATEWAY_QUERY,
    response_action=v.ACTION_CROSS_GATEWAY_QUERY_RESPONSE,
    mtom=False,
    is_query=True,
)

PATIENT_QUERIES: Final = frozenset(
    {v.SQ_FIND_DOCUMENTS, v.SQ_FIND_SUBMISSION_SETS, v.SQ_FIND_FOLDERS, v.SQ_FIND_DOCUMENTS_BY_REFERENCE_ID}
)
"""The FindX queries: keyed by patient id, so they need no ``home`` (every other query is a GetX query)."""

_START_TAG: Final = re.compile(r"<([A-Za-z_][\w.-]*:)?[A-Za-z_][\w.-]*")
_HOME_ATTR: Final = re.compile(r"""\shome\s*=\s*("[^"]*"|'[^']*')""")


@dataclass(frozen=True, slots=True)
class RespondingContext:
    """What ITI-38 needs: this community's id and its registry's query context."""

    home_community_id: str
    query: QueryContext


def cross_gateway_query(
    request: StoredQueryRequest, ctx: RespondingContext, requester: Requester = iti18.ANONYMOUS
) -> QueryResponse:
    """Answer ITI-38 from this community's registry for ``requester`` (through the consent gate), every returned
    object carrying ``home``."""
    home = request.home.strip()
    if not home and request.query_id not in PATIENT_QUERIES:
        raise MissingHomeCommunityId(
            f"stored query {request.query_id} needs AdhocQuery/@home naming the community it addresses",
            location=request.query_id,
        )
    if home and home != ctx.home_community_id:
        raise UnknownCommunity(f"homeCommunityId {home} is not this community", location=home)
    query_ctx = dataclasses.replace(ctx.query, home_community_id=ctx.home_community_id)
    answer = iti18.stored_query(request, query_ctx, requester)
    return dataclasses.replace(answer, leaf=tuple(with_home(f, ctx.home_community_id) for f in answer.leaf))


def with_home(fragment: str, home: str) -> str:
    """``fragment`` (one stored registry object) with ``home`` set on its element (replacing another value)."""
    start = _START_TAG.match(fragment)
    if start is None:
        raise ValueError("a stored registry object must start with its element's start tag")
    end = fragment.index(">", start.end())
    tag = _HOME_ATTR.sub("", fragment[start.end() : end])
    return f"{fragment[: start.end()]} home={quoteattr(home)}{tag}{fragment[end:]}"


__all__ = ["PATIENT_QUERIES", "TRANSACTION", "RespondingContext", "cross_gateway_query", "with_home"]
