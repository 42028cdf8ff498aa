"""ITI-42 Register Document Set-b over SOAP, on every configured database backend."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from tests.support import query, register
from xds import samples
from xds import vocabulary as v
from xds.errors import ErrorCode
from xds.model.hl7 import CX
from xds.model.metadata import Submission
from xds.node import Node

PID = samples.patient("pid'; DROP TABLE patient;--%")
OTHER = samples.patient("other-1")


@pytest.fixture
def fed(node: Node) -> Node:
    node.store.add_patient(str(PID))
    node.store.add_patient(str(OTHER))
    return node


def _all(client: TestClient, pid: CX = PID) -> list[str]:
    status = f"('{v.APPROVED}','{v.DEPRECATED}')"
    pid_text = str(pid).replace("'", "''")
    ans = query(
        client,
        v.SQ_GET_ALL,
        {
            "$patientId": f"'{pid_text}'",
            "$XDSDocumentEntryStatus": status,
            "$XDSSubmissionSetStatus": status,
            "$XDSFolderStatus": status,
        },
        return_type="ObjectRef",
    )
    assert ans.ok, ans.error_codes
    return ans.ids()


def _sub(**kw: object) -> Submission:
    return samples.submission(PID, [samples.document_entry(PID, **kw)])  # type: ignore[arg-type]


def _mutate_de(**changes: object) -> Callable[[], Submission]:
    def build() -> Submission:
        sub = _sub()
        de = dataclasses.replace(sub.document_entries[0], **changes)  # type: ignore[arg-type]
        return dataclasses.replace(sub, document_entries=(de,))

    return build


def _mutate_ss(**changes: object) -> Callable[[], Submission]:
    def build() -> Submission:
        sub = _sub()
        ss = dataclasses.replace(sub.submission_sets[0], **changes)  # type: ignore[arg-type]
        return dataclasses.replace(sub, submission_sets=(ss,))

    return build


def _two_docs_same_uid() -> Submission:
    a = samples.document_entry(PID, unique_id="1.2.3.4.5")
    b = samples.document_entry(PID, unique_id="1.2.3.4.5")
    return samples.submission(PID, [a, b])


def _unlinked_doc() -> Submission:
    sub = _sub()
    return dataclasses.replace(sub, associations=())


def _unknown_patient() -> Submission:
    pid = samples.patient("never-fed")
    return samples.submission(pid, [samples.document_entry(pid)])


def _doc_other_patient() -> Submission:
    return samples.submission(PID, [samples.document_entry(OTHER)])


def _bad_assoc_type() -> Submission:
    sub = _sub()
    a = dataclasses.replace(sub.associations[0], association_type="urn:example:Nonsense")
    return dataclasses.replace(sub, associations=(a,))


def _no_ss_status() -> Submission:
    sub = _sub()
    a = dataclasses.replace(sub.associations[0], extra_slots=())
    return dataclasses.replace(sub, associations=(a,))


def _dangling_assoc() -> Submission:
    sub = _sub()
    de = sub.document_entries[0]
    extra = samples.relation(v.APND, de.id, samples.new_uuid())
    return dataclasses.replace(sub, associations=(*sub.associations, extra))


#: (case id, submission builder, expected error codes)
INVALID = [
    ("missing classCode", _mutate_de(class_code=None), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("missing typeCode", _mutate_de(type_code=None), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("missing formatCode", _mutate_de(format_code=None), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("missing confidentialityCode", _mutate_de(confidentiality_codes=()), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("missing creationTime", _mutate_de(creation_time=None), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("missing languageCode", _mutate_de(language_code=""), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("missing sourcePatientId", _mutate_de(source_patient_id=None), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("missing hash", _mutate_de(hash=""), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("missing size", _mutate_de(size=None), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("missing repositoryUniqueId", _mutate_de(repository_unique_id=""), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("missing mimeType", _mutate_de(mime_type=""), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("bad hash", _mutate_de(hash="xyz"), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("bad mimeType", _mutate_de(mime_type="text"), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("bad languageCode", _mutate_de(language_code="en us"), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("bad uniqueId", _mutate_de(unique_id="1.2.03"), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("bad repositoryUniqueId", _mutate_de(repository_unique_id="repo"), [ErrorCode.REGISTRY_METADATA_ERROR]),
    (
        "bad objectType",
        _mutate_de(object_type="urn:uuid:00000000-0000-0000-0000-000000000000"),
        [ErrorCode.REGISTRY_METADATA_ERROR],
    ),
    ("limited metadata", _mutate_de(limited_metadata=True), [ErrorCode.REGISTRY_METADATA_ERROR]),
    (
        "patient id without OID",
        _mutate_de(patient_id=CX(id_number="1")),
        [ErrorCode.REGISTRY_METADATA_ERROR, ErrorCode.PATIENT_ID_DOES_NOT_MATCH],
    ),
    ("missing SS sourceId", _mutate_ss(source_id=""), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("missing SS contentTypeCode", _mutate_ss(content_type_code=None), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("missing SS submissionTime", _mutate_ss(submission_time=None), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("SS uniqueId not an OID", _mutate_ss(unique_id="abc"), [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("duplicate uniqueId in message", _two_docs_same_uid, [ErrorCode.REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE]),
    ("document not in submission set", _unlinked_doc, [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("unknown patient", _unknown_patient, [ErrorCode.UNKNOWN_PATIENT_ID]),
    ("document of another patient", _doc_other_patient, [ErrorCode.PATIENT_ID_DOES_NOT_MATCH]),
    (
        "unknown association type",
        _bad_assoc_type,
        [ErrorCode.REGISTRY_METADATA_ERROR, ErrorCode.REGISTRY_METADATA_ERROR],
    ),
    ("HasMember without SubmissionSetStatus", _no_ss_status, [ErrorCode.REGISTRY_METADATA_ERROR]),
    ("association to nothing", _dangling_assoc, [ErrorCode.UNRESOLVED_REFERENCE]),
]


@pytest.mark.parametrize(("build", "codes"), [pytest.param(b, c, id=i) for i, b, c in INVALID])
def test_invalid_submission_is_rejected_and_nothing_is_stored(
    client: TestClient, fed: Node, build: Callable[[], Submission], codes: list[ErrorCode]
) -> None:
    ans = register(client, build())
    assert ans.status == v.RESPONSE_FAILURE
    assert sorted(set(ans.error_codes)) == sorted({str(c) for c in codes})
    assert _all(client) == []


def test_valid_submission_is_stored_with_assigned_uuids(client: TestClient, fed: Node) -> None:
    sub = _sub()
    sub = dataclasses.replace(
        sub,
        submission_sets=(dataclasses.replace(sub.submission_sets[0], id="SubmissionSet01"),),
        document_entries=(dataclasses.replace(sub.document_entries[0], id="Document01"),),
        associations=(samples.has_member("SubmissionSet01", "Document01", assoc_id="as01"),),
    )
    ans = register(client, sub)
    assert ans.ok, ans.raw
    ids = _all(client)
    assert len(ids) == 3
    assert all(i.startswith("urn:uuid:") for i in ids)


def test_resubmission_with_identical_hash_is_accepted(client: TestClient, fed: Node) -> None:
    assert register(client, _sub(unique_id="1.2.3.99")).ok
    again = register(client, _sub(unique_id="1.2.3.99"))
    assert again.ok, again.error_codes
    assert len(_all(client)) == 6  # two SS, two DE sharing the uniqueId (same document), two HasMember
    by_uid = query(client, v.SQ_GET_DOCUMENTS, {"$XDSDocumentEntryUniqueId": "('1.2.3.99')"}, return_type="ObjectRef")
    assert len(by_uid.ids()) == 2


def test_resubmission_with_other_hash_is_rejected(client: TestClient, fed: Node) -> None:
    assert register(client, _sub(unique_id="1.2.3.98")).ok
    ans = register(client, _sub(unique_id="1.2.3.98", content=b"other bytes"))
    assert ans.error_codes == [ErrorCode.NON_IDENTICAL_HASH]


def test_duplicate_submission_set_unique_id_in_registry(client: TestClient, fed: Node) -> None:
    first = _sub()
    assert register(client, first).ok
    again = samples.submission(
        PID, [samples.document_entry(PID)], ss=samples.submission_set(PID, unique_id=first.submission_sets[0].unique_id)
    )
    assert register(client, again).error_codes == [ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY]


def test_existing_uuid_is_rejected(client: TestClient, fed: Node) -> None:
    first = _sub()
    assert register(client, first).ok
    de = samples.document_entry(PID, entry_id=first.document_entries[0].id)
    ans = register(client, samples.submission(PID, [de]))
    assert ans.error_codes == [ErrorCode.REGISTRY_METADATA_ERROR]


def _status_of(client: TestClient, entry_id: str) -> str:
    ans = query(client, v.SQ_GET_DOCUMENTS, {"$XDSDocumentEntryEntryUUID": f"('{entry_id}')"})
    assert ans.ok
    return ans.body.xpath("//*[local-name()='ExtrinsicObject']/@status")[0]  # type: ignore[no-any-return,index]


@pytest.mark.parametrize("kind", [v.RPLC, v.XFRM_RPLC])
def test_replacement_deprecates_original_and_joins_its_folders(client: TestClient, fed: Node, kind: str) -> None:
    original = samples.document_entry(PID)
    fol = samples.folder(PID)
    assert register(
        client,
        samples.submission(PID, [original], folders=[fol], extra=[samples.has_member(fol.id, original.id, status="")]),
    ).ok
    new = samples.document_entry(PID)
    ans = register(client, samples.submission(PID, [new], extra=[samples.relation(kind, new.id, original.id)]))
    assert ans.ok, ans.raw
    assert _status_of(client, original.id) == v.DEPRECATED
    assert _status_of(client, new.id) == v.APPROVED
    members = query(client, v.SQ_GET_FOLDER_AND_CONTENTS, {"$XDSFolderEntryUUID": f"'{fol.id}'"})
    assert new.id in members.ids("ExtrinsicObject")
    # A relationship to a Deprecated target is refused (ITI TF-3 §4.1.6).
    late = samples.document_entry(PID)
    refused = register(client, samples.submission(PID, [late], extra=[samples.relation(v.APND, late.id, original.id)]))
    assert refused.error_codes == [ErrorCode.REGISTRY_METADATA_ERROR]


def test_relationship_across_patients_is_refused(client: TestClient, fed: Node) -> None:
    original = samples.document_entry(OTHER)
    assert register(client, samples.submission(OTHER, [original])).ok
    new = samples.document_entry(PID)
    ans = register(client, samples.submission(PID, [new], extra=[samples.relation(v.RPLC, new.id, original.id)]))
    assert ans.error_codes == [ErrorCode.PATIENT_ID_DOES_NOT_MATCH]
    assert _status_of(client, original.id) == v.APPROVED


def test_adding_document_to_existing_folder_updates_last_update_time(client: TestClient, fed: Node) -> None:
    fol = samples.folder(PID)
    assert register(client, samples.submission(PID, [], folders=[fol])).ok
    before = query(client, v.SQ_GET_FOLDERS, {"$XDSFolderEntryUUID": f"('{fol.id}')"})
    de = samples.document_entry(PID)
    link = samples.has_member(fol.id, de.id, status="")
    sub = samples.submission(PID, [de], extra=[link])
    ss = sub.submission_sets[0]
    sub = dataclasses.replace(sub, associations=(*sub.associations, samples.has_member(ss.id, link.id)))
    assert register(client, sub).ok
    after = query(client, v.SQ_GET_FOLDERS, {"$XDSFolderEntryUUID": f"('{fol.id}')"})
    xp = "//*[local-name()='Slot'][@name='lastUpdateTime']//*[local-name()='Value']/text()"
    assert before.body.xpath(xp) and after.body.xpath(xp)
    assert after.body.xpath(xp)[0] >= before.body.xpath(xp)[0]  # type: ignore[operator,index]
    members = query(client, v.SQ_GET_FOLDER_AND_CONTENTS, {"$XDSFolderEntryUUID": f"'{fol.id}'"})
    assert de.id in members.ids("ExtrinsicObject")


def test_document_of_other_patient_cannot_join_folder(client: TestClient, fed: Node) -> None:
    fol = samples.folder(OTHER)
    assert register(client, samples.submission(OTHER, [], folders=[fol])).ok
    de = samples.document_entry(PID)
    ans = register(client, samples.submission(PID, [de], extra=[samples.has_member(fol.id, de.id, status="")]))
    assert ans.error_codes == [ErrorCode.PATIENT_ID_DOES_NOT_MATCH]


def test_code_lists_reject_unknown_codes(client: TestClient, fed: Node) -> None:
    from xds.codelists import CodeLists

    node = fed
    node.code_lists = CodeLists(by_scheme={v.DE_CLASS_CODE: frozenset({("OTHER", "1.2.3")})})
    from xds.app import create_app

    with TestClient(create_app(node)) as strict:
        ans = register(strict, _sub())
    assert ans.error_codes == [ErrorCode.REGISTRY_METADATA_ERROR]
    assert "classCode" in ans.raw.decode()


def test_bsn_policy_accepts_valid_bsn_without_feed(client: TestClient, node: Node) -> None:
    from xds.app import create_app
    from xds.registry.patients import PatientPolicy

    node.settings = dataclasses.replace(node.settings, patient_id_policy=PatientPolicy.BSN)
    good = CX.parse(f"999999990^^^&{v.BSN_OID}&ISO")
    bad = CX.parse(f"999999999^^^&{v.BSN_OID}&ISO")
    with TestClient(create_app(node)) as bsn:
        assert register(bsn, samples.submission(good, [samples.document_entry(good)])).ok
        refused = register(bsn, samples.submission(bad, [samples.document_entry(bad)]))
    assert refused.error_codes == [ErrorCode.UNKNOWN_PATIENT_ID]
