"""``xds consent grant|deny|revoke|list|emergencies`` and ``xds audit list``: output, filters and exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from xds import cli
from xds.config import Settings
from xds.node import Node
from xds.store.audit import SpoolRecord

PATIENT = "123456782^^^&2.16.840.1.113883.2.4.6.3&ISO"
OTHER = "999999990^^^&2.16.840.1.113883.2.4.6.3&ISO"
HOME = "urn:oid:1.2.3.4.7"
URA = "01234567"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_node_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDS_CONFIG", "XDS_HOST", "XDS_PORT", "XDS_DATA_DIR", "XDS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII text is a TOML basic string


@pytest.fixture
def config(settings: Settings, tmp_path: Path) -> str:
    """A configuration file for the test's database."""
    path = tmp_path / "node.toml"
    path.write_text(
        f"[node]\ndata_dir = {_toml(settings.data_dir)}\ndatabase_url = {_toml(settings.database_url)}\n"
        f"home_community_id = {_toml(settings.home_community_id)}\n"
    )
    return str(path)


@pytest.fixture
def node(settings: Settings) -> Iterator[Node]:
    """A node on the database of ``config`` (the CLI opens its own)."""
    n = Node.open(settings)
    yield n
    n.close()


def run(capsys: pytest.CaptureFixture[str], config: str, *argv: str) -> tuple[int, str, str]:
    code = cli.main([*argv, "--config", config])
    out, err = capsys.readouterr()
    return code, out, err


# -- consent grant / deny -------------------------------------------------------------------------------------


def test_grant_and_deny_record_directives(config: str, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, config, "consent", "grant", PATIENT) == (0, f"grant everyone (#1) for {PATIENT}\n", "")
    assert run(capsys, config, "consent", "grant", PATIENT, "--community", HOME, "--source", "portal") == (
        0,
        f"grant community {HOME} (#2) for {PATIENT}\n",
        "",
    )
    argv = ["consent", "deny", PATIENT, "--organisation", URA, "--category", "57016-8"]
    argv += ["--from", "2026-12-01T08:00:00+01:00", "--until", "2027-01-01", "--source", "paper form"]
    assert run(capsys, config, *argv) == (0, f"deny organisation {URA} category 57016-8 (#3) for {PATIENT}\n", "")
    assert run(capsys, config, "consent", "deny", OTHER, "--emergency") == (
        0,
        f"deny emergency (#4) for {OTHER}\n",
        "",
    )

    every = node.consents.listing()
    assert [(d.id, d.patient_id, d.decision, d.who, d.who_id) for d in every] == [
        (1, PATIENT, "grant", "everyone", ""),
        (2, PATIENT, "grant", "community", HOME),
        (3, PATIENT, "deny", "organisation", URA),
        (4, OTHER, "deny", "emergency", ""),
    ]
    third = every[2]
    assert (third.category, third.source) == ("57016-8", "paper form")
    assert third.valid_from == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    assert third.valid_until == datetime(2027, 1, 1, tzinfo=UTC)  # a time without zone is UTC
    assert every[0].valid_from is None and every[0].valid_until is None
    assert all(d.recorded is not None and d.revoked is None for d in every)


def test_patient_id_is_normalised(config: str, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, config, "consent", "grant", "123456782^^^&2.16.840.1.113883.2.4.6.3&ISO^^")
    assert code == 0 and out.endswith(f"for {PATIENT}\n")
    assert [d.patient_id for d in node.consents.listing()] == [PATIENT]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["grant", "123456782"], "'123456782' is not an XDS patient id (id^^^&OID&ISO)"),
        (["grant", "1^^^&BSN&ISO"], "is not an XDS patient id"),
        (["deny", "1^2^3^4^5^6^7^8^9^10^11^12"], "CX has more than"),
        (["grant", PATIENT, "--from", "soon"], "'soon' is not an ISO 8601 time"),
        (["deny", PATIENT, "--until", "2026-13-01"], "'2026-13-01' is not an ISO 8601 time"),
        (["deny", PATIENT, "--emergency", "--category", "57016-8"], "the emergency scope only records a refusal"),
        (["grant", PATIENT, "--from", "2027-01-01", "--until", "2026-01-01"], "valid_until must be after valid_from"),
        (["grant", PATIENT, "--from", "2026-01-01", "--until", "2026-01-01"], "valid_until must be after valid_from"),
    ],
)
def test_invalid_directives_are_usage_errors(
    config: str, node: Node, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, config, "consent", *argv)
    assert (code, out) == (2, "")
    assert err.startswith("xds: ") and message in err
    assert node.consents.listing(include_revoked=True) == []


