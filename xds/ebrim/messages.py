"""ebRS 3.0 request and response messages of the registry: SubmitObjectsRequest, AdhocQueryRequest,
RegistryResponse and AdhocQueryResponse.

Query responses are assembled from stored XML fragments by concatenation, without building a tree
(ARCHITECTURE.md §4).

References
----------
ebRS 3.0 §5.3 (SubmitObjectsRequest), §6.3 (AdhocQueryRequest/Response), §2.1.6 (RegistryError);
ITI TF-2 §3.18.4.1.2, §3.42.4.1.2; ITI TF-3 §4.2.4.
"""

from __future__ import annotations

from collections.abc import Iterable
from xml.sax.saxutils import quoteattr

from lxml import etree

from xds import vocabulary as v
from xds.ebrim import decode, encode
from xds.errors import MetadataError, RegistryErrorItem, Severity
from xds.model.messages import QueryParameter, QueryResponse, RegistryResponse, StoredQueryRequest
from xds.model.metadata import Submission
from xds.namespaces import LCM, QUERY, RIM, RS, qn

SUBMIT_OBJECTS_REQUEST = qn(LCM, "SubmitObjectsRequest")
ADHOC_QUERY_REQUEST = qn(QUERY, "AdhocQueryRequest")
_REGISTRY_OBJECT_LIST = qn(RIM, "RegistryObjectList")
_ADHOC_QUERY = qn(RIM, "AdhocQuery")
_RESPONSE_OPTION = qn(QUERY, "ResponseOption")
REGISTRY_RESPONSE = qn(RS, "RegistryResponse")
_REGISTRY_ERRORS = f"{qn(RS, 'RegistryErrorList')}/{qn(RS, 'RegistryError')}"


def submit_objects_request(elem: etree._Element) -> Submission:
    """Decode ``lcm:SubmitObjectsRequest``."""
    if elem.tag != SUBMIT_OBJECTS_REQUEST:
        raise MetadataError(f"expected lcm:SubmitObjectsRequest, got {etree.QName(elem).text}")
    container = elem.find(_REGISTRY_OBJECT_LIST)
    if container is None:
        raise MetadataError("SubmitObjectsRequest has no rim:RegistryObjectList")
    return decode.registry_object_list(container)


def adhoc_query_request(elem: etree._Element) -> StoredQueryRequest:
    """Decode ``query:AdhocQueryRequest`` (ITI TF-2 §3.18.4.1.2)."""
    if elem.tag != ADHOC_QUERY_REQUEST:
        raise MetadataError(f"expected query:AdhocQueryRequest, got {etree.QName(elem).text}")
    option = elem.find(_RESPONSE_OPTION)
    query = elem.find(_ADHOC_QUERY)
    if query is None:
        raise MetadataError("AdhocQueryRequest has no rim:AdhocQuery")
    params = tuple(QueryParameter(name=s.name, values=s.values) for s in decode.slots(query))
    return StoredQueryRequest(
        query_id=query.get("id", ""),
        return_type=option.get("returnType", "LeafClass") if option is not None else "LeafClass",
        return_composed_objects=(option.get("returnComposedObjects", "false") == "true")
        if option is not None
        else False,
        parameters=params,
        home=query.get("home", ""),
    )


def render_submit_objects_request(sub: Submission) -> bytes:
    """Render ``lcm:SubmitObjectsRequest`` (document sources, the repository's ITI-42 to a remote registry)."""
    root = etree.Element(SUBMIT_OBJECTS_REQUEST, nsmap={"lcm": LCM, "rim": RIM})
    container = etree.SubElement(root, _REGISTRY_OBJECT_LIST)
    for obj in sub.objects():
        container.append(encode.any_object(obj))
    return etree.tostring(root, encoding="utf-8")


def render_adhoc_query_request(req: StoredQueryRequest) -> bytes:
    """Render ``query:AdhocQueryRequest`` (consumers, the initiating gateway)."""
    root = etree.Element(ADHOC_QUERY_REQUEST, nsmap={"query": QUERY, "rim": RIM})
    etree.SubElement(
        root,
        _RESPONSE_OPTION,
        {
            "returnComposedObjects": "true" if req.return_composed_objects else "false",
            "returnType": req.return_type,
        },
    )
    query = etree.SubElement(root, _ADHOC_QUERY, {"id": req.query_id})
    if req.home:
        query.set("home", req.home)
    for p in req.parameters:
        encode.add_slot(query, p.name, p.values)
    return etree.tostring(root, encoding="utf-8")


