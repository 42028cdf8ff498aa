"""The 14 stored queries as SQL: one function per query, one ``where`` clause per parameter.

Every builder takes a validated :class:`~xds.registry.sq_params.ParsedQuery` and returns stored objects in a
stable order (the main objects by insertion order, then their associations). Values are always bound
parameters. Each clause cites its ITI TF-2 §3.18.4.1.2.3.7 rule.

References
----------
ITI TF-2 §3.18.4.1.2.3.7.1 to §3.18.4.1.2.3.7.14; §3.18.4.1.2.3.6 (coded parameters: OR within a slot,
AND across repeated slots); §3.18.4.1.2.3.4 (time ranges: From is inclusive, To is exclusive).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import cast

from sqlalchemy import ColumnElement, Connection, Select, Table, and_, exists, false, or_, select

from registry_schema.tables import ObjectAuthor, ObjectCode, ObjectReferenceId, RegistryObjectRow
from xds import vocabulary as v
from xds.registry.ports import (
    KIND_ASSOCIATION,
    KIND_DOCUMENT,
    KIND_FOLDER,
    KIND_SUBMISSION_SET,
    StoredObject,
)
from xds.registry.sq_params import ParsedQuery

RO = cast(Table, RegistryObjectRow.__table__)
OC = cast(Table, ObjectCode.__table__)
OA = cast(Table, ObjectAuthor.__table__)
OR = cast(Table, ObjectReferenceId.__table__)

COLUMNS = (
    RO.c.id,
    RO.c.kind,
    RO.c.status,
    RO.c.xml,
    RO.c.lid,
    RO.c.patient_id,
    RO.c.unique_id,
    RO.c.hash,
    RO.c.home,
    RO.c.assoc_type,
    RO.c.source_object,
    RO.c.target_object,
    RO.c.seq,
)
_STATUS_PREFIX = "urn:oasis:names:tc:ebxml-regrep:StatusType:"


def to_objects(rows: Iterable[object]) -> list[StoredObject]:
    """Rows selected with :data:`COLUMNS` as :class:`StoredObject`."""
    return [StoredObject(*row) for row in rows]  # type: ignore[misc]


def _select(*where: ColumnElement[bool]) -> Select[tuple[object, ...]]:
    return select(*COLUMNS).where(*where).order_by(RO.c.seq)


def _run(conn: Connection, *where: ColumnElement[bool]) -> list[StoredObject]:
    return to_objects(conn.execute(_select(*where)))


def _statuses(values: list[str]) -> list[str]:
    return [s if s.startswith("urn:") else _STATUS_PREFIX + s for s in values]


def _codes(q: ParsedQuery, name: str, scheme: str) -> list[ColumnElement[bool]]:
    """§3.18.4.1.2.3.6: each slot is an OR-list; repeated slots are ANDed."""
    terms = q.get_codes(name) or []
    return [
        exists().where(OC.c.object_seq == RO.c.seq, OC.c.scheme == scheme, OC.c.value.in_(values)) for values in terms
    ]


def _time(q: ParsedQuery, prefix: str, column: ColumnElement[str]) -> list[ColumnElement[bool]]:
    """§3.18.4.1.2.3.4: ``...From`` matches value >= From, ``...To`` matches value < To."""
    out: list[ColumnElement[bool]] = []
    lo, hi = q.get_str(prefix + "From"), q.get_str(prefix + "To")
    if lo is not None:
        out.append(column >= lo)
    if hi is not None:
        out.append(column < hi)
    return out


def _authors(patterns: list[str] | None) -> list[ColumnElement[bool]]:
    """AuthorPerson: SQL LIKE with % and _ wildcards (§3.18.4.1.2.3.7.1); several values are ORed."""
    if not patterns:
        return []
    return [exists().where(OA.c.object_seq == RO.c.seq, or_(*(OA.c.person.like(p) for p in patterns)))]


def _de_filters(q: ParsedQuery) -> list[ColumnElement[bool]]:
    """Filters shared by FindDocuments, GetAll and the *AndContents queries."""
    types = q.get_list("$XDSDocumentEntryType") or [v.DE_STABLE]
    return [
        RO.c.object_type.in_(types),
        *_codes(q, "$XDSDocumentEntryFormatCode", v.DE_FORMAT_CODE),
        *_codes(q, "$XDSDocumentEntryConfidentialityCode", v.DE_CONFIDENTIALITY_CODE),
    ]


def find_documents(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.1 FindDocuments (and .14 FindDocumentsByReferenceId)."""
    where = [
        RO.c.kind == KIND_DOCUMENT,
        RO.c.patient_id == q.get_str("$XDSDocumentEntryPatientId"),
        RO.c.status.in_(_statuses(q.get_list("$XDSDocumentEntryStatus") or [])),
        *_de_filters(q),
        *_codes(q, "$XDSDocumentEntryClassCode", v.DE_CLASS_CODE),
        *_codes(q, "$XDSDocumentEntryTypeCode", v.DE_TYPE_CODE),
        *_codes(q, "$XDSDocumentEntryPracticeSettingCode", v.DE_PRACTICE_SETTING_CODE),
        *_codes(q, "$XDSDocumentEntryHealthcareFacilityTypeCode", v.DE_HEALTHCARE_FACILITY_TYPE_CODE),
        *_codes(q, "$XDSDocumentEntryEventCodeList", v.DE_EVENT_CODE),
        *_time(q, "$XDSDocumentEntryCreationTime", RO.c.creation_time),
        *_time(q, "$XDSDocumentEntryServiceStartTime", RO.c.service_start_time),
        *_time(q, "$XDSDocumentEntryServiceStopTime", RO.c.service_stop_time),
        *_authors(q.get_list("$XDSDocumentEntryAuthorPerson")),
    ]
    refs = q.get_list("$XDSDocumentEntryReferenceIdList")
    if refs is not None:
        # §3.18.4.1.2.3.7.14: an entry matches when any of its referenceIdList values is in the list
        where.append(exists().where(OR.c.object_seq == RO.c.seq, OR.c.value.in_(refs)))
    return _run(conn, *where)


