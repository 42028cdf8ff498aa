"""The Responding Gateway actor at ``/xca/responding``: ITI-38, ITI-39, RAD-75 and ITI-80 for other communities.

It answers from this node's own registry and repository (:mod:`xca.iti38`, :mod:`xca.iti39`), and takes
ITI-80 Cross-Gateway Document Provide pushes into this node's mailboxes like the Document Recipient does
(:func:`xds.recipient.iti41.receive`, transport ``iti-80``). The node's ASGI
application mounts it through the ``xds.actors`` entry point (:mod:`xca.actors`; ``xds`` never imports ``xca``).
"""

from __future__ import annotations

from xca import iti38, iti39
from xca.iti38 import RespondingContext
from xca.iti39 import RetrieveGatewayContext
from xds import vocabulary as v
from xds.audit import transactions as tx
from xds.dicom import rad69
from xds.ebrim import messages, xdsb, xdsi
from xds.errors import MissingHomeCommunityId, UnknownCommunity
from xds.imaging import leaving
from xds.model.messages import RegistryResponse
from xds.node import Node
from xds.recipient import iti41 as recipient
from xds.recipient.model import TRANSPORT_ITI80
from xds.registry.transactions import Transaction
from xds.security.xua import XuaError, xua_fault
from xds.soap.wsdl import render_wsdl
from xds.web import audits
from xds.web.imaging import imaging_context
from xds.web.recipient import sender_of
from xds.web.repository import provide_request, retrieve_parts
from xds.web.soap import MtomReply, Operation, SoapActor, SoapRequest, node_actor

PATH = "/xca/responding"

RAD75 = Transaction(
    id="RAD-75",
    title="Cross Gateway Retrieve Imaging Document Set",
    action=v.ACTION_CROSS_GATEWAY_RETRIEVE_IMAGING,
    response_action=v.ACTION_CROSS_GATEWAY_RETRIEVE_IMAGING_RESPONSE,
    mtom=False,
    is_query=False,
    mtom_response=True,
)

ITI80 = Transaction(
    id="ITI-80",
    title="Cross-Gateway Document Provide",
    action=v.ACTION_CROSS_GATEWAY_DOCUMENT_PROVIDE,
    response_action=v.ACTION_CROSS_GATEWAY_DOCUMENT_PROVIDE_RESPONSE,
    mtom=True,
    is_query=False,
)


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

    provide_ctx = node.recipient_context()
    imaging_ctx = imaging_context(node)

    def retrieve_imaging(req: SoapRequest) -> MtomReply:
        request = xdsi.imaging_retrieve_request(req.body)
        for d in request.documents:  # RAD-75 names the community of each instance (as ITI-39 does)
            home = d.document.home_community_id
            if not home:
                raise MissingHomeCommunityId(
                    f"DocumentRequest {d.document.document_unique_id} has no HomeCommunityId",
                    location=d.document.document_unique_id,
                )
            if home != node.home_community_id:
                raise UnknownCommunity(f"homeCommunityId {home} is not this community", location=home)
        answer = rad69.retrieve_imaging(request, imaging_ctx, req.requester, home_community_id=node.home_community_id)
        return retrieve_parts(leaving(node, answer), node.documents)

    recipient_requires_xua = "recipient" in node.settings.xua_required

    def provide(req: SoapRequest) -> bytes:
        if recipient_requires_xua and req.assertion is None:  # the mailboxes' door must not be open here
            raise xua_fault(XuaError("ITI-80 delivers into the mailboxes, whose Document Recipient requires XUA"))
        request = provide_request(req, node.documents)
        sender = req.requester.community_id or sender_of(req)
        recipient.receive(request, provide_ctx, transport=TRANSPORT_ITI80, sender=sender)
        return messages.registry_response(RegistryResponse())

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
            Operation(
                RAD75,
                retrieve_imaging,
                xdsb.retrieve_failure,
                audits.retrieve(node, tx.cross_gateway_retrieve_imaging_document_set),
            ),
            Operation(
                ITI80,
                provide,
                messages.registry_failure,
                audits.submission(node, tx.cross_gateway_document_provide),
                audit_in_transaction=True,
            ),
        ],
        wsdl=responding_wsdl,
        role="responding",
    )


__all__ = ["ITI80", "PATH", "RAD75", "responding_actor", "responding_wsdl"]
