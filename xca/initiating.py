"""The Initiating Gateway: ITI-18 from local consumers, answered by every community at once (ITI-38 fan-out);
ITI-43 and RAD-69 retrieves, one ITI-39 or RAD-75 per community.

Theory of operation
-------------------
A FindX query (keyed by patient id) goes to every community of the directory and to our own community, all at
once (a community with its own assigning authority gets the patient's alias in its domain, or is not asked,
with a warning, when none is recorded); a GetX query goes only to the community its ``home`` names (our own
is answered in-process). Remote communities are asked over ITI-38 with a per-community timeout; the whole
fan-out has one deadline, after which whatever has not answered is given up. Our own community runs the
Responding Gateway's query (:func:`xca.iti38.cross_gateway_query`) in a worker thread, so it also carries
``home``.

The merged answer keeps every community's objects and errors. A community that gave no usable answer
(timeout, refused, TLS, SOAP fault, garbage, too large) becomes a RegistryError XDSUnavailableCommunity
located at its homeCommunityId. Status: Success when every community answered Success; PartialSuccess when
some answered and some failed (or one answered PartialSuccess); Failure when none answered with Success.

Each remote call may carry a XUA assertion (``ctx.assertions``, :mod:`xca.assertions`): the consumer's own,
forwarded, or one this node signs per community; the blocks are made in a worker thread before the fan-out.

Retrieves go by each DocumentRequest's HomeCommunityId (none: our own community): ITI-43 becomes one ITI-39 per
community, RAD-69 (XCA-I, a viewer's Retrieve Imaging Document Set) one RAD-75 per community, with the same
per-community timeout and deadline; our own community is answered in-process (ITI-39 from the repository,
RAD-69 from the imaging source, each through the consent gate), remote documents land in staged files, and a
community that gave no usable answer is XDSUnavailableCommunity at its homeCommunityId (PartialSuccess when
other documents came back). Every document of the answer carries its HomeCommunityId.

References
----------
ITI TF-2 §3.18.4.1.3 and XCA ITI TF-1 §18.2.3 (initiating gateway behaviour), ITI TF-2 §3.38.4.1.3
(home on every object), ITI TF-3 Table 4.2.4.1-2 (XDSUnavailableCommunity), ITI TF-2 §3.40 (XUA); RAD TF-1
§18.1 and RAD TF-3 §4.69, §4.75 (XCA-I: the Initiating Imaging Gateway).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import anyio
from lxml import etree

from xca import iti38, iti39
from xca.assertions import OutboundAssertions
from xca.client import CommunityAnswer, CommunityUnavailable, GatewayClient, RetrievedFrom
from xca.directory import Community, Directory
from xca.iti38 import PATIENT_QUERIES, RespondingContext
from xca.iti39 import RetrieveGatewayContext
from xds import vocabulary as v
from xds.audit import transactions as audits
from xds.audit.message import AuditMessage, Code
from xds.audit.transactions import AuditNode, DocumentRef, outcome_for_status
from xds.consent.gate import Gate
from xds.consent.model import Requester
from xds.dicom import rad69
from xds.dicom.rad69 import ImagingContext
from xds.ebrim import messages
from xds.errors import (
    ErrorCode,
    MissingHomeCommunityId,
    RegistryErrorItem,
    RepositoryError,
    Severity,
    UnknownCommunity,
    XDSError,
)
from xds.model.hl7 import CX
from xds.model.messages import (
    DocumentRequest,
    ImagingDocumentRequest,
    ImagingRetrieveRequest,
    QueryResponse,
    RetrievedDocument,
    RetrieveRequest,
    RetrieveResponse,
    StoredQueryRequest,
    outcome_status,
)
from xds.model.metadata import ObjectRef
from xds.registry import iti18
from xds.registry.sq_params import first_value
from xds.store.documents import StagedFile

T = TypeVar("T")

PATIENT_PARAMETERS: Final = frozenset(
    {"$XDSDocumentEntryPatientId", "$XDSSubmissionSetPatientId", "$XDSFolderPatientId"}
)
"""The patient parameter of each FindX query (translated per community)."""
DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_DEADLINE: Final = 15.0


@dataclass(frozen=True, slots=True)
class InitiatingContext:
    """What the initiating gateway needs: who we are, whom to ask, and how long to wait.

    ``local_retrieve`` answers ITI-39 for our own community, ``local_imaging`` RAD-69 / RAD-75 from our own
    imaging source; ``new_file`` stages a remote document's bytes.
    """

    home_community_id: str
    directory: Directory
    client: GatewayClient
    local: RespondingContext
    local_retrieve: RetrieveGatewayContext | None = None
    local_imaging: ImagingContext | None = None
    new_file: Callable[[], StagedFile] | None = None
    timeout: float = DEFAULT_TIMEOUT
    deadline: float = DEFAULT_DEADLINE
    max_document_bytes: int = 1 << 40
    aliases: Callable[[str], list[str]] | None = None
    """A fed patient's ids in other domains (``xds patient alias``), for communities with their own
    assigning authority."""
    gate: Gate | None = None
    """The consent gate: a FindX query for a patient the requester may not see is asked of no community."""
    audit: Callable[[Sequence[AuditMessage]], None] | None = None
    """Keeps the audit records of the outbound calls (ITI-38/ITI-39/RAD-75 as the Initiating Gateway records
    them)."""
    audit_node: Callable[[], AuditNode] | None = None
    assertions: OutboundAssertions | None = None
    """The XUA assertion of outbound calls (:mod:`xca.assertions`); None: no ``wsse:Security`` block."""


async def query(
    request: StoredQueryRequest,
    ctx: InitiatingContext,
    requester: Requester = iti18.ANONYMOUS,
    assertion: etree._Element | None = None,
) -> QueryResponse:
    """Answer a consumer's ITI-18 with the merged answers of the communities it concerns.

    ``assertion`` is the consumer's verified XUA assertion, if any (forwarded in ``"forward"`` mode).

    Consent: a FindX query names one patient; when the gate denies ``requester`` that patient, no community
    is asked and the answer is an empty Success (as for a patient with no documents). Our own community's
    answer also passes the registry's gate per data category; remote communities decide for themselves.
    """
    remote, local = _targets(request, ctx)
    patient = _patient(request)
    if ctx.gate is not None and patient:
        decision = await anyio.to_thread.run_sync(ctx.gate.decide, patient, requester)
        if not decision.permit:
            return QueryResponse(status=v.RESPONSE_SUCCESS)
    started = time.monotonic()
    calls: dict[str, Awaitable[CommunityAnswer]] = {}
    notes: list[RegistryErrorItem] = []
    if local:
        calls[ctx.home_community_id] = _ask_local(request, ctx, requester)
    translate = await _translator(request, ctx, remote)
    asked: list[tuple[Community, StoredQueryRequest]] = []
    for community in remote:
        addressed = translate(dataclasses.replace(request, home=community.home_community_id), community)
        if addressed is None:
            notes.append(
                RegistryErrorItem(
                    error_code=ErrorCode.UNKNOWN_PATIENT_ID,
                    code_context=f"community {community.home_community_id} was not asked: no id of this patient is"
                    f" known in its domain {community.assigning_authority} (xds patient alias add)",
                    severity=Severity.WARNING,
                    location=community.home_community_id,
                )
            )
            continue
        asked.append((community, addressed))
    headers = await _security_headers(ctx, requester, assertion, [(c, _patient(a)) for c, a in asked])
    for (community, addressed), security in zip(asked, headers, strict=True):
        timeout = min(community.timeout or ctx.timeout, ctx.deadline)
        calls[community.home_community_id] = ctx.client.cross_gateway_query(
            community, addressed, timeout=timeout, security=security
        )
    answers = await _gather(calls, ctx.deadline - (time.monotonic() - started))
    _audit_queries(ctx, requester, asked, answers)
    if ctx.gate is not None:
        remote_answers = {h: a for h, a in answers.items() if h != ctx.home_community_id}
        answers.update(await anyio.to_thread.run_sync(_consented, remote_answers, patient, requester, ctx.gate))
    merged = merge(answers)
    return dataclasses.replace(merged, errors=(*merged.errors, *notes)) if notes else merged


def _consented(
    answers: Mapping[str, CommunityAnswer | CommunityUnavailable], patient: str, requester: Requester, gate: Gate
) -> dict[str, CommunityAnswer | CommunityUnavailable]:
    """Remote communities' LeafClass objects the gate releases to ``requester``, per (patient, data category).

    The patient is the one the FindX query named (our own id, whatever domain the community answered in); for
    a GetX query it is the patientId the object carries. An object that names no patient is withheld (fail
    closed); an association is kept only when neither end was withheld. ObjectRef answers carry no metadata:
    they were decided per patient before the fan-out. The facts come from the client's parse of each answer
    (:class:`~xca.client.LeafFacts`); an answer without them (none of ours) is withheld whole.
    """
    out: dict[str, CommunityAnswer | CommunityUnavailable] = dict(answers)
    live = {h: a for h, a in answers.items() if not isinstance(a, CommunityUnavailable) and a.leaf}
    for home, answer in list(live.items()):
        if len(answer.facts) != len(answer.leaf):
            out[home] = dataclasses.replace(answer, leaf=(), facts=())
            live.pop(home)
    keys = {
        (home, n): (patient or f.patient, f.category) if (patient or f.patient) else None
        for home, answer in live.items()
        for n, f in enumerate(answer.facts)
        if not f.association
    }
    allowed = gate.permitted((k for k in keys.values() if k is not None), requester)  # once per key, all communities
    for home, answer in live.items():
        withheld = {f.id for n, f in enumerate(answer.facts) if (home, n) in keys and keys[(home, n)] not in allowed}
        kept = [
            n
            for n, f in enumerate(answer.facts)
            if ((home, n) in keys and keys[(home, n)] in allowed)
            or (f.association and f.source not in withheld and f.target not in withheld)
        ]
        out[home] = dataclasses.replace(
            answer, leaf=tuple(answer.leaf[n] for n in kept), facts=tuple(answer.facts[n] for n in kept)
        )
    return out


async def _security_headers(
    ctx: InitiatingContext,
    requester: Requester,
    assertion: etree._Element | None,
    asked: Sequence[tuple[Community, str]],
) -> list[bytes | None]:
    """The ``wsse:Security`` block of the call to each ``(community, patient id)`` (None: no block).

    Node-signed assertions (one RSA signature per community) are made in a worker thread; nothing else waits
    for one, because under load a queue for worker threads would eat the fan-out's deadline.
    """
    assertions = ctx.assertions
    if assertions is None or assertions.mode == "none" or not asked:
        return [None] * len(asked)
    if assertions.mode == "forward":
        return [assertions.header(requester, assertion, c, patient_id=patient) for c, patient in asked]

    def make() -> list[bytes | None]:
        return [assertions.header(requester, assertion, c, patient_id=patient) for c, patient in asked]

    return await anyio.to_thread.run_sync(make)


Translate = Callable[[StoredQueryRequest, Community], "StoredQueryRequest | None"]


async def _translator(request: StoredQueryRequest, ctx: InitiatingContext, remote: list[Community]) -> Translate:
    """Patient-id translation for communities with their own assigning authority.

    The FindX patient parameter is replaced by the patient's alias in the community's domain; with no alias
    the community is not asked (None). Communities without an assigning authority get the request as is.
    """
    param = next((p for p in request.parameters if p.name in PATIENT_PARAMETERS), None)
    if param is None or not any(c.assigning_authority for c in remote) or ctx.aliases is None:
        return lambda req, _community: req
    ours = first_value(param.values[0]) if param.values else ""
    aliases = [ours, *await anyio.to_thread.run_sync(ctx.aliases, ours)]

    def translate(req: StoredQueryRequest, community: Community) -> StoredQueryRequest | None:
        if not community.assigning_authority:
            return req
        found = next((a for a in aliases if _authority(a) == community.assigning_authority), None)
        if found is None:
            return None
        value = "'" + found.replace("'", "''") + "'"
        parameters = tuple(
            dataclasses.replace(p, values=(value,)) if p.name == param.name else p for p in req.parameters
        )
        return dataclasses.replace(req, parameters=parameters)

    return translate


def _authority(patient_id: str) -> str:
    try:
        return CX.parse(patient_id).assigning_authority.universal_id
    except ValueError:
        return ""


def _targets(request: StoredQueryRequest, ctx: InitiatingContext) -> tuple[list[Community], bool]:
    if request.query_id in PATIENT_QUERIES and not request.home:
        return ctx.directory.all(), True
    home = request.home.strip()
    if not home:
        raise MissingHomeCommunityId(
            f"stored query {request.query_id} needs AdhocQuery/@home naming the community it addresses",
            location=request.query_id,
        )
    if home == ctx.home_community_id:
        return [], True
    community = ctx.directory.get(home)
    if community is None:
        raise UnknownCommunity(f"homeCommunityId {home} is not in this gateway's directory", location=home)
    return [community], False


def _patient(request: StoredQueryRequest) -> str:
    """The patient id a FindX query names ("" for a GetX query)."""
    param = next((p for p in request.parameters if p.name in PATIENT_PARAMETERS), None)
    return first_value(param.values[0]) if param is not None and param.values else ""


async def _ask_local(request: StoredQueryRequest, ctx: InitiatingContext, requester: Requester) -> CommunityAnswer:
    addressed = dataclasses.replace(request, home=ctx.home_community_id)
    try:
        answer = await anyio.to_thread.run_sync(iti38.cross_gateway_query, addressed, ctx.local, requester)
    except XDSError as exc:
        return CommunityAnswer(status=v.RESPONSE_FAILURE, errors=exc.items())
    return CommunityAnswer(status=answer.status, errors=answer.errors, leaf=answer.leaf, refs=answer.refs)


async def _gather(calls: Mapping[str, Awaitable[T]], deadline: float) -> dict[str, T | CommunityUnavailable]:
    tasks = {home: asyncio.ensure_future(call) for home, call in calls.items()}
    if tasks:
        await asyncio.wait(tasks.values(), timeout=max(deadline, 0.0))
    out: dict[str, T | CommunityUnavailable] = {}
    for home, task in tasks.items():
        if not task.done():
            task.cancel()
            out[home] = CommunityUnavailable("no answer within the gateway's deadline")
        elif isinstance(task.exception(), CommunityUnavailable):
            out[home] = task.exception()  # type: ignore[assignment]
        elif task.exception() is not None:
            out[home] = CommunityUnavailable(f"internal error: {type(task.exception()).__name__}")
        else:
            out[home] = task.result()
    return out


async def retrieve(
    request: RetrieveRequest,
    ctx: InitiatingContext,
    requester: Requester = iti18.ANONYMOUS,
    assertion: etree._Element | None = None,
) -> RetrieveResponse:
    """Answer a consumer's ITI-43: one ITI-39 per community (ours in-process), all at once, merged.

    ``assertion`` is the consumer's verified XUA assertion, if any (forwarded in ``"forward"`` mode).

    A DocumentRequest without HomeCommunityId is for our own community. A remote document's content is a
    staged file (``content.ref`` is its path) that the caller streams and deletes; our own documents have
    an empty ``ref`` and live in the document store.
    """
    if ctx.local_retrieve is None or ctx.new_file is None:
        raise RepositoryError("this gateway is not configured to retrieve")
    new_file = ctx.new_file
    groups: dict[str, list[DocumentRequest]] = {}
    errors: list[RegistryErrorItem] = []
    for d in request.documents:
        home = d.home_community_id.strip() or ctx.home_community_id
        if home != ctx.home_community_id and ctx.directory.get(home) is None:
            errors.append(
                UnknownCommunity(f"homeCommunityId {home} is not in this gateway's directory", location=home).as_item()
            )
            continue
        groups.setdefault(home, []).append(dataclasses.replace(d, home_community_id=home))
    started = time.monotonic()
    remote = {h: c for h in groups if h != ctx.home_community_id and (c := ctx.directory.get(h)) is not None}
    blocks = await _security_headers(ctx, requester, assertion, [(c, "") for c in remote.values()])
    headers = dict(zip(remote, blocks, strict=True))
    calls: dict[str, Awaitable[RetrieveResponse]] = {}
    for home, docs in groups.items():
        sub = RetrieveRequest(documents=tuple(docs))
        if home == ctx.home_community_id:
            calls[home] = anyio.to_thread.run_sync(iti39.cross_gateway_retrieve, sub, ctx.local_retrieve, requester)
        else:
            community = remote.get(home)
            assert community is not None
            timeout = min(community.timeout or ctx.timeout, ctx.deadline)
            calls[home] = _remote_retrieve(ctx, community, sub, timeout, new_file, headers[home])
    answers = await _gather(calls, ctx.deadline - (time.monotonic() - started))
    refs = {
        h: [DocumentRef(d.document_unique_id, d.repository_unique_id, h) for d in docs] for h, docs in groups.items()
    }
    _audit_retrieves(ctx, requester, remote, refs, answers)
    return _merged_retrieve(len(request.documents), errors, answers)


async def retrieve_imaging(
    request: ImagingRetrieveRequest,
    ctx: InitiatingContext,
    requester: Requester = iti18.ANONYMOUS,
    assertion: etree._Element | None = None,
) -> RetrieveResponse:
    """Answer a viewer's RAD-69: one RAD-75 per community (ours in-process), all at once, merged.

    ``assertion`` is the viewer's verified XUA assertion, if any (forwarded in ``"forward"`` mode).

    A DocumentRequest without HomeCommunityId is for our own imaging source. Each community gets the
    request's TransferSyntaxUIDList as given (missing or empty too): the responder decides what it accepts.
    Consent: our own instances pass the imaging source's gate for ``requester``; remote communities decide
    for theirs. Remote instances are staged files, as for :func:`retrieve`.
    """
    if ctx.local_imaging is None or ctx.new_file is None:
        raise RepositoryError("this gateway is not configured to retrieve images")
    local_imaging, new_file = ctx.local_imaging, ctx.new_file
    groups: dict[str, list[ImagingDocumentRequest]] = {}
    errors: list[RegistryErrorItem] = []
    for d in request.documents:
        home = d.document.home_community_id.strip() or ctx.home_community_id
        if home != ctx.home_community_id and ctx.directory.get(home) is None:
            errors.append(
                UnknownCommunity(f"homeCommunityId {home} is not in this gateway's directory", location=home).as_item()
            )
            continue
        groups.setdefault(home, []).append(d)
    started = time.monotonic()
    remote = {h: c for h in groups if h != ctx.home_community_id and (c := ctx.directory.get(h)) is not None}
    blocks = await _security_headers(ctx, requester, assertion, [(c, "") for c in remote.values()])
    headers = dict(zip(remote, blocks, strict=True))
    calls: dict[str, Awaitable[RetrieveResponse]] = {}
    for home, docs in groups.items():
        sub = ImagingRetrieveRequest(documents=tuple(docs), transfer_syntaxes=request.transfer_syntaxes)
        if home == ctx.home_community_id:
            calls[home] = anyio.to_thread.run_sync(_local_imaging, sub, local_imaging, requester, home)
        else:
            community = remote.get(home)
            assert community is not None
            timeout = min(community.timeout or ctx.timeout, ctx.deadline)
            calls[home] = _remote_retrieve(ctx, community, sub, timeout, new_file, headers[home])
    answers = await _gather(calls, ctx.deadline - (time.monotonic() - started))
    refs = {
        h: [DocumentRef(d.document.document_unique_id, d.document.repository_unique_id, h) for d in docs]
        for h, docs in groups.items()
    }
    _audit_retrieves(ctx, requester, remote, refs, answers, transaction=audits.RAD_75)
    return _merged_retrieve(len(request.documents), errors, answers)


def _local_imaging(
    request: ImagingRetrieveRequest, ctx: ImagingContext, requester: Requester, home: str
) -> RetrieveResponse:
    """RAD-69 on our own imaging source, each answer carrying our homeCommunityId; a refusal of the whole
    request (too many instances, no transfer syntax) is this community's Failure, not the gateway's."""
    try:
        return rad69.retrieve_imaging(request, ctx, requester, home_community_id=home)
    except XDSError as exc:
        return RetrieveResponse(status=v.RESPONSE_FAILURE, errors=exc.items())


def _merged_retrieve(
    asked: int, errors: list[RegistryErrorItem], answers: Mapping[str, RetrieveResponse | CommunityUnavailable]
) -> RetrieveResponse:
    """One RetrieveDocumentSetResponse from every community's answer to ``asked`` DocumentRequests (``errors``:
    the gateway's own, such as unknown communities): Success when every document came back, PartialSuccess
    when some did, else Failure."""
    documents: list[RetrievedDocument] = []
    for home, answer in sorted(answers.items()):
        if isinstance(answer, CommunityUnavailable):
            errors.append(_unavailable_item(home, answer))
            continue
        errors += answer.errors
        documents += answer.documents
    missing = len(documents) < asked or any(e.severity == Severity.ERROR for e in errors)
    status = outcome_status(succeeded=bool(documents), failed=missing)
    return RetrieveResponse(status=status, errors=tuple(errors), documents=tuple(documents))


async def _remote_retrieve(
    ctx: InitiatingContext,
    community: Community,
    request: RetrieveRequest | ImagingRetrieveRequest,
    timeout: float,
    new_file: Callable[[], StagedFile],
    security: bytes | None = None,
) -> RetrieveResponse:
    """ITI-39 (documents) or RAD-75 (DICOM instances) to one community, its documents staged."""
    options: dict[str, Any] = {
        "timeout": timeout,
        "new_file": new_file,
        "max_document_bytes": ctx.max_document_bytes,
        "security": security,
    }
    if isinstance(request, ImagingRetrieveRequest):
        got = await ctx.client.cross_gateway_retrieve_imaging(community, request, **options)
    else:
        got = await ctx.client.cross_gateway_retrieve(community, request, **options)
    return _staged_response(got)


def _staged_response(got: RetrievedFrom) -> RetrieveResponse:
    """A community's retrieve answer, each document's content the staged file its bytes landed in."""
    documents = tuple(
        RetrievedDocument(
            repository_unique_id=ids.repository_unique_id,
            document_unique_id=ids.document_unique_id,
            home_community_id=ids.home_community_id,
            mime_type=mime_type,
            content=staged.content,
        )
        for ids, mime_type, staged in got.documents
    )
    return RetrieveResponse(status=got.status, errors=got.errors, documents=documents)


def _outcome(answer: object) -> int:
    if isinstance(answer, CommunityUnavailable):
        return outcome_for_status(v.RESPONSE_FAILURE)
    return outcome_for_status(str(getattr(answer, "status", "")))


def _audit_queries(
    ctx: InitiatingContext,
    requester: Requester,
    asked: Sequence[tuple[Community, StoredQueryRequest]],
    answers: Mapping[str, object],
) -> None:
    """One ITI-38 record per community asked (into the request's audit batch)."""
    if ctx.audit is None or ctx.audit_node is None or not asked:
        return
    node, now = ctx.audit_node(), datetime.now(UTC)
    rendered: dict[StoredQueryRequest, bytes] = {}  # the calls differ only in `home` but for translated patients

    def query_bytes(addressed: StoredQueryRequest) -> bytes:
        key = dataclasses.replace(addressed, home="")
        if key not in rendered:
            rendered[key] = messages.render_adhoc_query_request(key)
        return rendered[key]

    ctx.audit(
        [
            audits.outbound_query(
                node=node,
                requester=requester,
                time=now,
                outcome=_outcome(answers.get(c.home_community_id)),
                query=query_bytes(addressed),
                query_id=addressed.query_id,
                patient_id=_patient(addressed),
                home_community_id=c.home_community_id,
                destination=c.query_url,
            )
            for c, addressed in asked
        ]
    )


def _audit_retrieves(
    ctx: InitiatingContext,
    requester: Requester,
    remote: Mapping[str, Community],
    documents: Mapping[str, Sequence[DocumentRef]],
    answers: Mapping[str, object],
    *,
    transaction: Code = audits.ITI_39,
) -> None:
    """One ITI-39 (or RAD-75) record per community asked (into the request's audit batch)."""
    if ctx.audit is None or ctx.audit_node is None or not remote:
        return
    node, now = ctx.audit_node(), datetime.now(UTC)
    ctx.audit(
        [
            audits.outbound_retrieve(
                node=node,
                requester=requester,
                time=now,
                outcome=_outcome(answers.get(home)),
                documents=documents[home],
                source=community.retrieve_url,
                transaction=transaction,
            )
            for home, community in remote.items()
        ]
    )


def _unavailable_item(home: str, answer: CommunityUnavailable) -> RegistryErrorItem:
    return RegistryErrorItem(
        error_code=ErrorCode.UNAVAILABLE_COMMUNITY,
        code_context=f"community {home}: {answer.reason}",
        severity=Severity.ERROR,
        location=home,
    )


def merge(answers: dict[str, CommunityAnswer | CommunityUnavailable]) -> QueryResponse:
    """One AdhocQueryResponse from every community's answer (see the module docstring for the status)."""
    errors: list[RegistryErrorItem] = []
    leaf: list[str] = []
    refs: list[ObjectRef] = []
    succeeded = failed = 0
    for home, answer in sorted(answers.items()):
        if isinstance(answer, CommunityUnavailable):
            failed += 1
            errors.append(_unavailable_item(home, answer))
            continue
        errors += answer.errors
        leaf += answer.leaf
        refs += answer.refs
        if answer.status == v.RESPONSE_SUCCESS:
            succeeded += 1
        elif answer.status == v.RESPONSE_PARTIAL_SUCCESS:
            succeeded += 1
            failed += 1
        else:
            failed += 1
    status = outcome_status(succeeded=bool(succeeded), failed=bool(failed))
    return QueryResponse(status=status, errors=tuple(errors), leaf=tuple(leaf), refs=tuple(refs))


__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_TIMEOUT",
    "InitiatingContext",
    "merge",
    "query",
    "retrieve",
    "retrieve_imaging",
]
