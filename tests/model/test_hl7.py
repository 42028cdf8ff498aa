"""xds.model.hl7: CX/HD/XCN/XON/XTN parse and render, XDS patient ids, OIDs and DTM (tables + properties)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xds import vocabulary as v
from xds.model.hl7 import CX, DTM, HD, XCN, XON, XTN, is_oid

AA = HD(universal_id="1.2.3", universal_id_type="ISO")
URA = HD(universal_id="2.16.528.1.1007.3.3", universal_id_type="ISO")

# --- parse and str: canonical forms (parse(text) == value and str(value) == text) -------------------------

CANONICAL = [
    # HD (HL7 v2.5 §2A.33)
    ("", HD()),
    ("NS", HD(namespace_id="NS")),
    ("&1.2.3&ISO", AA),
    ("NS&1.2.3&ISO", HD(namespace_id="NS", universal_id="1.2.3", universal_id_type="ISO")),
    ("&&ISO", HD(universal_id_type="ISO")),
    # CX (HL7 v2.5 §2A.14; ITI TF-3 Table 4.2.3.1.7-2 example form)
    ("", CX()),
    ("123", CX(id_number="123")),
    ("123^^^&1.2.3&ISO", CX(id_number="123", assigning_authority=AA)),
    (
        f"999999990^^^&{v.BSN_OID}&ISO",
        CX(id_number="999999990", assigning_authority=HD(universal_id=v.BSN_OID, universal_id_type="ISO")),
    ),
    (
        "123^4^M10^NS&1.2.3&ISO^PI^HOSP",
        CX(
            id_number="123",
            check_digit="4",
            check_digit_scheme="M10",
            assigning_authority=HD(namespace_id="NS", universal_id="1.2.3", universal_id_type="ISO"),
            identifier_type_code="PI",
            assigning_facility="HOSP",
        ),
    ),
    ("^^^^PI", CX(identifier_type_code="PI")),
    ("a|b~c\\T\\", CX(id_number="a|b~c\\T\\")),  # HL7 escapes and other delimiters are carried verbatim
    # XCN (HL7 v2.5 §2A.88)
    ("^Smitty^Gerald", XCN(family_name="Smitty", given_name="Gerald")),
    (
        "11375^Welby^Marcus^J^Jr^Dr^MD^^&1.2.840.113619.6.197&ISO",
        XCN(
            id_number="11375",
            family_name="Welby",
            given_name="Marcus",
            second_names="J",
            suffix="Jr",
            prefix="Dr",
            degree="MD",
            assigning_authority=HD(universal_id="1.2.840.113619.6.197", universal_id_type="ISO"),
        ),
    ),
    ("^^^^^^^UZI", XCN(source_table="UZI")),
    # XON (HL7 v2.5 §2A.87), the Dutch URA example of the docstring
    (
        "Ziekenhuis St Jansdal^^^^^&2.16.528.1.1007.3.3&ISO^^^^00010990",
        XON(
            organization_name="Ziekenhuis St Jansdal",
            assigning_authority=URA,
            organization_identifier="00010990",
        ),
    ),
    ("Some Hospital", XON(organization_name="Some Hospital")),
    ("Some Hospital^^123", XON(organization_name="Some Hospital", id_number="123")),
    # XTN (HL7 v2.5 §2A.89)
    (
        "^NET^Internet^radiology@example.org",
        XTN(use_code="NET", equipment_type="Internet", email_address="radiology@example.org"),
    ),
    (
        "^PRN^PH^^31^20^5551234^12^call after 5",
        XTN(
            use_code="PRN",
            equipment_type="PH",
            country_code="31",
            area_code="20",
            local_number="5551234",
            extension="12",
            any_text="call after 5",
        ),
    ),
]


def _case_id(case: tuple[str, object]) -> str:
    return f"{type(case[1]).__name__}:{case[0] or '<empty>'}"


@pytest.mark.parametrize(("text", "value"), CANONICAL, ids=[_case_id(c) for c in CANONICAL])
def test_parse(text: str, value: HD | CX | XCN | XON | XTN) -> None:
    assert type(value).parse(text) == value


@pytest.mark.parametrize(("text", "value"), CANONICAL, ids=[_case_id(c) for c in CANONICAL])
def test_str(text: str, value: HD | CX | XCN | XON | XTN) -> None:
    assert str(value) == text


# Non-canonical input: trailing empty components are dropped on output.
NORMALISED = [
    (CX, "123^^^&1.2.3&ISO^^", "123^^^&1.2.3&ISO"),
    (CX, "123^^^&1.2.3&^", "123^^^&1.2.3"),
    (CX, "^^^", ""),
    (XCN, "^Smitty^Gerald^^^^^^", "^Smitty^Gerald"),
    (XON, "Org^^^^^&&", "Org"),
    (XTN, "^NET^Internet^a@b^^^^^", "^NET^Internet^a@b"),
    (HD, "NS&&", "NS"),
]


@pytest.mark.parametrize(("kind", "text", "canonical"), NORMALISED)
def test_trailing_empty_components_are_dropped(kind: type[CX], text: str, canonical: str) -> None:
    assert str(kind.parse(text)) == canonical


TOO_MANY = [
    (HD, "a&b&c&d"),
    (CX, "1^2^3^4^5^6^7"),
    (XCN, "1^2^3^4^5^6^7^8^9^10"),
    (XON, "1^2^3^4^5^6^7^8^9^10^11"),
    (XTN, "1^2^3^4^5^6^7^8^9^10"),
    (CX, "123^^^NS&1.2.3&ISO&extra"),
]


@pytest.mark.parametrize(("kind", "text"), TOO_MANY)
def test_parse_refuses_too_many_components(kind: type[CX], text: str) -> None:
    with pytest.raises(ValueError, match="more than"):
        kind.parse(text)


FORBIDDEN = [
    (HD, {"namespace_id": "a&b"}),
    (HD, {"universal_id": "1.2^3"}),
    (HD, {"universal_id_type": "IS&O"}),
    (CX, {"id_number": "12^3"}),
    (CX, {"assigning_facility": "^"}),
    (XCN, {"family_name": "Smit^ty"}),
    (XON, {"organization_name": "A^B"}),
    (XTN, {"email_address": "a^b@example.org"}),
]


@pytest.mark.parametrize(("kind", "kwargs"), FORBIDDEN)
def test_constructor_refuses_delimiters(kind: type[CX], kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="may not contain"):
        kind(**kwargs)


@pytest.mark.parametrize("kind", [HD, CX, XCN, XON, XTN])
def test_values_are_frozen(kind: type[CX]) -> None:
    value = kind()
    name = dataclasses.fields(kind)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, name, "x")


@pytest.mark.parametrize(
    "kind",
    [
        HD,
        CX,
        XCN,
        XON,
        XTN,
    ],
)
def test_values_are_slotted(kind: type[CX]) -> None:
    # STYLE R8: models are frozen, *slotted* dataclasses; a base without __slots__ brings a __dict__ back.
    assert not hasattr(kind(), "__dict__")


def test_hd_truthiness() -> None:
    assert not HD()
    assert HD(universal_id_type="ISO")


# --- CX.is_xds_patient_id (ITI TF-3 Table 4.2.3.1.7-2) ----------------------------------------------------

PATIENT_IDS = [
    ("123^^^&1.2.3&ISO", True),
    (f"999999990^^^&{v.BSN_OID}&ISO", True),
    ("123", False),  # no assigning authority
    ("123^^^&&ISO", False),  # assigning authority without OID
    ("123^^^&1.2.3", False),  # universal id type missing
    ("123^^^NS&1.2.3&ISO", False),  # namespace id given
    ("123^^^&1.2.3&DNS", False),  # type not ISO
    ("123^^^&1.2.3&iso", False),  # type is case-sensitive
    ("123^5^^&1.2.3&ISO", False),  # check digit present
    ("123^^M10^&1.2.3&ISO", False),  # check digit scheme present
    ("^^^&1.2.3&ISO", False),  # id number missing
    ("123^^^&1.02.3&ISO", False),  # OID with a leading zero
    ("123^^^&example.org&ISO", False),  # not an OID
]


@pytest.mark.parametrize(("text", "expected"), PATIENT_IDS)
def test_is_xds_patient_id(text: str, expected: bool) -> None:
    assert CX.parse(text).is_xds_patient_id() is expected


# --- is_oid (ITI TF-3 §4.2.3.1.7 'OID': digits and dots, no leading zeros, at most 64 characters) --------

LONGEST_OID = "1." + "1" * 62
OIDS = [
    ("1.2.3", True),
    ("0.0", True),
    ("2.999", True),
    ("1.0.5", True),
    (v.BSN_OID, True),
    ("2.16.840.1.113883.2.4.6.3", True),
    (LONGEST_OID, True),
    (LONGEST_OID + "1", False),  # 65 characters
    ("1.02", False),  # leading zero
    ("01.2", False),
    ("1.2.", False),  # trailing dot
    (".1.2", False),
    ("1..2", False),
    ("1.2a", False),  # letters
    ("a.b", False),
    ("1", False),  # one arc
    ("3.1", False),  # first arc is 0, 1 or 2
    ("", False),
    (" 1.2", False),
    ("1.2 ", False),
    ("1,2", False),
    ("1.\u0662", False),  # ARABIC-INDIC DIGIT TWO
    ("1.2.3\n", False),
]


@pytest.mark.parametrize(("value", "expected"), OIDS)
def test_is_oid(value: str, expected: bool) -> None:
    assert is_oid(value) is expected


# --- DTM (ITI TF-3 §4.2.3.1.7 'DTM': YYYY[MM[DD[hh[mm[ss]]]]], UTC) -------------------------------------

DTM_PADDED = [
    ("2024", "20240000000000"),
    ("202401", "20240100000000"),
    ("20240131", "20240131000000"),
    ("2024013112", "20240131120000"),
    ("202401311230", "20240131123000"),
    ("20240131123059", "20240131123059"),
]


@pytest.mark.parametrize(("value", "padded"), DTM_PADDED)
def test_dtm_valid_and_padded(value: str, padded: str) -> None:
    dtm = DTM(value)
    assert str(dtm) == value
    assert dtm.padded == padded


INVALID_DTM = [
    "",
    "202",  # fewer than 4 digits
    "20241",  # odd length
    "2024013",
    "2024013112305",
    "202401311230591",  # 15 digits
    "2024013112305900",  # 16 digits
    "2024a1",  # letters
    "2024-01-31",
    "20240131T1230",
    " 2024",
    "2024 ",
    "2024\n",  # '$' would match before a final newline
    "\u0662\u0660\u0662\u0664",  # ARABIC-INDIC "2024": only ASCII digits
]


@pytest.mark.parametrize("value", INVALID_DTM)
def test_dtm_invalid(value: str) -> None:
    with pytest.raises(ValueError, match="not a DTM"):
        DTM(value)


def test_dtm_orders_by_value() -> None:
    assert DTM("2023") < DTM("20230101") < DTM("2024")
    assert sorted([DTM("20240131"), DTM("2024"), DTM("20231231235959")]) == [
        DTM("20231231235959"),
        DTM("2024"),
        DTM("20240131"),
    ]


# --- properties: parse(str(x)) == x ---------------------------------------------------------------------

# Components may hold anything but '^' (HD sub-components also not '&'); '|', '~', '\' and '&' are plain data.
_DELIMITERS = st.sampled_from("|~\\& ")
_PLAIN = st.characters(blacklist_categories=("Cs",), blacklist_characters="^")
_COMPONENT = st.text(st.one_of(_PLAIN, _DELIMITERS), max_size=8)
_SUBCOMPONENT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="^&"), max_size=8)

hds = st.builds(HD, namespace_id=_SUBCOMPONENT, universal_id=_SUBCOMPONENT, universal_id_type=_SUBCOMPONENT)


def composites(kind: type[CX] | type[XCN] | type[XON] | type[XTN]) -> st.SearchStrategy[object]:
    """Values of ``kind`` with arbitrary components (HD fields from :data:`hds`)."""
    fields = {f.name: hds if f.type in ("HD", HD) else _COMPONENT for f in dataclasses.fields(kind)}
    return st.builds(kind, **fields)


ANY_VALUE = st.one_of(hds, composites(CX), composites(XCN), composites(XON), composites(XTN))


@settings(max_examples=200, deadline=None)
@given(ANY_VALUE)
def test_parse_str_roundtrip(value: HD | CX | XCN | XON | XTN) -> None:
    assert type(value).parse(str(value)) == value


@settings(max_examples=100, deadline=None)
@given(ANY_VALUE)
def test_str_has_no_trailing_delimiter(value: HD | CX | XCN | XON | XTN) -> None:
    text = str(value)
    assert not text.endswith("^")
    if isinstance(value, HD):
        assert not text.endswith("&")


@settings(max_examples=100, deadline=None)
@given(st.text(st.sampled_from("0123456789"), min_size=4, max_size=14))
def test_dtm_accepts_exactly_even_digit_strings(digits: str) -> None:
    if len(digits) % 2:
        with pytest.raises(ValueError):
            DTM(digits)
    else:
        assert len(DTM(digits).padded) == 14
        assert DTM(digits).padded.startswith(digits)
