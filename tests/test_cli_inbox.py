"""``xds inbox``, ``xds xdm`` and ``xds push``: output, JSON, exit codes, an XDM round trip between two nodes."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.corpus import corpus_dir
from tests.conftest import PG_ENV, pg_drop_schema, pg_schema_url
from tests.mail.conftest import free_port
from tests.support import serving
from xds import cli, samples
from xds.app import create_app
from xds.config import Settings
from xds.model.hl7 import CX
from xds.model.messages import ProvideAndRegisterRequest
from xds.model.rim import text
from xds.node import Node
from xds.recipient import iti41
from xds.recipient.addressing import Mailbox
from xds.recipient.model import ACCEPTED, NEW, REJECTED, TRANSPORT_XDM, UNKNOWN_PATIENT, Delivery

PATIENT = samples.patient("cli-inbox-1")
STRANGER = samples.patient("stranger-9", oid="1.2.3.4.99")
OTHER_HOME = "urn:oid:1.3.6.1.4.1.21367.2017.2.6.77"
NIST_SAMPLE = Path(
    "nist-iheos-toolkit2/xdstools2/src/main/webapp/toolkitx/testkit/direct-messages/CCDA_Ambulatory_in_XDM.zip"
)


@pytest.fixture(autouse=True)
def _no_node_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDS_CONFIG", "XDS_HOST", "XDS_PORT", "XDS_DATA_DIR", "XDS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII text is a TOML basic string


MAILBOXES = """
[[mailboxes]]
name = "radiology"
default = true

[[mailboxes]]
name = "cardiology"
departments = ["Cardiologie"]

