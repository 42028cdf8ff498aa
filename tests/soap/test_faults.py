"""Tests for xds.soap.faults: the anatomy of SOAP 1.2 faults (SOAP 1.2 Part 1 §5.4), checked by the XSD."""

from __future__ import annotations

import uuid

import pytest
from lxml import etree

from tests.xsd import assert_envelope_valid
from xds.namespaces import SOAP11, SOAP12, WSA, XML, qn
from xds.soap.faults import (
    ACTION_NOT_SUPPORTED,
    DTD_NOT_ALLOWED,
    EMPTY_BODY,
    FAULT_ACTION,
    FAULT_NS,
    INVALID_ADDRESSING_HEADER,
    MESSAGE_ADDRESSING_HEADER_REQUIRED,
    NOT_SOAP,
    NOT_XML,
    TOO_DEEP,
    TOO_LARGE,
    SoapFault,
    new_message_id,
    render_fault,
)

NS = {"env": SOAP12, "wsa": WSA, "s11": SOAP11}


def resolve(element: etree._Element, prefixed: str) -> str:
    """Clark notation of a ``prefix:local`` QName in ``element``'s scope (as a QName-typed value is read)."""
    prefix, _, local = prefixed.partition(":")
    return qn(element.nsmap[prefix], local)


# (fault, expected env:Code/env:Value, expected subcode, HTTP status)
FAULTS = [
    pytest.param(SoapFault("bad request"), "Sender", None, 400, id="sender"),
    pytest.param(SoapFault("db down", code="Receiver"), "Receiver", None, 500, id="receiver"),
    pytest.param(SoapFault("enc", code="DataEncodingUnknown"), "DataEncodingUnknown", None, 500, id="encoding"),
    pytest.param(SoapFault("1.1", code="VersionMismatch"), "VersionMismatch", None, 500, id="version"),
    pytest.param(
        SoapFault("mu", code="MustUnderstand", not_understood=("{urn:x}H",)),
        "MustUnderstand",
        None,
        500,
        id="mu",
    ),
    pytest.param(SoapFault("a", subcode=ACTION_NOT_SUPPORTED), "Sender", ACTION_NOT_SUPPORTED, 400, id="action"),
    pytest.param(
        SoapFault("r", subcode=MESSAGE_ADDRESSING_HEADER_REQUIRED, detail="wsa:Action"),
        "Sender",
        MESSAGE_ADDRESSING_HEADER_REQUIRED,
        400,
        id="wsa-required",
    ),
    pytest.param(
        SoapFault("i", subcode=INVALID_ADDRESSING_HEADER),
        "Sender",
        INVALID_ADDRESSING_HEADER,
        400,
        id="wsa-invalid",
    ),
    pytest.param(SoapFault("x", subcode=NOT_XML), "Sender", NOT_XML, 400, id="not-xml"),
    pytest.param(SoapFault("d", subcode=DTD_NOT_ALLOWED), "Sender", DTD_NOT_ALLOWED, 400, id="dtd"),
    pytest.param(SoapFault("l", subcode=TOO_LARGE), "Sender", TOO_LARGE, 400, id="too-large"),
    pytest.param(SoapFault("d", subcode=TOO_DEEP), "Sender", TOO_DEEP, 400, id="too-deep"),
    pytest.param(SoapFault("s", subcode=NOT_SOAP), "Sender", NOT_SOAP, 400, id="not-soap"),
    pytest.param(SoapFault("e", subcode=EMPTY_BODY), "Sender", EMPTY_BODY, 400, id="empty-body"),
    pytest.param(
        SoapFault("f", code="Receiver", subcode="{urn:example:other}Busy"),
        "Receiver",
        "{urn:example:other}Busy",
        500,
        id="foreign-subcode",
    ),
]


