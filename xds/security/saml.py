"""SAML 2.0 assertions for IHE XUA (ITI-40 Provide X-User Assertion): build and sign.

Theory of operation
-------------------
:func:`build_assertion` makes an unsigned ``saml2:Assertion`` in the shape ITI TF-2 §3.40.4.1.2 expects:
``Issuer``, ``Subject`` (``NameID`` plus a *bearer* ``SubjectConfirmation``), ``Conditions`` with
``NotBefore``/``NotOnOrAfter`` and an ``AudienceRestriction``, an ``AuthnStatement`` and an
``AttributeStatement`` with the XSPA attributes (:data:`SUBJECT_ID` ... :data:`HOME_COMMUNITY_ID`). The
coded attributes (:data:`SUBJECT_ROLE`, :data:`PURPOSE_OF_USE`) are written as HL7 v3 ``CE`` elements
(``<Role code= codeSystem=/>`` in ``urn:hl7-org:v3``) when the value is given as ``code^^codeSystem``,
otherwise as plain text.

:func:`sign_assertion` adds an enveloped XML Signature (exclusive C14N, one ``Reference`` to ``#ID``, the
signing certificate in ``KeyInfo/X509Data``) and puts ``ds:Signature`` directly after ``saml2:Issuer``, as
the SAML schema orders it (SAML 2.0 Core §2.3.3, §5.4.1). Signing is done by libxmlsec1 through
python-xmlsec, never by hand.

The verifying side is :mod:`xds.security.xua`. The SAML, XML-DSig and HL7 namespaces live here (with the
attribute names) rather than in :mod:`xds.namespaces` because only the security package uses them.

References
----------
ITI TF-2 §3.40 (Provide X-User Assertion), §3.40.4.1.2 (XSPA attributes, Subject-Role, PurposeOfUse,
Patient Identifier); OASIS SAML 2.0 Core §2.3.3 (Assertion), §2.5 (Conditions), §5.4 (signature profile);
OASIS WS-Security SAML Token Profile 1.1 §3.4; OASIS XSPA Profile of SAML v1.0; W3C XML-Signature Syntax and
Processing (2nd ed.), Exclusive XML Canonicalization 1.0.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

import xmlsec
from lxml import etree

from xds.ebrim.parser import parse_xml
from xds.namespaces import XSD, qn

SAML2: Final = "urn:oasis:names:tc:SAML:2.0:assertion"
"""SAML 2.0 assertion namespace (SAML 2.0 Core §2.1)."""
DS: Final = "http://www.w3.org/2000/09/xmldsig#"
"""XML-Signature namespace."""
HL7: Final = "urn:hl7-org:v3"
"""HL7 v3 namespace of the coded ``Role`` / ``PurposeOfUse`` attribute values (ITI TF-2 §3.40.4.1.2)."""
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"

SUBJECT_ID: Final = "urn:oasis:names:tc:xspa:1.0:subject:subject-id"
"""The user's plain-text name (XSPA)."""
ORGANIZATION: Final = "urn:oasis:names:tc:xspa:1.0:subject:organization"
"""The user's organisation, plain text."""
ORGANIZATION_ID: Final = "urn:oasis:names:tc:xspa:1.0:subject:organization-id"
"""The organisation's identifier (a URI, e.g. ``urn:oid:...``; in the Netherlands the URA)."""
SUBJECT_ROLE: Final = "urn:oasis:names:tc:xacml:2.0:subject:role"
"""The user's role, an HL7 v3 ``CE`` ``Role`` element (Subject-Role Option)."""
PURPOSE_OF_USE: Final = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"
"""Why the data is asked for, an HL7 v3 ``CE`` ``PurposeOfUse`` element."""
RESOURCE_ID: Final = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
"""The patient identifier, an HL7 v2 CX string (Patient Identifier attribute)."""
HOME_COMMUNITY_ID: Final = "urn:ihe:iti:xca:2010:homeCommunityId"
"""The requesting community's homeCommunityId (``urn:oid:...``)."""

