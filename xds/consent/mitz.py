"""Mitz "gesloten autorisatievraag" (closed authorisation question): a remote consent decision point client.

Theory of operation
-------------------
:class:`MitzPolicy` is a :class:`~xds.consent.model.ConsentPolicy` that asks Mitz, the Dutch national consent
registry, one XACML 3.0 question per :class:`~xds.consent.model.AccessRequest`: "may this requester (role,
organisation URA) see this patient's (BSN) data of this category, held by us (URA, care-provider type), for
this purpose?". The question is a :func:`render_request` SOAP 1.2 envelope (WS-Addressing headers) whose body
is an ``XACMLAuthzDecisionQuery`` (SAML 2.0 profile of XACML 3.0) wrapping one ``xacml:Request``; it is
POSTed over mutual TLS (our client certificate, Mitz's CA) by a synchronous ``httpx.Client``, because the
consent gate runs in worker threads.

The answer is streamed up to ``max_answer_bytes`` within ``timeout`` seconds in total, parsed with the one
hardened parser (:func:`xds.ebrim.parser.parse_xml`) and reduced by :func:`parse_decision` to one XACML
decision. Only ``Permit`` permits. ``Deny`` denies. Everything else denies too, with a reason that says what
happened (fail closed, as the Mitz implementation guide and the Cadasto client do): ``NotApplicable``,
``Indeterminate``, a SOAP fault, a status other than 200, a timeout, a refused connection, a TLS failure, an
answer that is not XML / not SOAP / not XACML, an answer that is too large. ``decide`` never raises for any of
these.

``Permit`` and ``Deny`` are cached for ``cache_seconds`` (at most 5 minutes, so a withdrawn consent takes
effect soon), keyed by every attribute that was sent (:class:`Question`); failures and undecided answers are
never cached, so the next request asks again. The cache is bounded (oldest entry evicted first), guarded by a
lock, and reads an injectable monotonic clock.

Attribute ids
-------------
The ids, data types and code systems are those of the Mitz XACML 3.0 profile ("Implementatiehandleiding Open
en gesloten autorisatievraag" 3.8.2) as implemented by the nuts-knooppunt Mitz component
(``component/mitz/xacml/xacml.go``) and summarised in DUTCH-CONTEXT.md §1.4. They are collected in
:data:`ATTRIBUTE_IDS`. Values are HL7 v3 ``InstanceIdentifier`` (``urn:hl7-org:v3#II``) for identifiers and
``CodedValue`` (``urn:hl7-org:v3#CV``) for codes. XML namespaces live here rather than in
``xds/namespaces.py`` because only this adapter speaks XACML.

Mapping an XDS classCode to a Mitz "gegevenscategorie" is the caller's job: ``AccessRequest.category``
(``code^^system`` or a bare code, then of :data:`MITZ_CATEGORY_SYSTEM`) is sent as given, an empty category
as ``MitzSettings.default_category``.

References
----------
Mitz Implementatiehandleiding Open en gesloten autorisatievraag 3.8.2 (VZVZ); OASIS XACML 3.0 core (wd-17)
§5.42-5.48 (Request, Attributes, Response, Result, Decision); OASIS SAML 2.0 profile of XACML v2.0
(XACMLAuthzDecisionQuery); IHE ITI APPC (2016) attribute ids; W3C SOAP 1.2 Part 1; WS-Addressing 1.0;
DUTCH-CONTEXT.md §1.4; ARCHITECTURE.md §7.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import httpx
from lxml import etree
from lxml.builder import ElementMaker

from xds import __version__
from xds.consent.model import PURPOSE_EMERGENCY, PURPOSE_TREATMENT, AccessRequest, Decision, deny, permit
from xds.ebrim.parser import parse_xml
from xds.namespaces import SOAP12, qn
from xds.security.tls import client_context
from xds.soap.envelope import request_envelope, soap_content_type
from xds.soap.faults import new_message_id

XacmlDecision = Literal["Permit", "Deny", "NotApplicable", "Indeterminate"]

XACML: Final = "urn:oasis:names:tc:xacml:3.0:core:schema:wd-17"
"""XACML 3.0 core schema namespace (Request, Attributes, Response, Result, Decision)."""
XACML_SAMLP: Final = "urn:oasis:names:tc:xacml:3.0:profile:saml2.0:v2:schema:protocol:wd-14"
"""SAML 2.0 profile of XACML, protocol namespace (``XACMLAuthzDecisionQuery``)."""
HL7V3: Final = "urn:hl7-org:v3"

ACTION: Final = "XACMLAuthorizationDecisionQueryRequest"
"""``wsa:Action`` of the closed question, as Mitz expects it (not a URI)."""

CATEGORY_RESOURCE: Final = "urn:oasis:names:tc:xacml:3.0:attribute-category:resource"
CATEGORY_ACTION: Final = "urn:oasis:names:tc:xacml:3.0:attribute-category:action"
CATEGORY_SUBJECT: Final = "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject"
CATEGORY_ENVIRONMENT: Final = "urn:oasis:names:tc:xacml:3.0:attribute-category:environment"

ATTRIBUTE_IDS: Final[Mapping[str, str]] = {
    "patient_bsn": "urn:oasis:names:tc:xacml:2.0:resource:resource-id",
    "data_holder_ura": "urn:ihe:iti:appc:2016:author-institution:id",
    "data_holder_type": "urn:ihe:iti:appc:2016:document-entry:healthcare-facility-type-code",
    "data_category": "urn:ihe:iti:appc:2016:document-entry:event-code",
    "requester_role": "urn:oasis:names:tc:xacml:2.0:subject:role",
    "requester_id": "urn:ihe:iti:xua:2017:subject:provider-identifier",
    "requester_ura": "urn:nl:otv:names:tc:1.0:subject:provider-institution",
    "requester_type": "urn:nl:otv:names:tc:1.0:subject:consulting-healthcare-facility-type-code",
    "purpose_of_use": "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse",
}
"""The Mitz XACML attribute ids, by what they carry (see "Attribute ids" above)."""

BSN_ROOT: Final = "2.16.840.1.113883.2.4.6.3"
"""OID of the Dutch citizen service number (BSN)."""
URA_ROOT: Final = "2.16.528.1.1007.3.3"
"""OID of the URA (UZI register number of a care organisation)."""
UZI_ROOT: Final = "2.16.528.1.1007.3.1"
"""OID of the UZI number of a care professional."""
CARE_PROVIDER_TYPE_SYSTEM: Final = "2.16.840.1.113883.2.4.15.1060"
"""Code system of the Mitz "zorgaanbiedercategorie" (e.g. V4 hospital, Z3 general practice)."""
MITZ_CATEGORY_SYSTEM: Final = "2.16.840.1.113883.2.4.3.111.5.10.1"
"""Code system of the Mitz "gegevenscategorie" (e.g. GGC002 general, GGC012 lab)."""
UZI_ROLE_SYSTEM: Final = "2.16.840.1.113883.2.4.15.111"
"""Code system of UZI role codes (e.g. 01.015 medical specialist)."""
PURPOSE_SYSTEM: Final = "2.16.840.1.113883.1.11.20448"
"""HL7 v3 PurposeOfUse value set."""

_PURPOSE_CODES: Final[Mapping[str, str]] = {PURPOSE_TREATMENT: "TREAT", PURPOSE_EMERGENCY: "ETREAT"}
"""Our purposeOfUse names to HL7 v3 PurposeOfUse codes; other values are sent as given (e.g. ``COC``)."""
_DECISIONS: Final[Mapping[str, XacmlDecision]] = {
    "Permit": "Permit",
    "Deny": "Deny",
    "NotApplicable": "NotApplicable",
    "Indeterminate": "Indeterminate",
}

MAX_ANSWER_BYTES: Final = 1024 * 1024
"""Largest Mitz answer read (one decision needs a few kilobytes)."""
MAX_CACHE_SECONDS: Final = 300
CACHE_ENTRIES: Final = 10_000
_USER_AGENT: Final = f"xds-node/{__version__}"
_X = ElementMaker(namespace=XACML, nsmap={None: XACML})
_H = ElementMaker(namespace=HL7V3, nsmap={None: HL7V3})
_Q = ElementMaker(namespace=XACML_SAMLP, nsmap={"xacml-samlp": XACML_SAMLP})


class MitzFault(ValueError):
    """Mitz answered with a SOAP fault; ``reason`` is its text."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"SOAP fault: {reason}")
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class MitzSettings:
    """Where and how to ask Mitz: the ``[consent.mitz]`` table of the configuration."""

    url: str
    """Endpoint of the closed question, e.g. ``https://.../geslotenautorisatievraag/xacml3``."""
    timeout: float = 3.0
    """Seconds for the whole exchange (connect, send, answer)."""
    ca_file: str = ""
    """CA bundle that signs Mitz's server certificate ("" = the system trust store)."""
    cert_file: str = ""
    """Our client certificate (PEM) for mutual TLS; may hold the key too."""
    key_file: str = ""
    cache_seconds: int = 60
    """How long a Permit/Deny is reused, 0 (never) to 300."""
    data_holder_ura: str = ""
    """Our URA, used when the AccessRequest names no data holder."""
    care_provider_type: str = ""
    """Our Mitz zorgaanbiedercategorie code (system :data:`CARE_PROVIDER_TYPE_SYSTEM`)."""
    default_category: str = "GGC002"
    """The Mitz gegevenscategorie asked for a request without a category."""

    def __post_init__(self) -> None:
        _check_url(self.url)
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float) or not self.timeout > 0:
            raise ValueError(f"timeout must be a number of seconds > 0, got {self.timeout!r}")
        cache = self.cache_seconds
        if isinstance(cache, bool) or not isinstance(cache, int) or not 0 <= cache <= MAX_CACHE_SECONDS:
            raise ValueError(
                f"cache_seconds must be a whole number of seconds from 0 to {MAX_CACHE_SECONDS}, got {cache!r}"
            )
        if self.key_file and not self.cert_file:
            raise ValueError("key_file is given without cert_file: mutual TLS needs the certificate")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, check_files: bool = True) -> MitzSettings:
        """Settings from a ``[consent.mitz]`` table; ``ValueError`` names the offending key (unknown, missing,
        wrong type, out of range, or with ``check_files`` a TLS file that does not exist)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"[consent.mitz] must be a table of keys, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise ValueError(
                f"unknown key(s) in [consent.mitz]: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        if not data.get("url"):
            raise ValueError("url is required in [consent.mitz]")
        for key in known - {"timeout", "cache_seconds"}:
            if key in data and not isinstance(data[key], str):
                raise ValueError(f"{key} must be a string, got {data[key]!r}")
        if check_files:
            for key in ("ca_file", "cert_file", "key_file"):
                if data.get(key) and not os.path.isfile(data[key]):
                    raise ValueError(f"{key}: no such file: {data[key]}")
        return cls(**data)


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise ValueError(f"url must be an http or https URL with a host, got {url!r}")


@dataclass(frozen=True, slots=True)
class Question:
    """Every attribute sent to Mitz for one AccessRequest; the cache key. Empty optional ones are left out."""

    bsn: str
    holder_ura: str
    holder_type: str
    category: tuple[str, str]
    role: tuple[str, str]
    requester_id: str
    requester_ura: str
    requester_type: str
    purpose: str


def question(req: AccessRequest, settings: MitzSettings) -> Question:
    """What to ask Mitz about ``req``; ``ValueError`` when the patient's BSN or our URA is unknown."""
    bsn = req.bsn or req.patient_id.split("^", 1)[0]
    holder = req.data_holder or settings.data_holder_ura
    if not bsn:
        raise ValueError("the patient has no BSN")
    if not holder:
        raise ValueError("no data holder URA (data_holder_ura)")
    who = req.requester
    return Question(
        bsn=bsn,
        holder_ura=holder,
        holder_type=settings.care_provider_type,
        category=_coded(req.category or settings.default_category, MITZ_CATEGORY_SYSTEM),
        role=_coded(who.role, UZI_ROLE_SYSTEM),
        requester_id=who.user_id,
        requester_ura=who.organisation_id,
        requester_type=who.care_provider_type,
        purpose=_PURPOSE_CODES.get(who.purpose_of_use, who.purpose_of_use),
    )


