"""ITI-18 Registry Stored Query (ITI TF-2 §3.18), Document Registry side.

The query is checked against its definition (:mod:`xds.registry.sq_params`), run by the store, passed through
the consent gate, and answered as ObjectRefs or as the stored LeafClass XML of each object.

Consent (ARCHITECTURE.md §7): every DocumentEntry, SubmissionSet and Folder of the result is released only when
the gate permits its (patient, data category) to the requester; an association only when every end the
registry knows is released. What is withheld is simply absent: the answer is Success, with nothing telling
that something was left out.

References
----------
ITI TF-2 §3.18.4.1.3 (expected actions), §3.18.4.1.2.4 (XDSTooManyResults, XDSResultNotSinglePatient).
"""

from __future__ import annotations

from dataclasses import dataclass

from xds import vocabulary as v
from xds.consent.gate import Gate
from xds.consent.model import Requester
from xds.errors import MetadataError, ResultNotSinglePatient, TooManyResults
from xds.model.messages import LEAF_CLASS, OBJECT_REF, QueryResponse, StoredQueryRequest
from xds.model.metadata import ObjectRef
from xds.registry.ports import KIND_ASSOCIATION, RegistryStore, StoredObject
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
    gate: Gate | None = None
    """The consent gate; None only where a test or a trusted internal caller does without one."""


ANONYMOUS = Requester()


def stored_query(request: StoredQueryRequest, ctx: QueryContext, requester: Requester = ANONYMOUS) -> QueryResponse:
    """Answer one stored query for ``requester``."""
    if request.return_type not in (LEAF_CLASS, OBJECT_REF):
        raise MetadataError(
            f"returnType {request.return_type!r} is neither LeafClass nor ObjectRef", location="returnType"
        )
    parsed = parse_query(request)
    objects = ctx.store.stored_query(parsed)
    if ctx.gate is not None:  # first, so that not even a count of withheld objects leaks (XDSTooManyResults)
        objects = consented(objects, requester, ctx.gate, ctx.store)
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


def consented(
    objects: list[StoredObject], requester: Requester, gate: Gate, store: RegistryStore
) -> list[StoredObject]:
    """The objects the gate releases to ``requester`` (order kept)."""
    if not objects:
        return objects
    ends = {e for o in objects if o.kind == KIND_ASSOCIATION for e in (o.source, o.target) if e}
    keys = store.consent_keys({o.id for o in objects if o.kind != KIND_ASSOCIATION} | ends)
    allowed = gate.permitted(keys.values(), requester)

    def released(o: StoredObject) -> bool:
        if o.kind == KIND_ASSOCIATION:
            return all(keys[e] in allowed for e in (o.source, o.target) if e and e in keys)
        key = keys.get(o.id)
        return key is not None and key in allowed

    return [o for o in objects if released(o)]


__all__ = ["ANONYMOUS", "DEFAULT_MAX_RESULTS", "TRANSACTION", "QueryContext", "consented", "stored_query"]