@pytest.mark.parametrize(("fault", "code", "subcode", "status"), FAULTS)
def test_fault_anatomy(fault: SoapFault, code: str, subcode: str | None, status: int) -> None:
    root = assert_envelope_valid(render_fault(fault))
    value = root.find("env:Body/env:Fault/env:Code/env:Value", NS)
    assert value is not None and resolve(value, value.text or "") == qn(SOAP12, code)
    sub = root.find("env:Body/env:Fault/env:Code/env:Subcode/env:Value", NS)
    assert (resolve(sub, sub.text or "") if sub is not None else None) == subcode
    assert fault.http_status == status


@pytest.mark.parametrize(("fault", "code", "subcode", "status"), FAULTS)
def test_fault_reason_and_action(fault: SoapFault, code: str, subcode: str | None, status: int) -> None:
    root = assert_envelope_valid(render_fault(fault))
    text = root.find("env:Body/env:Fault/env:Reason/env:Text", NS)
    assert text is not None and text.text == fault.reason and text.get(qn(XML, "lang")) == "en"
    action = root.find("env:Header/wsa:Action", NS)
    assert action is not None and action.text == FAULT_ACTION
    assert action.get(qn(SOAP12, "mustUnderstand")) == "true"


def test_fault_has_an_xml_declaration_and_is_utf8() -> None:
    message = render_fault(SoapFault("Ünïcode réason"))
    assert message.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert "Ünïcode réason".encode() in message


@pytest.mark.parametrize(("relates_to", "expected"), [("urn:uuid:1234", ["urn:uuid:1234"]), ("", [])])
def test_relates_to_only_when_given(relates_to: str, expected: list[str]) -> None:
    root = assert_envelope_valid(render_fault(SoapFault("x"), relates_to=relates_to))
    assert [e.text for e in root.findall("env:Header/wsa:RelatesTo", NS)] == expected


def test_message_id_is_injectable_and_otherwise_fresh() -> None:
    fixed = assert_envelope_valid(render_fault(SoapFault("x"), message_id="urn:uuid:fixed"))
    assert fixed.findtext("env:Header/wsa:MessageID", namespaces=NS) == "urn:uuid:fixed"
    first, second = (
        assert_envelope_valid(render_fault(SoapFault("x"))).findtext("env:Header/wsa:MessageID", namespaces=NS)
        for _ in range(2)
    )
    assert first != second and (first or "").startswith("urn:uuid:")


def test_no_detail_when_empty() -> None:
    root = assert_envelope_valid(render_fault(SoapFault("x", subcode=NOT_XML)))
    assert root.find("env:Body/env:Fault/env:Detail", NS) is None


# (subcode, detail, path of the one detail element, its expected text) -- WS-Addressing SOAP Binding §6.4
DETAILS = [
    pytest.param(NOT_XML, "line 1", "xf:Message", "line 1", id="own"),
    pytest.param(None, "why", "xf:Message", "why", id="no-subcode"),
    pytest.param(MESSAGE_ADDRESSING_HEADER_REQUIRED, "wsa:Action", "wsa:ProblemHeaderQName", "wsa:Action", id="req"),
    pytest.param(INVALID_ADDRESSING_HEADER, "wsa:MessageID", "wsa:ProblemHeaderQName", "wsa:MessageID", id="inv"),
    pytest.param(INVALID_ADDRESSING_HEADER, "twice", "xf:Message", "twice", id="inv-not-a-qname"),
    pytest.param(ACTION_NOT_SUPPORTED, "urn:x:Nope", "wsa:ProblemAction/wsa:Action", "urn:x:Nope", id="action"),
]


@pytest.mark.parametrize(("subcode", "detail", "path", "text"), DETAILS)
def test_detail_elements(subcode: str | None, detail: str, path: str, text: str) -> None:
    root = assert_envelope_valid(render_fault(SoapFault("x", subcode=subcode, detail=detail)))
    holder = root.find("env:Body/env:Fault/env:Detail", NS)
    assert holder is not None and len(holder) == 1
    assert [e.text for e in holder.iterfind(path, {**NS, "xf": FAULT_NS})] == [text]
    if path.endswith("ProblemHeaderQName"):
        assert resolve(holder[0], text) == qn(WSA, text.removeprefix("wsa:"))


