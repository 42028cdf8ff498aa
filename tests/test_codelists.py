"""Affinity-domain code lists in the NIST codes.xml format."""

from __future__ import annotations

import pytest

from tests.xsd import corpus_dir
from xds import samples
from xds import vocabulary as v
from xds.codelists import parse_codes_xml
from xds.validation import Rules, validate_submission

SMALL = b"""<Codes>
  <CodeType name="classCode" classScheme="urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a">
    <Code code="REPORTS" codingScheme="1.3.6.1.4.1.19376.1.2.6.1" display="Reports"/>
  </CodeType>
  <CodeType name="mimeType"><Code code="text/plain"/></CodeType>
</Codes>"""


def test_small_list() -> None:
    lists = parse_codes_xml(SMALL)
    assert lists.allows(v.DE_CLASS_CODE, "REPORTS", "1.3.6.1.4.1.19376.1.2.6.1")
    assert not lists.allows(v.DE_CLASS_CODE, "REPORTS", "other")
    assert lists.allows(v.DE_TYPE_CODE, "anything", "goes")  # no list for typeCode
    assert lists.allows_mime_type("text/plain") and not lists.allows_mime_type("application/pdf")


def test_nist_code_set_accepts_our_sample_metadata() -> None:
    corpus = corpus_dir()
    if corpus is None:
        pytest.skip("conformance corpus not found: set XDS_CONFORMANCE_DIR or place it at ../shared/conformance")
    path = corpus / "nist-iheos-toolkit2/xdstools2/src/main/webapp/toolkitx/environment/default/codes.xml"
    lists = parse_codes_xml(path.read_bytes())
    assert len(lists.by_scheme) >= 9
    pid = samples.patient(1)
    sub = samples.submission(pid, [samples.document_entry(pid)], folders=[samples.folder(pid)])
    assert validate_submission(sub, Rules(code_lists=lists)) == []
