"""The consent store (directives, emergency accesses) and the ATNA audit spool, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from xds.consent.local import COMMUNITY, DENY, EMERGENCY, GRANT, ORGANISATION, Directive
from xds.node import Node
from xds.store.audit import SpoolRecord

PATIENT = "123456782^^^&2.16.840.1.113883.2.4.6.3&ISO"
OTHER = "'; DROP TABLE consent; --%^^^&2.16.840.1.113883.2.4.6.3&ISO"  # SQL-shaped on purpose (R11)
HOME = "urn:oid:1.2.3.4.7"
URA = "01234567"
CET = timezone(timedelta(hours=1))
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def _grant(patient: str = PATIENT, **kw: object) -> Directive:
    return Directive(patient_id=patient, decision=GRANT, **kw)  # type: ignore[arg-type]


# -- consent directives ---------------------------------------------------------------------------------------


def test_add_returns_id_and_recording_time(node: Node) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    first = node.consents.add(_grant())
    second = node.consents.add(_grant(OTHER))
    after = datetime.now(UTC)
    assert first.id > 0 and second.id > first.id
    assert first.recorded is not None and before <= first.recorded <= after
    assert first.recorded.utcoffset() == timedelta(0)
    assert first.revoked is None
    assert node.consents.directives(PATIENT) == [first]


def test_given_recording_time_is_kept(node: Node) -> None:
    stored = node.consents.add(_grant(recorded=T0))
    assert stored.recorded == T0
    assert node.consents.directives(PATIENT)[0].recorded == T0


def test_every_field_round_trips_with_time_zones(node: Node) -> None:
    valid_from = datetime(2026, 12, 1, 8, 0, tzinfo=CET)
    valid_until = datetime(2027, 6, 30, 23, 59, 59, tzinfo=CET)
    stored = node.consents.add(
        Directive(
            patient_id=PATIENT,
            decision=DENY,
            who=ORGANISATION,
            who_id=URA,
            category="57016-8",
            valid_from=valid_from,
            valid_until=valid_until,
            source="paper form 2026-11",
        )
    )
    (read,) = node.consents.directives(PATIENT)
    assert read == stored
    assert (read.decision, read.who, read.who_id, read.category, read.source) == (
        DENY,
        ORGANISATION,
        URA,
        "57016-8",
        "paper form 2026-11",
    )
    assert read.valid_from == valid_from and read.valid_until == valid_until  # the same instants...
    assert read.valid_from is not None and read.valid_from.utcoffset() == timedelta(0)  # ...kept in UTC
    assert read.valid_from.hour == 7


def test_open_validity_reads_back_as_none(node: Node) -> None:
    node.consents.add(_grant(who=COMMUNITY, who_id=HOME))
    (read,) = node.consents.directives(PATIENT)
    assert (read.valid_from, read.valid_until, read.revoked) == (None, None, None)
    assert (read.who, read.who_id, read.category) == (COMMUNITY, HOME, "")


def test_directives_include_revoked_listing_does_not(node: Node) -> None:
    kept = node.consents.add(_grant())
    gone = node.consents.add(Directive(patient_id=PATIENT, decision=DENY, who=EMERGENCY))
    other = node.consents.add(_grant(OTHER))
    assert node.consents.revoke(gone.id, at=T0) is True

    every = node.consents.directives(PATIENT)
    assert [d.id for d in every] == [kept.id, gone.id]
    assert every[1].revoked == T0 and every[0].revoked is None

    assert [d.id for d in node.consents.listing()] == [kept.id, other.id]
    assert [d.id for d in node.consents.listing(include_revoked=True)] == [kept.id, gone.id, other.id]
    assert [d.id for d in node.consents.listing(PATIENT)] == [kept.id]
    assert [d.id for d in node.consents.listing(PATIENT, include_revoked=True)] == [kept.id, gone.id]
    assert [d.id for d in node.consents.listing(OTHER)] == [other.id]
    assert node.consents.listing("999^^^&1.2.3&ISO") == []


def test_revoke_stamps_now_by_default(node: Node) -> None:
    d = node.consents.add(_grant())
    before = datetime.now(UTC).replace(microsecond=0)
    assert node.consents.revoke(d.id)
    (read,) = node.consents.directives(PATIENT)
    assert read.revoked is not None and before <= read.revoked <= datetime.now(UTC)


def test_revoke_twice_or_unknown_is_false(node: Node) -> None:
    d = node.consents.add(_grant())
    assert node.consents.revoke(d.id, at=T0) is True
    assert node.consents.revoke(d.id, at=T0 + timedelta(days=1)) is False
    assert node.consents.directives(PATIENT)[0].revoked == T0  # the first revocation stands
    assert node.consents.revoke(d.id + 1000) is False


# -- emergency accesses ---------------------------------------------------------------------------------------


def test_emergency_accesses_round_trip_and_filter(node: Node) -> None:
    a = node.consents.record_emergency(
        patient_id=PATIENT, at=T0.astimezone(CET), requester="dr. Jansen", organisation_id=URA, reason="unconscious"
    )
    b = node.consents.record_emergency(
        patient_id=OTHER, at=T0 + timedelta(hours=1), requester="dr. Bakker", organisation_id="7654321", reason="ER"
    )
    c = node.consents.record_emergency(
        patient_id=PATIENT, at=T0 + timedelta(hours=2), requester="dr. Smit", organisation_id=URA, reason="trauma"
    )
    assert a < b < c

    every = node.consents.emergency_accesses()
    assert [e.id for e in every] == [a, b, c]
    first = every[0]
    assert (first.patient_id, first.requester, first.organisation_id, first.reason) == (
        PATIENT,
        "dr. Jansen",
        URA,
        "unconscious",
    )
    assert first.at == T0 and first.at.utcoffset() == timedelta(0)
    assert first.notified is None
    assert [e.id for e in node.consents.emergency_accesses(PATIENT)] == [a, c]
    assert [e.id for e in node.consents.emergency_accesses(OTHER)] == [b]
    assert node.consents.emergency_accesses("999^^^&1.2.3&ISO") == []


def test_emergency_accesses_are_ordered_by_time(node: Node) -> None:
    """The docstring promises "by time": an access recorded late (e.g. replayed) still sorts by its time."""
    late = node.consents.record_emergency(
        patient_id=PATIENT, at=T0 + timedelta(hours=1), requester="r", organisation_id=URA, reason="x"
    )
    early = node.consents.record_emergency(patient_id=PATIENT, at=T0, requester="r", organisation_id=URA, reason="x")
    assert [e.id for e in node.consents.emergency_accesses(PATIENT)] == [early, late]


def test_emergency_long_strings_are_truncated(node: Node) -> None:
    node.consents.record_emergency(
        patient_id=PATIENT, at=T0, requester="é" * 600, organisation_id="9" * 200, reason="ß" * 1000
    )
    (read,) = node.consents.emergency_accesses()
    assert (read.requester, read.organisation_id, read.reason) == ("é" * 512, "9" * 128, "ß" * 512)


# -- audit spool ----------------------------------------------------------------------------------------------


def _record(n: int, *, patient: str = "", at: datetime | None = None) -> SpoolRecord:
    return SpoolRecord(
        event=f"ITI-{n}", outcome=n % 2 * 4, xml=f"<AuditMessage n='{n}'/>".encode(), patient_id=patient, recorded=at
    )


def test_append_then_unsent_oldest_first_and_mark_sent(node: Node) -> None:
    assert node.audit.unsent(10) == [] and node.audit.count_unsent() == 0
    node.audit.append([_record(1), _record(2)])
    node.audit.append([_record(3)])
    node.audit.append([])  # nothing to keep
    assert node.audit.count_unsent() == 3

    batch = node.audit.unsent(2)
    assert [xml for _, xml in batch] == [b"<AuditMessage n='1'/>", b"<AuditMessage n='2'/>"]
    ids = [i for i, _ in batch]
    assert ids == sorted(ids)

    node.audit.mark_sent(ids)
    node.audit.mark_sent([])
    assert node.audit.count_unsent() == 1
    assert [xml for _, xml in node.audit.unsent(10)] == [b"<AuditMessage n='3'/>"]
    sent = {r.id: r.sent for r in node.audit.listing()}
    assert all(sent[i] is not None for i in ids) and list(sent.values())[-1] is None


def test_append_in_the_work_transaction_commits_with_it(node: Node) -> None:
    with node.store.writing() as conn:
        node.audit.append([_record(1)], conn=conn)
    assert node.audit.count_unsent() == 1


def test_append_in_the_work_transaction_rolls_back_with_it(node: Node) -> None:
    class WorkFailed(Exception):
        pass

    with pytest.raises(WorkFailed), node.store.writing() as conn:
        node.audit.append([_record(1)], conn=conn)
        conn.execute(text("SELECT 1"))  # the work itself
        raise WorkFailed
    assert node.audit.count_unsent() == 0
    assert node.audit.listing() == []


def test_listing_filters_and_keeps_the_newest(node: Node) -> None:
    node.audit.append([_record(n, patient=PATIENT if n % 2 else OTHER, at=T0 + timedelta(minutes=n)) for n in range(6)])

    every = node.audit.listing()
    assert [r.event for r in every] == [f"ITI-{n}" for n in range(6)]
    assert every[1].outcome == 4 and every[0].outcome == 0
    assert every[0].recorded == T0 and every[0].recorded.utcoffset() == timedelta(0)
    assert every[0].sent is None

    assert [r.event for r in node.audit.listing(limit=2)] == ["ITI-4", "ITI-5"]  # newest two, oldest first
    assert [r.event for r in node.audit.listing(patient_id=PATIENT)] == ["ITI-1", "ITI-3", "ITI-5"]
    assert [r.event for r in node.audit.listing(patient_id=OTHER, limit=2)] == ["ITI-2", "ITI-4"]
    since = (T0 + timedelta(minutes=3)).astimezone(CET)  # the same instant in another zone
    assert [r.event for r in node.audit.listing(since=since)] == ["ITI-3", "ITI-4", "ITI-5"]
    assert [r.event for r in node.audit.listing(patient_id=PATIENT, since=since, limit=1)] == ["ITI-5"]
    assert node.audit.listing(patient_id="999^^^&1.2.3&ISO") == []


def test_records_without_patient_list_with_empty_patient(node: Node) -> None:
    node.audit.append([_record(1)])
    (read,) = node.audit.listing()
    assert read.patient_id == ""
    assert node.audit.listing(patient_id="") == []  # stored as NULL: no patient to match


def test_append_stamps_now_without_a_time(node: Node) -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    node.audit.append([_record(1)])
    (read,) = node.audit.listing()
    assert before <= read.recorded <= datetime.now(UTC)


def test_xml_round_trips_byte_exact(node: Node) -> None:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<AuditMessage>'
        '<ParticipantObjectIdentification ParticipantObjectName="Zoë Ångström \u2013 李小龙 🩺"/>'
        "\r\n</AuditMessage>"
    ).encode()
    node.audit.append([SpoolRecord(event="ITI-43", outcome=0, xml=xml, patient_id=PATIENT)])
    (row,) = node.audit.unsent(1)
    assert row[1] == xml
    assert node.audit.listing()[0].xml == xml


def test_an_overlong_patient_id_does_not_lose_the_record(node: Node, request: pytest.FixtureRequest) -> None:
    """The patient comes from the request (an ITI-18 slot); ``event`` is cut to its column, ``patient_id`` is not."""
    xml = b"<AuditMessage/>"
    node.audit.append([SpoolRecord(event="ITI-18", outcome=4, xml=xml, patient_id="1" * 300 + "^^^&1.2.3&ISO")])
    assert [x for _, x in node.audit.unsent(10)] == [xml]
