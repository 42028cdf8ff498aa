"""The Dutch citizen service number (BSN) in DICOM: find it, grade it, and write it where it belongs.

Theory of operation
-------------------
**Finding.** :func:`bsn_candidates` looks at one instance through a small table of rules (:data:`_RULES`). An
id's *issuer* (the Issuer of Patient ID macro: (0010,0021) plus the single item of (0010,0024)) is graded first:

* *agreed*: qualifiers Universal Entity ID ``2.16.840.1.113883.2.4.6.3`` with type ``ISO``, or Issuer of
  Patient ID ``NLMINBIZA`` with Identifier Type Code ``NNNLD`` and no other Universal Entity ID;
* *named*: some other hint at the BSN (issuer ``NLMINBIZA`` or ``BSN`` without the qualifiers, or the BSN OID
  with a type other than ``ISO``);
* *other* (any other issuer) or *none* (no issuer at all).

Patient ID and each Other Patient IDs Sequence item with an *agreed* issuer are the **preferred** places; a
*named* issuer, a "BSN" label in Patient Comments, a 9-digit Patient ID without any issuer and 8-9 digit values
in the retired Other Patient IDs (0010,1000) are **known wrong places**: reported, and accepted for matching.
The last two are only *guesses* (a 9-digit MRN passes the 11-check about one time in eleven), so they count
only when the instance declares no BSN anywhere. Accession Number is not searched, for the same reason. Values
are stripped and an 8-digit number gets its leading zero back. At most :data:`_MAX_ITEMS` sequence items or
values are looked at.

**Grading.** :func:`classify` grades a study (all its instances) into one :class:`Bucket`, in this order:

1. ``inconsistent``: more than one BSN value among the valid values (any place) and the preferred-place
   values (valid or not);
2. ``bad-check``: a preferred-place value fails the 11-check;
3. ``correct``: every instance has the valid BSN in a preferred place;
4. ``wrong-tag``: every instance has the valid BSN, some only in a wrong place;
5. ``missing``: otherwise, including a BSN that only some instances carry. Such a study is not matched
   automatically: it goes to the unknown-patient queue, where a person decides.

Only ``correct`` and ``wrong-tag`` hand back the BSN for matching. The ``detail`` text never holds a whole BSN
(only the last three digits), so it can go into reports and receipts.

**Writing.** :func:`rewrite_outbound` and :func:`rewrite_inbound` set Patient ID, its issuer and Type of
Patient ID to one id, and put ids in Other Patient IDs Sequence (0010,1002). An id written there replaces
every item of the same assigning authority (for the BSN: every item whose issuer is agreed or named), so a
run is idempotent and there is exactly one BSN item. The previous Patient ID is kept as an item with its own
issuer, unless the written ids already cover it (same assigning authority, or the same number without an
issuer); other items and the retired Other Patient IDs are left alone. Outbound with a BSN, the BSN goes both
in Patient ID and in a sequence item: the Nictiz guideline's exact placement could not be verified, and
receivers look in one place or the other. No BSN is ever invented; a BSN that fails the 11-check raises
``ValueError``. A sequence of more than :data:`_MAX_ITEMS` items is refused as well.

References
----------
DICOM PS3.3 §C.7.1.1 (Patient Module: Patient ID (0010,0020), Issuer of Patient ID (0010,0021), Type of
Patient ID (0010,0022), Other Patient IDs Sequence (0010,1002)) and §10.18 Table 10-18 (Issuer of Patient ID
Macro: Universal Entity ID (0040,0032), Universal Entity ID Type (0040,0033), Identifier Type Code
(0040,0035)); PS3.6 (Other Patient IDs (0010,1000) retired); HL7 v2.5 Table 0203 (``NNNLD``); Nictiz
"Richtlijn BSN in DICOM" (2010); DUTCH-CONTEXT §3 (BSN-correctness metric, 11-check, gateway rewrite).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from copy import deepcopy
from dataclasses import dataclass
from enum import Enum, StrEnum
from itertools import islice
from typing import Any, Final

from pydicom.dataset import Dataset

from xds.model.hl7 import is_oid
from xds.registry.patients import bsn_valid

BSN_OID: Final = "2.16.840.1.113883.2.4.6.3"
"""Assigning authority of the BSN (the same value as :data:`xds.vocabulary.BSN_OID`)."""
BSN_ISSUER: Final = "NLMINBIZA"
"""Issuer of Patient ID (HL7 CX.4.1 namespace) for the BSN: the Dutch Ministry of the Interior."""
BSN_TYPE_CODE: Final = "NNNLD"
"""Identifier Type Code of the BSN: HL7 Table 0203 "National unique individual identifier", Netherlands."""

_MAX_ITEMS: Final = 64
_MAX_COMMENT_HITS: Final = 4
_ISO: Final = "ISO"
_TEXT: Final = "TEXT"
_SEQ: Final = "OtherPatientIDsSequence"
_BSN_NAMES: Final = frozenset({BSN_ISSUER, "BSN"})
_NINE: Final = re.compile(r"[0-9]{9}")
_EIGHT_OR_NINE: Final = re.compile(r"[0-9]{8,9}")
_ANY: Final = re.compile(r".+", re.DOTALL)
_COMMENT: Final = re.compile(r"\bBSN\b[^0-9]{0,10}([0-9]{8,9})\b", re.IGNORECASE)
_LO_MAX: Final = 64


class Bucket(StrEnum):
    """The BSN-correctness grade of one study (DUTCH-CONTEXT §3, "BSN-correctness metric")."""

    CORRECT = "correct"
    WRONG_TAG = "wrong-tag"
    BAD_CHECK = "bad-check"
    INCONSISTENT = "inconsistent"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class Found:
    """One place a BSN candidate was seen in one instance.

    ``value`` is stripped, an 8-digit number padded to 9; ``place`` names the element (sequence items by
    0-based index); ``preferred`` is true for the agreed place; ``valid`` is the 11-check.
    """

    value: str
    place: str
    preferred: bool
    valid: bool


@dataclass(frozen=True, slots=True)
class StudyIdentity:
    """The BSN grade of one study: the BSN when usable for matching (else ``""``), its bucket, and why."""

    bsn: str
    bucket: Bucket
    detail: str


@dataclass(frozen=True, slots=True)
class LocalId:
    """The hospital's own patient number and its assigning authority OID (and, optionally, its namespace).

    ``namespace`` goes into Issuer of Patient ID (0010,0021); when empty that element is removed.
    """

    id: str
    oid: str
    namespace: str = ""

    def __post_init__(self) -> None:
        if not self.id.strip() or len(self.id) > _LO_MAX or "\\" in self.id:
            raise ValueError(f"a local patient id is 1-64 characters without '\\': {self.id!r}")
        if not is_oid(self.oid) or self.oid == BSN_OID:
            raise ValueError(f"a local assigning authority is an OID other than the BSN's: {self.oid!r}")
        if len(self.namespace) > _LO_MAX or "\\" in self.namespace:
            raise ValueError(f"a namespace is at most 64 characters without '\\': {self.namespace!r}")


# --- finding ----------------------------------------------------------------------------------------------


class _Issuer(Enum):
    AGREED = "agreed"
    NAMED = "named"
    OTHER = "other"
    NONE = "none"


class _Source(Enum):
    PATIENT_ID = "PatientID"
    SEQUENCE = "OtherPatientIDsSequence[{i}]"
    OTHER_IDS = "OtherPatientIDs"
    COMMENTS = "PatientComments"


@dataclass(frozen=True, slots=True)
class _Rule:
    place: str  # appended to the source name; {issuer} is filled in
    preferred: bool
    accept: re.Pattern[str]  # the whole value must match
    guess: bool  # counts only when the instance declares no BSN


_RULES: Final[dict[tuple[_Source, _Issuer], _Rule]] = {  # "accept" sees the value before padding
    (_Source.PATIENT_ID, _Issuer.AGREED): _Rule("+qualifiers", True, _ANY, False),
    (_Source.SEQUENCE, _Issuer.AGREED): _Rule("", True, _ANY, False),
    (_Source.PATIENT_ID, _Issuer.NAMED): _Rule(" (issuer {issuer}, no agreed qualifiers)", False, _ANY, False),
    (_Source.SEQUENCE, _Issuer.NAMED): _Rule(" (issuer {issuer}, no agreed qualifiers)", False, _ANY, False),
    (_Source.COMMENTS, _Issuer.NONE): _Rule("", False, _EIGHT_OR_NINE, False),
    (_Source.PATIENT_ID, _Issuer.NONE): _Rule(" (no issuer)", False, _NINE, True),
    (_Source.OTHER_IDS, _Issuer.NONE): _Rule("", False, _EIGHT_OR_NINE, True),
}
"""(where, issuer grade) -> how a value there counts; pairs not listed are not BSN candidates."""


GUESSED_PLACES: Final = ("PatientID (no issuer)", "OtherPatientIDs", "PatientComments")
"""Places where a BSN is only guessed (no issuer declares it): reported, never used to match a patient."""


def is_declared(found: Found) -> bool:
    """True when ``found`` sits where an issuer declares it a BSN (agreed or named), not in a guessed place."""
    return not found.place.startswith(GUESSED_PLACES)


def bsn_candidates(ds: Dataset) -> list[Found]:
    """Every place in ``ds`` that holds a BSN candidate, preferred places first.

    Guesses (a bare 9-digit Patient ID, Other Patient IDs digits) are listed only when nothing in ``ds``
    declares a BSN.
    """
    declared: list[Found] = []
    guessed: list[Found] = []
    for source, index, issuer, label, value in _sightings(ds):
        rule = _RULES.get((source, issuer))
        if rule is None or not value or rule.accept.fullmatch(value) is None:
            continue
        place = source.value.format(i=index) + rule.place.format(issuer=label)
        found = Found(value=_normalise(value), place=place, preferred=rule.preferred, valid=bsn_valid(value))
        (guessed if rule.guess else declared).append(found)
    result = declared or guessed
    return sorted(result, key=lambda f: not f.preferred)


def _sightings(ds: Dataset) -> Iterator[tuple[_Source, int, _Issuer, str, str]]:
    """(source, item index, issuer grade, issuer text, stripped value) for each id-like value in ``ds``."""
    yield _Source.PATIENT_ID, 0, *_issuer(ds), _text(ds, "PatientID")
    for index, item in enumerate(_items(ds, _SEQ)):
        yield _Source.SEQUENCE, index, *_issuer(item), _text(item, "PatientID")
    for value in _values(ds.get("OtherPatientIDs")):
        yield _Source.OTHER_IDS, 0, _Issuer.NONE, "", value.strip()
    hits = _COMMENT.finditer(_text(ds, "PatientComments"))
    for match in islice(hits, _MAX_COMMENT_HITS):
        yield _Source.COMMENTS, 0, _Issuer.NONE, "", match.group(1)


def _issuer(holder: Dataset) -> tuple[_Issuer, str]:
    """Grade the Issuer of Patient ID macro of ``holder`` (a dataset or a sequence item), with its text."""
    namespace = _text(holder, "IssuerOfPatientID")
    qualifiers = next(_items(holder, "IssuerOfPatientIDQualifiersSequence"), Dataset())
    uid = _text(qualifiers, "UniversalEntityID")
    uid_type = _text(qualifiers, "UniversalEntityIDType").upper()
    type_code = _text(qualifiers, "IdentifierTypeCode").upper()
    if uid == BSN_OID and uid_type == _ISO:
        return _Issuer.AGREED, uid
    if namespace.upper() == BSN_ISSUER and type_code == BSN_TYPE_CODE and uid in ("", BSN_OID):
        return _Issuer.AGREED, namespace
    if uid == BSN_OID or namespace.upper() in _BSN_NAMES:
        return _Issuer.NAMED, namespace or uid
    return (_Issuer.OTHER, namespace or uid) if namespace or uid else (_Issuer.NONE, "")


def _items(holder: Dataset, keyword: str) -> Iterator[Dataset]:
    """The first :data:`_MAX_ITEMS` items of a sequence (none when absent or empty)."""
    value = holder.get(keyword)
    return islice(value if value is not None else (), _MAX_ITEMS)


def _values(value: Any) -> list[str]:
    """The first :data:`_MAX_ITEMS` values of a (possibly multi-valued) string element."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in islice(value, _MAX_ITEMS)]


