"""Community directory entries: one remote community's homeCommunityId, endpoints, patient-id domain and TLS.

Theory of operation: an entry comes from a ``[[communities]]`` table of the node's TOML file (``source =
"config"``) or from the database (``xds community add``, ``source = "database"``). Both go through
:func:`community_from_mapping`, which checks the keys and types and builds a :class:`Community`; the dataclasses
check the formats (homeCommunityId, URLs, OIDs, timeout) in their constructors. This module does no I/O except
checking that TLS files exist; :mod:`xca.directory` builds the directory the gateways use from both sources.
It lives in ``xds`` because the command line (``xds community``) and the configuration validate entries too,
and ``xds`` never imports ``xca``.

One ``[[communities]]`` table::

    home_community_id = "urn:oid:1.2.3.4.6"                    # required
    name = "stjansdal"                                         # a short name for `xds push --to` (optional)
    query_url = "https://gw.example.org/xca/responding"        # its Responding Gateway (ITI-38); required
                                                               # unless the entry is only for push
    push_transaction = "ITI-41"                                # "ITI-41" (XDR) or "ITI-80" (to a gateway)
    retrieve_url = "https://gw.example.org/xca/responding"     # ITI-39; default: query_url
    push_url = ""                                              # its Document Recipient (XDR, ITI-41)
    xdm_email = ""                                             # XDM over e-mail
    assigning_authority = ""                                   # its patient-id domain (OID); "": ours (BSN)
    timeout = 10.0                                             # seconds; default: the gateway's
    tls = { ca_file = "", cert_file = "", key_file = "", verify = true }

References
----------
ITI TF-2 §3.38.4.1.2.1 (homeCommunityId is an OID in URN syntax), ITI TF-3 §4.2.3.1.7 (OID).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from xds.model.hl7 import is_oid

SOURCE_CONFIG: Final = "config"
SOURCE_DATABASE: Final = "database"
_SOURCES: Final = (SOURCE_CONFIG, SOURCE_DATABASE)
_URN_OID: Final = "urn:oid:"
_EMAIL: Final = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")
STRING_KEYS: Final = (
    "home_community_id",
    "name",
    "query_url",
    "retrieve_url",
    "push_url",
    "push_transaction",
    "xdm_email",
    "assigning_authority",
)
"""The string-valued keys of a directory entry (TOML, database columns, ``xds community add`` options)."""
PUSH_TRANSACTIONS: Final = ("ITI-41", "ITI-80")
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_KEYS: Final = frozenset({*STRING_KEYS, "timeout", "tls"})
_TLS_FILES: Final = ("ca_file", "cert_file", "key_file")
_TLS_KEYS: Final = frozenset({*_TLS_FILES, "verify"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Tls:
    """TLS settings for calls to one community (file paths are PEM files; relative ones are taken from the
    working directory of the process)."""

    ca_file: str = ""  # PEM bundle to verify the peer; "" = system default
    cert_file: str = ""  # client certificate (mutual TLS), PEM
    key_file: str = ""  # its key, PEM
    verify: bool = True

    def __post_init__(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            given, missing = ("cert_file", "key_file") if self.cert_file else ("key_file", "cert_file")
            raise ValueError(f"tls.{given} is given without tls.{missing}: mutual TLS needs both")


@dataclass(frozen=True, slots=True, kw_only=True)
class Community:
    """One remote community of the directory: where to query, retrieve and push, and its patient-id domain."""

    home_community_id: str  # urn:oid:...
    query_url: str = ""  # http(s) URL of its Responding Gateway for ITI-38; "" = push only (not queried)
    retrieve_url: str = ""  # for ITI-39; "" = query_url
    push_url: str = ""
    push_transaction: str = "ITI-41"  # what push_url speaks: ITI-41 (XDR recipient) or ITI-80 (gateway)
    name: str = ""
    xdm_email: str = ""
    assigning_authority: str = ""  # OID of the patient-id domain it uses; "" = same ids as ours (e.g. BSN)
    timeout: float | None = None  # seconds; None = the gateway default
    tls: Tls = Tls()
    source: str = SOURCE_CONFIG  # "config" (TOML) or "database" (xds community add)

    def __post_init__(self) -> None:
        home = self.home_community_id
        if not (home.startswith(_URN_OID) and is_oid(home[len(_URN_OID) :])):
            raise ValueError(f"home_community_id must be urn:oid: followed by an OID, got {home!r}")
        if not self.retrieve_url:
            object.__setattr__(self, "retrieve_url", self.query_url)
        if not (self.query_url or self.push_url or self.xdm_email):
            raise ValueError("query_url is required (or push_url / xdm_email for an entry that is only pushed to)")
        for name in ("query_url", "retrieve_url", "push_url"):
            _check_url(name, getattr(self, name), required=False)
        if self.push_transaction not in PUSH_TRANSACTIONS:
            raise ValueError(
                f"push_transaction must be one of {', '.join(PUSH_TRANSACTIONS)}, got {self.push_transaction!r}"
            )
        if self.name and not _NAME.fullmatch(self.name):
            raise ValueError(f"name must be letters, digits, '_', '.', '-' (at most 64), got {self.name!r}")
        if self.xdm_email and not _EMAIL.fullmatch(self.xdm_email):
            raise ValueError(f"xdm_email must be an e-mail address (local@domain), got {self.xdm_email!r}")
        if self.assigning_authority and not is_oid(self.assigning_authority):
            raise ValueError(
                f"assigning_authority must be an OID (e.g. 2.16.840.1.113883.2.4.6.3), got {self.assigning_authority!r}"
            )
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"timeout must be a number of seconds > 0, got {self.timeout!r}")
        if self.source not in _SOURCES:
            raise ValueError(f"source must be one of {', '.join(_SOURCES)}, got {self.source!r}")


def _check_url(name: str, value: str, *, required: bool) -> None:
    if not value and not required:
        return
    problem = not value or any(ch.isspace() for ch in value)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        problem = True
    else:
        problem = problem or parts.scheme not in ("http", "https") or not parts.hostname
    if problem:
        raise ValueError(f"{name} must be an http or https URL with a host, got {value!r}")


def community_from_mapping(
    data: Mapping[str, Any], *, source: str = SOURCE_CONFIG, check_files: bool = True
) -> Community:
    """A :class:`Community` from one ``[[communities]]`` table (or a database row of the same shape).

    Raises ``ValueError`` naming the offending key: an unknown key, a missing required one, a wrong type, a bad
    format, or (with ``check_files``) a TLS file that does not exist. ``timeout`` may be ``None`` (the default).
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"a community must be a table of keys, got {type(data).__name__}")
    _no_unknown(data, _KEYS, "community")
    if not data.get("home_community_id"):
        raise ValueError("home_community_id is required")
    strings = {key: _string(data, key, key) for key in STRING_KEYS if key in data}
    return Community(
        **strings, timeout=_timeout(data.get("timeout")), tls=_tls(data.get("tls", {}), check_files), source=source
    )


