"""ITI-18 Registry Stored Query (ITI TF-2 §3.18), Document Registry side.

The query is checked against its definition (:mod:`xds.registry.sq_params`), run by the store, and answered
as ObjectRefs or as the stored LeafClass XML of each object.

References
----------
ITI TF-2 §3.18.4.1.3 (expected actions), §3.18.4.1.2.4 (XDSTooManyResults, XDSResultNotSinglePatient).
"""

from __future__ import annotations

from dataclasses import dataclass

from xds import vocabulary as v
from xds.errors import MetadataError, ResultNotSinglePatient, TooManyResults
from xds.model.messages import LEAF_CLASS, OBJECT_REF, QueryResponse, StoredQueryRequest
from xds.model.metadata import ObjectRef
from xds.registry.ports import RegistryStore
from xds.registry.sq_params import parse_query
from xds.registry.transactions import Transaction

TRANSACTION = Transaction(
    id="ITI-18",
    title="Registry Stored Query",
    action=v.ACTION_STORED_QUERY,
    response_action=v.ACTION_STORED_QUERY_RESPONSE,
    mtom=False,
    is_query=True,
)

DEFAULT_MAX_RESULTS = 10_000


@dataclass(frozen=True, slots=True)
class QueryContext:
    """What ITI-18 needs besides the request."""

    store: RegistryStore
    max_results: int = DEFAULT_MAX_RESULTS
    home_community_id: str = ""


def stored_query(request: StoredQueryRequest, ctx: QueryContext) -> QueryResponse:
    """Answer one stored query."""
    if request.return_type not in (LEAF_CLASS, OBJECT_REF):
        raise MetadataError(
            f"returnType {request.return_type!r} is neither LeafClass nor ObjectRef", location="returnType"
        )
    parsed = parse_query(request)
    objects = ctx.store.stored_query(parsed)
    if len(objects) > ctx.max_results:
        raise TooManyResults(
            f"{parsed.name} matched {len(objects)} objects; the limit is {ctx.max_results}",
            location=parsed.name,
        )
    if request.return_type == OBJECT_REF:
        return QueryResponse(refs=tuple(ObjectRef(id=o.id, home=ctx.home_community_id) for o in objects))
    patients = {o.patient_id for o in objects if o.patient_id}
    if len(patients) > 1:
        raise ResultNotSinglePatient(
            f"{parsed.name} LeafClass result spans {len(patients)} patients", location=parsed.name
        )
    return QueryResponse(leaf=tuple(o.xml for o in objects))


__all__ = ["DEFAULT_MAX_RESULTS", "TRANSACTION", "QueryContext", "stored_query"]