def _text(holder: Dataset, keyword: str) -> str:
    value = holder.get(keyword)
    return "" if value is None else str(value).strip()


def _normalise(value: str) -> str:
    """Strip blanks; give an 8-digit number its leading zero back."""
    value = value.strip()
    return "0" + value if len(value) == 8 and value.isascii() and value.isdigit() else value


# --- grading ----------------------------------------------------------------------------------------------


def classify(instances: Iterable[Dataset]) -> StudyIdentity:
    """Grade the BSN of one study from all its instances (see the module docstring for the order)."""
    per_instance = [bsn_candidates(ds) for ds in instances]
    total = len(per_instance)
    found = [f for fs in per_instance for f in fs]
    claimed = sorted({f.value for f in found if f.valid or f.preferred})
    if len(claimed) > 1:
        seen = ", ".join(f"{_mask(f.value)} in {f.place}" for f in _unique(found) if f.valid or f.preferred)
        return StudyIdentity("", Bucket.INCONSISTENT, f"instances disagree on the BSN: {seen}")
    bad = [f for f in found if f.preferred and not f.valid]
    if bad:
        return StudyIdentity("", Bucket.BAD_CHECK, f"{_mask(bad[0].value)} in {bad[0].place} fails the 11-check")
    if not claimed:
        return StudyIdentity("", Bucket.MISSING, f"no BSN in {_count(total)}")
    bsn = claimed[0]
    preferred = sum(any(f.valid and f.preferred for f in fs) for fs in per_instance)
    carrying = sum(any(f.valid for f in fs) for fs in per_instance)
    places = ", ".join(sorted({f.place for f in found if f.valid}))
    if preferred == total:
        return StudyIdentity(bsn, Bucket.CORRECT, f"BSN {_mask(bsn)} in the agreed place in {_count(total)}")
    if carrying == total:
        detail = f"BSN {_mask(bsn)} in a wrong place in {total - preferred} of {_count(total)} ({places})"
        return StudyIdentity(bsn, Bucket.WRONG_TAG, detail)
    detail = f"BSN {_mask(bsn)} in only {carrying} of {_count(total)} ({places}); missing in {total - carrying}"
    return StudyIdentity("", Bucket.MISSING, detail)


