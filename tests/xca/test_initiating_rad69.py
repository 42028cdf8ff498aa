"""RAD-69 at the Initiating Gateway (XCA-I): a viewer's Retrieve Imaging Document Set, one RAD-75 per community.

Node A (every configured backend) is the initiating node and an imaging community of its own; node B (SQLite)
is a second community served by uvicorn, each with a CT study of the patient ingested. The misbehaving
"communities" are real sockets (:mod:`tests.xca._fakes`): one never answers, one answers HTML.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from lxml import etree
from starlette.testclient import TestClient

from tests.audit.test_message import SCHEMA
from tests.dicom.test_ingest import PATIENT, study
from tests.support import Answer, post, serving
from tests.xca._fakes import garbage, silent_socket
from tests.xca.test_initiating import B_HOME
from xca import initiating
from xca.client import GatewayClient
from xca.directory import Directory
from xca.initiating import InitiatingContext
from xca.iti38 import RespondingContext
from xds import vocabulary as v
from xds.app import create_app
from xds.config import Settings
from xds.consent.local import DENY, EVERYONE, Directive
from xds.ebrim import xdsb, xdsi
from xds.errors import ErrorCode, RepositoryError
from xds.imaging import ingest
from xds.model.messages import DocumentRequest, ImagingDocumentRequest, ImagingRetrieveRequest
from xds.namespaces import SOAP12, WSA, qn
from xds.node import Node
from xds.web.imaging import imaging_context

INITIATING = "/xca/initiating"
SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
SILENT_HOME = "urn:oid:1.3.6.1.4.1.21367.2017.2.6.901"
GARBAGE_HOME = "urn:oid:1.3.6.1.4.1.21367.2017.2.6.902"


@dataclass(frozen=True)
class Instance:
    """One ingested instance: where it is, and the bytes its node stored (what a retrieve must return)."""

    node: Node
    home: str
    study_uid: str
    series_uid: str
    sop_uid: str
    stored: bytes
    original: Path

    def request(self, home: str | None = None) -> ImagingDocumentRequest:
        return ImagingDocumentRequest(
            study_instance_uid=self.study_uid,
            series_instance_uid=self.series_uid,
            document=DocumentRequest(
                repository_unique_id=self.node.imaging_source_id,
                document_unique_id=self.sop_uid,
                home_community_id=self.home if home is None else home,
            ),
        )


def load_study(node: Node, directory: Path, home: str, n: int) -> list[Instance]:
    """``n`` CT instances of one new study of PATIENT, ingested into ``node``."""
    node.store.add_patient(str(PATIENT))
    paths = study(directory, n)
    [done], _ = ingest(node, [directory], patient=str(PATIENT))
    by_sop = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in paths}
    return [
        Instance(
            node=node,
            home=home,
            study_uid=i.study_uid,
            series_uid=i.series_uid,
            sop_uid=i.sop_instance_uid,
            stored=node.documents.path(i.sha256).read_bytes(),
            original=by_sop[i.sop_instance_uid],
        )
        for i in node.imaging.study_instances(done.study_uid)
    ]


@dataclass(frozen=True)
class Network:
    a: Node
    client: TestClient
    ours: list[Instance]
    theirs: list[Instance]
    b_url: str


@contextmanager
def network(settings: Settings, tmp_path: Path, *extra: tuple[str, str], deadline: float = 2.0) -> Iterator[Network]:
    """Community B serving its study, node A (with a study of its own) initiating to B and to ``extra``
    (homeCommunityId, URL) communities."""
    b = Node.open(Settings(data_dir=str(tmp_path / "b"), home_community_id=B_HOME))
    try:
        theirs = load_study(b, tmp_path / "b-study", B_HOME, 2)
        with serving(create_app(b)) as url:
            b_url = f"{url}/xca/responding"
            configured = dataclasses.replace(
                settings,
                communities=(
                    {"home_community_id": B_HOME, "query_url": b_url},
                    *({"home_community_id": home, "query_url": u} for home, u in extra),
                ),
                gateway_timeout=deadline,
                gateway_deadline=deadline,
            )
            a = Node.open(configured)
            try:
                ours = load_study(a, tmp_path / "a-study", a.home_community_id, 2)
                with TestClient(create_app(a)) as client:
                    yield Network(a, client, ours, theirs, b_url)
            finally:
                a.close()
    finally:
        b.close()


def rad69(net: Network, *requests: ImagingDocumentRequest, syntaxes: tuple[str, ...] = SYNTAXES) -> Answer:
    body = xdsi.render_imaging_retrieve_request(ImagingRetrieveRequest(documents=requests, transfer_syntaxes=syntaxes))
    return post(net.client, v.ACTION_RETRIEVE_IMAGING, body, INITIATING)


def returned(answer: Answer) -> dict[str, tuple[str, bytes]]:
    """SOP Instance UID -> (HomeCommunityId, bytes) of every DocumentResponse."""
    _, _, docs = xdsb.retrieve_response(answer.body)
    return {
        ids.document_unique_id: (ids.home_community_id, answer.attachments[part.cid or ""]) for ids, _, part in docs
    }


def response_action(answer: Answer) -> str:
    envelope = etree.fromstring(answer.raw)
    return envelope.findtext(f"{qn(SOAP12, 'Header')}/{qn(WSA, 'Action')}") or ""


def staged_files(node: Node) -> list[Path]:
    return [p for p in node.documents.staging_root.rglob("*") if p.is_file() and p.name != "lock"]


def test_instances_of_every_community_come_back_byte_for_byte(settings: Settings, tmp_path: Path) -> None:
    with network(settings, tmp_path) as net:
        answer = rad69(net, *(i.request() for i in net.ours + net.theirs))
        staged = staged_files(net.a)
    assert answer.status == v.RESPONSE_SUCCESS and answer.error_codes == [] and answer.is_mtom
    assert response_action(answer) == v.ACTION_RETRIEVE_RESPONSE
    assert returned(answer) == {i.sop_uid: (i.home, i.stored) for i in net.ours + net.theirs}
    for i in net.ours + net.theirs:  # the source files' images, whatever identity the node wrote into them
        assert (
            pydicom.dcmread(BytesIO(returned(answer)[i.sop_uid][1])).PixelData == pydicom.dcmread(i.original).PixelData
        )
    assert staged == [], "the copies of remote instances are gone once sent"


def test_a_request_without_home_is_for_our_own_imaging_source(settings: Settings, tmp_path: Path) -> None:
    with network(settings, tmp_path) as net:
        answer = rad69(net, *(i.request(home="") for i in net.ours))
        events = [r.event for r in net.a.audit.listing()]
    assert answer.status == v.RESPONSE_SUCCESS
    assert returned(answer) == {i.sop_uid: (net.a.home_community_id, i.stored) for i in net.ours}
    assert "RAD-75" not in events, "no community was called"
    assert "RAD-69" in events


def test_unavailable_communities_give_partial_success(settings: Settings, tmp_path: Path) -> None:
    with (
        silent_socket() as silent,
        garbage() as junk,
        network(settings, tmp_path, (SILENT_HOME, silent), (GARBAGE_HOME, junk), deadline=1.0) as net,
    ):
        b = net.theirs[0]
        answer = rad69(
            net,
            net.ours[0].request(),
            b.request(),
            dataclasses.replace(b, home=SILENT_HOME).request(),
            dataclasses.replace(b, home=GARBAGE_HOME).request(),
        )
        staged = staged_files(net.a)
        records = [r for r in net.a.audit.listing() if r.event == "RAD-75"]
    assert answer.status == v.RESPONSE_PARTIAL_SUCCESS
    assert answer.error_codes == [ErrorCode.UNAVAILABLE_COMMUNITY] * 2
    _, errors, _ = xdsb.retrieve_response(answer.body)
    unavailable = {e.location: e.code_context for e in errors}
    assert set(unavailable) == {SILENT_HOME, GARBAGE_HOME}
    assert "no answer" in unavailable[SILENT_HOME] and "not SOAP" in unavailable[GARBAGE_HOME]
    assert returned(answer) == {
        net.ours[0].sop_uid: (net.ours[0].home, net.ours[0].stored),
        b.sop_uid: (B_HOME, b.stored),
    }
    assert staged == []
    # one RAD-75 per community called, as the Initiating Gateway records it (Import; the responder the Source)
    assert len(records) == 3
    by_source = {}
    for r in records:
        root = etree.fromstring(r.xml)
        assert SCHEMA.validate(root), SCHEMA.error_log
        assert root.find("EventIdentification").get("EventActionCode") == "C"
        [source] = [p for p in root.iter("ActiveParticipant") if p.find("RoleIDCode").get("csd-code") == "110153"]
        by_source[source.get("UserID")] = r.outcome
    assert by_source == {net.b_url: 0, silent: 8, junk: 8}


def test_an_unknown_community_is_xds_unknown_community(settings: Settings, tmp_path: Path) -> None:
    unknown = "urn:oid:1.2.3.4.5.999"
    with network(settings, tmp_path) as net:
        alone = rad69(net, dataclasses.replace(net.theirs[0], home=unknown).request())
        mixed = rad69(net, net.theirs[0].request(), dataclasses.replace(net.theirs[1], home=unknown).request())
    assert alone.status == v.RESPONSE_FAILURE and alone.error_codes == [ErrorCode.UNKNOWN_COMMUNITY]
    _, errors, _ = xdsb.retrieve_response(alone.body)
    assert [e.location for e in errors] == [unknown]
    assert mixed.status == v.RESPONSE_PARTIAL_SUCCESS and mixed.error_codes == [ErrorCode.UNKNOWN_COMMUNITY]
    assert returned(mixed) == {net.theirs[0].sop_uid: (B_HOME, net.theirs[0].stored)}


def test_the_transfer_syntax_list_is_passed_on_as_given(settings: Settings, tmp_path: Path) -> None:
    """An empty TransferSyntaxUIDList goes to each community; each refuses it itself (no syntax acceptable)."""
    with network(settings, tmp_path) as net:
        answer = rad69(net, net.ours[0].request(), net.theirs[0].request(), syntaxes=())
    assert answer.status == v.RESPONSE_FAILURE
    assert answer.error_codes == ["XDSRepositoryError"] * 2, "each community answered; none is unavailable"
    _, errors, _ = xdsb.retrieve_response(answer.body)
    assert B_HOME in {e.location for e in errors}


def test_the_consent_gate_decides_our_own_instances_only(settings: Settings, tmp_path: Path) -> None:
    """A's gate withholds A's instances of the patient (as an unknown instance); B's are B's to decide."""
    with network(settings, tmp_path) as net:
        net.a.consents.add(Directive(patient_id=str(PATIENT), decision=DENY, who=EVERYONE))
        answer = rad69(net, net.ours[0].request(), net.theirs[0].request())
    assert answer.status == v.RESPONSE_PARTIAL_SUCCESS
    assert answer.error_codes == ["XDSDocumentUniqueIdError"]
    assert returned(answer) == {net.theirs[0].sop_uid: (B_HOME, net.theirs[0].stored)}


def test_wsdl_lists_the_rad69_operation(settings: Settings, tmp_path: Path) -> None:
    a = Node.open(settings)
    try:
        with TestClient(create_app(a)) as client:
            wsdl = client.get(f"{INITIATING}?wsdl")
    finally:
        a.close()
    assert wsdl.status_code == 200
    root = etree.fromstring(wsdl.content)
    ops = {o.get("name") for o in root.iter("{http://schemas.xmlsoap.org/wsdl/}operation")}
    assert ops == {
        "InitiatingGateway_RegistryStoredQuery",
        "InitiatingGateway_RetrieveDocumentSet",
        "InitiatingGateway_RetrieveImagingDocumentSet",
    }
    actions = {
        i.get("{http://www.w3.org/2006/05/addressing/wsdl}Action")
        for i in root.iter("{http://schemas.xmlsoap.org/wsdl/}input")
    }
    assert v.ACTION_RETRIEVE_IMAGING in actions


@pytest.mark.parametrize("missing", ["local_imaging", "new_file"])
def test_a_gateway_without_an_imaging_source_refuses(node: Node, missing: str) -> None:
    ctx = InitiatingContext(
        home_community_id=node.home_community_id,
        directory=Directory([]),
        client=GatewayClient(),
        local=RespondingContext(home_community_id=node.home_community_id, query=node.query_context()),
        local_imaging=None if missing == "local_imaging" else imaging_context(node),
        new_file=None if missing == "new_file" else node.documents.new_file,
    )
    request = ImagingRetrieveRequest(
        documents=(
            ImagingDocumentRequest(
                study_instance_uid="1.2",
                series_instance_uid="1.2.3",
                document=DocumentRequest(repository_unique_id="1.2.3", document_unique_id="1.2.3.4"),
            ),
        ),
        transfer_syntaxes=SYNTAXES,
    )
    with pytest.raises(RepositoryError):
        asyncio.run(initiating.retrieve_imaging(request, ctx))
