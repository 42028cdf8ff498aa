"""The XUA SAML assertions of the NIST ``12371_*`` Document Recipient tests, rebuilt with this node's own
SAML helpers (:mod:`xds.security.saml`), and a test client that sends them in a ``wsse:Security`` header.

What each variant stands for
----------------------------
The NIST engine does not hold these assertions: for a test named ``<id>_<name>`` it asks the Gazelle STS
(the Connectathon X-Assertion Provider; testkit ``examples/GazelleSts``: WS-Trust ``Issue`` with the
username ``$saml-username$``) for an assertion of the profile ``<name>`` and sends the step with it. The
profile names are the STS's; what each one builds (Gazelle STS ``AssertionProfile``,
``IHESAML20TokenProvider``, ``IHESAML20TokenAttributeProvider``; read, not copied) is:

- ``valid``: signed, ``Conditions`` around now, the X-Service Provider as ``Audience``, an
  ``AuthnStatement``, the XSPA attributes with the policy's first-level Role and PurposeOfUse.
- ``expired`` / ``notyetvalid``: the validity window lies wholly in the past / the future.
- ``unsigned``: no ``ds:Signature``.
- ``unknownaudience``: ``Audience`` is ``http://ihe.unknown.xua/X-ServiceProvider-IHE-Unknown``.
- ``invalidauthnstatement`` (the STS's later ``invalidauthncontext``): the ``AuthnContextClassRef`` is
  ``urn:oasis:names:tc:SAML:2.0:ac:classes:Invalid``, a URI in the SAML 2.0 class namespace that names no
  authentication context class.
- ``secondauthncontext``: the ``AuthnContextClassRef`` is the *second* class the STS knows,
  ``...:ac:classes:InternetProtocol``, which the Connectathon policy calls an unacceptable authentication
  method. Not two AuthnStatements.
- ``secondrole`` / ``secondpurposeofuse``: *one* Role / PurposeOfUse attribute holding the policy's
  second-level value ("current role/purposeofuse cannot provide any access"). Not two attributes.
- ``withauthzconsent``: ``valid`` plus the Authz-Consent attributes: ``urn:ihe:iti:bppc:2007:docid``
  (the BPPC consent document's uniqueId) and the patient's ``resource-id``.

The last four Faults come from the Connectathon's X-Service Provider policy (accepted AuthnContext classes,
roles and purposes of use), not from a SAML or XUA processing rule; this module states that policy in
:data:`POLICY_ROLE`, :data:`POLICY_PURPOSE` and :data:`POLICY_AUTHN_CONTEXT` so a reader sees what the node
would have to refuse.

The concrete codes are ours (SNOMED CT roles, the NHIN PurposeOfUse code system): the STS's own values live
in its deployment properties, which are not in the corpus.

Transport: :class:`XuaClient` is a Starlette test client that puts ``assertion`` (when set) into a
``wsse:Security`` block at the start of the SOAP ``env:Header`` of every POST, MTOM or not, byte for byte
as signed. There is no SAML or WS-Security XSD in the corpus, so the assertion itself is not XSD-validated;
the ITI-41 request and the answer (a SOAP 1.2 Fault or a RegistryResponse) are, by the harness.

References
----------
ITI TF-2 §3.40.4.1.2 (the assertion: AuthnStatement, XSPA Subject-Role, PurposeOfUse, Authz-Consent
attributes), §3.40.4.2 (X-Service Provider: validate, then local access-control policy); OASIS SAML 2.0
Core §2.5.1 (Conditions, AudienceRestriction), §2.7.2 (AuthnStatement), §5 (signature); OASIS SAML 2.0
Authentication Context §3.4 (the defined class URIs); OASIS WS-Security 1.0 §12 (fault codes).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import trustme
from lxml import etree
from starlette.testclient import TestClient

from xds.namespaces import qn
from xds.security import saml
from xds.security.xua import FAILED_AUTHENTICATION, INVALID_SECURITY_TOKEN
from xds.soap.envelope import WSSE

AUDIENCE: Final = "urn:xds-node:test"
"""The node's ``[xua] audiences`` in the conformance fixture."""
UNKNOWN_AUDIENCE: Final = "http://ihe.unknown.xua/X-ServiceProvider-IHE-Unknown"
"""The Audience of the STS's ``unknownaudience`` profile."""
ISSUER: Final = "https://sts.test.invalid/xua"

