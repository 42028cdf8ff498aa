"""Transaction messages as data: stored-query requests and the registry's responses.

A query response carries its LeafClass objects as stored ebRIM XML fragments (text), so the registry
answers from stored bytes without rebuilding trees (ARCHITECTURE.md §4).

References
----------
ITI TF-2 §3.18.4.1.2 (AdhocQueryRequest), §3.18.4.1.3 (AdhocQueryResponse); ITI TF-2 §3.42.4.2.
"""

from __future__ import annotations

from dataclasses import dataclass

from xds import vocabulary as v
from xds.errors import RegistryErrorItem, Severity
from xds.model.metadata import ObjectRef

LEAF_CLASS = "LeafClass"
OBJECT_REF = "ObjectRef"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryParameter:
    """One ``rim:Slot`` of an AdhocQuery: its name and its raw ``rim:Value`` texts."""

    name: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredQueryRequest:
    """An ITI-18 / ITI-38 AdhocQueryRequest."""

    query_id: str
    return_type: str = LEAF_CLASS
    parameters: tuple[QueryParameter, ...] = ()
    home: str = ""
    return_composed_objects: bool = True


def status_for(errors: tuple[RegistryErrorItem, ...], *, partial: bool = False) -> str:
    """Response status: Failure when any error has severity Error (PartialSuccess if ``partial``)."""
    if any(e.severity == Severity.ERROR for e in errors):
        return v.RESPONSE_PARTIAL_SUCCESS if partial else v.RESPONSE_FAILURE
    return v.RESPONSE_SUCCESS


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryResponse:
    """``rs:RegistryResponse`` (ITI-42, ITI-41)."""

    status: str = v.RESPONSE_SUCCESS
    errors: tuple[RegistryErrorItem, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryResponse:
    """``query:AdhocQueryResponse``: LeafClass fragments or ObjectRefs, and errors."""

    status: str = v.RESPONSE_SUCCESS
    errors: tuple[RegistryErrorItem, ...] = ()
    leaf: tuple[str, ...] = ()
    refs: tuple[ObjectRef, ...] = ()


__all__ = [
    "LEAF_CLASS",
    "OBJECT_REF",
    "QueryParameter",
    "QueryResponse",
    "RegistryResponse",
    "StoredQueryRequest",
    "status_for",
]
