"""Stored-query parameters: the value syntax, and the parameter table of each of the 14 queries.

Theory of operation: :data:`QUERIES` maps each stored-query id to its name and parameter specs (one table,
R3). :func:`parse_query` checks the request against that table and turns slot texts into typed values:

- ``single``: one string (``'value'``); ``list``: OR-list of strings (``('a','b')``, spread over any number of
  ``rim:Value`` elements); ``codes``: OR-list of ``code^^scheme`` values, and for parameters that allow it
  (``and_``) a repeated slot adds an AND term; ``time``: a DTM number, padded to 14 digits.

References
----------
ITI TF-2 §3.18.4.1.2.3.5 (parameter value syntax), §3.18.4.1.2.3.6 (code parameters, AND/OR),
§3.18.4.1.2.3.7 (the stored queries and their parameters), §3.18.4.1.2.4 (errors).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Literal

from xds import vocabulary as v
from xds.errors import (
    MetadataError,
    StoredQueryMissingParam,
    StoredQueryParamNumber,
    UnknownStoredQuery,
)
from xds.model.hl7 import DTM
from xds.model.messages import StoredQueryRequest

Kind = Literal["single", "list", "codes", "time"]

_CODE = re.compile(r"^[^\^]+\^\^[^\^]+$")
_ITEM = re.compile(r"\s*(?:'((?:[^']|'')*)'|([^,'()\s]+))\s*")


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a stored query."""

    kind: Kind
    required: bool = False
    and_: bool = False


@dataclass(frozen=True, slots=True)
class QueryDef:
    """A stored query: its name, parameters and its 'exactly one of' groups."""

    name: str
    params: dict[str, Param]
    one_of: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """A validated stored query: parameter values typed by their :class:`Param` kind.

    ``values`` maps parameter name to ``str`` (single, time), ``list[str]`` (list) or ``list[list[str]]``
    (codes: AND of OR-lists).
    """

    query_id: str
    name: str
    values: dict[str, object] = field(default_factory=dict)
    return_type: str = "LeafClass"

    def get_str(self, name: str) -> str | None:
        val = self.values.get(name)
        return val if isinstance(val, str) else None

    def get_list(self, name: str) -> list[str] | None:
        val = self.values.get(name)
        return val if isinstance(val, list) and all(isinstance(x, str) for x in val) else None

    def get_codes(self, name: str) -> list[list[str]] | None:
        val = self.values.get(name)
        return val if isinstance(val, list) and all(isinstance(x, list) for x in val) else None


_S, _L, _C, _T = Param("single"), Param("list"), Param("codes"), Param("time")
_C_AND = Param("codes", and_=True)
_RS, _RL = Param("single", required=True), Param("list", required=True)

_DE_FILTERS: Final = {
    "$XDSDocumentEntryFormatCode": _C,
    "$XDSDocumentEntryConfidentialityCode": _C_AND,
    "$XDSDocumentEntryType": _L,
}
_FIND_DOCUMENTS: Final = {
    "$XDSDocumentEntryPatientId": _RS,
    "$XDSDocumentEntryClassCode": _C,
    "$XDSDocumentEntryTypeCode": _C,
    "$XDSDocumentEntryPracticeSettingCode": _C,
    "$XDSDocumentEntryCreationTimeFrom": _T,
    "$XDSDocumentEntryCreationTimeTo": _T,
    "$XDSDocumentEntryServiceStartTimeFrom": _T,
    "$XDSDocumentEntryServiceStartTimeTo": _T,
    "$XDSDocumentEntryServiceStopTimeFrom": _T,
    "$XDSDocumentEntryServiceStopTimeTo": _T,
    "$XDSDocumentEntryHealthcareFacilityTypeCode": _C,
    "$XDSDocumentEntryEventCodeList": _C_AND,
    "$XDSDocumentEntryAuthorPerson": _L,
    "$XDSDocumentEntryStatus": _RL,
    **_DE_FILTERS,
}
_HOME: Final = {"$homeCommunityId": _S, "$MetadataLevel": _S}
_DOC_BY_ID: Final = {"$XDSDocumentEntryEntryUUID": _L, "$XDSDocumentEntryUniqueId": _L, **_HOME}
_ONE_DOC: Final = {"$XDSDocumentEntryEntryUUID": _S, "$XDSDocumentEntryUniqueId": _S, **_HOME}
_DOC_ONE_OF: Final = (("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId"),)
_FOLDER_ONE_OF: Final = (("$XDSFolderEntryUUID", "$XDSFolderUniqueId"),)

