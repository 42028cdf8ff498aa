"""XUA assertion verification (xds/security/xua.py) and signing (xds/security/saml.py).

Keys and certificates are made at test time with trustme (RSA): a trusted signer, whose certificate is the
trust store, and an untrusted one from another CA. Each test builds a SOAP 1.2 header with a
``wsse:Security`` block, signs an assertion, perhaps tampers with it, and checks the verifier's answer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
import xmlsec
from lxml import etree

from xds.consent.model import SOURCE_XUA, Requester
from xds.namespaces import SOAP12, qn
from xds.security import saml
from xds.security.saml import DS, HL7, SAML2, build_assertion, sign_assertion
from xds.security.xua import (
    FAILED_AUTHENTICATION,
    INVALID_SECURITY_TOKEN,
    VerifiedAssertion,
    XuaError,
    XuaSettings,
    XuaVerifier,
    xua_fault,
)
from xds.soap.envelope import WSSE
from xds.soap.faults import render_fault

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
AUDIENCE = "https://xds.example.nl/services"
PATIENT = "999911120^^^&2.16.840.1.113883.2.4.6.3&ISO"
ATTRIBUTES = {
    saml.SUBJECT_ID: ["Dr. A. Jansen"],
    saml.ORGANIZATION: ["Ziekenhuis Oost"],
    saml.ORGANIZATION_ID: ["urn:oid:2.16.528.1.1007.3.3.12345678"],
    saml.SUBJECT_ROLE: ["01.015^^2.16.840.1.113883.2.4.15.111"],
    saml.PURPOSE_OF_USE: ["TREATMENT^^2.16.840.1.113883.3.18.7.1"],
    saml.RESOURCE_ID: [PATIENT],
    saml.HOME_COMMUNITY_ID: ["urn:oid:1.2.3.4"],
}


@dataclass(frozen=True)
class Signer:
    key: bytes
    cert: bytes


def _signer(ca: trustme.CA) -> Signer:
    leaf = ca.issue_cert("idp.example.nl", key_type=trustme.KeyType.RSA)
    return Signer(leaf.private_key_pem.bytes(), leaf.cert_chain_pems[0].bytes())


@pytest.fixture(scope="module")
def trusted() -> Signer:
    return _signer(trustme.CA(key_type=trustme.KeyType.RSA))


@pytest.fixture(scope="module")
def untrusted() -> Signer:
    return _signer(trustme.CA(key_type=trustme.KeyType.RSA))


@pytest.fixture(scope="module")
def trust_store(trusted: Signer, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("xua") / "trusted.pem"
    path.write_bytes(trusted.cert)
    return str(path)


@pytest.fixture(scope="module")
def verifier(trust_store: str) -> XuaVerifier:
    return XuaVerifier(XuaSettings((trust_store,), (AUDIENCE,)))


def assertion(
    *, audience: str = AUDIENCE, valid: timedelta = timedelta(minutes=5), attributes: dict[str, list[str]] = ATTRIBUTES
) -> etree._Element:
    return build_assertion(
        issuer="https://idp.example.nl",
        subject="UZI-123456789",
        audience=audience,
        not_before=NOW - timedelta(minutes=1),
        not_on_or_after=NOW + valid,
        attributes=attributes,
        issue_instant=NOW - timedelta(minutes=1),
    )


def signed(
    signer: Signer,
    algorithm: str = "rsa-sha256",
    *,
    audience: str = AUDIENCE,
    attributes: dict[str, list[str]] = ATTRIBUTES,
) -> etree._Element:
    element = assertion(audience=audience, attributes=attributes)
    return sign_assertion(element, signer.key, signer.cert, algorithm=algorithm)


def header_with(*elements: etree._Element) -> etree._Element:
    """A parsed SOAP 1.2 envelope's ``env:Header`` with ``elements`` inside one ``wsse:Security``."""
    envelope = etree.Element(qn(SOAP12, "Envelope"), nsmap={"env": SOAP12, "wsse": WSSE})
    header = etree.SubElement(envelope, qn(SOAP12, "Header"))
    security = etree.SubElement(header, qn(WSSE, "Security"))
    security.extend(elements)
    etree.SubElement(etree.SubElement(envelope, qn(SOAP12, "Body")), "payload")
    # Round-trip through bytes, as a real request would arrive.
    reparsed = etree.fromstring(etree.tostring(envelope))
    found = reparsed.find(qn(SOAP12, "Header"))
    assert found is not None
    return found


