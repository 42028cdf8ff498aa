"""HL7 v2.5 value types as XDS metadata uses them: CX, HD, XCN, XON, XTN and DTM.

Theory of operation: each type is a frozen dataclass whose fields are its components in order. ``parse``
splits on ``^`` (components) and ``&`` (sub-components of an HD); ``str()`` joins them again and drops
trailing empty components, so ``parse(str(x)) == x`` for every value the constructor accepts. HL7 escape
sequences are carried verbatim; a component may not contain ``^`` (nor an HD sub-component ``&``), which
the constructors check.

References
----------
ITI TF-3 §4.2.3.1.7 (Metadata attribute data types), Table 4.2.3.1.7-2; HL7 v2.5 §2A.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
_DTM = re.compile(r"[0-9]{4}([0-9]{2}){0,5}")


def is_oid(value: str) -> bool:
    """True when ``value`` is an ISO OID (ITI TF-3 §4.2.3.1.7 'OID': digits and dots, no leading zeros)."""
    return len(value) <= 64 and _OID.fullmatch(value) is not None


def _check_plain(cls: str, name: str, value: str, delimiters: str) -> None:
    for d in delimiters:
        if d in value:
            raise ValueError(f"{cls}.{name} may not contain {d!r}: {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class HD:
    """Hierarchic designator: ``namespace&universalId&universalIdType`` (HL7 v2.5 §2A.33)."""

    namespace_id: str = ""
    universal_id: str = ""
    universal_id_type: str = ""

    def __post_init__(self) -> None:
        for f in ("namespace_id", "universal_id", "universal_id_type"):
            _check_plain("HD", f, getattr(self, f), "^&")

    @classmethod
    def parse(cls, value: str) -> HD:
        parts = value.split("&")
        if len(parts) > 3:
            raise ValueError(f"HD has more than 3 sub-components: {value!r}")
        parts += [""] * (3 - len(parts))
        return cls(namespace_id=parts[0], universal_id=parts[1], universal_id_type=parts[2])

    def __str__(self) -> str:
        return _join([self.namespace_id, self.universal_id, self.universal_id_type], "&")

    def __bool__(self) -> bool:
        return bool(self.namespace_id or self.universal_id or self.universal_id_type)


def _join(parts: list[str], sep: str) -> str:
    while parts and parts[-1] == "":
        parts.pop()
    return sep.join(parts)


class _Composite:
    """Shared parse/render of component types whose fields are their components in order."""

    __slots__ = ()
    _NAME: ClassVar[str] = ""

    @classmethod
    def parse(cls, value: str) -> Self:
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        parts = value.split("^")
        if len(parts) > len(fields):
            raise ValueError(f"{cls._NAME} has more than {len(fields)} components: {value!r}")
        kwargs: dict[str, Any] = {}
        for f, part in zip(fields, parts, strict=False):
            kwargs[f.name] = HD.parse(part) if f.type in ("HD", HD) else part
        return cls(**kwargs)

    def __str__(self) -> str:
        return _join([str(getattr(self, f.name)) for f in dataclasses.fields(self)], "^")  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            val = getattr(self, f.name)
            if isinstance(val, str):
                _check_plain(self._NAME, f.name, val, "^")


@dataclass(frozen=True, slots=True, kw_only=True)
class CX(_Composite):
    """Extended composite id with check digit (HL7 v2.5 §2A.14), e.g. ``123^^^&1.2.3&ISO``.

    ITI TF-3 Table 4.2.3.1.7-2: "The value shall contain only CX.1 (Id Number) and CX.4 (Assigning
    Authority) ... CX.4.2 shall be an OID and CX.4.3 shall be ISO." :func:`is_xds_patient_id` checks that.
    """

    _NAME: ClassVar[str] = "CX"
    id_number: str = ""
    check_digit: str = ""
    check_digit_scheme: str = ""
    assigning_authority: HD = field(default_factory=HD)
    identifier_type_code: str = ""
    assigning_facility: str = ""

    def is_xds_patient_id(self) -> bool:
        """True when this is a well-formed XDS patient id (ITI TF-3 Table 4.2.3.1.7-2, CX)."""
        aa = self.assigning_authority
        return (
            bool(self.id_number)
            and not self.check_digit
            and not self.check_digit_scheme
            and not aa.namespace_id
            and is_oid(aa.universal_id)
            and aa.universal_id_type == "ISO"
            and not self.identifier_type_code
            and not self.assigning_facility
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class XCN(_Composite):
    """Extended composite id number and name for persons (HL7 v2.5 §2A.88), e.g. ``^Smitty^Gerald``."""

    _NAME: ClassVar[str] = "XCN"
    id_number: str = ""
    family_name: str = ""
    given_name: str = ""
    second_names: str = ""
    suffix: str = ""
    prefix: str = ""
    degree: str = ""
    source_table: str = ""
    assigning_authority: HD = field(default_factory=HD)


@dataclass(frozen=True, slots=True, kw_only=True)
class XON(_Composite):
    """Extended composite name and id for organisations (HL7 v2.5 §2A.87).

    Dutch example (URA): ``Ziekenhuis St Jansdal^^^^^&2.16.528.1.1007.3.3&ISO^^^^00010990``.
    """

    _NAME: ClassVar[str] = "XON"
    organization_name: str = ""
    type_code: str = ""
    id_number: str = ""
    check_digit: str = ""
    check_digit_scheme: str = ""
    assigning_authority: HD = field(default_factory=HD)
    identifier_type_code: str = ""
    assigning_facility: str = ""
    name_representation_code: str = ""
    organization_identifier: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class XTN(_Composite):
    """Extended telecommunication number (HL7 v2.5 §2A.89), e.g. ``^NET^Internet^radiology@example.org``."""

    _NAME: ClassVar[str] = "XTN"
    telephone_number: str = ""
    use_code: str = ""
    equipment_type: str = ""
    email_address: str = ""
    country_code: str = ""
    area_code: str = ""
    local_number: str = ""
    extension: str = ""
    any_text: str = ""


@dataclass(frozen=True, slots=True, order=True)
class DTM:
    """An XDS date-time: UTC, ``YYYY[MM[DD[hh[mm[ss]]]]]`` (ITI TF-3 §4.2.3.1.7 'DTM').

    Comparisons in stored queries use :attr:`padded`, the value extended to 14 digits with zeros.
    """

    value: str

    def __post_init__(self) -> None:
        if not _DTM.fullmatch(self.value):
            raise ValueError(f"not a DTM (YYYY[MM[DD[hh[mm[ss]]]]]): {self.value!r}")

    @property
    def padded(self) -> str:
        """The value padded to ``YYYYMMDDhhmmss`` for ordering and range matching."""
        return self.value + "00000000000000"[: 14 - len(self.value)]

    def __str__(self) -> str:
        return self.value


__all__ = ["CX", "DTM", "HD", "XCN", "XON", "XTN", "is_oid"]
