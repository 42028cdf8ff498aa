"""ITI-40 Provide X-User Assertion (ITI TF-2 §3.40), X-Service Provider side: verify the XUA SAML assertion.

Theory of operation
-------------------
:meth:`XuaVerifier.verify` takes the request's ``env:Header`` and either returns a
:class:`VerifiedAssertion` or raises :class:`XuaError`. The checks run in this order, each one failing
closed:

1. **Locate.** One ``wsse:Security`` header block and, in the whole header, exactly one
   ``saml2:Assertion``, a direct child of that block (WS-Security SAML Token Profile 1.1 §3.4.2). A second
   assertion anywhere in the header, signed or not, is refused: that is the signature-wrapping defence
   (a signed assertion hidden elsewhere while an unsigned one sits where the reader looks).
2. **Shape of the signature.** Exactly one ``ds:Signature``, a direct child of the assertion (enveloped);
   exclusive C14N; one ``Reference`` whose URI is ``#`` + the assertion's own ``ID``, that ``ID`` unique in
   the whole document; exactly the enveloped-signature and exclusive C14N transforms (without the latter the
   default inclusive C14N would depend on the SOAP envelope around the assertion); signature and digest
   algorithms from an allow-list (SHA-1 only with ``allow_sha1``) (SAML 2.0 Core §5.4).
3. **Cryptography.** libxmlsec1 verifies the signature with a key taken from the trust store only. When
   ``KeyInfo`` carries an ``X509Certificate`` it must equal (DER, byte for byte) one of the trusted
   certificates, and the *trusted* copy's key is used; otherwise each trusted key is tried. A certificate
   or key value in ``KeyInfo`` is never used by itself.
4. **Conditions.** ``NotBefore`` / ``NotOnOrAfter`` (the latter required) with ``clock_skew`` either way
   (failure: ``FailedAuthentication``); every ``AudienceRestriction`` names one of the configured audiences
   (SAML 2.0 Core §2.5.1.4).
5. **Read.** Issuer, ``Subject/NameID`` (required) and the XSPA attributes are read from the *same element
   object* that was handed to xmlsec; nothing is looked up again from the document root. Text-valued fields
   holding comments or child elements are refused (the canonical form ignores comments, so
   ``admin<!---->.evil`` would otherwise read as ``admin``). Exactly one ``AuthnStatement`` with an
   ``AuthnInstant`` and one ``AuthnContextClassRef`` naming a SAML 2.0 authentication context class (ITI TF-2
   §3.40.4.1.2; SAML 2.0 Core §2.7.2; Authentication Context §3.4).
6. **Local policy** (ITI TF-2 §3.40.4.2 leaves the access decision to the X-Service Provider): the
   authentication context class, the purpose of use and the role must be among the accepted ones
   (:class:`XuaSettings`; by default every class but ``InternetProtocol``, which authenticates a network
   address and not a user; the treatment and emergency purposes; any role). A refusal here is
   ``FailedAuthentication``: the token is good but not acceptable.

The trust store holds the X-Assertion Provider's *signing certificates* (pinned), not CA certificates:
there is no chain building and no certificate validity check; rotate by adding the new certificate.

Fault mapping: malformed, unsigned, untrusted or badly signed tokens are
``wsse:InvalidSecurityToken``; a good token that is expired, not yet valid or for another audience is
``wsse:FailedAuthentication`` (WS-Security 1.0 §12, Table 4). :func:`xua_fault` turns either into a SOAP 1.2
``Sender`` fault with the fault string of that table only; the detailed reason stays in
:class:`XuaError` for the log and the audit record.

References
----------
ITI TF-2 §3.40 (Provide X-User Assertion), §3.40.4.1.2, §3.40.4.2 (X-Service Provider expected actions);
OASIS SAML 2.0 Core §2.3.3, §2.5.1, §5.4; OASIS WS-Security 1.1 SAML Token Profile §3.4, §3.5; OASIS
WS-Security 1.0 SOAP Message Security §12 (error handling); W3C XML-Signature Syntax and Processing (2nd
ed.); Somorovsky et al., "On Breaking SAML: Be Whoever You Want to Be" (USENIX Security 2012).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ssl
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import xmlsec
from lxml import etree

from xds.consent.model import PURPOSE_TREATMENT, SOURCE_XUA, Requester
from xds.namespaces import qn
from xds.security.saml import (
    DS,
    HOME_COMMUNITY_ID,
    ORGANIZATION,
    ORGANIZATION_ID,
    PURPOSE_OF_USE,
    RESOURCE_ID,
    SAML2,
    SUBJECT_ID,
    SUBJECT_ROLE,
)
from xds.soap.envelope import WSSE
from xds.soap.faults import SoapFault

INVALID_SECURITY_TOKEN: Final = qn(WSSE, "InvalidSecurityToken")
"""WS-Security 1.0 §12: "An invalid security token was provided"."""
FAILED_AUTHENTICATION: Final = qn(WSSE, "FailedAuthentication")
"""WS-Security 1.0 §12: "The security token could not be authenticated or authorized"."""

_FAULT_STRINGS: Final = {
    INVALID_SECURITY_TOKEN: "An invalid security token was provided",
    FAILED_AUTHENTICATION: "The security token could not be authenticated or authorized",
}
_EXC_C14N: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
_ENVELOPED: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_SIGNATURE_METHODS: Final = frozenset(
    {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    }
)
_DIGEST_METHODS: Final = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2001/04/xmldsig-more#sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    }
)
_SHA1_SIGNATURE: Final = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
_SHA1_DIGEST: Final = "http://www.w3.org/2000/09/xmldsig#sha1"
_ID_ATTRIBUTES: Final = frozenset({"ID", "Id", "id"})
_SINGLE_VALUED: Final = (SUBJECT_ID, ORGANIZATION, ORGANIZATION_ID, PURPOSE_OF_USE, RESOURCE_ID, HOME_COMMUNITY_ID)
_AC: Final = "urn:oasis:names:tc:SAML:2.0:ac:classes:"
AUTHN_CONTEXT_CLASSES: Final = frozenset(
    _AC + name
    for name in (
        "InternetProtocol",
        "InternetProtocolPassword",
        "Kerberos",
        "MobileOneFactorUnregistered",
        "MobileTwoFactorUnregistered",
        "MobileOneFactorContract",
        "MobileTwoFactorContract",
        "Password",
        "PasswordProtectedTransport",
        "PreviousSession",
        "X509",
        "PGP",
        "SPKI",
        "XMLDSig",
        "Smartcard",
        "SmartcardPKI",
        "SoftwarePKI",
        "Telephony",
        "NomadTelephony",
        "PersonalTelephony",
        "AuthenticatedTelephony",
        "SecureRemotePassword",
        "TLSClient",
        "TimeSyncToken",
        "unspecified",
    )
)
"""The authentication context classes of SAML 2.0 Authentication Context §3.4; another URI is malformed."""
DEFAULT_AUTHN_CONTEXTS: Final = tuple(sorted(AUTHN_CONTEXT_CLASSES - {_AC + "InternetProtocol"}))
"""Accepted by default: every class but InternetProtocol (a network address is not a user's authentication)."""
DEFAULT_PURPOSES: Final = ("TREATMENT", "EMERGENCY", "TREAT", "ETREAT", "COC")
"""Purposes of use accepted by default: care of the patient, and emergency access (NHIN and HL7 v3 codes)."""


VERIFIED_CACHE_SIZE: Final = 10_000
"""How many verified assertions a verifier remembers (by the SHA-256 of their exclusive canonical form), so
a consumer that sends the same assertion with every request pays the signature check once. Everything else
(location, shape, validity window, audience, attributes) is checked on every request."""


class XuaError(Exception):
    """The XUA assertion is missing or not acceptable; ``str(err)`` is the detailed reason (for logs only).

    ``fault_subcode`` is :data:`INVALID_SECURITY_TOKEN` or :data:`FAILED_AUTHENTICATION`.
    """

    def __init__(self, reason: str, *, fault_subcode: str = INVALID_SECURITY_TOKEN) -> None:
        if fault_subcode not in _FAULT_STRINGS:
            raise ValueError(f"not a WS-Security fault subcode: {fault_subcode!r}")
        super().__init__(reason)
        self.reason = reason
        self.fault_subcode = fault_subcode


@dataclass(frozen=True, slots=True)
class XuaSettings:
    """X-Service Provider settings.

    ``trusted_certs`` are PEM files holding the pinned signing certificates of the trusted X-Assertion
    Providers (a file may hold several); ``audiences`` the URIs this node accepts in
    ``AudienceRestriction``; ``required`` whether a request without an assertion is refused; the accepted
    authentication contexts, purposes of use and roles are the node's access policy.
    """

    trusted_certs: tuple[str, ...]
    audiences: tuple[str, ...]
    clock_skew: float = 60.0
    allow_sha1: bool = False
    required: bool = True
    authn_contexts: tuple[str, ...] = DEFAULT_AUTHN_CONTEXTS
    """Accepted AuthnContextClassRef URIs; empty: any SAML 2.0 class."""
    purposes: tuple[str, ...] = DEFAULT_PURPOSES
    """Accepted purpose-of-use codes (the code, without its system); empty: any."""
    roles: tuple[str, ...] = ()
    """Accepted role codes (the code, without its system); empty: any."""

    def __post_init__(self) -> None:
        if not self.trusted_certs or not self.audiences:
            raise ValueError("XUA needs at least one trusted certificate and one audience")
        if self.clock_skew < 0:
            raise ValueError("clock_skew must not be negative")
        unknown = sorted(set(self.authn_contexts) - AUTHN_CONTEXT_CLASSES)
        if unknown:
            raise ValueError(f"not SAML 2.0 authentication context classes: {', '.join(unknown)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedAssertion:
    """What a verified assertion says. Coded values (role, purpose of use) read ``code^^codeSystem``."""

    assertion_id: str
    issuer: str
    subject: str
    """``Subject/NameID``: the user id (e.g. a UZI number)."""
    audiences: tuple[str, ...]
    not_on_or_after: datetime
    user_name: str = ""
    organisation: str = ""
    organisation_id: str = ""
    role: str = ""
    """The first role; all of them are in ``roles``."""
    roles: tuple[str, ...] = ()
    purpose_of_use: str = ""
    patient_id: str = ""
    home_community_id: str = ""
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Every attribute of the AttributeStatements, by name."""
    element: etree._Element | None = field(default=None, compare=False, repr=False)
    """The verified ``saml2:Assertion`` itself (to pass on unchanged, e.g. on a gateway's outbound calls)."""

    def requester(self, address: str = "") -> Requester:
        """The consent gate's :class:`~xds.consent.model.Requester` for this assertion."""
        purpose = self.purpose_of_use.partition("^^")[0]
        return Requester(
            user_id=self.subject,
            user_name=self.user_name,
            role=self.role,
            organisation_id=self.organisation_id,
            organisation_name=self.organisation,
            community_id=self.home_community_id,
            purpose_of_use=purpose or PURPOSE_TREATMENT,
            source=SOURCE_XUA,
            address=address,
        )


@dataclass(frozen=True, slots=True)
class _TrustedCert:
    der: bytes
    pem: str


class XuaVerifier:
    """Verifies the XUA assertion of incoming requests against :class:`XuaSettings` (see the module doc)."""

    def __init__(self, settings: XuaSettings, *, cache_size: int = VERIFIED_CACHE_SIZE) -> None:
        self.settings = settings
        self._trusted = tuple(cert for path in settings.trusted_certs for cert in _load_certs(Path(path)))
        if not self._trusted:
            raise ValueError("no certificate found in the XUA trust store")
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def verify(self, header: etree._Element | None, *, now: datetime) -> VerifiedAssertion | None:
        """Verify the assertion in ``header`` (the request's ``env:Header``) at time ``now``.

        Returns None when there is no assertion and ``settings.required`` is False.

        Raises
        ------
        XuaError
            On any failure; see the module documentation for the order of checks.
        """
        assertion = _locate(header)
        if assertion is None:
            if self.settings.required:
                raise XuaError("no SAML assertion in a wsse:Security header")
            return None
        signature = _check_signature_shape(assertion, allow_sha1=self.settings.allow_sha1)
        key = hashlib.sha256(etree.tostring(assertion, method="c14n", exclusive=True, with_comments=True)).digest()
        with self._lock:
            known = key in self._verified
            if known:
                self._verified.move_to_end(key)
        if not known:
            self._verify_crypto(assertion, signature)
            with self._lock:
                self._verified[key] = None
                while len(self._verified) > self._cache_size:
                    self._verified.popitem(last=False)
        return self._read(assertion, now)

    def _verify_crypto(self, assertion: etree._Element, signature: etree._Element) -> None:
        """Verify ``signature`` over ``assertion`` with a trusted key only (XML-Signature §3.2)."""
        embedded = _embedded_cert(signature)
        if embedded is not None:
            candidates = tuple(cert for cert in self._trusted if cert.der == embedded)
            if not candidates:
                raise XuaError("the assertion is signed by an untrusted certificate")
        else:
            candidates = self._trusted
        for cert in candidates:
            context = xmlsec.SignatureContext()
            try:
                context.key = xmlsec.Key.from_memory(cert.pem, xmlsec.constants.KeyDataFormatCertPem)
                context.register_id(assertion, "ID")
                context.verify(signature)
            except xmlsec.Error:
                continue
            return
        raise XuaError("the assertion's signature does not verify")

    def _read(self, assertion: etree._Element, now: datetime) -> VerifiedAssertion:
        """Check the conditions and read the (verified) ``assertion`` element."""
        not_on_or_after, audiences = self._check_conditions(assertion, now)
        attributes = _attributes(assertion)
        single = {name: _single(attributes, name) for name in _SINGLE_VALUED}
        roles = attributes.get(SUBJECT_ROLE, ())
        self._check_policy(_authn_context(assertion), single[PURPOSE_OF_USE], roles)
        return VerifiedAssertion(
            assertion_id=assertion.get("ID", ""),
            issuer=_required_text(assertion, "saml2:Issuer"),
            subject=_required_text(assertion, "saml2:Subject/saml2:NameID"),
            audiences=audiences,
            not_on_or_after=not_on_or_after,
            user_name=single[SUBJECT_ID],
            organisation=single[ORGANIZATION],
            organisation_id=single[ORGANIZATION_ID],
            role=roles[0] if roles else "",
            roles=roles,
            purpose_of_use=single[PURPOSE_OF_USE],
            patient_id=single[RESOURCE_ID],
            home_community_id=single[HOME_COMMUNITY_ID],
            attributes=attributes,
            element=assertion,
        )

    def _check_policy(self, authn_context: str, purpose: str, roles: tuple[str, ...]) -> None:
        """The node's access policy (ITI TF-2 §3.40.4.2): accepted authentication, purpose of use and roles."""
        accepted = self.settings
        if accepted.authn_contexts and authn_context not in accepted.authn_contexts:
            raise XuaError(
                f"authentication context {authn_context} is not accepted", fault_subcode=FAILED_AUTHENTICATION
            )
        code = purpose.partition("^^")[0] or PURPOSE_TREATMENT  # what the requester will be taken to ask for
        if accepted.purposes and code not in accepted.purposes:
            raise XuaError(f"purpose of use {code} is not accepted", fault_subcode=FAILED_AUTHENTICATION)
        if accepted.roles:
            refused = [r for r in roles if r.partition("^^")[0] not in accepted.roles]
            if refused or not roles:
                why = f"role {refused[0]}" if refused else "an assertion without a role"
                raise XuaError(f"{why} is not accepted", fault_subcode=FAILED_AUTHENTICATION)

    def _check_conditions(self, assertion: etree._Element, now: datetime) -> tuple[datetime, tuple[str, ...]]:
        """SAML 2.0 Core §2.5.1: validity window (with skew) and audience restriction."""
        conditions = _one(assertion, "saml2:Conditions", "Conditions")
        now = now if now.tzinfo else now.replace(tzinfo=UTC)
        skew = timedelta(seconds=self.settings.clock_skew)
        not_on_or_after = _time(conditions.get("NotOnOrAfter"), "NotOnOrAfter")
        if conditions.get("NotBefore") is not None and now + skew < _time(conditions.get("NotBefore"), "NotBefore"):
            raise XuaError("the assertion is not yet valid", fault_subcode=FAILED_AUTHENTICATION)
        if now - skew >= not_on_or_after:
            raise XuaError("the assertion has expired", fault_subcode=FAILED_AUTHENTICATION)
        return not_on_or_after, self._check_audience(conditions)

    def _check_audience(self, conditions: etree._Element) -> tuple[str, ...]:
        """Every AudienceRestriction must name us: "the assertion is addressed to [all] of them" (§2.5.1.4)."""
        restrictions = conditions.findall(qn(SAML2, "AudienceRestriction"))
        if not restrictions:
            raise XuaError("the assertion has no AudienceRestriction", fault_subcode=FAILED_AUTHENTICATION)
        found: list[str] = []
        for restriction in restrictions:
            names = [_text(a) for a in restriction.findall(qn(SAML2, "Audience"))]
            if not set(names) & set(self.settings.audiences):
                raise XuaError("the assertion is not addressed to this node", fault_subcode=FAILED_AUTHENTICATION)
            found.extend(names)
        return tuple(dict.fromkeys(found))


def xua_fault(err: XuaError) -> SoapFault:
    """The SOAP 1.2 ``Sender`` fault for ``err``, with the WS-Security fault string only (no internals)."""
    return SoapFault(_FAULT_STRINGS[err.fault_subcode], code="Sender", subcode=err.fault_subcode)


_NS: Final = {"saml2": SAML2, "ds": DS, "wsse": WSSE}


def _locate(header: etree._Element | None) -> etree._Element | None:
    """The one assertion of the one ``wsse:Security`` block, or None when there is none (step 1)."""
    if header is None:
        return None
    blocks = header.findall(qn(WSSE, "Security"))
    assertions = list(header.iter(qn(SAML2, "Assertion")))
    if len(blocks) > 1:
        raise XuaError("more than one wsse:Security header block")
    if not assertions:
        return None
    if len(assertions) > 1:
        raise XuaError("more than one SAML assertion in the SOAP header")
    assertion = assertions[0]
    if not blocks or assertion.getparent() is not blocks[0]:
        raise XuaError("the SAML assertion is not a child of wsse:Security")
    return assertion


def _check_signature_shape(assertion: etree._Element, *, allow_sha1: bool) -> etree._Element:
    """Step 2: one enveloped signature, one Reference to the assertion's own unique ID, allowed algorithms."""
    if assertion.get("Version") != "2.0":
        raise XuaError("not a SAML 2.0 assertion")
    assertion_id = assertion.get("ID") or ""
    signatures = assertion.findall(qn(DS, "Signature"))
    if not signatures:
        raise XuaError("the SAML assertion is not signed")
    if len(signatures) > 1 or len(list(assertion.iter(qn(DS, "Signature")))) > 1:
        raise XuaError("the SAML assertion carries more than one signature")
    if _id_count(assertion, assertion_id) != 1:
        raise XuaError("the assertion ID is missing or not unique in the message")
    signed_info = _one(signatures[0], "ds:SignedInfo", "SignedInfo")
    _check_algorithm(signed_info, "ds:CanonicalizationMethod", {_EXC_C14N})
    _check_algorithm(signed_info, "ds:SignatureMethod", _allowed(_SIGNATURE_METHODS, _SHA1_SIGNATURE, allow_sha1))
    references = signed_info.findall(qn(DS, "Reference"))
    if len(references) != 1 or references[0].get("URI") != f"#{assertion_id}":
        raise XuaError("the signature must have one Reference to the assertion's ID")
    _check_algorithm(references[0], "ds:DigestMethod", _allowed(_DIGEST_METHODS, _SHA1_DIGEST, allow_sha1))
    transforms = [t.get("Algorithm") for t in references[0].iterfind("ds:Transforms/ds:Transform", _NS)]
    if sorted(transforms, key=str) != [_ENVELOPED, _EXC_C14N]:
        raise XuaError("the Reference must use the enveloped-signature and exclusive C14N transforms only")
    return signatures[0]


def _allowed(methods: frozenset[str], sha1: str, allow_sha1: bool) -> frozenset[str]:
    return methods | {sha1} if allow_sha1 else methods


def _check_algorithm(parent: etree._Element, path: str, allowed: set[str] | frozenset[str]) -> None:
    if _one(parent, path, path).get("Algorithm") not in allowed:
        raise XuaError(f"{path} algorithm not allowed")


def _id_count(element: etree._Element, value: str) -> int:
    """How many ID-like attributes (``ID``, ``Id``, ``id``, ``wsu:Id``, ``xml:id``) in the document equal ``value``."""
    if not value:
        return 0
    root = element.getroottree().getroot()
    return sum(
        1
        for node in root.iter(etree.Element)
        for name, attr_value in node.attrib.items()
        if attr_value == value and etree.QName(name).localname in _ID_ATTRIBUTES
    )


def _embedded_cert(signature: etree._Element) -> bytes | None:
    """DER of the first ``KeyInfo/X509Data/X509Certificate``, or None when KeyInfo holds no certificate."""
    element = signature.find("ds:KeyInfo/ds:X509Data/ds:X509Certificate", _NS)
    if element is None:
        return None
    try:
        return base64.b64decode("".join(_text(element).split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise XuaError("the KeyInfo certificate is not base64") from exc


def _load_certs(path: Path) -> list[_TrustedCert]:
    """Every ``CERTIFICATE`` block of a PEM file."""
    marker = "-----END CERTIFICATE-----"
    text = path.read_text(encoding="ascii")
    blocks = [block + marker for block in text.split(marker) if "-----BEGIN CERTIFICATE-----" in block]
    return [_TrustedCert(der=ssl.PEM_cert_to_DER_cert(b.strip()), pem=b.strip() + "\n") for b in blocks]


def _attributes(assertion: etree._Element) -> dict[str, tuple[str, ...]]:
    """``Attribute/@Name`` → values, from the assertion's own AttributeStatements (SAML 2.0 Core §2.7.3)."""
    out: dict[str, tuple[str, ...]] = {}
    for attribute in assertion.iterfind("saml2:AttributeStatement/saml2:Attribute", _NS):
        name = attribute.get("Name", "")
        values = tuple(_value(v) for v in attribute.findall(qn(SAML2, "AttributeValue")))
        out[name] = out.get(name, ()) + values
    return out


def _value(element: etree._Element) -> str:
    """An AttributeValue: text, an HL7 v3 CE (``code^^codeSystem``) or II (CX ``ext^^^&root&ISO``) element."""
    children = list(element)
    if not children:
        return _text(element)
    if len(children) > 1 or not isinstance(children[0].tag, str) or (element.text or "").strip():
        raise XuaError("unexpected content in a SAML AttributeValue")
    child = children[0]
    if child.get("code") is not None:
        system = child.get("codeSystem", "")
        return f"{child.get('code')}^^{system}" if system else child.get("code", "")
    if child.get("root") is not None:
        return f"{child.get('extension', '')}^^^&{child.get('root')}&ISO"
    raise XuaError("unsupported structured SAML AttributeValue")


def _authn_context(assertion: etree._Element) -> str:
    """The one AuthnStatement's AuthnContextClassRef (ITI TF-2 §3.40.4.1.2: the assertion shall contain an
    AuthnStatement; SAML 2.0 Core §2.7.2: AuthnInstant is required, one class reference per AuthnContext)."""
    statement = _one(assertion, "saml2:AuthnStatement", "AuthnStatement")
    _time(statement.get("AuthnInstant"), "AuthnInstant")
    ref = _text(_one(statement, "saml2:AuthnContext/saml2:AuthnContextClassRef", "AuthnContextClassRef"))
    if ref not in AUTHN_CONTEXT_CLASSES:
        raise XuaError(f"{ref or 'an empty URI'} is not a SAML 2.0 authentication context class")
    return ref


def _single(attributes: Mapping[str, tuple[str, ...]], name: str) -> str:
    values = attributes.get(name, ())
    if len(values) > 1:
        raise XuaError(f"attribute {name} must have one value")
    return values[0] if values else ""


def _one(parent: etree._Element, path: str, what: str) -> etree._Element:
    found = parent.findall(path, _NS)
    if len(found) != 1:
        raise XuaError(f"expected exactly one {what}")
    return found[0]


def _required_text(assertion: etree._Element, path: str) -> str:
    value = _text(_one(assertion, path, path))
    if not value:
        raise XuaError(f"{path} is empty")
    return value


def _text(element: etree._Element) -> str:
    """The text of a leaf element; refuses comments, processing instructions or child elements."""
    if len(element):
        raise XuaError(f"unexpected content in {etree.QName(element).localname}")
    return (element.text or "").strip()


def _time(value: str | None, what: str) -> datetime:
    """Parse an xs:dateTime (UTC when no zone is given, SAML 2.0 Core §1.3.3)."""
    if not value:
        raise XuaError(f"the assertion has no {what}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise XuaError(f"{what} is not an xs:dateTime") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


__all__ = [
    "AUTHN_CONTEXT_CLASSES",
    "DEFAULT_AUTHN_CONTEXTS",
    "DEFAULT_PURPOSES",
    "FAILED_AUTHENTICATION",
    "INVALID_SECURITY_TOKEN",
    "VerifiedAssertion",
    "XuaError",
    "XuaSettings",
    "XuaVerifier",
    "xua_fault",
]
