"""The ``[smtp]`` table: defaults, accepted values, and one ValueError per rule, naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from xds.mail.settings import SmtpSettings, smtp_settings_from_mapping

RELAY: dict[str, Any] = {"host": "relay.example.org", "from_address": "xds@example.org"}


def test_empty_table_is_not_configured() -> None:
    settings = smtp_settings_from_mapping({})
    assert settings == SmtpSettings()
    assert not settings.configured


def test_full_table() -> None:
    settings = smtp_settings_from_mapping(
        {
            **RELAY,
            "port": 587,
            "security": "starttls",
            "username": "xds",
            "password": "secret",
            "timeout": 5,
            "ca_file": "/etc/xds/relay-ca.pem",
        }
    )
    assert settings.configured
    assert (settings.port, settings.security, settings.username) == (587, "starttls", "xds")
    assert settings.timeout == 5.0 and isinstance(settings.timeout, float)
    assert settings.ca_file == "/etc/xds/relay-ca.pem"


@pytest.mark.parametrize("security", ["none", "starttls", "tls"])
def test_security_modes(security: str) -> None:
    assert smtp_settings_from_mapping({**RELAY, "security": security}).security == security


# (table, the key the message must name, a fragment of the reason)
INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({**RELAY, "hostname": "x"}, "smtp.hostname", "unknown key"),
    ({**RELAY, "port": "25"}, "smtp.port", "expected an integer"),
    ({**RELAY, "port": True}, "smtp.port", "got bool"),
    ({**RELAY, "timeout": "30"}, "smtp.timeout", "expected a number"),
    ({**RELAY, "timeout": 0}, "smtp.timeout", "positive"),
    ({**RELAY, "host": 1}, "smtp.host", "expected a string"),
    ({**RELAY, "security": "ssl"}, "smtp.security", "'ssl' is not one of"),
    ({**RELAY, "security": "STARTTLS"}, "smtp.security", "is not one of"),
    ({**RELAY, "port": 0}, "smtp.port", "outside 1..65535"),
    ({**RELAY, "port": 65536}, "smtp.port", "outside 1..65535"),
    ({"host": "relay.example.org"}, "smtp.from_address", "required"),
    ({**RELAY, "from_address": "xds"}, "smtp.from_address", "is not an address"),
    ({**RELAY, "from_address": "XDS <xds@example.org>"}, "smtp.from_address", "is not an address"),
    ({**RELAY, "from_address": "xds@localhost"}, "smtp.from_address", "is not an address"),
    ({**RELAY, "username": "xds"}, "smtp.password", "required when smtp.username"),
]


@pytest.mark.parametrize(("table", "key", "reason"), INVALID)
def test_invalid_tables(table: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ValueError, match="^" + key.replace(".", r"\.") + ":") as caught:
        smtp_settings_from_mapping(table)
    assert reason in str(caught.value)


def test_settings_are_frozen() -> None:
    settings = SmtpSettings()
    with pytest.raises(AttributeError):
        settings.host = "x"  # type: ignore[misc]
