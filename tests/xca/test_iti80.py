"""ITI-80 Cross-Gateway Document Provide at the Responding Gateway: deliveries, WSDL, refusals and audits."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from lxml import etree
from starlette.testclient import TestClient

from tests.support import Answer, post
from xds import samples
from xds import vocabulary as v
from xds.app import create_app
from xds.config import Settings
from xds.ebrim import messages, xdsb
from xds.model.metadata import DocumentEntry, Submission
from xds.namespaces import WSA, qn
from xds.node import Node
from xds.recipient.addressing import Mailbox
from xds.recipient.model import NEW, TRANSPORT_ITI80

RG = "/xca/responding"
PATIENT = samples.patient("iti80-1")
CARDIOLOGY = "Cardiologie^^^^^^^^^01234567|123456^Jansen^Piet"
WSDL = "{http://schemas.xmlsoap.org/wsdl/}"
SOAP12_WSDL = "{http://schemas.xmlsoap.org/wsdl/soap12/}"
WSAW = "{http://www.w3.org/2006/05/addressing/wsdl}"


@pytest.fixture
def gw_node(settings: Settings) -> Iterator[Node]:
    boxes = (
        Mailbox(name="cardiology", departments=("Cardiologie",), organisations=("01234567",)),
        Mailbox(name="general", default=True),
    )
    n = Node.open(dataclasses.replace(settings, mailboxes=boxes))
    n.store.add_patient(str(PATIENT))
    yield n
    n.close()


@pytest.fixture
def rg(gw_node: Node) -> Iterator[TestClient]:
    with TestClient(create_app(gw_node)) as c:
        yield c


def provide(
    *recipients: str, data: bytes = b"cross-community document\n", entry: DocumentEntry | None = None
) -> tuple[Submission, bytes]:
    de = entry or dataclasses.replace(samples.document_entry(PATIENT, content=data), repository_unique_id="")
    ss = dataclasses.replace(samples.submission_set(PATIENT), intended_recipients=recipients)
    return samples.submission(PATIENT, [de], ss=ss), data


def send(client: TestClient, sub: Submission, data: bytes) -> Answer:
    de = sub.document_entries[0]
    body = xdsb.render_provide_and_register_request(messages.render_submit_objects_request(sub), [(de.id, "doc1@x")])
    return post(client, v.ACTION_CROSS_GATEWAY_DOCUMENT_PROVIDE, body, RG, parts=[("doc1@x", "text/plain", data)])


def iti80_audits(node: Node) -> list[tuple[str, int]]:
    return [(r.event, r.outcome) for r in node.audit.listing() if r.event == "ITI-80"]


def test_provide_is_delivered_with_transport_iti80(rg: TestClient, gw_node: Node) -> None:
    sub, data = provide(CARDIOLOGY)
    answer = send(rg, sub, data)
    assert answer.http_status == 200 and answer.status == v.RESPONSE_SUCCESS, answer.error_codes
    assert answer.error_codes == []
    [d] = gw_node.inbox.listing()
    assert d.transport == TRANSPORT_ITI80 and d.mailbox == "cardiology" and d.status == NEW
    assert d.submission_set_uid == sub.submission_sets[0].unique_id
    assert d.recipients == (CARDIOLOGY,) and d.local_patient_id == str(PATIENT)
    assert d.sender  # the requester, whoever it was
    [doc] = d.documents
    assert doc.unique_id == sub.document_entries[0].unique_id
    assert gw_node.documents.path(doc.sha256).read_bytes() == data
    # a push is not a submission to our registry: nothing is registered until it is accepted
    assert gw_node.store.documents(gw_node.repository_unique_id, [doc.unique_id]) == {}


def test_response_action_is_the_iti80_response(rg: TestClient) -> None:
    sub, data = provide(CARDIOLOGY)
    answer = send(rg, sub, data)
    envelope = etree.fromstring(answer.raw)
    action = envelope.find(f".//{qn(WSA, 'Action')}")
    assert action is not None and action.text == v.ACTION_CROSS_GATEWAY_DOCUMENT_PROVIDE_RESPONSE
    assert etree.QName(answer.body).localname == "RegistryResponse"


def test_audit_record_of_iti80(rg: TestClient, gw_node: Node) -> None:
    sub, data = provide(CARDIOLOGY)
    assert send(rg, sub, data).ok
    [record] = [r for r in gw_node.audit.listing() if r.event == "ITI-80"]
    assert record.outcome == 0 and record.patient_id == str(PATIENT)
    assert sub.submission_sets[0].unique_id.encode() in record.xml
    assert b"ITI-80" in record.xml


def test_resend_is_one_delivery(rg: TestClient, gw_node: Node) -> None:
    sub, data = provide(CARDIOLOGY)
    assert send(rg, sub, data).ok
    assert send(rg, sub, data).ok
    [d] = gw_node.inbox.listing()
    full = gw_node.inbox.get(d.reference)
    assert full is not None and [e.status for e in full.history] == [NEW, "re-sent"]


@pytest.mark.parametrize(
    "recipient",
    [
        "Cardiologie|123456|x@example.org|extra",  # four parts: XON|XCN|XTN at most
        "||",  # nothing in any part
    ],
)
def test_malformed_intended_recipient_is_a_metadata_error(rg: TestClient, gw_node: Node, recipient: str) -> None:
    sub, data = provide(recipient)
    answer = send(rg, sub, data)
    assert answer.status == v.RESPONSE_FAILURE
    assert "XDSRegistryMetadataError" in answer.error_codes
    assert b"intendedRecipient" in answer.raw
    assert gw_node.inbox.listing(status=None) == []
    assert not gw_node.documents.exists(hashlib.sha256(data).hexdigest())  # a refused push keeps no bytes
    assert iti80_audits(gw_node) == [("ITI-80", 8)]


def test_document_that_does_not_match_its_hash_is_refused(rg: TestClient, gw_node: Node) -> None:
    sub, _ = provide(CARDIOLOGY, data=b"what the metadata describes")
    answer = send(rg, sub, b"something else entirely")
    assert answer.status == v.RESPONSE_FAILURE
    assert answer.error_codes and set(answer.error_codes) <= {
        "XDSRepositoryMetadataError",
        "XDSRegistryMetadataError",
    }
    assert gw_node.inbox.listing(status=None) == []


def test_no_mailbox_for_the_recipient_and_no_default(settings: Settings) -> None:
    boxes = (Mailbox(name="cardiology", departments=("Cardiologie",)),)
    node = Node.open(dataclasses.replace(settings, mailboxes=boxes))
    try:
        with TestClient(create_app(node)) as client:
            sub, data = provide("Radiologie")
            answer = send(client, sub, data)
        assert answer.status == v.RESPONSE_FAILURE and answer.error_codes == ["XDSRegistryMetadataError"]
        assert b"no mailbox matches" in answer.raw
        assert node.inbox.listing(status=None) == []
    finally:
        node.close()


def test_wsdl_lists_the_document_provide_operation(rg: TestClient) -> None:
    answer = rg.get(f"{RG}?wsdl")
    assert answer.status_code == 200
    root = etree.fromstring(answer.content)
    port_type = root.find(f"{WSDL}portType")
    assert port_type is not None
    [operation] = [o for o in port_type.iter(f"{WSDL}operation") if o.get("name", "").endswith("DocumentProvide")]
    assert operation.get("name") == "RespondingGateway_CrossGatewayDocumentProvide"
    request = operation.find(f"{WSDL}input")
    response = operation.find(f"{WSDL}output")
    assert request is not None and request.get(f"{WSAW}Action") == v.ACTION_CROSS_GATEWAY_DOCUMENT_PROVIDE
    assert response is not None and response.get(f"{WSAW}Action") == v.ACTION_CROSS_GATEWAY_DOCUMENT_PROVIDE_RESPONSE
    actions = {o.get("soapAction") for o in root.iter(f"{SOAP12_WSDL}operation")}
    assert v.ACTION_CROSS_GATEWAY_DOCUMENT_PROVIDE in actions
    assert v.ACTION_CROSS_GATEWAY_DOCUMENT_PROVIDE == "urn:ihe:iti:2015:CrossGatewayDocumentProvide"


def test_when_the_recipient_requires_xua_iti80_does_too(settings: Settings, tmp_path: Path) -> None:
    trust = tmp_path / "idp.pem"
    trustme.CA().issue_cert("idp.example.org").cert_chain_pems[0].write_to_path(str(trust))
    node = Node.open(
        dataclasses.replace(
            settings,
            xua_trusted_certs=(str(trust),),
            xua_audiences=("urn:xds-node:test",),
            xua_required=("recipient",),  # the responding gateway itself is open (queries of anonymous peers)
        )
    )
    try:
        with TestClient(create_app(node)) as client:
            sub, data = provide(CARDIOLOGY)
            answer = send(client, sub, data)
        assert answer.http_status == 400 and b"InvalidSecurityToken" in answer.raw
        assert node.inbox.listing(status="all") == []
        assert not [p for p in node.documents.staging_root.rglob("*.part")]
    finally:
        node.close()
