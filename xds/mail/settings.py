"""SMTP relay settings: the ``[smtp]`` table of the node's TOML configuration, checked once at load.

Theory of operation
-------------------
:class:`SmtpSettings` is a frozen value that the sender (:func:`xds.mail.send.send_message`) reads and never
changes. An empty ``host`` means e-mail is not configured; :attr:`SmtpSettings.configured` says so, and a caller
that has nothing to send with skips the mail instead of failing. :func:`smtp_settings_from_mapping` turns the
``[smtp]`` table into settings and refuses, with a :class:`ValueError` naming the key, anything it does not
understand: an unknown key, a value of the wrong type, a ``security`` other than ``none``, ``starttls`` or
``tls``, a port outside 1..65535, a missing or malformed ``from_address`` when a host is set, and a
``username`` without a ``password``. A mistake in the configuration is found when the node starts, not when
the first notification is due.

``security`` selects the transport: ``none`` is plain SMTP (RFC 5321), ``starttls`` upgrades a plain
connection with STARTTLS (RFC 3207; usually port 587), ``tls`` speaks TLS from the first byte (RFC 8314
"implicit TLS", usually port 465). Both TLS modes verify the server against ``ca_file`` (empty: the system
store).

References
----------
RFC 5321 (SMTP); RFC 3207 (SMTP Service Extension for Secure SMTP over TLS); RFC 8314 §3 (implicit TLS for
submission); RFC 5322 §3.4.1 (addr-spec, for ``from_address``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

SECURITY_MODES: Final = frozenset({"none", "starttls", "tls"})
"""The accepted values of ``security``."""

_ADDR_SPEC: Final = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+")
"""A plain ``local@domain.tld`` (RFC 5322 §3.4.1 addr-spec, without quoted local parts or domain literals)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpSettings:
    """Where and how the node hands its outgoing mail to a relay (the ``[smtp]`` table)."""

    host: str = ""
    """Relay host name or address; empty: e-mail is not configured."""
    port: int = 25
    security: str = "none"
    """``none``, ``starttls`` (RFC 3207) or ``tls`` (implicit TLS, RFC 8314)."""
    username: str = ""
    """Log in with AUTH when set (then ``password`` is required)."""
    password: str = ""
    from_address: str = ""
    """Envelope sender and default ``From``; required when ``host`` is set."""
    timeout: float = 30.0
    """Seconds for the connection and for each SMTP reply."""
    ca_file: str = ""
    """PEM file of the CAs that sign the relay's certificate; empty: the system store."""

    @property
    def configured(self) -> bool:
        """Whether a relay is configured (``host`` is set)."""
        return bool(self.host)


_TYPES: Final[dict[str, type | tuple[type, ...]]] = {
    "host": str,
    "port": int,
    "security": str,
    "username": str,
    "password": str,
    "from_address": str,
    "timeout": (int, float),
    "ca_file": str,
}
_KEYS: Final = frozenset(field.name for field in fields(SmtpSettings))


def _typed(table: Mapping[str, Any]) -> dict[str, Any]:
    """The table's values after the key and type checks (``bool`` is no number here)."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _KEYS:
            raise ValueError(f"smtp.{key}: unknown key (known: {', '.join(sorted(_KEYS))})")
        expected = _TYPES[key]
        if isinstance(value, bool) or not isinstance(value, expected):
            raise ValueError(f"smtp.{key}: expected {_type_name(expected)}, got {type(value).__name__}")
        values[key] = float(value) if key == "timeout" and isinstance(value, int | float) else value
    return values


def _type_name(expected: type | tuple[type, ...]) -> str:
    return "a number" if isinstance(expected, tuple) else {str: "a string", int: "an integer"}[expected]


def _check(settings: SmtpSettings) -> None:
    """The cross-field rules; raises :class:`ValueError` naming the key."""
    if settings.security not in SECURITY_MODES:
        raise ValueError(f"smtp.security: {settings.security!r} is not one of {', '.join(sorted(SECURITY_MODES))}")
    if not 1 <= settings.port <= 65535:
        raise ValueError(f"smtp.port: {settings.port} is outside 1..65535")
    if settings.timeout <= 0:
        raise ValueError(f"smtp.timeout: {settings.timeout} is not a positive number of seconds")
    if settings.username and not settings.password:
        raise ValueError("smtp.password: required when smtp.username is set")
    if settings.host and not settings.from_address:
        raise ValueError("smtp.from_address: required when smtp.host is set")
    if settings.from_address and not _ADDR_SPEC.fullmatch(settings.from_address):
        raise ValueError(f"smtp.from_address: {settings.from_address!r} is not an address like name@example.org")


def smtp_settings_from_mapping(table: Mapping[str, Any]) -> SmtpSettings:
    """Settings from the ``[smtp]`` TOML table; an empty table gives the "not configured" defaults.

    Raises
    ------
    ValueError
        Naming the key (``smtp.<key>``) on an unknown key, a wrong type, a bad ``security`` value, a port
        outside 1..65535, a missing or malformed ``from_address`` while ``host`` is set, or a ``username``
        without ``password``.
    """
    settings = SmtpSettings(**_typed(table))
    _check(settings)
    return settings


__all__ = ["SECURITY_MODES", "SmtpSettings", "smtp_settings_from_mapping"]
