"""Validate messages against the XSDs of the conformance corpus (test helper, R9/R14).

Theory of operation: one wrapper schema, built in memory and cached, imports the XDS.b schema (which pulls in
ebRS 3.0 rs/rim/lcm/query), the four ebRS 3.0 namespaces and the SOAP 1.2 envelope. Every global element of
those namespaces is then a valid validation root, so a bare ``rim:ExtrinsicObject`` validates as well as a
whole envelope. SOAP 1.2 declares the content of ``env:Body`` ``processContents="lax"``, so for an envelope
each element child of the Body is validated again on its own.

Nothing goes to the network: the official ``rim.xsd`` imports ``http://www.w3.org/2001/xml.xsd`` by URL. The
corpus ``schemas/catalog.xml`` maps it to a local copy; ``XML_CATALOG_FILES`` is pointed at it before the
first schema load (see ``schemas/README.md``), and because libxml2 reads that variable only once per
process, a resolver applies the same catalog entries itself and refuses any other remote URL. The schema
parser also runs with ``no_network=True``.

References
----------
OASIS ebRS 3.0 (rim.xsd, rs.xsd, lcm.xsd, query.xsd); ITI TF-2 Appendix V (SOAP 1.2); W3C SOAP 1.2 Part 1.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Final

import pytest
from lxml import etree

from xds.namespaces import LCM, QUERY, RIM, RS, SOAP12, XDSB, XSD

ENV_VAR: Final = "XDS_CONFORMANCE_DIR"
"""Environment variable naming the conformance corpus directory."""
DEFAULT_CORPUS: Final = Path(__file__).resolve().parents[2] / "shared" / "conformance"
"""Where the corpus sits when the variable is unset: ``../shared/conformance`` next to the checkout."""

_MARKER: Final = Path("schemas") / "IHE" / "XDS.b_DocumentRepository.xsd"
_CATALOG: Final = Path("schemas") / "catalog.xml"
_MISSING: Final = f"conformance corpus not found: set {ENV_VAR} or place it at ../shared/conformance"

#: Namespace -> schema file (relative to the corpus), in import order.
IMPORTS: Final[tuple[tuple[str, str], ...]] = (
    (XDSB, "schemas/IHE/XDS.b_DocumentRepository.xsd"),
    (LCM, "schemas/ebRS/lcm.xsd"),
    (QUERY, "schemas/ebRS/query.xsd"),
    (RS, "schemas/ebRS/rs.xsd"),
    (RIM, "schemas/ebRS/rim.xsd"),
    (SOAP12, "schemas/soap/soap-1.2-envelope.xsd"),
)

_ENVELOPE: Final = f"{{{SOAP12}}}Envelope"
_BODY: Final = f"{{{SOAP12}}}Body"
_CATALOG_NS: Final = "urn:oasis:names:tc:entity:xmlns:xml:catalog"


def corpus_dir() -> Path | None:
    """The conformance corpus directory, or None when its schemas are not there."""
    configured = os.environ.get(ENV_VAR)
    base = Path(configured) if configured else DEFAULT_CORPUS
    return base if (base / _MARKER).is_file() else None


requires_corpus = pytest.mark.skipif(corpus_dir() is None, reason=_MISSING)
"""Skip a test when the conformance corpus is absent."""


class _OfflineResolver(etree.Resolver):
    """Serve the corpus catalog's entries from disk and refuse every other non-file URL."""

    def __init__(self, mapping: dict[str, Path]) -> None:
        super().__init__()
        self._mapping = mapping

    def resolve(self, url: str | None, pubid: str | None, context: Any) -> Any:
        if url in self._mapping:
            return self.resolve_filename(str(self._mapping[url]), context)
        if url and "://" in url and not url.startswith("file:"):
            raise OSError(f"schema import would go to the network: {url}")
        return None


