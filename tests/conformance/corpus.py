"""Where the NIST XDS Toolkit testkit lives; tests skip when it is absent.

The corpus directory is ``$XDS_CONFORMANCE_DIR`` or ``<checkout>/../shared/conformance``. Files are read in
place; nothing from the corpus is copied into the project.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import pytest

ENV_VAR: Final = "XDS_CONFORMANCE_DIR"
DEFAULT: Final = Path(__file__).resolve().parents[3] / "shared" / "conformance"
_TOOLKITX: Final = Path("nist-iheos-toolkit2/xdstools2/src/main/webapp/toolkitx")
MISSING: Final = (
    f"NIST conformance corpus not found: set {ENV_VAR} or place it at ../shared/conformance "
    "(needs nist-iheos-toolkit2/.../toolkitx/testkit/tests)"
)


def corpus_dir() -> Path | None:
    """The corpus root, or None when its NIST testkit is not there."""
    configured = os.environ.get(ENV_VAR)
    base = Path(configured) if configured else DEFAULT
    return base if (base / _TOOLKITX / "testkit" / "tests").is_dir() else None


def nist_tests_dir() -> Path:
    """``$T``: the folder holding one sub-folder per NIST test (skips the test when absent)."""
    base = corpus_dir()
    if base is None:
        pytest.skip(MISSING)
    return base / _TOOLKITX / "testkit" / "tests"


def codes_xml() -> Path:
    """The affinity-domain code set the NIST registry validates against."""
    base = corpus_dir()
    if base is None:
        pytest.skip(MISSING)
    return base / _TOOLKITX / "environment" / "default" / "codes.xml"


__all__ = ["MISSING", "codes_xml", "corpus_dir", "nist_tests_dir"]
