"""The registry endpoint's boundary: envelope faults, WSDL, health, size limit, unexpected failures."""

from __future__ import annotations

import dataclasses

import pytest
from starlette.testclient import TestClient

from tests.xsd import assert_valid
from xds import vocabulary as v
from xds.app import create_app
from xds.ebrim.parser import parse_xml
from xds.namespaces import SOAP12, WSA, qn
from xds.node import Node
from xds.soap.envelope import CONTENT_TYPE, request_envelope

URL = "/xds/registry"
QUERY = b'<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"/>'


def _fault(resp_content: bytes) -> tuple[str, str]:
    root = parse_xml(resp_content)
    assert_valid(root, what="fault")
    code = root.find(f".//{qn(SOAP12, 'Code')}")
    assert code is not None
    value = code.findtext(qn(SOAP12, "Value")) or ""
    sub = code.findtext(f"{qn(SOAP12, 'Subcode')}/{qn(SOAP12, 'Value')}") or ""
    return value.split(":")[-1], sub.split(":")[-1]


CASES = [
    ("not xml", b"not xml at all", 400, "Sender", "NotXML"),
    ("dtd", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', 400, "Sender", "DTDNotAllowed"),
    (
        "soap 1.1",
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>',
        500,
        "VersionMismatch",
        "",
    ),
    (
        "no action",
        f'<e:Envelope xmlns:e="{SOAP12}"><e:Header/><e:Body>{QUERY.decode()}</e:Body></e:Envelope>'.encode(),
        400,
        "Sender",
        "MessageAddressingHeaderRequired",
    ),
    (
        "unknown action",
        request_envelope(action="urn:example:Nope", body=QUERY, to="http://x"),
        400,
        "Sender",
        "ActionNotSupported",
    ),
]


@pytest.mark.parametrize(("body", "status", "code", "subcode"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_envelope_problems_are_soap_faults(
    client: TestClient, body: bytes, status: int, code: str, subcode: str
) -> None:
    resp = client.post(URL, content=body, headers={"content-type": CONTENT_TYPE})
    assert resp.status_code == status
    assert _fault(resp.content) == (code, subcode)


def test_response_relates_to_request(client: TestClient) -> None:
    env = request_envelope(action=v.ACTION_STORED_QUERY, body=QUERY, to="http://x", message_id="urn:uuid:1234")
    resp = client.post(URL, content=env, headers={"content-type": CONTENT_TYPE})
    root = parse_xml(resp.content)
    assert root.findtext(f".//{qn(WSA, 'RelatesTo')}") == "urn:uuid:1234"
    assert root.findtext(f".//{qn(WSA, 'Action')}") == v.ACTION_STORED_QUERY_RESPONSE


def test_wrong_body_for_action_is_a_business_error(client: TestClient) -> None:
    env = request_envelope(action=v.ACTION_REGISTER, body=QUERY, to="http://x")
    resp = client.post(URL, content=env, headers={"content-type": CONTENT_TYPE})
    assert resp.status_code == 200
    assert b"XDSRegistryMetadataError" in resp.content


def test_request_size_limit(node: Node) -> None:
    node.settings = dataclasses.replace(node.settings, max_request_bytes=1000)
    with TestClient(create_app(node)) as small:
        env = request_envelope(action=v.ACTION_STORED_QUERY, body=QUERY, to="http://x")
        resp = small.post(URL, content=env + b" " * 2000, headers={"content-type": CONTENT_TYPE})
    assert resp.status_code == 413
    assert _fault(resp.content) == ("Sender", "TooLarge")


def test_unexpected_failure_is_a_receiver_fault_without_internals(
    client: TestClient, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(type(node.store), "stored_query", boom)
    env = request_envelope(
        action=v.ACTION_STORED_QUERY,
        body=(
            b'<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"'
            b' xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"><query:ResponseOption returnType="ObjectRef"/>'
            b'<rim:AdhocQuery id="urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4">'
            b'<rim:Slot name="$XDSDocumentEntryEntryUUID">'
            b"<rim:ValueList><rim:Value>('x')</rim:Value></rim:ValueList></rim:Slot></rim:AdhocQuery>"
            b"</query:AdhocQueryRequest>"
        ),
        to="http://x",
    )
    resp = client.post(URL, content=env, headers={"content-type": CONTENT_TYPE})
    assert resp.status_code == 500
    assert _fault(resp.content)[0] == "Receiver"
    assert b"secret" not in resp.content


def test_wsdl_and_health(client: TestClient) -> None:
    wsdl = client.get(URL + "?wsdl")
    assert wsdl.status_code == 200
    assert b"http://testserver/xds/registry" in wsdl.content
    assert v.ACTION_REGISTER.encode() in wsdl.content
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["schema_version"] == health["schema_head"]
    assert health["repository_unique_id"] == "1.3.6.1.4.1.21367.2017.2.3.99"
