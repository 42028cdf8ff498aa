"""Node configuration: one TOML file, defaults for every key, environment overrides.

The keys of ARCHITECTURE.md §5 are a contract; keys may be added, never renamed::

    [node]      host, port, data_dir, database_url, home_community_id, repository_unique_id, patient_id_policy
    [registry]  code_lists (path to a NIST-format codes.xml), max_query_results, max_request_bytes
    [repository] documents_dir, max_attachment_bytes, max_retrieve_documents, registry_url, registry_timeout
    [gateway]   timeout, deadline, max_response_bytes  (as gateway_* settings)
    [consent]   default ("opt-out" | "opt-in"), policies (["local"], add "mitz"), emergency (bool),
                mitz = {url, timeout, ca_file, cert_file, key_file, cache_seconds, data_holder_ura, care_provider_type}
    [xua]       trusted_certs (PEM files), audiences, clock_skew, allow_sha1, required (actor names),
                outbound ("forward" | "node" | "none"), signing_key_file, signing_cert_file, issuer  (as xua_*)
    [tls]       cert_file, key_file, client_ca_file, require_client_cert, organisation_attribute  (as tls_*)
    [audit]     syslog_host, syslog_port, syslog_transport ("tls" | "udp"), ca_file, cert_file, key_file,
                enterprise_site_id   (as audit_* settings)
    [[mailboxes]] name, organisations, departments, persons, telecoms, default, notify, auto_import,
                quiet_period, xdm_addresses   (push deliveries, see xds.recipient.addressing)
    [import_defaults] class_code, type_code, ... ("code^^scheme") for imported limited metadata (xds.recipient.inbox)
    [inbox]     link_base (URL of the inbox in notification mails; "": the mail names the command), retry_seconds
    [smtp]      host, port, security, username, password, from_address, timeout, ca_file  (xds.mail.settings)
    [smtp_listener] host, port (0: off), max_message_bytes   (XDM over e-mail in)
    [push]      retries, retry_delay, timeout   (as push_* settings: xds push)
    [imaging]   source_id (the Imaging Document Source OID: Retrieve Location UID of the manifests), and the
                manifests' class_code, type_code, ... ("code^^scheme", as in [import_defaults])
    [[communities]] home_community_id, query_url, retrieve_url, push_url, xdm_email, assigning_authority, timeout,
                tls = {ca_file, cert_file, key_file, verify}   (one table per remote community, see xds.communities)

Environment: ``XDS_CONFIG`` (file), ``XDS_DATA_DIR``, ``XDS_DATABASE_URL``, ``XDS_HOST``, ``XDS_PORT``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from xds.communities import community_from_mapping
from xds.dicom.defaults import ImagingDefaults
from xds.recipient.addressing import DEFAULT_MAILBOX, Mailbox, mailboxes_from_config
from xds.recipient.inbox import ImportDefaults, import_defaults_from_mapping
from xds.registry.patients import PatientPolicy


class ConfigError(ValueError):
    """The configuration file or an override is invalid."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything a node needs to start."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = "./var"
    database_url: str = ""
    home_community_id: str = ""
    repository_unique_id: str = ""
    patient_id_policy: PatientPolicy = PatientPolicy.REGISTERED
    code_lists: str = ""
    max_query_results: int = 10_000
    max_request_bytes: int = 64 * 1024 * 1024
    documents_dir: str = ""
    max_attachment_bytes: int = 8 * 1024**3
    max_retrieve_documents: int = 1000
    registry_url: str = ""
    registry_timeout: float = 30.0
    gateway_timeout: float = 10.0
    gateway_deadline: float = 15.0
    gateway_max_response_bytes: int = 64 * 1024 * 1024
    consent_default: str = "opt-out"
    consent_policies: tuple[str, ...] = ("local",)
    consent_emergency: bool = True
    consent_mitz: Mapping[str, Any] | None = None
    organisation_id: str = ""
    """This node's organisation (URA in the Netherlands): the data holder a consent decision point is told."""
    xua_trusted_certs: tuple[str, ...] = ()
    """PEM files of the X-Assertion Providers whose signatures are trusted; empty: XUA is not checked."""
    xua_audiences: tuple[str, ...] = ()
    xua_clock_skew: float = 60.0
    xua_allow_sha1: bool = False
    xua_required: tuple[str, ...] = ()
    xua_authn_contexts: tuple[str, ...] | None = None
    """Accepted AuthnContextClassRef URIs (None: the verifier's default, every SAML 2.0 class but
    InternetProtocol; empty: any)."""
    xua_purposes: tuple[str, ...] | None = None
    """Accepted purpose-of-use codes (None: TREATMENT, EMERGENCY, TREAT, ETREAT, COC; empty: any)."""
    xua_roles: tuple[str, ...] = ()
    """Accepted role codes (empty: any)."""
    """Actors that refuse a request without an assertion: registry, repository, responding, initiating."""
    xua_outbound: str = "forward"
    """What the initiating gateway's outbound calls carry: "forward" (the consumer's verified assertion, when
    there is one), "node" (an assertion signed by this node for the consumer), or "none"."""
    xua_signing_key_file: str = ""
    xua_signing_cert_file: str = ""
    xua_issuer: str = ""
    """Issuer of the assertions this node signs (outbound = "node")."""
    tls_cert_file: str = ""
    """``xds serve`` over HTTPS with this certificate (PEM) and ``tls_key_file``; empty: plain HTTP."""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    """CAs whose client certificates are accepted; with ``tls_require_client_cert`` one is required."""
    tls_require_client_cert: bool = False
    tls_organisation_attribute: str = "organizationIdentifier"
    """The client certificate's subject attribute that names the requester's organisation (when no XUA
    assertion does)."""
    audit_syslog_host: str = ""
    audit_syslog_port: int = 6514
    audit_syslog_transport: str = "tls"
    audit_ca_file: str = ""
    audit_cert_file: str = ""
    audit_key_file: str = ""
    audit_enterprise_site_id: str = ""
    communities: tuple[Mapping[str, Any], ...] = field(default=())
    mailboxes: tuple[Mailbox, ...] = (DEFAULT_MAILBOX,)
    import_defaults: ImportDefaults = field(default_factory=ImportDefaults)
    inbox_link_base: str = ""
    """Where the inbox is on the web, for links in notification mails (``<link_base>/<reference>``); "": the
    mail names the ``xds inbox show`` command instead."""
    inbox_retry_seconds: float = 60.0
    """How long a notification that could not be mailed waits before the next try."""
    smtp: Mapping[str, Any] | None = None
    smtp_listener_host: str = "127.0.0.1"
    smtp_listener_port: int = 0
    """The SMTP listener for XDM packages by e-mail (0: off)."""
    smtp_listener_max_message_bytes: int = 64 * 1024 * 1024
    imaging_defaults: ImagingDefaults = field(default_factory=ImagingDefaults)
    """The codes of a study manifest's DocumentEntry (``[imaging]`` class_code, type_code, ...)."""
    imaging_source_id: str = ""
    """This node's Imaging Document Source OID (the manifests' Retrieve Location UID); "": repository_unique_id."""
    push_retries: int = 3
    push_retry_delay: float = 2.0
    push_timeout: float = 60.0
    log_level: str = "info"
    workers: int = 1

    @property
    def data_path(self) -> Path:
        """``data_dir`` as an absolute path."""
        return Path(self.data_dir).expanduser().resolve()

    @property
    def documents_path(self) -> Path:
        """Where the document store lives: ``documents_dir``, or ``<data_dir>/documents``."""
        if self.documents_dir:
            return Path(self.documents_dir).expanduser().resolve()
        return self.data_path / "documents"

    @property
    def effective_database_url(self) -> str:
        """``database_url``, or a SQLite file under ``data_dir`` when it is empty."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_path / 'registry.sqlite3'}"


_SECTIONS = {
    "node": {
        "host",
        "port",
        "data_dir",
        "database_url",
        "home_community_id",
        "repository_unique_id",
        "patient_id_policy",
        "log_level",
        "workers",
        "organisation_id",
    },
    "registry": {"code_lists", "max_query_results", "max_request_bytes"},
    "gateway": {"timeout", "deadline", "max_response_bytes"},
    "audit": {
        "syslog_host",
        "syslog_port",
        "syslog_transport",
        "ca_file",
        "cert_file",
        "key_file",
        "enterprise_site_id",
    },
    "inbox": {"link_base", "retry_seconds"},
    "smtp_listener": {"host", "port", "max_message_bytes"},
    "push": {"retries", "retry_delay", "timeout"},
    "imaging": {
        "source_id",
        "class_code",
        "type_code",
        "healthcare_facility_type_code",
        "practice_setting_code",
        "confidentiality_code",
        "content_type_code",
        "language_code",
    },
    "repository": {
        "documents_dir",
        "max_attachment_bytes",
        "max_retrieve_documents",
        "registry_url",
        "registry_timeout",
    },
}


def _from_toml(doc: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section, keys in _SECTIONS.items():
        table = doc.get(section, {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"[{section}] must be a table")
        unknown = set(table) - keys
        if unknown:
            raise ConfigError(f"unknown key(s) in [{section}]: {', '.join(sorted(unknown))}")
        if section == "imaging":
            out.update(_imaging(table))
            continue
        prefix = f"{section}_" if section in ("gateway", "audit", "inbox", "smtp_listener", "push") else ""
        out.update({f"{prefix}{key}": value for key, value in table.items()})
    consent = doc.get("consent", {})
    if not isinstance(consent, Mapping):
        raise ConfigError("[consent] must be a table")
    unknown = set(consent) - {"default", "policies", "emergency", "mitz"}
    if unknown:
        raise ConfigError(f"unknown key(s) in [consent]: {', '.join(sorted(unknown))}")
    if "default" in consent:
        out["consent_default"] = consent["default"]
    if "policies" in consent:
        policies = consent["policies"]
        if not isinstance(policies, list) or not all(isinstance(p, str) for p in policies):
            raise ConfigError('[consent] policies must be a list of names, e.g. ["local", "mitz"]')
        out["consent_policies"] = tuple(policies)
    if "emergency" in consent:
        if not isinstance(consent["emergency"], bool):
            raise ConfigError("[consent] emergency must be true or false")
        out["consent_emergency"] = consent["emergency"]
    if "mitz" in consent:
        if not isinstance(consent["mitz"], Mapping):
            raise ConfigError("[consent.mitz] must be a table")
        out["consent_mitz"] = dict(consent["mitz"])
    if "xua" in doc:
        out.update(_xua(doc["xua"]))
    if "tls" in doc:
        out.update(_tls(doc["tls"]))
    if "communities" in doc:
        out["communities"] = _communities(doc["communities"])
    if "mailboxes" in doc:
        value = doc["mailboxes"]
        if not isinstance(value, list):
            raise ConfigError("mailboxes must be an array of tables: [[mailboxes]]")
        try:
            out["mailboxes"] = mailboxes_from_config(value)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if "import_defaults" in doc:
        if not isinstance(doc["import_defaults"], Mapping):
            raise ConfigError("[import_defaults] must be a table")
        try:
            out["import_defaults"] = import_defaults_from_mapping(doc["import_defaults"])
        except ValueError as exc:
            raise ConfigError(f"[import_defaults] {exc}") from None
    if "smtp" in doc:
        out["smtp"] = _smtp(doc["smtp"])
    return out


def _imaging(table: Mapping[str, Any]) -> dict[str, Any]:
    """``[imaging]``: the source id, and manifest codes written like ``[import_defaults]``'s."""
    out: dict[str, Any] = {}
    if "source_id" in table:
        out["imaging_source_id"] = table["source_id"]
    codes = {k: v for k, v in table.items() if k != "source_id"}
    if codes:
        try:
            parsed = import_defaults_from_mapping(codes)
        except ValueError as exc:
            raise ConfigError(f"[imaging] {exc}") from None
        out["imaging_defaults"] = dataclasses.replace(ImagingDefaults(), **{k: getattr(parsed, k) for k in codes})
    return out


