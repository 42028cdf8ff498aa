"""``<ExpectedContents>`` of a NIST query step, checked against a stored-query answer.

Counts (``<Documents count="n"/>``, SubmissionSets, Folders, Associations, ObjectRefs), ``<None/>`` (no
objects), and the named shapes the NIST engine knows (``SSwithOneDoc``, ``SSwithTwoDocOneFol``, ``DocApp``,
``DocDep``, ``SSApproved``, ``HasXFRM_RPLC``...). A RegistryPackage is a SubmissionSet or a Folder by its
classification node (nested, or a top-level Classification naming it).
"""

from __future__ import annotations

from collections import Counter
from typing import Final

from lxml import etree

from xds import vocabulary as v
from xds.namespaces import RIM

_KINDS: Final = {"ExtrinsicObject": "Documents", "ObjectRef": "ObjectRefs", "Association": "Associations"}
_SHAPES: Final[dict[str, dict[str, int]]] = {
    "SSwithOneDoc": {"SubmissionSets": 1, "Documents": 1},
    "SSwithTwoDoc": {"SubmissionSets": 1, "Documents": 2},
    "SSwithOneFol": {"SubmissionSets": 1, "Folders": 1},
    "SSwithOneDocOneFol": {"SubmissionSets": 1, "Documents": 1, "Folders": 1},
    "SSwithTwoDocOneFol": {"SubmissionSets": 1, "Documents": 2, "Folders": 1},
}
_STATUS: Final = {
    "DocApp": ("Documents", v.APPROVED),
    "DocDep": ("Documents", v.DEPRECATED),
    "SSApproved": ("SubmissionSets", v.APPROVED),
}


class UnsupportedExpectation(Exception):
    """An ExpectedContents element this harness does not evaluate."""


def _objects(body: etree._Element) -> list[etree._Element]:
    lst = body.find(f"{{{RIM}}}RegistryObjectList")
    return [] if lst is None else [e for e in lst if isinstance(e.tag, str)]


def classify(body: etree._Element) -> list[tuple[str, etree._Element]]:
    """(kind, element) for each returned object; kind is a count name of ExpectedContents."""
    objects = _objects(body)
    nodes: dict[str, set[str]] = {}
    for c in body.iter(f"{{{RIM}}}Classification"):
        nodes.setdefault(c.get("classifiedObject", ""), set()).add(c.get("classificationNode", ""))
    out: list[tuple[str, etree._Element]] = []
    for e in objects:
        local = etree.QName(e).localname
        if local == "RegistryPackage":
            mine = nodes.get(e.get("id", ""), set())
            out.append(
                (
                    "SubmissionSets"
                    if v.SS_NODE in mine
                    else "Folders"
                    if v.FOLDER_NODE in mine
                    else "RegistryPackages",
                    e,
                )
            )
        elif local != "Classification":
            out.append((_KINDS.get(local, local), e))
    return out


def tally(body: etree._Element) -> Counter[str]:
    """How many objects of each kind the answer holds."""
    return Counter(kind for kind, _ in classify(body))


def check(body: etree._Element, expected: tuple[tuple[str, int | None], ...]) -> list[str]:
    """Every way ``body`` differs from ``expected`` (empty: as expected)."""
    counts = tally(body)
    problems: list[str] = []
    for name, count in expected:
        if count is not None:
            wanted = {name: count}
        elif name == "None":
            wanted = {k: 0 for k in counts} | {"Documents": 0}
        elif name in _SHAPES:
            wanted = _SHAPES[name]
        elif name in _STATUS:
            problems += _status(body, *_STATUS[name])
            continue
        elif name == "HasXFRM_RPLC":
            types = {e.get("associationType") for k, e in classify(body) if k == "Associations"}
            if v.XFRM_RPLC not in types:
                problems.append("no XFRM_RPLC Association returned")
            continue
        else:
            raise UnsupportedExpectation(name)
        problems += [f"{k}: expected {n}, got {counts.get(k, 0)}" for k, n in wanted.items() if counts.get(k, 0) != n]
    return problems


def _status(body: etree._Element, kind: str, status: str) -> list[str]:
    found = [e.get("status", "") for k, e in classify(body) if k == kind]
    if not found:
        return [f"{kind}: none returned, expected status {status.rsplit(':', 1)[-1]}"]
    return [f"{kind}: status {s} where {status} was expected" for s in found if s != status]


__all__ = ["UnsupportedExpectation", "check", "classify", "tally"]