def _child(parent: etree._Element, tag: str) -> etree._Element:
    found = parent.find(tag)
    assert found is not None
    return found


def _signature(element: etree._Element) -> etree._Element:
    return _child(element, qn(DS, "Signature"))


def _security(header: etree._Element) -> etree._Element:
    found = header.find(qn(WSSE, "Security"))
    assert found is not None
    return found


def _assertion(header: etree._Element) -> etree._Element:
    found = _security(header).find(qn(SAML2, "Assertion"))
    assert found is not None
    return found


def expect(subcode: str, verify: Callable[[], object]) -> XuaError:
    with pytest.raises(XuaError) as info:
        verify()
    assert info.value.fault_subcode == subcode
    return info.value


# -- the good case ------------------------------------------------------------------------------------


def test_valid_assertion_yields_every_attribute(verifier: XuaVerifier, trusted: Signer) -> None:
    result = verifier.verify(header_with(signed(trusted)), now=NOW)
    assert isinstance(result, VerifiedAssertion)
    assert result.issuer == "https://idp.example.nl"
    assert result.subject == "UZI-123456789"
    assert result.audiences == (AUDIENCE,)
    assert result.not_on_or_after == NOW + timedelta(minutes=5)
    assert result.assertion_id.startswith("_")
    assert result.user_name == "Dr. A. Jansen"
    assert result.organisation == "Ziekenhuis Oost"
    assert result.organisation_id == "urn:oid:2.16.528.1.1007.3.3.12345678"
    assert result.role == "01.015^^2.16.840.1.113883.2.4.15.111"
    assert result.purpose_of_use == "TREATMENT^^2.16.840.1.113883.3.18.7.1"
    assert result.patient_id == PATIENT
    assert result.home_community_id == "urn:oid:1.2.3.4"
    assert result.requester("192.0.2.7") == Requester(
        user_id="UZI-123456789",
        user_name="Dr. A. Jansen",
        role="01.015^^2.16.840.1.113883.2.4.15.111",
        organisation_id="urn:oid:2.16.528.1.1007.3.3.12345678",
        organisation_name="Ziekenhuis Oost",
        community_id="urn:oid:1.2.3.4",
        purpose_of_use="TREATMENT",
        source=SOURCE_XUA,
        address="192.0.2.7",
    )


def test_signed_assertion_shape(trusted: Signer) -> None:
    """ds:Signature right after Issuer; coded role as an HL7 CE ``Role``; one Reference to #ID."""
    element = signed(trusted)
    children = [etree.QName(c).localname for c in element]
    assert children[:3] == ["Issuer", "Signature", "Subject"]
    role = element.find(f".//{{{HL7}}}Role")
    assert role is not None and role.get("code") == "01.015"
    reference = element.find(f"{{{DS}}}Signature/{{{DS}}}SignedInfo/{{{DS}}}Reference")
    assert reference is not None and reference.get("URI") == "#" + element.get("ID", "")


def test_plain_string_role_and_purpose(verifier: XuaVerifier, trusted: Signer) -> None:
    attributes = {saml.SUBJECT_ROLE: ["arts"], saml.PURPOSE_OF_USE: ["EMERGENCY"]}
    result = verifier.verify(header_with(signed(trusted, attributes=attributes)), now=NOW)
    assert result is not None
    assert (result.role, result.purpose_of_use, result.requester().purpose_of_use) == ("arts", "EMERGENCY", "EMERGENCY")
    assert result.user_name == "" and result.patient_id == ""


