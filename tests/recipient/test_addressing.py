"""Tests for :mod:`xds.recipient.addressing`: intendedRecipient values, mailbox configuration and routing."""

from __future__ import annotations

from typing import Any

import pytest

from xds.model.hl7 import HD, XCN, XON, XTN
from xds.recipient.addressing import (
    DEFAULT_MAILBOX,
    IntendedRecipient,
    Mailbox,
    NoMailbox,
    mailbox_for_address,
    mailbox_from_mapping,
    mailbox_named,
    mailboxes_from_config,
    match_score,
    route,
)

NIST = "Some Hospital^^^^^^^^^1.2.3.4.5.6.7.8.9.1789.45|^Wel^Marcus^^^Dr^MD|^^Internet^mwel@example.org"
DUTCH = (
    "Radiologie St Jansdal^^^^^&2.16.528.1.1007.3.3&ISO^^^^00010990"
    "|123456^Jansen^Piet^^^^^^&2.16.528.1.1007.3.1&ISO"
    "|^^Internet^radiologie@stjansdal.nl"
)
PERSON_ONLY = "|12345^Smith^John"
ORG_ONLY = "Huisartsenpraktijk De Linde^^^^^^^^^01234567"
TELECOM_ONLY = "||^^Internet^praktijk@delinde.nl"


def recipient(value: str) -> IntendedRecipient:
    """Shorthand for :meth:`IntendedRecipient.parse`."""
    return IntendedRecipient.parse(value)


# --- IntendedRecipient -------------------------------------------------------------------------------------------


def test_parse_nist_example() -> None:
    r = recipient(NIST)
    assert r.organisation == XON(organization_name="Some Hospital", organization_identifier="1.2.3.4.5.6.7.8.9.1789.45")
    assert r.person == XCN(family_name="Wel", given_name="Marcus", prefix="Dr", degree="MD")
    assert r.telecom == XTN(equipment_type="Internet", email_address="mwel@example.org")


def test_parse_dutch_example() -> None:
    r = recipient(DUTCH)
    assert r.organisation is not None and r.person is not None and r.telecom is not None
    assert r.organisation.organization_identifier == "00010990"
    assert r.organisation.assigning_authority == HD(universal_id="2.16.528.1.1007.3.3", universal_id_type="ISO")
    assert r.person.id_number == "123456"
    assert r.person.assigning_authority.universal_id == "2.16.528.1.1007.3.1"
    assert r.telecom.email_address == "radiologie@stjansdal.nl"


@pytest.mark.parametrize(
    ("value", "present"),
    [
        (PERSON_ONLY, (False, True, False)),
        (ORG_ONLY, (True, False, False)),
        (ORG_ONLY + "||", (True, False, False)),
        (TELECOM_ONLY, (False, False, True)),
        ("|^^^^|^^Internet^a@b.nl", (False, False, True)),
    ],
)
def test_parse_partial_forms(value: str, present: tuple[bool, bool, bool]) -> None:
    r = recipient(value)
    assert (r.organisation is not None, r.person is not None, r.telecom is not None) == present


def test_parse_person_only_fields() -> None:
    assert recipient(PERSON_ONLY).person == XCN(id_number="12345", family_name="Smith", given_name="John")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty"),
        ("||", "empty"),
        ("  |  | ", "empty"),
        ("^^^|^^|^^^", "empty"),
        ("a|b|c|d", "more than 3"),
        ("org|person|^^Internet^x@y|extra", "more than 3"),
        ("a^b^c^d^e^f^g^h^i^j^k", "XON part"),
        ("|1^2^3^4^5^6^7^8^9^10", "XCN part"),
        ("||1^2^3^4^5^6^7^8^9^10", "XTN part"),
        ("Org^^^^^a&b&c&d", "XON part"),
    ],
)
def test_parse_rejects(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        recipient(value)


def test_constructor_rejects_all_empty() -> None:
    with pytest.raises(ValueError, match="needs an organisation, a person or a telecom"):
        IntendedRecipient(None, None, None)


@pytest.mark.parametrize("value", [NIST, DUTCH, PERSON_ONLY, ORG_ONLY, TELECOM_ONLY, "|12345^Smith|^^Internet^a@b"])
def test_str_round_trip(value: str) -> None:
    assert str(recipient(value)) == value
    assert recipient(str(recipient(value))) == recipient(value)


def test_str_drops_trailing_empty_parts() -> None:
    assert str(recipient(ORG_ONLY + "||")) == ORG_ONLY
    assert str(IntendedRecipient(None, XCN(id_number="1"), None)) == "|1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (DUTCH, "Radiologie St Jansdal (00010990), Piet Jansen (123456), radiologie@stjansdal.nl"),
        (NIST, "Some Hospital (1.2.3.4.5.6.7.8.9.1789.45), Dr Marcus Wel MD, mwel@example.org"),
        ("|123456^Jansen^Piet^^^Dr", "Dr Piet Jansen (123456)"),
        (PERSON_ONLY, "John Smith (12345)"),
        ("|987", "987"),
        ("^^0001", "0001"),
        (ORG_ONLY, "Huisartsenpraktijk De Linde (01234567)"),
        ("||0612345678", "0612345678"),
    ],
)
def test_describe(value: str, expected: str) -> None:
    assert recipient(value).describe() == expected