def find_submission_sets(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.2 FindSubmissionSets."""
    author = q.get_str("$XDSSubmissionSetAuthorPerson")
    where = [
        RO.c.kind == KIND_SUBMISSION_SET,
        RO.c.patient_id == q.get_str("$XDSSubmissionSetPatientId"),
        RO.c.status.in_(_statuses(q.get_list("$XDSSubmissionSetStatus") or [])),
        *_time(q, "$XDSSubmissionSetSubmissionTime", RO.c.submission_time),
        *_codes(q, "$XDSSubmissionSetContentType", v.SS_CONTENT_TYPE_CODE),
        *_authors([author] if author else None),
    ]
    sources = q.get_list("$XDSSubmissionSetSourceId")
    if sources is not None:
        where.append(RO.c.source_id.in_(sources))
    return _run(conn, *where)


def find_folders(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.3 FindFolders."""
    return _run(
        conn,
        RO.c.kind == KIND_FOLDER,
        RO.c.patient_id == q.get_str("$XDSFolderPatientId"),
        RO.c.status.in_(_statuses(q.get_list("$XDSFolderStatus") or [])),
        *_time(q, "$XDSFolderLastUpdateTime", RO.c.last_update_time),
        *_codes(q, "$XDSFolderCodeList", v.FOLDER_CODE_LIST),
    )


def _links(conn: Connection, objects: list[StoredObject], *, anchors: Collection[str] = ()) -> list[StoredObject]:
    """Associations between the returned objects, and HasMembers from ``anchors`` to those associations."""
    ids = {o.id for o in objects}
    if not ids:
        return []
    found = _run(conn, RO.c.kind == KIND_ASSOCIATION, RO.c.source_object.in_(ids), RO.c.target_object.in_(ids))
    if anchors and found:
        found += _run(
            conn,
            RO.c.kind == KIND_ASSOCIATION,
            RO.c.source_object.in_(list(anchors)),
            RO.c.target_object.in_([a.id for a in found]),
        )
    return found


def get_all(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.4 GetAll: every SubmissionSet, DocumentEntry, Folder of a patient and their links."""
    pid = q.get_str("$patientId")
    sets = _run(
        conn,
        RO.c.kind == KIND_SUBMISSION_SET,
        RO.c.patient_id == pid,
        RO.c.status.in_(_statuses(q.get_list("$XDSSubmissionSetStatus") or [])),
    )
    docs = _run(
        conn,
        RO.c.kind == KIND_DOCUMENT,
        RO.c.patient_id == pid,
        RO.c.status.in_(_statuses(q.get_list("$XDSDocumentEntryStatus") or [])),
        *_de_filters(q),
    )
    folders = _run(
        conn,
        RO.c.kind == KIND_FOLDER,
        RO.c.patient_id == pid,
        RO.c.status.in_(_statuses(q.get_list("$XDSFolderStatus") or [])),
    )
    objects = sets + docs + folders
    return objects + _links(conn, objects, anchors=[s.id for s in sets])


def _by_ids(q: ParsedQuery, kind: str, uuid_param: str, uid_param: str, lid_param: str = "") -> ColumnElement[bool]:
    """GetX queries name objects by entryUUID, uniqueId or (ITI-57) logicalID."""
    clauses: list[ColumnElement[bool]] = []
    for param, column in ((uuid_param, RO.c.id), (uid_param, RO.c.unique_id), (lid_param, RO.c.lid)):
        values = q.get_list(param) if param else None
        single = q.get_str(param) if param else None
        if values is not None:
            clauses.append(column.in_(values))
        elif single is not None:
            clauses.append(column == single)
    return and_(RO.c.kind == kind, or_(*clauses) if clauses else false())


def get_documents(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.5 GetDocuments."""
    return _run(
        conn,
        _by_ids(
            q,
            KIND_DOCUMENT,
            "$XDSDocumentEntryEntryUUID",
            "$XDSDocumentEntryUniqueId",
            "$XDSDocumentEntryLogicalID",
        ),
    )


def get_folders(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.6 GetFolders."""
    return _run(conn, _by_ids(q, KIND_FOLDER, "$XDSFolderEntryUUID", "$XDSFolderUniqueId"))


def _assocs_touching(conn: Connection, ids: Collection[str], types: Collection[str] = ()) -> list[StoredObject]:
    where = [RO.c.kind == KIND_ASSOCIATION, or_(RO.c.source_object.in_(ids), RO.c.target_object.in_(ids))]
    if types:
        where.append(RO.c.assoc_type.in_(types))
    return _run(conn, *where)


def get_associations(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.7 GetAssociations: associations with a listed object at either end."""
    return _assocs_touching(conn, q.get_list("$uuid") or [])


def get_documents_and_associations(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.8 GetDocumentsAndAssociations."""
    docs = _run(conn, _by_ids(q, KIND_DOCUMENT, "$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId"))
    return docs + (_assocs_touching(conn, [d.id for d in docs]) if docs else [])


def get_submission_sets(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.9 GetSubmissionSets: the SubmissionSets holding the listed objects, and the HasMembers."""
    links = _run(
        conn,
        RO.c.kind == KIND_ASSOCIATION,
        RO.c.assoc_type == v.HAS_MEMBER,
        RO.c.target_object.in_(q.get_list("$uuid") or []),
    )
    if not links:
        return []
    sets = _run(conn, RO.c.kind == KIND_SUBMISSION_SET, RO.c.id.in_({a.source for a in links}))
    set_ids = {s.id for s in sets}
    return sets + [a for a in links if a.source in set_ids]


def _members(conn: Connection, q: ParsedQuery, owner: StoredObject, *, folders: bool) -> list[StoredObject]:
    links = _run(conn, RO.c.kind == KIND_ASSOCIATION, RO.c.assoc_type == v.HAS_MEMBER, RO.c.source_object == owner.id)
    targets = [a.target for a in links]
    docs = _run(conn, RO.c.kind == KIND_DOCUMENT, RO.c.id.in_(targets), *_de_filters(q)) if targets else []
    fols = _run(conn, RO.c.kind == KIND_FOLDER, RO.c.id.in_(targets)) if folders and targets else []
    objects = [owner, *docs, *fols]
    if not folders:
        # §3.18.4.1.2.3.7.11: the Folder, its DocumentEntries and the Folder's HasMember associations to them
        kept = {d.id for d in docs}
        return objects + [a for a in links if a.target in kept]
    return objects + _links(conn, objects, anchors=[owner.id])


def get_submission_set_and_contents(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.10 GetSubmissionSetAndContents."""
    found = _run(conn, _by_ids(q, KIND_SUBMISSION_SET, "$XDSSubmissionSetEntryUUID", "$XDSSubmissionSetUniqueId"))
    return _members(conn, q, found[0], folders=True) if found else []


def get_folder_and_contents(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.11 GetFolderAndContents."""
    found = _run(conn, _by_ids(q, KIND_FOLDER, "$XDSFolderEntryUUID", "$XDSFolderUniqueId"))
    return _members(conn, q, found[0], folders=False) if found else []


def get_folders_for_document(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.12 GetFoldersForDocument."""
    docs = _run(conn, _by_ids(q, KIND_DOCUMENT, "$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId"))
    if not docs:
        return []
    links = _run(
        conn,
        RO.c.kind == KIND_ASSOCIATION,
        RO.c.assoc_type == v.HAS_MEMBER,
        RO.c.target_object.in_([d.id for d in docs]),
    )
    sources = [a.source for a in links]
    return _run(conn, RO.c.kind == KIND_FOLDER, RO.c.id.in_(sources)) if sources else []


def get_related_documents(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.13 GetRelatedDocuments: the document, its related documents and the associations.

    "If no related documents are found, no documents are returned" (the original is left out too).
    """
    docs = _run(conn, _by_ids(q, KIND_DOCUMENT, "$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId"))
    if not docs:
        return []
    doc = docs[0]
    links = _assocs_touching(conn, [doc.id], q.get_list("$AssociationTypes") or [])
    others = {a.target if a.source == doc.id else a.source for a in links}
    types = q.get_list("$XDSDocumentEntryType") or [v.DE_STABLE, v.DE_ON_DEMAND]
    related = _run(conn, RO.c.kind == KIND_DOCUMENT, RO.c.id.in_(others), RO.c.object_type.in_(types)) if others else []
    if not related:
        return []
    kept = {r.id for r in related}
    return [doc, *related, *[a for a in links if (a.target if a.source == doc.id else a.source) in kept]]


#: stored query name -> SQL builder (one table, STYLE R3)
BUILDERS: dict[str, Callable[[Connection, ParsedQuery], list[StoredObject]]] = {
    "FindDocuments": find_documents,
    "FindDocumentsByReferenceId": find_documents,
    "FindSubmissionSets": find_submission_sets,
    "FindFolders": find_folders,
    "GetAll": get_all,
    "GetDocuments": get_documents,
    "GetFolders": get_folders,
    "GetAssociations": get_associations,
    "GetDocumentsAndAssociations": get_documents_and_associations,
    "GetSubmissionSets": get_submission_sets,
    "GetSubmissionSetAndContents": get_submission_set_and_contents,
    "GetFolderAndContents": get_folder_and_contents,
    "GetFoldersForDocument": get_folders_for_document,
    "GetRelatedDocuments": get_related_documents,
}


def run(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """Run a validated stored query."""
    return BUILDERS[q.name](conn, q)


__all__ = ["BUILDERS", "COLUMNS", "run", "to_objects"]