def _catalog_entries(catalog: Path) -> dict[str, Path]:
    root = etree.parse(str(catalog), etree.XMLParser(no_network=True, resolve_entities=False)).getroot()
    out: dict[str, Path] = {}
    for entry in root:
        name = entry.get("name") or entry.get("systemId")
        if name and entry.get("uri"):
            out[name] = (catalog.parent / entry.get("uri", "")).resolve()
    return out


def load_schema(corpus: Path, imports: tuple[tuple[str, str], ...] = IMPORTS) -> etree.XMLSchema:
    """Build the wrapper schema importing ``imports`` (namespace, corpus-relative path), offline."""
    catalog = corpus / _CATALOG
    os.environ["XML_CATALOG_FILES"] = str(catalog)
    wrapper = etree.Element(f"{{{XSD}}}schema", nsmap={"xs": XSD})
    for namespace, location in imports:
        target = location if "://" in location else (corpus / location).resolve().as_uri()
        etree.SubElement(wrapper, f"{{{XSD}}}import", namespace=namespace, schemaLocation=target)
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_OfflineResolver(_catalog_entries(catalog)))
    base = (corpus / "schemas" / "wrapper.xsd").as_uri()
    return etree.XMLSchema(etree.fromstring(etree.tostring(wrapper), parser, base_url=base))


@functools.cache
def _schema(corpus: Path) -> etree.XMLSchema:
    return load_schema(corpus)


def _parse(data: bytes) -> etree._Element:
    # Independent of xds.ebrim.parser on purpose: the oracle must not share the code under test.
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_OfflineResolver({}))
    return etree.fromstring(data, parser)


def _errors(schema: etree.XMLSchema, elem: etree._Element, label: str) -> list[str]:
    if schema.validate(elem):
        return []
    return [
        f"{label}: line {e.line}, column {e.column}: {e.message} [{e.path}]"
        for e in schema.error_log
        if e.level >= etree.ErrorLevels.ERROR
    ] or [f"{label}: invalid (no message)"]


def assert_valid(xml: bytes | etree._Element, *, what: str = "") -> None:
    """Assert that ``xml`` validates against the corpus XSDs; skip the test when the corpus is absent.

    A SOAP 1.2 envelope is validated as a whole and each element child of its ``env:Body`` on its own.

    Raises
    ------
    AssertionError
        Listing every schema error (line, column, message, path).
    """
    corpus = corpus_dir()
    if corpus is None:
        pytest.skip(_MISSING)
    schema = _schema(corpus)
    root = _parse(xml) if isinstance(xml, bytes) else xml
    label = what or etree.QName(root).localname
    problems = _errors(schema, root, label)
    if root.tag == _ENVELOPE:
        for body in root.iterchildren(_BODY):
            for child in body:
                if not isinstance(child.tag, str):
                    continue
                problems += _errors(schema, child, f"{label} Body/{etree.QName(child).localname}")
    if problems:
        raise AssertionError("not valid against the conformance XSDs:\n" + "\n".join(problems))


__all__ = [
    "DEFAULT_CORPUS",
    "ENV_VAR",
    "IMPORTS",
    "assert_valid",
    "corpus_dir",
    "load_schema",
    "requires_corpus",
]


@functools.cache
def _envelope_schema(name: str) -> etree.XMLSchema:
    corpus = corpus_dir()
    path = corpus / "schemas" / "soap" / name if corpus else None
    if path is None or not path.is_file():
        pytest.skip(_MISSING)
    return etree.XMLSchema(etree.parse(str(path)))


def assert_envelope_valid(message: bytes, xsd: str = "soap-1.2-envelope.xsd") -> etree._Element:
    """Parse ``message`` (with the oracle parser) and validate it against one SOAP envelope XSD alone.

    For the SOAP codec's own tests, including SOAP 1.1 faults (``xsd="soap-1.1-envelope.xsd"``); message
    content is validated with :func:`assert_valid`.
    """
    root = _parse(message)
    schema = _envelope_schema(xsd)
    assert schema.validate(root), schema.error_log
    return root
