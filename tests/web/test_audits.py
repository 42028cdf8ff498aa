"""How the audit record of a transaction reads the patient id off a stored-query parameter as it was sent."""

from __future__ import annotations

import pytest

from xds.registry.sq_params import first_value

P = "123^^^&1.2.3&ISO"


@pytest.mark.parametrize(
    ("sent", "patient"),
    [
        (f"'{P}'", P),
        (f" '{P}' ", P),
        (f"('{P}')", P),
        (f"( '{P}' , 'other^^^&1.2&ISO' )", P),
        ("'O''Brien^^^&1.2.3&ISO'", "O'Brien^^^&1.2.3&ISO"),
        ("('a,b^^^&1.2&ISO')", "a,b^^^&1.2&ISO"),
        (P, P),
        ("'unterminated", "unterminated"),
        ("", ""),
    ],
)
def test_first_value_undoes_list_and_quotes(sent: str, patient: str) -> None:
    assert first_value(sent) == patient
