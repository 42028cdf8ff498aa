"""``xds community add|list|remove``: a round trip on each backend, the configuration file's entries, exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from xca.directory import load_directory
from xds import cli
from xds.config import Settings, load_settings
from xds.node import Node

TOML_HOME = "urn:oid:1.2.3.4.6"
DB_HOME = "urn:oid:1.2.3.4.7"
URL = "https://gw.example.org/xca/responding"


@pytest.fixture(autouse=True)
def _no_node_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDS_CONFIG", "XDS_HOST", "XDS_PORT", "XDS_DATA_DIR", "XDS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII text is a TOML basic string


@pytest.fixture
def config(settings: Settings, tmp_path: Path) -> str:
    """A configuration file for the test's database, with one ``[[communities]]`` entry."""
    path = tmp_path / "node.toml"
    path.write_text(
        f"[node]\ndata_dir = {_toml(settings.data_dir)}\ndatabase_url = {_toml(settings.database_url)}\n"
        f"home_community_id = {_toml(settings.home_community_id)}\n"
        f'[[communities]]\nhome_community_id = "{TOML_HOME}"\nquery_url = "http://127.0.0.1:8081/xca/responding"\n'
        'retrieve_url = "http://127.0.0.1:8081/xca/responding"\n'
    )
    return str(path)


@pytest.fixture
def node(settings: Settings) -> Iterator[Node]:
    """The node of ``config``, opened after the commands ran (the CLI opens its own)."""
    n = Node.open(settings)
    yield n
    n.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_round_trip(config: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    add = ["community", "add", DB_HOME, "--query-url", URL, "--config", config]
    extra = ["--push-url", "https://gw.example.org/xdr", "--xdm-email", "xdm@gw.example.org", "--timeout", "7.5"]
    extra += ["--assigning-authority", "1.2.3.4.7.1", "--tls-ca", str(ca), "--no-tls-verify"]
    assert run(capsys, *add, *extra) == (0, f"added {DB_HOME}\n", "")
    assert run(capsys, *add, *extra) == (0, f"already known {DB_HOME}\n", "")

    code, out, err = run(capsys, "community", "list", "--config", config)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{TOML_HOME}\tconfig\thttp://127.0.0.1:8081/xca/responding\thttp://127.0.0.1:8081/xca/responding",
        f"{DB_HOME}\tdatabase\t{URL}\t{URL}\tpush_url=https://gw.example.org/xdr\txdm_email=xdm@gw.example.org"
        f"\tassigning_authority=1.2.3.4.7.1\ttimeout=7.5\ttls.ca_file={ca}\ttls.verify=false",
    ]
    code, out, _ = run(capsys, "community", "list", "--json", "--config", config)
    toml_row, db_row = json.loads(out)
    assert code == 0 and (toml_row["source"], toml_row["added"]) == ("config", None)
    assert db_row["source"] == "database" and db_row["added"]
    assert db_row["tls"] == {"ca_file": str(ca), "cert_file": "", "key_file": "", "verify": False}
    assert (db_row["timeout"], db_row["retrieve_url"]) == (7.5, URL)

    node_settings = load_settings(config, env={})  # what the gateway will see
    store_node = Node.open(node_settings)
    try:
        directory = load_directory(node_settings, store_node.store, exclude=store_node.home_community_id)
    finally:
        store_node.close()
    assert [(c.home_community_id, c.source) for c in directory.all()] == [(TOML_HOME, "config"), (DB_HOME, "database")]

    assert run(capsys, "community", "remove", DB_HOME, "--config", config) == (0, f"removed {DB_HOME}\n", "")
    code, out, _ = run(capsys, "community", "list", "--config", config)
    assert code == 0 and [line.split("\t")[0] for line in out.splitlines()] == [TOML_HOME]
    code, _, err = run(capsys, "community", "remove", DB_HOME, "--config", config)
    assert code == 1 and "not in the community directory" in err


