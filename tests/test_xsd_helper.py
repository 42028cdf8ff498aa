"""tests/xsd.py: the validator accepts valid messages and rejects invalid ones, offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lxml import etree

from tests.xsd import DEFAULT_CORPUS, ENV_VAR, IMPORTS, assert_valid, corpus_dir, load_schema, requires_corpus
from xds import vocabulary as v
from xds.namespaces import LCM, RIM, SOAP12, WSA

pytestmark = requires_corpus

_NS = f'xmlns:rim="{RIM}" xmlns:lcm="{LCM}"'

EXTRINSIC = f'<rim:ExtrinsicObject {_NS} id="Document01" mimeType="text/plain" objectType="{v.DE_STABLE}"/>'

SUBMIT = f"""<lcm:SubmitObjectsRequest {_NS}>
  <rim:RegistryObjectList>
    <rim:RegistryPackage id="SubmissionSet01" objectType="{v.OT_REGISTRY_PACKAGE}">
      <rim:Slot name="submissionTime">
        <rim:ValueList><rim:Value>20240131</rim:Value></rim:ValueList>
      </rim:Slot>
      <rim:Name><rim:LocalizedString xml:lang="en-US" value="title"/></rim:Name>
    </rim:RegistryPackage>
    <rim:Classification id="c1" classifiedObject="SubmissionSet01" classificationNode="{v.SS_NODE}"/>
  </rim:RegistryObjectList>
</lcm:SubmitObjectsRequest>"""


def envelope(body: str, *, header_first: bool = True) -> bytes:
    """A SOAP 1.2 envelope (RegisterDocumentSet-b) around ``body``."""
    header = f'<env:Header><wsa:Action xmlns:wsa="{WSA}">{v.ACTION_REGISTER}</wsa:Action></env:Header>'
    parts = (header, f"<env:Body>{body}</env:Body>")
    inner = "".join(parts if header_first else reversed(parts))
    return f'<env:Envelope xmlns:env="{SOAP12}">{inner}</env:Envelope>'.encode()


VALID = {
    "bare rim:ExtrinsicObject": EXTRINSIC.encode(),
    "lcm:SubmitObjectsRequest": SUBMIT.encode(),
    "SOAP 1.2 envelope": envelope(SUBMIT),
}

INVALID = {
    # (message, expected fragment of the schema error log)
    "id missing": (EXTRINSIC.replace('id="Document01" ', "").encode(), "'id' is required"),
    "child order": (
        f'<rim:ExtrinsicObject {_NS} id="d" objectType="x"><rim:Name/><rim:Slot name="a">'
        "<rim:ValueList/></rim:Slot></rim:ExtrinsicObject>".encode(),
        "Slot': This element is not expected",
    ),
    "Slot without ValueList": (
        f'<rim:Slot {_NS} name="a"/>'.encode(),
        "Missing child element",
    ),
    "unknown global element": (f"<rim:NoSuchThing {_NS}/>".encode(), "No matching global declaration"),
    "Value longer than LongName": (
        f"<rim:Value {_NS}>{'x' * 257}</rim:Value>".encode(),
        "maxLength",
    ),
    "Body before Header": (envelope(SUBMIT, header_first=False), "Header"),
    "invalid Body content": (
        envelope(SUBMIT.replace(' id="SubmissionSet01"', "")),
        "Body/SubmitObjectsRequest",
    ),
}


@pytest.mark.parametrize("message", VALID.values(), ids=VALID.keys())
def test_accepts_valid_bytes(message: bytes) -> None:
    assert_valid(message)


@pytest.mark.parametrize("message", VALID.values(), ids=VALID.keys())
def test_accepts_valid_element(message: bytes) -> None:
    assert_valid(etree.fromstring(message))


def test_accepts_a_nested_element_as_root() -> None:
    root = etree.fromstring(SUBMIT.encode())
    package = root.find(f"{{{RIM}}}RegistryObjectList/{{{RIM}}}RegistryPackage")
    assert package is not None
    assert_valid(package)


@pytest.mark.parametrize(("message", "fragment"), INVALID.values(), ids=INVALID.keys())
def test_rejects_invalid(message: bytes, fragment: str) -> None:
    with pytest.raises(AssertionError) as info:
        assert_valid(message, what="sample")
    assert fragment in str(info.value)
    assert "sample" in str(info.value)


def test_body_content_is_validated_separately() -> None:
    # SOAP 1.2 Body content is lax: the envelope schema on its own accepts a broken body ...
    message = envelope(SUBMIT.replace(' id="SubmissionSet01"', ""))
    corpus = corpus_dir()
    assert corpus is not None
    soap_only = load_schema(corpus, (next(i for i in IMPORTS if i[0] == SOAP12),))
    assert soap_only.validate(etree.fromstring(message))
    # ... so assert_valid checks each Body child on its own as well.
    with pytest.raises(AssertionError, match=r"Body/SubmitObjectsRequest: .*'id' is required"):
        assert_valid(message)


def test_accepts_a_nist_testkit_submission() -> None:
    corpus = corpus_dir()
    assert corpus is not None
    sample = next(corpus.glob("nist-iheos-toolkit2/**/testkit/tests/16101/submit/single_doc.xml"), None)
    if sample is None:
        pytest.skip("NIST testkit sample 16101 not in the corpus")
    assert_valid(sample.read_bytes(), what=sample.name)


def test_remote_imports_are_refused() -> None:
    corpus = corpus_dir()
    assert corpus is not None
    with pytest.raises(etree.XMLSchemaParseError, match=r"example\.org"):
        load_schema(corpus, (("urn:example:remote", "http://example.org/never.xsd"),))


def test_catalog_is_configured_after_loading() -> None:
    assert_valid(EXTRINSIC.encode())
    corpus = corpus_dir()
    assert corpus is not None
    assert Path(os.environ["XML_CATALOG_FILES"]) == corpus / "schemas" / "catalog.xml"


def test_corpus_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = corpus_dir()
    assert real is not None
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert corpus_dir() is None
    monkeypatch.setenv(ENV_VAR, str(real))
    assert corpus_dir() == real


def test_corpus_dir_defaults_to_the_shared_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    here = Path(__file__).resolve()
    assert here.parents[2] / "shared" / "conformance" == DEFAULT_CORPUS
    monkeypatch.delenv(ENV_VAR, raising=False)
    marker = DEFAULT_CORPUS / "schemas" / "IHE" / "XDS.b_DocumentRepository.xsd"
    expected = DEFAULT_CORPUS if marker.is_file() else None
    assert corpus_dir() == expected
