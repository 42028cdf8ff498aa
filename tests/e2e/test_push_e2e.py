"""Push (issue 6) end to end: three ``xds serve`` nodes and a real SMTP server, over real sockets.

Node A sends; its directory (``xds community add``) holds hospital B, whose Document Recipient
(``/xdr/recipient``) it pushes to by XDR, and clinic C, which has no push URL, only an XDM e-mail address. B has
a radiology mailbox (department Radiologie of organisation 00010990) with a short quiet period and a
notification address, an emergency mailbox (Spoed) with a long one, and a default mailbox. C runs the SMTP
listener for XDM by e-mail. Every node's ``[smtp]`` is an aiosmtpd server in this test process that keeps every
mail with the time it arrived; the test itself is the mail transport between A and C (it relays A's XDM mail to
C's listener).

The proof, one test per step: a push to B is listed in B's radiology mailbox with its message and imported by
``xds inbox accept`` (the bytes come back from B's repository); a push to C is mailed as XDM, C's listener takes
it (250), answers with an MDN to A and ``xds inbox accept`` imports it; thirty pushes inside the quiet period give
one digest, without patient data; an urgent push is notified at once; a digest pending when B stops is mailed
once after B starts again. SOAP messages this test sends and receives are checked against the XSDs. Every node
uses each configured backend.
"""

from __future__ import annotations

import dataclasses
import email
import json
import smtplib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from lxml import etree

from tests.conftest import backends
from tests.e2e._node import NodeFiles, free_port, new_node, serving
from tests.support import read_mtom, xop_decoded
from tests.xsd import assert_valid
from xds import samples
from xds import vocabulary as v
from xds.client import SoapClient
from xds.ebrim import messages, xdsb
from xds.ebrim.parser import parse_xml
from xds.model.hl7 import CX
from xds.model.messages import DocumentRequest, QueryParameter, RetrieveRequest, StoredQueryRequest
from xds.model.metadata import Submission
from xds.model.rim import text
from xds.namespaces import RIM, SOAP12, qn
from xds.soap import mtom
from xds.soap.envelope import request_envelope, soap_content_type

pytestmark = pytest.mark.e2e

_T = TypeVar("_T")

BSN = "2.16.840.1.113883.2.4.6.3"
PATIENT = f"999911120^^^&{BSN}&ISO"
"""The patient of the pushes by ``xds push`` (steps 2 and 3), fed in A, B and C."""
FLOOD_PATIENT = f"999911132^^^&{BSN}&ISO"
URGENT_PATIENT = f"999911144^^^&{BSN}&ISO"
RESTART_PATIENT = f"999911156^^^&{BSN}&ISO"
"""One patient per digest test: a digest is per mailbox and patient, so the tests do not share one."""
HOMES = {
    "a": "urn:oid:1.3.6.1.4.1.21367.2017.2.6.401",
    "b": "urn:oid:1.3.6.1.4.1.21367.2017.2.6.402",
    "c": "urn:oid:1.3.6.1.4.1.21367.2017.2.6.403",
}
REPOSITORIES = {
    "a": "1.3.6.1.4.1.21367.2017.2.3.401",
    "b": "1.3.6.1.4.1.21367.2017.2.3.402",
    "c": "1.3.6.1.4.1.21367.2017.2.3.403",
}
ORGANISATION = "00010990"
RADIOLOGY = f"Radiologie^^^^^^^^^{ORGANISATION}"
"""intendedRecipient XON: department name in XON.1, the URA in XON.10."""
RADIOLOGY_NOTIFY = "radiologie@b.example"
SPOED_NOTIFY = "spoed@b.example"
CLINIC_XDM = "xdm@clinic.example"
SENDERS = {"a": "xds@a.example", "b": "xds@b.example", "c": "xds@clinic.example"}
RADIOLOGY_QUIET = 5.0
"""Seconds: long enough for 30 pushes to stay inside one quiet period and for B to restart inside it."""
SPOED_QUIET = 10.0
URGENT_WITHIN = 2.5
"""Seconds after the urgent push was acknowledged by which its digest must have arrived (the sender wakes every
second; the rest is slack for a loaded two-core machine); far below the mailbox's quiet period."""
EARLY = 0.3
"""Seconds a digest may seem to arrive before its quiet period ends (the node's clock and ours, rounding)."""
SETTLE = 2.5
"""Seconds to wait after a digest for a duplicate (more than two passes of the digest sender)."""
FLOOD = 30
RESTARTED = 4


