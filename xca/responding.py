"""The Responding Gateway actor at ``/xca/responding``: ITI-38 and ITI-39 for other communities.

It answers from this node's own registry and repository (:mod:`xca.iti38`, :mod:`xca.iti39`). The node's ASGI
application mounts it through the ``xds.actors`` entry point (:mod:`xca.actors`; ``xds`` never imports ``xca``).
"""

from __future__ import annotations

from xca import iti38, iti39
from xca.iti38 import RespondingContext
from xca.iti39 import RetrieveGatewayContext
from xds.audit import transactions as tx
from xds.ebrim import messages, xdsb
from xds.node import Node
from xds.soap.wsdl import render_wsdl
from xds.web import audits
from xds.web.repository import retrieve_parts
from xds.web.soap import MtomReply, Operation, SoapActor, SoapRequest, node_actor

PATH = "/xca/responding"


def responding_wsdl(address: str) -> bytes:
    """The Responding Gateway WSDL: ``RespondingGateway_CrossGatewayQuery`` and ``..._CrossGatewayRetrieve``.

    References
    ----------
    ITI TF-2 §3.38.5, §3.39.5 and Appendix V.4.
    """
    return render_wsdl("RespondingGateway.wsdl", address, package="xca")


def responding_actor(node: Node) -> SoapActor:
    """The Responding Gateway's SOAP endpoint."""
    query_ctx = RespondingContext(home_community_id=node.home_community_id, query=node.query_context())
    retrieve_ctx = RetrieveGatewayContext(home_community_id=node.home_community_id, retrieve=node.retrieve_context())

    def query(req: SoapRequest) -> bytes:
        request = messages.adhoc_query_request(req.body)
        return messages.adhoc_query_response(iti38.cross_gateway_query(request, query_ctx, req.requester))

    def retrieve(req: SoapRequest) -> MtomReply:
        answer = iti39.cross_gateway_retrieve(xdsb.retrieve_request(req.body), retrieve_ctx, req.requester)
        return retrieve_parts(answer, node.documents)

    return node_actor(
        node,
        "Responding Gateway",
        [
            Operation(
                iti38.TRANSACTION, query, messages.adhoc_query_failure, audits.query(node, tx.cross_gateway_query)
            ),
            Operation(
                iti39.TRANSACTION, retrieve, xdsb.retrieve_failure, audits.retrieve(node, tx.cross_gateway_retrieve)
            ),
        ],
        wsdl=responding_wsdl,
        role="responding",
    )


__all__ = ["PATH", "responding_actor", "responding_wsdl"]