def test_instance_identifier_patient_id(verifier: XuaVerifier, trusted: Signer) -> None:
    """A resource-id given as an HL7 v3 II element reads as a CX."""
    element = assertion(attributes={saml.RESOURCE_ID: ["placeholder"]})
    value = element.find(f".//{{{SAML2}}}AttributeValue")
    assert value is not None
    value.text = None
    etree.SubElement(value, qn(HL7, "InstanceIdentifier"), root="2.16.840.1.113883.2.4.6.3", extension="999911120")
    result = verifier.verify(header_with(sign_assertion(element, trusted.key, trusted.cert)), now=NOW)
    assert result is not None and result.patient_id == PATIENT


def test_two_patient_ids_are_refused(verifier: XuaVerifier, trusted: Signer) -> None:
    header = header_with(signed(trusted, attributes={saml.RESOURCE_ID: [PATIENT, "1^^^&9.9&ISO"]}))
    expect(INVALID_SECURITY_TOKEN, lambda: verifier.verify(header, now=NOW))


# -- token problems: InvalidSecurityToken -------------------------------------------------------------


def test_unsigned_assertion_is_refused(verifier: XuaVerifier) -> None:
    expect(INVALID_SECURITY_TOKEN, lambda: verifier.verify(header_with(assertion()), now=NOW))


def test_tampered_attribute_is_refused(verifier: XuaVerifier, trusted: Signer) -> None:
    header = header_with(signed(trusted))
    value = _assertion(header).find(f".//{{{SAML2}}}Attribute[@Name='{saml.RESOURCE_ID}']/{{{SAML2}}}AttributeValue")
    assert value is not None
    value.text = "000000000^^^&2.16.840.1.113883.2.4.6.3&ISO"
    expect(INVALID_SECURITY_TOKEN, lambda: verifier.verify(header, now=NOW))


def test_comment_splitting_a_value_is_refused(verifier: XuaVerifier, trusted: Signer) -> None:
    """Exclusive C14N ignores comments, so the signature still holds; the reader must not."""
    header = header_with(signed(trusted))
    name_id = _assertion(header).find(f"{{{SAML2}}}Subject/{{{SAML2}}}NameID")
    assert name_id is not None
    name_id.text = "UZI-1"
    name_id.append(etree.Comment("x"))
    name_id[0].tail = "23456789"
    expect(INVALID_SECURITY_TOKEN, lambda: verifier.verify(header, now=NOW))


def test_untrusted_signer_with_cert_in_keyinfo_is_refused(verifier: XuaVerifier, untrusted: Signer) -> None:
    error = expect(INVALID_SECURITY_TOKEN, lambda: verifier.verify(header_with(signed(untrusted)), now=NOW))
    assert "untrusted" in str(error)


def test_untrusted_signer_without_keyinfo_is_refused(verifier: XuaVerifier, untrusted: Signer) -> None:
    element = signed(untrusted)
    _signature(element).remove(_child(_signature(element), qn(DS, "KeyInfo")))
    expect(INVALID_SECURITY_TOKEN, lambda: verifier.verify(header_with(element), now=NOW))


def test_trusted_signer_without_keyinfo_is_accepted(verifier: XuaVerifier, trusted: Signer) -> None:
    element = signed(trusted)
    _signature(element).remove(_child(_signature(element), qn(DS, "KeyInfo")))
    assert verifier.verify(header_with(element), now=NOW) is not None


def test_sha1_refused_by_default_and_accepted_when_allowed(trust_store: str, trusted: Signer) -> None:
    strict = XuaVerifier(XuaSettings((trust_store,), (AUDIENCE,)))
    lenient = XuaVerifier(XuaSettings((trust_store,), (AUDIENCE,), allow_sha1=True))
    expect(INVALID_SECURITY_TOKEN, lambda: strict.verify(header_with(signed(trusted, "rsa-sha1")), now=NOW))
    assert lenient.verify(header_with(signed(trusted, "rsa-sha1")), now=NOW) is not None


# -- signature wrapping -------------------------------------------------------------------------------


def test_wrapping_second_unsigned_assertion_beside_signed_one(verifier: XuaVerifier, trusted: Signer) -> None:
    expect(INVALID_SECURITY_TOKEN, lambda: verifier.verify(header_with(signed(trusted), assertion()), now=NOW))


