"""The Document Registry actor at ``/xds/registry``: ITI-42 and ITI-18 wired to their services."""

from __future__ import annotations

from xds.audit import transactions as tx
from xds.ebrim import messages
from xds.node import Node
from xds.registry import iti18, iti42
from xds.soap.wsdl import registry_wsdl
from xds.web import audits
from xds.web.soap import Operation, SoapActor, SoapRequest, node_actor


def registry_actor(node: Node) -> SoapActor:
    """The registry's SOAP endpoint."""
    reg_ctx = node.registry_context()
    query_ctx = node.query_context()

    def register(req: SoapRequest) -> bytes:
        return messages.registry_response(iti42.register(messages.submit_objects_request(req.body), reg_ctx))

    def query(req: SoapRequest) -> bytes:
        request = messages.adhoc_query_request(req.body)
        return messages.adhoc_query_response(iti18.stored_query(request, query_ctx, req.requester))

    return node_actor(
        node,
        "Document Registry",
        [
            Operation(
                iti42.TRANSACTION,
                register,
                messages.registry_failure,
                audits.submission(node, tx.register_document_set),
                audit_in_transaction=True,
            ),
            Operation(
                iti18.TRANSACTION, query, messages.adhoc_query_failure, audits.query(node, tx.registry_stored_query)
            ),
        ],
        wsdl=registry_wsdl,
        role="registry",
    )


__all__ = ["registry_actor"]
