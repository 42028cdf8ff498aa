"""ebRIM 3.0 building blocks: LocalizedString, Slot, and the generic Classification / ExternalIdentifier.

The typed XDS objects (:mod:`xds.model.metadata`) use these for what the profile does not name, so nothing a
peer sent is lost on the way through the registry.

References
----------
OASIS ebRIM 3.0 §2.7 (Slot), §2.8 (InternationalString), §4.3 (Classification), §2.11 (ExternalIdentifier).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalizedString:
    """One ``rim:LocalizedString``: a value with optional ``xml:lang`` and ``charset``."""

    value: str
    lang: str = ""
    charset: str = ""


InternationalString = tuple[LocalizedString, ...]
"""The content of ``rim:Name`` or ``rim:Description`` (empty tuple: absent)."""


def text(value: str, lang: str = "") -> InternationalString:
    """A one-language InternationalString."""
    return (LocalizedString(value=value, lang=lang),)


@dataclass(frozen=True, slots=True, kw_only=True)
class Slot:
    """A named list of string values (``rim:Slot``)."""

    name: str
    values: tuple[str, ...] = ()
    slot_type: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("Slot name is empty")


@dataclass(frozen=True, slots=True, kw_only=True)
class Classification:
    """A classification the profile does not model by name (kept verbatim, ids excepted)."""

    scheme: str = ""
    node: str = ""
    node_representation: str = ""
    name: InternationalString = ()
    slots: tuple[Slot, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalIdentifier:
    """An external identifier the profile does not model by name."""

    scheme: str
    value: str
    name: InternationalString = ()


__all__ = ["Classification", "ExternalIdentifier", "InternationalString", "LocalizedString", "Slot", "text"]
