"""``xds serve`` over HTTPS with client certificates, certificates made at test time (trustme): old protocol
versions and missing or foreign client certificates are refused, and the client certificate's organisation is
the requester the consent gate decides for.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from tests.e2e._node import NodeFiles, new_node
from xds import samples
from xds import vocabulary as v
from xds.ebrim import messages, xdsb
from xds.model.messages import QueryParameter, StoredQueryRequest
from xds.soap.envelope import request_envelope, soap_content_type

pytestmark = pytest.mark.e2e

PATIENT = samples.patient("tls-e2e")
ORG_A, ORG_B = "Ziekenhuis A", "Ziekenhuis B"


class Pki:
    """The node's CA and server certificate, the clients' CA, and one client certificate per organisation."""

    def __init__(self, tmp: Path) -> None:
        self.server_ca, self.client_ca, self.foreign_ca = trustme.CA(), trustme.CA(), trustme.CA()
        self.tmp = tmp
        server = self.server_ca.issue_cert("127.0.0.1")
        self.server_cert, self.server_key = self._write("server", server)
        self.server_ca_file = tmp / "server-ca.pem"
        self.server_ca.cert_pem.write_to_path(str(self.server_ca_file))
        self.client_ca_file = tmp / "client-ca.pem"
        self.client_ca.cert_pem.write_to_path(str(self.client_ca_file))

    def _write(self, name: str, leaf: trustme.LeafCert) -> tuple[Path, Path]:
        cert, key = self.tmp / f"{name}.pem", self.tmp / f"{name}.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        return cert, key

    def client(self, organisation: str, *, ca: trustme.CA | None = None) -> tuple[str, str]:
        leaf = (ca or self.client_ca).issue_cert("client.example", organization_name=organisation)
        cert, key = self._write(f"client-{organisation.replace(' ', '_')}-{id(leaf)}", leaf)
        return str(cert), str(key)

    def context(self, cert: tuple[str, str] | None = None, *, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.server_ca_file))
        if maximum is not None:  # a client that offers only an old version (as far as this OpenSSL allows)
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
                ctx.maximum_version = maximum
        if cert is not None:
            ctx.load_cert_chain(*cert)
        return ctx


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture
def https_node(tmp_path: Path, pki: Pki) -> Iterator[tuple[NodeFiles, str]]:
    with new_node(tmp_path) as files:
        with files.config.open("a") as fh:
            fh.write(
                f'\n[tls]\ncert_file = "{pki.server_cert}"\nkey_file = "{pki.server_key}"\n'
                f'client_ca_file = "{pki.client_ca_file}"\nrequire_client_cert = true\n'
                'organisation_attribute = "organizationName"\n'
                '\n[consent]\ndefault = "opt-in"\n'
            )
        assert files.cli("patient", "add", str(PATIENT)).returncode == 0
        grant = files.cli("consent", "grant", str(PATIENT), "--organisation", ORG_A)
        assert grant.returncode == 0, grant.stderr
        url = f"https://127.0.0.1:{files.port}"
        with _serving(files, url, pki):
            yield files, url


def _serving(files: NodeFiles, url: str, pki: Pki) -> _Server:
    return _Server(files, url, pki)


class _Server:
    def __init__(self, files: NodeFiles, url: str, pki: Pki) -> None:
        self.files, self.url, self.pki = files, url, pki

    def __enter__(self) -> subprocess.Popen[bytes]:
        with self.files.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "xds", "serve", "--config", str(self.files.config)],
                env=self.files.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ctx = self.pki.context(self.pki.client(ORG_A))
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/health", verify=ctx, timeout=2).status_code == 200:
                    return self.proc
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(self.files.log.read_text(errors="replace")[-2000:])
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)


def soap(url: str, path: str, action: str, body: bytes, ctx: ssl.SSLContext) -> httpx.Response:
    envelope = request_envelope(action=action, body=body, to=f"{url}{path}")
    return httpx.post(
        f"{url}{path}", content=envelope, headers={"content-type": soap_content_type(action)}, verify=ctx, timeout=30
    )


def find(url: str, ctx: ssl.SSLContext) -> str:
    req = StoredQueryRequest(
        query_id=v.SQ_FIND_DOCUMENTS,
        parameters=(
            QueryParameter(name="$XDSDocumentEntryPatientId", values=(f"'{PATIENT}'",)),
            QueryParameter(name="$XDSDocumentEntryStatus", values=(f"('{v.APPROVED}')",)),
        ),
    )
    resp = soap(url, "/xds/registry", v.ACTION_STORED_QUERY, messages.render_adhoc_query_request(req), ctx)
    assert resp.status_code == 200
    return resp.text


def test_the_client_certificates_organisation_is_the_requester(https_node: tuple[NodeFiles, str], pki: Pki) -> None:
    _, url = https_node
    a, b = pki.context(pki.client(ORG_A)), pki.context(pki.client(ORG_B))
    de = samples.document_entry(PATIENT, content=b"over TLS")
    de = dataclasses.replace(de, hash="", size=None, repository_unique_id="")  # the repository fills these
    body = xdsb.render_provide_and_register_inline(
        messages.render_submit_objects_request(samples.submission(PATIENT, [de])), [(de.id, b"over TLS")]
    )
    resp = soap(url, "/xds/repository", v.ACTION_PROVIDE_AND_REGISTER, body, a)
    assert "ResponseStatusType:Success" in resp.text, resp.text[:500]
    assert "ExtrinsicObject" in find(url, a)  # granted to ORG_A
    answer_b = find(url, b)
    assert "ResponseStatusType:Success" in answer_b and "ExtrinsicObject" not in answer_b  # opt-in: not granted


def test_no_client_certificate_is_refused(https_node: tuple[NodeFiles, str], pki: Pki) -> None:
    _, url = https_node
    with pytest.raises((httpx.TransportError, ssl.SSLError)):
        httpx.get(f"{url}/health", verify=pki.context(), timeout=5).raise_for_status()


def test_a_client_certificate_from_an_unknown_ca_is_refused(https_node: tuple[NodeFiles, str], pki: Pki) -> None:
    _, url = https_node
    foreign = pki.context(pki.client(ORG_A, ca=pki.foreign_ca))
    with pytest.raises((httpx.TransportError, ssl.SSLError)):
        httpx.get(f"{url}/health", verify=foreign, timeout=5).raise_for_status()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_protocol_versions_before_tls_1_2_are_refused(
    https_node: tuple[NodeFiles, str], pki: Pki, version: ssl.TLSVersion
) -> None:
    _, url = https_node
    old = pki.context(pki.client(ORG_A), maximum=version)
    with pytest.raises((httpx.TransportError, ssl.SSLError)) as refused:
        httpx.get(f"{url}/health", verify=old, timeout=5).raise_for_status()
    why = str(refused.value).lower()  # the server's alert or its hang-up, not a client-side "no protocols available"
    assert "protocol version" in why or "eof" in why, why
    assert httpx.get(f"{url}/health", verify=pki.context(pki.client(ORG_A)), timeout=5).status_code == 200
