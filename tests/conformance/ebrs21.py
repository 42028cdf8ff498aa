"""ebRS 2.1 ``SubmitObjectsRequest`` -> ebRS 3.0 ``lcm:SubmitObjectsRequest``, as the NIST engine does for
``<XDSb/>`` steps (conformance README §2.1).

Theory of operation: the 2.1 ``rim:LeafRegistryObjectList`` becomes a 3.0 ``rim:RegistryObjectList``; each
object is rebuilt in the 3.0 namespace with its attributes, and its children are put in the 3.0 schema
order (``Slot*, Name?, Description?, VersionInfo?, Classification*, ExternalIdentifier*``; 2.1 lets Name and
Description come first). What 3.0 requires and 2.1 leaves out is filled in: ``id`` on Classification and
ExternalIdentifier (a new ``urn:uuid:``) and on Association (a symbolic id, so the registry assigns the
UUID unless the step asks for ``AssignUuids``), ``classifiedObject``/``registryObject`` (the enclosing
object), the full ``associationType`` URN, and the RegistryPackage ``objectType``.

References
----------
OASIS ebRIM 2.1 and 3.0 (rim.xsd); ITI TF-3 §4.2.2 (association types), §4.2.3.3/§4.2.3.4 (packages).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Final

from lxml import etree

from xds import vocabulary as v
from xds.namespaces import LCM, RIM

RS21: Final = "urn:oasis:names:tc:ebxml-regrep:registry:xsd:2.1"
RIM21: Final = "urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1"

_ORDER: Final = ("Slot", "Name", "Description", "VersionInfo", "Classification", "ExternalIdentifier")
_SHORT_TYPES: Final = {t.rsplit(":", 1)[-1]: t for t in v.ASSOCIATION_TYPES}
_PACKAGE_TYPE: Final = v.OT_REGISTRY_PACKAGE


def is_ebrs21(root: etree._Element) -> bool:
    """True for a 2.1 ``SubmitObjectsRequest``."""
    return root.tag == f"{{{RS21}}}SubmitObjectsRequest"


def to_ebrs30(root: etree._Element) -> etree._Element:
    """The 3.0 ``lcm:SubmitObjectsRequest`` equivalent of the 2.1 request ``root``."""
    out = etree.Element(f"{{{LCM}}}SubmitObjectsRequest", nsmap={"lcm": LCM, "rim": RIM})
    target = etree.SubElement(out, f"{{{RIM}}}RegistryObjectList")
    source = root.find(f"{{{RIM21}}}LeafRegistryObjectList")
    counter = itertools.count(1)
    for child in _elements(source):
        target.append(_convert(child, "", counter))
    return out


def _elements(parent: etree._Element | None) -> Iterator[etree._Element]:
    if parent is None:
        return
    for child in parent:
        if isinstance(child.tag, str):
            yield child


def _local(e: etree._Element) -> str:
    return etree.QName(e).localname


def _convert(e: etree._Element, parent_id: str, counter: Iterator[int]) -> etree._Element:
    local = _local(e)
    new = etree.Element(f"{{{RIM}}}{local}")
    for name, value in e.attrib.items():
        new.set(name, value)
    if e.text and e.text.strip():
        new.text = e.text
    _fill(new, local, parent_id, counter)
    children = [_convert(c, new.get("id", parent_id), counter) for c in _elements(e)]
    for c in sorted(children, key=lambda c: _rank(_local(c))):
        new.append(c)
    return new


def _rank(local: str) -> int:
    return _ORDER.index(local) if local in _ORDER else len(_ORDER)


def _fill(new: etree._Element, local: str, parent_id: str, counter: Iterator[int]) -> None:
    """Add what ebRIM 3.0 requires and 2.1 leaves implicit."""
    if local in ("Classification", "ExternalIdentifier") and not new.get("id"):
        new.set("id", f"urn:uuid:{uuid.uuid4()}")
    if local == "Classification" and not new.get("classifiedObject"):
        new.set("classifiedObject", parent_id)
    if local == "ExternalIdentifier" and not new.get("registryObject"):
        new.set("registryObject", parent_id)
    if local == "Association":
        if not new.get("id"):
            new.set("id", f"Association{next(counter):02d}")
        kind = new.get("associationType", "")
        new.set("associationType", _SHORT_TYPES.get(kind, kind))
    if local == "RegistryPackage" and not new.get("objectType"):
        new.set("objectType", _PACKAGE_TYPE)


__all__ = ["RIM21", "RS21", "is_ebrs21", "to_ebrs30"]
