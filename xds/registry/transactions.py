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
    """Documents travel in the request (MTOM/XOP accepted; the response is MTOM when the request was)."""
    is_query: bool
    mtom_response: bool = False
    """The response carries documents: always MTOM/XOP."""


__all__ = ["Transaction"]
