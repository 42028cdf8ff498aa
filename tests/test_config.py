"""Configuration: defaults, the TOML contract of ARCHITECTURE.md §5, environment overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from xds.config import ConfigError, Settings, load_settings
from xds.registry.patients import PatientPolicy


def test_defaults_without_a_file() -> None:
    s = load_settings(env={})
    assert (s.host, s.port, s.data_dir, s.database_url) == ("127.0.0.1", 8080, "./var", "")
    assert s.effective_database_url.startswith("sqlite:///") and s.effective_database_url.endswith("registry.sqlite3")
    assert s.patient_id_policy is PatientPolicy.REGISTERED


def test_contract_keys_and_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text(
        '[node]\nhost = "0.0.0.0"\nport = 9000\ndata_dir = "/srv/xds"\ndatabase_url = ""\n'
        'home_community_id = "urn:oid:1.2.3.4.5"\nrepository_unique_id = "1.2.3.4.5.6"\n'
        'patient_id_policy = "bsn"\n[consent]\ndefault = "opt-in"\n'
        '[[communities]]\nhome_community_id = "urn:oid:1.2.3.4.6"\nquery_url = "http://x"\nretrieve_url = "http://x"\n'
    )
    s = load_settings(str(cfg), env={"XDS_DATABASE_URL": "postgresql+psycopg://db/x"}, port=9100)
    assert s.host == "0.0.0.0" and s.port == 9100 and s.data_dir == "/srv/xds"
    assert s.database_url == "postgresql+psycopg://db/x" == s.effective_database_url
    assert s.home_community_id == "urn:oid:1.2.3.4.5" and s.repository_unique_id == "1.2.3.4.5.6"
    assert s.patient_id_policy is PatientPolicy.BSN and s.consent_default == "opt-in"
    assert s.communities[0]["home_community_id"] == "urn:oid:1.2.3.4.6"
    assert load_settings(env={"XDS_CONFIG": str(cfg)}).port == 9000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[node]\nport = 'x'\n", "port must be a number"),
        ("[node]\nprot = 1\n", "unknown key(s) in [node]: prot"),
        ("[node]\npatient_id_policy = 'all'\n", "patient_id_policy"),
        ("[consent]\ndefault = 'maybe'\n", "opt-in"),
        ("[node\n", "node.toml"),
    ],
)
def test_errors_are_clear(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text(text)
    with pytest.raises(
        ConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")
    ):
        load_settings(str(cfg), env={})


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_settings("/nonexistent/node.toml", env={})


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().port = 1  # type: ignore[misc]


def test_gateway_section(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text("[gateway]\ntimeout = 2.5\ndeadline = 4\nmax_response_bytes = 1000\n")
    s = load_settings(str(path), env={})
    assert (s.gateway_timeout, s.gateway_deadline, s.gateway_max_response_bytes) == (2.5, 4.0, 1000)


def test_imaging_codes_and_source_id(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text(
        '[imaging]\nsource_id = "1.2.3.4"\nclass_code = "IMG^^1.2.3"\n'
        'type_code = { code = "18748-4^^2.16.840.1.113883.6.1", display = "Diagnostic imaging study" }\n'
    )
    s = load_settings(str(config), env={})
    assert s.imaging_source_id == "1.2.3.4"
    assert (s.imaging_defaults.class_code.code, s.imaging_defaults.class_code.scheme) == ("IMG", "1.2.3")
    assert s.imaging_defaults.practice_setting_code.code == "0362"  # not given: the built-in default
    config.write_text('[imaging]\nclass_code = "no scheme"\n')
    with pytest.raises(ConfigError, match=r"\[imaging\] .*code\^\^codingScheme"):
        load_settings(str(config), env={})