def _unique(found: list[Found]) -> list[Found]:
    """``found`` without repeats, in first-seen order."""
    return list(dict.fromkeys(found))


def _count(total: int) -> str:
    return "1 instance" if total == 1 else f"{total} instances"


def _mask(value: str) -> str:
    """All but the last three characters hidden: ``******990``."""
    return "*" * max(len(value) - 3, 0) + value[-3:]


# --- writing ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Id:
    """A patient id with the Issuer of Patient ID macro the node writes for it."""

    value: str
    oid: str
    namespace: str = ""
    type_code: str = ""

    def write(self, holder: Dataset) -> None:
        """Set Patient ID, its issuer (qualifiers with ``ISO``) and Type of Patient ID ``TEXT`` on ``holder``."""
        qualifiers = Dataset()
        qualifiers.UniversalEntityID = self.oid
        qualifiers.UniversalEntityIDType = _ISO
        if self.type_code:
            qualifiers.IdentifierTypeCode = self.type_code
        holder.PatientID = self.value
        if self.namespace:
            holder.IssuerOfPatientID = self.namespace
        elif "IssuerOfPatientID" in holder:
            del holder.IssuerOfPatientID
        holder.IssuerOfPatientIDQualifiersSequence = [qualifiers]
        holder.TypeOfPatientID = _TEXT

    def item(self) -> Dataset:
        item = Dataset()
        self.write(item)
        return item


