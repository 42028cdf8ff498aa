"""The Document Recipient (XDR) and Imaging Document Source (RAD-69) WSDLs, loaded by an independent client
(zeep) offline: the operations, their wsaw:Actions and the SOAP 1.2 binding a third party needs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import zeep

from tests.soap.test_wsdl import NS, LoopbackTransport
from xds.ebrim.parser import parse_xml
from xds.namespaces import WSAW, qn
from xds.soap.wsdl import imaging_wsdl, recipient_wsdl
from xds.vocabulary import (
    ACTION_PROVIDE_AND_REGISTER,
    ACTION_PROVIDE_AND_REGISTER_RESPONSE,
    ACTION_RETRIEVE_IMAGING,
    ACTION_RETRIEVE_RESPONSE,
)

CASES = [
    pytest.param(
        recipient_wsdl,
        "http://node.example:8080/xdr/recipient",
        "DocumentRecipient_ProvideAndRegisterDocumentSet-b",
        ACTION_PROVIDE_AND_REGISTER,
        ACTION_PROVIDE_AND_REGISTER_RESPONSE,
        id="xdr",
    ),
    pytest.param(
        imaging_wsdl,
        "http://node.example:8080/xds/imaging",
        "ImagingDocumentSource_RetrieveImagingDocumentSet",
        ACTION_RETRIEVE_IMAGING,
        ACTION_RETRIEVE_RESPONSE,
        id="rad69",
    ),
]


@pytest.mark.parametrize(("render", "address", "operation", "action_in", "action_out"), CASES)
def test_zeep_loads_the_wsdl_with_its_one_operation(
    tmp_path: Path,
    render: Callable[[str], bytes],
    address: str,
    operation: str,
    action_in: str,
    action_out: str,
) -> None:
    path = tmp_path / "service.wsdl"
    path.write_bytes(render(address))
    root = parse_xml(path.read_bytes())
    op = root.find(f"wsdl:portType/wsdl:operation[@name='{operation}']", NS)
    assert op is not None
    actions = [op.find(f"wsdl:{d}", NS).get(qn(WSAW, "Action")) for d in ("input", "output")]  # type: ignore[union-attr]
    assert actions == [action_in, action_out]
    client = zeep.Client(str(path), transport=LoopbackTransport(None))
    binding = client.service._binding
    assert set(binding._operations) == {operation}
    assert type(binding).__name__ == "Soap12Binding"
    assert client.service._binding_options["address"] == address