ATTRNAME_FORMAT_URI: Final = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
NAMEID_UNSPECIFIED: Final = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
CM_BEARER: Final = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
"""Bearer subject confirmation (SAML 2.0 Profiles §3.3)."""
AC_UNSPECIFIED: Final = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"

CODED_ELEMENTS: Final[Mapping[str, str]] = {SUBJECT_ROLE: "Role", PURPOSE_OF_USE: "PurposeOfUse"}
"""Attributes whose values are HL7 v3 ``CE`` elements, and the element's local name."""

# name -> (SignatureMethod, DigestMethod)
_ALGORITHMS: Final = {
    "rsa-sha256": (xmlsec.constants.TransformRsaSha256, xmlsec.constants.TransformSha256),
    "rsa-sha384": (xmlsec.constants.TransformRsaSha384, xmlsec.constants.TransformSha384),
    "rsa-sha512": (xmlsec.constants.TransformRsaSha512, xmlsec.constants.TransformSha512),
    "ecdsa-sha256": (xmlsec.constants.TransformEcdsaSha256, xmlsec.constants.TransformSha256),
    "rsa-sha1": (xmlsec.constants.TransformRsaSha1, xmlsec.constants.TransformSha1),
}


def xs_datetime(value: datetime) -> str:
    """``value`` as an xs:dateTime in UTC with ``Z`` (SAML 2.0 Core §1.3.3); naive values are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{value.microsecond // 1000:03d}Z" if value.microsecond else "Z"
    )


def build_assertion(
    *,
    issuer: str,
    subject: str,
    audience: str,
    not_before: datetime,
    not_on_or_after: datetime,
    attributes: Mapping[str, Sequence[str]],
    assertion_id: str | None = None,
    issue_instant: datetime,
) -> etree._Element:
    """Build an unsigned SAML 2.0 assertion for XUA.

    Parameters
    ----------
    issuer, subject, audience : str
        ``saml2:Issuer``, ``Subject/NameID`` and the one ``AudienceRestriction/Audience``.
    not_before, not_on_or_after, issue_instant : datetime
        Validity window (``Conditions``) and ``IssueInstant`` (also the ``AuthnInstant``).
    attributes : mapping of str to sequence of str
        Attribute name (e.g. :data:`SUBJECT_ROLE`) to values. For :data:`CODED_ELEMENTS` a value
        ``code^^codeSystem`` becomes an HL7 v3 ``CE`` element; anything else is text.
    assertion_id : str or None
        The ``ID`` (an xs:ID, i.e. an NCName); a fresh ``_<uuid>`` when None.

    References
    ----------
    SAML 2.0 Core §2.3.3, §2.4, §2.5, §2.7.2, §2.7.3; ITI TF-2 §3.40.4.1.2.
    """
    assertion = etree.Element(
        qn(SAML2, "Assertion"),
        nsmap={"saml2": SAML2, "xsi": XSI, "xs": XSD},
        ID=assertion_id or f"_{uuid.uuid4()}",
        IssueInstant=xs_datetime(issue_instant),
        Version="2.0",
    )
    _saml(assertion, "Issuer", issuer)
    _subject(_saml(assertion, "Subject"), subject)
    conditions = _saml(assertion, "Conditions")
    conditions.set("NotBefore", xs_datetime(not_before))
    conditions.set("NotOnOrAfter", xs_datetime(not_on_or_after))
    _saml(_saml(conditions, "AudienceRestriction"), "Audience", audience)
    authn = _saml(assertion, "AuthnStatement")
    authn.set("AuthnInstant", xs_datetime(issue_instant))
    _saml(_saml(authn, "AuthnContext"), "AuthnContextClassRef", AC_UNSPECIFIED)
    if attributes:
        statement = _saml(assertion, "AttributeStatement")
        for name, values in attributes.items():
            _attribute(statement, name, values)
    return assertion


def sign_assertion(
    assertion: etree._Element, key_pem: bytes, cert_pem: bytes, *, algorithm: str = "rsa-sha256"
) -> etree._Element:
    """Sign ``assertion`` with an enveloped signature and return the signed assertion.

    The returned element is a re-parsed copy: libxmlsec1 creates the ``ds:*`` nodes outside lxml's name
    dictionary, so lxml's ``find``/``iter`` would not see them in the original tree. Use the return value.

    Parameters
    ----------
    assertion : lxml element
        A ``saml2:Assertion`` with an ``ID`` and an ``Issuer`` (from :func:`build_assertion`).
    key_pem, cert_pem : bytes
        The signer's private key and certificate (PEM); the certificate goes into ``KeyInfo/X509Data``.
    algorithm : str
        ``rsa-sha256`` (default), ``rsa-sha384``, ``rsa-sha512``, ``ecdsa-sha256``, or ``rsa-sha1`` (legacy,
        refused by default by the verifier).

    References
    ----------
    SAML 2.0 Core §5.4 ("enveloped signature", "Reference URI ... MUST [be] the ID of the ... assertion",
    exclusive canonicalization); XML-Signature §6.6.4 (enveloped transform).
    """
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"unknown signature algorithm {algorithm!r}; use one of {sorted(_ALGORITHMS)}")
    sign_method, digest_method = _ALGORITHMS[algorithm]
    assertion_id = assertion.get("ID")
    issuer = assertion.find(qn(SAML2, "Issuer"))
    if not assertion_id or issuer is None:
        raise ValueError("a SAML assertion needs an ID and an Issuer to be signed")
    signature = xmlsec.template.create(assertion, xmlsec.constants.TransformExclC14N, sign_method, ns="ds")
    issuer.addnext(signature)
    reference = xmlsec.template.add_reference(signature, digest_method, uri=f"#{assertion_id}")
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    context = xmlsec.SignatureContext()
    key = xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem)
    key.load_cert_from_memory(cert_pem, xmlsec.constants.KeyDataFormatCertPem)
    context.key = key
    context.register_id(assertion, "ID")
    context.sign(signature)
    return parse_xml(etree.tostring(assertion))


def _saml(parent: etree._Element, local: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, qn(SAML2, local))
    element.text = text
    return element


def _subject(subject: etree._Element, name_id: str) -> None:
    _saml(subject, "NameID", name_id).set("Format", NAMEID_UNSPECIFIED)
    _saml(subject, "SubjectConfirmation").set("Method", CM_BEARER)


def _attribute(statement: etree._Element, name: str, values: Sequence[str]) -> None:
    attribute = _saml(statement, "Attribute")
    attribute.set("Name", name)
    attribute.set("NameFormat", ATTRNAME_FORMAT_URI)
    for value in values:
        element = _saml(attribute, "AttributeValue")
        code, sep, system = value.partition("^^")
        if name in CODED_ELEMENTS and sep:
            coded = etree.SubElement(element, qn(HL7, CODED_ELEMENTS[name]), nsmap={"hl7": HL7})
            coded.set(qn(XSI, "type"), "CE")
            coded.set("code", code)
            coded.set("codeSystem", system)
        else:
            element.set(qn(XSI, "type"), "xs:string")
            element.text = value


__all__ = [
    "AC_UNSPECIFIED",
    "ATTRNAME_FORMAT_URI",
    "CM_BEARER",
    "CODED_ELEMENTS",
    "DS",
    "HL7",
    "HOME_COMMUNITY_ID",
    "NAMEID_UNSPECIFIED",
    "ORGANIZATION",
    "ORGANIZATION_ID",
    "PURPOSE_OF_USE",
    "RESOURCE_ID",
    "SAML2",
    "SUBJECT_ID",
    "SUBJECT_ROLE",
    "XSI",
    "build_assertion",
    "sign_assertion",
    "xs_datetime",
]