# -- the SMTP server ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mail:
    """One mail as the SMTP server got it, with ``time.monotonic()`` at its arrival."""

    at: float
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=policy.default)

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(cast(EmailMessage, part).get_content())


class Recorder:
    """aiosmtpd handler: accepts every recipient and keeps every mail."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mails: list[Mail] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content
        assert isinstance(content, bytes)
        mail = Mail(time.monotonic(), envelope.mail_from or "", tuple(envelope.rcpt_tos), content)
        with self._lock:
            self._mails.append(mail)
        return "250 2.0.0 OK"

    def mails(self, to: str) -> list[Mail]:
        """The mails so far with ``to`` among the envelope recipients."""
        with self._lock:
            return [m for m in self._mails if to in m.rcpt_tos]


def until(what: str, check: Callable[[], _T | None], timeout: float) -> _T:
    """Poll ``check`` until it returns something true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout:.1f} s")
        time.sleep(0.05)


def digests(recorder: Recorder, to: str, references: Sequence[str]) -> list[Mail]:
    """The digest mails to ``to`` that name any of ``references``."""
    return [m for m in recorder.mails(to) if any(r in m.body for r in references)]


# -- the nodes ---------------------------------------------------------------------------------------------------------


class Server:
    """One node's ``xds serve``, which a test may stop (SIGTERM) and start again on the same files."""

    def __init__(self, files: NodeFiles) -> None:
        self.files = files
        self._stack = ExitStack()

    def start(self) -> None:
        self._stack = ExitStack()
        self._stack.enter_context(serving(self.files))

    def stop(self) -> None:
        self._stack.close()


@dataclass(frozen=True, slots=True)
class Network:
    backend: str
    a: NodeFiles
    b: NodeFiles
    c: NodeFiles
    b_server: Server
    c_listener: int
    recorder: Recorder
    tmp: Path


def _node_config(files: NodeFiles, name: str, smtp_port: int, extra: str) -> None:
    identities = f'home_community_id = "{HOMES[name]}"\nrepository_unique_id = "{REPOSITORIES[name]}"\n'
    smtp = f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nfrom_address = "{SENDERS[name]}"\ntimeout = 10\n'
    files.config.write_text(files.config.read_text() + identities + smtp + extra)


def _b_mailboxes() -> str:
    return f"""
[[mailboxes]]
name = "radiology"
departments = ["Radiologie"]
organisations = ["{ORGANISATION}"]
notify = ["{RADIOLOGY_NOTIFY}"]
quiet_period = {RADIOLOGY_QUIET}

[[mailboxes]]
name = "spoed"
departments = ["Spoed"]
organisations = ["{ORGANISATION}"]
notify = ["{SPOED_NOTIFY}"]
quiet_period = {SPOED_QUIET}

[[mailboxes]]
name = "general"
default = true
"""


def _cli_chain(steps: Sequence[tuple[NodeFiles, tuple[str, ...]]]) -> None:
    for files, args in steps:
        done = files.cli(*args)
        assert done.returncode == 0, f"xds {' '.join(args)}: {done.stdout}{done.stderr}"