def test_wrapping_evil_assertion_first(verifier: XuaVerifier, trusted: Signer) -> None:
    expect(INVALID_SECURITY_TOKEN, lambda: verifier.verify(header_with(assertion(), signed(trusted)), now=NOW))


@pytest.mark.parametrize("copy_signature", [False, True])
def test_wrapping_signed_assertion_moved_to_other_header(
    verifier: XuaVerifier, trusted: Signer, copy_signature: bool
) -> None:
    """The signed assertion hides in another header block; an evil one (unsigned, or with the good
    signature and ID copied onto it) takes its place in wsse:Security."""
    good = signed(trusted)
    evil = assertion(attributes={saml.RESOURCE_ID: ["1^^^&9.9&ISO"]})
    if copy_signature:
        evil.set("ID", good.get("ID", ""))
        evil.insert(1, copy.deepcopy(_signature(good)))
    header = header_with(evil)
    wrapper = etree.SubElement(header, "{urn:evil}Wrapper")
    wrapper.append(good)
    expect(INVALID_SECURITY_TOKEN, lambda: verifier.verify(header, now=NOW))


def test_wrapping_signed_assertion_moved_to_body(verifier: XuaVerifier, trusted: Signer) -> None:
    """Only the evil copy is in the header; it shares the ID and signature of the signed one in the body."""
    good = signed(trusted)
    evil = assertion(attributes={saml.RESOURCE_ID: ["1^^^&9.9&ISO"]})
    evil.set("ID", good.get("ID", ""))
    evil.insert(1, copy.deepcopy(_signature(good)))
    header = header_with(evil)
    body = header.getnext()
    assert body is not None
    body.append(good)
    error = expect(INVALID_SECURITY_TOKEN, lambda: verifier.verify(header, now=NOW))
    assert "not unique" in str(error)


def test_wrapping_copied_signature_on_evil_assertion(verifier: XuaVerifier, trusted: Signer) -> None:
    """A different-ID evil assertion carrying the good signature: the Reference does not point at it."""
    good = signed(trusted)
    evil = assertion()
    evil.insert(1, copy.deepcopy(_signature(good)))
    error = expect(INVALID_SECURITY_TOKEN, lambda: verifier.verify(header_with(evil), now=NOW))
    assert "Reference" in str(error)


def test_reference_to_other_element_is_refused(verifier: XuaVerifier, trusted: Signer) -> None:
    element = signed(trusted)
    reference = element.find(f"{{{DS}}}Signature/{{{DS}}}SignedInfo/{{{DS}}}Reference")
    assert reference is not None
    reference.set("URI", "#other")
    expect(INVALID_SECURITY_TOKEN, lambda: verifier.verify(header_with(element), now=NOW))


def test_duplicate_id_elsewhere_is_refused(verifier: XuaVerifier, trusted: Signer) -> None:
    element = signed(trusted)
    header = header_with(element)
    etree.SubElement(header, "{urn:other}Block", Id=element.get("ID", ""))
    expect(INVALID_SECURITY_TOKEN, lambda: verifier.verify(header, now=NOW))


def _signed_header(signer: Signer, c14n: Any, transforms: tuple[Any, ...]) -> etree._Element:
    """Sign like :func:`sign_assertion`, with a chosen canonicalization and Reference transforms, in place
    inside the header (so that even inclusive C14N verifies and only the verifier's policy can refuse)."""
    header = header_with(assertion())
    element = _assertion(header)
    signature = xmlsec.template.create(element, c14n, xmlsec.constants.TransformRsaSha256, ns="ds")
    element[0].addnext(signature)
    reference = xmlsec.template.add_reference(signature, xmlsec.constants.TransformSha256, uri=f"#{element.get('ID')}")
    for transform in transforms:
        xmlsec.template.add_transform(reference, transform)
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(signer.key, xmlsec.constants.KeyDataFormatPem)
    context.register_id(element, "ID")
    context.sign(signature)
    found = etree.fromstring(etree.tostring(header.getroottree())).find(qn(SOAP12, "Header"))
    assert found is not None
    return found


ENVELOPED, EXC, INC = (
    xmlsec.constants.TransformEnveloped,
    xmlsec.constants.TransformExclC14N,
    xmlsec.constants.TransformInclC14N,
)


