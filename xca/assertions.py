"""The XUA assertion on the initiating gateway's outbound ITI-38 / ITI-39 calls (ITI TF-2 §3.40, X-Service User).

Theory of operation
-------------------
"The initiating gateway can attach the consumer's assertion, or a node-signed one, to its outbound calls."
:class:`OutboundAssertions` is built once from the settings (``xua_outbound``) and, for each community a
call goes to, renders the ``wsse:Security`` header block that call carries (or None: no block):

``"forward"`` (the default)
    The consumer's assertion, as verified on the way in, unchanged inside a new ``wsse:Security``. The
    element is copied, not re-signed: its signature uses exclusive C14N over the assertion subtree, which
    does not depend on the new parent (W3C Exclusive XML Canonicalization §1.1), so it still verifies at the
    community. It keeps its issuer's ``AudienceRestriction`` (this node), so a community only accepts it
    when it trusts that issuer *and* lists that audience. No consumer assertion, no block.
``"node"``
    A fresh assertion signed by this node for the requester (:func:`xds.security.saml.build_assertion`,
    :func:`xds.security.saml.sign_assertion`): ``Subject/NameID`` is the user id (else the organisation id),
    with the XSPA attributes subject-id, organization, organization-id, role, purposeofuse, this node's
    homeCommunityId and, when the caller names the patient, resource-id. It is valid for
    :data:`NODE_ASSERTION_LIFETIME` from the (injectable) clock. The audience is the community's
    ``query_url``, for ITI-39 too: the directory has no audience field, and the address of a community's
    Responding Gateway is what both sides know; one audience per community keeps its ``xua_audiences``
    to one entry. A requester with neither user nor organisation id gets no block (the node does not
    invent an identity). The key and certificate are read once, at construction.
``"none"``
    No block.

The block never carries ``env:mustUnderstand`` (:func:`xca.client.with_security_header`).

References
----------
ITI TF-2 §3.40.4.1 (X-Service User: the assertion in the WS-Security header), §3.40.4.1.2 (XSPA attributes,
homeCommunityId, PurposeOfUse, Patient Identifier); XCA ITI TF-1 §18.2.3; OASIS WS-Security 1.1 SAML Token
Profile §3.4.2; OASIS SAML 2.0 Core §2.5.1.4 (AudienceRestriction); W3C Exclusive XML Canonicalization 1.0.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import xmlsec
from lxml import etree

from xca.directory import Community
from xds.audit.transactions import PURPOSE_OF_USE_SYSTEM
from xds.config import Settings
from xds.consent.model import Requester
from xds.namespaces import qn
from xds.security import saml
from xds.soap.envelope import WSSE

MODES: Final = ("forward", "node", "none")
"""The values of ``xua_outbound`` (see the module documentation)."""
NODE_ASSERTION_LIFETIME: Final = timedelta(minutes=5)
"""How long a node-signed assertion is valid (``NotOnOrAfter - NotBefore``)."""
_SECURITY: Final = qn(WSSE, "Security")

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OutboundAssertions:
    """What ``wsse:Security`` block each outbound call carries (see the module documentation).

    Parameters
    ----------
    mode : str
        One of :data:`MODES`.
    home : str
        This node's homeCommunityId (the homeCommunityId attribute of node-signed assertions).
    issuer, key_pem, cert_pem : str, bytes, bytes
        The ``saml2:Issuer`` and the signing key and certificate (PEM); needed in ``"node"`` mode only.
    clock : callable
        The current time (aware), for the validity window.
    """

    def __init__(
        self,
        mode: str,
        *,
        home: str = "",
        issuer: str = "",
        key_pem: bytes = b"",
        cert_pem: bytes = b"",
        clock: Clock = _utc_now,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"xua_outbound must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "node" and not (issuer and key_pem and cert_pem):
            raise ValueError("xua_outbound = 'node' needs xua_issuer, xua_signing_key_file and xua_signing_cert_file")
        self.mode = mode
        self.home = home
        self.issuer = issuer
        self._key_pem = key_pem
        self._cert_pem = cert_pem
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, *, home: str, clock: Clock = _utc_now) -> OutboundAssertions:
        """Build from ``xua_outbound`` and, in ``"node"`` mode, read the signing key and certificate now.

        Raises
        ------
        ValueError
            Naming the setting, when a file is missing, unreadable or not a usable PEM key / certificate, or
            when the certificate is not the key's.
        """
        if settings.xua_outbound != "node":
            return cls(settings.xua_outbound, home=home, clock=clock)
        if not settings.xua_issuer:
            raise ValueError("xua_outbound = 'node' needs xua_issuer")
        key_pem = _read("xua_signing_key_file", settings.xua_signing_key_file)
        cert_pem = _read("xua_signing_cert_file", settings.xua_signing_cert_file)
        _check_pair(key_pem, cert_pem)
        return cls("node", home=home, issuer=settings.xua_issuer, key_pem=key_pem, cert_pem=cert_pem, clock=clock)

    def header(
        self,
        requester: Requester,
        assertion: etree._Element | None,
        community: Community,
        *,
        patient_id: str = "",
    ) -> bytes | None:
        """The serialized ``wsse:Security`` block for a call to ``community``, or None for no block.

        ``assertion`` is the consumer's verified assertion (``"forward"``); ``patient_id`` the patient the
        call is about, in the community's domain (resource-id of a node-signed assertion; "" for none).
        """
        if self.mode == "forward":
            return None if assertion is None else _security(copy.deepcopy(assertion))
        if self.mode == "node":
            signed = self._sign(requester, community, patient_id)
            return None if signed is None else _security(signed)
        return None

    def _sign(self, requester: Requester, community: Community, patient_id: str) -> etree._Element | None:
        subject = requester.user_id or requester.organisation_id
        if not subject:
            return None
        now = self._clock()
        unsigned = saml.build_assertion(
            issuer=self.issuer,
            subject=subject,
            audience=community.query_url,
            not_before=now,
            not_on_or_after=now + NODE_ASSERTION_LIFETIME,
            attributes=self._attributes(requester, patient_id),
            issue_instant=now,
        )
        return saml.sign_assertion(unsigned, self._key_pem, self._cert_pem)

    def _attributes(self, requester: Requester, patient_id: str) -> dict[str, list[str]]:
        """The XSPA attributes of ITI TF-2 §3.40.4.1.2 that the requester fills (empty ones are left out)."""
        purpose = requester.purpose_of_use
        if purpose and "^^" not in purpose:
            purpose = f"{purpose}^^{PURPOSE_OF_USE_SYSTEM}"
        values = {
            saml.SUBJECT_ID: requester.user_name,
            saml.ORGANIZATION: requester.organisation_name,
            saml.ORGANIZATION_ID: requester.organisation_id,
            saml.SUBJECT_ROLE: requester.role,
            saml.PURPOSE_OF_USE: purpose,
            saml.HOME_COMMUNITY_ID: self.home,
            saml.RESOURCE_ID: patient_id,
        }
        return {name: [value] for name, value in values.items() if value}


def _security(assertion: etree._Element) -> bytes:
    """``assertion`` as the one child of a new ``wsse:Security`` block (WS-Security SAML Token Profile §3.4.2)."""
    block = etree.Element(_SECURITY, nsmap={"wsse": WSSE})
    block.append(assertion)
    return etree.tostring(block, encoding="UTF-8")


def _read(setting: str, path: str) -> bytes:
    if not path:
        raise ValueError(f"xua_outbound = 'node' needs {setting}")
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None


def _check_pair(key_pem: bytes, cert_pem: bytes) -> None:
    """Refuse a key or certificate libxmlsec1 cannot load, and a certificate that is not the key's.

    The pair is tried by signing a throw-away assertion and verifying it with the certificate alone.
    """
    try:
        xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem)
    except xmlsec.Error:
        raise ValueError("xua_signing_key_file does not hold a PEM private key") from None
    try:
        public = xmlsec.Key.from_memory(cert_pem, xmlsec.constants.KeyDataFormatCertPem)
    except xmlsec.Error:
        raise ValueError("xua_signing_cert_file does not hold a PEM certificate") from None
    now = _utc_now()
    probe = saml.build_assertion(
        issuer="probe",
        subject="probe",
        audience="probe",
        not_before=now,
        not_on_or_after=now,
        attributes={},
        issue_instant=now,
    )
    try:
        signed = saml.sign_assertion(probe, key_pem, cert_pem)
        signature = signed.find(qn(saml.DS, "Signature"))
        if signature is None:  # pragma: no cover - sign_assertion always adds one
            raise xmlsec.Error("no signature")
        context = xmlsec.SignatureContext()
        context.key = public
        context.register_id(signed, "ID")
        context.verify(signature)
    except xmlsec.Error:
        raise ValueError("xua_signing_cert_file is not the certificate of xua_signing_key_file") from None


__all__ = ["MODES", "NODE_ASSERTION_LIFETIME", "OutboundAssertions"]
