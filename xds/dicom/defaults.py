"""The codes of a study manifest's DocumentEntry that DICOM does not give (``[imaging]``); no pydicom here, so the
configuration reads them without loading it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from xds.model.metadata import Code
from xds.model.rim import text

SNOMED: Final = "2.16.840.1.113883.6.96"


@dataclass(frozen=True, slots=True, kw_only=True)
class ImagingDefaults:
    """The DocumentEntry codes of a manifest that DICOM does not give (``[imaging]``)."""

    class_code: Code = field(
        default_factory=lambda: Code(code="9491000146107", scheme=SNOMED, display_name=text("Imaging documentation"))
    )
    type_code: Code = field(
        default_factory=lambda: Code(
            code="18748-4", scheme="2.16.840.1.113883.6.1", display_name=text("Diagnostic imaging study")
        )
    )
    healthcare_facility_type_code: Code = field(
        default_factory=lambda: Code(code="V4", scheme="2.16.840.1.113883.2.4.15.1060", display_name=text("Ziekenhuis"))
    )
    practice_setting_code: Code = field(
        default_factory=lambda: Code(code="0362", scheme="2.16.840.1.113883.2.4.6.7", display_name=text("Radiologie"))
    )
    confidentiality_code: Code = field(
        default_factory=lambda: Code(code="N", scheme="2.16.840.1.113883.5.25", display_name=text("normal"))
    )
    content_type_code: Code = field(
        default_factory=lambda: Code(
            code="18748-4", scheme="2.16.840.1.113883.6.1", display_name=text("Diagnostic imaging study")
        )
    )
    language_code: str = "nl-NL"


__all__ = ["SNOMED", "ImagingDefaults"]
