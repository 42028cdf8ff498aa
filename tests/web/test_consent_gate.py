"""The consent gate at the node's SOAP endpoints: ITI-18 and ITI-43 (registry, repository), ITI-38 and ITI-39
(responding gateway) and the initiating gateway, with XUA identities, emergency access and the audit trail.

Every test runs a real node (the ``settings`` fixture: SQLite, and PostgreSQL where configured) behind
Starlette's TestClient; XUA assertions are signed at test time with a trustme certificate.
"""

from __future__ import annotations

import base64
import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import trustme
from lxml import etree
from starlette.testclient import TestClient

from tests.repository.test_iti43 import ask
from tests.support import REGISTRY, REPOSITORY, Answer, post, q
from xds import samples
from xds import vocabulary as v
from xds.app import create_app
from xds.config import Settings
from xds.consent.local import COMMUNITY, DENY, EMERGENCY, GRANT, ORGANISATION, Directive
from xds.ebrim import messages, xdsb
from xds.model.messages import QueryParameter, StoredQueryRequest
from xds.model.metadata import Code as MetaCode
from xds.model.rim import text
from xds.namespaces import SOAP12, qn
from xds.node import Node
from xds.security import saml
from xds.security.xua import FAILED_AUTHENTICATION, INVALID_SECURITY_TOKEN
from xds.soap.envelope import WSSE, request_envelope, soap_content_type

PATIENT = samples.patient("consent-web")
OTHER = samples.patient("consent-other")
REPORT = MetaCode(code="REPORT", scheme="1.2.3.4.99", display_name=text("Report"))
GGZ = MetaCode(code="GGZ", scheme="1.2.3.4.99", display_name=text("Mental health"))
AUDIENCE = "urn:test:xds-node"
URA = "01234567"
RESPONDING = "/xca/responding"
INITIATING = "/xca/initiating"


# --- a node with documents of two categories --------------------------------------------------------------


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, str]:
    """An X-Assertion Provider: key, certificate, and the trust store file holding the certificate."""
    leaf = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert("idp.example.nl", key_type=trustme.KeyType.RSA)
    cert = leaf.cert_chain_pems[0].bytes()
    path = tmp_path_factory.mktemp("idp") / "trusted.pem"
    path.write_bytes(cert)
    return leaf.private_key_pem.bytes(), cert, str(path)


def _node(settings: Settings) -> Node:
    node = Node.open(settings)
    node.store.add_patient(str(PATIENT))
    node.store.add_patient(str(OTHER))
    return node


@pytest.fixture
def stocked(settings: Settings, idp: tuple[bytes, bytes, str]) -> Iterator[tuple[Node, TestClient, dict[str, str]]]:
    """A node (opt-out, XUA optional) with one REPORT and one GGZ document of PATIENT, by category."""
    settings = dataclasses.replace(settings, xua_trusted_certs=(idp[2],), xua_audiences=(AUDIENCE,))
    node = _node(settings)
    with TestClient(create_app(node)) as client:
        uids = {}
        for code in (REPORT, GGZ):
            de = samples.document_entry(PATIENT, content=code.code.encode(), class_code=code)
            de = dataclasses.replace(de, hash="", size=None, repository_unique_id="")
            sub = samples.submission(PATIENT, [de])
            body = xdsb.render_provide_and_register_inline(
                messages.render_submit_objects_request(sub), [(de.id, code.code.encode())]
            )
            assert post(client, v.ACTION_PROVIDE_AND_REGISTER, body, REPOSITORY).ok
            uids[code.code] = de.unique_id
        yield node, client, uids
    node.close()


def find(client: TestClient, path: str = REGISTRY, *, assertion: etree._Element | None = None) -> Answer:
    req = StoredQueryRequest(
        query_id=v.SQ_FIND_DOCUMENTS,
        return_type="LeafClass",
        parameters=(
            QueryParameter(name="$XDSDocumentEntryPatientId", values=(f"'{PATIENT}'",)),
            QueryParameter(name="$XDSDocumentEntryStatus", values=(q(v.APPROVED),)),
        ),
    )
    action = v.ACTION_CROSS_GATEWAY_QUERY if path == RESPONDING else v.ACTION_STORED_QUERY
    return _send(client, path, action, messages.render_adhoc_query_request(req), assertion)


