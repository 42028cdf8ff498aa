"""The homeCommunityId a Responding Gateway must put on what it returns (XCA, ITI-38 and ITI-39).

- ITI-38 (``query:AdhocQueryResponse``): every top-level object of ``rim:RegistryObjectList`` that is an
  ExtrinsicObject, RegistryPackage, ObjectRef or Association carries ``home`` = the gateway's
  homeCommunityId (ITI TF-2 §3.38.4.1.3; the NIST testplans 12309/12310 assert it on each ObjectRef and
  ExtrinsicObject).
- ITI-39 (``xdsb:RetrieveDocumentSetResponse``): every ``DocumentResponse`` has a ``HomeCommunityId`` equal
  to it (ITI TF-2 §3.39.4.2.2).

Objects nested inside another (Classification, ExternalIdentifier) are not checked. Any other answer
(a SOAP Fault, a RegistryResponse) has nothing to check.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from xds.namespaces import QUERY, RIM, XDSB

_QUERY_RESPONSE: Final = f"{{{QUERY}}}AdhocQueryResponse"
_RETRIEVE_RESPONSE: Final = f"{{{XDSB}}}RetrieveDocumentSetResponse"
_HOMED: Final = frozenset(f"{{{RIM}}}{n}" for n in ("ExtrinsicObject", "RegistryPackage", "ObjectRef", "Association"))


def check(body: etree._Element, home: str) -> list[str]:
    """Every returned object of an XCA answer that does not carry ``home`` (empty: all do)."""
    if body.tag == _QUERY_RESPONSE:
        objects = body.find(f"{{{RIM}}}RegistryObjectList")
        return [
            f"{etree.QName(e).localname} {e.get('id', '?')}: home {e.get('home')!r}, expected {home!r}"
            for e in ([] if objects is None else objects)
            if e.tag in _HOMED and e.get("home") != home
        ]
    if body.tag == _RETRIEVE_RESPONSE:
        out = []
        for n, d in enumerate(body.iterchildren(f"{{{XDSB}}}DocumentResponse"), 1):
            found = d.findtext(f"{{{XDSB}}}HomeCommunityId")
            if (found or "").strip() != home:
                uid = (d.findtext(f"{{{XDSB}}}DocumentUniqueId") or f"#{n}").strip()
                out.append(f"DocumentResponse {uid}: HomeCommunityId {found!r}, expected {home!r}")
        return out
    return []


__all__ = ["check"]
