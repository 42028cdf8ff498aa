"""The outbound SOAP client (:mod:`xds.client`): unit cases on ``httpx.MockTransport`` (faults, garbage, proxy
pages, registry errors, the shape of what is sent), then real round trips against the node served by uvicorn
on a loopback socket in a thread (MTOM upload larger than one chunk, retrieve to files)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import read_mtom, serving
from tests.xsd import assert_valid
from xds import samples
from xds import vocabulary as v
from xds.app import create_app
from xds.client import (
    ClientError,
    NotSoapError,
    SoapClient,
    SoapFaultError,
    parse_registry_response,
)
from xds.ebrim import messages, xdsb
from xds.ebrim.parser import parse_xml
from xds.errors import ErrorCode, RegistryErrorItem, Severity
from xds.model.messages import DocumentContent, RegistryResponse, RetrievedDocument, RetrieveResponse
from xds.model.metadata import DocumentEntry
from xds.namespaces import RS, SOAP11, SOAP12, WSA, qn
from xds.node import Node
from xds.soap import faults, mtom
from xds.soap.envelope import CONTENT_TYPE, render_envelope
from xds.soap.faults import SoapFault, render_fault

PATIENT = samples.patient("client-1")
URL = "http://peer.example/xds/repository"
NO_CONTENT = DocumentContent(ref="", size=0, sha1="", sha256="")
Handler = Callable[[httpx.Request], httpx.Response]


def mock(handler: Handler, **kwargs: object) -> SoapClient:
    return SoapClient(URL, transport=httpx.MockTransport(handler), **kwargs)  # type: ignore[arg-type]


def soap(body: bytes, *, action: str = v.ACTION_REGISTER_RESPONSE, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, content=render_envelope(action=action, body=body), headers={"content-type": CONTENT_TYPE}
    )


def registry_response(status: str, *errors: RegistryErrorItem) -> bytes:
    return messages.registry_response(RegistryResponse(status=status, errors=errors))


def entry(data: bytes, mime: str = "text/plain") -> DocumentEntry:
    return samples.document_entry(PATIENT, content=data, mime_type=mime, repository_unique_id="")


# --- faults and answers that are not SOAP -------------------------------------------------------------------

FAULTS = [
    # (fault sent, HTTP status, expected code, expected subcode)
    (
        SoapFault("no such action", subcode=faults.ACTION_NOT_SUPPORTED, detail="urn:x"),
        400,
        "Sender",
        faults.ACTION_NOT_SUPPORTED,
    ),
    (SoapFault("internal error", code="Receiver"), 500, "Receiver", None),
    (SoapFault("not understood", code="MustUnderstand", not_understood=(qn(WSA, "X"),)), 500, "MustUnderstand", None),
    (SoapFault("bad MTOM", subcode=faults.BAD_MTOM), 400, "Sender", faults.BAD_MTOM),
]


@pytest.mark.parametrize(("fault", "status", "code", "subcode"), FAULTS, ids=lambda x: getattr(x, "reason", None))
def test_a_soap_fault_raises_with_code_subcode_and_reason(
    fault: SoapFault, status: int, code: str, subcode: str | None
) -> None:
    answer = httpx.Response(status, content=render_fault(fault), headers={"content-type": CONTENT_TYPE})
    with mock(lambda _: answer) as client, pytest.raises(SoapFaultError) as caught:
        client.call(v.ACTION_REGISTER, b"<x/>")
    err = caught.value
    assert (err.code, err.subcode, err.reason, err.http_status) == (code, subcode, fault.reason, status)
    assert err.detail == fault.detail
    assert isinstance(err, ClientError)


def test_a_fault_with_foreign_prefixes_and_several_reasons_is_read() -> None:
    body = (
        f'<s:Envelope xmlns:s="{SOAP12}"><s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value>'
        '<s:Subcode><s:Value xmlns:p="urn:peer">p:Busy</s:Value></s:Subcode></s:Code>'
        '<s:Reason><s:Text xml:lang="nl">bezet</s:Text><s:Text xml:lang="en-GB">busy</s:Text></s:Reason>'
        "<s:Detail><p:Why xmlns:p='urn:peer'>too  many\n requests</p:Why></s:Detail></s:Fault></s:Body></s:Envelope>"
    ).encode()
    answer = httpx.Response(400, content=body, headers={"content-type": "application/soap+xml"})
    with mock(lambda _: answer) as client, pytest.raises(SoapFaultError) as caught:
        client.call(v.ACTION_REGISTER, b"<x/>")
    assert (caught.value.code, caught.value.subcode, caught.value.reason) == ("Sender", "{urn:peer}Busy", "busy")
    assert caught.value.detail == "too many requests"


NOT_SOAP = [
    # (status, content type, body, words the message must contain)
    (502, "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>", ["502", "text/html", "Bad Gateway"]),
    (200, "application/json", b'{"ok": true}', ["200", "application/json"]),
    (200, "", b"plain", ["untyped"]),
    (200, CONTENT_TYPE, b"<html><body>not closed", ["not XML"]),
    (200, "text/xml", f'<e:Envelope xmlns:e="{SOAP11}"><e:Body><x/></e:Body></e:Envelope>'.encode(), ["SOAP 1.1"]),
    (200, CONTENT_TYPE, b"<root/>", ["<root>", "not a SOAP 1.2 envelope"]),
    (200, CONTENT_TYPE, f'<e:Envelope xmlns:e="{SOAP12}"><e:Body/></e:Envelope>'.encode(), ["empty SOAP Body"]),
    (200, CONTENT_TYPE, b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', ["not XML"]),
    (200, 'multipart/related; boundary="b"', b"--b\r\n\r\nno closing", ["malformed MTOM"]),
    (200, "multipart/related", b"", ["MTOM"]),
]


@pytest.mark.parametrize(("status", "content_type", "body", "words"), NOT_SOAP)
def test_an_answer_that_is_not_soap_raises_a_clear_error(
    status: int, content_type: str, body: bytes, words: list[str]
) -> None:
    answer = httpx.Response(status, content=body, headers={"content-type": content_type} if content_type else {})
    with mock(lambda _: answer) as client, pytest.raises(NotSoapError) as caught:
        client.call(v.ACTION_REGISTER, b"<x/>")
    assert caught.value.http_status == status
    for word in words:
        assert word in str(caught.value)


def test_a_soap_answer_with_an_error_status_that_is_no_fault_is_a_client_error() -> None:
    answer = soap(registry_response(v.RESPONSE_SUCCESS), status=503)
    with mock(lambda _: answer) as client, pytest.raises(ClientError, match="HTTP 503") as caught:
        client.call(v.ACTION_REGISTER, b"<x/>")
    assert caught.type is ClientError


def test_transport_errors_are_not_wrapped() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with mock(refuse) as client, pytest.raises(httpx.ConnectError):
        client.register(samples.submission(PATIENT, [entry(b"x")]))


# --- RegistryResponse ------------------------------------------------------------------------------------


def test_registry_errors_are_parsed_faithfully() -> None:
    body = (
        f'<rs:RegistryResponse xmlns:rs="{RS}" status="{v.RESPONSE_FAILURE}">'
        f'<rs:RegistryErrorList highestSeverity="{v.SEVERITY_ERROR}">'
        f'<rs:RegistryError errorCode="XDSUnknownPatientId" codeContext="who is 1^^^&amp;1.2&amp;ISO?"'
        f' severity="{v.SEVERITY_ERROR}" location="urn:uuid:x"/>'
        '<rs:RegistryError errorCode="XDSExtraMetadataNotSaved" codeContext="slot dropped"'
        f' severity="{v.SEVERITY_WARNING}"/>'
        '<rs:RegistryError errorCode="XDSRegistryError">context as text</rs:RegistryError>'
        '<rs:RegistryError errorCode="Odd" codeContext="c" severity="urn:peer:Warning"/>'
        '<rs:RegistryError errorCode="Odd" codeContext="c" severity="urn:peer:Fatal"/>'
        "</rs:RegistryErrorList></rs:RegistryResponse>"
    ).encode()
    with mock(lambda _: soap(body)) as client:
        response = client.register(samples.submission(PATIENT, [entry(b"x")]))
    assert response.status == v.RESPONSE_FAILURE
    assert response.errors == (
        RegistryErrorItem(
            error_code=ErrorCode.UNKNOWN_PATIENT_ID,
            code_context="who is 1^^^&1.2&ISO?",
            severity=Severity.ERROR,
            location="urn:uuid:x",
        ),
        RegistryErrorItem(
            error_code=ErrorCode.EXTRA_METADATA_NOT_SAVED, code_context="slot dropped", severity=Severity.WARNING
        ),
        RegistryErrorItem(error_code=ErrorCode.REGISTRY_ERROR, code_context="context as text"),
        RegistryErrorItem(error_code="Odd", code_context="c", severity=Severity.WARNING),
        RegistryErrorItem(error_code="Odd", code_context="c", severity=Severity.ERROR),
    )


def test_what_the_node_renders_parses_back_to_the_same_response() -> None:
    sent = RegistryResponse(
        status=v.RESPONSE_PARTIAL_SUCCESS,
        errors=(
            RegistryErrorItem(error_code="XDSRegistryBusy", code_context="later", location="1.2.3"),
            RegistryErrorItem(error_code="XDSExtraMetadataNotSaved", code_context="w", severity=Severity.WARNING),
        ),
    )
    assert parse_registry_response(parse_xml(messages.registry_response(sent))) == sent


@pytest.mark.parametrize(
    "body",
    [
        f'<rs:RegistryResponse xmlns:rs="{RS}"/>'.encode(),
        f'<rs:AdhocQueryResponse xmlns:rs="{RS}" status="x"/>'.encode(),
    ],
)
def test_a_body_that_is_no_registry_response_is_a_client_error(body: bytes) -> None:
    with mock(lambda _: soap(body)) as client, pytest.raises(ClientError):
        client.register(samples.submission(PATIENT, [entry(b"x")]))


# --- what is sent ----------------------------------------------------------------------------------------


def test_register_sends_plain_soap_with_ws_addressing() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return soap(registry_response(v.RESPONSE_SUCCESS))

    with mock(handler) as client:
        assert client.register(samples.submission(PATIENT, [entry(b"x")])).status == v.RESPONSE_SUCCESS
    (request,) = seen
    assert request.headers["content-type"] == f'{CONTENT_TYPE}; action="{v.ACTION_REGISTER}"'
    root = parse_xml(request.content)
    assert_valid(root, what="ITI-42 request")
    assert root.findtext(f"{qn(SOAP12, 'Header')}/{qn(WSA, 'To')}") == URL
    assert root.findtext(f"{qn(SOAP12, 'Header')}/{qn(WSA, 'Action')}") == v.ACTION_REGISTER


class Recording(httpx.BaseTransport):
    """Keeps the request body chunk by chunk as the client produced them (MockTransport reads it whole)."""

    def __init__(self, answer: httpx.Response) -> None:
        self.answer = answer
        self.chunks: list[bytes] = []
        self.headers: dict[str, str] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        self.chunks = list(request.stream)
        self.headers = dict(request.headers)
        return self.answer


def test_provide_and_register_streams_each_file_in_chunks_with_a_content_length(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 40)  # 10,240 bytes: 11 chunks of 1,000
    small = b"%PDF-1.4 in memory"
    a, b = entry(big.read_bytes(), "application/octet-stream"), entry(small, "application/pdf; x=1")
    transport = Recording(soap(registry_response(v.RESPONSE_SUCCESS), action=v.ACTION_PROVIDE_AND_REGISTER_RESPONSE))
    with SoapClient(URL, transport=transport, chunk_size=1000) as client:
        response = client.provide_and_register(
            samples.submission(PATIENT, [a, b]), {a.id: big, b.id: small}, mime_types={b.id: "application/pdf"}
        )
    assert response.status == v.RESPONSE_SUCCESS
    body = b"".join(transport.chunks)
    assert int(transport.headers["content-length"]) == len(body)
    assert [len(c) for c in transport.chunks].count(1000) == 10, "the file is read in chunk_size pieces"
    root, parts = read_mtom(transport.headers["content-type"], body)
    request = parse_xml(root)
    assert request.findtext(f"{qn(SOAP12, 'Header')}/{qn(WSA, 'Action')}") == v.ACTION_PROVIDE_AND_REGISTER
    message = xdsb.provide_and_register_request(request.find(qn(SOAP12, "Body"))[0])  # type: ignore[index]
    sent = {d.id: parts[d.cid] for d in message.documents if d.cid is not None}
    assert sent == {a.id: big.read_bytes(), b.id: small}
    cids = [d.cid for d in message.documents]
    head = "Content-Type: {}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{}>"
    assert head.format("application/octet-stream", cids[0]).encode() in body
    assert head.format("application/pdf", cids[1]).encode() in body


def test_a_document_s_mime_type_is_its_part_s_content_type_when_it_is_one() -> None:
    transport = Recording(soap(registry_response(v.RESPONSE_SUCCESS)))
    a, b = entry(b"a", "text/x-cda-r2+xml; charset=UTF-8"), entry(b"b", "not a media type")
    with SoapClient(URL, transport=transport) as client:
        client.provide_and_register(samples.submission(PATIENT, [a, b]), {a.id: b"a", b.id: b"b"})
    body = b"".join(transport.chunks)
    assert b"Content-Type: text/x-cda-r2+xml; charset=UTF-8\r\n" in body
    assert b"Content-Type: application/octet-stream\r\n" in body


def test_a_missing_file_fails_before_anything_is_sent(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent")

    a = entry(b"x")
    with mock(handler) as client, pytest.raises(FileNotFoundError):
        client.provide_and_register(samples.submission(PATIENT, [a]), {a.id: tmp_path / "gone"})


# --- retrieve to files -----------------------------------------------------------------------------------


def _retrieve_answer(documents: list[tuple[str, str, bytes | None]], extra: bytes = b"") -> httpx.Response:
    """An MTOM ITI-43 answer: (uniqueId, mimeType, bytes) each as a part, or inline when bytes is None."""
    cids = [mtom.new_content_id(n) for n in range(len(documents))]
    response = RetrieveResponse(
        status=v.RESPONSE_SUCCESS,
        documents=tuple(
            RetrievedDocument(repository_unique_id="1.2.3", document_unique_id=uid, mime_type=mime, content=NO_CONTENT)
            for uid, mime, _ in documents
        ),
    )
    root = xdsb.retrieve_response_root(response, cids)
    parts = [
        (cid, "application/octet-stream", data)
        for cid, (_, _, data) in zip(cids, documents, strict=True)
        if data is not None
    ]
    for cid, (_, _, data) in zip(cids, documents, strict=True):
        if data is None:
            include = f'<xop:Include href="{mtom.cid_href(cid)}"/>'.encode()
            root = root.replace(include, base64.b64encode(b"inline bytes"))
    if extra:
        parts.append(("unused@peer", "text/plain", extra))
    envelope = render_envelope(action=v.ACTION_RETRIEVE_RESPONSE, body=root)
    content_type, body = mtom.render_mtom(envelope=envelope, action=v.ACTION_RETRIEVE_RESPONSE, parts=parts)
    return httpx.Response(200, content=body, headers={"content-type": content_type})


def test_retrieve_writes_each_document_to_a_file_in_out_dir(tmp_path: Path) -> None:
    answer = _retrieve_answer([("1.1", "text/plain", b"one"), ("1.2", "application/pdf", None)], extra=b"junk")
    with mock(lambda _: answer) as client:
        result = client.retrieve("1.2.3", ["1.1", "1.2"], out_dir=tmp_path)
    assert result.status == v.RESPONSE_SUCCESS and result.errors == ()
    got = {d.ids.document_unique_id: (d.mime_type, d.path.read_bytes(), d.size) for d in result.documents}
    assert got == {"1.1": ("text/plain", b"one", 3), "1.2": ("application/pdf", b"inline bytes", 12)}
    assert sorted(p.parent for p in tmp_path.iterdir()) == [tmp_path, tmp_path], "the unused part is deleted"


def test_retrieve_leaves_no_file_behind_when_the_answer_breaks(tmp_path: Path) -> None:
    answer = _retrieve_answer([("1.1", "text/plain", b"one" * 1000)])
    truncated = httpx.Response(200, content=answer.content[:-40], headers=answer.headers)
    with mock(lambda _: truncated) as client, pytest.raises(NotSoapError, match="closing boundary"):
        client.retrieve("1.2.3", ["1.1"], out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_retrieve_leaves_no_file_behind_when_a_document_names_no_part(tmp_path: Path) -> None:
    answer = _retrieve_answer([("1.1", "text/plain", b"one")])
    body = answer.content.replace(b'href="cid:0.', b'href="cid:9.')
    broken = httpx.Response(200, content=body, headers=answer.headers)
    with mock(lambda _: broken) as client, pytest.raises(ClientError, match="names no MIME part"):
        client.retrieve("1.2.3", ["1.1"], out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- the node over a real socket -------------------------------------------------------------------------


@pytest.fixture
def live(node: Node) -> Iterator[str]:
    node.store.add_patient(str(PATIENT))
    with serving(create_app(node)) as url:
        yield url


def test_provide_a_file_larger_than_a_chunk_then_retrieve_it_to_files(live: str, node: Node, tmp_path: Path) -> None:
    big = tmp_path / "scan.bin"
    big.write_bytes(hashlib.sha256(b"seed").digest() * (100_000))  # 3.2 MB: more than 3 chunks of 1 MiB
    note = b"a note\r\n--MIMEBoundary_ not a boundary\r\n"
    a, b = entry(big.read_bytes(), "application/octet-stream"), entry(note)
    sub = samples.submission(PATIENT, [a, b])
    with SoapClient(f"{live}/xds/repository") as client:
        response = client.provide_and_register(sub, {a.id: big, b.id: note})
        assert response == RegistryResponse(status=v.RESPONSE_SUCCESS)
        out = tmp_path / "out"
        out.mkdir()
        result = client.retrieve(node.repository_unique_id, [a.unique_id, b.unique_id, "1.2.404"], out_dir=out)
    assert result.status == v.RESPONSE_PARTIAL_SUCCESS
    assert [(e.error_code, e.location) for e in result.errors] == [(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR, "1.2.404")]
    got = {d.ids.document_unique_id: (d.mime_type, d.path.read_bytes()) for d in result.documents}
    assert got == {a.unique_id: ("application/octet-stream", big.read_bytes()), b.unique_id: ("text/plain", note)}
    assert all(d.path.parent == out and d.size == d.path.stat().st_size for d in result.documents)
    assert len(list(out.iterdir())) == 2


def test_the_node_s_refusals_come_back_as_data(live: str, node: Node) -> None:
    stranger = samples.patient("nobody")
    with SoapClient(f"{live}/xds/registry") as client:
        refused = client.register(samples.submission(stranger, [samples.document_entry(stranger)]))
    assert refused.status == v.RESPONSE_FAILURE
    assert [e.error_code for e in refused.errors] == [ErrorCode.UNKNOWN_PATIENT_ID]
    assert refused.errors[0].code_context and refused.errors[0].severity == Severity.ERROR

    a = entry(b"declared wrong")
    wrong = samples.submission(PATIENT, [dataclasses.replace(a, hash="0" * 40)])
    with SoapClient(f"{live}/xds/repository") as client:
        response = client.provide_and_register(wrong, {a.id: b"declared wrong"})
    assert response.status == v.RESPONSE_FAILURE
    assert [(e.error_code, e.location) for e in response.errors] == [(ErrorCode.REPOSITORY_METADATA_ERROR, a.unique_id)]


def test_the_node_s_faults_and_non_soap_pages_raise(live: str) -> None:
    with SoapClient(f"{live}/xds/repository") as client, pytest.raises(SoapFaultError) as caught:
        client.call("urn:example:NoSuchAction", b"<x/>")
    assert (caught.value.code, caught.value.subcode, caught.value.http_status) == (
        "Sender",
        faults.ACTION_NOT_SUPPORTED,
        400,
    )
    with SoapClient(f"{live}/nowhere") as client, pytest.raises(NotSoapError, match="404"):
        client.call(v.ACTION_REGISTER, b"<x/>")


def test_an_unreachable_node_raises_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with SoapClient(f"http://127.0.0.1:{port}/xds/registry", timeout=5) as client, pytest.raises(httpx.ConnectError):
        client.register(samples.submission(PATIENT, [entry(b"x")]))
