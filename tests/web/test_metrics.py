"""GET /metrics: Prometheus text with the BSN report, the inbox and the audit spool."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from tests.dicom.test_ingest import PATIENT, study
from xds.app import create_app
from xds.imaging import receive_studies
from xds.node import Node


def test_metrics_show_the_bsn_report_and_the_inbox(node: Node, tmp_path: Path) -> None:
    node.store.add_patient(str(PATIENT))
    study(tmp_path / "s", 1)
    receive_studies(node, [tmp_path / "s"], sender='Ziekenhuis "Oost"')  # no BSN: the study waits
    with TestClient(create_app(node)) as client:
        response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = response.text.splitlines()
    assert 'xds_deliveries{status="unknown-patient"} 1' in lines
    assert "xds_dicom_instances 0" in lines
    assert "xds_digests_pending 0" in lines
    assert any(line.startswith("xds_audit_unsent ") for line in lines)
    assert 'xds_bsn_studies{sender="Ziekenhuis \\"Oost\\"",bucket="missing"} 1' in lines  # counted while it waits