@pytest.mark.parametrize("option", ["--community", "--organisation"])
def test_an_empty_scope_is_a_usage_error(
    config: str, node: Node, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    """``--community "$UNSET"`` must not record a grant for everyone."""
    code, _, _ = run(capsys, config, "consent", "grant", PATIENT, option, "")
    assert code == 2
    assert node.consents.listing() == []


@pytest.mark.parametrize(
    "argv",
    [
        ["deny", PATIENT, "--emergency", "--community", HOME],
        ["deny", PATIENT, "--community", HOME, "--organisation", URA],
        ["grant", PATIENT, "--emergency"],
        ["grant"],
    ],
)
def test_argument_errors_exit_2(config: str, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["consent", *argv, "--config", config])
    assert exc.value.code == 2
    assert capsys.readouterr().err


# -- consent list / revoke ------------------------------------------------------------------------------------


def test_list_revoke_and_list_all(config: str, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, config, "consent", "list") == (0, "", "")
    assert run(capsys, config, "consent", "list", "--json") == (0, "[]\n", "")
    run(capsys, config, "consent", "grant", PATIENT, "--source", "portal")
    run(
        capsys,
        config,
        "consent",
        "deny",
        PATIENT,
        "--organisation",
        URA,
        "--from",
        "2026-12-01",
        "--until",
        "2027-01-01",
    )
    run(capsys, config, "consent", "grant", OTHER)

    code, out, err = run(capsys, config, "consent", "list")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"#1\t{PATIENT}\tgrant everyone (#1)\t-..-\tportal",
        f"#2\t{PATIENT}\tdeny organisation {URA} (#2)\t2026-12-01T00:00:00+00:00..2027-01-01T00:00:00+00:00\t",
        f"#3\t{OTHER}\tgrant everyone (#3)\t-..-\t",
    ]
    code, out, _ = run(capsys, config, "consent", "list", PATIENT, "--json")
    rows = json.loads(out)
    assert code == 0 and [r["id"] for r in rows] == [1, 2]
    assert rows[1] == {
        "id": 2,
        "patient_id": PATIENT,
        "decision": "deny",
        "who": "organisation",
        "who_id": URA,
        "category": "",
        "valid_from": "2026-12-01T00:00:00+00:00",
        "valid_until": "2027-01-01T00:00:00+00:00",
        "source": "",
        "recorded": rows[1]["recorded"],
        "revoked": "",
    }
    assert datetime.fromisoformat(rows[1]["recorded"]).tzinfo is not None

    assert run(capsys, config, "consent", "revoke", "1") == (0, "revoked #1\n", "")
    code, out, err = run(capsys, config, "consent", "revoke", "1")
    assert (code, out) == (1, "") and "no directive #1 in force" in err
    code, _, err = run(capsys, config, "consent", "revoke", "99")
    assert code == 1 and "no directive #99 in force" in err

    code, out, _ = run(capsys, config, "consent", "list", PATIENT)
    assert code == 0 and [line.split("\t")[0] for line in out.splitlines()] == ["#2"]
    code, out, _ = run(capsys, config, "consent", "list", PATIENT, "--all")
    lines = out.splitlines()
    assert code == 0 and [line.split("\t")[0] for line in lines] == ["#1", "#2"]
    assert lines[0].split("\t")[-1].startswith("revoked 20") and "revoked" not in lines[1]
    code, out, _ = run(capsys, config, "consent", "list", "--all", "--json")
    revoked = {r["id"]: r["revoked"] for r in json.loads(out)}
    assert code == 0 and revoked[1] and revoked[2] == "" and revoked[3] == ""
    assert node.consents.directives(PATIENT)[0].revoked is not None


def test_list_rejects_a_bad_patient(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, config, "consent", "list", "123456782")
    assert (code, out) == (2, "") and "is not an XDS patient id" in err


# -- consent emergencies --------------------------------------------------------------------------------------


