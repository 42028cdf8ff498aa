"""The NIST Imaging Document Source cases of RAD-69 Retrieve Imaging Document Set (``$T/ids_4812/case-0..9``
and ``$T/ids_2018-4811/case-00..09``), the DICOM instances they need, and what each testplan expects.

Test data. The images the requests name are Connectathon data (``ids_4812``: the 2016 set, UID roots
``1.3.6.1.4.1.21367.201599.{1,2,3}.<timestamp>`` for study, series and instance; ``ids_2018-4811``: TCIA
images, ``1.3.6.1.4.1.14519.5.2.1...``) and not in the corpus, so :data:`INSTANCES` synthesizes one CT instance
(pydicom's CT_small.dcm, Explicit VR Little Endian) per UID triple the cases rely on:

- the legal request's instance (case 0 / 00), in exactly the study and series it is asked in;
- the instance the "not in requested series" case (3 / 03) asks for, in *another series of the same study*
  (the request's study, a series of our own: the testplans do not say which series it is in);
- for ``ids_4812`` case 4 ("not in requested study"): the same instance is asked in study ``...954048``; by
  its timestamp arc (``.201604020954059.22``) it belongs to study ``...954059`` (case 3's), and study
  ``...954048`` with series ``...2.201604020954048`` is made to exist as well (the readme: "Study Instance
  UID and Series Instance UID are known"), with one instance of our own;
- for ``ids_2018-4811`` cases 04, 08, 09: the instance ``...156028`` in study ``...133586``, series
  ``...570955`` (where cases 08 and 09 ask for it, legally apart from their transfer syntax); case 04 asks
  for it in study ``...000000``, a doctored copy of that study's UID, which is left unknown (the requested
  series belongs to study ``...133586``, so it cannot also be put in ``...000000``).

Series and instance UIDs of our own are ``2.25`` UIDs derived from a fixed text (pydicom ``generate_uid``
with ``entropy_srcs``), so they are stable and visibly not from the Connectathon data.

Expectations (README §2.7, and each case's readme: "A RegistryError is considered to be correct if its
errorCode and severity attribute values match those in the 'gold standard' message"): the retrieve step's
``ExpectedStatus`` and ``ExpectedErrorMessage``; the ``registryErrorListNotEmpty`` assertion of the
following ``errors-N`` step; and the errorCode and severity of that step's gold-standard ``RegistryError``
under ``Standard/ResponseBody``. Only ``ids_4812`` case 1 and ``ids_2018-4811`` case 01 have that element
live; in the other cases it is inside an XML comment. :func:`gold` reads it from the comment as well (the
source of each code is kept, see :class:`Gold`), because it is the only statement of which code the case
wants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from lxml import etree
from pydicom.uid import generate_uid

from xds import vocabulary as v

TX: Final = "RAD-69"
IMAGING: Final = "/xds/imaging"
EXPLICIT_LE: Final = "1.2.840.10008.1.2.1"


def _own(text: str) -> str:
    """A stable ``2.25`` UID of our own for ``text``."""
    return str(generate_uid(prefix=None, entropy_srcs=[f"xds-node NIST RAD-69 synthetic {text}"]))


@dataclass(frozen=True, slots=True)
class Instance:
    """One synthesized DICOM instance: its UIDs and why it exists."""

    dataset: str
    study: str
    series: str
    sop: str
    why: str


_C16: Final = "1.3.6.1.4.1.21367.201599"
_T18: Final = "1.3.6.1.4.1.14519.5.2.1"

INSTANCES: Final[tuple[Instance, ...]] = (
    Instance(
        "ids_4812",
        f"{_C16}.1.201604020954059",
        f"{_C16}.2.201604020954059",
        f"{_C16}.3.201604020954059.1",
        "case 0 (legal request); cases 1, 5 to 9 name it too",
    ),
    Instance(
        "ids_4812",
        f"{_C16}.1.201604020954059",
        _own("ids_4812 other series of study 201604020954059"),
        f"{_C16}.3.201604020954059.22",
        "cases 3 and 4: the instance, in another series of its own study (...954059)",
    ),
    Instance(
        "ids_4812",
        f"{_C16}.1.201604020954048",
        f"{_C16}.2.201604020954048",
        _own("ids_4812 instance of study 201604020954048"),
        "case 4: the requested study and series exist, without the instance",
    ),
    Instance(
        "ids_2018-4811",
        f"{_T18}.2857.3273.184862055846930271614754681036",
        f"{_T18}.2857.3273.181092492540572112241403328675",
        f"{_T18}.2857.3273.393987221165344252190796851776",
        "case 00 (legal request); case 02 asks for an unknown instance in its series",
    ),
    Instance(
        "ids_2018-4811",
        f"{_T18}.7085.2626.192997540292073877946622133586",
        f"{_T18}.7085.2626.831285735928731782652048570955",
        f"{_T18}.7085.2626.310894536700672302243471156028",
        "cases 08, 09 (legal but for the transfer syntax); case 04 asks for it in study ...000000",
    ),
    Instance(
        "ids_2018-4811",
        f"{_T18}.7085.2626.192997540292073877946622133586",
        _own("ids_2018-4811 other series of study ...133586"),
        f"{_T18}.7085.2626.917173693042362721495240037775",
        "case 03: the instance, in another series of the requested study",
    ),
)


@dataclass(frozen=True, slots=True)
class Case:
    """One NIST case: ``test/section``, its request file, and an ``xfail`` reason when the node's answer
    disagrees with the testplan (the case is then xfail(strict=True); none does today)."""

    test: str
    section: str
    request: str
    xfail: str = ""

    @property
    def id(self) -> str:
        return f"{self.test}/{self.section.split('_', 1)[0]}"


_4812: Final = (
    "case-0_Comparison_Transaction",
    "case-1_Invalid_RepositoryUID",
    "case-2_Unknown_SOP_Instance_UID",
    "case-3_SOP_Instance_UID_not_in_requested_series",
    "case-4_SOP_Instance_UID_not_in_requested_study",
    "case-5_Empty_Study_Instance_UID",
    "case-6_Empty_Series_Instance_UID",
    "case-7_Empty_Study_and_Series_Instance_UIDs",
    "case-8_Empty_Transfer_Syntax_UID",
    "case-9_Invalid_Transfer_Syntax_UID",
)
_2018: Final = tuple(s.replace("case-", "case-0", 1) for s in _4812)

CASES: Final[tuple[Case, ...]] = (
    *(Case("ids_4812", s, "RAD-69Request.xml") for s in _4812),
    *(Case("ids_2018-4811", s, "rad69-request.xml") for s in _2018),
)
CASES_BY_ID: Final = {c.id: c for c in CASES}
LEGAL: Final = ("ids_4812/case-0", "ids_2018-4811/case-00")


@dataclass(frozen=True, slots=True)
class Gold:
    """A gold-standard ``RegistryError`` of an ``errors-N`` step."""

    code: str
    severity: str
    commented_out: bool


@dataclass(frozen=True, slots=True)
class Expected:
    """What a case's testplan expects of the answer to its retrieve step."""

    retrieve_step: str
    status: str
    messages: tuple[str, ...]
    error_list_not_empty: bool
    gold: tuple[Gold, ...]


