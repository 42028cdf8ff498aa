"""XDS.b repository messages (namespace ``urn:ihe:iti:xds-b:2007``): the ITI-41 request and ITI-43 request/response.

Theory of operation
-------------------
Documents never enter a tree as bytes (STYLE R10). In an MTOM message each ``xdsb:Document`` holds one
``xop:Include`` naming a MIME part, so decoding yields a :class:`DocumentPart` with the Content-ID, and the
adapter pairs it with the attachment :class:`~xds.soap.mtom.MtomReader` streamed to its sink. A
``xdsb:Document`` may instead carry its bytes inline as ``base64Binary`` text (a plain SOAP request, or a
peer that did not optimise it); :attr:`DocumentPart.inline` then holds the text and :func:`inline_bytes`
decodes it. An empty ``xdsb:Document`` is a zero-byte document.

Responses are rendered by concatenation: ``rs:RegistryResponse`` comes from
:func:`xds.ebrim.messages.registry_response` and each document is an ``xop:Include`` whose part the
adapter streams after the envelope (:func:`xds.soap.mtom.part_head`). Element order follows
``XDS.b_DocumentRepository.xsd``.

A malformed ITI-41 request raises :class:`~xds.errors.RepositoryMetadataError`, a malformed ITI-43
request or response :class:`~xds.errors.RepositoryError`; a broken ``xop:Include`` (no ``href``, not a
``cid:`` URL) is an MTOM problem and raises :class:`~xds.soap.faults.SoapFault` with subcode BAD_MTOM.

References
----------
ITI TF-2 §3.41.4.1.2 (ProvideAndRegisterDocumentSetRequest), §3.43.4.1.2 (RetrieveDocumentSetRequest),
§3.43.4.2.2 (RetrieveDocumentSetResponse); ITI TF-2 Appendix V.4 (MTOM); W3C XOP 1.0 §3 (xop:Include);
IHE ``XDS.b_DocumentRepository.xsd``.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from xds import vocabulary as v
from xds.ebrim.messages import REGISTRY_RESPONSE, SUBMIT_OBJECTS_REQUEST, registry_errors, registry_response
from xds.errors import RegistryErrorItem, RepositoryError, RepositoryMetadataError, XDSError
from xds.model.messages import DocumentRequest, RegistryResponse, RetrieveRequest, RetrieveResponse
from xds.namespaces import XDSB, XOP, qn
from xds.soap.mtom import XOP_INCLUDE, cid_href, resolve_include

PROVIDE_AND_REGISTER_REQUEST: Final = qn(XDSB, "ProvideAndRegisterDocumentSetRequest")
RETRIEVE_REQUEST: Final = qn(XDSB, "RetrieveDocumentSetRequest")
RETRIEVE_RESPONSE: Final = qn(XDSB, "RetrieveDocumentSetResponse")

_DOCUMENT: Final = qn(XDSB, "Document")
_DOCUMENT_REQUEST: Final = qn(XDSB, "DocumentRequest")
_DOCUMENT_RESPONSE: Final = qn(XDSB, "DocumentResponse")
_B64_SPACE: Final = b" \t\r\n"


@dataclass(frozen=True, slots=True)
class DocumentPart:
    """The content of one ``xdsb:Document``: a Content-ID (MTOM) or inline base64 text, exactly one of them."""

    id: str
    """``Document/@id`` (the DocumentEntry's id) in ITI-41; the DocumentUniqueId in an ITI-43 response."""
    cid: str | None
    """The Content-ID the ``xop:Include`` names (decoded from its ``cid:`` URL), or None when inline."""
    inline: str | None
    """The base64 text (``""`` for a zero-byte document), or None when the content is an ``xop:Include``."""

    def __post_init__(self) -> None:
        if (self.cid is None) == (self.inline is None):
            raise ValueError("a DocumentPart has either a cid or inline content")


@dataclass(frozen=True, slots=True)
class ProvideAndRegisterMessage:
    """A decoded ``xdsb:ProvideAndRegisterDocumentSetRequest``: the metadata and the documents' contents."""

    submit: etree._Element
    """The ``lcm:SubmitObjectsRequest`` element (decode with :func:`xds.ebrim.messages.submit_objects_request`)."""
    documents: tuple[DocumentPart, ...]


def provide_and_register_request(elem: etree._Element) -> ProvideAndRegisterMessage:
    """Decode the body of an ITI-41 request (ITI TF-2 §3.41.4.1.2).

    Raises
    ------
    RepositoryMetadataError
        Wrong document element, no ``lcm:SubmitObjectsRequest``, a Document without ``id``, two Documents
        with one ``id``, a Document with both base64 text and ``xop:Include`` or with other content.
    SoapFault
        BAD_MTOM for an ``xop:Include`` without a usable ``cid:`` href.
    """
    if elem.tag != PROVIDE_AND_REGISTER_REQUEST:
        raise RepositoryMetadataError(f"expected xdsb:ProvideAndRegisterDocumentSetRequest, got {_name(elem)}")
    submit = elem.find(SUBMIT_OBJECTS_REQUEST)
    if submit is None:
        raise RepositoryMetadataError("ProvideAndRegisterDocumentSetRequest has no lcm:SubmitObjectsRequest")
    documents: list[DocumentPart] = []
    seen: set[str] = set()
    for document in elem.iterchildren(_DOCUMENT):
        doc_id = (document.get("id") or "").strip()
        if not doc_id:
            raise RepositoryMetadataError("an xdsb:Document has no id attribute")
        if doc_id in seen:
            raise RepositoryMetadataError(f"two xdsb:Document elements have id {doc_id}", location=doc_id)
        seen.add(doc_id)
        documents.append(_content(document, doc_id, RepositoryMetadataError))
    return ProvideAndRegisterMessage(submit=submit, documents=tuple(documents))


def _content(document: etree._Element, doc_id: str, error: type[XDSError]) -> DocumentPart:
    """Read one ``xdsb:Document``: inline base64 text or a single ``xop:Include`` (XOP 1.0 §3.1)."""
    children = [child for child in document if isinstance(child.tag, str)]
    text = ((document.text or "") + "".join(child.tail or "" for child in children)).strip()
    if not children:
        return DocumentPart(id=doc_id, cid=None, inline=text)
    odd = [child for child in children if child.tag != XOP_INCLUDE]
    if odd:
        what = _name(odd[0])
        raise error(f"xdsb:Document {doc_id} holds {what}, neither base64 text nor an xop:Include", location=doc_id)
    if text:
        raise error(f"xdsb:Document {doc_id} holds both base64 text and an xop:Include", location=doc_id)
    if len(children) > 1:
        raise error(f"xdsb:Document {doc_id} holds {len(children)} xop:Include elements", location=doc_id)
    return DocumentPart(id=doc_id, cid=resolve_include(children[0]), inline=None)


def inline_bytes(part: DocumentPart) -> bytes:
    """Decode an inline document's base64 text (whitespace allowed, as in ``xs:base64Binary``).

    Raises
    ------
    RepositoryMetadataError
        When the text is not base64. ValueError when ``part`` is an ``xop:Include``.
    """
    if part.inline is None:
        raise ValueError(f"document {part.id} is an xop:Include, not inline content")
    try:
        return binascii.a2b_base64(part.inline.encode("ascii").translate(None, _B64_SPACE), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        raise RepositoryMetadataError(f"xdsb:Document {part.id} is not valid base64", location=part.id) from None


def render_provide_and_register_request(submit: bytes | etree._Element, documents: Sequence[tuple[str, str]]) -> bytes:
    """Render an ITI-41 request body whose documents are MTOM parts: ``(document id, Content-ID)`` each."""
    return _provide_and_register(submit, (_xop_document(doc_id, cid) for doc_id, cid in documents))


def render_provide_and_register_inline(submit: bytes | etree._Element, documents: Sequence[tuple[str, bytes]]) -> bytes:
    """Render an ITI-41 request body with each document inline as base64: ``(document id, bytes)`` each."""
    rendered = (
        f"<xdsb:Document id={quoteattr(doc_id)}>{binascii.b2a_base64(data, newline=False).decode()}</xdsb:Document>"
        for doc_id, data in documents
    )
    return _provide_and_register(submit, rendered)


def _provide_and_register(submit: bytes | etree._Element, documents: Iterable[str]) -> bytes:
    head = f'<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="{XDSB}" xmlns:xop="{XOP}">'
    tail = "".join(documents) + "</xdsb:ProvideAndRegisterDocumentSetRequest>"
    return head.encode() + _fragment(submit) + tail.encode()


def _xop_document(doc_id: str, cid: str) -> str:
    return f"<xdsb:Document id={quoteattr(doc_id)}><xop:Include href={quoteattr(cid_href(cid))}/></xdsb:Document>"


def _fragment(xml: bytes | etree._Element) -> bytes:
    """One serialised element, without an XML declaration."""
    if not isinstance(xml, bytes):
        return etree.tostring(xml, encoding="UTF-8", with_tail=False)
    if xml.startswith(b"<?xml"):
        return xml[xml.index(b"?>") + 2 :].lstrip()
    return xml


# --- ITI-43 Retrieve Document Set ----------------------------------------------------------------------------


def retrieve_request(elem: etree._Element) -> RetrieveRequest:
    """Decode an ITI-43 request (ITI TF-2 §3.43.4.1.2); identifiers are whitespace-stripped.

    Raises
    ------
    RepositoryError
        Wrong document element, no DocumentRequest, or a DocumentRequest without RepositoryUniqueId or
        DocumentUniqueId (empty text counts as missing).
    """
    if elem.tag != RETRIEVE_REQUEST:
        raise RepositoryError(f"expected xdsb:RetrieveDocumentSetRequest, got {_name(elem)}")
    requests = [_document_request(r, n) for n, r in enumerate(elem.iterchildren(_DOCUMENT_REQUEST), 1)]
    if not requests:
        raise RepositoryError("RetrieveDocumentSetRequest has no DocumentRequest")
    return RetrieveRequest(documents=tuple(requests))


def _document_request(elem: etree._Element, n: int) -> DocumentRequest:
    """The identifiers of a DocumentRequest or DocumentResponse (the n-th of the message)."""
    repository, document = _text(elem, "RepositoryUniqueId"), _text(elem, "DocumentUniqueId")
    what = etree.QName(elem).localname
    if not document:
        raise RepositoryError(f"{what} {n} has no DocumentUniqueId", location=repository)
    if not repository:
        raise RepositoryError(f"{what} {n} ({document}) has no RepositoryUniqueId", location=document)
    return DocumentRequest(
        repository_unique_id=repository, document_unique_id=document, home_community_id=_text(elem, "HomeCommunityId")
    )


def retrieve_document_request(elem: etree._Element, n: int) -> DocumentRequest:
    """One ``xdsb:DocumentRequest`` (the n-th of its message), for messages that nest them (RAD-69)."""
    return _document_request(elem, n)


def render_document_request(d: DocumentRequest) -> etree._Element:
    """One ``xdsb:DocumentRequest`` element."""
    request = etree.Element(_DOCUMENT_REQUEST, nsmap={"xdsb": XDSB})
    _identifiers(request, d.home_community_id, d.repository_unique_id, d.document_unique_id)
    return request


def render_retrieve_request(req: RetrieveRequest) -> bytes:
    """Render an ITI-43 request body (document consumers, the initiating gateway)."""
    root = etree.Element(RETRIEVE_REQUEST, nsmap={"xdsb": XDSB})
    for d in req.documents:
        request = etree.SubElement(root, _DOCUMENT_REQUEST)
        _identifiers(request, d.home_community_id, d.repository_unique_id, d.document_unique_id)
    return etree.tostring(root, encoding="UTF-8", xml_declaration=False)


def _identifiers(parent: etree._Element, home: str, repository: str, document: str) -> None:
    if home:
        etree.SubElement(parent, qn(XDSB, "HomeCommunityId")).text = home
    etree.SubElement(parent, qn(XDSB, "RepositoryUniqueId")).text = repository
    etree.SubElement(parent, qn(XDSB, "DocumentUniqueId")).text = document


def retrieve_response_root(resp: RetrieveResponse, cids: Sequence[str]) -> bytes:
    """Render the ITI-43 response body; document ``i`` is an ``xop:Include`` of ``cids[i]`` (§3.43.4.2.2).

    Raises ValueError when ``cids`` and ``resp.documents`` differ in length.
    """
    if len(cids) != len(resp.documents):
        raise ValueError(f"{len(resp.documents)} documents but {len(cids)} Content-IDs")
    head = f'<xdsb:RetrieveDocumentSetResponse xmlns:xdsb="{XDSB}" xmlns:xop="{XOP}">'.encode()
    status = registry_response(RegistryResponse(status=resp.status, errors=resp.errors))
    parts = []
    for d, cid in zip(resp.documents, cids, strict=True):
        home = _element("HomeCommunityId", d.home_community_id) if d.home_community_id else ""
        parts.append(
            f"<xdsb:DocumentResponse>{home}{_element('RepositoryUniqueId', d.repository_unique_id)}"
            f"{_element('DocumentUniqueId', d.document_unique_id)}{_element('mimeType', d.mime_type)}"
            f"<xdsb:Document><xop:Include href={quoteattr(cid_href(cid))}/></xdsb:Document></xdsb:DocumentResponse>"
        )
    return head + status + "".join(parts).encode() + b"</xdsb:RetrieveDocumentSetResponse>"


def _element(local: str, text: str) -> str:
    return f"<xdsb:{local}>{escape(text)}</xdsb:{local}>"


def retrieve_failure(errors: tuple[RegistryErrorItem, ...]) -> bytes:
    """``xdsb:RetrieveDocumentSetResponse`` with status Failure, ``errors`` and no document (ITI-43, ITI-39)."""
    return retrieve_response_root(RetrieveResponse(status=v.RESPONSE_FAILURE, errors=errors), [])


def retrieve_response(
    elem: etree._Element,
) -> tuple[str, tuple[RegistryErrorItem, ...], tuple[tuple[DocumentRequest, str, DocumentPart], ...]]:
    """Decode an ITI-43 response (clients): status, errors, and ``(identifiers, mimeType, content)`` per document.

    Each :class:`DocumentPart` has the DocumentUniqueId as its ``id``.

    Raises
    ------
    RepositoryError
        Wrong document element, no ``rs:RegistryResponse``, a DocumentResponse without identifiers, mimeType
        or Document, or with malformed Document content.
    """
    if elem.tag != RETRIEVE_RESPONSE:
        raise RepositoryError(f"expected xdsb:RetrieveDocumentSetResponse, got {_name(elem)}")
    response = elem.find(REGISTRY_RESPONSE)
    if response is None:
        raise RepositoryError("RetrieveDocumentSetResponse has no rs:RegistryResponse")
    errors = registry_errors(response)
    documents = tuple(_document_response(d, n) for n, d in enumerate(elem.iterchildren(_DOCUMENT_RESPONSE), 1))
    return response.get("status", ""), errors, documents


def _document_response(elem: etree._Element, n: int) -> tuple[DocumentRequest, str, DocumentPart]:
    ids = _document_request(elem, n)
    mime_type = _text(elem, "mimeType")
    document = elem.find(_DOCUMENT)
    if not mime_type or document is None:
        missing = "mimeType" if not mime_type else "Document"
        raise RepositoryError(
            f"DocumentResponse {ids.document_unique_id} has no {missing}", location=ids.document_unique_id
        )
    return ids, mime_type, _content(document, ids.document_unique_id, RepositoryError)


def _text(parent: etree._Element, local: str) -> str:
    child = parent.find(qn(XDSB, local))
    return (child.text or "").strip() if child is not None else ""


def _name(elem: etree._Element) -> str:
    return str(etree.QName(elem).text) if isinstance(elem.tag, str) else repr(elem.tag)


__all__ = [
    "PROVIDE_AND_REGISTER_REQUEST",
    "RETRIEVE_REQUEST",
    "RETRIEVE_RESPONSE",
    "DocumentPart",
    "ProvideAndRegisterMessage",
    "inline_bytes",
    "provide_and_register_request",
    "render_document_request",
    "render_provide_and_register_inline",
    "render_provide_and_register_request",
    "render_retrieve_request",
    "retrieve_document_request",
    "retrieve_failure",
    "retrieve_request",
    "retrieve_response",
    "retrieve_response_root",
]
