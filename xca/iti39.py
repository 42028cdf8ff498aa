"""ITI-39 Cross Gateway Retrieve (ITI TF-2 §3.39), Responding Gateway side.

Theory of operation: each DocumentRequest must name this community in HomeCommunityId: a missing one is
XDSMissingHomeCommunityId, another community's is XDSUnknownCommunity (each located at the document's
uniqueId, and no DocumentResponse for it). The rest is retrieved from this community's repository exactly as
ITI-43 does (:func:`xds.repository.iti43.retrieve`); every DocumentResponse carries HomeCommunityId. The status
counts all requests: Success when every document came back, PartialSuccess when some did, else Failure.

References
----------
ITI TF-2 §3.39.4.1.2 (HomeCommunityId is required), §3.39.4.1.3 (expected actions), ITI TF-3 Table
4.2.4.1-2.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from xds import vocabulary as v
from xds.consent.model import Requester
from xds.errors import MissingHomeCommunityId, RegistryErrorItem, UnknownCommunity
from xds.model.messages import RetrieveRequest, RetrieveResponse, outcome_status
from xds.registry.transactions import Transaction
from xds.repository import iti43
from xds.repository.iti43 import RetrieveContext

TRANSACTION = Transaction(
    id="ITI-39",
    title="Cross Gateway Retrieve",
    action=v.ACTION_CROSS_GATEWAY_RETRIEVE,
    response_action=v.ACTION_CROSS_GATEWAY_RETRIEVE_RESPONSE,
    mtom=False,
    is_query=False,
    mtom_response=True,
)


@dataclass(frozen=True, slots=True)
class RetrieveGatewayContext:
    """What ITI-39 needs: this community's id and its repository's retrieve context."""

    home_community_id: str
    retrieve: RetrieveContext


def cross_gateway_retrieve(
    request: RetrieveRequest, ctx: RetrieveGatewayContext, requester: Requester = iti43.ANONYMOUS
) -> RetrieveResponse:
    """Answer ITI-39 from this community's repository for ``requester`` (through the consent gate)."""
    errors: list[RegistryErrorItem] = []
    ours = []
    for d in request.documents:
        home = d.home_community_id.strip()
        if not home:
            errors.append(
                MissingHomeCommunityId(
                    f"DocumentRequest for {d.document_unique_id} has no HomeCommunityId",
                    location=d.document_unique_id,
                ).as_item()
            )
        elif home != ctx.home_community_id:
            errors.append(UnknownCommunity(f"homeCommunityId {home} is not this community", location=home).as_item())
        else:
            ours.append(d)
    if not ours:
        return RetrieveResponse(status=v.RESPONSE_FAILURE, errors=tuple(errors))
    answer = iti43.retrieve(dataclasses.replace(request, documents=tuple(ours)), ctx.retrieve, requester)
    errors += answer.errors
    documents = tuple(dataclasses.replace(d, home_community_id=ctx.home_community_id) for d in answer.documents)
    status = outcome_status(succeeded=bool(documents), failed=bool(errors))
    return RetrieveResponse(status=status, errors=tuple(errors), documents=documents)


__all__ = ["TRANSACTION", "RetrieveGatewayContext", "cross_gateway_retrieve"]