def _smtp(table: Any) -> Mapping[str, Any]:
    """``[smtp]``, checked by :func:`xds.mail.settings.smtp_settings_from_mapping`."""
    from xds.mail.settings import smtp_settings_from_mapping

    if not isinstance(table, Mapping):
        raise ConfigError("[smtp] must be a table")
    try:
        smtp_settings_from_mapping(table)
    except ValueError as exc:
        raise ConfigError(f"[smtp] {exc}") from None
    return dict(table)


XUA_ACTORS = ("registry", "repository", "recipient", "imaging", "responding", "initiating")


def _tls(table: Any) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise ConfigError("[tls] must be a table")
    unknown = set(table) - {"cert_file", "key_file", "client_ca_file", "require_client_cert", "organisation_attribute"}
    if unknown:
        raise ConfigError(f"unknown key(s) in [tls]: {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for key in ("cert_file", "key_file", "client_ca_file", "organisation_attribute"):
        if key in table:
            if not isinstance(table[key], str):
                raise ConfigError(f"[tls] {key} must be a string")
            out[f"tls_{key}"] = table[key]
    if "require_client_cert" in table:
        if not isinstance(table["require_client_cert"], bool):
            raise ConfigError("[tls] require_client_cert must be true or false")
        out["tls_require_client_cert"] = table["require_client_cert"]
    if bool(out.get("tls_cert_file")) != bool(out.get("tls_key_file")):
        raise ConfigError("[tls] cert_file and key_file go together")
    if out.get("tls_require_client_cert") and not out.get("tls_client_ca_file"):
        raise ConfigError("[tls] require_client_cert needs client_ca_file (whose certificates to accept)")
    if out.get("tls_client_ca_file") and not out.get("tls_cert_file"):
        raise ConfigError("[tls] client_ca_file needs cert_file and key_file (HTTPS)")
    return out


def _xua(table: Any) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise ConfigError("[xua] must be a table")
    unknown = set(table) - {
        "trusted_certs",
        "audiences",
        "clock_skew",
        "allow_sha1",
        "required",
        "outbound",
        "signing_key_file",
        "signing_cert_file",
        "issuer",
        "authn_contexts",
        "purposes",
        "roles",
    }
    if unknown:
        raise ConfigError(f"unknown key(s) in [xua]: {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for key in ("authn_contexts", "purposes", "roles"):
        if key in table:
            value = table[key]
            if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
                raise ConfigError(f"[xua] {key} must be a list of strings (empty: any)")
            out[f"xua_{key}"] = tuple(value)
    for key in ("trusted_certs", "audiences", "required"):
        if key in table:
            value = table[key]
            if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
                raise ConfigError(f"[xua] {key} must be a list of strings")
            out[f"xua_{key}"] = tuple(value)
    for name in out.get("xua_required", ()):
        if name not in XUA_ACTORS:
            raise ConfigError(f"[xua] required: unknown actor {name!r} (known: {', '.join(XUA_ACTORS)})")
    if "allow_sha1" in table:
        if not isinstance(table["allow_sha1"], bool):
            raise ConfigError("[xua] allow_sha1 must be true or false")
        out["xua_allow_sha1"] = table["allow_sha1"]
    if "clock_skew" in table:
        out["xua_clock_skew"] = table["clock_skew"]
    for key in ("outbound", "signing_key_file", "signing_cert_file", "issuer"):
        if key in table:
            if not isinstance(table[key], str):
                raise ConfigError(f"[xua] {key} must be a string")
            out[f"xua_{key}"] = table[key]
    if out.get("xua_outbound", "forward") not in ("forward", "node", "none"):
        raise ConfigError("[xua] outbound must be 'forward', 'node' or 'none'")
    if out.get("xua_outbound") == "node" and not (
        out.get("xua_signing_key_file") and out.get("xua_signing_cert_file") and out.get("xua_issuer")
    ):
        raise ConfigError("[xua] outbound = 'node' needs signing_key_file, signing_cert_file and issuer")
    if out.get("xua_trusted_certs") and not out.get("xua_audiences"):
        raise ConfigError("[xua] audiences must name this node's audience URI(s) when trusted_certs is set")
    if out.get("xua_required") and not out.get("xua_trusted_certs"):
        raise ConfigError("[xua] required needs trusted_certs (whose signatures to trust)")
    return out


def _communities(value: Any) -> tuple[Mapping[str, Any], ...]:
    """The ``[[communities]]`` tables, each validated (:func:`xds.communities.community_from_mapping`)."""
    if not isinstance(value, list) or not all(isinstance(t, Mapping) for t in value):
        raise ConfigError("communities must be an array of tables: [[communities]]")
    seen: set[str] = set()
    for n, table in enumerate(value, 1):
        try:
            home = community_from_mapping(table).home_community_id
        except ValueError as exc:
            raise ConfigError(f"[[communities]] #{n}: {exc}") from None
        if home in seen:
            raise ConfigError(f"[[communities]] #{n}: homeCommunityId {home} is configured twice")
        seen.add(home)
    return tuple(value)


def _coerce(values: dict[str, Any]) -> Settings:
    kinds = {f.name: f.type for f in fields(Settings)}
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if kinds.get(name) in ("int", "float"):
            convert = int if kinds[name] == "int" else float
            try:
                value = convert(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{name} must be a number, got {value!r}") from None
        kwargs[name] = value
    if "patient_id_policy" in kwargs:
        try:
            kwargs["patient_id_policy"] = PatientPolicy(kwargs["patient_id_policy"])
        except ValueError:
            raise ConfigError("patient_id_policy must be 'registered' or 'bsn'") from None
    if kwargs.get("consent_default", "opt-out") not in ("opt-in", "opt-out"):
        raise ConfigError("[consent] default must be 'opt-in' or 'opt-out'")
    policies = kwargs.get("consent_policies", ("local",))
    for name in policies:
        if name not in ("local", "mitz"):
            raise ConfigError(f"[consent] policies: unknown policy {name!r} (known: local, mitz)")
    if not policies:
        raise ConfigError("[consent] policies must name at least one policy")
    if "mitz" in policies and not kwargs.get("consent_mitz"):
        raise ConfigError("[consent] policies names mitz but there is no [consent.mitz] table")
    if kwargs.get("audit_syslog_transport", "tls") not in ("tls", "udp"):
        raise ConfigError("[audit] syslog_transport must be 'tls' or 'udp'")
    return Settings(**kwargs)


def load_settings(path: str | None = None, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read ``path`` (or ``$XDS_CONFIG``), apply environment overrides, then explicit ``overrides``."""
    env = os.environ if env is None else env
    path = path or env.get("XDS_CONFIG") or None
    values: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                values = _from_toml(tomllib.load(fh))
        except OSError as exc:
            raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    for var, key in (
        ("XDS_DATA_DIR", "data_dir"),
        ("XDS_DATABASE_URL", "database_url"),
        ("XDS_HOST", "host"),
        ("XDS_PORT", "port"),
        ("XDS_WORKERS", "workers"),
        ("XDS_DOCUMENTS_DIR", "documents_dir"),
        ("XDS_REGISTRY_URL", "registry_url"),
    ):
        if env.get(var):
            values[key] = env[var]
    values.update({k: val for k, val in overrides.items() if val is not None})
    return _coerce(values)


__all__ = ["ConfigError", "Settings", "load_settings"]