_ATTR: Final = re.compile(r'(errorCode|severity)\s*=\s*"([^"]*)"')


def _gold_from_comment(text: str) -> list[Gold]:
    out = []
    for chunk in text.split("<rs:RegistryError")[1:]:
        attrs = dict(_ATTR.findall(chunk))
        if attrs.get("errorCode"):
            out.append(Gold(attrs["errorCode"], attrs.get("severity", v.SEVERITY_ERROR), commented_out=True))
    return out


def gold(errors_step: etree._Element) -> tuple[Gold, ...]:
    """The gold-standard RegistryErrors of an ``errors-N`` step, live or commented out."""
    out: list[Gold] = []
    for body in errors_step.iter("ResponseBody"):
        for node in body.iter():
            if isinstance(node, etree._Comment):
                out += _gold_from_comment(node.text or "")
            elif isinstance(node.tag, str) and etree.QName(node).localname == "RegistryError":
                out.append(Gold(node.get("errorCode", ""), node.get("severity", ""), commented_out=False))
    return tuple(out)


def expected(directory: Path) -> Expected:
    """Read ``<directory>/testplan.xml``: the retrieve step and the ``errors-N`` step that judges its answer."""
    root = etree.parse(str(directory / "testplan.xml"), etree.XMLParser(no_network=True)).getroot()
    steps = list(root.iterchildren("TestStep"))
    (retrieve,) = [s for s in steps if s.find("ImagingDocSetRetrieveTransaction") is not None]
    step_id = retrieve.get("id", "")
    judges = [s for s in steps if any(t.get("step") == step_id for t in s.iter("TestResponse"))]
    processes = {a.get("process", "") for s in judges for a in s.iter("Assert")}
    return Expected(
        retrieve_step=step_id,
        status=(retrieve.findtext("ExpectedStatus") or "Success").strip(),
        messages=tuple((e.text or "").strip() for e in retrieve.iterchildren("ExpectedErrorMessage")),
        error_list_not_empty="registryErrorListNotEmpty" in processes,
        gold=tuple(g for s in judges for g in gold(s)),
    )


__all__ = [
    "CASES",
    "CASES_BY_ID",
    "EXPLICIT_LE",
    "IMAGING",
    "INSTANCES",
    "LEGAL",
    "TX",
    "Case",
    "Expected",
    "Gold",
    "Instance",
    "expected",
    "gold",
]