@pytest.mark.parametrize(
    ("c14n", "transforms", "accepted"),
    [
        pytest.param(EXC, (ENVELOPED, EXC), True, id="exc-c14n"),
        pytest.param(EXC, (ENVELOPED,), False, id="enveloped-only-inclusive-default"),
        pytest.param(EXC, (ENVELOPED, INC), False, id="inclusive-transform"),
        pytest.param(INC, (ENVELOPED, EXC), False, id="inclusive-c14n-method"),
        pytest.param(EXC, (EXC,), False, id="not-enveloped"),
    ],
)
def test_signature_transforms(
    verifier: XuaVerifier, trusted: Signer, c14n: Any, transforms: tuple[Any, ...], accepted: bool
) -> None:
    header = _signed_header(trusted, c14n, transforms)
    if accepted:
        assert verifier.verify(header, now=NOW) is not None
    else:
        expect(INVALID_SECURITY_TOKEN, lambda: verifier.verify(header, now=NOW))


def test_assertion_outside_security_is_refused(verifier: XuaVerifier, trusted: Signer) -> None:
    """The only assertion, validly signed, sits in another header block beside an empty wsse:Security."""
    header = header_with()
    etree.SubElement(header, "{urn:other}Block").append(signed(trusted))
    expect(INVALID_SECURITY_TOKEN, lambda: verifier.verify(header, now=NOW))


# -- conditions: FailedAuthentication -----------------------------------------------------------------

SKEW = timedelta(seconds=60)
VALIDITY = [
    pytest.param(NOW + timedelta(minutes=5) + SKEW - timedelta(seconds=1), None, id="expired-within-skew"),
    pytest.param(NOW + timedelta(minutes=5) + SKEW, FAILED_AUTHENTICATION, id="expired-beyond-skew"),
    pytest.param(NOW - timedelta(minutes=1) - SKEW, None, id="early-within-skew"),
    pytest.param(NOW - timedelta(minutes=1) - SKEW - timedelta(seconds=1), FAILED_AUTHENTICATION, id="not-yet-valid"),
]


@pytest.mark.parametrize(("at", "subcode"), VALIDITY)
def test_validity_window_with_skew(verifier: XuaVerifier, trusted: Signer, at: datetime, subcode: str | None) -> None:
    header = header_with(signed(trusted))
    if subcode is None:
        assert verifier.verify(header, now=at) is not None
    else:
        expect(subcode, lambda: verifier.verify(header, now=at))


def test_wrong_audience(verifier: XuaVerifier, trusted: Signer) -> None:
    header = header_with(signed(trusted, audience="https://other.example.nl"))
    expect(FAILED_AUTHENTICATION, lambda: verifier.verify(header, now=NOW))


# -- presence -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("empty_security", [False, True])
def test_missing_assertion(trust_store: str, empty_security: bool) -> None:
    header = header_with() if empty_security else None
    required = XuaVerifier(XuaSettings((trust_store,), (AUDIENCE,)))
    optional = XuaVerifier(XuaSettings((trust_store,), (AUDIENCE,), required=False))
    expect(INVALID_SECURITY_TOKEN, lambda: required.verify(header, now=NOW))
    assert optional.verify(header, now=NOW) is None


def test_optional_still_verifies_a_present_assertion(trust_store: str) -> None:
    optional = XuaVerifier(XuaSettings((trust_store,), (AUDIENCE,), required=False))
    expect(INVALID_SECURITY_TOKEN, lambda: optional.verify(header_with(assertion()), now=NOW))


