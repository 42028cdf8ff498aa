"""The Responding Gateway: ITI-38 from our registry with ``home`` on every object, ITI-39 with HomeCommunityId."""

from __future__ import annotations

import dataclasses

import pytest
from lxml import etree
from starlette.testclient import TestClient

from tests.support import REPOSITORY, Answer, post, q
from xca.iti38 import with_home
from xds import samples
from xds import vocabulary as v
from xds.app import create_app
from xds.ebrim import messages, xdsb
from xds.model.messages import DocumentRequest, QueryParameter, RetrieveRequest, StoredQueryRequest
from xds.model.metadata import DocumentEntry
from xds.namespaces import RIM, XDSB, qn
from xds.node import Node

RG = "/xca/responding"
PATIENT = samples.patient("xca-rg")


@pytest.fixture
def rg(node: Node) -> TestClient:
    node.store.add_patient(str(PATIENT))
    with TestClient(create_app(node)) as c:
        yield c  # type: ignore[misc]


@pytest.fixture
def documents(rg: TestClient) -> dict[str, tuple[DocumentEntry, bytes]]:
    """Two documents provided through the repository: uniqueId -> (entry, bytes)."""
    docs = [b"first document for another community", b"second"]
    entries = [
        dataclasses.replace(samples.document_entry(PATIENT, content=d), hash="", size=None, repository_unique_id="")
        for d in docs
    ]
    body = xdsb.render_provide_and_register_request(
        messages.render_submit_objects_request(samples.submission(PATIENT, entries)),
        [(de.id, f"d{n}@x") for n, de in enumerate(entries)],
    )
    parts = [(f"d{n}@x", "text/plain", d) for n, d in enumerate(docs)]
    assert post(rg, v.ACTION_PROVIDE_AND_REGISTER, body, REPOSITORY, parts=parts).ok
    return {de.unique_id: (de, d) for de, d in zip(entries, docs, strict=True)}


def xcq(
    client: TestClient, query_id: str, params: dict[str, str], *, home: str = "", rtype: str = "LeafClass"
) -> Answer:
    req = StoredQueryRequest(
        query_id=query_id,
        return_type=rtype,
        parameters=tuple(QueryParameter(name=k, values=(val,)) for k, val in params.items()),
        home=home,
    )
    return post(client, v.ACTION_CROSS_GATEWAY_QUERY, messages.render_adhoc_query_request(req), RG)


def xcr(client: TestClient, node: Node, *requests: tuple[str, str]) -> Answer:
    req = RetrieveRequest(
        documents=tuple(
            DocumentRequest(repository_unique_id=node.repository_unique_id, document_unique_id=u, home_community_id=h)
            for u, h in requests
        )
    )
    return post(client, v.ACTION_CROSS_GATEWAY_RETRIEVE, xdsb.render_retrieve_request(req), RG)


def homes(answer: Answer) -> list[str | None]:
    objects = answer.body.find(qn(RIM, "RegistryObjectList"))
    assert objects is not None
    return [o.get("home") for o in objects]


FIND = {"$XDSDocumentEntryPatientId": f"'{PATIENT}'", "$XDSDocumentEntryStatus": q(v.APPROVED)}


@pytest.mark.parametrize("rtype", ["LeafClass", "ObjectRef"])
def test_find_documents_objects_carry_home(
    rg: TestClient, node: Node, documents: dict[str, object], rtype: str
) -> None:
    answer = xcq(rg, v.SQ_FIND_DOCUMENTS, FIND, rtype=rtype)
    assert answer.ok
    assert homes(answer) == [node.home_community_id] * 2


def test_get_all_leaf_class_every_object_carries_home(rg: TestClient, node: Node, documents: dict[str, object]) -> None:
    params = {
        "$patientId": f"'{PATIENT}'",
        "$XDSDocumentEntryStatus": q(v.APPROVED),
        "$XDSSubmissionSetStatus": q(v.APPROVED),
        "$XDSFolderStatus": q(v.APPROVED),
    }
    answer = xcq(rg, v.SQ_GET_ALL, params, home=node.home_community_id)
    assert answer.ok
    found = homes(answer)
    assert len(found) == 5 and set(found) == {node.home_community_id}  # 2 entries, 1 set, 2 associations


