"""The community directory: validation of one entry (every error names its key), the ``[[communities]]`` TOML
contract, the database entries, and the directory built from both (duplicates, this node's own id)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest

from xca.directory import (
    Community,
    Directory,
    RefreshingDirectory,
    Tls,
    community_from_mapping,
    load_directory,
)
from xds.communities import community_to_mapping
from xds.config import ConfigError, Settings, load_settings
from xds.node import Node

HOME = "urn:oid:1.2.3.4.6"
URL = "https://gw.example.org/xca/responding"
BASE: dict[str, Any] = {"home_community_id": HOME, "query_url": URL}


@pytest.fixture
def pem(tmp_path: Path) -> dict[str, str]:
    """Three existing PEM files (contents do not matter to the directory)."""
    out = {}
    for key in ("ca_file", "cert_file", "key_file"):
        path = tmp_path / f"{key}.pem"
        path.write_text("-----BEGIN CERTIFICATE-----\n")
        out[key] = str(path)
    return out


def entry(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


# --- one entry -------------------------------------------------------------------------------------------------


def test_minimal_entry_takes_the_defaults() -> None:
    c = community_from_mapping(BASE)
    assert c == Community(home_community_id=HOME, query_url=URL, retrieve_url=URL)
    assert (c.push_url, c.xdm_email, c.assigning_authority, c.timeout) == ("", "", "", None)
    assert c.tls == Tls() and c.tls.verify is True and c.source == "config"


def test_full_entry(pem: dict[str, str]) -> None:
    data = entry(
        retrieve_url="http://10.0.0.1:8081/xca/retrieve",
        push_url="https://gw.example.org/xdr",
        xdm_email="xdm@gw.example.org",
        assigning_authority="2.16.840.1.113883.2.4.6.3",
        timeout=5,
        tls={**pem, "verify": False},
    )
    c = community_from_mapping(data, source="database")
    assert c.retrieve_url == "http://10.0.0.1:8081/xca/retrieve" and c.push_url == "https://gw.example.org/xdr"
    assert c.xdm_email == "xdm@gw.example.org" and c.assigning_authority == "2.16.840.1.113883.2.4.6.3"
    assert c.timeout == 5.0 and isinstance(c.timeout, float)
    assert c.tls == Tls(ca_file=pem["ca_file"], cert_file=pem["cert_file"], key_file=pem["key_file"], verify=False)
    assert c.source == "database"
    assert community_from_mapping(community_to_mapping(c), source="database") == c


def test_entries_are_frozen() -> None:
    c = community_from_mapping(BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.query_url = "http://other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([("home_community_id", HOME)], "a community must be a table"),
        ({"query_url": URL}, "home_community_id is required"),
        ({"home_community_id": HOME}, "query_url is required"),
        (entry(url=URL), r"unknown key\(s\) in community: url"),
        (entry(source="database"), r"unknown key\(s\) in community: source"),
        (entry(home_community_id="1.2.3.4.6"), "home_community_id must be urn:oid:"),
        (entry(home_community_id="urn:oid:1.2.x"), "home_community_id must be urn:oid:"),
        (entry(home_community_id="urn:oid:1.02.3"), "home_community_id must be urn:oid:"),
        (entry(home_community_id="urn:uuid:1.2.3"), "home_community_id must be urn:oid:"),
        (entry(home_community_id=123), "home_community_id must be a string"),
        (entry(query_url="ftp://gw.example.org/x"), "query_url must be an http or https URL"),
        (entry(query_url="http://"), "query_url must be an http or https URL"),
        (entry(query_url="gw.example.org/xca"), "query_url must be an http or https URL"),
        (entry(query_url="http://gw.example.org:99999/x"), "query_url must be an http or https URL"),
        (entry(query_url="http://gw example.org/x"), "query_url must be an http or https URL"),
        (entry(query_url=["http://x"]), "query_url must be a string"),
        (entry(retrieve_url="/xca/responding"), "retrieve_url must be an http or https URL"),
        (entry(push_url="mailto:xdr@gw.example.org"), "push_url must be an http or https URL"),
        (entry(xdm_email="nobody"), "xdm_email must be an e-mail address"),
        (entry(xdm_email="a b@example.org"), "xdm_email must be an e-mail address"),
        (entry(xdm_email="a@b@example.org"), "xdm_email must be an e-mail address"),
        (entry(xdm_email=1), "xdm_email must be a string"),
        (entry(assigning_authority="BSN"), "assigning_authority must be an OID"),
        (entry(assigning_authority="urn:oid:1.2.3"), "assigning_authority must be an OID"),
        (entry(timeout=0), "timeout must be a number of seconds > 0"),
        (entry(timeout=-1.5), "timeout must be a number of seconds > 0"),
        (entry(timeout=float("nan")), "timeout must be a number of seconds > 0"),
        (entry(timeout="5"), "timeout must be a number of seconds > 0"),
        (entry(timeout=True), "timeout must be a number of seconds > 0"),
        (entry(tls="strict"), "tls must be a table"),
        (entry(tls={"cafile": "x"}), r"unknown key\(s\) in tls: cafile"),
        (entry(tls={"ca_file": 1}), "tls.ca_file must be a string"),
        (entry(tls={"verify": "no"}), "tls.verify must be true or false"),
        (entry(tls={"ca_file": "/nonexistent/ca.pem"}), "tls.ca_file: no such file: /nonexistent/ca.pem"),
        (entry(tls={"cert_file": "/nonexistent/c.pem", "key_file": "/nonexistent/k.pem"}), "tls.cert_file: no such"),
    ],
)
def test_every_error_names_its_key(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        community_from_mapping(data)


def test_mutual_tls_needs_certificate_and_key(pem: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"tls\.cert_file is given without tls\.key_file"):
        community_from_mapping(entry(tls={"cert_file": pem["cert_file"]}))
    with pytest.raises(ValueError, match=r"tls\.key_file is given without tls\.cert_file"):
        community_from_mapping(entry(tls={"key_file": pem["key_file"]}))
    with pytest.raises(ValueError, match=r"tls\.key_file is given without tls\.cert_file"):
        Tls(key_file="k.pem")


def test_file_checks_can_be_skipped() -> None:
    c = community_from_mapping(entry(tls={"ca_file": "/nonexistent/ca.pem"}), check_files=False)
    assert c.tls.ca_file == "/nonexistent/ca.pem"


def test_constructor_checks_source_and_formats() -> None:
    with pytest.raises(ValueError, match="source must be one of config, database"):
        Community(home_community_id=HOME, query_url=URL, source="web")
    with pytest.raises(ValueError, match="query_url is required"):
        Community(home_community_id=HOME, query_url="")
    with pytest.raises(ValueError, match="query_url must be"):
        Community(home_community_id=HOME, query_url="ftp://x")
    with pytest.raises(ValueError, match="push_transaction must be one of ITI-41, ITI-80"):
        Community(home_community_id=HOME, push_url=URL, push_transaction="ITI-42")
    with pytest.raises(ValueError, match="name must be"):
        Community(home_community_id=HOME, query_url=URL, name="two words")
    push_only = Community(home_community_id=HOME, xdm_email="clinic@example.org")
    assert push_only.query_url == push_only.retrieve_url == ""


def test_push_only_entries_are_not_in_the_gateway_directory() -> None:
    queried = Community(home_community_id=HOME, query_url=URL)
    pushed = Community(home_community_id="urn:oid:1.2.3.4.77", push_url=URL, name="clinic")
    directory = Directory([queried, pushed])
    assert directory.all() == [queried] and pushed.home_community_id not in directory


# --- the TOML contract (ARCHITECTURE.md §5) ---------------------------------------------------------------------


def write_config(tmp_path: Path, text: str) -> str:
    cfg = tmp_path / "node.toml"
    cfg.write_text(text)
    return str(cfg)


def test_toml_inline_and_sub_table(tmp_path: Path, pem: dict[str, str]) -> None:
    cfg = write_config(
        tmp_path,
        f'[[communities]]\nhome_community_id = "{HOME}"\nquery_url = "{URL}"\nretrieve_url = "{URL}"\n'
        f'tls = {{ ca_file = "{pem["ca_file"]}", verify = true }}\n'
        '[[communities]]\nhome_community_id = "urn:oid:1.2.3.4.7"\nquery_url = "http://b.example.org/xca"\n'
        'assigning_authority = "1.2.3.4.7.1"\ntimeout = 2.5\nxdm_email = "xdm@b.example.org"\n'
        f'[communities.tls]\ncert_file = "{pem["cert_file"]}"\nkey_file = "{pem["key_file"]}"\n',
    )
    s = load_settings(cfg, env={})
    assert s.communities[0]["home_community_id"] == HOME  # Settings.communities stays the raw tables
    a, b = (community_from_mapping(t) for t in s.communities)
    assert a.tls == Tls(ca_file=pem["ca_file"]) and a.retrieve_url == URL
    assert b.tls == Tls(cert_file=pem["cert_file"], key_file=pem["key_file"]) and b.retrieve_url == b.query_url
    assert (b.timeout, b.assigning_authority, b.xdm_email) == (2.5, "1.2.3.4.7.1", "xdm@b.example.org")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f'communities = "{HOME}"\n', "communities must be an array of tables"),
        (f'[communities]\nhome_community_id = "{HOME}"\n', "communities must be an array of tables"),
        (f'[[communities]]\nhome_community_id = "{HOME}"\n', r"\[\[communities\]\] #1: query_url is required"),
        (
            f'[[communities]]\nhome_community_id = "{HOME}"\nquery_url = "{URL}"\nqueryurl = "x"\n',
            r"\[\[communities\]\] #1: unknown key\(s\) in community: queryurl",
        ),
        (
            f'[[communities]]\nhome_community_id = "{HOME}"\nquery_url = "{URL}"\n'
            f'[[communities]]\nhome_community_id = "{HOME}"\nquery_url = "{URL}"\n',
            rf"\[\[communities\]\] #2: homeCommunityId {HOME} is configured twice",
        ),
        (
            f'[[communities]]\nhome_community_id = "{HOME}"\nquery_url = "{URL}"\ntls = {{ ca_file = "nope.pem" }}\n',
            r"\[\[communities\]\] #1: tls.ca_file: no such file: nope.pem",
        ),
    ],
)
def test_toml_errors_are_configuration_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write_config(tmp_path, text), env={})


# --- the directory ----------------------------------------------------------------------------------------------


def test_directory_lookup() -> None:
    b, a = (community_from_mapping(entry(home_community_id=h)) for h in ("urn:oid:1.2.9", "urn:oid:1.2.10"))
    d = Directory([b, a])
    assert len(d) == 2 and d.all() == [a, b] and list(d) == [a, b]  # sorted by homeCommunityId (as strings)
    assert d.get("urn:oid:1.2.9") is b and d.get("urn:oid:1.2.11") is None
    assert "urn:oid:1.2.10" in d and "urn:oid:1.2.11" not in d
    assert len(Directory([])) == 0
    with pytest.raises(ValueError, match=r"urn:oid:1\.2\.9 is in the directory twice"):
        Directory([b, a, b])


def test_store_round_trip(node: Node, pem: dict[str, str]) -> None:
    full = entry(timeout=3, assigning_authority="1.2.3", tls={**pem, "verify": False})
    assert node.store.add_community(full) is True
    assert node.store.add_community(entry(query_url="http://other.example.org")) is False
    assert node.store.add_community(entry(home_community_id="urn:oid:1.2.3.4.5")) is True
    rows = node.store.list_communities()
    assert [r["home_community_id"] for r in rows] == ["urn:oid:1.2.3.4.5", HOME]
    stored = rows[1]
    assert stored.pop("added")
    assert stored == community_to_mapping(community_from_mapping(full))
    assert rows[0]["timeout"] is None and rows[0]["tls"] == {
        "ca_file": "",
        "cert_file": "",
        "key_file": "",
        "verify": True,
    }
    assert node.store.remove_community(HOME) is True
    assert node.store.remove_community(HOME) is False
    assert [r["home_community_id"] for r in node.store.list_communities()] == ["urn:oid:1.2.3.4.5"]


def test_store_refuses_an_invalid_entry(node: Node) -> None:
    with pytest.raises(ValueError, match="query_url must be"):
        node.store.add_community(entry(query_url="ftp://x"))
    assert node.store.list_communities() == []


def test_load_directory_merges_file_and_database(node: Node, settings: Settings) -> None:
    settings = dataclasses.replace(settings, communities=(entry(), entry(home_community_id="urn:oid:1.2.3.4.8")))
    node.store.add_community(entry(home_community_id="urn:oid:1.2.3.4.7", query_url="http://db.example.org/x"))
    d = load_directory(settings, node.store)
    assert [(c.home_community_id, c.source) for c in d.all()] == [
        (HOME, "config"),
        ("urn:oid:1.2.3.4.7", "database"),
        ("urn:oid:1.2.3.4.8", "config"),
    ]
    db = d.get("urn:oid:1.2.3.4.7")
    assert db is not None and db.query_url == db.retrieve_url == "http://db.example.org/x"


def test_load_directory_empty(node: Node, settings: Settings) -> None:
    assert len(load_directory(settings, node.store)) == 0


def test_file_and_database_naming_one_community_is_an_error(node: Node, settings: Settings) -> None:
    node.store.add_community(entry(query_url="http://db.example.org/x"))
    with pytest.raises(ValueError, match=rf"{HOME} is both in \[\[communities\]\].* and in the database"):
        load_directory(dataclasses.replace(settings, communities=(entry(),)), node.store)


def test_a_file_entry_twice_is_an_error(node: Node, settings: Settings) -> None:
    with pytest.raises(ValueError, match=rf"#2: homeCommunityId {HOME} is configured twice"):
        load_directory(dataclasses.replace(settings, communities=(entry(), entry())), node.store)


def test_invalid_entries_are_named(node: Node, settings: Settings, pem: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"\[\[communities\]\] #1: query_url is required"):
        load_directory(dataclasses.replace(settings, communities=({"home_community_id": HOME},)), node.store)
    node.store.add_community(entry(tls={"ca_file": pem["ca_file"]}))
    Path(pem["ca_file"]).unlink()  # gone since it was added
    with pytest.raises(ValueError, match=rf"community {HOME} \(database\): tls.ca_file: no such file"):
        load_directory(settings, node.store)


def test_own_community_is_dropped_with_a_warning(
    node: Node, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    own = node.home_community_id
    settings = dataclasses.replace(settings, communities=(entry(home_community_id=own), entry()))
    with caplog.at_level(logging.WARNING, logger="xca.directory"):
        d = load_directory(settings, node.store, exclude=own)
    assert [c.home_community_id for c in d.all()] == [HOME]
    (record,) = caplog.records
    assert "own homeCommunityId" in record.getMessage() and record.__dict__["home_community_id"] == own
    caplog.clear()
    node.store.add_community(entry(home_community_id="urn:oid:1.2.3.4.7"))
    d = load_directory(dataclasses.replace(settings, communities=()), node.store, exclude="urn:oid:1.2.3.4.7")
    assert len(d) == 0 and len(caplog.records) == 1
    assert len(load_directory(settings, node.store, exclude="urn:oid:9.9")) == 3 and len(caplog.records) == 1


# --- a running gateway's directory -----------------------------------------------------------------------------


def test_refreshing_directory_sees_database_changes_after_its_interval(node: Node, settings: Settings) -> None:
    now = [100.0]
    d = RefreshingDirectory(lambda: load_directory(settings, node.store), every=5.0, clock=lambda: now[0])
    assert len(d) == 0
    node.store.add_community(entry())
    now[0] += 4.9
    assert HOME not in d  # not yet: at most one read per interval
    now[0] += 0.1
    assert HOME in d and d.get(HOME) is not None and [c.home_community_id for c in d] == [HOME]
    node.store.remove_community(HOME)
    now[0] += 5.0
    assert d.all() == [] and d.get(HOME) is None


def test_refreshing_directory_keeps_the_last_good_one_when_a_read_fails(
    node: Node, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    node.store.add_community(entry())
    source = [settings]
    d = RefreshingDirectory(lambda: load_directory(source[0], node.store), every=1.0, clock=lambda: now[0])
    source[0] = dataclasses.replace(settings, communities=(entry(),))  # now named in the file and in the database
    now[0] += 1.0
    with caplog.at_level(logging.ERROR, logger="xca.directory"):
        assert HOME in d and len(d) == 1
    assert "last good one stays in use" in caplog.text
