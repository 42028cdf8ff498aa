"""RAD-69 Retrieve Imaging Document Set at /xds/imaging: instances byte for byte, each refusal with its code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from starlette.testclient import TestClient

from tests.dicom.test_ingest import PATIENT, study
from tests.support import Answer, post
from xds import vocabulary as v
from xds.app import create_app
from xds.consent.local import DENY, EVERYONE, Directive
from xds.ebrim import xdsi
from xds.imaging import ingest
from xds.model.messages import DocumentRequest, ImagingDocumentRequest, ImagingRetrieveRequest
from xds.node import Node

IMAGING = "/xds/imaging"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


@pytest.fixture
def stored(node: Node, tmp_path: Path) -> tuple[Node, list[pydicom.Dataset], list[Path]]:
    node.store.add_patient(str(PATIENT))
    paths = study(tmp_path / "s", 3)
    ingest(node, [tmp_path / "s"], patient=str(PATIENT))
    return node, [pydicom.dcmread(p) for p in paths], paths


@pytest.fixture
def client(stored: tuple[Node, list[pydicom.Dataset], list[Path]]) -> Iterator[TestClient]:
    with TestClient(create_app(stored[0])) as c:
        yield c


def ask(
    client: TestClient,
    node: Node,
    datasets: list[pydicom.Dataset],
    *,
    syntaxes: tuple[str, ...] = (EXPLICIT_LE, "1.2.840.10008.1.2"),
    sop: str = "",
    series: str = "",
    repository: str = "",
) -> Answer:
    requests = tuple(
        ImagingDocumentRequest(
            study_instance_uid=str(ds.StudyInstanceUID),
            series_instance_uid=series or str(ds.SeriesInstanceUID),
            document=DocumentRequest(
                repository_unique_id=repository or node.imaging_source_id,
                document_unique_id=sop or str(ds.SOPInstanceUID),
            ),
        )
        for ds in datasets
    )
    body = xdsi.render_imaging_retrieve_request(ImagingRetrieveRequest(documents=requests, transfer_syntaxes=syntaxes))
    return post(client, v.ACTION_RETRIEVE_IMAGING, body, IMAGING)


def test_every_instance_comes_back_byte_for_byte(client: TestClient, stored: tuple[Node, list, list]) -> None:  # type: ignore[type-arg]
    node, datasets, _ = stored
    answer = ask(client, node, datasets)
    assert answer.status == v.RESPONSE_SUCCESS and answer.is_mtom
    held = node.imaging.study_instances(str(datasets[0].StudyInstanceUID))
    assert sorted(answer.attachments.values()) == sorted(node.documents.path(i.sha256).read_bytes() for i in held)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"sop": "1.2.3.999"}, "XDSDocumentUniqueIdError"),
        ({"series": "1.2.3.4"}, "XDSDocumentUniqueIdError"),
        ({"repository": "1.2.3.999"}, "XDSUnknownRepositoryId"),
        ({"syntaxes": ("1.2.840.10008.1.2.4.50",)}, "XDSRepositoryError"),
        ({"syntaxes": ()}, "XDSRepositoryError"),
    ],
    ids=["unknown-instance", "wrong-series", "unknown-repository", "syntax-not-stored", "no-syntax"],
)
def test_refusals(client: TestClient, stored: tuple[Node, list, list], change: dict[str, object], code: str) -> None:  # type: ignore[type-arg]
    node, datasets, _ = stored
    answer = ask(client, node, datasets[:1], **change)  # type: ignore[arg-type]
    assert answer.status == v.RESPONSE_FAILURE and answer.error_codes == [code]
    assert answer.attachments == {}


def test_some_missing_is_partial_success(client: TestClient, stored: tuple[Node, list, list]) -> None:  # type: ignore[type-arg]
    node, datasets, _ = stored
    good = ask(client, node, datasets[:1])
    assert good.status == v.RESPONSE_SUCCESS
    body = xdsi.render_imaging_retrieve_request(
        ImagingRetrieveRequest(
            documents=(
                ImagingDocumentRequest(
                    study_instance_uid=str(datasets[0].StudyInstanceUID),
                    series_instance_uid=str(datasets[0].SeriesInstanceUID),
                    document=DocumentRequest(
                        repository_unique_id=node.imaging_source_id, document_unique_id=str(datasets[0].SOPInstanceUID)
                    ),
                ),
                ImagingDocumentRequest(
                    study_instance_uid=str(datasets[0].StudyInstanceUID),
                    series_instance_uid=str(datasets[0].SeriesInstanceUID),
                    document=DocumentRequest(
                        repository_unique_id=node.imaging_source_id, document_unique_id="1.2.3.999"
                    ),
                ),
            ),
            transfer_syntaxes=(EXPLICIT_LE, "1.2.840.10008.1.2"),
        )
    )
    answer = post(client, v.ACTION_RETRIEVE_IMAGING, body, IMAGING)
    assert answer.status == v.RESPONSE_PARTIAL_SUCCESS and answer.error_codes == ["XDSDocumentUniqueIdError"]
    assert len(answer.attachments) == 1


def test_empty_study_uid_is_an_xdsi_request_error(client: TestClient, stored: tuple[Node, list, list]) -> None:  # type: ignore[type-arg]
    node, datasets, _ = stored
    body = xdsi.render_imaging_retrieve_request(
        ImagingRetrieveRequest(
            documents=(
                ImagingDocumentRequest(
                    study_instance_uid="",
                    series_instance_uid=str(datasets[0].SeriesInstanceUID),
                    document=DocumentRequest(
                        repository_unique_id=node.imaging_source_id, document_unique_id=str(datasets[0].SOPInstanceUID)
                    ),
                ),
            ),
            transfer_syntaxes=(EXPLICIT_LE,),
        )
    )
    answer = post(client, v.ACTION_RETRIEVE_IMAGING, body, IMAGING)
    assert answer.status == v.RESPONSE_FAILURE and answer.error_codes == ["XDSIRequestError"]


def test_a_denied_patient_is_answered_like_an_unknown_instance(
    client: TestClient,
    stored: tuple[Node, list, list],  # type: ignore[type-arg]
) -> None:
    node, datasets, _ = stored
    node.consents.add(Directive(patient_id=str(PATIENT), decision=DENY, who=EVERYONE))
    answer = ask(client, node, datasets[:1])
    assert answer.status == v.RESPONSE_FAILURE and answer.error_codes == ["XDSDocumentUniqueIdError"]


def test_wsdl(client: TestClient) -> None:
    wsdl = client.get(f"{IMAGING}?wsdl")
    assert wsdl.status_code == 200 and b"ImagingDocumentSource_RetrieveImagingDocumentSet" in wsdl.content


def rad75(client: TestClient, node: Node, ds: pydicom.Dataset, home: str) -> Answer:
    request = ImagingDocumentRequest(
        study_instance_uid=str(ds.StudyInstanceUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
        document=DocumentRequest(
            repository_unique_id=node.imaging_source_id,
            document_unique_id=str(ds.SOPInstanceUID),
            home_community_id=home,
        ),
    )
    body = xdsi.render_imaging_retrieve_request(
        ImagingRetrieveRequest(documents=(request,), transfer_syntaxes=(EXPLICIT_LE,))
    )
    return post(client, v.ACTION_CROSS_GATEWAY_RETRIEVE_IMAGING, body, "/xca/responding")


def test_rad75_at_the_responding_gateway(client: TestClient, stored: tuple[Node, list, list]) -> None:  # type: ignore[type-arg]
    node, datasets, _ = stored
    answer = rad75(client, node, datasets[0], node.home_community_id)
    assert answer.status == v.RESPONSE_SUCCESS
    [instance] = node.imaging.instances([str(datasets[0].SOPInstanceUID)]).values()
    assert list(answer.attachments.values()) == [node.documents.path(instance.sha256).read_bytes()]
    homes = [e.text for e in answer.body.iter("{urn:ihe:iti:xds-b:2007}HomeCommunityId")]
    assert homes == [node.home_community_id]
    missing = rad75(client, node, datasets[0], "")
    assert missing.status == v.RESPONSE_FAILURE and missing.error_codes == ["XDSMissingHomeCommunityId"]
    foreign = rad75(client, node, datasets[0], "urn:oid:1.2.3.4.999")
    assert foreign.status == v.RESPONSE_FAILURE and foreign.error_codes == ["XDSUnknownCommunity"]
    events = [r.event for r in node.audit.listing()]
    assert events.count("RAD-75") == 3
