"""Tests for xds.soap.envelope: request checks (SOAP 1.2 Part 1 §5, WS-Addressing), the render fast path."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest
from lxml import etree

from tests.xsd import assert_envelope_valid
from xds.ebrim.parser import MAX_DEPTH, parse_xml
from xds.namespaces import QUERY, RS, SOAP12, WSA, qn
from xds.soap.envelope import (
    ANONYMOUS,
    CONTENT_TYPE,
    Envelope,
    parse_envelope,
    render_envelope,
    request_envelope,
    soap_content_type,
)
from xds.soap.faults import (
    DTD_NOT_ALLOWED,
    EMPTY_BODY,
    INVALID_ADDRESSING_HEADER,
    MESSAGE_ADDRESSING_HEADER_REQUIRED,
    NOT_SOAP,
    NOT_XML,
    TOO_DEEP,
    TOO_LARGE,
    SoapFault,
    render_fault,
)
from xds.vocabulary import ACTION_REGISTER, ACTION_STORED_QUERY, ACTION_STORED_QUERY_RESPONSE

DATA = Path(__file__).resolve().parents[1] / "data" / "soap"
NS = {"env": SOAP12, "wsa": WSA, "query": QUERY, "rs": RS}
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'
RESPONSE = (
    b'<rs:RegistryResponse  xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"'
    b"   status='urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success'  ></rs:RegistryResponse>"
)


def canonical(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def nested(depth: int) -> bytes:
    """A stored-query envelope whose body element nests ``depth`` extra ``x`` elements."""
    head = (DATA / "stored_query.xml").read_bytes().split(b"<env:Body>")[0]
    return head + b"<env:Body>" + b"<x>" * depth + b"</x>" * depth + b"</env:Body></env:Envelope>"


def load(source: str | bytes) -> bytes:
    return source if isinstance(source, bytes) else (DATA / source).read_bytes()


# (input file or bytes, max_bytes, expected env:Code, expected subcode) -- see tests/data/soap/README.md
FAULT_CASES = [
    pytest.param("not_xml.txt", None, "Sender", NOT_XML, id="not-xml"),
    pytest.param("truncated.xml", None, "Sender", NOT_XML, id="truncated"),
    pytest.param("doctype.xml", None, "Sender", DTD_NOT_ALLOWED, id="doctype"),
    pytest.param("billion_laughs.xml", None, "Sender", DTD_NOT_ALLOWED, id="billion-laughs"),
    pytest.param("external_entity.xml", None, "Sender", DTD_NOT_ALLOWED, id="xxe"),
    pytest.param("stored_query.xml", 512, "Sender", TOO_LARGE, id="too-large"),
    pytest.param(nested(MAX_DEPTH), None, "Sender", TOO_DEEP, id="too-deep"),
    pytest.param("soap11.xml", None, "VersionMismatch", None, id="soap11"),
    pytest.param("not_soap.xml", None, "Sender", NOT_SOAP, id="not-soap"),
    pytest.param("missing_action.xml", None, "Sender", MESSAGE_ADDRESSING_HEADER_REQUIRED, id="no-action"),
    pytest.param("duplicate_action.xml", None, "Sender", INVALID_ADDRESSING_HEADER, id="two-actions"),
    pytest.param("empty_body.xml", None, "Sender", EMPTY_BODY, id="empty-body"),
    pytest.param("no_body.xml", None, "Sender", EMPTY_BODY, id="no-body"),
    pytest.param("must_understand.xml", None, "MustUnderstand", None, id="must-understand-true"),
    pytest.param("must_understand_1.xml", None, "MustUnderstand", None, id="must-understand-1"),
]


@pytest.mark.parametrize(("source", "max_bytes", "code", "subcode"), FAULT_CASES)
def test_bad_request_raises_the_right_fault(
    source: str | bytes, max_bytes: int | None, code: str, subcode: str | None
) -> None:
    kwargs = {"max_bytes": max_bytes} if max_bytes else {}
    with pytest.raises(SoapFault) as caught:
        parse_envelope(load(source), **kwargs)
    assert (caught.value.code, caught.value.subcode) == (code, subcode)


@pytest.mark.parametrize(("source", "max_bytes", "code", "subcode"), FAULT_CASES)
def test_every_fault_renders_a_valid_soap12_fault(
    source: str | bytes, max_bytes: int | None, code: str, subcode: str | None
) -> None:
    kwargs = {"max_bytes": max_bytes} if max_bytes else {}
    with pytest.raises(SoapFault) as caught:
        parse_envelope(load(source), **kwargs)
    root = assert_envelope_valid(render_fault(caught.value, relates_to="urn:uuid:request"))
    assert root.findtext("env:Body/env:Fault/env:Code/env:Value", namespaces=NS) == f"env:{code}"


def test_nesting_just_within_the_limit_is_accepted() -> None:
    # Envelope, Body and the x elements: MAX_DEPTH - 2 x's make exactly MAX_DEPTH levels.
    assert parse_envelope(nested(MAX_DEPTH - 2)).body.tag == "x"


def test_must_understand_fault_names_the_header() -> None:
    with pytest.raises(SoapFault) as caught:
        parse_envelope(load("must_understand.xml"))
    assert caught.value.not_understood == ("{urn:example:billing}Billing",)


# (input file, action, message id, to, reply to, body element)
ACCEPTED = [
    pytest.param(
        "stored_query.xml",
        ACTION_STORED_QUERY,
        "urn:uuid:6f1f1e6a-4c1b-4b53-9d0e-2b2f0c0a9a01",
        "http://localhost:8080/xds/registry",
        ANONYMOUS,
        qn(QUERY, "AdhocQueryRequest"),
        id="stored-query",
    ),
    pytest.param(
        "tolerated_headers.xml",
        ACTION_STORED_QUERY,
        "urn:uuid:6f1f1e6a-4c1b-4b53-9d0e-2b2f0c0a9a01",
        "http://localhost:8080/xds/registry",
        ANONYMOUS,
        qn(QUERY, "AdhocQueryRequest"),
        id="tolerated-headers",
    ),
    pytest.param(
        "register.xml",
        ACTION_REGISTER,
        "urn:uuid:6f1f1e6a-4c1b-4b53-9d0e-2b2f0c0a9a04",
        ANONYMOUS,  # WS-Addressing 1.0 Core §3.2: an absent wsa:To means anonymous
        ANONYMOUS,
        "{urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0}SubmitObjectsRequest",
        id="register-defaults",
    ),
]


@pytest.mark.parametrize(("source", "action", "message_id", "to", "reply_to", "body"), ACCEPTED)
def test_good_request_is_parsed(source: str, action: str, message_id: str, to: str, reply_to: str, body: str) -> None:
    envelope = parse_envelope(load(source))
    assert (envelope.action, envelope.message_id, envelope.to, envelope.reply_to) == (
        action,
        message_id,
        to,
        reply_to,
    )
    assert envelope.body.tag == body
    assert envelope.header is not None and envelope.header.tag == qn(SOAP12, "Header")


def test_envelope_is_frozen() -> None:
    envelope = parse_envelope(load("stored_query.xml"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        envelope.action = "urn:other"  # type: ignore[misc]


def test_reply_to_address_is_read() -> None:
    message = request_envelope(action=ACTION_STORED_QUERY, body=RESPONSE, to="http://x", reply_to_anonymous=False)
    reply_to = b"<wsa:ReplyTo><wsa:Address>http://back/channel</wsa:Address></wsa:ReplyTo>"
    message = message.replace(b"<wsa:To", reply_to + b"<wsa:To")
    assert parse_envelope(message).reply_to == "http://back/channel"


BODIES = [
    pytest.param(RESPONSE, id="bytes"),
    pytest.param(DECLARATION + b"\n" + RESPONSE, id="bytes-with-declaration"),
    pytest.param(parse_xml(RESPONSE), id="element"),
]


@pytest.mark.parametrize("body", BODIES)
def test_render_then_parse_roundtrip(body: bytes | etree._Element) -> None:
    message = render_envelope(
        action=ACTION_STORED_QUERY_RESPONSE,
        body=body,
        relates_to="urn:uuid:request",
        message_id="urn:uuid:answer",
        to="http://peer/reply",
    )
    root = assert_envelope_valid(message)
    envelope = parse_envelope(message)
    assert isinstance(envelope, Envelope)
    assert (envelope.action, envelope.message_id, envelope.to) == (
        ACTION_STORED_QUERY_RESPONSE,
        "urn:uuid:answer",
        "http://peer/reply",
    )
    assert root.findtext("env:Header/wsa:RelatesTo", namespaces=NS) == "urn:uuid:request"
    assert canonical(envelope.body) == canonical(parse_xml(RESPONSE))


def test_render_inserts_body_bytes_verbatim() -> None:
    message = render_envelope(action=ACTION_STORED_QUERY_RESPONSE, body=RESPONSE)
    assert b"<env:Body>" + RESPONSE + b"</env:Body>" in message


def test_render_starts_with_an_xml_declaration_and_one_only() -> None:
    message = render_envelope(action=ACTION_STORED_QUERY_RESPONSE, body=DECLARATION + RESPONSE)
    assert message.startswith(DECLARATION)
    assert message.count(b"<?xml") == 1


def test_render_element_body_leaves_out_its_tail() -> None:
    holder = parse_xml(b"<holder>" + RESPONSE + b"tail text</holder>")
    message = render_envelope(action=ACTION_STORED_QUERY_RESPONSE, body=holder[0])
    assert b"tail text" not in message
    assert_envelope_valid(message)


def test_render_action_must_be_understood() -> None:
    root = assert_envelope_valid(render_envelope(action=ACTION_STORED_QUERY_RESPONSE, body=RESPONSE))
    action = root.find("env:Header/wsa:Action", NS)
    assert action is not None and action.get(qn(SOAP12, "mustUnderstand")) == "true"


def test_render_leaves_out_empty_optional_headers() -> None:
    root = assert_envelope_valid(render_envelope(action=ACTION_STORED_QUERY_RESPONSE, body=RESPONSE))
    assert root.find("env:Header/wsa:RelatesTo", NS) is None
    assert root.find("env:Header/wsa:To", NS) is None


def test_render_generates_a_fresh_message_id() -> None:
    ids = {
        parse_envelope(render_envelope(action=ACTION_STORED_QUERY_RESPONSE, body=RESPONSE)).message_id for _ in range(3)
    }
    assert len(ids) == 3
    assert all(uuid.UUID(i.removeprefix("urn:uuid:")).version == 4 for i in ids)


@pytest.mark.parametrize("text", ["urn:x?a=1&b=<2>", "urn:uuid:plain", "urn:ünïcode"])
def test_header_values_are_escaped(text: str) -> None:
    message = render_envelope(action=text, body=RESPONSE, relates_to=text, message_id=text, to=text)
    envelope = parse_envelope(message)
    assert (envelope.action, envelope.message_id, envelope.to) == (text, text, text)


@pytest.mark.parametrize(("reply_to_anonymous", "replies"), [(True, [ANONYMOUS]), (False, [])])
def test_request_envelope(reply_to_anonymous: bool, replies: list[str]) -> None:
    body = parse_xml(load("stored_query.xml")).find("env:Body/query:AdhocQueryRequest", NS)
    assert body is not None
    message = request_envelope(
        action=ACTION_STORED_QUERY,
        body=body,
        to="http://registry/xds",
        message_id="urn:uuid:req",
        reply_to_anonymous=reply_to_anonymous,
    )
    root = assert_envelope_valid(message)
    assert [e.text for e in root.findall("env:Header/wsa:ReplyTo/wsa:Address", NS)] == replies
    to = root.find("env:Header/wsa:To", NS)
    assert to is not None and to.get(qn(SOAP12, "mustUnderstand")) == "true"
    envelope = parse_envelope(message)
    assert (envelope.action, envelope.message_id, envelope.to, envelope.reply_to) == (
        ACTION_STORED_QUERY,
        "urn:uuid:req",
        "http://registry/xds",
        ANONYMOUS,
    )
    assert envelope.body.tag == qn(QUERY, "AdhocQueryRequest")


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (ACTION_STORED_QUERY, f'{CONTENT_TYPE}; action="urn:ihe:iti:2007:RegistryStoredQuery"'),
        ('urn:odd"quote\\slash', f'{CONTENT_TYPE}; action="urn:odd\\"quote\\\\slash"'),
    ],
)
def test_soap_content_type(action: str, expected: str) -> None:
    assert soap_content_type(action) == expected


def test_content_type_is_soap12() -> None:
    assert CONTENT_TYPE == "application/soap+xml; charset=utf-8"
