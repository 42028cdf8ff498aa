"""The HTTPS pieces of ``xds serve``: the server context, the organisation read off a client certificate, and the
``[tls]`` configuration (the handshakes themselves are in tests/e2e/test_tls_e2e.py)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from xds.config import ConfigError, load_settings
from xds.web.tls import _escape, certificate_organisation, server_context


@pytest.fixture
def server_files(tmp_path: Path) -> tuple[str, str, str]:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key, cafile = tmp_path / "s.pem", tmp_path / "s.key", tmp_path / "ca.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(cafile))
    return str(cert), str(key), str(cafile)


def test_server_context_is_tls_1_2_or_newer(server_files: tuple[str, str, str]) -> None:
    cert, key, _ = server_files
    ctx = server_context(cert, key)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2 and ctx.verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize(("required", "mode"), [(True, ssl.CERT_REQUIRED), (False, ssl.CERT_OPTIONAL)])
def test_client_certificates_asked_for_or_required(
    server_files: tuple[str, str, str], required: bool, mode: ssl.VerifyMode
) -> None:
    cert, key, cafile = server_files
    assert server_context(cert, key, cafile, required).verify_mode == mode


def test_organisation_from_the_client_certificate_subject() -> None:
    scope = {
        "extensions": {
            "tls": {"client_cert_subject": [("commonName", "x"), ("organizationIdentifier", "NTRNL-01234567")]}
        }
    }
    assert certificate_organisation(scope, "organizationIdentifier") == "NTRNL-01234567"
    assert certificate_organisation(scope, "organizationName") == ""
    assert certificate_organisation({}, "organizationIdentifier") == ""
    assert certificate_organisation({"extensions": {"tls": None}}, "organizationIdentifier") == ""


@pytest.mark.parametrize(
    ("value", "escaped"), [("a,b", "a\\,b"), (" x", "\\ x"), ("x ", "x\\ "), ("#1", "\\#1"), ("a=b", "a\\=b")]
)
def test_rfc4514_escaping(value: str, escaped: str) -> None:
    assert _escape(value) == escaped


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('cert_file = "a.pem"', "cert_file and key_file go together"),
        ('cert_file = "a"\nkey_file = "b"\nrequire_client_cert = true', "require_client_cert needs client_ca_file"),
        ('client_ca_file = "ca.pem"', "client_ca_file needs cert_file"),
        ("require_client_cert = 1", "true or false"),
        ('cipher = "x"', "unknown key"),
    ],
)
def test_tls_configuration_errors(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "node.toml"
    path.write_text(f"[tls]\n{table}\n")
    with pytest.raises(ConfigError, match=message):
        load_settings(str(path), env={})
