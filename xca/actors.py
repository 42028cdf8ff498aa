"""The XCA actors a node serves, mounted by the node's ASGI application through the ``xds.actors`` entry point.

``/xca/responding`` answers other communities (:mod:`xca.responding`); ``/xca/initiating`` answers local
consumers with the merged answers of every community (:mod:`xca.initiating`). The community directory is read
when the application is built (an invalid one stops the start) and again every few seconds while it runs, so
``xds community add|remove`` takes effect without a restart.
"""

from __future__ import annotations

import anyio

from xca import initiating
from xca.assertions import OutboundAssertions
from xca.client import GatewayClient
from xca.directory import RefreshingDirectory, load_directory
from xca.initiating import InitiatingContext
from xca.iti38 import RespondingContext
from xca.iti39 import RetrieveGatewayContext
from xca.responding import PATH as RESPONDING_PATH
from xca.responding import responding_actor
from xds.audit import transactions as tx
from xds.dicom import rad69
from xds.ebrim import messages, xdsb, xdsi
from xds.imaging import leaving
from xds.node import Node
from xds.registry import iti18
from xds.repository import iti43
from xds.soap.wsdl import render_wsdl
from xds.store.audit import spool_record
from xds.web import audits
from xds.web.imaging import imaging_context
from xds.web.repository import retrieve_parts
from xds.web.soap import MtomReply, Operation, SoapActor, SoapRequest, node_actor

INITIATING_PATH = "/xca/initiating"


def initiating_wsdl(address: str) -> bytes:
    """The Initiating Gateway WSDL: ``InitiatingGateway_RegistryStoredQuery`` (ITI-18),
    ``InitiatingGateway_RetrieveDocumentSet`` (ITI-43) and ``InitiatingGateway_RetrieveImagingDocumentSet``
    (RAD-69), from local consumers."""
    return render_wsdl("InitiatingGateway.wsdl", address, package="xca")


def initiating_actor(node: Node) -> SoapActor:
    """The Initiating Gateway's SOAP endpoint."""
    settings = node.settings
    client = GatewayClient(max_response_bytes=settings.gateway_max_response_bytes)
    ctx = InitiatingContext(
        home_community_id=node.home_community_id,
        directory=RefreshingDirectory(lambda: load_directory(settings, node.store, exclude=node.home_community_id)),
        client=client,
        local=RespondingContext(home_community_id=node.home_community_id, query=node.query_context()),
        local_retrieve=RetrieveGatewayContext(
            home_community_id=node.home_community_id, retrieve=node.retrieve_context()
        ),
        local_imaging=imaging_context(node),
        new_file=node.documents.new_file,
        max_document_bytes=settings.max_attachment_bytes,
        aliases=node.store.aliases,
        timeout=settings.gateway_timeout,
        deadline=settings.gateway_deadline,
        gate=node.gate(),
        audit=lambda messages_: node.audit.record([spool_record(m) for m in messages_]),
        audit_node=lambda: node.audit_node,
        assertions=OutboundAssertions.from_settings(settings, home=node.home_community_id),
    )

    async def query(req: SoapRequest) -> bytes:
        answer = await initiating.query(messages.adhoc_query_request(req.body), ctx, req.requester, req.assertion)
        return messages.adhoc_query_response(answer)

    async def retrieve(req: SoapRequest) -> MtomReply:
        answer = await initiating.retrieve(xdsb.retrieve_request(req.body), ctx, req.requester, req.assertion)
        return await anyio.to_thread.run_sync(retrieve_parts, answer, node.documents)

    async def retrieve_imaging(req: SoapRequest) -> MtomReply:
        request = xdsi.imaging_retrieve_request(req.body)
        answer = await initiating.retrieve_imaging(request, ctx, req.requester, req.assertion)

        def parts() -> MtomReply:
            return retrieve_parts(leaving(node, answer), node.documents)

        return await anyio.to_thread.run_sync(parts)

    return node_actor(
        node,
        "Initiating Gateway",
        [
            Operation(
                iti18.TRANSACTION, query, messages.adhoc_query_failure, audits.query(node, tx.registry_stored_query)
            ),
            Operation(
                iti43.TRANSACTION, retrieve, xdsb.retrieve_failure, audits.retrieve(node, tx.retrieve_document_set)
            ),
            Operation(
                rad69.TRANSACTION,
                retrieve_imaging,
                xdsb.retrieve_failure,
                audits.retrieve(node, tx.retrieve_imaging_document_set),
            ),
        ],
        wsdl=initiating_wsdl,
        role="initiating",
        on_shutdown=client.aclose,
    )


def actors(node: Node) -> list[tuple[str, SoapActor]]:
    """The ``xds.actors`` entry point: the XCA actors this node serves, by path."""
    return [(RESPONDING_PATH, responding_actor(node)), (INITIATING_PATH, initiating_actor(node))]


__all__ = ["INITIATING_PATH", "actors", "initiating_actor", "initiating_wsdl"]
