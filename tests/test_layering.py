"""Import direction (ARCHITECTURE.md §2, STYLE R1) and spec constants in one place (STYLE R4), by static analysis.

Every ``.py`` file under ``xds/``, ``xca/`` and ``registry_schema/`` is parsed with :mod:`ast` (nothing is
imported), and each module is one test case:

* model and codec (``xds.model``, ``xds.ebrim``, ``xds.soap``, ``xds.namespaces``, ``xds.vocabulary``,
  ``xds.errors``) import no web/database/HTTP library and nothing above them;
* services (``xds.registry``, ``xds.repository``, ``xds.consent``, ``xds.audit``, ``xds.security``,
  ``xds.xdm``) import no web/database/HTTP library and no adapter (but for the adapters in
  :data:`SERVICE_ADAPTERS`);
* ``xds`` never imports ``xca`` (``xca`` imports ``xds``, never the reverse);
* a ``urn:uuid:<hex>`` string literal appears only in ``xds/vocabulary.py`` (and ``xds/ebrim/encode.py``,
  which builds UUIDs behind the bare ``urn:uuid:`` prefix).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("xds", "xca", "registry_schema")

CODEC = ("xds.model", "xds.ebrim", "xds.soap", "xds.namespaces", "xds.vocabulary", "xds.errors")
CODEC_FORBIDDEN = (
    *("sqlalchemy", "starlette", "httpx", "uvicorn"),
    *("xds.store", "xds.web", "xds.app", "xds.cli", "xds.registry", "xds.repository", "registry_schema"),
)
SERVICES = (
    *("xds.registry", "xds.repository", "xds.consent", "xds.audit", "xds.security", "xds.xdm", "xds.recipient"),
    "xds.dicom",
)
SERVICE_ADAPTERS = ("xds.consent.mitz", "xds.audit.syslog")
"""Adapters that live beside their service: the remote consent decision point (httpx) and the syslog sender."""
SERVICES_FORBIDDEN = (
    *("sqlalchemy", "starlette", "httpx"),
    *("xds.store", "xds.web", "xds.app", "xds.cli", "registry_schema"),
)
XDS_FORBIDDEN = ("xca",)

UUID_LITERAL_ALLOWED = frozenset({"xds/vocabulary.py", "xds/ebrim/encode.py"})
_UUID_LITERAL = re.compile(r"urn:uuid:[0-9a-fA-F]")


def module_name(path: Path) -> str:
    """Dotted module name of a file below :data:`ROOT`."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def forbidden_for(module: str) -> tuple[str, ...]:
    """The modules ``module`` may not import (empty outside ``xds``)."""
    out: tuple[str, ...] = ()
    if _within(module, ("xds",)):
        out += XDS_FORBIDDEN
    if _within(module, CODEC):
        out += CODEC_FORBIDDEN
    if _within(module, SERVICES) and not _within(module, SERVICE_ADAPTERS):
        out += SERVICES_FORBIDDEN
    return out