#: stored-query id -> definition (ITI TF-2 §3.18.4.1.2.3.7.1 to .14)
QUERIES: Final[dict[str, QueryDef]] = {
    v.SQ_FIND_DOCUMENTS: QueryDef("FindDocuments", {**_FIND_DOCUMENTS, **_HOME}),
    v.SQ_FIND_DOCUMENTS_BY_REFERENCE_ID: QueryDef(
        "FindDocumentsByReferenceId",
        {**_FIND_DOCUMENTS, "$XDSDocumentEntryReferenceIdList": Param("list", required=True), **_HOME},
    ),
    v.SQ_FIND_SUBMISSION_SETS: QueryDef(
        "FindSubmissionSets",
        {
            "$XDSSubmissionSetPatientId": _RS,
            "$XDSSubmissionSetSourceId": _L,
            "$XDSSubmissionSetSubmissionTimeFrom": _T,
            "$XDSSubmissionSetSubmissionTimeTo": _T,
            "$XDSSubmissionSetAuthorPerson": _S,
            "$XDSSubmissionSetContentType": _C,
            "$XDSSubmissionSetStatus": _RL,
            **_HOME,
        },
    ),
    v.SQ_FIND_FOLDERS: QueryDef(
        "FindFolders",
        {
            "$XDSFolderPatientId": _RS,
            "$XDSFolderLastUpdateTimeFrom": _T,
            "$XDSFolderLastUpdateTimeTo": _T,
            "$XDSFolderCodeList": _C_AND,
            "$XDSFolderStatus": _RL,
            **_HOME,
        },
    ),
    v.SQ_GET_ALL: QueryDef(
        "GetAll",
        {
            "$patientId": _RS,
            "$XDSDocumentEntryStatus": _RL,
            "$XDSSubmissionSetStatus": _RL,
            "$XDSFolderStatus": _RL,
            **_DE_FILTERS,
            **_HOME,
        },
    ),
    v.SQ_GET_DOCUMENTS: QueryDef(
        "GetDocuments",
        {**_DOC_BY_ID, "$XDSDocumentEntryLogicalID": _L},
        (("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId", "$XDSDocumentEntryLogicalID"),),
    ),
    v.SQ_GET_FOLDERS: QueryDef(
        "GetFolders", {"$XDSFolderEntryUUID": _L, "$XDSFolderUniqueId": _L, **_HOME}, _FOLDER_ONE_OF
    ),
    v.SQ_GET_ASSOCIATIONS: QueryDef("GetAssociations", {"$uuid": _RL, **_HOME}),
    v.SQ_GET_DOCUMENTS_AND_ASSOCIATIONS: QueryDef("GetDocumentsAndAssociations", _DOC_BY_ID, _DOC_ONE_OF),
    v.SQ_GET_SUBMISSION_SETS: QueryDef("GetSubmissionSets", {"$uuid": _RL, **_HOME}),
    v.SQ_GET_SUBMISSION_SET_AND_CONTENTS: QueryDef(
        "GetSubmissionSetAndContents",
        {"$XDSSubmissionSetEntryUUID": _S, "$XDSSubmissionSetUniqueId": _S, **_DE_FILTERS, **_HOME},
        (("$XDSSubmissionSetEntryUUID", "$XDSSubmissionSetUniqueId"),),
    ),
    v.SQ_GET_FOLDER_AND_CONTENTS: QueryDef(
        "GetFolderAndContents",
        {"$XDSFolderEntryUUID": _S, "$XDSFolderUniqueId": _S, **_DE_FILTERS, **_HOME},
        _FOLDER_ONE_OF,
    ),
    v.SQ_GET_FOLDERS_FOR_DOCUMENT: QueryDef("GetFoldersForDocument", _ONE_DOC, _DOC_ONE_OF),
    v.SQ_GET_RELATED_DOCUMENTS: QueryDef(
        "GetRelatedDocuments",
        {**_ONE_DOC, "$AssociationTypes": _RL, "$XDSDocumentEntryType": _L},
        _DOC_ONE_OF,
    ),
}