def rewrite_outbound(ds: Dataset, *, bsn: str | None, local: LocalId) -> bool:
    """Prepare ``ds`` to leave the node: the verified BSN as Patient ID, or else the hospital's own id.

    With ``bsn`` (``""`` counts as none): Patient ID = BSN with issuer ``NLMINBIZA`` and qualifiers
    ``2.16.840.1.113883.2.4.6.3``/``ISO``/``NNNLD``; the sequence gets one BSN item and one item for the
    hospital id. Without: Patient ID = ``local.id`` with the hospital OID, and every BSN the instance carried
    (a BSN-issued item or Patient ID) is removed: an unverified BSN never leaves the node; other ids stay.
    Return ``True`` when a BSN was written; raise ``ValueError`` when ``bsn`` fails the 11-check.
    """
    mine = _Id(local.id, local.oid, local.namespace)
    if not bsn:  # no verified BSN: none may leave, not even one the instance carried already
        _rewrite(ds, primary=mine, items=(), drop=BSN_OID)
        return False
    theirs = _bsn_id(bsn)
    _rewrite(ds, primary=theirs, items=(theirs, mine))
    return True


def rewrite_bsn_only(ds: Dataset, *, bsn: str) -> None:
    """Prepare ``ds`` to leave the node for a patient whose only id here is the BSN (a BSN-based affinity
    domain): Patient ID = BSN with the agreed issuer and qualifiers, one BSN item, no hospital item."""
    theirs = _bsn_id(bsn)
    _rewrite(ds, primary=theirs, items=(theirs,))