@pytest.fixture(scope="module", params=backends())
def network(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """Nodes A, B and C serving, the patients fed, A's directory filled, and the SMTP server they all use."""
    backend: str = request.param
    tmp = tmp_path_factory.mktemp(f"push-{backend}")
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port(), server_hostname="relay.test")
    controller.start()
    with ExitStack() as stack:
        stack.callback(controller.stop)
        nodes: dict[str, NodeFiles] = {}
        for name in ("a", "b", "c"):
            (tmp / name).mkdir()
            nodes[name] = stack.enter_context(new_node(tmp / name, backend))
        a, b, c = nodes["a"], nodes["b"], nodes["c"]
        listener = free_port()
        _node_config(a, "a", int(controller.port), "\n[push]\nretries = 1\nretry_delay = 0.5\ntimeout = 30\n")
        _node_config(b, "b", int(controller.port), _b_mailboxes())
        _node_config(
            c,
            "c",
            int(controller.port),
            f'\n[smtp_listener]\nport = {listener}\n\n[[mailboxes]]\nname = "praktijk"\ndefault = true\n'
            f'xdm_addresses = ["{CLINIC_XDM}"]\n',
        )
        chains = [
            [
                (a, ("patient", "add", PATIENT)),
                (a, ("community", "add", HOMES["b"], "--name", "hospital-b", "--push-url", f"{b.url}/xdr/recipient")),
                (a, ("community", "add", HOMES["c"], "--name", "clinic-c", "--xdm-email", CLINIC_XDM)),
            ],
            [(b, ("patient", "add", p)) for p in (PATIENT, FLOOD_PATIENT, URGENT_PATIENT, RESTART_PATIENT)],
            [(c, ("patient", "add", PATIENT))],
        ]
        with ThreadPoolExecutor(len(chains)) as pool:
            list(pool.map(_cli_chain, chains))
        stack.enter_context(serving(a))
        b_server = Server(b)
        b_server.start()
        stack.callback(lambda: b_server.stop())
        stack.enter_context(serving(c))
        yield Network(backend, a, b, c, b_server, listener, recorder, tmp)


# -- SOAP --------------------------------------------------------------------------------------------------------------


def _soap_root(content_type: str, body: bytes) -> etree._Element:
    """The envelope of a SOAP message, MTOM parts put back inline (base64) so that it can be validated."""
    if mtom.is_multipart_related(content_type):
        raw, attachments = read_mtom(content_type, body)
        return xop_decoded(parse_xml(raw), attachments)
    return parse_xml(body)


class Validating(httpx.HTTPTransport):
    """An HTTP transport for :class:`SoapClient` that checks every request and answer against the XSDs."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sent = request.read()
        assert_valid(_soap_root(request.headers.get("content-type", ""), sent), what="request")
        response = super().handle_request(request)
        answer = response.read()
        response.close()
        content_type = response.headers.get("content-type", "")
        assert_valid(_soap_root(content_type, answer), what="response")
        self.exchanges += 1
        keep = [(k, x) for k, x in response.headers.items() if k.lower() not in ("content-encoding", "content-length")]
        return httpx.Response(response.status_code, headers=keep, content=answer, request=request)


def _post(url: str, action: str, body: bytes) -> tuple[etree._Element, dict[str, bytes]]:
    """POST a SOAP 1.2 request; the answer's body element and its attachments (both validated)."""
    envelope = request_envelope(action=action, body=body, to=url)
    assert_valid(parse_xml(envelope), what=action)
    resp = httpx.post(url, content=envelope, headers={"content-type": soap_content_type(action)}, timeout=30)
    assert resp.status_code == 200, resp.text[:2000]
    content_type = resp.headers.get("content-type", "")
    raw, attachments = resp.content, dict[str, bytes]()
    if mtom.is_multipart_related(content_type):
        raw, attachments = read_mtom(content_type, resp.content)
    root = parse_xml(raw)
    assert_valid(xop_decoded(root, attachments), what=f"answer to {action}")
    return root.find(qn(SOAP12, "Body"))[0], attachments  # type: ignore[index]


def registered_documents(node: NodeFiles, patient: str) -> list[bytes]:
    """The bytes of every approved document of ``patient`` in ``node``: ITI-18 FindDocuments, then ITI-43."""
    query = messages.render_adhoc_query_request(
        StoredQueryRequest(
            query_id=v.SQ_FIND_DOCUMENTS,
            return_type="LeafClass",
            parameters=(
                QueryParameter(name="$XDSDocumentEntryPatientId", values=(f"'{patient}'",)),
                QueryParameter(name="$XDSDocumentEntryStatus", values=(f"('{v.APPROVED}')",)),
            ),
        )
    )
    answer, _ = _post(f"{node.url}/xds/registry", v.ACTION_STORED_QUERY, query)
    assert answer.get("status") == v.RESPONSE_SUCCESS, etree.tostring(answer)[:2000]
    wanted: list[DocumentRequest] = []
    for eo in answer.iter(qn(RIM, "ExtrinsicObject")):
        unique_id = next(
            x.get("value", "")
            for x in eo.iter(qn(RIM, "ExternalIdentifier"))
            if x.get("identificationScheme") == v.DE_UNIQUE_ID
        )
        repository = next(
            s.findtext(f"{qn(RIM, 'ValueList')}/{qn(RIM, 'Value')}", "")
            for s in eo.iter(qn(RIM, "Slot"))
            if s.get("name") == "repositoryUniqueId"
        )
        wanted.append(DocumentRequest(repository_unique_id=repository, document_unique_id=unique_id))
    if not wanted:
        return []
    body = xdsb.render_retrieve_request(RetrieveRequest(documents=tuple(wanted)))
    got, attachments = _post(f"{node.url}/xds/repository", v.ACTION_RETRIEVE, body)
    status, errors, documents = xdsb.retrieve_response(got)
    assert status == v.RESPONSE_SUCCESS and errors == (), (status, errors)
    return sorted(attachments[part.cid or ""] for _, _, part in documents)