[push]
retries = 0
retry_delay = 0.01
timeout = 5.0
"""


def write_config(path: Path, settings: Settings) -> str:
    path.write_text(
        f"[node]\ndata_dir = {_toml(settings.data_dir)}\ndatabase_url = {_toml(settings.database_url)}\n"
        f"home_community_id = {_toml(settings.home_community_id)}\n"
        f"repository_unique_id = {_toml(settings.repository_unique_id)}\n" + MAILBOXES
    )
    return str(path)


def boxes() -> tuple[Mailbox, ...]:
    return (Mailbox(name="radiology", default=True), Mailbox(name="cardiology", departments=("Cardiologie",)))


@pytest.fixture
def config(settings: Settings, tmp_path: Path) -> str:
    return write_config(tmp_path / "node.toml", settings)


@pytest.fixture
def node(settings: Settings) -> Iterator[Node]:
    """A node on the database of ``config`` (the CLI opens its own)."""
    n = Node.open(dataclasses.replace(settings, mailboxes=boxes()))
    n.store.add_patient(str(PATIENT))
    yield n
    n.close()


@pytest.fixture
def other_settings(settings: Settings, database_url: str, tmp_path: Path) -> Iterator[Settings]:
    """A second node's settings, on a database of its own on the test's backend."""
    if database_url.startswith("sqlite"):
        url, schema = f"sqlite:///{tmp_path / 'other.sqlite3'}", ""
    else:
        url, schema = pg_schema_url(os.environ[PG_ENV])
    try:
        yield dataclasses.replace(
            settings,
            data_dir=str(tmp_path / "other"),
            database_url=url,
            home_community_id=OTHER_HOME,
            repository_unique_id="1.3.6.1.4.1.21367.2017.2.3.77",
            mailboxes=boxes(),
        )
    finally:
        if schema:
            pg_drop_schema(os.environ[PG_ENV], schema)


def run(capsys: pytest.CaptureFixture[str], config: str, *argv: str) -> tuple[int, str, str]:
    code = cli.main([*argv, "--config", config])
    out, err = capsys.readouterr()
    return code, out, err


def deliver(node: Node, patient: CX, *contents: bytes, comment: str = "", recipient: str = "") -> Delivery:
    """A push received by ``node`` as the XDR recipient would store it."""
    entries = [
        dataclasses.replace(samples.document_entry(patient, content=c), repository_unique_id="") for c in contents
    ]
    ss = samples.submission_set(patient)
    ss = dataclasses.replace(
        ss,
        comments=text(comment) if comment else (),
        intended_recipients=(recipient,) if recipient else (),
    )
    req = ProvideAndRegisterRequest(
        submission=samples.submission(patient, entries, ss=ss),
        documents=tuple((de.id, node.documents.stage_bytes([c])) for de, c in zip(entries, contents, strict=True)),
    )
    [d] = iti41.receive(req, node.recipient_context(), transport="xdr", sender="https://sender.example.org").deliveries
    return d


# -- inbox list / show ----------------------------------------------------------------------------------------


def test_list_empty_then_with_deliveries(config: str, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, config, "inbox", "list") == (0, "", "")
    assert run(capsys, config, "inbox", "list", "--json") == (0, "[]\n", "")

    first = deliver(node, PATIENT, b"one", b"two", comment="graag beoordelen")
    second = deliver(node, STRANGER, b"three", recipient="Cardiologie")
    code, out, err = run(capsys, config, "inbox", "list")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(first.reference) and "radiology" in lines[0] and "2 doc(s)" in lines[0]
    assert "graag beoordelen" in lines[0] and NEW in lines[0]
    assert lines[1].startswith(second.reference) and "cardiology" in lines[1] and UNKNOWN_PATIENT in lines[1]

    code, out, _ = run(capsys, config, "inbox", "list", "cardiology")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == [second.reference]

    code, out, _ = run(capsys, config, "inbox", "list", "--json")
    listed = json.loads(out)
    assert [x["reference"] for x in listed] == [first.reference, second.reference]
    assert listed[0]["documents"] == 2 and listed[0]["message"] == "graag beoordelen"
    assert listed[0]["local_patient_id"] == str(PATIENT) and listed[0]["transport"] == "xdr"
    assert listed[1]["status"] == UNKNOWN_PATIENT and listed[1]["patient_id"] == str(STRANGER)

    assert run(capsys, config, "inbox", "reject", first.reference, "--reason", "not ours")[0] == 0
    code, out, _ = run(capsys, config, "inbox", "list", "--json")
    assert [x["reference"] for x in json.loads(out)] == [second.reference]  # open ones only by default
    code, out, _ = run(capsys, config, "inbox", "list", "--json", "--status", "all")
    assert [x["reference"] for x in json.loads(out)] == [first.reference, second.reference]
    code, out, _ = run(capsys, config, "inbox", "list", "--json", "--status", REJECTED)
    assert [x["reference"] for x in json.loads(out)] == [first.reference]


def test_show_text_and_json(config: str, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    d = deliver(node, PATIENT, b"report", comment="zie bijlage", recipient="Cardiologie|123456^Jansen")
    code, out, err = run(capsys, config, "inbox", "show", d.reference)
    assert code == 0 and err == ""
    assert out.startswith(f"delivery   {d.reference}  (new)\n")
    assert "mailbox    cardiology" in out
    assert "addressed  Cardiologie|123456^Jansen" in out
    assert "message    zie bijlage" in out
    assert f"document   {d.documents[0].unique_id}  text/plain  6 bytes" in out
    assert f"local {PATIENT}" in out

    code, out, _ = run(capsys, config, "inbox", "show", d.reference, "--json")
    shown = json.loads(out)
    assert code == 0 and shown["reference"] == d.reference
    assert shown["intended_recipients"] == ["Cardiologie|123456^Jansen"]
    assert shown["submission_set_unique_id"] == d.submission_set_uid
    assert shown["documents"] == [
        {"unique_id": d.documents[0].unique_id, "mime_type": "text/plain", "size": 6, "sha1": d.documents[0].sha1}
    ]
    assert [h["status"] for h in shown["history"]] == [NEW]


def test_unknown_reference_is_exit_2(config: str, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ("inbox", "show", "D-0000000000"),
        ("inbox", "accept", "D-0000000000"),
        ("inbox", "reject", "D-0000000000", "--reason", "x"),
        ("inbox", "reconcile", "D-0000000000", "--patient", str(PATIENT)),
    ):
        code, out, err = run(capsys, config, *argv)
        assert (code, out) == (2, ""), argv
        assert "no delivery D-0000000000" in err


# -- accept / reject / reconcile ------------------------------------------------------------------------------


def test_accept_imports_and_a_settled_delivery_is_exit_1(
    config: str, node: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    d = deliver(node, PATIENT, b"accepted document")
    code, out, err = run(capsys, config, "inbox", "accept", d.reference)
    assert code == 0 and err == "" and out == f"{d.reference}: imported for patient {PATIENT}\n"
    done = node.inbox.get(d.reference)
    assert done is not None and done.status == ACCEPTED
    held = node.store.documents(node.repository_unique_id, [d.documents[0].unique_id])
    assert len(held) == 1

    code, out, err = run(capsys, config, "inbox", "accept", d.reference)
    assert (code, out) == (1, "") and "accepted already" in err
    code, out, err = run(capsys, config, "inbox", "reject", d.reference, "--reason", "too late")
    assert (code, out) == (1, "") and "accepted" in err


def test_reject_keeps_the_reason_and_deletes_the_documents(
    config: str, node: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    d = deliver(node, PATIENT, b"rejected document")
    sha = d.documents[0].sha256
    assert node.documents.exists(sha)
    code, out, err = run(capsys, config, "inbox", "reject", d.reference, "--reason", "wrong patient")
    assert code == 0 and err == "" and out.startswith(f"{d.reference}: ") and "wrong patient" in out
    done = node.inbox.get(d.reference)
    assert done is not None and done.status == REJECTED and "wrong patient" in done.history[-1].detail
    assert not node.documents.exists(sha)
    with pytest.raises(SystemExit) as usage:  # argparse: the reference is missing
        run(capsys, config, "inbox", "reject", "--reason", "x")
    assert usage.value.code == 2


def test_reconcile_an_unknown_patient(config: str, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    d = deliver(node, STRANGER, b"for someone else")
    assert d.status == UNKNOWN_PATIENT
    code, out, err = run(capsys, config, "inbox", "accept", d.reference)
    assert (code, out) == (1, "") and "xds inbox reconcile" in err
    code, out, err = run(capsys, config, "inbox", "reconcile", d.reference, "--patient", "nobody^^^&1.2.3&ISO")
    assert (code, out) == (1, "") and "not known here" in err
    code, out, err = run(capsys, config, "inbox", "reconcile", d.reference, "--patient", str(PATIENT))
    assert code == 0 and err == "" and f"reconciled to patient {PATIENT}" in out
    done = node.inbox.get(d.reference)
    assert done is not None and done.status == ACCEPTED and done.local_patient_id == str(PATIENT)
    assert done.patient_id == str(STRANGER)


# -- xdm export / import --------------------------------------------------------------------------------------


def test_export_then_import_into_another_node(
    config: str,
    node: Node,
    other_settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    contents = [b"first exported document\n", b"second exported document\n"]
    d = deliver(node, PATIENT, *contents)
    assert run(capsys, config, "inbox", "accept", d.reference)[0] == 0
    out_zip = tmp_path / "out.zip"
    code, out, err = run(capsys, config, "xdm", "export", "--patient", str(PATIENT), str(out_zip))
    assert (code, out, err) == (0, f"{out_zip}: 2 document(s)\n", "")
    assert out_zip.is_file()

    other_config = write_config(tmp_path / "other.toml", other_settings)
    other = Node.open(other_settings)
    try:
        other.store.add_patient(str(PATIENT))
        code, out, err = run(capsys, other_config, "xdm", "import", str(out_zip), "--mailbox", "cardiology")
        assert code == 0 and err == ""
        [imported] = other.inbox.listing()
        assert out == f"{imported.reference}  cardiology  {NEW}  2 doc(s)\n"
        assert imported.transport == TRANSPORT_XDM and imported.local_patient_id == str(PATIENT)
        assert sorted(x.unique_id for x in imported.documents) == sorted(x.unique_id for x in d.documents)
        assert sorted(other.documents.path(x.sha256).read_bytes() for x in imported.documents) == sorted(contents)

        code, out, err = run(capsys, other_config, "xdm", "import", str(out_zip), "--mailbox", "cardiology")
        assert (code, err) == (0, "") and "nothing new" in out
        assert len(other.inbox.listing(status=None)) == 1
    finally:
        other.close()


def test_export_of_a_patient_without_documents_is_exit_1(
    config: str, node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, config, "xdm", "export", "--patient", str(PATIENT), str(tmp_path / "x.zip"))
    assert (code, out) == (1, "") and "no document to export" in err
    assert not (tmp_path / "x.zip").exists()


def test_import_of_a_broken_package_or_unknown_mailbox(
    config: str, node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    code, out, err = run(capsys, config, "xdm", "import", str(junk))
    assert (code, out) == (1, "") and "not a readable ZIP" in err
    code, out, err = run(capsys, config, "xdm", "import", str(junk), "--mailbox", "nonesuch")
    assert (code, out) == (2, "") and "no mailbox named 'nonesuch'" in err
    assert node.inbox.listing(status=None) == []


def test_import_of_a_nist_sample(config: str, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    base = corpus_dir()
    sample = base / NIST_SAMPLE if base is not None else None
    if sample is None or not sample.is_file():
        pytest.skip(f"NIST sample {NIST_SAMPLE.name} not found: set XDS_CONFORMANCE_DIR or place the corpus there")
    code, out, err = run(capsys, config, "xdm", "import", str(sample), "--mailbox", "radiology")
    assert code == 0 and err == "", err
    [d] = node.inbox.listing()
    assert out == f"{d.reference}  radiology  {UNKNOWN_PATIENT}  1 doc(s)\n"
    assert d.status == UNKNOWN_PATIENT and d.transport == TRANSPORT_XDM and len(d.documents) == 1
    assert (
        node.documents.path(d.documents[0].sha256).read_bytes() == (sample.parent / "CCDA_Ambulatory.xml").read_bytes()
    )


# -- push ----------------------------------------------------------------------------------------------------


def test_push_usage_errors(config: str, node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "letter.txt"
    doc.write_text("letter\n")
    code, out, err = run(capsys, config, "push", str(doc), "--patient", str(PATIENT))
    assert (code, out) == (2, "") and "--to RECIPIENT and --patient ID" in err
    code, out, err = run(capsys, config, "push", str(doc), "--to", "someone")
    assert (code, out) == (2, "") and "--patient" in err
    code, out, err = run(capsys, config, "push", str(doc), "--to", "someone", "--patient", str(PATIENT))
    assert (code, out) == (2, "") and "no directory entry 'someone'" in err
    code, out, err = run(capsys, config, "push", "status", "a", "b")
    assert (code, out) == (2, "") and "at most one reference" in err
    code, out, err = run(capsys, config, "push", "status", "P-0000000000")
    assert (code, out) == (2, "") and "no push P-0000000000" in err


def test_push_status_lists_what_was_sent(
    config: str, node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, config, "push", "status") == (0, "", "")
    assert run(capsys, config, "push", "status", "--json") == (0, "[]\n", "")
    assert node.store.add_community(
        {"home_community_id": OTHER_HOME, "name": "gone", "push_url": f"http://127.0.0.1:{free_port()}/xdr/recipient"}
    )
    doc = tmp_path / "letter.txt"
    doc.write_text("letter\n")
    code, out, _ = run(capsys, config, "push", str(doc), "--to", "gone", "--patient", str(PATIENT))
    assert code == 1 and out.startswith("P-") and ": failed (xdr): " in out
    reference = out.split(":")[0]

    code, out, _ = run(capsys, config, "push", "status")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith(reference) and "gone" in lines[0] and "failed" in lines[0]
    assert "1 doc(s)" in lines[0] and len(lines) == 1  # the listing: one line per push

    code, out, _ = run(capsys, config, "push", "status", reference)
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith(reference)
    assert [line.split()[1] for line in lines[1:]] == ["sending", "attempt", "failed"]  # with its history

    code, out, _ = run(capsys, config, "push", "status", reference, "--json")
    [shown] = json.loads(out)
    assert code == 0 and shown["reference"] == reference and shown["status"] == "failed"
    assert shown["recipient"] == "gone" and shown["patient_id"] == str(PATIENT) and shown["documents"] == 1
    assert [h["status"] for h in shown["history"]] == ["sending", "attempt", "failed"]


def test_push_delivered_is_exit_0(
    config: str, node: Node, other_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = Node.open(other_settings)
    try:
        receiver.store.add_patient(str(PATIENT))
        with serving(create_app(receiver)) as base:
            assert node.store.add_community(
                {"home_community_id": OTHER_HOME, "name": "partner", "push_url": f"{base}/xdr/recipient"}
            )
            doc = tmp_path / "letter.txt"
            doc.write_text("urgent letter\n")
            argv = ["push", str(doc), "--to", "partner", "--patient", str(PATIENT), "--department", "Cardiologie"]
            code, out, err = run(capsys, config, *argv, "--comment", "spoed", "--urgent")
        assert (code, err) == (0, "") and ": delivered (xdr): " in out
        [d] = receiver.inbox.listing()
        assert d.mailbox == "cardiology" and d.urgent and d.message == "spoed"
        assert receiver.documents.path(d.documents[0].sha256).read_bytes() == b"urgent letter\n"
    finally:
        receiver.close()
