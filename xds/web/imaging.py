"""The Imaging Document Source actor at ``/xds/imaging``: RAD-69 Retrieve Imaging Document Set.

The DICOM instances stream from the document store as MTOM parts (:func:`xds.web.repository.retrieve_parts`).
"""

from __future__ import annotations

from xds.audit import transactions as tx
from xds.dicom import rad69
from xds.ebrim import xdsb, xdsi
from xds.imaging import leaving
from xds.node import Node
from xds.soap.wsdl import imaging_wsdl
from xds.web import audits
from xds.web.repository import retrieve_parts
from xds.web.soap import MtomReply, Operation, SoapActor, SoapRequest, node_actor


def imaging_context(node: Node) -> rad69.ImagingContext:
    """The RAD-69 context of ``node`` (also the Responding Gateway's, for RAD-75)."""
    return rad69.ImagingContext(
        source_id=node.imaging_source_id,
        index=node.imaging,
        files=node.documents,
        category=node.settings.imaging_defaults.class_code.code,
        max_documents=node.settings.max_retrieve_documents,
        gate=node.gate(),
    )


def imaging_actor(node: Node) -> SoapActor:
    """The Imaging Document Source's SOAP endpoint."""
    ctx = imaging_context(node)

    def retrieve(req: SoapRequest) -> MtomReply:
        request = xdsi.imaging_retrieve_request(req.body)
        answer = leaving(node, rad69.retrieve_imaging(request, ctx, req.requester))
        return retrieve_parts(answer, node.documents)

    return node_actor(
        node,
        "Imaging Document Source",
        [
            Operation(
                rad69.TRANSACTION,
                retrieve,
                xdsb.retrieve_failure,
                audits.retrieve(node, tx.retrieve_imaging_document_set),
            )
        ],
        wsdl=imaging_wsdl,
        role="imaging",
    )


__all__ = ["imaging_actor", "imaging_context"]