def split_values(text: str) -> list[str]:
    """Values of one ``rim:Value``: ``'a'``, ``('a','b')``, a bare number, or ``(1,2)``.

    Raises ``ValueError`` on anything else (unbalanced quotes or parentheses, empty list).
    """
    s = text.strip()
    if s.startswith("("):
        if not s.endswith(")"):
            raise ValueError(f"unbalanced parentheses in {text!r}")
        s = s[1:-1]
    out: list[str] = []
    pos = 0
    while pos < len(s):
        m = _ITEM.match(s, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot read value list {text!r}")
        out.append(m.group(1).replace("''", "'") if m.group(1) is not None else m.group(2))
        pos = m.end()
        if pos < len(s):
            if s[pos] != ",":
                raise ValueError(f"expected ',' in value list {text!r}")
            pos += 1
    if not out:
        raise ValueError(f"empty value list {text!r}")
    return out


def first_value(text: str) -> str:
    """The first value of one ``rim:Value`` as :func:`split_values` reads it; for text it cannot read, the text
    without its parentheses and quotes. Never raises: for audit records and consent keys of any request."""
    try:
        return split_values(text)[0]
    except ValueError:
        return text.strip().strip("()").strip().strip("'")


def _rejoin(texts: tuple[str, ...]) -> list[str]:
    """Join a list that a sender split over several ``rim:Value`` elements: ``('a',`` + ``'b')``."""
    out: list[str] = []
    open_list = False
    for t in texts:
        if open_list:
            out[-1] += t
        else:
            out.append(t)
        stripped = out[-1].strip()
        open_list = stripped.startswith("(") and not stripped.endswith(")")
    return out


def _typed(name: str, spec: Param, slots: list[tuple[str, ...]]) -> object:
    if len(slots) > 1 and not spec.and_:
        raise StoredQueryParamNumber(f"parameter {name} may appear only once", location=name)
    lists: list[list[str]] = []
    for texts in slots:
        items: list[str] = []
        for t in _rejoin(texts):
            try:
                items += split_values(t)
            except ValueError as exc:
                raise MetadataError(f"parameter {name}: {exc}", location=name) from None
        lists.append(items)
    if spec.kind == "codes":
        for item in (x for lst in lists for x in lst):
            if not _CODE.match(item):
                raise MetadataError(f"parameter {name}: {item!r} is not in code^^scheme form", location=name)
        return lists
    items = lists[0]
    if spec.kind == "list":
        return items
    if len(items) != 1:
        raise StoredQueryParamNumber(f"parameter {name} takes a single value", location=name)
    if spec.kind == "time":
        try:
            return DTM(items[0]).padded
        except ValueError as exc:
            raise MetadataError(f"parameter {name}: {exc}", location=name) from None
    return items[0]


def parse_query(request: StoredQueryRequest) -> ParsedQuery:
    """Validate ``request`` against its query definition and type the parameter values."""
    qdef = QUERIES.get(request.query_id)
    if qdef is None:
        raise UnknownStoredQuery(f"unknown stored query id {request.query_id}", location=request.query_id)
    grouped: dict[str, list[tuple[str, ...]]] = {}
    for p in request.parameters:
        grouped.setdefault(p.name, []).append(p.values)
    values: dict[str, object] = {}
    for name, slots in grouped.items():
        spec = qdef.params.get(name)
        if spec is None:
            raise StoredQueryParamNumber(f"parameter {name} is not a parameter of {qdef.name}", location=name)
        values[name] = _typed(name, spec, slots)
    for name, spec in qdef.params.items():
        if spec.required and name not in values:
            raise StoredQueryMissingParam(f"{qdef.name} requires parameter {name}", location=name)
    for group in qdef.one_of:
        given = [g for g in group if g in values]
        if not given:
            raise StoredQueryMissingParam(f"{qdef.name} requires one of {', '.join(group)}", location=group[0])
        if len(given) > 1:
            raise StoredQueryParamNumber(f"{qdef.name} takes only one of {', '.join(given)}", location=given[0])
    return ParsedQuery(request.query_id, qdef.name, values, request.return_type)


__all__ = ["QUERIES", "Param", "ParsedQuery", "QueryDef", "first_value", "parse_query", "split_values"]