def xdr_submission(patient: str, n: int, recipient: str) -> tuple[Submission, dict[str, bytes]]:
    """A one-document submission for ``patient`` addressed to ``recipient`` (as a sender's XDR would be)."""
    cx = CX.parse(patient)
    content = f"push {n} for {recipient}\r\n".encode() * (n + 1)
    de = dataclasses.replace(samples.document_entry(cx, content=content, title=f"push {n}"), repository_unique_id="")
    ss = dataclasses.replace(samples.submission_set(cx), intended_recipients=(recipient,), comments=text(f"push {n}"))
    return samples.submission(cx, [de], ss=ss), {de.id: content}


def push_by_xdr(url: str, patient: str, count: int) -> float:
    """``count`` XDR pushes for ``patient`` to B's radiology, each checked on the wire; when the last one began."""
    transport = Validating()
    last = 0.0
    with SoapClient(url, timeout=30, transport=transport) as client:
        for n in range(count):
            sub, documents = xdr_submission(patient, n, RADIOLOGY)
            last = time.monotonic()
            response = client.provide_and_register(sub, documents)
            assert response.status == v.RESPONSE_SUCCESS, response.errors
    assert transport.exchanges == count
    return last


def relay(mail: Mail, port: int) -> int:
    """Deliver ``mail`` by SMTP to the listener on ``port`` (for the clinic's XDM address); the reply to DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.mail(mail.mail_from)[0] == 250
        assert smtp.rcpt(CLINIC_XDM)[0] == 250
        code, reply = smtp.data(mail.raw)
    assert code == 250, reply
    return code


def mdns(recorder: Recorder, original_id: str) -> list[Mail]:
    """The disposition notifications to A about the mail ``original_id``."""
    return [
        m
        for m in recorder.mails(SENDERS["a"])
        if m.message.get_content_type() == "multipart/report"
        and f"Original-Message-ID: {original_id}".encode() in m.raw
    ]


def open_deliveries(node: NodeFiles, patient: str, mailbox: str = "") -> list[dict[str, Any]]:
    """``xds inbox list [MAILBOX] --json``: the open deliveries for ``patient``."""
    listed = node.cli("inbox", "list", *((mailbox,) if mailbox else ()), "--json", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    rows: list[dict[str, Any]] = json.loads(listed.stdout)
    return [r for r in rows if r["local_patient_id"] == patient]


def assert_no_patient_data(mail: Mail, patient: str) -> None:
    number, _, rest = patient.partition("^^^&")
    assert number.encode() not in mail.raw, "the digest names the patient's BSN"
    assert rest.partition("&")[0].encode() not in mail.raw, "the digest names the patient's id domain"


# -- the proof ---------------------------------------------------------------------------------------------------------


def test_xdr_push_lands_in_radiology_and_is_accepted(network: Network) -> None:
    started = time.monotonic()
    a, b = network.a, network.b
    files = [network.tmp / "verslag.txt", network.tmp / "beelden.pdf"]
    files[0].write_bytes(b"CT thorax: geen afwijkingen.\r\n" * 50)
    files[1].write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 40)

    pushed = a.cli(
        "push",
        *map(str, files),
        "--to",
        "hospital-b",
        "--patient",
        PATIENT,
        "--department",
        "Radiologie",
        "--organisation",
        ORGANISATION,
        "--comment",
        "please review",
    )
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    reference = pushed.stdout.partition(":")[0]
    status = a.cli("push", "status", reference, "--json")
    assert status.returncode == 0, status.stderr
    (record,) = json.loads(status.stdout)
    assert (record["status"], record["transport"], record["documents"]) == ("delivered", "xdr", 2)

    (delivery,) = open_deliveries(b, PATIENT, "radiology")
    assert delivery["mailbox"] == "radiology" and delivery["status"] == "new"
    assert (delivery["documents"], delivery["message"], delivery["transport"]) == (2, "please review", "xdr")
    assert delivery["urgent"] is False

    accepted = b.cli("inbox", "accept", delivery["reference"])
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert open_deliveries(b, PATIENT, "radiology") == []
    assert registered_documents(b, PATIENT) == sorted(f.read_bytes() for f in files)
    print(f"[{network.backend}] XDR push, inbox list, accept, query and retrieve: {time.monotonic() - started:.1f} s")


def test_xdm_by_email_to_a_clinic_is_answered_and_accepted(network: Network) -> None:
    started = time.monotonic()
    a, c, recorder = network.a, network.c, network.recorder
    document = network.tmp / "brief.txt"
    document.write_bytes(b"Verwijsbrief huisarts.\r\n" * 30)

    pushed = a.cli("push", str(document), "--to", "clinic-c", "--patient", PATIENT, "--comment", "for the GP")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert ": mailed (xdm-email)" in pushed.stdout, pushed.stdout
    reference = pushed.stdout.partition(":")[0]
    xdm = until("XDM mail", lambda: recorder.mails(CLINIC_XDM), 10)[-1]
    original = xdm.message
    assert str(original["Subject"]) == f"XDM package {reference}"
    assert str(original["Disposition-Notification-To"]) == SENDERS["a"]
    assert [p.get_content_type() for p in original.iter_attachments()] == ["application/zip"]

    # The e-mail hop: the test delivers A's mail to C's SMTP listener; then once more, as an MTA that did not
    # get the 250 would: the same mail is answered, not delivered twice.
    assert relay(xdm, network.c_listener) == 250
    (report,) = until("MDN to A", lambda: mdns(recorder, str(original["Message-ID"])), 10)
    assert report.mail_from == SENDERS["c"]
    assert report.message.get_param("report-type") == "disposition-notification"
    (fields,) = [p for p in report.message.walk() if p.get_content_type() == "message/disposition-notification"]
    notification = fields.as_bytes().decode()
    assert "Disposition: automatic-action/MDN-sent-automatically; processed" in notification
    assert "processed/error" not in notification
    assert f"Final-Recipient: rfc822; {CLINIC_XDM}" in notification
    assert relay(xdm, network.c_listener) == 250
    until("second MDN to A", lambda: len(mdns(recorder, str(original["Message-ID"]))) == 2, 10)

    (delivery,) = open_deliveries(c, PATIENT)
    assert (delivery["mailbox"], delivery["status"], delivery["transport"]) == ("praktijk", "new", "xdm-email")
    assert delivery["documents"] == 1
    assert delivery["reference"] in report.body

    accepted = c.cli("inbox", "accept", delivery["reference"])
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert registered_documents(c, PATIENT) == [document.read_bytes()]
    print(f"[{network.backend}] XDM by e-mail, MDN, accept, query and retrieve: {time.monotonic() - started:.1f} s")


def test_thirty_pushes_in_the_quiet_period_make_one_digest(network: Network) -> None:
    b, recorder = network.b, network.recorder
    started = time.monotonic()
    last = push_by_xdr(f"{b.url}/xdr/recipient", FLOOD_PATIENT, FLOOD)
    pushing = time.monotonic() - started
    assert pushing < RADIOLOGY_QUIET, f"{FLOOD} pushes took {pushing:.1f} s, longer than the quiet period"
    rows = open_deliveries(b, FLOOD_PATIENT, "radiology")
    assert len(rows) == FLOOD and all(r["documents"] == 1 and r["status"] == "new" for r in rows)
    references = [r["reference"] for r in rows]

    (digest,) = until(
        "digest of the flood", lambda: digests(recorder, RADIOLOGY_NOTIFY, references), RADIOLOGY_QUIET + 15
    )
    waited = digest.at - last
    assert waited >= RADIOLOGY_QUIET - EARLY, f"mailed {waited:.2f} s after the last push, before the quiet period"
    time.sleep(SETTLE)
    assert digests(recorder, RADIOLOGY_NOTIFY, references) == [digest], "more than one digest for one patient"

    message = digest.message
    assert str(message["Subject"]) == f"[xds] {FLOOD} new deliveries ({FLOOD} documents) in mailbox radiology"
    assert f"received {FLOOD} new deliveries ({FLOOD} documents)" in digest.body
    assert all(r in digest.body for r in references)
    assert digest.rcpt_tos == (RADIOLOGY_NOTIFY,)
    assert_no_patient_data(digest, FLOOD_PATIENT)
    print(
        f"[{network.backend}] {FLOOD} XDR pushes in {pushing:.1f} s; one digest {waited:.1f} s after the last"
        f" (quiet period {RADIOLOGY_QUIET:g} s)"
    )


def test_urgent_push_is_notified_at_once(network: Network) -> None:
    a, recorder = network.a, network.recorder
    document = network.tmp / "spoed.txt"
    document.write_bytes(b"Spoed: CT cerebrum.\r\n")
    began = time.monotonic()
    pushed = a.cli(
        "push",
        str(document),
        "--to",
        "hospital-b",
        "--patient",
        URGENT_PATIENT,
        "--department",
        "Spoed",
        "--organisation",
        ORGANISATION,
        "--comment",
        "urgent",
        "--urgent",
    )
    acknowledged = time.monotonic()
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert ": delivered (xdr)" in pushed.stdout, pushed.stdout

    (mail,) = until("urgent digest", lambda: recorder.mails(SPOED_NOTIFY), SPOED_QUIET + 5)
    after = mail.at - acknowledged
    assert after < URGENT_WITHIN, f"the urgent digest came {after:.2f} s after the push (quiet period {SPOED_QUIET})"
    assert mail.at - began < SPOED_QUIET * 0.7
    message = mail.message
    assert str(message["Subject"]) == "URGENT: [xds] 1 new delivery (1 document) in mailbox spoed"
    assert str(message["Importance"]) == "high"
    assert_no_patient_data(mail, URGENT_PATIENT)
    (delivery,) = open_deliveries(network.b, URGENT_PATIENT, "spoed")
    assert delivery["urgent"] is True and delivery["reference"] in mail.body
    print(
        f"[{network.backend}] urgent digest {after:.2f} s after the push was acknowledged,"
        f" {mail.at - began:.2f} s after xds push began (quiet period {SPOED_QUIET:g} s)"
    )


def test_pending_digest_survives_a_restart(network: Network) -> None:
    b, recorder = network.b, network.recorder
    last = push_by_xdr(f"{b.url}/xdr/recipient", RESTART_PATIENT, RESTARTED)
    network.b_server.stop()  # SIGTERM, inside the quiet period
    stopped = time.monotonic()
    network.b_server.start()
    restarted = time.monotonic()
    assert stopped - last < RADIOLOGY_QUIET, "B was stopped after the quiet period"
    rows = open_deliveries(b, RESTART_PATIENT, "radiology")
    references = [r["reference"] for r in rows]
    assert len(references) == RESTARTED

    (digest,) = until(
        "digest after the restart", lambda: digests(recorder, RADIOLOGY_NOTIFY, references), RADIOLOGY_QUIET + 15
    )
    assert digest.at > stopped
    waited = digest.at - last
    assert waited >= RADIOLOGY_QUIET - EARLY, f"mailed {waited:.2f} s after the last push, before the quiet period"
    time.sleep(SETTLE)
    assert digests(recorder, RADIOLOGY_NOTIFY, references) == [digest], "the digest was mailed again"
    assert str(digest.message["Subject"]) == (
        f"[xds] {RESTARTED} new deliveries ({RESTARTED} documents) in mailbox radiology"
    )
    assert all(r in digest.body for r in references)
    assert_no_patient_data(digest, RESTART_PATIENT)
    print(
        f"[{network.backend}] B down {restarted - stopped:.1f} s from {stopped - last:.1f} s after the last push;"
        f" one digest {waited:.1f} s after it (quiet period {RADIOLOGY_QUIET:g} s,"
        f" due {'after' if restarted - last < RADIOLOGY_QUIET else 'before'} B was back)"
    )
