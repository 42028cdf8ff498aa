"""Tests for xds.ebrim.xdsb: ITI-41 and ITI-43 bodies round-trip, refuse malformed input and validate.

A rendered message with ``xop:Include`` elements is validated in its reconstituted form (XOP 1.0 §3.2: each
Include replaced by the base64 of its part), because the schema types ``xdsb:Document`` as ``base64Binary``.

References
----------
ITI TF-2 §3.41.4.1.2, §3.43.4.1.2, §3.43.4.2.2; W3C XOP 1.0 §3; XDS.b_DocumentRepository.xsd.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path

import pytest
from lxml import etree

from tests.xsd import assert_valid, corpus_dir, requires_corpus
from xds import samples
from xds import vocabulary as v
from xds.ebrim import messages
from xds.ebrim.parser import parse_xml
from xds.ebrim.xdsb import (
    PROVIDE_AND_REGISTER_REQUEST,
    RETRIEVE_RESPONSE,
    DocumentPart,
    inline_bytes,
    provide_and_register_request,
    render_provide_and_register_inline,
    render_provide_and_register_request,
    render_retrieve_request,
    retrieve_request,
    retrieve_response,
    retrieve_response_root,
)
from xds.errors import ErrorCode, RegistryErrorItem, RepositoryError, RepositoryMetadataError, Severity
from xds.model.messages import DocumentContent, DocumentRequest, RetrievedDocument, RetrieveRequest, RetrieveResponse
from xds.namespaces import LCM, RS, XDSB, XOP, qn
from xds.soap.faults import BAD_MTOM, SoapFault
from xds.soap.mtom import cid_href, resolve_include, xop_includes

PATIENT = samples.patient(7)
ENTRIES = [samples.document_entry(PATIENT, content=b"one"), samples.document_entry(PATIENT, content=b"")]
SUBMIT = messages.render_submit_objects_request(samples.submission(PATIENT, ENTRIES))
CIDS = ["1.abc@xds-node", "doc 2/ä%@x"]
NS = f'xmlns:xdsb="{XDSB}" xmlns:xop="{XOP}" xmlns:lcm="{LCM}"'
NIST_RETRIEVE = Path(
    "nist-iheos-toolkit2/xdstools2/src/main/webapp/toolkitx/testkit/tests/15816/Retrieve/normal_query.xml"
)
NIST_PNR = Path("nist-iheos-toolkit2/xdstools2/src/main/webapp/toolkitx/testkit/tests/ReposAcceptanceTest-1113")


def reconstituted(xml: bytes, parts: Mapping[str, bytes]) -> etree._Element:
    """The XOP infoset: every ``xop:Include`` replaced by the base64 of the part it names (XOP 1.0 §3.2)."""
    root = parse_xml(xml)
    for include in xop_includes(root):
        parent = include.getparent()
        assert parent is not None and len(parent) == 1
        parent.remove(include)
        parent.text = base64.b64encode(parts[resolve_include(include)]).decode()
    return root


def content(n: int = 1) -> DocumentContent:
    return DocumentContent(ref=f"ref{n}", size=n, sha1="0" * 40, sha256="0" * 64)


def pnr(documents: str, submit: str = "<lcm:SubmitObjectsRequest/>") -> etree._Element:
    return parse_xml(
        f"<xdsb:ProvideAndRegisterDocumentSetRequest {NS}>{submit}{documents}"
        "</xdsb:ProvideAndRegisterDocumentSetRequest>".encode()
    )


# --- ITI-41 Provide and Register Document Set-b --------------------------------------------------------------


def test_provide_and_register_round_trip() -> None:
    ids = [de.id for de in ENTRIES]
    xml = render_provide_and_register_request(SUBMIT, list(zip(ids, CIDS, strict=True)))
    message = provide_and_register_request(parse_xml(xml))
    assert message.documents == (
        DocumentPart(id=ids[0], cid=CIDS[0], inline=None),
        DocumentPart(id=ids[1], cid=CIDS[1], inline=None),
    )
    assert messages.submit_objects_request(message.submit).document_entries == tuple(ENTRIES)


@pytest.mark.parametrize("submit", [SUBMIT, b'<?xml version="1.0" encoding="UTF-8"?>\n' + SUBMIT, parse_xml(SUBMIT)])
def test_submit_as_bytes_or_element(submit: bytes | etree._Element) -> None:
    xml = render_provide_and_register_request(submit, [(ENTRIES[0].id, "a@b")])
    message = provide_and_register_request(parse_xml(xml))
    assert message.submit.tag == qn(LCM, "SubmitObjectsRequest")
    assert message.documents == (DocumentPart(ENTRIES[0].id, "a@b", None),)


def test_provide_and_register_inline_round_trip() -> None:
    data = [bytes(range(256)) * 3, b""]
    xml = render_provide_and_register_inline(SUBMIT, [(de.id, d) for de, d in zip(ENTRIES, data, strict=True)])
    message = provide_and_register_request(parse_xml(xml))
    assert [p.cid for p in message.documents] == [None, None]
    assert message.documents[1].inline == ""
    assert [inline_bytes(p) for p in message.documents] == data


def test_inline_base64_with_line_breaks_and_an_empty_document() -> None:
    folded = base64.encodebytes(b"x" * 200).decode()
    elem = pnr(f'<xdsb:Document id="a">\n{folded}</xdsb:Document><xdsb:Document id="b"/>')
    a, b = provide_and_register_request(elem).documents
    assert (inline_bytes(a), inline_bytes(b)) == (b"x" * 200, b"")


def test_xop_include_with_whitespace_around_it() -> None:
    elem = pnr(f'<xdsb:Document id="a">\n  <xop:Include href="{cid_href("a b@x")}"/>\n</xdsb:Document>')
    assert provide_and_register_request(elem).documents == (DocumentPart("a", "a b@x", None),)


@requires_corpus
def test_rendered_provide_and_register_is_valid() -> None:
    ids = [de.id for de in ENTRIES]
    xml = render_provide_and_register_request(SUBMIT, list(zip(ids, CIDS, strict=True)))
    assert_valid(reconstituted(xml, {CIDS[0]: b"one", CIDS[1]: b""}), what="ProvideAndRegister (XOP)")
    assert_valid(render_provide_and_register_inline(SUBMIT, [(ids[0], b"one")]), what="ProvideAndRegister (inline)")


@requires_corpus
def test_nist_provide_and_register_metadata() -> None:
    corpus = corpus_dir()
    assert corpus is not None
    elem = parse_xml((corpus / NIST_PNR / "SubmitTwoDocs" / "two_doc.xml").read_bytes())
    assert elem.tag == PROVIDE_AND_REGISTER_REQUEST
    message = provide_and_register_request(elem)
    assert message.documents == ()
    assert message.submit.tag == qn(LCM, "SubmitObjectsRequest")
    again = render_provide_and_register_request(message.submit, [("myDocId1", "1@x"), ("myDocId2", "2@x")])
    assert [p.id for p in provide_and_register_request(parse_xml(again)).documents] == ["myDocId1", "myDocId2"]


PNR_ERRORS = [
    (
        "wrong-root",
        parse_xml(b"<lcm:SubmitObjectsRequest xmlns:lcm='urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0'/>"),
        "expected xdsb:ProvideAndRegisterDocumentSetRequest",
    ),
    ("no-submit", pnr('<xdsb:Document id="a"/>', submit=""), "no lcm:SubmitObjectsRequest"),
    ("no-id", pnr("<xdsb:Document>QQ==</xdsb:Document>"), "no id attribute"),
    ("empty-id", pnr('<xdsb:Document id=" ">QQ==</xdsb:Document>'), "no id attribute"),
    ("duplicate-id", pnr('<xdsb:Document id="a">QQ==</xdsb:Document><xdsb:Document id="a"/>'), "two xdsb:Document"),
    ("both", pnr('<xdsb:Document id="a">QQ==<xop:Include href="cid:x"/></xdsb:Document>'), "both base64 text"),
    ("text-after", pnr('<xdsb:Document id="a"><xop:Include href="cid:x"/>QQ==</xdsb:Document>'), "both base64 text"),
    ("neither", pnr('<xdsb:Document id="a"><xdsb:Other/></xdsb:Document>'), "neither base64 text nor"),
    (
        "two-includes",
        pnr('<xdsb:Document id="a"><xop:Include href="cid:x"/><xop:Include href="cid:y"/></xdsb:Document>'),
        "2 xop:Include",
    ),
]


@pytest.mark.parametrize(("elem", "reason"), [e[1:] for e in PNR_ERRORS], ids=[e[0] for e in PNR_ERRORS])
def test_provide_and_register_errors(elem: etree._Element, reason: str) -> None:
    with pytest.raises(RepositoryMetadataError) as info:
        provide_and_register_request(elem)
    assert info.value.error_code == ErrorCode.REPOSITORY_METADATA_ERROR
    assert reason in info.value.code_context


@pytest.mark.parametrize(
    "include", ["<xop:Include/>", '<xop:Include href="http://x/y"/>', '<xop:Include href="cid:"/>']
)
def test_broken_xop_include_is_an_mtom_fault(include: str) -> None:
    with pytest.raises(SoapFault) as info:
        provide_and_register_request(pnr(f'<xdsb:Document id="a">{include}</xdsb:Document>'))
    assert info.value.subcode == BAD_MTOM


def test_inline_bytes_refuses() -> None:
    with pytest.raises(RepositoryMetadataError) as info:
        inline_bytes(DocumentPart("a", None, "QUJD*"))
    assert info.value.location == "a"
    with pytest.raises(RepositoryMetadataError):
        inline_bytes(DocumentPart("a", None, "QUJDRA"))
    with pytest.raises(RepositoryMetadataError):
        inline_bytes(DocumentPart("a", None, "\u20ac"))
    with pytest.raises(ValueError, match="xop:Include"):
        inline_bytes(DocumentPart("a", "c@x", None))


@pytest.mark.parametrize(("cid", "inline"), [(None, None), ("a@b", "")])
def test_document_part_has_exactly_one_content(cid: str | None, inline: str | None) -> None:
    with pytest.raises(ValueError):
        DocumentPart("a", cid, inline)


# --- ITI-43 Retrieve Document Set: request ------------------------------------------------------------------

REQUEST = RetrieveRequest(
    documents=(
        DocumentRequest(repository_unique_id="1.2.3", document_unique_id="1.2.3.4"),
        DocumentRequest(repository_unique_id="1.2.3", document_unique_id="1.2.3.5", home_community_id="urn:oid:9.8"),
    )
)


def test_retrieve_request_round_trip() -> None:
    assert retrieve_request(parse_xml(render_retrieve_request(REQUEST))) == REQUEST


@requires_corpus
def test_rendered_retrieve_request_is_valid() -> None:
    assert_valid(render_retrieve_request(REQUEST), what="RetrieveDocumentSetRequest")


@requires_corpus
def test_nist_retrieve_request() -> None:
    corpus = corpus_dir()
    assert corpus is not None
    text = (corpus / NIST_RETRIEVE).read_text(encoding="utf-8")
    text = text.replace("$repuid$", "1.19.6.24.109.42.1.5").replace("$doc_uid$", "1.42.20080101.1")
    assert "$" not in text
    assert retrieve_request(parse_xml(text.encode())) == RetrieveRequest(
        documents=(DocumentRequest(repository_unique_id="1.19.6.24.109.42.1.5", document_unique_id="1.42.20080101.1"),)
    )


def retrieve_xml(*requests: str) -> etree._Element:
    body = "".join(f"<xdsb:DocumentRequest>{r}</xdsb:DocumentRequest>" for r in requests)
    return parse_xml(
        f'<xdsb:RetrieveDocumentSetRequest xmlns:xdsb="{XDSB}">{body}</xdsb:RetrieveDocumentSetRequest>'.encode()
    )


def test_retrieve_request_strips_whitespace() -> None:
    elem = retrieve_xml(
        "<xdsb:HomeCommunityId> urn:oid:1 </xdsb:HomeCommunityId><xdsb:RepositoryUniqueId>\n 1.2 \n"
        "</xdsb:RepositoryUniqueId><xdsb:DocumentUniqueId> 3.4 </xdsb:DocumentUniqueId>"
    )
    assert retrieve_request(elem).documents == (
        DocumentRequest(repository_unique_id="1.2", document_unique_id="3.4", home_community_id="urn:oid:1"),
    )


RETRIEVE_ERRORS = [
    ("wrong-root", parse_xml(f'<xdsb:RetrieveDocumentSetResponse xmlns:xdsb="{XDSB}"/>'.encode()), "expected xdsb:"),
    ("no-requests", retrieve_xml(), "no DocumentRequest"),
    ("no-repository", retrieve_xml("<xdsb:DocumentUniqueId>1</xdsb:DocumentUniqueId>"), "no RepositoryUniqueId"),
    (
        "empty-repository",
        retrieve_xml(
            "<xdsb:RepositoryUniqueId> </xdsb:RepositoryUniqueId><xdsb:DocumentUniqueId>1</xdsb:DocumentUniqueId>"
        ),
        "no RepositoryUniqueId",
    ),
    ("no-document", retrieve_xml("<xdsb:RepositoryUniqueId>1</xdsb:RepositoryUniqueId>"), "no DocumentUniqueId"),
    (
        "empty-document",
        retrieve_xml("<xdsb:RepositoryUniqueId>1</xdsb:RepositoryUniqueId><xdsb:DocumentUniqueId/>"),
        "no DocumentUniqueId",
    ),
    (
        "second-broken",
        retrieve_xml(
            "<xdsb:RepositoryUniqueId>1</xdsb:RepositoryUniqueId><xdsb:DocumentUniqueId>2</xdsb:DocumentUniqueId>",
            "<xdsb:RepositoryUniqueId>1</xdsb:RepositoryUniqueId>",
        ),
        "DocumentRequest 2",
    ),
]


@pytest.mark.parametrize(("elem", "reason"), [e[1:] for e in RETRIEVE_ERRORS], ids=[e[0] for e in RETRIEVE_ERRORS])
def test_retrieve_request_errors(elem: etree._Element, reason: str) -> None:
    with pytest.raises(RepositoryError) as info:
        retrieve_request(elem)
    assert info.value.error_code == ErrorCode.REPOSITORY_ERROR
    assert reason in info.value.code_context


# --- ITI-43 Retrieve Document Set: response -----------------------------------------------------------------

DOCS = (
    RetrievedDocument(
        repository_unique_id="1.2.3", document_unique_id="1.2.3.4", mime_type="text/plain", content=content(1)
    ),
    RetrievedDocument(
        repository_unique_id="1.2.3",
        document_unique_id="1.2.3.5",
        mime_type="application/x-a&b<c>",
        content=content(2),
        home_community_id="urn:oid:9.8",
    ),
)
MISSING = RegistryErrorItem(
    error_code=ErrorCode.MISSING_DOCUMENT, code_context="1.2.3.6 <not found> & gone", location="1.2.3.6"
)
WARNING = RegistryErrorItem(error_code="XDSExtraWarning", code_context="note", severity=Severity.WARNING)
RESPONSES = [
    ("success", RetrieveResponse(documents=DOCS)),
    ("partial", RetrieveResponse(status=v.RESPONSE_PARTIAL_SUCCESS, errors=(MISSING, WARNING), documents=DOCS[:1])),
    ("failure", RetrieveResponse(status=v.RESPONSE_FAILURE, errors=(MISSING,))),
]


@pytest.mark.parametrize("resp", [r[1] for r in RESPONSES], ids=[r[0] for r in RESPONSES])
def test_retrieve_response_round_trip(resp: RetrieveResponse) -> None:
    cids = CIDS[: len(resp.documents)]
    xml = retrieve_response_root(resp, cids)
    status, errors, documents = retrieve_response(parse_xml(xml))
    assert (status, errors) == (resp.status, resp.errors)
    assert documents == tuple(
        (
            DocumentRequest(
                repository_unique_id=d.repository_unique_id,
                document_unique_id=d.document_unique_id,
                home_community_id=d.home_community_id,
            ),
            d.mime_type,
            DocumentPart(d.document_unique_id, cid, None),
        )
        for d, cid in zip(resp.documents, cids, strict=True)
    )


@requires_corpus
@pytest.mark.parametrize("resp", [r[1] for r in RESPONSES], ids=[r[0] for r in RESPONSES])
def test_rendered_retrieve_response_is_valid(resp: RetrieveResponse) -> None:
    xml = retrieve_response_root(resp, CIDS[: len(resp.documents)])
    assert_valid(reconstituted(xml, dict.fromkeys(CIDS, b"data")), what="RetrieveDocumentSetResponse (XOP)")


def test_retrieve_response_element_order() -> None:
    root = parse_xml(retrieve_response_root(RetrieveResponse(documents=DOCS), CIDS))
    assert root.tag == RETRIEVE_RESPONSE
    assert [etree.QName(c).localname for c in root] == ["RegistryResponse", "DocumentResponse", "DocumentResponse"]
    assert [etree.QName(c).localname for c in root[1]] == [
        "RepositoryUniqueId",
        "DocumentUniqueId",
        "mimeType",
        "Document",
    ]
    assert etree.QName(root[2][0]).localname == "HomeCommunityId"
    assert root[1].find(qn(XDSB, "Document"))[0].get("href") == cid_href(CIDS[0])  # type: ignore[index]


def test_retrieve_response_needs_one_cid_per_document() -> None:
    with pytest.raises(ValueError):
        retrieve_response_root(RetrieveResponse(documents=DOCS), CIDS[:1])


def response_xml(
    documents: str, registry: str = f'<rs:RegistryResponse status="{v.RESPONSE_SUCCESS}"/>'
) -> etree._Element:
    return parse_xml(
        f'<xdsb:RetrieveDocumentSetResponse {NS} xmlns:rs="{RS}">{registry}{documents}'
        "</xdsb:RetrieveDocumentSetResponse>".encode()
    )


IDS = "<xdsb:RepositoryUniqueId>1</xdsb:RepositoryUniqueId><xdsb:DocumentUniqueId>2</xdsb:DocumentUniqueId>"


def test_retrieve_response_with_inline_document_and_lenient_severity() -> None:
    registry = (
        f'<rs:RegistryResponse status="{v.RESPONSE_PARTIAL_SUCCESS}"><rs:RegistryErrorList>'
        '<rs:RegistryError errorCode="XDSMissingDocument" severity="Warning">text context</rs:RegistryError>'
        '<rs:RegistryError errorCode="X" codeContext="c"/>'
        "</rs:RegistryErrorList></rs:RegistryResponse>"
    )
    doc = (
        f"<xdsb:DocumentResponse>{IDS}<xdsb:mimeType>text/plain</xdsb:mimeType><xdsb:Document>QQ==</xdsb:Document>"
        "</xdsb:DocumentResponse>"
    )
    status, errors, documents = retrieve_response(response_xml(doc, registry))
    assert status == v.RESPONSE_PARTIAL_SUCCESS
    assert errors == (
        RegistryErrorItem(error_code="XDSMissingDocument", code_context="text context", severity=Severity.WARNING),
        RegistryErrorItem(error_code="X", code_context="c", severity=Severity.ERROR),
    )
    ((ids, mime, part),) = documents
    assert (ids.document_unique_id, mime, inline_bytes(part)) == ("2", "text/plain", b"A")


RESPONSE_ERRORS = [
    ("wrong-root", retrieve_xml(), "expected xdsb:RetrieveDocumentSetResponse"),
    ("no-registry-response", response_xml("", registry=""), "no rs:RegistryResponse"),
    (
        "no-ids",
        response_xml(
            "<xdsb:DocumentResponse><xdsb:mimeType>a/b</xdsb:mimeType><xdsb:Document/></xdsb:DocumentResponse>"
        ),
        "no DocumentUniqueId",
    ),
    (
        "no-mime-type",
        response_xml(f"<xdsb:DocumentResponse>{IDS}<xdsb:Document/></xdsb:DocumentResponse>"),
        "no mimeType",
    ),
    (
        "no-document",
        response_xml(f"<xdsb:DocumentResponse>{IDS}<xdsb:mimeType>a/b</xdsb:mimeType></xdsb:DocumentResponse>"),
        "no Document",
    ),
    (
        "both",
        response_xml(
            f"<xdsb:DocumentResponse>{IDS}<xdsb:mimeType>a/b</xdsb:mimeType><xdsb:Document>QQ=="
            '<xop:Include href="cid:a"/></xdsb:Document></xdsb:DocumentResponse>'
        ),
        "both",
    ),
]


@pytest.mark.parametrize(("elem", "reason"), [e[1:] for e in RESPONSE_ERRORS], ids=[e[0] for e in RESPONSE_ERRORS])
def test_retrieve_response_errors(elem: etree._Element, reason: str) -> None:
    with pytest.raises(RepositoryError) as info:
        retrieve_response(elem)
    assert reason in info.value.code_context
