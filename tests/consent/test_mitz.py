"""MitzPolicy against a real HTTPS decision point requiring client certificates (tests/consent/_pdp.py)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.consent._pdp import Pdp, Pki, attribute_values, decision_envelope, make_pki, running
from xds.consent.mitz import (
    ATTRIBUTE_IDS,
    XACML,
    MitzFault,
    MitzPolicy,
    MitzSettings,
    parse_decision,
    render_request,
)
from xds.consent.model import PURPOSE_EMERGENCY, AccessRequest, Decision, Requester
from xds.ebrim.parser import parse_xml
from xds.namespaces import SOAP12, qn
from xds.soap.envelope import render_envelope

BSN = "999999990"
HOLDER = "12345678"
REQUESTER = Requester(user_id="900000001", role="01.015", organisation_id="87654321", care_provider_type="Z3")
REQUEST = AccessRequest(
    patient_id=f"{BSN}^^^&2.16.840.1.113883.2.4.6.3&ISO",
    requester=REQUESTER,
    at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
    category="GGC012",
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(pki: Pki) -> Iterator[tuple[Pdp, str]]:
    pdp = Pdp()
    with running(pdp, pki) as url:
        yield pdp, url


@pytest.fixture
def pdp(server: tuple[Pdp, str]) -> Pdp:
    server[0].reset()
    return server[0]


@pytest.fixture
def settings(server: tuple[Pdp, str], pki: Pki) -> MitzSettings:
    return MitzSettings(
        url=server[1],
        timeout=2.0,
        ca_file=str(pki.ca),
        cert_file=str(pki.client_cert),
        key_file=str(pki.client_key),
        data_holder_ura=HOLDER,
        care_provider_type="V4",
    )


def decide(settings: MitzSettings, request: AccessRequest = REQUEST, **kwargs: Any) -> Decision:
    policy = MitzPolicy(settings, **kwargs)
    try:
        return policy.decide(request)
    finally:
        policy.close()


# --- decisions ---------------------------------------------------------------------------------------------


def test_permit(pdp: Pdp, settings: MitzSettings) -> None:
    decision = decide(settings)
    assert decision.permit is True
    assert (decision.policy, decision.reason) == ("mitz", "Mitz: Permit")
    assert len(pdp.requests) == 1


def test_deny_by_bsn(pdp: Pdp, settings: MitzSettings) -> None:
    pdp.decisions[BSN] = "Deny"
    assert decide(settings) == Decision(False, "mitz", "Mitz: Deny")
    other = replace(REQUEST, bsn="111222333")
    assert decide(settings, other).permit is True  # the answer really depends on the BSN asked


@pytest.mark.parametrize("answer", ["NotApplicable", "Indeterminate"])
def test_undecided_answers_deny(pdp: Pdp, settings: MitzSettings, answer: str) -> None:
    pdp.default = answer
    decision = decide(settings)
    assert decision.permit is False
    assert answer in decision.reason


FAILURES = [
    # (mode, words in the deny reason)
    ("fault", "SOAP fault (HTTP 500): "),
    ("http500", "HTTP 500"),
    ("garbage", "unusable answer"),
    ("oversize", "answer larger than 1048576 bytes"),
]


@pytest.mark.parametrize(("mode", "reason"), FAILURES)
def test_failures_deny_with_a_reason(pdp: Pdp, settings: MitzSettings, mode: Any, reason: str) -> None:
    pdp.mode = mode
    decision = decide(settings)
    assert decision.permit is False
    assert decision.reason.startswith("Mitz unavailable: ")
    assert reason in decision.reason
    assert len(pdp.requests) == 1


def test_fault_reason_carries_the_fault_text(pdp: Pdp, settings: MitzSettings) -> None:
    pdp.mode = "fault"
    assert "PDP is in maintenance" in decide(settings).reason


def test_timeout_denies(pdp: Pdp, settings: MitzSettings) -> None:
    pdp.delay = 0.8
    started = time.monotonic()
    decision = decide(replace(settings, timeout=0.25))
    assert time.monotonic() - started < 0.7
    assert decision == Decision(False, "mitz", "Mitz unavailable: no answer within 0.25 s")


def test_connection_refused_denies(settings: MitzSettings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    decision = decide(replace(settings, url=f"https://127.0.0.1:{port}/x"))
    assert decision.permit is False
    assert decision.reason.startswith("Mitz unavailable: cannot connect")


def test_a_server_of_another_ca_is_not_trusted(pdp: Pdp, settings: MitzSettings, pki: Pki) -> None:
    decision = decide(replace(settings, ca_file=str(pki.other_ca)))
    assert decision.permit is False
    assert "certificate verify failed" in decision.reason.lower()
    assert pdp.requests == []  # the question never left


@pytest.mark.parametrize("client", ["none", "stranger"])
def test_the_server_refuses_clients_without_a_trusted_certificate(
    pdp: Pdp, settings: MitzSettings, pki: Pki, client: str
) -> None:
    cert, key = ("", "") if client == "none" else (str(pki.stranger_cert), str(pki.stranger_key))
    decision = decide(replace(settings, cert_file=cert, key_file=key))
    assert decision.permit is False
    assert decision.reason.startswith("Mitz unavailable: ")
    assert pdp.requests == []


def test_without_a_bsn_mitz_is_not_asked(pdp: Pdp, settings: MitzSettings) -> None:
    decision = decide(settings, replace(REQUEST, patient_id="", bsn=""))
    assert decision == Decision(False, "mitz", "Mitz not asked: the patient has no BSN")
    assert pdp.requests == []


# --- what is asked -----------------------------------------------------------------------------------------


def test_the_question_carries_every_attribute(pdp: Pdp, settings: MitzSettings) -> None:
    decide(settings)
    assert len(pdp.requests) == 1
    asked = attribute_values(pdp.requests[0])
    a = ATTRIBUTE_IDS
    assert asked == {
        a["patient_bsn"]: f"{BSN}^^2.16.840.1.113883.2.4.6.3",
        a["data_holder_ura"]: f"{HOLDER}^^2.16.528.1.1007.3.3",
        a["data_holder_type"]: "V4^^2.16.840.1.113883.2.4.15.1060",
        a["data_category"]: "GGC012^^2.16.840.1.113883.2.4.3.111.5.10.1",
        a["requester_role"]: "01.015^^2.16.840.1.113883.2.4.15.111",
        a["requester_id"]: "900000001^^2.16.528.1.1007.3.1",
        a["requester_ura"]: "87654321^^2.16.528.1.1007.3.3",
        a["requester_type"]: "Z3^^2.16.840.1.113883.2.4.15.1060",
        a["purpose_of_use"]: "TREAT^^2.16.840.1.113883.1.11.20448",
    }
    root = parse_xml(pdp.requests[0])
    assert root.findtext(f"{{{SOAP12}}}Header/{{http://www.w3.org/2005/08/addressing}}Action") == (
        "XACMLAuthorizationDecisionQueryRequest"
    )
    categories = [e.get("Category", "").rsplit(":", 1)[1] for e in root.iter(qn(XACML, "Attributes"))]
    assert categories == ["resource", "action", "access-subject", "environment"]


def test_render_request_is_built_by_lxml_not_by_concatenation(settings: MitzSettings) -> None:
    hostile = replace(REQUEST, bsn='1"/><x a="&amp;', requester=replace(REQUESTER, role="<script>^^1.2"))
    asked = attribute_values(render_request(hostile, settings, message_id="urn:uuid:1"))
    assert asked[ATTRIBUTE_IDS["patient_bsn"]].startswith('1"/><x a="&amp;^^')
    assert asked[ATTRIBUTE_IDS["requester_role"]] == "<script>^^1.2"


def test_an_empty_category_asks_the_default_and_purposes_are_coded(settings: MitzSettings) -> None:
    request = replace(REQUEST, category="", requester=replace(REQUESTER, purpose_of_use=PURPOSE_EMERGENCY))
    asked = attribute_values(render_request(request, settings))
    assert asked[ATTRIBUTE_IDS["data_category"]] == "GGC002^^2.16.840.1.113883.2.4.3.111.5.10.1"
    assert asked[ATTRIBUTE_IDS["purpose_of_use"]].startswith("ETREAT^^")


# --- cache -------------------------------------------------------------------------------------------------


def test_decisions_are_cached_for_cache_seconds(pdp: Pdp, settings: MitzSettings) -> None:
    clock = FakeClock()
    policy = MitzPolicy(settings, clock=clock)
    try:
        assert policy.decide(REQUEST).permit
        clock.now += 59.9
        assert policy.decide(REQUEST).permit
        assert len(pdp.requests) == 1
        policy.decide(replace(REQUEST, category="GGC013"))
        assert len(pdp.requests) == 2  # another attribute is another question
        pdp.decisions[BSN] = "Deny"
        clock.now += 0.2
        assert policy.decide(REQUEST) == Decision(False, "mitz", "Mitz: Deny")  # asked again after 60 s
        assert len(pdp.requests) == 3
    finally:
        policy.close()


@pytest.mark.parametrize("mode", ["fault", "garbage"])
def test_failures_are_not_cached(pdp: Pdp, settings: MitzSettings, mode: Any) -> None:
    pdp.mode = mode
    policy = MitzPolicy(settings, clock=FakeClock())
    try:
        assert not policy.decide(REQUEST).permit
        pdp.mode = "decide"
        assert policy.decide(REQUEST).permit
        assert len(pdp.requests) == 2
    finally:
        policy.close()


def test_not_applicable_is_not_cached(pdp: Pdp, settings: MitzSettings) -> None:
    pdp.default = "NotApplicable"
    policy = MitzPolicy(settings, clock=FakeClock())
    try:
        policy.decide(REQUEST)
        policy.decide(REQUEST)
        assert len(pdp.requests) == 2
    finally:
        policy.close()


def test_cache_seconds_zero_never_caches(pdp: Pdp, settings: MitzSettings) -> None:
    decide_twice = MitzPolicy(replace(settings, cache_seconds=0), clock=FakeClock())
    try:
        decide_twice.decide(REQUEST)
        decide_twice.decide(REQUEST)
        assert len(pdp.requests) == 2
    finally:
        decide_twice.close()


def test_the_cache_is_bounded_oldest_out(pdp: Pdp, settings: MitzSettings) -> None:
    policy = MitzPolicy(settings, clock=FakeClock(), cache_entries=2)
    try:
        for bsn in ("100000001", "100000002", "100000003"):
            policy.decide(replace(REQUEST, bsn=bsn))
        assert len(policy.cache) == 2
        policy.decide(replace(REQUEST, bsn="100000003"))
        assert len(pdp.requests) == 3
        policy.decide(replace(REQUEST, bsn="100000001"))  # evicted: asked again
        assert len(pdp.requests) == 4
    finally:
        policy.close()


def test_concurrent_decisions_from_worker_threads(pdp: Pdp, settings: MitzSettings) -> None:
    pdp.decisions["100000002"] = "Deny"
    policy = MitzPolicy(settings, clock=FakeClock())
    requests = [replace(REQUEST, bsn=f"10000000{i % 4}") for i in range(24)]
    try:
        with ThreadPoolExecutor(8) as pool:
            decisions = list(pool.map(policy.decide, requests))
    finally:
        policy.close()
    assert [d.permit for d in decisions] == [r.bsn != "100000002" for r in requests]
    assert 4 <= len(pdp.requests) <= 24
    assert len(policy.cache) == 4


# --- the answer parser -------------------------------------------------------------------------------------


def _wrapped(decision: str) -> bytes:
    saml = "urn:oasis:names:tc:SAML:2.0:assertion"
    statement = etree.Element(qn(saml, "Assertion"))
    response = parse_xml(decision_envelope(decision)).find(f".//{qn(XACML, 'Response')}")
    assert response is not None
    statement.append(response)
    return render_envelope(action="a", body=statement)


PARSE_CASES = [
    (decision_envelope("Permit"), "Permit"),
    (decision_envelope(" Deny\n"), "Deny"),
    (_wrapped("NotApplicable"), "NotApplicable"),
    (decision_envelope("Indeterminate"), "Indeterminate"),
]


@pytest.mark.parametrize(("body", "expected"), PARSE_CASES)
def test_parse_decision(body: bytes, expected: str) -> None:
    assert parse_decision(body) == expected


BAD_ANSWERS = [
    (decision_envelope("permit"), "not an XACML decision"),
    (decision_envelope(""), "not an XACML decision"),
    (render_envelope(action="a", body=b"<x/>"), "expected one xacml:Response, found 0"),
    (decision_envelope("Permit").replace(b"<Result>", b"<Result/><Result>"), "expected one xacml:Result, found 2"),
    (b"<Response/>", "not a SOAP 1.2 envelope"),
    (b'<!DOCTYPE x [<!ENTITY a "b">]><x/>', "DTD"),
    (b"\xff", "not well-formed"),
]


@pytest.mark.parametrize(("body", "message"), BAD_ANSWERS)
def test_parse_decision_refuses_the_unexpected(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_decision(body)


def test_parse_decision_raises_a_fault_as_mitz_fault() -> None:
    fault = (
        f'<env:Envelope xmlns:env="{SOAP12}"><env:Body><env:Fault><env:Code><env:Value>env:Receiver</env:Value>'
        "</env:Code><env:Reason><env:Text>down</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>"
    )
    with pytest.raises(MitzFault) as info:
        parse_decision(fault.encode())
    assert info.value.reason == "env:Receiver down"


# --- settings ----------------------------------------------------------------------------------------------


def test_settings_from_mapping(pki: Pki) -> None:
    table = {"url": "https://mitz.example/q", "ca_file": str(pki.ca), "cache_seconds": 300, "timeout": 1.5}
    settings = MitzSettings.from_mapping(table)
    assert (settings.url, settings.cache_seconds, settings.timeout) == ("https://mitz.example/q", 300, 1.5)
    assert MitzSettings(url="https://x").timeout == 3 and MitzSettings(url="https://x").cache_seconds == 60


BAD_SETTINGS = [
    ({"url": "https://x", "cache_seconds": 301}, "cache_seconds"),
    ({"url": "https://x", "cache_seconds": -1}, "cache_seconds"),
    ({"url": "https://x", "cache_seconds": True}, "cache_seconds"),
    ({"timeout": 3}, "url is required"),
    ({"url": "ftp://x"}, "url must be an http or https URL"),
    ({"url": "https://x:99999/"}, "url must be"),
    ({"url": "https://x", "timeout": 0}, "timeout"),
    ({"url": "https://x", "timeout": "3"}, "timeout"),
    ({"url": "https://x", "colour": "red"}, "unknown key.*colour"),
    ({"url": "https://x", "data_holder_ura": 12345678}, "data_holder_ura must be a string"),
    ({"url": "https://x", "ca_file": "/no/such/file.pem"}, "ca_file: no such file"),
    ({"url": "https://x", "key_file": __file__}, "key_file is given without cert_file"),
]


@pytest.mark.parametrize(("table", "message"), BAD_SETTINGS)
def test_bad_settings_name_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MitzSettings.from_mapping(table)


def test_settings_check_their_invariants_without_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cache_seconds"):
        MitzSettings(url="https://x", cache_seconds=301)
    assert MitzSettings.from_mapping({"url": "https://x", "ca_file": str(tmp_path / "nope")}, check_files=False)