def test_get_documents_needs_home(rg: TestClient, node: Node, documents: dict[str, object]) -> None:
    uid = next(iter(documents))
    params = {"$XDSDocumentEntryUniqueId": q(uid)}
    missing = xcq(rg, v.SQ_GET_DOCUMENTS, params)
    assert (missing.status, missing.error_codes) == (v.RESPONSE_FAILURE, ["XDSMissingHomeCommunityId"])
    foreign = xcq(rg, v.SQ_GET_DOCUMENTS, params, home="urn:oid:1.2.555.6.7.8")
    assert (foreign.status, foreign.error_codes) == (v.RESPONSE_FAILURE, ["XDSUnknownCommunity"])
    ours = xcq(rg, v.SQ_GET_DOCUMENTS, params, home=node.home_community_id)
    assert ours.ok and homes(ours) == [node.home_community_id]


def test_find_with_a_foreign_home_is_unknown_community(rg: TestClient, documents: dict[str, object]) -> None:
    answer = xcq(rg, v.SQ_FIND_DOCUMENTS, FIND, home="urn:oid:1.2.555.6.7.8")
    assert answer.error_codes == ["XDSUnknownCommunity"]


def test_retrieve_with_home(rg: TestClient, node: Node, documents: dict[str, tuple[DocumentEntry, bytes]]) -> None:
    a, b = documents
    answer = xcr(rg, node, (a, node.home_community_id), (b, node.home_community_id))
    assert answer.ok and answer.is_mtom
    responses = answer.body.findall(qn(XDSB, "DocumentResponse"))
    assert [r.findtext(qn(XDSB, "HomeCommunityId")) for r in responses] == [node.home_community_id] * 2
    _, _, docs = xdsb.retrieve_response(answer.body)
    got = {ids.document_unique_id: answer.attachments[part.cid or ""] for ids, _, part in docs}
    assert got == {uid: data for uid, (_, data) in documents.items()}


def test_retrieve_without_home_fails_without_documents(
    rg: TestClient, node: Node, documents: dict[str, object]
) -> None:
    uid = next(iter(documents))
    answer = xcr(rg, node, (uid, ""))
    assert (answer.status, answer.error_codes) == (v.RESPONSE_FAILURE, ["XDSMissingHomeCommunityId"])
    assert answer.body.findall(qn(XDSB, "DocumentResponse")) == []


def test_retrieve_mixed_homes_is_partial_success(rg: TestClient, node: Node, documents: dict[str, object]) -> None:
    a, b = documents
    answer = xcr(rg, node, (a, node.home_community_id), (b, "urn:oid:1.2.555.6.7.8"))
    assert answer.status == v.RESPONSE_PARTIAL_SUCCESS
    assert answer.error_codes == ["XDSUnknownCommunity"]
    assert len(answer.body.findall(qn(XDSB, "DocumentResponse"))) == 1


def test_wsdl(rg: TestClient) -> None:
    wsdl = rg.get(f"{RG}?wsdl")
    assert wsdl.status_code == 200
    root = etree.fromstring(wsdl.content)
    ops = {o.get("name") for o in root.iter("{http://schemas.xmlsoap.org/wsdl/}operation")}
    assert ops == {
        "RespondingGateway_CrossGatewayQuery",
        "RespondingGateway_CrossGatewayRetrieve",
        "RespondingGateway_CrossGatewayDocumentProvide",
        "RespondingGateway_CrossGatewayRetrieveImagingDocumentSet",
    }
    address = root.find(".//{http://schemas.xmlsoap.org/wsdl/soap12/}address")
    assert address is not None and address.get("location") == f"http://testserver{RG}"


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        (
            '<rim:ExtrinsicObject id="a"><x home="keep"/></rim:ExtrinsicObject>',
            '<rim:ExtrinsicObject home="urn:oid:9" id="a"><x home="keep"/></rim:ExtrinsicObject>',
        ),
        ('<rim:Association home="urn:oid:1" id="b"/>', '<rim:Association home="urn:oid:9" id="b"/>'),
        (
            "<RegistryPackage home='x' id=\"c\"></RegistryPackage>",
            '<RegistryPackage home="urn:oid:9" id="c"></RegistryPackage>',
        ),
    ],
)
def test_with_home_sets_the_attribute_of_the_start_tag_only(fragment: str, expected: str) -> None:
    assert with_home(fragment, "urn:oid:9") == expected
