"""Helpers for tests that talk SOAP to the registry: build requests, read answers."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree
from starlette.testclient import TestClient

from tests.xsd import assert_valid
from xds import vocabulary as v
from xds.ebrim import messages
from xds.ebrim.parser import parse_xml
from xds.model.messages import QueryParameter, StoredQueryRequest
from xds.model.metadata import Submission
from xds.namespaces import RIM, RS, SOAP12, qn
from xds.soap.envelope import CONTENT_TYPE, request_envelope

REGISTRY = "/xds/registry"


@dataclass
class Answer:
    """A parsed registry answer."""

    http_status: int
    status: str
    error_codes: list[str]
    body: etree._Element
    raw: bytes

    @property
    def ok(self) -> bool:
        return self.status == v.RESPONSE_SUCCESS

    def ids(self, local: str = "") -> list[str]:
        """Ids of returned objects (ObjectRef or LeafClass), optionally only of one element name."""
        lst = self.body.find(qn(RIM, "RegistryObjectList"))
        if lst is None:
            return []
        return [e.get("id", "") for e in lst if not local or etree.QName(e).localname == local]


def post(client: TestClient, action: str, body: bytes, path: str = REGISTRY) -> Answer:
    """POST a SOAP 1.2 request; validate and parse the answer."""
    envelope = request_envelope(action=action, body=body, to=f"http://testserver{path}")
    resp = client.post(path, content=envelope, headers={"content-type": f'{CONTENT_TYPE}; action="{action}"'})
    root = parse_xml(resp.content)
    assert_valid(root, what=f"answer to {action}")
    payload = root.find(qn(SOAP12, "Body"))[0]  # type: ignore[index]
    errors = [e.get("errorCode", "") for e in payload.iter(qn(RS, "RegistryError"))]
    return Answer(resp.status_code, payload.get("status", ""), errors, payload, resp.content)


def register(client: TestClient, sub: Submission) -> Answer:
    """Send ITI-42 for ``sub``."""
    return post(client, v.ACTION_REGISTER, messages.render_submit_objects_request(sub))


def query(
    client: TestClient, query_id: str, params: dict[str, str | list[str]], *, return_type: str = "LeafClass"
) -> Answer:
    """Send ITI-18; ``params`` maps slot name to one value text or to repeated slots (a list)."""
    parameters = []
    for name, value in params.items():
        for text in [value] if isinstance(value, str) else value:
            parameters.append(QueryParameter(name=name, values=(text,)))
    req = StoredQueryRequest(query_id=query_id, return_type=return_type, parameters=tuple(parameters))
    return post(client, v.ACTION_STORED_QUERY, messages.render_adhoc_query_request(req))


def q(*values: str) -> str:
    """A quoted stored-query value list: ``('a','b')``."""
    return "(" + ",".join("'" + x.replace("'", "''") + "'" for x in values) + ")"
