"""How :mod:`xca.client` reads a community's ITI-38 answer: each object stands alone, with ``home``."""

from __future__ import annotations

from lxml import etree

from xca.client import _query_answer
from xds.namespaces import RIM

HOME = "urn:oid:1.2.3.4"

# A peer that declares every namespace on the Envelope, under prefixes of its own, and one it never uses.
ANSWER = f"""<?xml version="1.0"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing"
    xmlns:q="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" xmlns:r="{RIM}" xmlns:unused="urn:example:unused">
  <s:Header><a:Action>urn:ihe:iti:2007:CrossGatewayQueryResponse</a:Action></s:Header>
  <s:Body>
    <q:AdhocQueryResponse status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success">
      <r:RegistryObjectList>
        <r:ExtrinsicObject id="urn:uuid:1" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">
          <r:Slot name="x"><r:ValueList><r:Value>1</r:Value></r:ValueList></r:Slot>
        </r:ExtrinsicObject>
        <r:RegistryPackage id="urn:uuid:2" home="urn:oid:9.9"/>
      </r:RegistryObjectList>
    </q:AdhocQueryResponse>
  </s:Body>
</s:Envelope>""".encode()


def test_objects_serialize_alone_with_their_own_namespace_declarations() -> None:
    answer = _query_answer(200, ANSWER, HOME, 1 << 20)
    assert len(answer.leaf) == 2
    first, second = (etree.fromstring(leaf) for leaf in answer.leaf)
    assert (first.tag, second.tag) == (f"{{{RIM}}}ExtrinsicObject", f"{{{RIM}}}RegistryPackage")
    assert first.find(f"{{{RIM}}}Slot/{{{RIM}}}ValueList/{{{RIM}}}Value").text == "1"  # type: ignore[union-attr]
    assert "urn:example:unused" not in answer.leaf[0]
    assert "soap-envelope" not in answer.leaf[0]


def test_home_is_added_only_where_the_community_left_it_out() -> None:
    answer = _query_answer(200, ANSWER, HOME, 1 << 20)
    homes = [etree.fromstring(leaf).get("home") for leaf in answer.leaf]
    assert homes == [HOME, "urn:oid:9.9"]
