"""Tests for xds.dicom.identity: finding, grading and rewriting the BSN in DICOM instances."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from xds import vocabulary
from xds.dicom.identity import (
    BSN_ISSUER,
    BSN_OID,
    BSN_TYPE_CODE,
    Bucket,
    Found,
    LocalId,
    bsn_candidates,
    classify,
    rewrite_inbound,
    rewrite_outbound,
)

BSN = "999999990"
OTHER_BSN = "123456782"
EIGHT_DIGITS = "18641969"  # 018641969 passes the 11-check: an 8-digit BSN lost its leading zero
BAD = "999999999"
HOSPITAL_OID = "2.16.528.1.1007.3.3.1234567"
LOCAL = LocalId("MRN-0042", HOSPITAL_OID)


# --- builders ---------------------------------------------------------------------------------------------


def _qualifiers(uid: str = BSN_OID, uid_type: str = "ISO", type_code: str = "") -> list[Dataset]:
    q = Dataset()
    if uid:
        q.UniversalEntityID = uid
    if uid_type:
        q.UniversalEntityIDType = uid_type
    if type_code:
        q.IdentifierTypeCode = type_code
    return [q]


def _id_item(value: str, *, issuer: str = "", qualifiers: list[Dataset] | None = None) -> Dataset:
    item = Dataset()
    item.PatientID = value
    if issuer:
        item.IssuerOfPatientID = issuer
    if qualifiers is not None:
        item.IssuerOfPatientIDQualifiersSequence = qualifiers
    return item


def _instance(patient_id: str = "MRN-0042", **elements: object) -> Dataset:
    ds = Dataset()
    ds.PatientName = "Jansen^Piet"
    ds.PatientID = patient_id
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


def preferred_pid(bsn: str = BSN) -> Dataset:
    """The agreed form: Patient ID = BSN with the BSN OID qualifiers."""
    return _instance(bsn, IssuerOfPatientID=BSN_ISSUER, IssuerOfPatientIDQualifiersSequence=_qualifiers())


def preferred_item(bsn: str = BSN) -> Dataset:
    """The hospital MRN as Patient ID, the BSN as a qualified Other Patient IDs Sequence item."""
    return _instance(OtherPatientIDsSequence=[_id_item(bsn, issuer=BSN_ISSUER, qualifiers=_qualifiers())])


def preferred_item_by_type_code(bsn: str = BSN) -> Dataset:
    """A sequence item with issuer NLMINBIZA and type code NNNLD but no Universal Entity ID."""
    q = _qualifiers(uid="", uid_type="", type_code=BSN_TYPE_CODE)
    return _instance(OtherPatientIDsSequence=[_id_item(bsn, issuer=BSN_ISSUER, qualifiers=q)])


def wrong_pid_issuer(bsn: str = BSN) -> Dataset:
    return _instance(bsn, IssuerOfPatientID=BSN_ISSUER)


def wrong_other_ids(bsn: str = BSN) -> Dataset:
    return _instance(OtherPatientIDs=["X-1", bsn])


def wrong_bare_pid(bsn: str = BSN) -> Dataset:
    return _instance(bsn)


def wrong_item_named_bsn(bsn: str = BSN) -> Dataset:
    return _instance(OtherPatientIDsSequence=[_id_item(bsn, issuer="BSN")])


def wrong_item_named_nlminbiza(bsn: str = BSN) -> Dataset:
    return _instance(OtherPatientIDsSequence=[_id_item(bsn, issuer=BSN_ISSUER)])


def wrong_comments(bsn: str = BSN) -> Dataset:
    return _instance(PatientComments=f"Verwezen door huisarts. BSN: {bsn}.")


def no_bsn(bsn: str = BSN) -> Dataset:
    return _instance(IssuerOfPatientIDQualifiersSequence=_qualifiers(uid=HOSPITAL_OID))


def _roundtrip(ds: Dataset) -> Dataset:
    buffer = BytesIO()
    if "TransferSyntaxUID" in ds.get("file_meta", Dataset()):
        pydicom.dcmwrite(buffer, ds)
    else:
        pydicom.dcmwrite(buffer, ds, implicit_vr=False, little_endian=True)
    return pydicom.dcmread(BytesIO(buffer.getvalue()), force=True)


def _testfile(name: str) -> Dataset:
    path = get_testdata_file(name)
    assert path is not None
    return pydicom.dcmread(path)


def _items(ds: Dataset) -> list[tuple[str, str]]:
    """(Patient ID, Universal Entity ID or Issuer of Patient ID) for each Other Patient IDs Sequence item."""
    result = []
    for item in ds.get("OtherPatientIDsSequence", []):
        qualifiers = item.get("IssuerOfPatientIDQualifiersSequence")
        uid = qualifiers[0].get("UniversalEntityID", "") if qualifiers else ""
        result.append((item.PatientID, uid or item.get("IssuerOfPatientID", "")))
    return result


# --- constants and finding --------------------------------------------------------------------------------


def test_constants_agree_with_the_vocabulary() -> None:
    assert BSN_OID == vocabulary.BSN_OID
    assert (BSN_ISSUER, BSN_TYPE_CODE) == ("NLMINBIZA", "NNNLD")


@pytest.mark.parametrize(
    ("build", "place", "preferred"),
    [
        (preferred_pid, "PatientID+qualifiers", True),
        (preferred_item, "OtherPatientIDsSequence[0]", True),
        (preferred_item_by_type_code, "OtherPatientIDsSequence[0]", True),
        (wrong_pid_issuer, "PatientID (issuer NLMINBIZA, no agreed qualifiers)", False),
        (wrong_other_ids, "OtherPatientIDs", False),
        (wrong_bare_pid, "PatientID (no issuer)", False),
        (wrong_item_named_bsn, "OtherPatientIDsSequence[0] (issuer BSN, no agreed qualifiers)", False),
        (wrong_item_named_nlminbiza, "OtherPatientIDsSequence[0] (issuer NLMINBIZA, no agreed qualifiers)", False),
        (wrong_comments, "PatientComments", False),
    ],
)
def test_candidates_by_place(build: Callable[[str], Dataset], place: str, preferred: bool) -> None:
    assert bsn_candidates(build(BSN)) == [Found(value=BSN, place=place, preferred=preferred, valid=True)]


@pytest.mark.parametrize("build", [preferred_pid, wrong_pid_issuer, wrong_item_named_bsn])
def test_candidates_report_failing_check(build: Callable[[str], Dataset]) -> None:
    [found] = bsn_candidates(build(BAD))
    assert (found.value, found.valid) == (BAD, False)


def test_eight_digits_padded() -> None:
    assert bsn_candidates(wrong_other_ids(EIGHT_DIGITS)) == [
        Found(value="0" + EIGHT_DIGITS, place="OtherPatientIDs", preferred=False, valid=True)
    ]
    assert bsn_candidates(preferred_pid(EIGHT_DIGITS))[0].value == "0" + EIGHT_DIGITS
    assert bsn_candidates(wrong_bare_pid(EIGHT_DIGITS)) == []  # a bare Patient ID must have 9 digits


def test_bare_numbers_are_guesses_only_without_a_declared_bsn() -> None:
    ds = preferred_item(BSN)
    ds.PatientID = OTHER_BSN  # a 9-digit MRN that happens to pass the 11-check
    ds.OtherPatientIDs = "900186021"
    assert [f.place for f in bsn_candidates(ds)] == ["OtherPatientIDsSequence[0]"]


def test_other_issuer_and_non_digits_are_not_candidates() -> None:
    ds = _instance(BSN, IssuerOfPatientIDQualifiersSequence=_qualifiers(uid=HOSPITAL_OID))
    ds.OtherPatientIDs = ["ABC", "1234567"]
    ds.OtherPatientIDsSequence = [_id_item(OTHER_BSN, qualifiers=_qualifiers(uid=HOSPITAL_OID))]
    ds.PatientComments = "geen BSN bekend"
    assert bsn_candidates(ds) == []


def test_preferred_places_come_first() -> None:
    ds = wrong_pid_issuer(BSN)
    ds.OtherPatientIDsSequence = [_id_item(BSN, qualifiers=_qualifiers())]
    assert [f.preferred for f in bsn_candidates(ds)] == [True, False]


def test_sequence_is_bounded() -> None:
    items = [_id_item(f"X{i}") for i in range(100)] + [_id_item(BSN, qualifiers=_qualifiers())]
    assert bsn_candidates(_instance(OtherPatientIDsSequence=items)) == []
    items = [_id_item(f"X{i}") for i in range(63)] + [_id_item(BSN, qualifiers=_qualifiers())]
    assert [f.place for f in bsn_candidates(_instance(OtherPatientIDsSequence=items))] == [
        "OtherPatientIDsSequence[63]"
    ]


# --- grading ----------------------------------------------------------------------------------------------

CASES = [
    # (instances, bucket, bsn)
    ([preferred_pid(), preferred_pid()], Bucket.CORRECT, BSN),
    ([preferred_pid(), preferred_item()], Bucket.CORRECT, BSN),
    ([preferred_item_by_type_code(), preferred_item()], Bucket.CORRECT, BSN),
    ([preferred_pid("100202020")], Bucket.CORRECT, "100202020"),
    ([wrong_pid_issuer(), wrong_pid_issuer()], Bucket.WRONG_TAG, BSN),
    ([wrong_other_ids()], Bucket.WRONG_TAG, BSN),
    ([wrong_bare_pid()], Bucket.WRONG_TAG, BSN),
    ([wrong_item_named_bsn()], Bucket.WRONG_TAG, BSN),
    ([wrong_item_named_nlminbiza()], Bucket.WRONG_TAG, BSN),
    ([wrong_comments()], Bucket.WRONG_TAG, BSN),
    ([preferred_pid(), wrong_pid_issuer()], Bucket.WRONG_TAG, BSN),
    ([preferred_pid(BAD)], Bucket.BAD_CHECK, ""),
    ([preferred_item(BAD), no_bsn()], Bucket.BAD_CHECK, ""),
    ([preferred_pid(BAD), wrong_other_ids(BAD)], Bucket.BAD_CHECK, ""),
    ([preferred_pid(BSN), preferred_pid(OTHER_BSN)], Bucket.INCONSISTENT, ""),
    ([preferred_pid(BSN), wrong_pid_issuer("900186021")], Bucket.INCONSISTENT, ""),
    ([preferred_pid(BSN), preferred_pid(BAD)], Bucket.INCONSISTENT, ""),
    ([wrong_bare_pid(BSN), wrong_comments(OTHER_BSN)], Bucket.INCONSISTENT, ""),
    ([no_bsn(), no_bsn()], Bucket.MISSING, ""),
    ([wrong_pid_issuer(BAD)], Bucket.MISSING, ""),
    ([wrong_bare_pid(BAD)], Bucket.MISSING, ""),
    ([preferred_pid(), no_bsn()], Bucket.MISSING, ""),
    ([], Bucket.MISSING, ""),
]


@pytest.mark.parametrize(("instances", "bucket", "bsn"), CASES)
def test_classify(instances: list[Dataset], bucket: Bucket, bsn: str) -> None:
    result = classify(instances)
    assert (result.bucket, result.bsn) == (bucket, bsn)
    assert result.detail


def test_inconsistent_within_one_instance() -> None:
    ds = preferred_pid(BSN)
    ds.OtherPatientIDsSequence = [_id_item(OTHER_BSN, issuer="BSN")]
    assert classify([ds]).bucket is Bucket.INCONSISTENT


def test_classify_accepts_a_generator_and_survives_a_roundtrip() -> None:
    result = classify(_roundtrip(ds) for ds in (preferred_pid(), preferred_item()))
    assert (result.bucket, result.bsn) == (Bucket.CORRECT, BSN)


def test_detail_never_holds_a_whole_bsn() -> None:
    for instances, _, _ in CASES:
        detail = classify(instances).detail
        assert all(value not in detail for value in (BSN, OTHER_BSN, BAD, "900186021", "100202020"))
    assert "******990" in classify([wrong_bare_pid()]).detail
    assert "PatientID (no issuer)" in classify([wrong_bare_pid()]).detail


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_real_files_have_no_bsn(name: str) -> None:
    assert classify([_testfile(name)]).bucket is Bucket.MISSING


# --- outbound ---------------------------------------------------------------------------------------------


def _assert_bsn_patient_id(ds: Dataset, bsn: str = BSN) -> None:
    assert ds.PatientID == bsn
    assert ds.IssuerOfPatientID == "NLMINBIZA"
    assert ds.TypeOfPatientID == "TEXT"
    [q] = ds.IssuerOfPatientIDQualifiersSequence
    assert (q.UniversalEntityID, q.UniversalEntityIDType, q.IdentifierTypeCode) == (BSN_OID, "ISO", "NNNLD")


def test_outbound_with_bsn() -> None:
    ds = no_bsn()
    ds.OtherPatientIDsSequence = [_id_item("R-7", issuer="RADIOLOGY")]
    assert rewrite_outbound(ds, bsn=BSN, local=LOCAL) is True
    _assert_bsn_patient_id(ds)
    assert _items(ds) == [("R-7", "RADIOLOGY"), (BSN, BSN_OID), ("MRN-0042", HOSPITAL_OID)]
    mrn = ds.OtherPatientIDsSequence[2]
    [q] = mrn.IssuerOfPatientIDQualifiersSequence
    assert (mrn.TypeOfPatientID, q.UniversalEntityIDType, "IssuerOfPatientID" in mrn) == ("TEXT", "ISO", False)
    assert "IdentifierTypeCode" not in q
    _assert_bsn_patient_id(ds.OtherPatientIDsSequence[1])
    assert classify([ds]).bucket is Bucket.CORRECT


def test_outbound_is_idempotent() -> None:
    ds = no_bsn()
    rewrite_outbound(ds, bsn=BSN, local=LOCAL)
    once = _roundtrip(ds)
    assert rewrite_outbound(ds, bsn=BSN, local=LOCAL) is True
    assert ds == once
    assert len(ds.OtherPatientIDsSequence) == 2


def test_outbound_replaces_stale_items() -> None:
    ds = wrong_pid_issuer(OTHER_BSN)
    ds.OtherPatientIDsSequence = [
        _id_item("OLD-1", qualifiers=_qualifiers(uid=HOSPITAL_OID)),
        _id_item("900186021", qualifiers=_qualifiers()),
        _id_item("900186021", issuer="BSN"),
    ]
    rewrite_outbound(ds, bsn=BSN, local=LOCAL)
    assert _items(ds) == [(BSN, BSN_OID), ("MRN-0042", HOSPITAL_OID)]
    assert classify([ds]).bucket is Bucket.CORRECT


def test_outbound_keeps_an_unrelated_previous_patient_id() -> None:
    ds = _instance("P-55", IssuerOfPatientID="OTHERPACS")
    rewrite_outbound(ds, bsn=BSN, local=LOCAL)
    assert _items(ds) == [("P-55", "OTHERPACS"), (BSN, BSN_OID), ("MRN-0042", HOSPITAL_OID)]


def test_outbound_pads_an_eight_digit_bsn() -> None:
    ds = no_bsn()
    assert rewrite_outbound(ds, bsn=f" {EIGHT_DIGITS} ", local=LOCAL) is True
    _assert_bsn_patient_id(ds, "0" + EIGHT_DIGITS)


def test_outbound_without_bsn() -> None:
    ds = _instance("1234", OtherPatientIDsSequence=[_id_item(BSN, issuer="BSN")])
    assert rewrite_outbound(ds, bsn=None, local=LOCAL) is False
    assert (ds.PatientID, ds.TypeOfPatientID, "IssuerOfPatientID" in ds) == ("MRN-0042", "TEXT", False)
    [q] = ds.IssuerOfPatientIDQualifiersSequence
    assert (q.UniversalEntityID, q.UniversalEntityIDType) == (HOSPITAL_OID, "ISO")
    assert _items(ds) == [("1234", "")]  # the unverified BSN item removed, no BSN added, other ids kept
    assert bsn_candidates(ds) == []


@pytest.mark.parametrize("bsn", [None, ""])
def test_outbound_without_bsn_invents_nothing(bsn: str | None) -> None:
    ds = no_bsn()
    assert rewrite_outbound(ds, bsn=bsn, local=LOCAL) is False
    assert bsn_candidates(ds) == []
    assert _items(ds) == []
    assert rewrite_outbound(ds, bsn=bsn, local=LOCAL) is False
    assert _items(ds) == []


def test_outbound_without_bsn_writes_the_namespace() -> None:
    ds = wrong_pid_issuer()
    rewrite_outbound(ds, bsn=None, local=LocalId("MRN-0042", HOSPITAL_OID, "STJANSDAL"))
    assert (ds.PatientID, ds.IssuerOfPatientID) == ("MRN-0042", "STJANSDAL")
    assert _items(ds) == []  # the previous Patient ID was an (unverified) BSN: it does not leave
    assert bsn_candidates(ds) == []


@pytest.mark.parametrize("bsn", [BAD, "12345678X", "1234567", "0000000000", "000000000"])
def test_outbound_refuses_an_invalid_bsn(bsn: str) -> None:
    ds = no_bsn()
    with pytest.raises(ValueError, match="not a valid BSN") as caught:
        rewrite_outbound(ds, bsn=bsn, local=LOCAL)
    assert bsn not in str(caught.value) or len(bsn) <= 3
    assert ds.PatientID == "MRN-0042"  # untouched


def test_outbound_refuses_an_oversized_sequence() -> None:
    ds = _instance(OtherPatientIDsSequence=[_id_item(f"X{i}") for i in range(65)])
    with pytest.raises(ValueError, match="exceed"):
        rewrite_outbound(ds, bsn=BSN, local=LOCAL)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_real_files_outbound_roundtrip(name: str) -> None:
    ds = _testfile(name)
    previous, existing = ds.PatientID, _items(ds)
    assert rewrite_outbound(ds, bsn="900186021", local=LOCAL) is True
    back = _roundtrip(ds)
    _assert_bsn_patient_id(back, "900186021")
    assert _items(back) == [*existing, (previous, ""), ("900186021", BSN_OID), ("MRN-0042", HOSPITAL_OID)]
    result = classify([back, _roundtrip(back)])
    assert (result.bucket, result.bsn) == (Bucket.CORRECT, "900186021")


# --- inbound ----------------------------------------------------------------------------------------------


def test_inbound_rewrite() -> None:
    ds = _instance("EXT-9", IssuerOfPatientIDQualifiersSequence=_qualifiers(uid="1.2.3.99"))
    ds.OtherPatientIDsSequence = [_id_item(BSN, qualifiers=_qualifiers()), _id_item(BSN, issuer="BSN")]
    rewrite_inbound(ds, local=LOCAL, bsn=BSN)
    assert ds.PatientID == "MRN-0042"
    [q] = ds.IssuerOfPatientIDQualifiersSequence
    assert (q.UniversalEntityID, q.UniversalEntityIDType) == (HOSPITAL_OID, "ISO")
    assert _items(ds) == [("EXT-9", "1.2.3.99"), (BSN, BSN_OID)]
    _assert_bsn_patient_id(ds.OtherPatientIDsSequence[1])


def test_inbound_does_not_keep_the_bsn_as_sender_id() -> None:
    for ds in (preferred_pid(), wrong_pid_issuer(), wrong_bare_pid()):
        rewrite_inbound(ds, local=LOCAL, bsn=BSN)
        assert _items(ds) == [(BSN, BSN_OID)]


def test_inbound_is_idempotent_and_survives_a_roundtrip() -> None:
    ds = _testfile("CT_small.dcm")
    rewrite_inbound(ds, local=LOCAL, bsn=OTHER_BSN)
    once = _roundtrip(ds)
    rewrite_inbound(ds, local=LOCAL, bsn=OTHER_BSN)
    assert ds == once
    assert [uid for _, uid in _items(once)].count(BSN_OID) == 1
    assert ("1CT1", "") in _items(once)
    assert classify([once]).bucket is Bucket.CORRECT  # the BSN item is in an agreed place


def test_inbound_refuses_an_invalid_bsn() -> None:
    with pytest.raises(ValueError, match="not a valid BSN"):
        rewrite_inbound(no_bsn(), local=LOCAL, bsn=BAD)


# --- LocalId ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("id_", "oid", "namespace"),
    [
        ("", HOSPITAL_OID, ""),
        ("A" * 65, HOSPITAL_OID, ""),
        ("A\\B", HOSPITAL_OID, ""),
        ("A", "not-an-oid", ""),
        ("A", BSN_OID, ""),
        ("A", HOSPITAL_OID, "N\\S"),
    ],
)
def test_local_id_is_checked(id_: str, oid: str, namespace: str) -> None:
    with pytest.raises(ValueError):
        LocalId(id_, oid, namespace)