def _send(client: TestClient, path: str, action: str, body: bytes, assertion: etree._Element | None) -> Answer:
    if assertion is None:
        return post(client, action, body, path)
    envelope = etree.fromstring(request_envelope(action=action, body=body, to=f"http://testserver{path}"))
    header = envelope.find(qn(SOAP12, "Header"))
    assert header is not None
    security = etree.SubElement(header, qn(WSSE, "Security"))
    security.append(assertion)
    resp = client.post(path, content=etree.tostring(envelope), headers={"content-type": soap_content_type(action)})
    root = etree.fromstring(resp.content)
    payload = root.find(qn(SOAP12, "Body"))[0]  # type: ignore[index]
    return Answer(resp.status_code, payload.get("status", ""), [], payload, resp.content, "", {})


def classes(answer: Answer) -> list[str]:
    """The classCode codes of the DocumentEntries in a LeafClass answer."""
    return sorted(
        c.get("nodeRepresentation", "")
        for c in answer.body.iter("{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}Classification")
        if c.get("classificationScheme") == v.DE_CLASS_CODE
    )


def signed(idp: tuple[bytes, bytes, str], **attributes: str) -> etree._Element:
    now = datetime.now(UTC)
    values = {
        saml.SUBJECT_ID: ["Dr. Test"],
        saml.ORGANIZATION: ["Test hospital"],
        saml.ORGANIZATION_ID: [URA],
        saml.SUBJECT_ROLE: ["01.015^^2.16.840.1.113883.2.4.15.111"],
        saml.PURPOSE_OF_USE: ["TREATMENT^^2.16.840.1.113883.3.18.7.1"],
        **{getattr(saml, k): [value] for k, value in attributes.items()},
    }
    assertion = saml.build_assertion(
        issuer="https://idp.example.nl",
        subject="UZI-123456789",
        audience=AUDIENCE,
        not_before=now - timedelta(minutes=1),
        not_on_or_after=now + timedelta(minutes=5),
        attributes=values,
        assertion_id=f"_{uuid.uuid4().hex}",
        issue_instant=now,
    )
    return saml.sign_assertion(assertion, idp[0], idp[1])


def detail(xml: bytes, kind: str) -> str:
    """A ParticipantObjectDetail value of an audit message (base64 in the message)."""
    found = etree.fromstring(xml).find(f".//ParticipantObjectDetail[@type='{kind}']")
    assert found is not None, kind
    return base64.b64decode(found.get("value", "")).decode()


def deny_patient(node: Node, category: str = "") -> None:
    node.consents.add(Directive(patient_id=str(PATIENT), decision=DENY, category=category))


# --- ITI-18 --------------------------------------------------------------------------------------------------


def test_opt_out_node_answers_until_the_patient_objects(stocked: tuple[Node, TestClient, dict[str, str]]) -> None:
    node, client, _ = stocked
    assert classes(find(client)) == ["GGZ", "REPORT"]
    deny_patient(node)
    denied = find(client)
    assert denied.ok and denied.error_codes == [] and classes(denied) == []  # Success, nothing leaked


def test_a_denied_category_is_left_out_and_the_rest_answered(
    stocked: tuple[Node, TestClient, dict[str, str]],
) -> None:
    node, client, _ = stocked
    deny_patient(node, category="GGZ")
    assert classes(find(client)) == ["REPORT"]


def test_an_organisation_grant_beats_a_deny_for_everyone(
    stocked: tuple[Node, TestClient, dict[str, str]], idp: tuple[bytes, bytes, str]
) -> None:
    node, client, _ = stocked
    deny_patient(node)
    node.consents.add(Directive(patient_id=str(PATIENT), decision=GRANT, who=ORGANISATION, who_id=URA))
    assert classes(find(client)) == []  # anonymous: no organisation
    assert classes(find(client, assertion=signed(idp))) == ["GGZ", "REPORT"]