def test_settings_need_trust_and_audience(trust_store: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        XuaSettings((), (AUDIENCE,))
    (tmp_path / "empty.pem").write_text("")
    with pytest.raises(ValueError):
        XuaVerifier(XuaSettings((str(tmp_path / "empty.pem"),), (AUDIENCE,)))


# -- fault ---------------------------------------------------------------------------------------------


def test_xua_error_knows_only_wss_subcodes() -> None:
    with pytest.raises(ValueError):
        XuaError("x", fault_subcode=qn(WSSE, "UnsupportedAlgorithm"))


@pytest.mark.parametrize("subcode", [INVALID_SECURITY_TOKEN, FAILED_AUTHENTICATION])
def test_xua_fault(subcode: str) -> None:
    fault = xua_fault(XuaError("signature digest mismatch on Reference #_abc", fault_subcode=subcode))
    assert (fault.code, fault.subcode, fault.http_status) == ("Sender", subcode, 400)
    rendered = etree.fromstring(render_fault(fault))
    value = rendered.find(f".//{{{SOAP12}}}Code/{{{SOAP12}}}Value")
    assert value is not None and value.text == "env:Sender"
    assert b"digest" not in render_fault(fault) and "_abc" not in fault.reason


# --- the cache of verified signatures ------------------------------------------------------------------------


def _counting(monkeypatch: pytest.MonkeyPatch, verifier: XuaVerifier) -> list[int]:
    calls: list[int] = []
    real = verifier._verify_crypto

    def counted(assertion: etree._Element, signature: etree._Element) -> None:
        calls.append(1)
        real(assertion, signature)

    monkeypatch.setattr(verifier, "_verify_crypto", counted)
    return calls


def test_the_same_assertion_again_skips_only_the_signature_check(
    trust_store: str, trusted: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = XuaVerifier(XuaSettings((trust_store,), (AUDIENCE,)))
    calls = _counting(monkeypatch, verifier)
    token = signed(trusted)
    first = verifier.verify(header_with(token), now=NOW)
    again = verifier.verify(header_with(token), now=NOW)
    assert first is not None and again is not None and first.subject == again.subject
    assert len(calls) == 1
    with pytest.raises(XuaError, match="expired"):  # conditions are checked on every request
        verifier.verify(header_with(token), now=NOW + timedelta(hours=1))
    with pytest.raises(XuaError):  # and so is the header's shape (a second assertion beside it)
        verifier.verify(header_with(token, assertion()), now=NOW)
    tampered = etree.fromstring(etree.tostring(token).replace(b"UZI-123456789", b"UZI-999999999"))
    with pytest.raises(XuaError):  # other bytes: not the cached signature
        verifier.verify(header_with(tampered), now=NOW)
    assert len(calls) == 2


def test_the_cache_is_bounded(trust_store: str, trusted: Signer, monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = XuaVerifier(XuaSettings((trust_store,), (AUDIENCE,)), cache_size=2)
    calls = _counting(monkeypatch, verifier)
    tokens = [signed(trusted) for _ in range(3)]
    for token in tokens:
        verifier.verify(header_with(token), now=NOW)
    verifier.verify(header_with(tokens[0]), now=NOW)  # evicted by the third: checked again
    verifier.verify(header_with(tokens[2]), now=NOW)  # still remembered
    assert len(calls) == 4


# -- the AuthnStatement and the access policy (ITI TF-2 §3.40.4.1.2, §3.40.4.2) --------------------------


def _with_authn(signer: Signer, change: Callable[[etree._Element], None]) -> etree._Element:
    """A signed assertion whose AuthnStatement ``change`` edited before signing."""
    element = assertion()
    statement = element.find(qn(SAML2, "AuthnStatement"))
    assert statement is not None
    change(statement)
    return header_with(sign_assertion(element, signer.key, signer.cert))


def _class_ref(statement: etree._Element) -> etree._Element:
    found = statement.find(f"{qn(SAML2, 'AuthnContext')}/{qn(SAML2, 'AuthnContextClassRef')}")
    assert found is not None
    return found


def _set_class(uri: str) -> Callable[[etree._Element], None]:
    def change(statement: etree._Element) -> None:
        _class_ref(statement).text = uri

    return change


def _drop_statement(statement: etree._Element) -> None:
    parent = statement.getparent()
    assert parent is not None
    parent.remove(statement)


def _drop_instant(statement: etree._Element) -> None:
    del statement.attrib["AuthnInstant"]


def _second_class_ref(statement: etree._Element) -> None:
    ref = _class_ref(statement)
    ref.addnext(copy.deepcopy(ref))


def _second_statement(statement: etree._Element) -> None:
    statement.addnext(copy.deepcopy(statement))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_drop_statement, "exactly one AuthnStatement"),
        (_second_statement, "exactly one AuthnStatement"),
        (_drop_instant, "no AuthnInstant"),
        (_second_class_ref, "exactly one AuthnContextClassRef"),
        (_set_class("urn:oasis:names:tc:SAML:2.0:ac:classes:Invalid"), "not a SAML 2.0 authentication context"),
    ],
    ids=["no-statement", "two-statements", "no-instant", "two-class-refs", "unknown-class"],
)
def test_malformed_authn_statement_is_refused(
    verifier: XuaVerifier, trusted: Signer, change: Callable[[etree._Element], None], reason: str
) -> None:
    err = expect(INVALID_SECURITY_TOKEN, lambda: verifier.verify(_with_authn(trusted, change), now=NOW))
    assert reason in str(err)


