"""Intended recipients and mailboxes: routing XDR push deliveries (and XDM e-mail) to the right mailbox.

Theory of operation
-------------------
A SubmissionSet's ``intendedRecipient`` slot holds one value per recipient of the form ``XON|XCN|XTN``
(organisation, person, telecom; any of them may be empty). :meth:`IntendedRecipient.parse` splits it and parses
each part with :mod:`xds.model.hl7`. The node's ``[[mailboxes]]`` tables (:func:`mailboxes_from_config`) say
which recipients land in which mailbox. :func:`match_score` scores one mailbox against one recipient; the best
applicable rule counts:

* **3**, a person or telecom: one of the mailbox's ``persons`` equals XCN.1, or one of its ``telecoms`` equals
  the e-mail address XTN.4 (XTN.1 when XTN.4 is empty), without regard to case;
* **2**, a department: one of its ``departments`` equals the organisation name XON.1 (case and runs of
  whitespace ignored), and the mailbox has no ``organisations`` or one of them is the recipient's organisation
  id (XON.10, the Dutch URA, or else XON.3);
* **1**, an organisation: the mailbox has ``organisations`` but no ``departments``, and one of them is the
  recipient's organisation id.

:func:`route` sends each recipient to its best-scoring mailbox (the first in configuration order on a tie);
a recipient no mailbox matches, or a submission without recipients, goes to the ``default`` mailbox, and when
there is none that is a :class:`NoMailbox` error. A mailbox with no rules at all matches nothing: it can only
receive as the default. XDM packages arriving by e-mail are routed by the address they were sent to
(:func:`mailbox_for_address`).

One ``[[mailboxes]]`` table::

    name = "radiology"                      # required: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}, unique (any case)
    organisations = ["00010990"]            # XON.10 (URA) or XON.3 ids
    departments = ["Radiologie St Jansdal"] # XON.1 names
    persons = ["123456"]                    # XCN.1 ids (UZI, AGB, ...)
    telecoms = ["radiologie@stjansdal.nl"]  # XTN.4 (or XTN.1)
    default = false                         # at most one mailbox is the default
    notify = ["secretariaat@stjansdal.nl"]  # who gets notification digests
    auto_import = false
    quiet_period = 120.0                    # seconds, > 0 and <= 86400
    xdm_addresses = ["xdm-radiologie@stjansdal.nl"]  # each in at most one mailbox

References
----------
ITI TF-3 §4.2.3.3.7 (SubmissionSet.intendedRecipient: ``XON|XCN|XTN``); DUTCH-CONTEXT §4 (URA in XON.10, UZI
and AGB in XCN.1); HL7 v2.5 §2A.87 (XON), §2A.88 (XCN), §2A.89 (XTN).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any, Final, TypeVar

from xds.model.hl7 import XCN, XON, XTN

_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_EMAIL: Final = re.compile(r"[^@\s<>,]+@[^@\s<>,]+")
_MAX_QUIET: Final = 86400.0
_LIST_KEYS: Final = ("organisations", "departments", "persons", "telecoms", "notify", "xdm_addresses")
_BOOL_KEYS: Final = ("default", "auto_import")
_KEYS: Final = frozenset({"name", "quiet_period", *_LIST_KEYS, *_BOOL_KEYS})
_EMAIL_KEYS: Final = ("notify", "xdm_addresses")
_PARTS: Final = 3  # XON|XCN|XTN
_T = TypeVar("_T", XON, XCN, XTN)


class NoMailbox(ValueError):
    """No mailbox matches a recipient (or the submission names none) and no mailbox is the default."""


@dataclass(frozen=True, slots=True)
class IntendedRecipient:
    """One ``intendedRecipient`` value: organisation, person and telecom, at least one of them present.

    References
    ----------
    ITI TF-3 §4.2.3.3.7: "XON|XCN|XTN", e.g. ``|12345^Smith^John`` for a person only.
    """

    organisation: XON | None
    person: XCN | None
    telecom: XTN | None

    def __post_init__(self) -> None:
        if self.organisation is None and self.person is None and self.telecom is None:
            raise ValueError("an intended recipient needs an organisation, a person or a telecom address")

    @classmethod
    def parse(cls, value: str) -> IntendedRecipient:
        """Parse ``XON|XCN|XTN``; raise ``ValueError`` for more than three parts, no content, or a bad part."""
        parts = value.split("|")
        if len(parts) > _PARTS:
            raise ValueError(f"intendedRecipient has more than 3 '|'-separated parts (XON|XCN|XTN): {value!r}")
        parts += [""] * (_PARTS - len(parts))
        org, person, telecom = _part(XON, parts[0], value), _part(XCN, parts[1], value), _part(XTN, parts[2], value)
        if org is None and person is None and telecom is None:
            raise ValueError(f"intendedRecipient is empty (XON, XCN and XTN all empty): {value!r}")
        return cls(org, person, telecom)

    def __str__(self) -> str:
        """The ``XON|XCN|XTN`` form, trailing empty parts dropped as HL7 does."""
        parts = [str(p) if p is not None else "" for p in (self.organisation, self.person, self.telecom)]
        while parts and not parts[-1]:
            parts.pop()
        return "|".join(parts)

    def describe(self) -> str:
        """One human readable line, e.g. ``Radiologie St Jansdal (00010990), Dr Piet Jansen (123456), a@b.nl``."""
        items = [
            _describe_org(self.organisation) if self.organisation is not None else "",
            _describe_person(self.person) if self.person is not None else "",
            _telecom_key(self.telecom) if self.telecom is not None else "",
        ]
        return ", ".join(item for item in items if item) or str(self)


def _part(kind: type[_T], text: str, value: str) -> _T | None:
    """``text`` parsed as ``kind``; ``None`` when it is blank or has no content (``^^^``)."""
    if not text.strip():
        return None
    try:
        parsed = kind.parse(text)
    except ValueError as exc:
        raise ValueError(
            f"intendedRecipient {kind.__name__} part {text!r} does not parse ({exc}) in {value!r}"
        ) from exc
    return parsed if str(parsed) else None


def _org_id(org: XON) -> str:
    """The organisation id: XON.10 (the URA in the Dutch context), else XON.3."""
    return org.organization_identifier or org.id_number


def _telecom_key(telecom: XTN) -> str:
    """The address that identifies a telecom: XTN.4 (e-mail), else XTN.1."""
    return telecom.email_address or telecom.telephone_number


def _with_id(name: str, ident: str) -> str:
    if name and ident:
        return f"{name} ({ident})"
    return name or ident


def _describe_org(org: XON) -> str:
    return _with_id(org.organization_name, _org_id(org))


def _describe_person(person: XCN) -> str:
    words = (person.prefix, person.given_name, person.second_names, person.family_name, person.suffix, person.degree)
    return _with_id(" ".join(w for w in words if w), person.id_number)


@dataclass(frozen=True, slots=True, kw_only=True)
class Mailbox:
    """A mailbox that receives pushed submissions, and the rules that say which recipients it serves.

    The constructor checks the name, the e-mail addresses of ``notify`` and ``xdm_addresses``, that no rule
    value is empty, and the range of ``quiet_period``; :func:`mailboxes_from_config` checks the set.
    """

    name: str
    organisations: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    persons: tuple[str, ...] = ()
    telecoms: tuple[str, ...] = ()
    default: bool = False
    notify: tuple[str, ...] = ()
    auto_import: bool = False
    quiet_period: float = 120.0
    xdm_addresses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name is required and may not be empty")
        if not _NAME.fullmatch(self.name):
            raise ValueError(
                f"name must be 1-64 of A-Z a-z 0-9 _ . - starting with a letter or digit, got {self.name!r}"
            )
        for key in _LIST_KEYS:
            for item in getattr(self, key):
                if not item.strip():
                    raise ValueError(f"{key} may not contain an empty value")
        for key in _EMAIL_KEYS:
            for item in getattr(self, key):
                if not _EMAIL.fullmatch(item):
                    raise ValueError(f"{key}: not an e-mail address (local@domain): {item!r}")
        if isinstance(self.quiet_period, bool) or not 0 < self.quiet_period <= _MAX_QUIET:
            raise ValueError(f"quiet_period must be seconds > 0 and <= {_MAX_QUIET:g}, got {self.quiet_period!r}")


DEFAULT_MAILBOX: Final[Mailbox] = Mailbox(name="inbox", default=True)
"""The mailbox a node without ``[[mailboxes]]`` tables delivers everything to."""


def mailbox_from_mapping(table: Mapping[str, Any]) -> Mailbox:
    """A :class:`Mailbox` from one ``[[mailboxes]]`` table.

    Raises ``ValueError`` naming the key: an unknown key, a missing or empty ``name``, a wrong type (a list key
    given a single string is refused, not taken as a one-element list), or a value the constructor refuses.
    """
    if not isinstance(table, Mapping):
        raise ValueError(f"a mailbox must be a table of keys, got {type(table).__name__}")
    unknown = sorted(str(k) for k in table if k not in _KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) in mailbox: {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})")
    name = table.get("name")
    if not isinstance(name, str):
        raise ValueError(f"name is required and must be a string, got {name!r}")
    kwargs: dict[str, Any] = {key: _string_list(table[key], key) for key in _LIST_KEYS if key in table}
    for key in _BOOL_KEYS:
        if key in table:
            if not isinstance(table[key], bool):
                raise ValueError(f"{key} must be true or false, got {table[key]!r}")
            kwargs[key] = table[key]
    if "quiet_period" in table:
        value = table["quiet_period"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"quiet_period must be a number of seconds, got {value!r}")
        kwargs["quiet_period"] = float(value)
    return Mailbox(name=name, **kwargs)


def _string_list(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ValueError(f'{key} must be a list of strings (e.g. {key} = ["..."]), got {value!r}')
    return tuple(value)


def mailboxes_from_config(tables: Sequence[Mapping[str, Any]]) -> tuple[Mailbox, ...]:
    """The mailboxes of the ``[[mailboxes]]`` tables, in order; ``(DEFAULT_MAILBOX,)`` when there are none.

    Each table goes through :func:`mailbox_from_mapping`; then names must be unique without regard to case,
    at most one mailbox may be the default, and an XDM address may belong to one mailbox only. Every
    ``ValueError`` starts with ``[[mailboxes]] #n: `` (n counts from 1).
    """
    if isinstance(tables, str | bytes) or not isinstance(tables, Sequence):
        raise ValueError(f"mailboxes must be an array of tables ([[mailboxes]]), got {type(tables).__name__}")
    if not tables:
        return (DEFAULT_MAILBOX,)
    result: list[Mailbox] = []
    names: dict[str, int] = {}
    addresses: dict[str, int] = {}
    default = 0
    for n, table in enumerate(tables, start=1):
        try:
            mailbox = mailbox_from_mapping(table)
        except ValueError as exc:
            raise ValueError(f"[[mailboxes]] #{n}: {exc}") from exc
        where = f"[[mailboxes]] #{n}: "
        if (first := names.setdefault(mailbox.name.casefold(), n)) != n:
            raise ValueError(f"{where}name {mailbox.name!r} is already used by [[mailboxes]] #{first}")
        if mailbox.default:
            if default:
                raise ValueError(f"{where}default = true, but [[mailboxes]] #{default} is already the default")
            default = n
        for address in mailbox.xdm_addresses:
            if (owner := addresses.setdefault(address.casefold(), n)) != n:
                raise ValueError(f"{where}xdm address {address!r} is already used by [[mailboxes]] #{owner}")
        result.append(mailbox)
    return tuple(result)


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def match_score(mailbox: Mailbox, recipient: IntendedRecipient) -> int:
    """How well ``mailbox`` serves ``recipient``: 3 person/telecom, 2 department, 1 organisation, 0 no match.

    The rules are those of the module docstring; the best one that applies counts.
    """
    if _person_matches(mailbox, recipient):
        return 3
    org = recipient.organisation
    if org is None:
        return 0
    org_id = _org_id(org)
    org_matches = bool(org_id) and org_id in mailbox.organisations
    name = _normalise(org.organization_name)
    department = bool(name) and name in (_normalise(d) for d in mailbox.departments)
    if department and (org_matches or not mailbox.organisations):
        return 2
    if org_matches and not mailbox.departments:
        return 1
    return 0


def _person_matches(mailbox: Mailbox, recipient: IntendedRecipient) -> bool:
    """Rule 3: XCN.1 is one of ``persons`` or the telecom address one of ``telecoms`` (any case)."""
    person, telecom = recipient.person, recipient.telecom
    if person is not None and person.id_number and person.id_number in mailbox.persons:
        return True
    key = _telecom_key(telecom).casefold() if telecom is not None else ""
    return bool(key) and key in (t.casefold() for t in mailbox.telecoms)


def _best(recipient: IntendedRecipient, mailboxes: Sequence[Mailbox]) -> int | None:
    """The index of the best-scoring mailbox (the first on a tie), or ``None`` when none matches."""
    best, best_score = None, 0
    for i, mailbox in enumerate(mailboxes):
        score = match_score(mailbox, recipient)
        if score > best_score:
            best, best_score = i, score
    return best


def route(recipients: Sequence[IntendedRecipient], mailboxes: Sequence[Mailbox]) -> tuple[Mailbox, ...]:
    """The distinct mailboxes, in configuration order, that a submission for ``recipients`` goes to.

    Each recipient goes to its best-scoring mailbox (the first on a tie), else to the default mailbox; no
    recipients at all means the default mailbox. Raises :class:`NoMailbox` naming the recipients that need
    the default when no mailbox is the default.
    """
    default = next((i for i, m in enumerate(mailboxes) if m.default), None)
    chosen: set[int] = set()
    homeless: list[IntendedRecipient] = []
    for recipient in recipients:
        best = _best(recipient, mailboxes)
        if best is None:
            homeless.append(recipient)
        else:
            chosen.add(best)
    if homeless or not recipients:
        if default is None:
            raise NoMailbox(_no_mailbox_message(homeless))
        chosen.add(default)
    return tuple(mailboxes[i] for i in sorted(chosen))


def _no_mailbox_message(homeless: Sequence[IntendedRecipient]) -> str:
    if not homeless:
        return "the submission names no intended recipient and no mailbox is the default"
    names = "; ".join(r.describe() for r in homeless)
    return f"no mailbox matches intended recipient(s) {names}, and no mailbox is the default"


def mailbox_named(name: str, mailboxes: Sequence[Mailbox]) -> Mailbox:
    """The mailbox called ``name`` (without regard to case); ``KeyError`` listing the names if there is none."""
    for mailbox in mailboxes:
        if mailbox.name.casefold() == name.casefold():
            return mailbox
    known = ", ".join(m.name for m in mailboxes) or "(none)"
    raise KeyError(f"no mailbox named {name!r}; the mailboxes are: {known}")


def mailbox_for_address(address: str, mailboxes: Sequence[Mailbox]) -> Mailbox | None:
    """The mailbox whose ``xdm_addresses`` hold ``address`` (``a@b`` or ``Name <a@b>``, any case), or ``None``."""
    bare = parseaddr(address)[1].casefold()
    if not bare:
        return None
    for mailbox in mailboxes:
        if bare in (a.casefold() for a in mailbox.xdm_addresses):
            return mailbox
    return None


__all__ = [
    "DEFAULT_MAILBOX",
    "IntendedRecipient",
    "Mailbox",
    "NoMailbox",
    "mailbox_for_address",
    "mailbox_from_mapping",
    "mailbox_named",
    "mailboxes_from_config",
    "match_score",
    "route",
]
