"""XDS-I.b messages: ``xdsiB:RetrieveImagingDocumentSetRequest`` of RAD-69 and RAD-75 (its answer is ITI-43's
``xdsb:RetrieveDocumentSetResponse``, :mod:`xds.ebrim.xdsb`).

References
----------
IHE RAD TF-3 §4.69.4.1.2 (Retrieve Imaging Document Set Request), §4.75 (RAD-75); the XDSI.b_ImagingDocumentSource
schema.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from xds.ebrim.xdsb import render_document_request, retrieve_document_request
from xds.errors import ImagingRequestError, RepositoryError
from xds.model.messages import ImagingDocumentRequest, ImagingRetrieveRequest
from xds.namespaces import XDSB, XDSI, qn

REQUEST: Final = qn(XDSI, "RetrieveImagingDocumentSetRequest")
_STUDY: Final = qn(XDSI, "StudyRequest")
_SERIES: Final = qn(XDSI, "SeriesRequest")
_SYNTAXES: Final = qn(XDSI, "TransferSyntaxUIDList")
_SYNTAX: Final = qn(XDSI, "TransferSyntaxUID")
_DOCUMENT_REQUEST: Final = qn(XDSB, "DocumentRequest")
MAX_REQUESTS: Final = 100_000
"""DocumentRequests decoded from one message at most (the service caps what it answers)."""


def imaging_retrieve_request(elem: etree._Element) -> ImagingRetrieveRequest:
    """Decode a RAD-69 / RAD-75 request.

    Raises :class:`~xds.errors.ImagingRequestError` (XDSIRequestError) for a StudyRequest or SeriesRequest
    without its UID, and :class:`~xds.errors.RepositoryError` for a wrong element, no DocumentRequest or a
    DocumentRequest without identifiers.
    """
    if elem.tag != REQUEST:
        raise RepositoryError(f"expected xdsiB:RetrieveImagingDocumentSetRequest, got {etree.QName(elem).text}")
    documents: list[ImagingDocumentRequest] = []
    n = 0
    for study in elem.iterchildren(_STUDY):
        study_uid = (study.get("studyInstanceUID") or "").strip()
        if not study_uid:
            raise ImagingRequestError("a StudyRequest has no studyInstanceUID attribute", location="StudyRequest")
        for series in study.iterchildren(_SERIES):
            series_uid = (series.get("seriesInstanceUID") or "").strip()
            if not series_uid:
                raise ImagingRequestError(
                    f"a SeriesRequest of study {study_uid} has no seriesInstanceUID attribute", location=study_uid
                )
            for request in series.iterchildren(_DOCUMENT_REQUEST):
                n += 1
                if n > MAX_REQUESTS:
                    raise RepositoryError(f"more than {MAX_REQUESTS} DocumentRequests in one request")
                documents.append(
                    ImagingDocumentRequest(
                        study_instance_uid=study_uid,
                        series_instance_uid=series_uid,
                        document=retrieve_document_request(request, n),
                    )
                )
    if not documents:
        raise RepositoryError("RetrieveImagingDocumentSetRequest has no DocumentRequest")
    syntaxes = elem.find(_SYNTAXES)
    found = () if syntaxes is None else tuple((s.text or "").strip() for s in syntaxes.iterchildren(_SYNTAX))
    return ImagingRetrieveRequest(documents=tuple(documents), transfer_syntaxes=tuple(s for s in found if s))


def render_imaging_retrieve_request(req: ImagingRetrieveRequest) -> bytes:
    """Render a RAD-69 / RAD-75 request body (one StudyRequest per study, one SeriesRequest per series)."""
    root = etree.Element(REQUEST, nsmap={"xdsiB": XDSI, "xdsb": XDSB})
    studies: dict[str, dict[str, list[ImagingDocumentRequest]]] = {}
    for d in req.documents:
        studies.setdefault(d.study_instance_uid, {}).setdefault(d.series_instance_uid, []).append(d)
    for study_uid, series in studies.items():
        study = etree.SubElement(root, _STUDY, studyInstanceUID=study_uid)
        for series_uid, members in series.items():
            series_elem = etree.SubElement(study, _SERIES, seriesInstanceUID=series_uid)
            for d in members:
                series_elem.append(render_document_request(d.document))
    syntaxes = etree.SubElement(root, _SYNTAXES)
    for uid in req.transfer_syntaxes:
        etree.SubElement(syntaxes, _SYNTAX).text = uid
    return etree.tostring(root, encoding="UTF-8", xml_declaration=False)


__all__ = ["MAX_REQUESTS", "REQUEST", "imaging_retrieve_request", "render_imaging_retrieve_request"]
