"""ITI-18 Registry Stored Query: all 14 queries, their parameters and errors, on every backend."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
from starlette.testclient import TestClient

from tests.support import q, query, register
from xds import samples
from xds import vocabulary as v
from xds.errors import ErrorCode
from xds.model.hl7 import XCN
from xds.model.metadata import Author, Code
from xds.model.rim import text
from xds.node import Node

A = samples.patient("A-1'--")
B = samples.patient("B-2")
PA, PB = f"'{str(A).replace(chr(39), chr(39) * 2)}'", f"'{B}'"
LAB = Code(code="LAB", scheme="1.2.3.9", display_name=text("Lab"))
EV1 = Code(code="E1", scheme="1.2.3.7")
EV2 = Code(code="E2", scheme="1.2.3.7")
APPROVED = q(v.APPROVED)
BOTH = q(v.APPROVED, v.DEPRECATED)


@dataclass
class World:
    """Ids of the seeded objects."""

    d1: str
    d2: str
    d3: str
    d_old: str
    d_new: str
    d_b: str
    ss1: str
    ss1_uid: str
    fol: str
    fol_uid: str


@pytest.fixture
def world(client: TestClient, node: Node) -> World:
    """Patient A: d1 (REPORTS, 2020, events E1+E2, author Jansen, ref R1), d2 (LAB, 2021, event E1),
    d3 (on-demand), d_old replaced by d_new (RPLC); folder with d1. Patient B: d_b."""
    node.store.add_patient(str(A))
    node.store.add_patient(str(B))
    d1 = samples.document_entry(A, creation_time="20200101", event_codes=[EV1, EV2], reference_ids=["R1^^^&1.2&ISO"])
    d2 = dataclasses.replace(
        samples.document_entry(A, creation_time="20210601", event_codes=[EV1]),
        class_code=LAB,
        authors=(Author(person=XCN(family_name="Pietersen")),),
    )
    d3 = samples.document_entry(A, object_type=v.DE_ON_DEMAND, creation_time="20220101")
    fol = samples.folder(A)
    link = samples.has_member(fol.id, d1.id, status="")
    ss = samples.submission_set(A)
    first = samples.submission(A, [d1, d2, d3], folders=[fol], ss=ss, extra=[link, samples.has_member(ss.id, link.id)])
    assert register(client, first).ok
    d_old = samples.document_entry(A, creation_time="20190101")
    assert register(client, samples.submission(A, [d_old])).ok
    d_new = samples.document_entry(A, creation_time="20230101")
    assert register(client, samples.submission(A, [d_new], extra=[samples.relation(v.RPLC, d_new.id, d_old.id)])).ok
    d_b = samples.document_entry(B)
    assert register(client, samples.submission(B, [d_b])).ok
    return World(d1.id, d2.id, d3.id, d_old.id, d_new.id, d_b.id, ss.id, ss.unique_id, fol.id, fol.unique_id)


def _find(client: TestClient, **params: str | list[str]) -> list[str]:
    base: dict[str, str | list[str]] = {"$XDSDocumentEntryPatientId": PA, "$XDSDocumentEntryStatus": APPROVED}
    base.update({f"$XDSDocumentEntry{k}": val for k, val in params.items()})
    ans = query(client, v.SQ_FIND_DOCUMENTS, base, return_type="ObjectRef")
    assert ans.ok, (ans.error_codes, ans.raw)
    return ans.ids()


def test_find_documents_parameters(client: TestClient, world: World) -> None:
    w = world
    assert _find(client) == [w.d1, w.d2, w.d_new]
    assert _find(client, Status=BOTH) == [w.d1, w.d2, w.d_old, w.d_new]
    assert _find(client, ClassCode=q("LAB^^1.2.3.9")) == [w.d2]
    assert _find(client, ClassCode=q("LAB^^1.2.3.9", samples.CLASS_CODE.query_form())) == [w.d1, w.d2, w.d_new]
    assert _find(client, ClassCode=q("LAB^^9.9.9")) == []
    assert _find(client, CreationTimeFrom="20200101", CreationTimeTo="20210601") == [w.d1]
    assert _find(client, CreationTimeFrom="2021") == [w.d2, w.d_new]
    assert _find(client, EventCodeList=q("E1^^1.2.3.7")) == [w.d1, w.d2]
    assert _find(client, EventCodeList=[q("E1^^1.2.3.7"), q("E2^^1.2.3.7")]) == [w.d1]  # AND across slots
    assert _find(client, AuthorPerson=q("%Pieter%")) == [w.d2]
    assert _find(client, Type=q(v.DE_ON_DEMAND)) == [w.d3]
    assert _find(client, Type=q(v.DE_STABLE, v.DE_ON_DEMAND)) == [w.d1, w.d2, w.d3, w.d_new]
    assert _find(client, ConfidentialityCode=q(samples.CONFIDENTIALITY_CODE.query_form())) == [w.d1, w.d2, w.d_new]
    assert _find(client, FormatCode=q("x^^y")) == []
    assert _find(
        client,
        PracticeSettingCode=q(samples.PRACTICE_CODE.query_form()),
        HealthcareFacilityTypeCode=q(samples.FACILITY_CODE.query_form()),
        TypeCode=q(samples.TYPE_CODE.query_form()),
    ) == [w.d1, w.d2, w.d_new]


def test_find_documents_leafclass_returns_full_objects(client: TestClient, world: World) -> None:
    ans = query(client, v.SQ_FIND_DOCUMENTS, {"$XDSDocumentEntryPatientId": PA, "$XDSDocumentEntryStatus": APPROVED})
    assert ans.ids("ExtrinsicObject") == [world.d1, world.d2, world.d_new]
    assert b"XDSDocumentEntry.uniqueId" in ans.raw


def test_find_documents_by_reference_id(client: TestClient, world: World) -> None:
    ans = query(
        client,
        v.SQ_FIND_DOCUMENTS_BY_REFERENCE_ID,
        {
            "$XDSDocumentEntryPatientId": PA,
            "$XDSDocumentEntryStatus": APPROVED,
            "$XDSDocumentEntryReferenceIdList": q("R1^^^&1.2&ISO", "nothing"),
        },
        return_type="ObjectRef",
    )
    assert ans.ids() == [world.d1]


def test_find_submission_sets_and_folders(client: TestClient, world: World) -> None:
    sets = query(
        client,
        v.SQ_FIND_SUBMISSION_SETS,
        {"$XDSSubmissionSetPatientId": PA, "$XDSSubmissionSetStatus": APPROVED},
        return_type="ObjectRef",
    )
    assert len(sets.ids()) == 3 and sets.ids()[0] == world.ss1
    by_source = query(
        client,
        v.SQ_FIND_SUBMISSION_SETS,
        {
            "$XDSSubmissionSetPatientId": PA,
            "$XDSSubmissionSetStatus": APPROVED,
            "$XDSSubmissionSetSourceId": q("9.9.9"),
        },
        return_type="ObjectRef",
    )
    assert by_source.ids() == []
    folders = query(
        client,
        v.SQ_FIND_FOLDERS,
        {
            "$XDSFolderPatientId": PA,
            "$XDSFolderStatus": APPROVED,
            "$XDSFolderCodeList": q(samples.FOLDER_CODE.query_form()),
        },
    )
    assert folders.ids("RegistryPackage") == [world.fol]


def test_get_all(client: TestClient, world: World) -> None:
    ans = query(
        client,
        v.SQ_GET_ALL,
        {
            "$patientId": PA,
            "$XDSDocumentEntryStatus": BOTH,
            "$XDSSubmissionSetStatus": APPROVED,
            "$XDSFolderStatus": APPROVED,
        },
    )
    assert set(ans.ids("ExtrinsicObject")) == {world.d1, world.d2, world.d_old, world.d_new}
    assert len(ans.ids("RegistryPackage")) == 4  # three submission sets, one folder
    assert len(ans.ids("Association")) == 8  # 5 SS members (d3 is on-demand), folder->d1, SS->(folder->d1), RPLC


def test_get_documents_by_uuid_and_unique_id(client: TestClient, world: World) -> None:
    ans = query(client, v.SQ_GET_DOCUMENTS, {"$XDSDocumentEntryEntryUUID": q(world.d1, world.d2)})
    assert ans.ids() == [world.d1, world.d2]
    both = query(
        client, v.SQ_GET_DOCUMENTS, {"$XDSDocumentEntryEntryUUID": q(world.d1), "$XDSDocumentEntryUniqueId": q("1.2")}
    )
    assert both.error_codes == [ErrorCode.STORED_QUERY_PARAM_NUMBER]


def test_get_documents_leafclass_across_patients_is_refused(client: TestClient, world: World) -> None:
    ans = query(client, v.SQ_GET_DOCUMENTS, {"$XDSDocumentEntryEntryUUID": q(world.d1, world.d_b)})
    assert ans.error_codes == [ErrorCode.RESULT_NOT_SINGLE_PATIENT]
    refs = query(
        client, v.SQ_GET_DOCUMENTS, {"$XDSDocumentEntryEntryUUID": q(world.d1, world.d_b)}, return_type="ObjectRef"
    )
    assert refs.ids() == [world.d1, world.d_b]


def test_get_folders_and_folder_contents(client: TestClient, world: World) -> None:
    assert query(client, v.SQ_GET_FOLDERS, {"$XDSFolderUniqueId": q(world.fol_uid)}).ids() == [world.fol]
    contents = query(client, v.SQ_GET_FOLDER_AND_CONTENTS, {"$XDSFolderEntryUUID": f"'{world.fol}'"})
    assert contents.ids("RegistryPackage") == [world.fol]
    assert contents.ids("ExtrinsicObject") == [world.d1]
    assert len(contents.ids("Association")) == 1
    folders = query(client, v.SQ_GET_FOLDERS_FOR_DOCUMENT, {"$XDSDocumentEntryEntryUUID": f"'{world.d1}'"})
    assert folders.ids() == [world.fol]


def test_get_associations_and_documents_and_associations(client: TestClient, world: World) -> None:
    assocs = query(client, v.SQ_GET_ASSOCIATIONS, {"$uuid": q(world.d1)})
    assert len(assocs.ids("Association")) == 2  # SS HasMember, folder HasMember
    docs = query(client, v.SQ_GET_DOCUMENTS_AND_ASSOCIATIONS, {"$XDSDocumentEntryEntryUUID": q(world.d_new)})
    assert docs.ids("ExtrinsicObject") == [world.d_new]
    assert len(docs.ids("Association")) == 2  # SS HasMember, RPLC


def test_get_submission_sets_and_contents(client: TestClient, world: World) -> None:
    sets = query(client, v.SQ_GET_SUBMISSION_SETS, {"$uuid": q(world.d1, world.fol)})
    assert sets.ids("RegistryPackage") == [world.ss1]
    assert len(sets.ids("Association")) == 2
    contents = query(client, v.SQ_GET_SUBMISSION_SET_AND_CONTENTS, {"$XDSSubmissionSetUniqueId": f"'{world.ss1_uid}'"})
    assert contents.ids("RegistryPackage") == [world.ss1, world.fol]
    assert contents.ids("ExtrinsicObject") == [world.d1, world.d2]  # d3 is on-demand: filtered by default
    assert len(contents.ids("Association")) == 5  # SS->d1, d2, fol; fol->d1; SS->(fol->d1)
    filtered = query(
        client,
        v.SQ_GET_SUBMISSION_SET_AND_CONTENTS,
        {"$XDSSubmissionSetEntryUUID": f"'{world.ss1}'", "$XDSDocumentEntryFormatCode": q("none^^none")},
    )
    assert filtered.ids("ExtrinsicObject") == []


def test_get_related_documents(client: TestClient, world: World) -> None:
    ans = query(
        client,
        v.SQ_GET_RELATED_DOCUMENTS,
        {"$XDSDocumentEntryEntryUUID": f"'{world.d_new}'", "$AssociationTypes": q(v.RPLC)},
    )
    assert ans.ids("ExtrinsicObject") == [world.d_new, world.d_old]
    assert len(ans.ids("Association")) == 1
    none = query(
        client,
        v.SQ_GET_RELATED_DOCUMENTS,
        {"$XDSDocumentEntryEntryUUID": f"'{world.d2}'", "$AssociationTypes": q(v.RPLC)},
    )
    assert none.ok and none.ids() == []


#: (case, query id, params, expected code)
ERRORS = [
    ("unknown query", "urn:uuid:00000000-0000-0000-0000-000000000000", {}, ErrorCode.UNKNOWN_STORED_QUERY),
    (
        "missing patient",
        v.SQ_FIND_DOCUMENTS,
        {"$XDSDocumentEntryStatus": APPROVED},
        ErrorCode.STORED_QUERY_MISSING_PARAM,
    ),
    ("missing status", v.SQ_FIND_DOCUMENTS, {"$XDSDocumentEntryPatientId": PA}, ErrorCode.STORED_QUERY_MISSING_PARAM),
    (
        "repeated single",
        v.SQ_FIND_DOCUMENTS,
        {"$XDSDocumentEntryPatientId": [PA, PB], "$XDSDocumentEntryStatus": APPROVED},
        ErrorCode.STORED_QUERY_PARAM_NUMBER,
    ),
    (
        "repeated OR-only code",
        v.SQ_FIND_DOCUMENTS,
        {
            "$XDSDocumentEntryPatientId": PA,
            "$XDSDocumentEntryStatus": APPROVED,
            "$XDSDocumentEntryClassCode": [q("a^^b"), q("c^^d")],
        },
        ErrorCode.STORED_QUERY_PARAM_NUMBER,
    ),
    (
        "unknown parameter",
        v.SQ_FIND_DOCUMENTS,
        {"$XDSDocumentEntryPatientId": PA, "$XDSDocumentEntryStatus": APPROVED, "$Bogus": "'x'"},
        ErrorCode.STORED_QUERY_PARAM_NUMBER,
    ),
    (
        "code not in code^^scheme form",
        v.SQ_FIND_DOCUMENTS,
        {"$XDSDocumentEntryPatientId": PA, "$XDSDocumentEntryStatus": APPROVED, "$XDSDocumentEntryClassCode": q("a^^")},
        ErrorCode.REGISTRY_METADATA_ERROR,
    ),
    (
        "bad time",
        v.SQ_FIND_DOCUMENTS,
        {
            "$XDSDocumentEntryPatientId": PA,
            "$XDSDocumentEntryStatus": APPROVED,
            "$XDSDocumentEntryCreationTimeFrom": "2020-01-01",
        },
        ErrorCode.REGISTRY_METADATA_ERROR,
    ),
    ("GetDocuments without ids", v.SQ_GET_DOCUMENTS, {}, ErrorCode.STORED_QUERY_MISSING_PARAM),
    (
        "GetRelatedDocuments without types",
        v.SQ_GET_RELATED_DOCUMENTS,
        {"$XDSDocumentEntryEntryUUID": "'x'"},
        ErrorCode.STORED_QUERY_MISSING_PARAM,
    ),
]


@pytest.mark.parametrize(("query_id", "params", "code"), [pytest.param(a, b, c, id=i) for i, a, b, c in ERRORS])
def test_query_errors(
    client: TestClient, node: Node, query_id: str, params: dict[str, str | list[str]], code: ErrorCode
) -> None:
    ans = query(client, query_id, params)
    assert ans.status == v.RESPONSE_FAILURE
    assert ans.error_codes == [code]
    assert ans.ids() == []


def test_too_many_results(client: TestClient, world: World, node: Node) -> None:
    from xds.app import create_app

    node.settings = dataclasses.replace(node.settings, max_query_results=2)
    with TestClient(create_app(node)) as small:
        ans = query(small, v.SQ_FIND_DOCUMENTS, {"$XDSDocumentEntryPatientId": PA, "$XDSDocumentEntryStatus": APPROVED})
    assert ans.error_codes == [ErrorCode.TOO_MANY_RESULTS]