def community_to_mapping(community: Community) -> dict[str, Any]:
    """The ``[[communities]]`` shape of ``community`` (``timeout`` may be ``None``), without ``source``."""
    out = dataclasses.asdict(community)
    del out["source"]
    return out


def _no_unknown(data: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise ValueError(f"unknown key(s) in {where}: {', '.join(unknown)} (known: {', '.join(sorted(known))})")


def _string(data: Mapping[str, Any], key: str, name: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    return value


def _timeout(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"timeout must be a number of seconds > 0, got {value!r}")
    return float(value)


def _tls(value: Any, check_files: bool) -> Tls:
    if not isinstance(value, Mapping):
        raise ValueError(f"tls must be a table (ca_file, cert_file, key_file, verify), got {value!r}")
    _no_unknown(value, _TLS_KEYS, "tls")
    files = {key: _string(value, key, f"tls.{key}") for key in _TLS_FILES if key in value}
    verify = value.get("verify", True)
    if not isinstance(verify, bool):
        raise ValueError(f"tls.verify must be true or false, got {verify!r}")
    if check_files:
        for key, path in files.items():
            if path and not os.path.isfile(path):
                raise ValueError(f"tls.{key}: no such file: {path}")
    return Tls(**files, verify=verify)


__all__ = [
    "PUSH_TRANSACTIONS",
    "SOURCE_CONFIG",
    "SOURCE_DATABASE",
    "STRING_KEYS",
    "Community",
    "Tls",
    "community_from_mapping",
    "community_to_mapping",
]
