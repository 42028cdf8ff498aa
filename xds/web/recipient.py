"""The Document Recipient actor at ``/xdr/recipient``: XDR pushes (ITI-41) into this node's mailboxes.

The request is read like the repository's (:func:`xds.web.repository.provide_request`); the service
(:func:`xds.recipient.iti41.receive`) stores the delivery, or refuses it with the error codes of ITI-41.
The sender a delivery names is the requester's organisation (XUA or client certificate), else its
``wsa:ReplyTo`` or network address.
"""

from __future__ import annotations

from xds.audit import transactions as tx
from xds.consent.model import Requester
from xds.ebrim import messages
from xds.model.messages import RegistryResponse
from xds.node import Node
from xds.recipient import iti41
from xds.recipient.model import TRANSPORT_XDR
from xds.soap.wsdl import recipient_wsdl
from xds.web import audits
from xds.web.repository import provide_request
from xds.web.soap import Operation, SoapActor, SoapRequest, node_actor


def sender_of(req: SoapRequest) -> str:
    """Who pushed: the requester's organisation, else its reply address or network address."""
    r: Requester = req.requester
    if r.organisation_name or r.organisation_id:
        return " ".join(x for x in (r.organisation_name, f"({r.organisation_id})" if r.organisation_id else "") if x)
    reply_to = req.envelope.reply_to
    if reply_to and not reply_to.endswith("/anonymous"):
        return reply_to
    return r.address or "(unknown sender)"


def recipient_actor(node: Node) -> SoapActor:
    """The Document Recipient's SOAP endpoint."""
    ctx = node.recipient_context()
    store = node.documents

    def provide(req: SoapRequest) -> bytes:
        request = provide_request(req, store)
        iti41.receive(request, ctx, transport=TRANSPORT_XDR, sender=sender_of(req))
        return messages.registry_response(RegistryResponse())

    return node_actor(
        node,
        "Document Recipient",
        [
            Operation(
                iti41.TRANSACTION,
                provide,
                messages.registry_failure,
                audits.submission(node, tx.provide_and_register),
                audit_in_transaction=True,
            )
        ],
        wsdl=recipient_wsdl,
        role="recipient",
    )


__all__ = ["recipient_actor", "sender_of"]
