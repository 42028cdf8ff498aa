"""Stored-query parameter syntax and per-query parameter rules (ITI TF-2 §3.18.4.1.2.3)."""

from __future__ import annotations

import pytest

from xds import vocabulary as v
from xds.errors import ErrorCode, XDSError
from xds.model.messages import QueryParameter, StoredQueryRequest
from xds.registry.sq_params import QUERIES, parse_query, split_values

SPLIT = [
    ("'a'", ["a"]),
    ("('a')", ["a"]),
    ("('a','b')", ["a", "b"]),
    ("( 'a' , 'b' )", ["a", "b"]),
    ("'it''s'", ["it's"]),
    ("('x,y')", ["x,y"]),
    ("200412252300", ["200412252300"]),
    ("(1,2)", ["1", "2"]),
]


@pytest.mark.parametrize(("text", "values"), SPLIT)
def test_split_values(text: str, values: list[str]) -> None:
    assert split_values(text) == values


@pytest.mark.parametrize("text", ["('a'", "'a", "()", "('a' 'b')", "a b", ""])
def test_split_values_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        split_values(text)


def _req(query_id: str, **params: list[str] | str) -> StoredQueryRequest:
    ps = []
    for name, vals in params.items():
        for val in [vals] if isinstance(vals, str) else vals:
            ps.append(QueryParameter(name="$" + name, values=(val,)))
    return StoredQueryRequest(query_id=query_id, parameters=tuple(ps))


def test_all_fourteen_queries_are_defined() -> None:
    assert len(QUERIES) == 14
    assert {d.name for d in QUERIES.values()} >= {"FindDocuments", "GetRelatedDocuments", "FindDocumentsByReferenceId"}


def test_values_are_typed() -> None:
    parsed = parse_query(
        _req(
            v.SQ_FIND_DOCUMENTS,
            XDSDocumentEntryPatientId="'p^^^&1.2&ISO'",
            XDSDocumentEntryStatus=["('s1')", "('s2','s3')"][0],
            XDSDocumentEntryEventCodeList=["('a^^b','c^^d')", "('e^^f')"],
            XDSDocumentEntryCreationTimeFrom="2004",
        )
    )
    assert parsed.get_str("$XDSDocumentEntryPatientId") == "p^^^&1.2&ISO"
    assert parsed.get_list("$XDSDocumentEntryStatus") == ["s1"]
    assert parsed.get_codes("$XDSDocumentEntryEventCodeList") == [["a^^b", "c^^d"], ["e^^f"]]
    assert parsed.get_str("$XDSDocumentEntryCreationTimeFrom") == "20040000000000"


def test_status_values_spread_over_value_elements_are_one_list() -> None:
    split = StoredQueryRequest(
        query_id=v.SQ_FIND_DOCUMENTS,
        parameters=(
            QueryParameter(name="$XDSDocumentEntryPatientId", values=("'p'",)),
            QueryParameter(name="$XDSDocumentEntryStatus", values=("('a',", "'b')")),
        ),
    )
    assert parse_query(split).get_list("$XDSDocumentEntryStatus") == ["a", "b"]
    ok = StoredQueryRequest(
        query_id=v.SQ_FIND_DOCUMENTS,
        parameters=(
            QueryParameter(name="$XDSDocumentEntryPatientId", values=("'p'",)),
            QueryParameter(name="$XDSDocumentEntryStatus", values=("('a')", "('b')")),
        ),
    )
    assert parse_query(ok).get_list("$XDSDocumentEntryStatus") == ["a", "b"]


ERRORS = [
    (_req("urn:uuid:nope"), ErrorCode.UNKNOWN_STORED_QUERY),
    (_req(v.SQ_FIND_FOLDERS, XDSFolderStatus="('x')"), ErrorCode.STORED_QUERY_MISSING_PARAM),
    (_req(v.SQ_GET_FOLDERS), ErrorCode.STORED_QUERY_MISSING_PARAM),
    (
        _req(v.SQ_GET_FOLDERS, XDSFolderEntryUUID="('a')", XDSFolderUniqueId="('b')"),
        ErrorCode.STORED_QUERY_PARAM_NUMBER,
    ),
    (
        _req(v.SQ_GET_SUBMISSION_SET_AND_CONTENTS, XDSSubmissionSetEntryUUID="('a','b')"),
        ErrorCode.STORED_QUERY_PARAM_NUMBER,
    ),
    (
        _req(v.SQ_FIND_FOLDERS, XDSFolderPatientId="'p'", XDSFolderStatus="('x')", XDSFolderLastUpdateTimeFrom="20x"),
        ErrorCode.REGISTRY_METADATA_ERROR,
    ),
    (_req(v.SQ_GET_ASSOCIATIONS, uuid="('a')", XDSDocumentEntryStatus="('x')"), ErrorCode.STORED_QUERY_PARAM_NUMBER),
]


@pytest.mark.parametrize(("req", "code"), ERRORS)
def test_parameter_errors(req: StoredQueryRequest, code: ErrorCode) -> None:
    with pytest.raises(XDSError) as info:
        parse_query(req)
    assert info.value.error_code == code