AUTHZ_CONSENT: Final = "urn:ihe:iti:bppc:2007:docid"
"""Authz-Consent option: the uniqueId of the patient's BPPC consent document (ITI TF-2 §3.40.4.1.2)."""
CONSENT_DOCUMENT: Final = "1.3.6.1.4.1.21367.2005.3.99.1.1010"

_SNOMED: Final = "2.16.840.1.113883.6.96"
_PURPOSE: Final = "2.16.840.1.113883.3.18.7.1"
ROLE_FIRST: Final = f"112247003^^{_SNOMED}"
"""Medical doctor: the policy's first-level role (grants access)."""
ROLE_SECOND: Final = f"106328005^^{_SNOMED}"
"""Social worker: the policy's second-level role ("cannot provide any access")."""
PURPOSE_FIRST: Final = f"TREATMENT^^{_PURPOSE}"
PURPOSE_SECOND: Final = f"PUBLICHEALTH^^{_PURPOSE}"
AC_INTERNET_PROTOCOL: Final = "urn:oasis:names:tc:SAML:2.0:ac:classes:InternetProtocol"
AC_INVALID: Final = "urn:oasis:names:tc:SAML:2.0:ac:classes:Invalid"

POLICY_ROLE: Final = frozenset({ROLE_FIRST})
POLICY_PURPOSE: Final = frozenset({PURPOSE_FIRST})
POLICY_AUTHN_CONTEXT: Final = frozenset({saml.AC_UNSPECIFIED})
"""The X-Service Provider policy the ``second*`` / ``invalidauthnstatement`` Faults presuppose."""


@dataclass(frozen=True, slots=True)
class Variant:
    """One STS profile: how its assertion differs from ``valid``, and the WS-Security fault subcode the node
    must answer with (``""``: the request must succeed)."""

    name: str
    fault: str = ""
    window: tuple[timedelta, timedelta] = (timedelta(minutes=-5), timedelta(minutes=5))
    """``NotBefore`` and ``NotOnOrAfter`` relative to now."""
    audience: str = AUDIENCE
    signed: bool = True
    authn_context: str = saml.AC_UNSPECIFIED
    role: str = ROLE_FIRST
    purpose: str = PURPOSE_FIRST
    consent: bool = False


VARIANTS: Final[dict[str, Variant]] = {
    v.name: v
    for v in (
        Variant("valid"),
        Variant("withauthzconsent", consent=True),
        Variant("expired", FAILED_AUTHENTICATION, window=(timedelta(hours=-2), timedelta(hours=-1))),
        Variant("notyetvalid", FAILED_AUTHENTICATION, window=(timedelta(hours=1), timedelta(hours=2))),
        Variant("unsigned", INVALID_SECURITY_TOKEN, signed=False),
        Variant("unknownaudience", FAILED_AUTHENTICATION, audience=UNKNOWN_AUDIENCE),
        # a class reference outside SAML 2.0 Authentication Context §3.4 makes the token malformed
        Variant("invalidauthnstatement", INVALID_SECURITY_TOKEN, authn_context=AC_INVALID),
        Variant("secondauthncontext", FAILED_AUTHENTICATION, authn_context=AC_INTERNET_PROTOCOL),
        Variant("secondrole", FAILED_AUTHENTICATION, role=ROLE_SECOND),
        Variant("secondpurposeofuse", FAILED_AUTHENTICATION, purpose=PURPOSE_SECOND),
    )
}
"""Every profile the ``12371_*`` tests use, by name. A refused *good* token (policy) is
``FailedAuthentication`` ("could not be authenticated or authorized"), a malformed or unsigned one
``InvalidSecurityToken`` (WS-Security 1.0 §12)."""


