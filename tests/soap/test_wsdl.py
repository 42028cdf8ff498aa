"""Tests for xds.soap.wsdl: the Document Registry WSDL, read by an independent client (zeep), offline."""

from __future__ import annotations

import copy
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import zeep
import zeep.exceptions
from lxml import etree
from zeep.transports import Transport
from zeep.wsa import WsAddressingPlugin

from xds.ebrim.parser import parse_xml
from xds.namespaces import LCM, QUERY, RS, SOAP12, WSA, WSAW, WSDL, WSDL_SOAP12, qn
from xds.soap.envelope import parse_envelope, render_envelope, soap_content_type
from xds.soap.faults import ACTION_NOT_SUPPORTED, INVALID_ADDRESSING_HEADER, SoapFault, render_fault
from xds.soap.wsdl import registry_wsdl
from xds.vocabulary import (
    ACTION_REGISTER,
    ACTION_REGISTER_RESPONSE,
    ACTION_STORED_QUERY,
    ACTION_STORED_QUERY_RESPONSE,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "soap"
ADDRESS = "http://registry.example:8080/xds/registry"
NS = {"wsdl": WSDL, "soap12": WSDL_SOAP12, "wsaw": WSAW, "env": SOAP12, "wsa": WSA, "query": QUERY}
STORED_QUERY = "DocumentRegistry_RegistryStoredQuery"
REGISTER = "DocumentRegistry_RegisterDocumentSet-b"
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"

# (operation, input wsaw:Action, output wsaw:Action, input element, output element); ITI TF-2 §3.18.5, §3.42.5
OPERATIONS = [
    pytest.param(
        REGISTER,
        ACTION_REGISTER,
        ACTION_REGISTER_RESPONSE,
        qn(LCM, "SubmitObjectsRequest"),
        qn(RS, "RegistryResponse"),
        id="iti42",
    ),
    pytest.param(
        STORED_QUERY,
        ACTION_STORED_QUERY,
        ACTION_STORED_QUERY_RESPONSE,
        qn(QUERY, "AdhocQueryRequest"),
        qn(QUERY, "AdhocQueryResponse"),
        id="iti18",
    ),
]

Handler = Callable[[bytes, dict[str, str]], tuple[int, str, bytes]]


class LoopbackTransport(Transport):
    """A zeep transport that reaches no network: WSDL imports fail, POSTs go to an in-process handler."""

    def __init__(self, handler: Handler | None = None) -> None:
        super().__init__()
        self.handler = handler

    def _load_remote_data(self, url: str) -> bytes:
        raise AssertionError(f"zeep tried to fetch {url}: the WSDL must be self-contained")

    def post(self, address: str, message: bytes, headers: dict[str, str]) -> requests.Response:
        assert self.handler is not None, f"unexpected POST to {address}"
        status, content_type, content = self.handler(message, headers)
        response = requests.Response()
        response.status_code = status
        response.headers["Content-Type"] = content_type
        response._content = content
        return response


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def wsdl_file(tmp_path: Path) -> Path:
    path = tmp_path / "DocumentRegistry.wsdl"
    path.write_bytes(registry_wsdl(ADDRESS))
    return path


def client(wsdl_file: Path, handler: Handler | None = None, **kwargs: Any) -> zeep.Client:
    return zeep.Client(str(wsdl_file), transport=LoopbackTransport(handler), **kwargs)


def stored_query_request() -> etree._Element:
    element = parse_xml((DATA / "stored_query.xml").read_bytes()).find("env:Body/query:AdhocQueryRequest", NS)
    assert element is not None
    return element


def register_request() -> etree._Element:
    element = parse_xml((DATA / "register.xml").read_bytes()).find(f"env:Body/{{{LCM}}}SubmitObjectsRequest", NS)
    assert element is not None
    return element


def as_zeep_args(element: etree._Element) -> dict[str, Any]:
    """zeep arguments for a loose (xsd:any) element: copies of its children and its attributes."""
    return {"_value_1": list(copy.deepcopy(element)), "_attr_1": dict(element.attrib)}


def canonical(element: etree._Element) -> str:
    """C14N 2.0, prefixes rewritten, whitespace stripped: equal for one infoset (zeep renames prefixes)."""
    return str(etree.canonicalize(etree.tostring(element).decode(), rewrite_prefixes=True, strip_text=True))


def test_wsdl_is_wellformed_wsdl11_with_the_address(wsdl_file: Path) -> None:
    root = parse_xml(wsdl_file.read_bytes())
    assert root.tag == qn(WSDL, "definitions")
    locations = [e.get("location") for e in root.iterfind("wsdl:service/wsdl:port/soap12:address", NS)]
    assert locations == [ADDRESS]


def test_address_is_attribute_escaped() -> None:
    address = 'http://h/x?a=1&b="2"<'
    root = parse_xml(registry_wsdl(address))
    assert root.find("wsdl:service/wsdl:port/soap12:address", NS).get("location") == address  # type: ignore[union-attr]


def test_empty_address_is_refused() -> None:
    with pytest.raises(ValueError):
        registry_wsdl("")


@pytest.mark.parametrize(("operation", "action_in", "action_out", "element_in", "element_out"), OPERATIONS)
def test_wsdl_declares_operation(
    wsdl_file: Path, operation: str, action_in: str, action_out: str, element_in: str, element_out: str
) -> None:
    root = parse_xml(wsdl_file.read_bytes())
    op = root.find(f"wsdl:portType/wsdl:operation[@name='{operation}']", NS)
    assert op is not None
    actions = [op.find(f"wsdl:{d}", NS).get(qn(WSAW, "Action")) for d in ("input", "output")]  # type: ignore[union-attr]
    assert actions == [action_in, action_out]
    soap_action = root.find(f"wsdl:binding/wsdl:operation[@name='{operation}']/soap12:operation", NS)
    assert soap_action is not None and soap_action.get("soapAction") == action_in


def test_zeep_loads_the_wsdl_offline_with_both_operations(wsdl_file: Path) -> None:
    zeep_client = client(wsdl_file)
    binding = zeep_client.service._binding
    assert set(binding._operations) == {REGISTER, STORED_QUERY}
    assert zeep_client.service._binding_options["address"] == ADDRESS
    assert type(binding).__name__ == "Soap12Binding"


@pytest.mark.parametrize(("operation", "action_in", "action_out", "element_in", "element_out"), OPERATIONS)
def test_zeep_sees_the_messages(
    wsdl_file: Path, operation: str, action_in: str, action_out: str, element_in: str, element_out: str
) -> None:
    op = client(wsdl_file).service._binding._operations[operation]
    assert op.abstract.wsa_action == action_in
    assert op.input.body.qname == element_in
    assert op.output.body.qname == element_out


@pytest.mark.parametrize(
    ("operation", "action", "request_element"),
    [
        pytest.param(STORED_QUERY, ACTION_STORED_QUERY, stored_query_request, id="iti18"),
        pytest.param(REGISTER, ACTION_REGISTER, register_request, id="iti42"),
    ],
)
def test_zeep_request_is_accepted_by_our_parser(
    wsdl_file: Path, operation: str, action: str, request_element: Callable[[], etree._Element]
) -> None:
    """zeep adds WS-Addressing by itself from wsaw:Action; our codec accepts what it sends."""
    original = request_element()
    zeep_client = client(wsdl_file)
    message = etree.tostring(zeep_client.create_message(zeep_client.service, operation, **as_zeep_args(original)))
    root = parse_xml(message)
    assert [e.text for e in root.iterfind("env:Header/wsa:Action", NS)] == [action]
    envelope = parse_envelope(message)
    assert (envelope.action, envelope.to) == (action, ADDRESS)
    assert canonical(envelope.body) == canonical(original)


def test_wsa_plugin_on_top_duplicates_the_headers(wsdl_file: Path) -> None:
    """zeep 4 applies WS-Addressing itself for wsaw:Action; WsAddressingPlugin adds a second set we refuse."""
    zeep_client = client(wsdl_file, plugins=[WsAddressingPlugin()])
    message = etree.tostring(
        zeep_client.create_message(zeep_client.service, STORED_QUERY, **as_zeep_args(stored_query_request()))
    )
    actions = [e.text for e in parse_xml(message).iterfind("env:Header/wsa:Action", NS)]
    assert actions == [ACTION_STORED_QUERY, ACTION_STORED_QUERY]
    with pytest.raises(SoapFault) as caught:
        parse_envelope(message)
    assert caught.value.subcode == INVALID_ADDRESSING_HEADER


def test_zeep_roundtrip_through_our_codec(wsdl_file: Path) -> None:
    seen: list[dict[str, str]] = []

    def registry(message: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        seen.append(headers)
        request = parse_envelope(message)
        body = f'<query:AdhocQueryResponse xmlns:query="{QUERY}" status="{SUCCESS}"/>'.encode()
        answer = render_envelope(action=ACTION_STORED_QUERY_RESPONSE, body=body, relates_to=request.message_id)
        return 200, soap_content_type(ACTION_STORED_QUERY_RESPONSE), answer

    result = client(wsdl_file, registry).service[STORED_QUERY](**as_zeep_args(stored_query_request()))
    assert result["_attr_1"] == {"status": SUCCESS}
    [headers] = seen
    assert headers["Content-Type"] == soap_content_type(ACTION_STORED_QUERY)


def test_zeep_reads_our_fault_and_its_subcode(wsdl_file: Path) -> None:
    def registry(message: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        fault = SoapFault("no such action here", subcode=ACTION_NOT_SUPPORTED, detail="urn:x")
        return fault.http_status, soap_content_type("urn:x"), render_fault(fault)

    with pytest.raises(zeep.exceptions.Fault) as caught:
        client(wsdl_file, registry).service[STORED_QUERY](**as_zeep_args(stored_query_request()))
    assert caught.value.message == "no such action here"
    assert caught.value.code == "env:Sender"
    assert caught.value.subcodes == [etree.QName(ACTION_NOT_SUPPORTED)]
