"""``xds submit`` and ``xds retrieve``: argument handling, the metadata submit builds (XSD- and rule-valid), and
both commands against the node served on a loopback socket (see :func:`tests.test_client.serving`)."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_client import serving
from tests.xsd import assert_valid, corpus_dir
from xds import cli, samples
from xds import vocabulary as v
from xds.app import create_app
from xds.codelists import parse_codes_xml
from xds.config import Settings
from xds.ebrim import messages
from xds.model.hl7 import CX
from xds.node import Node
from xds.validation import Rules, validate_submission

PATIENT = "cli-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
NIST_CODES = "nist-iheos-toolkit2/xdstools2/src/main/webapp/toolkitx/environment/default/codes.xml"


@pytest.fixture(autouse=True)
def _no_node_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDS_CONFIG", "XDS_HOST", "XDS_PORT", "XDS_DATA_DIR", "XDS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    report, notes, blob = tmp_path / "report.pdf", tmp_path / "notes.txt", tmp_path / "scan"
    report.write_bytes(b"%PDF-1.4\x00\xff" * 1000)
    notes.write_text("notes\n")
    blob.write_bytes(bytes(range(256)))
    return [report, notes, blob]


# --- the metadata submit builds --------------------------------------------------------------------------


def test_build_submission_makes_one_valid_entry_per_file(files: list[Path]) -> None:
    patient = CX.parse(PATIENT)
    sub, documents = cli.build_submission(files, patient)
    (ss,) = sub.submission_sets
    assert ss.patient_id == patient and ss.source_id == samples.SOURCE_ID and ss.unique_id
    assert ss.authors == ()
    by_file = {documents[de.id]: de for de in sub.document_entries}
    assert list(by_file) == files
    for path, de in by_file.items():
        data = path.read_bytes()
        assert (de.size, de.hash) == (len(data), hashlib.sha1(data).hexdigest())
        assert de.title[0].value == path.name and de.patient_id == patient == de.source_patient_id
        assert de.repository_unique_id == "" and de.authors == ()
        assert (de.class_code, de.type_code, de.format_code) == (
            samples.CLASS_CODE,
            samples.TYPE_CODE,
            samples.FORMAT_CODE,
        )
    assert [de.mime_type for de in by_file.values()] == ["application/pdf", "text/plain", "application/octet-stream"]
    assert sorted((a.source, a.target) for a in sub.associations) == sorted((ss.id, de.id) for de in by_file.values())
    assert len({de.unique_id for de in by_file.values()} | {ss.unique_id}) == 4
    assert_valid(messages.render_submit_objects_request(sub), what="xds submit metadata")
    assert validate_submission(sub, Rules(require_repository_fields=False)) == []


def test_the_submission_passes_the_nist_code_lists(files: list[Path]) -> None:
    corpus = corpus_dir()
    if corpus is None or not (corpus / NIST_CODES).is_file():
        pytest.skip("conformance corpus (NIST codes.xml) not found")
    lists = parse_codes_xml((corpus / NIST_CODES).read_bytes())
    sub, _ = cli.build_submission(files[:2], CX.parse(PATIENT))
    assert validate_submission(sub, Rules(code_lists=lists, require_repository_fields=False)) == []


def test_title_and_mime_type_options_apply_to_every_document(files: list[Path]) -> None:
    sub, _ = cli.build_submission(files, CX.parse(PATIENT), title="Ontslagbrief", mime_type="text/x-cda-r2+xml")
    assert {(de.title[0].value, de.mime_type) for de in sub.document_entries} == {("Ontslagbrief", "text/x-cda-r2+xml")}
    assert_valid(messages.render_submit_objects_request(sub))


MIME_TYPES = [
    ("report.pdf", "application/pdf"),
    ("NOTES.TXT", "text/plain"),
    ("cda.xml", "text/xml"),
    ("image.dcm", "application/dicom"),
    ("photo.jpeg", "image/jpeg"),
    ("data.json", "application/json"),
    ("archive.tar.gz", "application/gzip"),
    ("letter.doc.bz2", "application/octet-stream"),
    ("no-extension", "application/octet-stream"),
    ("odd.qqq", "application/octet-stream"),
]


@pytest.mark.parametrize(("name", "expected"), MIME_TYPES)
def test_mime_type_is_guessed_from_the_file_name(name: str, expected: str) -> None:
    assert cli.guess_mime_type(name) == expected


FILE_NAMES = [
    ("1.2.3", "text/plain", "1.2.3.txt"),
    ("1.2.3", "application/pdf", "1.2.3.pdf"),
    ("1.2.3", "application/xml", "1.2.3.xml"),
    ("1.2.3", "application/dicom", "1.2.3.dcm"),
    ("1.2.3", "text/x-cda-r2+xml", "1.2.3.xml"),
    ("1.2.3", "text/plain; charset=UTF-8", "1.2.3.txt"),
    ("1.2.3", "application/x-unknown", "1.2.3"),
    ("1.2.3^ext", "application/octet-stream", "1.2.3^ext.bin"),
    ("../../etc/passwd", "text/plain", "_.._.._etc_passwd.txt"),
    ("..", "text/plain", "_...txt"),
]


@pytest.mark.parametrize(("unique_id", "mime_type", "expected"), FILE_NAMES)
def test_retrieved_files_are_named_after_unique_id_and_mime_type(unique_id: str, mime_type: str, expected: str) -> None:
    assert cli._file_name(unique_id, mime_type) == expected


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8080/xds/repository"),
        ("0.0.0.0", "http://127.0.0.1:8080/xds/repository"),
        ("::", "http://[::1]:8080/xds/repository"),
        ("fe80::1", "http://[fe80::1]:8080/xds/repository"),
        ("node.example", "http://node.example:8080/xds/repository"),
    ],
)
def test_the_default_url_is_the_node_of_the_configuration(host: str, url: str) -> None:
    assert cli._node_url(Settings(host=host), "/xds/repository") == url


# --- argument handling -----------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--patient", "no-authority"], "not an XDS patient id"),
        (["--patient", "1^^^&not an oid&ISO"], ""),
        (["--patient", PATIENT, "MISSING"], "not a readable file"),
    ],
)
def test_submit_refuses_bad_arguments_with_status_2(
    args: list[str], message: str, files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = [str(files[0].parent / "missing.txt")] if "MISSING" in args else []
    argv = ["submit", *(a for a in args if a != "MISSING"), *missing, str(files[0])]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("xds: ") and message in err


@pytest.mark.parametrize("argv", [["submit", "f.txt"], ["submit", "--patient", PATIENT], ["retrieve"]])
def test_required_arguments_are_enforced_by_argparse(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == 2
    assert "required" in capsys.readouterr().err


def test_the_help_documents_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["retrieve", "--help"])
    out = capsys.readouterr().out
    assert "0  Success" in out and "1  Failure" in out and "3  PartialSuccess" in out


def test_an_unreachable_node_exits_2(files: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/xds/repository"
    assert cli.main(["submit", str(files[1]), "--patient", PATIENT, "--url", url]) == 2
    assert f"no SOAP node at {url}" in capsys.readouterr().err
    assert cli.main(["retrieve", "1.2.3", "--url", url]) == 2
    assert f"no SOAP node at {url}" in capsys.readouterr().err
    assert cli.main(["retrieve", "1.2.3", "--repository", "1.2", "--url", url]) == 2


# --- against a node --------------------------------------------------------------------------------------


@pytest.fixture
def live(node: Node) -> Iterator[str]:
    node.store.add_patient(PATIENT)
    with serving(create_app(node)) as url:
        yield url


def _submit(live: str, files: list[Path], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    argv = ["submit", *map(str, files), "--patient", PATIENT, "--url", f"{live}/xds/repository", "--json"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    result: dict[str, object] = json.loads(capsys.readouterr().out)
    return result


def test_submit_then_retrieve_into_a_directory(
    live: str, files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _submit(live, files, capsys)
    assert result["status"] == "Success" and result["errors"] == []
    documents = result["documents"]
    assert isinstance(documents, list)
    assert [d["file"] for d in documents] == [str(f) for f in files]
    uids = [d["unique_id"] for d in documents]

    out = tmp_path / "out"
    assert cli.main(["retrieve", *uids, "--url", f"{live}/xds/repository", "--out", str(out)]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    names = [f"{uids[0]}.pdf", f"{uids[1]}.txt", f"{uids[2]}.bin"]
    mimes = ["application/pdf", "text/plain", "application/octet-stream"]
    sizes = [str(f.stat().st_size) for f in files]
    assert lines == [[u, m, s, str(out / n)] for u, m, s, n in zip(uids, mimes, sizes, names, strict=True)]
    for name, original in zip(names, files, strict=True):
        assert (out / name).read_bytes() == original.read_bytes()
    assert sorted(p.name for p in out.iterdir()) == sorted(names), "no temporary file is left"


def test_text_output_and_the_repository_from_the_configuration(
    live: str, node: Node, files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host, _, port = live.removeprefix("http://").rpartition(":")
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\nhost = "{host}"\nport = {port}\n')
    assert cli.main(["submit", str(files[1]), "--patient", PATIENT, "--config", str(config), "--title", "T"]) == 0
    ss_line, de_line = capsys.readouterr().out.splitlines()
    kind, ss_uid = ss_line.split("\t")
    assert kind == "SubmissionSet" and ss_uid.startswith("2.25.")
    kind, uid, mime, size, path = de_line.split("\t")
    assert (kind, mime, size, path) == ("DocumentEntry", "text/plain", "6", str(files[1]))

    target = tmp_path / "sub" / "notes-copy"
    assert cli.main(["retrieve", uid, "--config", str(config), "--out", str(target)]) == 0
    assert capsys.readouterr().out.split("\t")[3].strip() == str(target)
    assert target.read_bytes() == files[1].read_bytes()
    assert node.repository_unique_id == "1.3.6.1.4.1.21367.2017.2.3.99"


def test_retrieve_statuses_map_to_exit_codes(
    live: str, node: Node, files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _submit(live, files[1:2], capsys)
    uid = result["documents"][0]["unique_id"]  # type: ignore[index]
    url = f"{live}/xds/repository"
    assert cli.main(["retrieve", uid, "1.2.404", "--url", url, "--out", str(tmp_path / "d")]) == 3
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1
    assert "xds: error: XDSDocumentUniqueIdError: " in captured.err and "[1.2.404]" in captured.err

    assert cli.main(["retrieve", "1.2.404", "--url", url, "--out", str(tmp_path / "e")]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "XDSDocumentUniqueIdError" in captured.err

    assert cli.main(["retrieve", uid, "--url", url, "--repository", "9.9.9", "--out", str(tmp_path / "f")]) == 1
    assert "XDSUnknownRepositoryId" in capsys.readouterr().err


def test_a_refused_submission_prints_the_errors_and_exits_1(
    live: str, files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = "nobody^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
    argv = ["submit", str(files[1]), "--patient", stranger, "--url", f"{live}/xds/repository"]
    assert cli.main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("xds: error: XDSUnknownPatientId: ")
    assert cli.main([*argv, "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "Failure"
    assert [e["error_code"] for e in result["errors"]] == ["XDSUnknownPatientId"]


def test_a_url_that_is_not_a_soap_endpoint_exits_2(
    live: str, files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["submit", str(files[1]), "--patient", PATIENT, "--url", f"{live}/nowhere"]) == 2
    assert "404" in capsys.readouterr().err


def test_a_soap_fault_exits_1(live: str, files: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["submit", str(files[1]), "--patient", PATIENT, "--url", f"{live}/xds/registry"]) == 1
    assert "SOAP fault Sender" in capsys.readouterr().err


def test_the_submitted_unique_ids_are_registered(
    live: str, node: Node, files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    result = _submit(live, files[:1], capsys)
    uid = result["documents"][0]["unique_id"]  # type: ignore[index]
    held = node.store.documents(node.repository_unique_id, [uid])
    assert list(held) == [uid] and held[uid].mime_type == "application/pdf"
    assert v.RESPONSE_SUCCESS.endswith(str(result["status"]))