def test_opt_in_node_answers_only_what_was_granted(settings: Settings) -> None:
    node = _node(dataclasses.replace(settings, consent_default="opt-in"))
    try:
        with TestClient(create_app(node)) as client:
            de = samples.document_entry(PATIENT, content=b"x", class_code=REPORT)
            assert post(
                client, v.ACTION_REGISTER, messages.render_submit_objects_request(samples.submission(PATIENT, [de]))
            ).ok
            assert classes(find(client)) == []
            node.consents.add(Directive(patient_id=str(PATIENT), decision=GRANT))
            assert classes(find(client)) == ["REPORT"]
    finally:
        node.close()


def test_every_decision_and_transaction_is_in_the_audit_trail(
    stocked: tuple[Node, TestClient, dict[str, str]],
) -> None:
    node, client, _ = stocked
    before = len(node.audit.listing(limit=1000))
    deny_patient(node, category="GGZ")
    find(client)
    new = node.audit.listing(limit=1000)[before:]
    events = sorted((r.event, r.outcome) for r in new)
    assert events == [("ITI-18", 0), ("consent", 0), ("consent", 4)]
    assert all(r.patient_id == str(PATIENT) for r in new)
    query_record = etree.fromstring(next(r.xml for r in new if r.event == "ITI-18"))
    assert query_record.find("EventIdentification/EventTypeCode").get("csd-code") == "ITI-18"  # type: ignore[union-attr]


def test_a_failing_remote_decision_point_denies(settings: Settings) -> None:
    closed = {"url": "https://127.0.0.1:9/mitz", "timeout": 0.5, "data_holder_ura": URA}
    node = _node(dataclasses.replace(settings, consent_policies=("local", "mitz"), consent_mitz=closed))
    try:
        with TestClient(create_app(node)) as client:
            de = samples.document_entry(PATIENT, content=b"x", class_code=REPORT)
            assert post(
                client, v.ACTION_REGISTER, messages.render_submit_objects_request(samples.submission(PATIENT, [de]))
            ).ok
            assert classes(find(client)) == []
            policies = [detail(r.xml, "policy") for r in node.audit.listing() if r.event == "consent"]
            assert policies and set(policies) == {"mitz"}
    finally:
        node.close()


# --- ITI-43 --------------------------------------------------------------------------------------------------


def test_a_denied_document_answers_exactly_like_an_unknown_one(
    stocked: tuple[Node, TestClient, dict[str, str]],
) -> None:
    node, client, uids = stocked
    deny_patient(node, category="GGZ")

    def retrieve(uid: str) -> Answer:
        return post(client, v.ACTION_RETRIEVE, xdsb.render_retrieve_request(ask(node, uid)), REPOSITORY)

    allowed, hidden, unknown = retrieve(uids["REPORT"]), retrieve(uids["GGZ"]), retrieve("1.2.3.404")
    assert allowed.ok and list(allowed.attachments.values()) == [b"REPORT"]
    assert hidden.status == unknown.status == v.RESPONSE_FAILURE
    assert hidden.error_codes == unknown.error_codes == ["XDSDocumentUniqueIdError"]
    assert (
        hidden.raw.replace(uids["GGZ"].encode(), b"X").split(b"<rs:RegistryErrorList")[1]
        == (unknown.raw.replace(b"1.2.3.404", b"X").split(b"<rs:RegistryErrorList")[1])
    )


# --- emergency access ----------------------------------------------------------------------------------------


def test_emergency_access_opens_a_denied_record_and_is_flagged(
    stocked: tuple[Node, TestClient, dict[str, str]], idp: tuple[bytes, bytes, str]
) -> None:
    node, client, _ = stocked
    deny_patient(node)
    emergency = signed(idp, PURPOSE_OF_USE="EMERGENCY^^2.16.840.1.113883.3.18.7.1")
    assert classes(find(client, assertion=emergency)) == ["GGZ", "REPORT"]
    accesses = node.consents.emergency_accesses(str(PATIENT))  # one per patient and request, not per category
    assert len(accesses) == 1
    assert all(a.organisation_id == URA and "UZI-123456789" in a.requester for a in accesses)
    flagged = [detail(r.xml, "emergency") for r in node.audit.listing() if r.event == "consent"]
    assert flagged and set(flagged) == {"true"}


