"""Affinity-domain code lists (optional): which coded values a registry accepts, per classification scheme.

Reads the NIST XDS Toolkit ``codes.xml`` format::

    <Codes>
      <CodeType name="classCode" classScheme="urn:uuid:41a5887f-...">
        <Code code="REPORTS" codingScheme="1.3.6.1.4.1.19376.1.2.6.1" display="Reports"/>
      </CodeType>
      <CodeType name="mimeType"> <Code code="text/plain"/> </CodeType>
    </Codes>

References
----------
ITI TF-3 §4.2.3.1.2 (coded values are from the affinity domain's value sets); ITI TF-1 §10.4.4.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xds.ebrim.parser import parse_xml


@dataclass(frozen=True, slots=True)
class CodeLists:
    """Allowed ``(code, codingScheme)`` pairs per classification scheme, and allowed mime types."""

    by_scheme: dict[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    mime_types: frozenset[str] | None = None

    def allows(self, scheme: str, code: str, coding_scheme: str) -> bool:
        """True when the scheme has no list, or the list holds this code."""
        allowed = self.by_scheme.get(scheme)
        return allowed is None or (code, coding_scheme) in allowed

    def allows_mime_type(self, mime_type: str) -> bool:
        """True when no mime type list is configured, or it holds ``mime_type``."""
        return self.mime_types is None or mime_type in self.mime_types


def parse_codes_xml(data: bytes) -> CodeLists:
    """Read a NIST-format ``codes.xml``."""
    root = parse_xml(data)
    by_scheme: dict[str, frozenset[tuple[str, str]]] = {}
    mime: frozenset[str] | None = None
    for ct in root.iter("CodeType"):
        codes = [(c.get("code", ""), c.get("codingScheme", "")) for c in ct.iter("Code")]
        if ct.get("name") == "mimeType":
            mime = frozenset(code for code, _ in codes)
        elif ct.get("classScheme"):
            by_scheme[ct.get("classScheme", "")] = frozenset(codes)
    return CodeLists(by_scheme=by_scheme, mime_types=mime)


__all__ = ["CodeLists", "parse_codes_xml"]