def test_configuration_file_entries_are_edited_in_the_file(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "community", "remove", TOML_HOME, "--config", config)
    assert code == 1 and "edit the configuration file" in err
    code, _, err = run(capsys, "community", "add", TOML_HOME, "--query-url", URL, "--config", config)
    assert code == 1 and "edit the configuration file" in err


def test_other_settings_for_a_known_community(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "community", "add", DB_HOME, "--query-url", URL, "--config", config)[0] == 0
    code, _, err = run(capsys, "community", "add", DB_HOME, "--query-url", "http://x.example.org", "--config", config)
    assert code == 1 and "already in the directory with other settings; remove it first" in err


def test_tls_paths_are_stored_absolute(
    config: str, node: Node, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "c.pem").write_text("cert")
    (tmp_path / "k.pem").write_text("key")
    monkeypatch.chdir(tmp_path)
    argv = ["community", "add", DB_HOME, "--query-url", URL, "--tls-cert", "c.pem", "--tls-key", "k.pem"]
    assert run(capsys, *argv, "--config", config)[0] == 0
    (row,) = node.store.list_communities()
    assert row["tls"] == {
        "ca_file": "",
        "cert_file": str(tmp_path / "c.pem"),
        "key_file": str(tmp_path / "k.pem"),
        "verify": True,
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["1.2.3.4.7", "--query-url", URL], "home_community_id must be urn:oid:"),
        ([DB_HOME, "--query-url", "ftp://gw.example.org"], "query_url must be an http or https URL"),
        ([DB_HOME, "--query-url", URL, "--retrieve-url", "gw"], "retrieve_url must be an http or https URL"),
        ([DB_HOME, "--query-url", URL, "--push-url", "x"], "push_url must be an http or https URL"),
        ([DB_HOME, "--query-url", URL, "--xdm-email", "x"], "xdm_email must be an e-mail address"),
        ([DB_HOME, "--query-url", URL, "--assigning-authority", "BSN"], "assigning_authority must be an OID"),
        ([DB_HOME, "--query-url", URL, "--timeout", "0"], "timeout must be a number of seconds > 0"),
        ([DB_HOME, "--query-url", URL, "--tls-ca", "/nonexistent/ca.pem"], "tls.ca_file: no such file"),
        ([DB_HOME, "--query-url", URL, "--tls-cert", __file__], "tls.cert_file is given without tls.key_file"),
        (["urn:oid:1.3.6.1.4.1.21367.2017.2.6.99", "--query-url", URL], "this node's own homeCommunityId"),
    ],
)
def test_invalid_entries_are_usage_errors(
    config: str, node: Node, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "community", "add", *argv, "--config", config)
    assert (code, out) == (2, "") and message in err
    assert node.store.list_communities() == []


def test_usage(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "community", "remove", "1.2.3", "--config", config)
    assert code == 2 and "not a homeCommunityId" in err
    code, _, err = run(capsys, "community", "add", DB_HOME, "--config", config)
    assert code == 2 and "query_url is required (or push_url / xdm_email" in err
    with pytest.raises(SystemExit) as exc:
        cli.main(["community", "add", DB_HOME, "--query-url", URL, "--timeout", "soon"])
    assert exc.value.code == 2


def test_an_invalid_configuration_entry_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'[node]\ndata_dir = "{tmp_path / "var"}"\n[[communities]]\nhome_community_id = "{TOML_HOME}"\n')
    code, _, err = run(capsys, "community", "list", "--config", str(path))
    assert code == 2 and "configuration error: [[communities]] #1: query_url is required" in err


def test_list_warns_when_file_and_database_name_one_community(
    config: str, node: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    node.store.add_community({"home_community_id": TOML_HOME, "query_url": URL})  # e.g. added before the file
    code, out, err = run(capsys, "community", "list", "--config", config)
    assert code == 0 and [line.split("\t")[:2] for line in out.splitlines()] == [
        [TOML_HOME, "config"],
        [TOML_HOME, "database"],
    ]
    assert f"{TOML_HOME} is both in the configuration file and in the database" in err
    assert run(capsys, "community", "remove", TOML_HOME, "--config", config) == (0, f"removed {TOML_HOME}\n", "")