def _absolute(module: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module name ``source`` may import: ``import x``, ``from x import y`` (x and x.y), relative
    imports resolved against ``module``, and ``importlib.import_module`` / ``__import__`` with a literal."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.level, node.module)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in {"__import__", "import_module"}
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Imports of ``source`` that break the layering rule of ``module``."""
    banned = forbidden_for(module)
    return sorted(name for name in imports(source, module, is_package=is_package) if _within(name, banned))


def uuid_literals(source: str) -> list[str]:
    """String constants (f-string parts included) that start with ``urn:uuid:`` followed by a hex digit."""
    return [
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _UUID_LITERAL.match(node.value)
    ]


def _sources(*packages: str) -> Iterator[Path]:
    for package in packages:
        yield from sorted((ROOT / package).rglob("*.py"))


XDS_MODULES = list(_sources("xds"))
ALL_MODULES = list(_sources(*PACKAGES))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", XDS_MODULES, ids=_rel)
def test_imports_flow_downwards(path: Path) -> None:
    module = module_name(path)
    assert forbidden_for(module), f"{module} has no layering rule"
    found = violations(path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py")
    assert found == [], f"{module} imports {found} (ARCHITECTURE.md §2)"


@pytest.mark.parametrize("path", [p for p in ALL_MODULES if _rel(p) not in UUID_LITERAL_ALLOWED], ids=_rel)
def test_uuid_literals_live_in_vocabulary(path: Path) -> None:
    found = uuid_literals(path.read_text(encoding="utf-8"))
    assert found == [], f"{_rel(path)} spells out {found}; use a xds.vocabulary constant (STYLE R4)"


# --- the analysis itself ----------------------------------------------------------------------------------


def test_every_layer_is_scanned() -> None:
    names = {module_name(p) for p in XDS_MODULES}
    assert {"xds", "xds.model.hl7", "xds.ebrim.decode", "xds.ebrim.parser", "xds.vocabulary"} <= names
    assert {module_name(p) for p in ALL_MODULES} >= names | {"xca"}


def test_the_vocabulary_is_where_the_uuids_are() -> None:
    # The literal finder works on real code: the profile's UUIDs are found where they belong.
    found = uuid_literals((ROOT / "xds" / "vocabulary.py").read_text(encoding="utf-8"))
    assert len(found) >= 30
    assert all(re.fullmatch(r"urn:uuid:[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", u) for u in found)


RULES = [
    # (module, source, expected violations)
    ("xds.ebrim.decode", "import sqlalchemy.orm", ["sqlalchemy.orm"]),
    (
        "xds.ebrim.decode",
        "from starlette.requests import Request",
        ["starlette.requests", "starlette.requests.Request"],
    ),
    ("xds.model.metadata", "import httpx as h", ["httpx"]),
    ("xds.soap.envelope", "from uvicorn import run", ["uvicorn", "uvicorn.run"]),
    ("xds.ebrim.decode", "from xds import store", ["xds.store"]),
    ("xds.ebrim.decode", "from ..registry import iti42", ["xds.registry", "xds.registry.iti42"]),
    ("xds.ebrim.encode", "from ..web import app", ["xds.web", "xds.web.app"]),
    ("xds.errors", "import registry_schema.tables", ["registry_schema.tables"]),
    ("xds.vocabulary", "import importlib\nimportlib.import_module('xds.cli')", ["xds.cli"]),
    ("xds.namespaces", "__import__('xds.app')", ["xds.app"]),
    ("xds.ebrim.decode", "def f():\n    import httpx", ["httpx"]),
    ("xds.registry.iti42", "from xds.store.sql import SqlStore", ["xds.store.sql", "xds.store.sql.SqlStore"]),
    ("xds.registry.iti42", "import starlette", ["starlette"]),
    ("xds.registry.iti42", "from registry_schema import tables", ["registry_schema", "registry_schema.tables"]),
    ("xds.web.soap", "import xca.client", ["xca.client"]),
    # allowed
    ("xds.registry.iti42", "from xds.ebrim import decode\nimport uuid", []),
    ("xds.registry.iti42", "import uvicorn", []),  # uvicorn is not in the services rule
    ("xds.ebrim.decode", "from xds.model import CX\nfrom lxml import etree", []),
    ("xds.ebrim.decode", "from . import parser\nfrom .encode import to_bytes", []),
    ("xds.ebrim.decode", "import xds.storage_helpers", []),  # prefix match is by dotted component
    ("xds.web.soap", "import sqlalchemy\nimport starlette", []),
    ("xca.initiating", "import xds.registry", []),
]


@pytest.mark.parametrize(("module", "source", "expected"), RULES)
def test_violations_are_detected(module: str, source: str, expected: list[str]) -> None:
    assert violations(source, module) == expected


def test_relative_imports_resolve_from_a_package() -> None:
    assert "xds.store" in imports("from .store import sql", "xds", is_package=True)
    assert "xds.store" in imports("from ..store import sql", "xds.ebrim", is_package=True)


UUIDS = [
    ('X = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"', ["urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"]),
    ('x = f"urn:uuid:41a5{y}"', ["urn:uuid:41a5"]),
    ('x = f"urn:uuid:{y}"', []),
    ('x = "urn:uuid:"', []),
    ('"""Docstring naming ``urn:uuid:41a5887f-...`` in passing."""', []),
    ('x = "urn:oid:1.2.3"', []),
]


@pytest.mark.parametrize(("source", "expected"), UUIDS)
def test_uuid_literals_are_detected(source: str, expected: list[str]) -> None:
    assert uuid_literals(source) == expected