def test_reason_with_characters_xml_cannot_carry_still_renders() -> None:
    root = assert_envelope_valid(render_fault(SoapFault("bad byte \x00 and \x1b here <&>", detail="\x01")))
    text = root.findtext("env:Body/env:Fault/env:Reason/env:Text", namespaces=NS)
    assert text == "bad byte \ufffd and \ufffd here <&>"
    assert root.findtext("env:Body/env:Fault/env:Detail/xf:Message", namespaces={**NS, "xf": FAULT_NS}) == "\ufffd"


def test_version_mismatch_carries_an_upgrade_header() -> None:
    root = assert_envelope_valid(render_fault(SoapFault("SOAP 1.1", code="VersionMismatch")))
    supported = root.find("env:Header/env:Upgrade/env:SupportedEnvelope", NS)
    assert supported is not None
    assert resolve(supported, supported.get("qname", "")) == qn(SOAP12, "Envelope")


def test_must_understand_lists_each_header_not_understood() -> None:
    names = ("{urn:example:billing}Billing", "{urn:example:audit}Audit")
    fault = SoapFault("mu", code="MustUnderstand", not_understood=names)
    root = assert_envelope_valid(render_fault(fault))
    found = root.findall("env:Header/env:NotUnderstood", NS)
    assert [resolve(e, e.get("qname", "")) for e in found] == list(names)


def test_soap11_version_mismatch_is_a_soap11_envelope() -> None:
    """SOAP 1.2 Part 1 Appendix A: answer a SOAP/1.1 message with a SOAP/1.1 VersionMismatch fault."""
    root = assert_envelope_valid(
        render_fault(SoapFault("use SOAP 1.2", code="VersionMismatch"), version_mismatch_soap11=True),
        "soap-1.1-envelope.xsd",
    )
    assert root.tag == qn(SOAP11, "Envelope")
    faultcode = root.find("s11:Body/s11:Fault/faultcode", NS)
    assert faultcode is not None and resolve(faultcode, faultcode.text or "") == qn(SOAP11, "VersionMismatch")
    assert root.findtext("s11:Body/s11:Fault/faultstring", namespaces=NS) == "use SOAP 1.2"
    supported = root.find("s11:Header/env:Upgrade/env:SupportedEnvelope", NS)
    assert supported is not None and resolve(supported, supported.get("qname", "")) == qn(SOAP12, "Envelope")


def test_own_subcodes_live_in_the_project_namespace() -> None:
    own = [NOT_XML, DTD_NOT_ALLOWED, TOO_LARGE, TOO_DEEP, NOT_SOAP, EMPTY_BODY]
    assert {etree.QName(name).namespace for name in own} == {FAULT_NS}
    assert len(set(own)) == len(own)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"code": "Client"}, id="soap11-code"),
        pytest.param({"code": "env:Sender"}, id="prefixed-code"),
        pytest.param({"subcode": "wsa:ActionNotSupported"}, id="prefixed-subcode"),
        pytest.param({"code": "MustUnderstand", "not_understood": ("Billing",)}, id="bare-not-understood"),
    ],
)
def test_constructor_rejects_malformed_codes(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SoapFault("x", **kwargs)  # type: ignore[arg-type]


def test_fault_is_an_exception_with_its_parts() -> None:
    fault = SoapFault("why", code="Receiver", subcode=ACTION_NOT_SUPPORTED, detail="more")
    assert isinstance(fault, Exception) and str(fault) == "why"
    assert (fault.reason, fault.code, fault.subcode, fault.detail) == (
        "why",
        "Receiver",
        ACTION_NOT_SUPPORTED,
        "more",
    )


def test_new_message_id_is_a_random_uuid_urn() -> None:
    first, second = new_message_id(), new_message_id()
    assert first != second
    assert uuid.UUID(first.removeprefix("urn:uuid:")).version == 4