def _coded(value: str, default_system: str) -> tuple[str, str]:
    """``code^^system`` or a bare code (of ``default_system``) as (code, system)."""
    code, _, system = value.partition("^^")
    if not code:
        return "", ""
    return code, system or default_system


def render_request(req: AccessRequest, settings: MitzSettings, *, message_id: str | None = None) -> bytes:
    """The SOAP 1.2 envelope of the closed question about ``req`` (``ValueError`` as :func:`question`).

    References
    ----------
    XACML 3.0 core §5.42 (Request); SAML 2.0 profile of XACML (XACMLAuthzDecisionQuery); Mitz 3.8.2.
    """
    return _envelope(question(req, settings), req.at, settings.url, message_id or new_message_id())


def _envelope(q: Question, at: datetime, url: str, message_id: str) -> bytes:
    instant = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
    query = _Q.XACMLAuthzDecisionQuery(
        _request(q),
        {
            "ID": "_" + message_id.rpartition(":")[2],
            "Version": "2.0",
            "IssueInstant": instant.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    return request_envelope(action=ACTION, body=query, to=url, message_id=message_id)


def _request(q: Question) -> etree._Element:
    a = ATTRIBUTE_IDS
    resource = [_ii(a["patient_bsn"], BSN_ROOT, q.bsn), _ii(a["data_holder_ura"], URA_ROOT, q.holder_ura)]
    if q.holder_type:
        resource.append(_cv(a["data_holder_type"], q.holder_type, CARE_PROVIDER_TYPE_SYSTEM))
    subject = []
    if q.role[0]:
        subject.append(_cv(a["requester_role"], *q.role))
    if q.requester_id:
        subject.append(_ii(a["requester_id"], UZI_ROOT, q.requester_id))
    if q.requester_ura:
        subject.append(_ii(a["requester_ura"], URA_ROOT, q.requester_ura))
    if q.requester_type:
        subject.append(_cv(a["requester_type"], q.requester_type, CARE_PROVIDER_TYPE_SYSTEM))
    environment = [_cv(a["purpose_of_use"], q.purpose, PURPOSE_SYSTEM)] if q.purpose else []
    return _X.Request(
        _X.Attributes(*resource, Category=CATEGORY_RESOURCE),
        _X.Attributes(_cv(a["data_category"], *q.category), Category=CATEGORY_ACTION),
        _X.Attributes(*subject, Category=CATEGORY_SUBJECT),
        _X.Attributes(*environment, Category=CATEGORY_ENVIRONMENT),
        CombinedDecision="false",
        ReturnPolicyIdList="false",
    )


def _ii(attribute_id: str, root: str, extension: str) -> etree._Element:
    """An attribute whose value is an HL7 v3 InstanceIdentifier (``urn:hl7-org:v3#II``)."""
    value = _H.InstanceIdentifier(root=root, extension=extension)
    return _attribute(attribute_id, "urn:hl7-org:v3#II", value)


def _cv(attribute_id: str, code: str, system: str) -> etree._Element:
    """An attribute whose value is an HL7 v3 CodedValue (``urn:hl7-org:v3#CV``)."""
    value = _H.CodedValue(code=code, codeSystem=system)
    return _attribute(attribute_id, "urn:hl7-org:v3#CV", value)


def _attribute(attribute_id: str, data_type: str, value: etree._Element) -> etree._Element:
    return _X.Attribute(_X.AttributeValue(value, DataType=data_type), AttributeId=attribute_id, IncludeInResult="true")


def parse_decision(body: bytes, *, max_bytes: int = MAX_ANSWER_BYTES) -> XacmlDecision:
    """The one XACML decision of a SOAP 1.2 answer (``Response/Result/Decision``, anywhere in ``env:Body``, so
    bare or wrapped in a SAML assertion).

    Raises
    ------
    MitzFault
        The body is a SOAP fault.
    ValueError
        Anything else unexpected: not XML (or a DTD, too large, too deep), not a SOAP 1.2 envelope, no or more
        than one Response/Result/Decision, a decision that is not one of XACML's four.

    References
    ----------
    XACML 3.0 core §5.47-5.48 ("Decision ... Permit, Deny, Indeterminate, NotApplicable"); SOAP 1.2 Part 1 §5.4.
    """
    root = parse_xml(body, max_bytes=max_bytes)
    if root.tag != qn(SOAP12, "Envelope"):
        raise ValueError(f"not a SOAP 1.2 envelope: <{etree.QName(root).text}>")
    soap_body = root.find(qn(SOAP12, "Body"))
    if soap_body is None:
        raise ValueError("the SOAP envelope has no Body")
    fault = soap_body.find(qn(SOAP12, "Fault"))
    if fault is not None:
        raise MitzFault(" ".join(t.strip() for t in fault.itertext() if t.strip())[:300])
    response = _only(soap_body.findall(f".//{qn(XACML, 'Response')}"), "xacml:Response")
    result = _only(response.findall(qn(XACML, "Result")), "xacml:Result")
    decision = _only(result.findall(qn(XACML, "Decision")), "xacml:Decision")
    text = (decision.text or "").strip()
    if text not in _DECISIONS:
        raise ValueError(f"not an XACML decision: {text[:40]!r}")
    return _DECISIONS[text]


def _only(found: list[etree._Element], what: str) -> etree._Element:
    if len(found) != 1:
        raise ValueError(f"expected one {what}, found {len(found)}")
    return found[0]


class _AnswerTooLarge(Exception):
    pass


class _Overtime(Exception):
    pass


class _Cache:
    """Permit/Deny decisions by :class:`Question` for ``ttl`` seconds; at most ``size`` entries, oldest out."""

    def __init__(self, ttl: float, size: int, clock: Callable[[], float]) -> None:
        self._ttl, self._size, self._clock = ttl, size, clock
        self._entries: OrderedDict[Question, tuple[float, Decision]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Question) -> Decision | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self._clock() >= entry[0]:
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: Question, decision: Decision) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + self._ttl, decision)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class MitzPolicy:
    """A :class:`~xds.consent.model.ConsentPolicy` asking Mitz's closed question (see the module docstring)."""

    name = "mitz"

    def __init__(
        self,
        settings: MitzSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        self.settings = settings
        self.max_answer_bytes = max_answer_bytes
        self.cache = _Cache(settings.cache_seconds, cache_entries, clock)
        self._client = httpx.Client(
            verify=_ssl_context(settings),
            timeout=settings.timeout,
            trust_env=False,
            follow_redirects=False,
            headers={"user-agent": _USER_AGENT},
        )

    def decide(self, request: AccessRequest) -> Decision:
        """Permit only on Mitz's ``Permit``; deny with a reason on anything else (never raises for a failure)."""
        try:
            q = question(request, self.settings)
        except ValueError as exc:
            return deny(self.name, f"Mitz not asked: {exc}")
        cached = self.cache.get(q)
        if cached is not None:
            return cached
        message_id = new_message_id()
        try:
            envelope = _envelope(q, request.at, self.settings.url, message_id)
        except ValueError as exc:  # lxml refuses characters XML cannot carry
            return deny(self.name, f"Mitz not asked: {exc}")
        answer = self._ask(envelope, message_id)
        if answer == "Permit":
            decision = permit(self.name, "Mitz: Permit")
        elif answer == "Deny":
            decision = deny(self.name, "Mitz: Deny")
        elif answer in _DECISIONS:
            return deny(self.name, f"Mitz answered {answer} (fail closed)")
        else:
            return deny(self.name, f"Mitz unavailable: {answer}")
        self.cache.put(q, decision)
        return decision

    def _ask(self, envelope: bytes, message_id: str) -> XacmlDecision | str:
        """Mitz's decision, or why there is none."""
        timeout = self.settings.timeout
        try:
            status, raw = self._exchange(envelope, message_id, time.monotonic() + timeout)
        except (httpx.TimeoutException, _Overtime):
            return f"no answer within {timeout:g} s"
        except _AnswerTooLarge:
            return f"answer larger than {self.max_answer_bytes} bytes"
        except httpx.ConnectError as exc:
            return f"cannot connect: {_why(exc)}"
        except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
            return f"{type(exc).__name__}: {_why(exc)}"
        try:
            decision = parse_decision(raw, max_bytes=self.max_answer_bytes)
        except MitzFault as fault:
            return f"SOAP fault (HTTP {status}): {fault.reason}"
        except ValueError as exc:
            return f"HTTP {status}" if status != 200 else f"unusable answer: {exc}"
        return decision if status == 200 else f"HTTP {status}"

    def _exchange(self, envelope: bytes, message_id: str, deadline: float) -> tuple[int, bytes]:
        """POST ``envelope``; the status and the body, read until ``deadline`` and at most max_answer_bytes."""
        headers = {"content-type": soap_content_type(ACTION), "x-request-id": message_id.rpartition(":")[2]}
        with self._client.stream("POST", self.settings.url, content=envelope, headers=headers) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.max_answer_bytes:
                    raise _AnswerTooLarge
                if time.monotonic() > deadline:
                    raise _Overtime
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _ssl_context(settings: MitzSettings) -> ssl.SSLContext:
    return client_context(settings.ca_file, settings.cert_file, settings.key_file)


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


__all__ = [
    "ACTION",
    "ATTRIBUTE_IDS",
    "MAX_ANSWER_BYTES",
    "XACML",
    "XACML_SAMLP",
    "MitzFault",
    "MitzPolicy",
    "MitzSettings",
    "Question",
    "XacmlDecision",
    "parse_decision",
    "question",
    "render_request",
]
