"""Transaction descriptors: what each IHE transaction module declares about itself (STYLE R2)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Transaction:
    """An IHE transaction as the SOAP dispatcher sees it."""

    id: str
    title: str
    action: str
    response_action: str
    mtom: bool
    is_query: bool


__all__ = ["Transaction"]
