"""xds.ebrim.parser: the hardened parser refuses DTDs, entities, oversize, overdeep and malformed input.

References
----------
OWASP XML External Entity Prevention Cheat Sheet; zeep ``loader.parse_xml`` and its ``forbid_*`` settings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from xds.ebrim.parser import MAX_DEPTH, MAX_XML_BYTES, XMLError, parse_xml

SECRET = "7c1d-secret-marker-0b9e"

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n'
    b'<!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    b'<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">'
    b'<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">'
    b'<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">'
    b'<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">'
    b'<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">'
    b'<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">'
    b"]><lolz>&lol9;</lolz>"
)

DTD_CASES = {
    "bare DOCTYPE": b"<!DOCTYPE a><a/>",
    "DOCTYPE with empty internal subset": b"<!DOCTYPE a []><a/>",
    "internal entity": b'<!DOCTYPE a [<!ENTITY x "expanded">]><a>&x;</a>',
    "external entity /etc/passwd": b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>',
    "external entity over http": b'<!DOCTYPE a [<!ENTITY x SYSTEM "http://example.org/x">]><a>&x;</a>',
    "entity in an attribute": b'<!DOCTYPE a [<!ENTITY x "v">]><a b="&x;"/>',
}


@pytest.mark.parametrize("data", DTD_CASES.values(), ids=DTD_CASES.keys())
def test_dtd_is_refused(data: bytes) -> None:
    with pytest.raises(XMLError) as info:
        parse_xml(data)
    assert info.value.reason == "dtd"


def test_external_entity_is_never_expanded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    data = f'<!DOCTYPE a [<!ENTITY x SYSTEM "{secret.as_uri()}">]><a>&x;</a>'.encode()
    with pytest.raises(XMLError) as info:
        parse_xml(data)
    assert info.value.reason == "dtd"
    assert SECRET not in str(info.value)
    assert "root:" not in str(info.value)


def _external_subset(uri: str) -> bytes:
    return f'<!DOCTYPE a SYSTEM "{uri}"><a/>'.encode()


def _parameter_entity(uri: str) -> bytes:
    return f'<!DOCTYPE a [<!ENTITY % p SYSTEM "{uri}"> %p;]><a/>'.encode()


@pytest.mark.parametrize("make", [_external_subset, _parameter_entity], ids=["external subset", "parameter entity"])
def test_external_dtd_resources_are_never_loaded(tmp_path: Path, make: Callable[[str], bytes]) -> None:
    # The file is not DTD syntax: if libxml2 opens it, parsing fails with a content error naming the file.
    # If it is never opened, the document is well-formed and refused for its DOCTYPE.
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    with pytest.raises(XMLError) as info:
        parse_xml(make(secret.as_uri()))
    assert info.value.reason == "dtd"
    assert "secret.txt" not in str(info.value)


def test_external_dtd_subset_is_never_fetched() -> None:
    # no_network=True blocks the fetch, but libxml2 should not even try ("Attempt to load network entity").
    with pytest.raises(XMLError) as info:
        parse_xml(_external_subset("http://example.org/a.dtd"))
    assert info.value.reason == "dtd"


def test_billion_laughs_is_refused() -> None:
    # libxml2's entity amplification guard fires while parsing (reason "malformed") before the DOCTYPE check
    # of parse_xml would (reason "dtd"); either way nothing is expanded and the message stays small.
    with pytest.raises(XMLError) as info:
        parse_xml(BILLION_LAUGHS)
    assert info.value.reason in {"dtd", "malformed"}
    assert "lollol" not in str(info.value)
    assert len(str(info.value)) < 1000


def test_undefined_entity_is_malformed() -> None:
    with pytest.raises(XMLError) as info:
        parse_xml(b"<a>&x;</a>")
    assert info.value.reason == "malformed"


def test_predefined_and_character_references_still_work() -> None:
    assert parse_xml(b"<a>&lt;&amp;&#65;&#x42;</a>").text == "<&AB"


# --- size -------------------------------------------------------------------------------------------------


def test_size_limit() -> None:
    data = b"<a>" + b"x" * 100 + b"</a>"
    assert parse_xml(data, max_bytes=len(data)).tag == "a"
    with pytest.raises(XMLError) as info:
        parse_xml(data, max_bytes=len(data) - 1)
    assert info.value.reason == "too-large"


def test_default_size_limit() -> None:
    assert MAX_XML_BYTES == 64 * 1024 * 1024
    with pytest.raises(XMLError) as info:
        parse_xml(b" " * (MAX_XML_BYTES + 1))
    assert info.value.reason == "too-large"


def test_text_node_over_10_mb_is_accepted_within_the_size_limit() -> None:
    # Inline base64 documents (ITI-41) exceed libxml2's default 10,000,000-byte text node cap; the size limit
    # is ours (max_bytes), not libxml2's.
    assert len(parse_xml(b"<a>" + b"x" * 10_000_001 + b"</a>").text or "") == 10_000_001
    with pytest.raises(XMLError) as info:
        parse_xml(b"<a>" + b"x" * 10_000_001 + b"</a>", max_bytes=10_000_000)
    assert info.value.reason == "too-large"


# --- depth ------------------------------------------------------------------------------------------------


def nested(depth: int) -> bytes:
    return b"<a>" * depth + b"</a>" * depth


@pytest.mark.parametrize("limit", [1, 5, MAX_DEPTH])
def test_depth_limit(limit: int) -> None:
    assert parse_xml(nested(limit), max_depth=limit).tag == "a"
    with pytest.raises(XMLError) as info:
        parse_xml(nested(limit + 1), max_depth=limit)
    assert info.value.reason == "too-deep"


def test_default_depth_limit() -> None:
    assert parse_xml(nested(MAX_DEPTH)).tag == "a"
    with pytest.raises(XMLError) as info:
        parse_xml(nested(MAX_DEPTH + 1))
    assert info.value.reason == "too-deep"


def test_depth_counts_elements_only() -> None:
    text_and_attributes = b'<a x="1">t<b y="2">u</b>v</a>'
    assert parse_xml(text_and_attributes, max_depth=2).tag == "a"


def test_depth_beyond_libxml2_limit_is_refused() -> None:
    with pytest.raises(XMLError):
        parse_xml(nested(3000), max_depth=5000)


# --- malformed --------------------------------------------------------------------------------------------

MALFORMED = {
    "empty": b"",
    "text": b"not xml",
    "unclosed": b"<a>",
    "mismatched": b"<a></b>",
    "two roots": b"<a/><b/>",
    "unbound prefix": b"<rim:a/>",
    "bad attribute": b"<a b=1/>",
    "invalid UTF-8": b"<a>\xff\xfe</a>",
    "control character": b"<a>\x01</a>",
    "duplicate attribute": b'<a b="1" b="2"/>',
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed(data: bytes) -> None:
    with pytest.raises(XMLError) as info:
        parse_xml(data)
    assert info.value.reason == "malformed"
    assert isinstance(info.value, ValueError)
    assert not isinstance(info.value, etree.XMLSyntaxError)
    assert info.value.__cause__ is None


# --- comments and processing instructions -----------------------------------------------------------------


def test_comments_and_pis_are_removed() -> None:
    root = parse_xml(b'<?xml version="1.0"?><!--before--><?pi before?><a>x<!--c-->y<?pi z?><b/></a><!--after-->')
    assert [child.tag for child in root] == ["b"]
    assert root.text == "xy"
    assert root.getprevious() is None
    assert root.getnext() is None
    assert b"<!--" not in etree.tostring(root.getroottree())
    assert b"<?pi" not in etree.tostring(root.getroottree())


def test_returns_the_root_element_with_namespaces() -> None:
    root = parse_xml(b'<rim:a xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"><rim:b/></rim:a>')
    assert root.tag == "{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}a"
    assert root.getparent() is None
