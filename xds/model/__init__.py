"""The model layer: frozen dataclasses for XDS metadata, HL7 v2 value types and transaction messages."""

from xds.model.hl7 import CX, DTM, HD, XCN, XON, XTN
from xds.model.metadata import (
    Association,
    Author,
    Code,
    DocumentEntry,
    Folder,
    ObjectRef,
    RegistryObject,
    Submission,
    SubmissionSet,
)
from xds.model.rim import Classification, ExternalIdentifier, LocalizedString, Slot

__all__ = [
    "CX",
    "DTM",
    "HD",
    "XCN",
    "XON",
    "XTN",
    "Association",
    "Author",
    "Classification",
    "Code",
    "DocumentEntry",
    "ExternalIdentifier",
    "Folder",
    "LocalizedString",
    "ObjectRef",
    "RegistryObject",
    "Slot",
    "Submission",
    "SubmissionSet",
]