def test_a_patient_who_refused_emergency_access_stays_closed(
    stocked: tuple[Node, TestClient, dict[str, str]], idp: tuple[bytes, bytes, str]
) -> None:
    node, client, _ = stocked
    deny_patient(node)
    node.consents.add(Directive(patient_id=str(PATIENT), decision=DENY, who=EMERGENCY))
    emergency = signed(idp, PURPOSE_OF_USE="EMERGENCY^^2.16.840.1.113883.3.18.7.1")
    assert classes(find(client, assertion=emergency)) == []
    assert node.consents.emergency_accesses() == []


# --- XUA at the endpoint -------------------------------------------------------------------------------------


def test_a_tampered_assertion_is_a_fault_and_audited(
    stocked: tuple[Node, TestClient, dict[str, str]], idp: tuple[bytes, bytes, str]
) -> None:
    node, client, _ = stocked
    assertion = signed(idp)
    for value in assertion.iter("{urn:oasis:names:tc:SAML:2.0:assertion}AttributeValue"):
        if value.text == URA:
            value.text = "99999999"
    answer = find(client, assertion=assertion)
    assert answer.http_status == 400
    subcode = answer.body.find(f"{{{SOAP12}}}Code/{{{SOAP12}}}Subcode/{{{SOAP12}}}Value")
    assert subcode is not None and subcode.text and subcode.text.endswith("InvalidSecurityToken")
    assert INVALID_SECURITY_TOKEN.endswith("InvalidSecurityToken")
    (refused,) = [r for r in node.audit.listing() if r.event == "ITI-40"]
    assert refused.outcome == 8


def test_xua_required_refuses_a_request_without_an_assertion(settings: Settings, idp: tuple[bytes, bytes, str]) -> None:
    required = dataclasses.replace(
        settings, xua_trusted_certs=(idp[2],), xua_audiences=(AUDIENCE,), xua_required=("registry",)
    )
    node = _node(required)
    try:
        with TestClient(create_app(node)) as client:
            answer = find(client, assertion=None)
            assert answer.http_status == 400 and b"Fault" in answer.raw
            assert find(client, assertion=signed(idp)).ok
            # the repository is not in `required`: it still answers without an assertion
            assert post(client, v.ACTION_RETRIEVE, xdsb.render_retrieve_request(ask(node, "1.2.3")), REPOSITORY)
    finally:
        node.close()
    assert FAILED_AUTHENTICATION.endswith("FailedAuthentication")


# --- cross-community -------------------------------------------------------------------------------------------


def test_a_community_directive_applies_to_requests_through_that_gateway(
    stocked: tuple[Node, TestClient, dict[str, str]], idp: tuple[bytes, bytes, str]
) -> None:
    node, client, _ = stocked
    them = "urn:oid:1.2.3.4.5.6.7"
    node.consents.add(Directive(patient_id=str(PATIENT), decision=DENY, who=COMMUNITY, who_id=them))
    via_them = signed(idp, HOME_COMMUNITY_ID=them)
    assert classes(find(client, RESPONDING, assertion=via_them)) == []
    assert classes(find(client, RESPONDING, assertion=signed(idp))) == ["GGZ", "REPORT"]
    assert classes(find(client)) == ["GGZ", "REPORT"]  # local consumers are our own community


def test_the_initiating_gateway_asks_no_community_for_a_denied_patient(
    stocked: tuple[Node, TestClient, dict[str, str]],
) -> None:
    node, client, _ = stocked
    assert classes(find(client, INITIATING)) == ["GGZ", "REPORT"]
    deny_patient(node)
    denied = find(client, INITIATING)
    assert denied.ok and classes(denied) == [] and denied.error_codes == []


def test_an_answer_whose_audit_cannot_be_kept_is_withheld(
    stocked: tuple[Node, TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    node, client, _ = stocked
    kept = len(node.audit.listing(limit=1000))

    def broken(records: object, **_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(node.audit, "append", broken)
    answer = find(client)
    assert answer.http_status == 500 and b"could not be audited" in answer.raw
    assert b"ExtrinsicObject" not in answer.raw
    monkeypatch.undo()
    assert len(node.audit.listing(limit=1000)) == kept  # nothing half written either