# --- Mailbox configuration ---------------------------------------------------------------------------------------

FULL_TABLE: dict[str, Any] = {
    "name": "radiology",
    "organisations": ["00010990"],
    "departments": ["Radiologie St Jansdal"],
    "persons": ["123456"],
    "telecoms": ["radiologie@stjansdal.nl", "+31 321 123456"],
    "default": True,
    "notify": ["secretariaat@stjansdal.nl"],
    "auto_import": True,
    "quiet_period": 30,
    "xdm_addresses": ["xdm@stjansdal.nl"],
}


def test_mailbox_from_mapping_full() -> None:
    assert mailbox_from_mapping(FULL_TABLE) == Mailbox(
        name="radiology",
        organisations=("00010990",),
        departments=("Radiologie St Jansdal",),
        persons=("123456",),
        telecoms=("radiologie@stjansdal.nl", "+31 321 123456"),
        default=True,
        notify=("secretariaat@stjansdal.nl",),
        auto_import=True,
        quiet_period=30.0,
        xdm_addresses=("xdm@stjansdal.nl",),
    )


def test_mailbox_from_mapping_defaults() -> None:
    mailbox = mailbox_from_mapping({"name": "a.b_c-1"})
    assert mailbox == Mailbox(name="a.b_c-1")
    assert (mailbox.default, mailbox.auto_import, mailbox.quiet_period, mailbox.notify) == (False, False, 120.0, ())
    assert isinstance(mailbox_from_mapping({"name": "x", "quiet_period": 5}).quiet_period, float)