def rewrite_inbound(ds: Dataset, *, local: LocalId, bsn: str) -> None:
    """File ``ds`` under the local patient it was matched to by ``bsn``.

    Patient ID = ``local.id`` with the hospital OID; exactly one BSN item in the sequence; the sender's own
    Patient ID kept as an item with its issuer, unless it was the BSN. Raise ``ValueError`` when ``bsn`` fails
    the 11-check.
    """
    theirs = _bsn_id(bsn)
    _rewrite(ds, primary=_Id(local.id, local.oid, local.namespace), items=(theirs,))


def _bsn_id(bsn: str) -> _Id:
    value = _normalise(bsn)
    if len(value) != 9 or not bsn_valid(value):
        raise ValueError(f"not a valid BSN (9 digits passing the 11-check): {_mask(value)}")
    return _Id(value, BSN_OID, BSN_ISSUER, BSN_TYPE_CODE)


def _rewrite(ds: Dataset, *, primary: _Id, items: tuple[_Id, ...], drop: str = "") -> None:
    """Write ``primary`` as Patient ID and ``items`` into the sequence, keeping the previous Patient ID; ids of
    the authority ``drop`` are removed."""
    existing = list(ds.get(_SEQ) or ())
    if len(existing) > _MAX_ITEMS:
        raise ValueError(f"{len(existing)} Other Patient IDs Sequence items exceed the limit of {_MAX_ITEMS}")
    replaced = {x.oid for x in items} | ({drop} if drop else set())
    previous = _copy_id(ds)
    if previous is not None and drop and _authority(previous) == drop:
        previous = None
    kept = [item for item in existing if _authority(item) not in replaced]
    values = {primary.value, *(x.value for x in items)}
    if previous is not None and not _redundant(previous, kept, replaced | {primary.oid}, values):
        kept.append(previous)
    primary.write(ds)
    ds.OtherPatientIDsSequence = kept + [x.item() for x in items]


def _copy_id(ds: Dataset) -> Dataset | None:
    """The Patient ID of ``ds`` with its issuer, as a sequence item (``None`` when there is no Patient ID)."""
    if not _text(ds, "PatientID"):
        return None
    item = Dataset()
    for keyword in ("PatientID", "IssuerOfPatientID", "IssuerOfPatientIDQualifiersSequence", "TypeOfPatientID"):
        if keyword in ds:
            setattr(item, keyword, deepcopy(ds[keyword].value))
    return item


def _authority(holder: Dataset) -> str:
    """Who assigned the id: the BSN OID for a BSN-ish issuer, else the OID, else ``ns:<namespace>``, else ``""``."""
    grade, _ = _issuer(holder)
    if grade in (_Issuer.AGREED, _Issuer.NAMED):
        return BSN_OID
    qualifiers = next(_items(holder, "IssuerOfPatientIDQualifiersSequence"), Dataset())
    uid = _text(qualifiers, "UniversalEntityID")
    namespace = _text(holder, "IssuerOfPatientID")
    return uid or (f"ns:{namespace}" if namespace else "")


def _redundant(previous: Dataset, kept: list[Dataset], authorities: set[str], values: set[str]) -> bool:
    """True when ``previous`` is already in ``kept``, or the ids written stand for it.

    They stand for it when they come from the same assigning authority, or, for an id without any issuer,
    when one of them is the same number.
    """
    value, authority = _text(previous, "PatientID"), _authority(previous)
    if any(_text(item, "PatientID") == value and _authority(item) == authority for item in kept):
        return True
    return authority in authorities if authority else _normalise(value) in values


__all__ = [
    "BSN_ISSUER",
    "BSN_OID",
    "BSN_TYPE_CODE",
    "GUESSED_PLACES",
    "Bucket",
    "Found",
    "LocalId",
    "StudyIdentity",
    "bsn_candidates",
    "classify",
    "is_declared",
    "rewrite_bsn_only",
    "rewrite_inbound",
    "rewrite_outbound",
]