@dataclass(frozen=True, slots=True)
class Signer:
    """The test X-Assertion Provider: its key, certificate, and the trust store file holding the certificate."""

    key: bytes
    cert: bytes
    trust_store: str


def new_signer(directory: Path) -> Signer:
    """A fresh RSA signing certificate (trustme) and a trust store with it in ``directory``."""
    leaf = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert("sts.test.invalid", key_type=trustme.KeyType.RSA)
    cert = leaf.cert_chain_pems[0].bytes()
    path = directory / "xua-trusted.pem"
    path.write_bytes(cert)
    return Signer(leaf.private_key_pem.bytes(), cert, str(path))


def assertion(variant: Variant, signer: Signer, *, now: datetime, patient: str) -> etree._Element:
    """The assertion of ``variant`` at ``now`` for the user ``variant.name`` (as the STS names its subject)."""
    attributes: dict[str, list[str]] = {
        saml.SUBJECT_ID: [f"IHE Testing User ({variant.name})"],
        saml.ORGANIZATION: ["NIST conformance replay"],
        saml.ORGANIZATION_ID: ["urn:oid:1.3.6.1.4.1.21367.2017.2.6.99"],
        saml.HOME_COMMUNITY_ID: ["urn:oid:1.3.6.1.4.1.21367.2017.2.6.99"],
        saml.SUBJECT_ROLE: [variant.role],
        saml.PURPOSE_OF_USE: [variant.purpose],
    }
    if variant.consent:
        attributes[AUTHZ_CONSENT] = [CONSENT_DOCUMENT]
        attributes[saml.RESOURCE_ID] = [patient]
    not_before, not_on_or_after = (now + offset for offset in variant.window)
    element = saml.build_assertion(
        issuer=ISSUER,
        subject=variant.name,
        audience=variant.audience,
        not_before=not_before,
        not_on_or_after=not_on_or_after,
        attributes=attributes,
        issue_instant=min(now, not_before),
    )
    if variant.authn_context != saml.AC_UNSPECIFIED:
        class_ref = element.find(f"{qn(saml.SAML2, 'AuthnStatement')}//{qn(saml.SAML2, 'AuthnContextClassRef')}")
        assert class_ref is not None
        class_ref.text = variant.authn_context
    return saml.sign_assertion(element, signer.key, signer.cert) if variant.signed else element


_HEADER: Final = b"<env:Header>"


def with_security_header(content: bytes, token: etree._Element) -> bytes:
    """``content`` (a SOAP envelope, or an MTOM message whose root part is one) with ``token`` in a
    ``wsse:Security`` block as the first header block."""
    if content.count(_HEADER) < 1:
        raise ValueError("no env:Header in the request")
    security = etree.Element(qn(WSSE, "Security"), nsmap={"wsse": WSSE})
    security.append(copy.deepcopy(token))
    return content.replace(_HEADER, _HEADER + etree.tostring(security), 1)


class XuaClient(TestClient):
    """A test client that sends :attr:`assertion` (when set) in the ``wsse:Security`` header of every POST."""

    assertion: etree._Element | None = None

    def post(self, *args: Any, **kwargs: Any) -> Any:
        content = kwargs.get("content")
        if self.assertion is not None and isinstance(content, bytes):
            kwargs["content"] = with_security_header(content, self.assertion)
        return super().post(*args, **kwargs)


__all__ = [
    "AUDIENCE",
    "AUTHZ_CONSENT",
    "POLICY_AUTHN_CONTEXT",
    "POLICY_PURPOSE",
    "POLICY_ROLE",
    "UNKNOWN_AUDIENCE",
    "VARIANTS",
    "Signer",
    "Variant",
    "XuaClient",
    "assertion",
    "new_signer",
    "with_security_header",
]