def test_default_mailbox() -> None:
    assert DEFAULT_MAILBOX.name == "inbox"
    assert DEFAULT_MAILBOX.default
    assert not (DEFAULT_MAILBOX.organisations or DEFAULT_MAILBOX.persons or DEFAULT_MAILBOX.xdm_addresses)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"name": "x", "colour": "red"}, "unknown key.*colour"),
        ({}, "name is required"),
        ({"name": 3}, "name is required and must be a string"),
        ({"name": ""}, "name is required"),
        ({"name": "-leading"}, "name must be"),
        ({"name": "has space"}, "name must be"),
        ({"name": "x" * 65}, "name must be"),
        ({"name": "x", "organisations": "00010990"}, "organisations must be a list of strings"),
        ({"name": "x", "departments": "Radiologie"}, "departments must be a list of strings"),
        ({"name": "x", "persons": [123456]}, "persons must be a list of strings"),
        ({"name": "x", "telecoms": "a@b"}, "telecoms must be a list of strings"),
        ({"name": "x", "notify": "a@b.nl"}, "notify must be a list of strings"),
        ({"name": "x", "xdm_addresses": "a@b.nl"}, "xdm_addresses must be a list of strings"),
        ({"name": "x", "persons": [""]}, "persons may not contain an empty value"),
        ({"name": "x", "notify": ["not-an-address"]}, "notify: not an e-mail address"),
        ({"name": "x", "notify": ["a b@c.nl"]}, "notify: not an e-mail address"),
        ({"name": "x", "notify": ["<a@b.nl>"]}, "notify: not an e-mail address"),
        ({"name": "x", "xdm_addresses": ["a@b.nl,c@d.nl"]}, "xdm_addresses: not an e-mail address"),
        ({"name": "x", "default": "yes"}, "default must be true or false"),
        ({"name": "x", "auto_import": 1}, "auto_import must be true or false"),
        ({"name": "x", "quiet_period": "60"}, "quiet_period must be a number"),
        ({"name": "x", "quiet_period": True}, "quiet_period must be a number"),
        ({"name": "x", "quiet_period": 0}, "quiet_period must be seconds > 0"),
        ({"name": "x", "quiet_period": -1.5}, "quiet_period must be seconds > 0"),
        ({"name": "x", "quiet_period": 86400.5}, "quiet_period must be seconds > 0 and <= 86400"),
    ],
)
def test_mailbox_from_mapping_rejects(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mailbox_from_mapping(table)


def test_mailbox_from_mapping_accepts_phone_telecom_and_max_quiet_period() -> None:
    mailbox = mailbox_from_mapping({"name": "x", "telecoms": ["+31 20 1234567"], "quiet_period": 86400})
    assert mailbox.telecoms == ("+31 20 1234567",)
    assert mailbox.quiet_period == 86400.0


def test_mailbox_from_mapping_rejects_non_table() -> None:
    with pytest.raises(ValueError, match="must be a table"):
        mailbox_from_mapping(["name", "x"])  # type: ignore[arg-type]


def test_mailboxes_from_config_empty_is_default() -> None:
    assert mailboxes_from_config([]) == (DEFAULT_MAILBOX,)


def test_mailboxes_from_config_keeps_order() -> None:
    boxes = mailboxes_from_config([{"name": "b"}, {"name": "a", "default": True}])
    assert [m.name for m in boxes] == ["b", "a"]


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ([{"name": "a"}, {"name": "b", "bogus": 1}], r"^\[\[mailboxes\]\] #2: unknown key"),
        ([{"name": "a"}, {"name": "A"}], r"^\[\[mailboxes\]\] #2: name 'A' is already used by \[\[mailboxes\]\] #1"),
        (
            [{"name": "a", "default": True}, {"name": "b"}, {"name": "c", "default": True}],
            r"^\[\[mailboxes\]\] #3: default = true, but \[\[mailboxes\]\] #1 is already the default",
        ),
        (
            [{"name": "a", "xdm_addresses": ["xdm@x.nl"]}, {"name": "b", "xdm_addresses": ["XDM@X.nl"]}],
            r"^\[\[mailboxes\]\] #2: xdm address 'XDM@X.nl' is already used by \[\[mailboxes\]\] #1",
        ),
    ],
)
def test_mailboxes_from_config_rejects(tables: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mailboxes_from_config(tables)


def test_mailboxes_from_config_rejects_a_single_table() -> None:
    with pytest.raises(ValueError, match="array of tables"):
        mailboxes_from_config({"name": "a"})  # type: ignore[arg-type]


# --- matching and routing ----------------------------------------------------------------------------------------

PERSON = Mailbox(name="jansen", persons=("123456",))
TELECOM = Mailbox(name="mail", telecoms=("Radiologie@StJansdal.nl",))
PHONE = Mailbox(name="phone", telecoms=("0612345678",))
DEPARTMENT = Mailbox(name="radiology", departments=("radiologie  st JANSDAL",))
DEPARTMENT_AT_ORG = Mailbox(name="radiology-ura", departments=("Radiologie St Jansdal",), organisations=("00010990",))
DEPARTMENT_ELSEWHERE = Mailbox(name="radiology-other", departments=("Radiologie St Jansdal",), organisations=("999",))
ORGANISATION = Mailbox(name="jansdal", organisations=("00010990",))
INBOX = Mailbox(name="inbox", default=True)


@pytest.mark.parametrize(
    ("mailbox", "value", "score"),
    [
        (PERSON, DUTCH, 3),
        (PERSON, "|123456", 3),
        (PERSON, "|654321^Jansen", 0),
        (TELECOM, DUTCH, 3),
        (TELECOM, "||^^Internet^RADIOLOGIE@stjansdal.nl", 3),
        (PHONE, "||0612345678", 3),
        (PHONE, "||0612345678^^^other@example.org", 0),
        (DEPARTMENT, DUTCH, 2),
        (DEPARTMENT, "Radiologie St Jansdal", 2),
        (DEPARTMENT, "Cardiologie St Jansdal^^^^^^^^^00010990", 0),
        (DEPARTMENT_AT_ORG, DUTCH, 2),
        (DEPARTMENT_AT_ORG, "Radiologie St Jansdal", 0),
        (DEPARTMENT_ELSEWHERE, DUTCH, 0),
        (ORGANISATION, DUTCH, 1),
        (ORGANISATION, "Any ward^^^^^^^^^00010990", 1),
        (ORGANISATION, "Old style^^00010990", 1),
        (ORGANISATION, "XON.10 wins^^00010990^^^^^^^1111", 0),
        (ORGANISATION, "Elsewhere^^^^^^^^^11111111", 0),
        (ORGANISATION, "|123456", 0),
        (INBOX, DUTCH, 0),
        (Mailbox(name="both", persons=("1",), organisations=("00010990",)), DUTCH, 1),
        (Mailbox(name="both", persons=("123456",), organisations=("00010990",)), DUTCH, 3),
    ],
)
def test_match_score(mailbox: Mailbox, value: str, score: int) -> None:
    assert match_score(mailbox, recipient(value)) == score


def test_route_person_beats_department_beats_organisation() -> None:
    boxes = (ORGANISATION, DEPARTMENT, PERSON, INBOX)
    assert route([recipient(DUTCH)], boxes) == (PERSON,)
    assert route([recipient("Radiologie St Jansdal^^^^^^^^^00010990|999")], boxes) == (DEPARTMENT,)
    assert route([recipient("Cardiologie^^^^^^^^^00010990")], boxes) == (ORGANISATION,)


def test_route_tie_goes_to_first_in_configuration_order() -> None:
    assert route([recipient(DUTCH)], (TELECOM, PERSON)) == (TELECOM,)
    assert route([recipient(DUTCH)], (PERSON, TELECOM)) == (PERSON,)


def test_route_unmatched_goes_to_default() -> None:
    assert route([recipient("Elsewhere^^^^^^^^^11111111")], (ORGANISATION, INBOX)) == (INBOX,)


def test_route_no_recipients_goes_to_default() -> None:
    assert route([], (PERSON, INBOX)) == (INBOX,)


def test_route_several_recipients_in_configuration_order() -> None:
    recipients = [recipient("Nobody^^^^^^^^^5"), recipient("Cardiologie^^^^^^^^^00010990"), recipient(DUTCH)]
    assert route(recipients, (INBOX, ORGANISATION, PERSON)) == (INBOX, ORGANISATION, PERSON)
    assert route(recipients, (PERSON, ORGANISATION, INBOX)) == (PERSON, ORGANISATION, INBOX)


def test_route_same_mailbox_once() -> None:
    recipients = [recipient("|123456"), recipient(DUTCH), recipient("|other"), recipient("|else")]
    assert route(recipients, (PERSON, INBOX)) == (PERSON, INBOX)


def test_route_no_default_when_all_match() -> None:
    assert route([recipient(DUTCH)], (PERSON, ORGANISATION)) == (PERSON,)


def test_route_no_mailbox_names_the_recipients() -> None:
    stranger = recipient("Elsewhere^^^^^^^^^11111111|77^Vries^Anna")
    with pytest.raises(NoMailbox) as info:
        route([recipient(DUTCH), stranger], (PERSON, ORGANISATION))
    message = str(info.value)
    assert "Elsewhere (11111111), Anna Vries (77)" in message
    assert "Jansen" not in message
    assert "no mailbox matches" in message
    assert "no mailbox is the default" in message
    assert isinstance(info.value, ValueError)


def test_route_no_recipients_and_no_default() -> None:
    with pytest.raises(NoMailbox, match="names no intended recipient and no mailbox is the default"):
        route([], (PERSON,))


def test_mailbox_without_rules_only_receives_as_default() -> None:
    bare = Mailbox(name="bare")
    assert match_score(bare, recipient(DUTCH)) == 0
    with pytest.raises(NoMailbox):
        route([recipient(DUTCH)], (bare,))


# --- look-ups ----------------------------------------------------------------------------------------------------


def test_mailbox_named_ignores_case() -> None:
    assert mailbox_named("RADIOLOGY", (PERSON, DEPARTMENT)) is DEPARTMENT


def test_mailbox_named_unknown_lists_names() -> None:
    with pytest.raises(KeyError, match=r"no mailbox named 'nope'.*jansen, radiology"):
        mailbox_named("nope", (PERSON, DEPARTMENT))


XDM_A = Mailbox(name="a", xdm_addresses=("xdm-a@example.org",))
XDM_B = Mailbox(name="b", xdm_addresses=("other@example.org", "XDM-B@example.org"))


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("xdm-a@example.org", XDM_A),
        ("XDM-A@Example.ORG", XDM_A),
        ("Afdeling B <xdm-b@example.org>", XDM_B),
        ("<other@example.org>", XDM_B),
        ("nobody@example.org", None),
        ("", None),
    ],
)
def test_mailbox_for_address(address: str, expected: Mailbox | None) -> None:
    assert mailbox_for_address(address, (XDM_A, XDM_B)) == expected