def test_emergencies(config: str, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, config, "consent", "emergencies") == (0, "", "")
    assert run(capsys, config, "consent", "emergencies", "--json") == (0, "[]\n", "")
    node.consents.record_emergency(
        patient_id=PATIENT, at=T0, requester="dr. Jansen", organisation_id=URA, reason="unconscious"
    )
    node.consents.record_emergency(patient_id=OTHER, at=T0, requester="dr. Bakker", organisation_id=URA, reason="ER")

    code, out, _ = run(capsys, config, "consent", "emergencies")
    assert code == 0 and out.splitlines() == [
        f"2026-11-01T08:00:00+00:00\t{PATIENT}\tdr. Jansen\t{URA}\tunconscious",
        f"2026-11-01T08:00:00+00:00\t{OTHER}\tdr. Bakker\t{URA}\tER",
    ]
    code, out, _ = run(capsys, config, "consent", "emergencies", OTHER, "--json")
    assert code == 0 and json.loads(out) == [
        {
            "id": 2,
            "patient_id": OTHER,
            "at": "2026-11-01T08:00:00+00:00",
            "requester": "dr. Bakker",
            "organisation_id": URA,
            "reason": "ER",
            "notified": "",
        }
    ]
    code, _, err = run(capsys, config, "consent", "emergencies", "bad")
    assert code == 2 and "is not an XDS patient id" in err


# -- audit list -----------------------------------------------------------------------------------------------


def _spool(node: Node) -> None:
    node.audit.append(
        [
            SpoolRecord(
                event=f"ITI-{n}",
                outcome=4 if n == 43 else 0,
                xml=f"<AuditMessage n='{n}'>Zoë</AuditMessage>".encode(),
                patient_id=PATIENT if n != 18 else "",
                recorded=T0 + timedelta(minutes=i),
            )
            for i, n in enumerate((18, 41, 43))
        ]
    )


def test_audit_list_empty(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, config, "audit", "list") == (0, "", "")
    assert run(capsys, config, "audit", "list", "--json") == (0, "[]\n", "")


def test_audit_list_text(config: str, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    _spool(node)
    sent_id = node.audit.unsent(1)[0][0]
    node.audit.mark_sent([sent_id])
    code, out, err = run(capsys, config, "audit", "list")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [line.split("\t")[:5] for line in lines] == [
        ["#1", "2026-11-01T08:00:00+00:00", "ITI-18", "outcome 0", "-"],
        ["#2", "2026-11-01T08:01:00+00:00", "ITI-41", "outcome 0", PATIENT],
        ["#3", "2026-11-01T08:02:00+00:00", "ITI-43", "outcome 4", PATIENT],
    ]
    assert sent_id == 1 and lines[0].split("\t")[5].startswith("sent 20")
    assert [line.split("\t")[5] for line in lines[1:]] == ["unsent", "unsent"]


def test_audit_list_json_and_filters(config: str, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    _spool(node)
    code, out, _ = run(capsys, config, "audit", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and rows[2] == {
        "id": 3,
        "recorded": "2026-11-01T08:02:00+00:00",
        "event": "ITI-43",
        "outcome": 4,
        "patient_id": PATIENT,
        "sent": "",
    }
    assert [r["id"] for r in rows] == [1, 2, 3] and "xml" not in rows[0]

    def ids(*argv: str) -> list[int]:
        code, out, err = run(capsys, config, "audit", "list", "--json", *argv)
        assert (code, err) == (0, "")
        return [r["id"] for r in json.loads(out)]

    assert ids("--patient", PATIENT) == [2, 3]
    assert ids("--patient", OTHER) == []
    assert ids("--since", "2026-11-01T09:01:00+01:00") == [2, 3]  # 08:01 UTC
    assert ids("--since", "2026-11-01T08:01:30") == [3]  # no zone: UTC
    assert ids("--limit", "2") == [2, 3]  # the newest, oldest first
    assert ids("--limit", "0") == [3]  # at least one
    assert ids("--patient", PATIENT, "--since", "2026-11-01", "--limit", "1") == [3]


def test_audit_list_xml(config: str, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    _spool(node)
    code, out, _ = run(capsys, config, "audit", "list", "--xml", "--limit", "1")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].startswith("#3\t") and lines[1] == "<AuditMessage n='43'>Zoë</AuditMessage>"
    code, out, _ = run(capsys, config, "audit", "list", "--xml", "--json", "--patient", PATIENT)
    assert code == 0 and [r["xml"] for r in json.loads(out)] == [
        "<AuditMessage n='41'>Zoë</AuditMessage>",
        "<AuditMessage n='43'>Zoë</AuditMessage>",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--patient", "123456782"], "is not an XDS patient id"),
        (["--since", "yesterday"], "'yesterday' is not an ISO 8601 time"),
    ],
)
def test_audit_list_usage_errors(
    config: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, config, "audit", "list", *argv)
    assert (code, out) == (2, "") and message in err
