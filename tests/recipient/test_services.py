"""Document Recipient services: patient matching, rewriting a delivery for import, accepting and rejecting
deliveries on the node, and receiving a push (ITI-41 recipient side) into mailboxes."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from xds import samples
from xds import vocabulary as v
from xds.config import Settings
from xds.errors import XDSError, XDSErrors
from xds.model.hl7 import CX, DTM
from xds.model.messages import ProvideAndRegisterRequest
from xds.model.metadata import DocumentEntry, Submission, SubmissionSet
from xds.node import Node
from xds.recipient.addressing import Mailbox
from xds.recipient.inbox import (
    IMPORT_SCHEME,
    ImportDefaults,
    check_open,
    import_defaults_from_mapping,
    import_submission,
)
from xds.recipient.iti41 import Receipt, receive
from xds.recipient.model import ACCEPTED, NEW, REJECTED, UNKNOWN_PATIENT, Delivery
from xds.recipient.patients import match_patient
from xds.registry.patients import PatientPolicy, bsn_valid
from xds.repository import iti41

PATIENT = samples.patient("svc-1")
OTHER = samples.patient("svc-2")
SENDER = samples.patient("ext-77", oid="1.2.3.4.77")
BSN_OID = "2.16.840.1.113883.2.4.6.3"
VALID_BSN = "999999990"
INVALID_BSN = "999999991"


# --- match_patient -------------------------------------------------------------------------------------------


class Directory:
    """Fed patients and their aliases."""

    def __init__(self, known: Sequence[CX] = (), aliases: dict[str, list[str]] | None = None) -> None:
        self.known = {str(p) for p in known}
        self.aliases = aliases or {}

    def patient_known(self, patient_id: str) -> bool:
        return patient_id in self.known

    def patients_with_alias(self, alias: str) -> list[str]:
        return sorted(self.aliases.get(alias, []))


def about(*ids: CX | None, source: CX | None = None, info: tuple[str, ...] = ()) -> Submission:
    """A submission whose SubmissionSet has ``ids[0]`` and whose entries have the other ids."""
    first = ids[0] if ids else None
    ss = dataclasses.replace(samples.submission_set(PATIENT), patient_id=first)
    entries = [
        dataclasses.replace(
            samples.document_entry(PATIENT), patient_id=p, source_patient_id=source, source_patient_info=info
        )
        for p in (ids[1:] or (None,))
    ]
    return samples.submission(PATIENT, entries, ss=ss)


def bsn(number: str) -> CX:
    return CX.parse(f"{number}^^^&{BSN_OID}&ISO")


def test_the_bsn_numbers_of_these_tests() -> None:
    assert bsn_valid(VALID_BSN) and not bsn_valid(INVALID_BSN)


def test_a_fed_patient_id_matches() -> None:
    m = match_patient(about(PATIENT, PATIENT), Directory([PATIENT]), PatientPolicy.REGISTERED)
    assert (m.local_patient_id, m.sender_patient_id) == (str(PATIENT), str(PATIENT))
    assert "known patient" in m.reason


def test_an_alias_of_one_patient_matches_that_patient() -> None:
    m = match_patient(
        about(SENDER, SENDER), Directory([PATIENT], {str(SENDER): [str(PATIENT)]}), PatientPolicy.REGISTERED
    )
    assert (m.local_patient_id, m.sender_patient_id) == (str(PATIENT), str(SENDER))
    assert "alias" in m.reason


def test_an_alias_of_two_patients_matches_none() -> None:
    directory = Directory([PATIENT, OTHER], {str(SENDER): [str(PATIENT), str(OTHER)]})
    m = match_patient(about(SENDER, SENDER), directory, PatientPolicy.REGISTERED)
    assert m.local_patient_id == "" and m.sender_patient_id == str(SENDER)
    assert "2 patients" in m.reason


def test_a_valid_bsn_matches_under_the_bsn_policy_only() -> None:
    good = bsn(VALID_BSN)
    m = match_patient(about(good, good), Directory(), PatientPolicy.BSN)
    assert m.local_patient_id == str(good) and "BSN" in m.reason
    assert match_patient(about(good, good), Directory(), PatientPolicy.REGISTERED).local_patient_id == ""
    bad = bsn(INVALID_BSN)
    m = match_patient(about(bad, bad), Directory(), PatientPolicy.BSN)
    assert m.local_patient_id == "" and m.reason == "no given patient id is known here"


def test_ids_leading_to_two_patients_match_none() -> None:
    m = match_patient(about(PATIENT, OTHER), Directory([PATIENT, OTHER]), PatientPolicy.REGISTERED)
    assert m.local_patient_id == ""
    assert "different patients" in m.reason and str(PATIENT) in m.reason and str(OTHER) in m.reason


def test_an_alias_and_a_fed_id_of_the_same_patient_agree() -> None:
    directory = Directory([PATIENT], {str(SENDER): [str(PATIENT)]})
    m = match_patient(about(SENDER, PATIENT), directory, PatientPolicy.REGISTERED)
    assert m.local_patient_id == str(PATIENT)


def test_no_ids_is_no_match_with_a_reason() -> None:
    m = match_patient(about(None), Directory([PATIENT]), PatientPolicy.REGISTERED)
    assert (m.local_patient_id, m.sender_patient_id, m.reason) == ("", "", "no patient id was given")


def test_pid3_in_source_patient_info_is_a_candidate() -> None:
    info = ("PID-3|" + f"garbage^^^~{PATIENT}", "PID-5|Jansen^Anna")
    m = match_patient(about(None, None, info=info), Directory([PATIENT]), PatientPolicy.REGISTERED)
    assert m.local_patient_id == str(PATIENT)


# --- import_submission ---------------------------------------------------------------------------------------


def delivered_submission() -> Submission:
    """What a sender pushed: its own patient id, limited metadata, an RPLC of a document only it has."""
    full = dataclasses.replace(samples.document_entry(SENDER, content=b"full"), repository_unique_id="9.9.9")
    limited = DocumentEntry(
        id=samples.new_uuid(),
        mime_type="text/plain",
        unique_id=samples.new_oid(),
        patient_id=SENDER,
        limited_metadata=True,
        repository_unique_id="9.9.9",
        home="urn:oid:9.9",
    )
    ss = dataclasses.replace(
        samples.submission_set(SENDER), submission_time=DTM("20250102030405"), content_type_code=None
    )
    ss = dataclasses.replace(ss, limited_metadata=True)
    rplc = samples.relation(v.RPLC, limited.id, samples.new_uuid())
    folder = samples.folder(SENDER)
    return samples.submission(SENDER, [full, limited], folders=[folder], extra=[rplc], ss=ss)


def test_import_rewrites_patient_ids_and_keeps_the_sender_id() -> None:
    sub = delivered_submission()
    out, _ = import_submission(sub, local_patient=PATIENT, defaults=ImportDefaults())
    assert [ss.patient_id for ss in out.submission_sets] == [PATIENT]
    assert [de.patient_id for de in out.document_entries] == [PATIENT, PATIENT]
    assert [de.source_patient_id for de in out.document_entries] == [SENDER, SENDER]
    assert [f.patient_id for f in out.folders] == [PATIENT]


def test_import_fills_limited_metadata_from_the_defaults() -> None:
    defaults = import_defaults_from_mapping({"class_code": "X1^^1.2.3", "language_code": "en-GB"})
    out, _ = import_submission(delivered_submission(), local_patient=PATIENT, defaults=defaults)
    full, limited = out.document_entries
    assert not limited.limited_metadata and not out.submission_sets[0].limited_metadata
    assert limited.class_code is not None and (limited.class_code.code, limited.class_code.scheme) == ("X1", "1.2.3")
    assert limited.type_code == ImportDefaults().type_code
    assert limited.type_code is not None and limited.type_code.scheme == IMPORT_SCHEME
    assert limited.confidentiality_codes == (ImportDefaults().confidentiality_code,)
    assert limited.language_code == "en-GB"
    assert limited.format_code is not None and limited.healthcare_facility_type_code is not None
    assert limited.practice_setting_code is not None
    assert out.submission_sets[0].content_type_code == ImportDefaults().content_type_code
    assert full.class_code == samples.CLASS_CODE  # given codes are kept
    assert full.language_code == "nl-NL"


def test_import_gives_symbolic_ids_and_repoints_associations() -> None:
    sub = delivered_submission()
    out, ids = import_submission(sub, local_patient=PATIENT, defaults=ImportDefaults())
    assert out.submission_sets[0].id == "SubmissionSet01"
    assert [de.id for de in out.document_entries] == ["Document01", "Document02"]
    assert [f.id for f in out.folders] == ["Folder01"]
    assert ids == {sub.document_entries[0].id: "Document01", sub.document_entries[1].id: "Document02"}
    assert all(x.home == "" and x.lid == "" for x in (*out.document_entries, *out.submission_sets))
    pairs = {(a.association_type, a.source, a.target) for a in out.associations}
    assert pairs == {
        (v.HAS_MEMBER, "SubmissionSet01", "Document01"),
        (v.HAS_MEMBER, "SubmissionSet01", "Document02"),
        (v.HAS_MEMBER, "SubmissionSet01", "Folder01"),
    }
    assert sorted(a.id for a in out.associations) == ["Association01", "Association02", "Association03"]
    assert len(sub.associations) == 4  # the RPLC of a document outside the submission was left out


def test_import_drops_an_association_that_points_at_a_dropped_association() -> None:
    sub = delivered_submission()
    rplc = next(a for a in sub.associations if a.association_type == v.RPLC)
    ss_id = sub.submission_sets[0].id
    extra = samples.has_member(ss_id, rplc.id, status="")
    sub = dataclasses.replace(sub, associations=(*sub.associations, extra))
    out, _ = import_submission(sub, local_patient=PATIENT, defaults=ImportDefaults())
    assert len(out.associations) == 3


def test_import_clears_repository_and_fills_creation_time() -> None:
    out, _ = import_submission(delivered_submission(), local_patient=PATIENT, defaults=ImportDefaults())
    full, limited = out.document_entries
    assert full.repository_unique_id == "" and limited.repository_unique_id == ""
    assert limited.creation_time == DTM("20250102030405")  # from submissionTime
    assert full.creation_time is not None and full.creation_time != DTM("20250102030405")


def test_import_creation_time_from_received_without_submission_time() -> None:
    sub = delivered_submission()
    sub = dataclasses.replace(sub, submission_sets=(dataclasses.replace(sub.submission_sets[0], submission_time=None),))
    out, _ = import_submission(sub, local_patient=PATIENT, defaults=ImportDefaults(), received=DTM("20240101"))
    assert out.document_entries[1].creation_time == DTM("20240101")


def test_import_defaults_from_mapping_errors_and_table_form() -> None:
    with pytest.raises(ValueError, match="unknown key"):
        import_defaults_from_mapping({"classcode": "a^^1.2"})
    with pytest.raises(ValueError, match=r"code\^\^codingScheme"):
        import_defaults_from_mapping({"type_code": "no-scheme"})
    with pytest.raises(ValueError, match=r"code\^\^codingScheme"):
        import_defaults_from_mapping({"type_code": "^^1.2.3"})
    with pytest.raises(ValueError, match="table with code"):
        import_defaults_from_mapping({"type_code": {"display": "x"}})
    with pytest.raises(ValueError, match="language_code"):
        import_defaults_from_mapping({"language_code": ""})
    d = import_defaults_from_mapping(
        {"practice_setting_code": {"code": "394802001^^2.16.840.1.113883.6.96", "display": "General medicine"}}
    )
    code = d.practice_setting_code
    assert (code.code, code.scheme) == ("394802001", "2.16.840.1.113883.6.96")
    assert [s.value for s in code.display_name] == ["General medicine"]
    plain = import_defaults_from_mapping({"type_code": "T^^1.2"})
    assert [s.value for s in plain.type_code.display_name] == ["T"]  # the code stands in for a display name
    assert import_defaults_from_mapping({}) == ImportDefaults()


# --- check_open ----------------------------------------------------------------------------------------------


def a_delivery(status: str, local: str) -> Delivery:
    return Delivery(
        id=1,
        reference="D-0123456789",
        mailbox="inbox",
        status=status,
        transport="xdr",
        sender="s",
        patient_id=str(SENDER),
        local_patient_id=local,
        message="",
        urgent=False,
        received=datetime.now(UTC),
        submission_set_uid="1.2",
        recipients=(),
    )


def test_check_open() -> None:
    assert check_open(a_delivery(NEW, str(PATIENT)), None) == str(PATIENT)
    assert check_open(a_delivery(NEW, str(PATIENT)), str(OTHER)) == str(OTHER)
    assert check_open(a_delivery(UNKNOWN_PATIENT, ""), str(OTHER)) == str(OTHER)
    for settled in (ACCEPTED, REJECTED):
        with pytest.raises(ValueError, match=f"is {settled} already"):
            check_open(a_delivery(settled, str(PATIENT)), None)
    with pytest.raises(ValueError, match="xds inbox reconcile D-0123456789"):
        check_open(a_delivery(UNKNOWN_PATIENT, ""), None)


# --- receive and the node's accept / reject ------------------------------------------------------------------


def push(
    patient: CX = PATIENT,
    *,
    data: bytes = b"a pushed report\n",
    recipients: tuple[str, ...] = (),
    unique_id: str = "",
    ss: SubmissionSet | None = None,
    stated_hash: str = "",
) -> tuple[Submission, bytes]:
    de = dataclasses.replace(
        samples.document_entry(patient, content=data, unique_id=unique_id),
        hash=stated_hash,
        size=None,
        repository_unique_id="",
    )
    ss = dataclasses.replace(ss or samples.submission_set(patient), intended_recipients=recipients)
    return samples.submission(patient, [de], ss=ss), data


def deliver(node: Node, sub: Submission, data: bytes) -> Receipt:
    staged = node.documents.stage_bytes([data])
    req = ProvideAndRegisterRequest(submission=sub, documents=((sub.document_entries[0].id, staged),))
    return receive(req, node.recipient_context(), transport="xdr", sender="https://sender.example")


def staged_files(node: Node) -> list[Path]:
    if not node.documents.staging_root.is_dir():
        return []
    return [p for p in node.documents.staging_root.rglob("*") if p.is_file() and p.name != "lock"]


def codes(exc: XDSError) -> list[str]:
    return [e.error_code for e in exc.items()]


@pytest.fixture
def fed(node: Node) -> Node:
    node.store.add_patient(str(PATIENT))
    return node


def with_mailboxes(settings: Settings, *boxes: Mailbox) -> Iterator[Node]:
    n = Node.open(dataclasses.replace(settings, mailboxes=boxes))
    n.store.add_patient(str(PATIENT))
    yield n
    n.close()


@pytest.fixture
def strict_node(settings: Settings) -> Iterator[Node]:
    yield from with_mailboxes(settings, Mailbox(name="a", persons=("1",)))


@pytest.fixture
def two_box_node(settings: Settings) -> Iterator[Node]:
    yield from with_mailboxes(
        settings,
        Mailbox(name="a", persons=("1",), notify=("a@example.org",)),
        Mailbox(name="b", persons=("2",)),
    )


@pytest.fixture
def auto_node(settings: Settings) -> Iterator[Node]:
    yield from with_mailboxes(settings, Mailbox(name="auto", default=True, auto_import=True))


@pytest.mark.parametrize(
    ("clash", "code"),
    [("submission-set", "XDSDuplicateUniqueIdInRegistry"), ("document", "XDSNonIdenticalHash")],
)
def test_accept_refused_by_the_registry_stays_open(fed: Node, clash: str, code: str) -> None:
    ss = samples.submission_set(PATIENT)
    taken = samples.new_oid()
    before = dataclasses.replace(
        samples.document_entry(PATIENT, content=b"registered before", unique_id=taken, repository_unique_id=""),
        hash="",
        size=None,
    )
    iti41.provide_and_register(
        ProvideAndRegisterRequest(
            submission=samples.submission(PATIENT, [before], ss=ss),
            documents=((before.id, fed.documents.stage_bytes([b"registered before"])),),
        ),
        fed.repository_context(),
    )
    if clash == "submission-set":  # the same SubmissionSet uniqueId, another document
        sub, data = push(ss=dataclasses.replace(ss, id=samples.new_uuid()), data=b"pushed later")
    else:  # the same document uniqueId with other bytes
        sub, data = push(unique_id=taken, data=b"other bytes, same uniqueId")
    [d] = deliver(fed, sub, data).deliveries
    with pytest.raises(XDSError) as err:
        fed.accept_delivery(d.reference)
    assert code in codes(err.value)
    got = fed.inbox.get(d.reference)
    assert got is not None and got.status == NEW
    assert got.history[-1].status == "import-failed"
    assert code in got.history[-1].detail
    assert staged_files(fed) == []
    assert fed.documents.exists(d.documents[0].sha256)  # the delivery still holds its content
    assert [r.event for r in fed.audit.listing()].count("inbox-accept") == 0


def test_accept_imports_and_writes_an_audit_record(fed: Node) -> None:
    sub, data = push()
    [d] = deliver(fed, sub, data).deliveries
    done = fed.accept_delivery(d.reference)
    assert done.status == ACCEPTED
    held = fed.store.documents(fed.repository_unique_id, [sub.document_entries[0].unique_id])
    assert len(held) == 1
    assert b"".join(fed.documents.chunks(next(iter(held.values())).content.sha256)) == data
    records = [r for r in fed.audit.listing() if r.event == "inbox-accept"]
    assert len(records) == 1 and records[0].patient_id == str(PATIENT)
    assert d.reference.encode() in records[0].xml
    assert staged_files(fed) == []
    with pytest.raises(ValueError, match="accepted already"):
        fed.accept_delivery(d.reference)


def test_reject_needs_a_reason_and_an_open_delivery(fed: Node) -> None:
    sub, data = push()
    [d] = deliver(fed, sub, data).deliveries
    with pytest.raises(ValueError, match="reason"):
        fed.reject_delivery(d.reference, "  ")
    got = fed.inbox.get(d.reference)
    assert got is not None and got.status == NEW
    fed.accept_delivery(d.reference)
    with pytest.raises(ValueError, match="accepted"):
        fed.reject_delivery(d.reference, "changed my mind")
    after = fed.inbox.get(d.reference)
    assert after is not None and after.status == ACCEPTED
    assert fed.documents.exists(d.documents[0].sha256)
    with pytest.raises(KeyError):
        fed.reject_delivery("D-ffffffffff", "no such")


def test_reject_keeps_content_the_repository_holds(fed: Node) -> None:
    data = b"bytes the repository has as well"
    held = dataclasses.replace(
        samples.document_entry(PATIENT, content=data, repository_unique_id=""), hash="", size=None
    )
    iti41.provide_and_register(
        ProvideAndRegisterRequest(
            submission=samples.submission(PATIENT, [held]),
            documents=((held.id, fed.documents.stage_bytes([data])),),
        ),
        fed.repository_context(),
    )
    sub, _ = push(data=data)
    [d] = deliver(fed, sub, data).deliveries
    sha = hashlib.sha256(data).hexdigest()
    assert d.documents[0].sha256 == sha
    rejected = fed.reject_delivery(d.reference, "duplicate")
    assert rejected.status == REJECTED and rejected.history[-1].detail == "rejected: duplicate"
    assert fed.documents.exists(sha)
    assert [r.event for r in fed.audit.listing()].count("inbox-reject") == 1


def test_receive_refuses_a_malformed_intended_recipient(fed: Node) -> None:
    sub, data = push(recipients=("a|b|c|d",))
    with pytest.raises(XDSErrors) as err:
        deliver(fed, sub, data)
    assert codes(err.value) == ["XDSRegistryMetadataError"]
    assert staged_files(fed) == []
    assert fed.inbox.listing() == []
    assert not fed.documents.exists(hashlib.sha256(data).hexdigest())


def test_receive_without_a_matching_or_default_mailbox(strict_node: Node) -> None:
    sub, data = push(recipients=("|2^Jansen",))
    with pytest.raises(XDSErrors) as err:
        deliver(strict_node, sub, data)
    assert codes(err.value) == ["XDSRegistryMetadataError"]
    assert staged_files(strict_node) == [] and strict_node.inbox.listing() == []
    sub, data = push(recipients=())
    with pytest.raises(XDSErrors):
        deliver(strict_node, sub, data)
    sub, data = push(recipients=("|1^Jansen",))
    [d] = deliver(strict_node, sub, data).deliveries
    assert d.mailbox == "a"


def test_receive_refuses_a_wrong_hash(fed: Node) -> None:
    sub, data = push(stated_hash=hashlib.sha1(b"something else").hexdigest())
    with pytest.raises(XDSErrors) as err:
        deliver(fed, sub, data)
    assert "XDSRepositoryMetadataError" in codes(err.value)
    assert staged_files(fed) == [] and fed.inbox.listing() == []


def test_the_same_submission_set_with_other_content_is_a_duplicate(fed: Node) -> None:
    ss = samples.submission_set(PATIENT)
    uid = samples.new_oid()
    sub, data = push(ss=ss, unique_id=uid)
    [first] = deliver(fed, sub, data).deliveries
    again = deliver(fed, sub, data)
    assert again.deliveries == () and again.resent == (first.reference,)
    changed, other = push(ss=ss, unique_id=uid, data=b"other content")
    with pytest.raises(XDSErrors) as err:
        deliver(fed, changed, other)
    assert codes(err.value) == ["XDSDuplicateUniqueIdInRegistry"]
    assert [d.reference for d in fed.inbox.listing()] == [first.reference]
    assert staged_files(fed) == []
    assert not fed.documents.exists(hashlib.sha256(other).hexdigest())


def test_routed_to_two_mailboxes_is_two_deliveries_sharing_the_content(two_box_node: Node) -> None:
    sub, data = push(recipients=("|1^Jansen", "|2^Pietersen"))
    receipt = deliver(two_box_node, sub, data)
    assert sorted(d.mailbox for d in receipt.deliveries) == ["a", "b"]
    sha = hashlib.sha256(data).hexdigest()
    assert {d.documents[0].sha256 for d in receipt.deliveries} == {sha}
    assert two_box_node.documents.exists(sha)
    assert staged_files(two_box_node) == []
    assert [p[1] for p in two_box_node.inbox.pending_digests()] == ["a"]  # only "a" is notified
    first = next(d for d in receipt.deliveries if d.mailbox == "a")
    two_box_node.reject_delivery(first.reference, "not for us")
    assert two_box_node.documents.exists(sha)  # the other mailbox still holds it


def test_auto_import_of_a_known_patient(auto_node: Node) -> None:
    sub, data = push()
    [d] = deliver(auto_node, sub, data).deliveries
    got = auto_node.inbox.get(d.reference)
    assert got is not None and got.status == ACCEPTED
    held = auto_node.store.documents(auto_node.repository_unique_id, [sub.document_entries[0].unique_id])
    assert len(held) == 1


def test_auto_import_leaves_an_unknown_patient_waiting(auto_node: Node) -> None:
    sub, data = push(SENDER)
    [d] = deliver(auto_node, sub, data).deliveries
    got = auto_node.inbox.get(d.reference)
    assert got is not None and got.status == UNKNOWN_PATIENT
    assert [e.status for e in got.history] == [UNKNOWN_PATIENT]
    assert auto_node.store.documents(auto_node.repository_unique_id, [sub.document_entries[0].unique_id]) == {}


def test_a_resend_of_a_rejected_delivery_leaves_no_unreferenced_content(fed: Node) -> None:
    sub, data = push()
    [d] = deliver(fed, sub, data).deliveries
    sha = d.documents[0].sha256
    fed.reject_delivery(d.reference, "wrong patient")
    assert not fed.documents.exists(sha)
    deliver(fed, sub, data)
    assert not fed.documents.exists(sha) or fed.recorded_contents({sha}) == {sha}


def test_accept_with_missing_content_leaves_no_staged_files(fed: Node) -> None:
    first = dataclasses.replace(samples.document_entry(PATIENT, content=b"one"), hash="", size=None)
    second = dataclasses.replace(samples.document_entry(PATIENT, content=b"two"), hash="", size=None)
    sub = samples.submission(PATIENT, [first, second])
    req = ProvideAndRegisterRequest(
        submission=sub,
        documents=(
            (first.id, fed.documents.stage_bytes([b"one"])),
            (second.id, fed.documents.stage_bytes([b"two"])),
        ),
    )
    [d] = receive(req, fed.recipient_context(), transport="xdr", sender="s").deliveries
    fed.documents.path(hashlib.sha256(b"two").hexdigest()).unlink()
    with pytest.raises(FileNotFoundError):
        fed.accept_delivery(d.reference)
    assert staged_files(fed) == []