def _error_list(errors: Iterable[RegistryErrorItem]) -> str:
    errors = list(errors)
    if not errors:
        return ""
    highest = Severity.ERROR if any(e.severity == Severity.ERROR for e in errors) else Severity.WARNING
    parts = [f"<rs:RegistryErrorList highestSeverity={quoteattr(highest)}>"]
    for e in errors:
        loc = f" location={quoteattr(e.location)}" if e.location else ""
        parts.append(
            f"<rs:RegistryError codeContext={quoteattr(e.code_context)} errorCode={quoteattr(e.error_code)}"
            f" severity={quoteattr(e.severity)}{loc}/>"
        )
    parts.append("</rs:RegistryErrorList>")
    return "".join(parts)


def registry_error_item(elem: etree._Element) -> RegistryErrorItem:
    """Decode one ``rs:RegistryError`` as a peer sent it.

    ``codeContext`` falls back to the element's text (some peers put it there); an absent ``severity`` is
    Error (the rs.xsd default), an unknown one Warning when it ends with ``Warning``, else Error.
    """
    return RegistryErrorItem(
        error_code=elem.get("errorCode", ""),
        code_context=elem.get("codeContext", "") or (elem.text or "").strip(),
        severity=_severity(elem.get("severity")),
        location=elem.get("location", ""),
    )


def _severity(value: str | None) -> Severity:
    if value is None:
        return Severity.ERROR
    try:
        return Severity(value.strip())
    except ValueError:
        return Severity.WARNING if value.strip().endswith("Warning") else Severity.ERROR


def registry_errors(container: etree._Element) -> tuple[RegistryErrorItem, ...]:
    """Every ``rs:RegistryError`` of the ``rs:RegistryErrorList`` under ``container``."""
    return tuple(registry_error_item(e) for e in container.iterfind(_REGISTRY_ERRORS))


def parse_registry_response(elem: etree._Element) -> RegistryResponse:
    """Decode ``rs:RegistryResponse`` faithfully: status and every RegistryError (ebRS 3.0 §2.1.6).

    Raises
    ------
    ValueError
        When ``elem`` is not an ``rs:RegistryResponse`` or has no status.
    """
    if elem.tag != REGISTRY_RESPONSE:
        raise ValueError(f"expected rs:RegistryResponse, got <{etree.QName(elem).text}>")
    status = elem.get("status", "").strip()
    if not status:
        raise ValueError("rs:RegistryResponse has no status")
    return RegistryResponse(status=status, errors=registry_errors(elem))


def registry_response(resp: RegistryResponse) -> bytes:
    """Render ``rs:RegistryResponse``."""
    errors = _error_list(resp.errors)
    head = f'<rs:RegistryResponse xmlns:rs="{RS}" status={quoteattr(resp.status)}'
    if not errors:
        return (head + "/>").encode()
    return f"{head}>{errors}</rs:RegistryResponse>".encode()


def registry_failure(errors: tuple[RegistryErrorItem, ...]) -> bytes:
    """``rs:RegistryResponse`` with status Failure and ``errors`` (the error answer of ITI-42 and ITI-41)."""
    return registry_response(RegistryResponse(status=v.RESPONSE_FAILURE, errors=errors))


def adhoc_query_failure(errors: tuple[RegistryErrorItem, ...]) -> bytes:
    """``query:AdhocQueryResponse`` with status Failure and ``errors`` (ITI-18, ITI-38)."""
    return adhoc_query_response(QueryResponse(status=v.RESPONSE_FAILURE, errors=errors))


def adhoc_query_response(resp: QueryResponse) -> bytes:
    """Render ``query:AdhocQueryResponse`` from stored fragments or ObjectRefs."""
    head = (
        f'<query:AdhocQueryResponse xmlns:query="{QUERY}" xmlns:rs="{RS}" xmlns:rim="{RIM}"'
        f" status={quoteattr(resp.status)}>{_error_list(resp.errors)}<rim:RegistryObjectList>"
    ).encode()
    if resp.refs:
        body = "".join(
            f"<rim:ObjectRef id={quoteattr(r.id)}" + (f" home={quoteattr(r.home)}" if r.home else "") + "/>"
            for r in resp.refs
        ).encode()
    else:
        body = "".join(resp.leaf).encode()
    return head + body + b"</rim:RegistryObjectList></query:AdhocQueryResponse>"


__all__ = [
    "ADHOC_QUERY_REQUEST",
    "REGISTRY_RESPONSE",
    "SUBMIT_OBJECTS_REQUEST",
    "adhoc_query_failure",
    "adhoc_query_request",
    "adhoc_query_response",
    "parse_registry_response",
    "registry_error_item",
    "registry_errors",
    "registry_failure",
    "registry_response",
    "render_adhoc_query_request",
    "render_submit_objects_request",
    "submit_objects_request",
]