def test_internet_protocol_authentication_is_not_accepted_by_default(
    verifier: XuaVerifier, trust_store: str, trusted: Signer
) -> None:
    header = _with_authn(trusted, _set_class("urn:oasis:names:tc:SAML:2.0:ac:classes:InternetProtocol"))
    err = expect(FAILED_AUTHENTICATION, lambda: verifier.verify(header, now=NOW))
    assert "InternetProtocol is not accepted" in str(err)
    anything = XuaVerifier(XuaSettings((trust_store,), (AUDIENCE,), authn_contexts=()))
    assert anything.verify(header, now=NOW) is not None
    smartcard = _with_authn(trusted, _set_class("urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI"))
    assert verifier.verify(smartcard, now=NOW) is not None


def test_purpose_of_use_outside_the_policy_is_refused(verifier: XuaVerifier, trust_store: str, trusted: Signer) -> None:
    public_health = {**ATTRIBUTES, saml.PURPOSE_OF_USE: ["PUBLICHEALTH^^2.16.840.1.113883.3.18.7.1"]}
    header = header_with(signed(trusted, attributes=public_health))
    err = expect(FAILED_AUTHENTICATION, lambda: verifier.verify(header, now=NOW))
    assert "purpose of use PUBLICHEALTH is not accepted" in str(err)
    research = XuaVerifier(XuaSettings((trust_store,), (AUDIENCE,), purposes=("PUBLICHEALTH",)))
    assert research.verify(header, now=NOW) is not None
    no_purpose = {k: v for k, v in ATTRIBUTES.items() if k != saml.PURPOSE_OF_USE}
    assert verifier.verify(header_with(signed(trusted, attributes=no_purpose)), now=NOW) is not None  # treatment
    header = header_with(signed(trusted, attributes=no_purpose))
    err = expect(FAILED_AUTHENTICATION, lambda: research.verify(header, now=NOW))  # no bypass by leaving it out
    assert "purpose of use TREATMENT is not accepted" in str(err)


def test_roles_are_checked_only_when_the_policy_names_them(trust_store: str, trusted: Signer) -> None:
    doctors = XuaVerifier(XuaSettings((trust_store,), (AUDIENCE,), roles=("01.015",)))
    assert doctors.verify(header_with(signed(trusted)), now=NOW) is not None
    nurse = {**ATTRIBUTES, saml.SUBJECT_ROLE: ["30.000^^2.16.840.1.113883.2.4.15.111"]}
    err = expect(FAILED_AUTHENTICATION, lambda: doctors.verify(header_with(signed(trusted, attributes=nurse)), now=NOW))
    assert "role 30.000" in str(err)
    no_role = {k: v for k, v in ATTRIBUTES.items() if k != saml.SUBJECT_ROLE}
    expect(FAILED_AUTHENTICATION, lambda: doctors.verify(header_with(signed(trusted, attributes=no_role)), now=NOW))


def test_an_unknown_accepted_class_is_a_settings_error(trust_store: str) -> None:
    with pytest.raises(ValueError, match=r"not SAML 2\.0 authentication context classes"):
        XuaSettings((trust_store,), (AUDIENCE,), authn_contexts=("urn:example:strong",))
