"""The 14 stored queries as SQL: one function per query, one clause per parameter.

Theory of operation: a query function describes its ``WHERE`` clause with a :class:`_Where`, one call per
parameter, each call citing its ITI TF-2 §3.18.4.1.2.3.7 rule. ``_Where`` records the *shape* of the clause
(which columns, which operators, how many values for LIKE lists, how many AND-ed code terms) apart from the
values, which are always bound parameters (lists are expanding ``IN`` parameters). The SQL statement is built
once per shape and kept in a small cache, so a busy registry does not rebuild the same expression tree for every
request. Every function returns stored objects in a stable order (the main objects by insertion order, then
their associations).

References
----------
ITI TF-2 §3.18.4.1.2.3.7.1 to §3.18.4.1.2.3.7.14; §3.18.4.1.2.3.6 (coded parameters: OR within a slot,
AND across repeated slots); §3.18.4.1.2.3.4 (time ranges: From is inclusive, To is exclusive).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Select, Table, bindparam, exists, or_, select

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
_CACHE_SIZE = 512
_cache: OrderedDict[tuple[tuple[Any, ...], ...], Select[Any]] = OrderedDict()


def to_objects(rows: Iterable[Any]) -> list[StoredObject]:
    """Rows selected with :data:`COLUMNS` as :class:`StoredObject`."""
    return [StoredObject(*row) for row in rows]


class _Where:
    """A conjunction of clauses over ``registry_object``: shape and bound values kept apart."""

    def __init__(self, kind: str) -> None:
        self.shape: list[tuple[Any, ...]] = [("kind", kind)]
        self.values: dict[str, Any] = {}

    def _bind(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return name

    def eq(self, column: str, value: Any) -> _Where:
        self.shape.append(("eq", column, self._bind(value)))
        return self

    def in_(self, column: str, values: Collection[str]) -> _Where:
        self.shape.append(("in", column, self._bind(list(values))))
        return self

    def either_in(self, first: str, second: str, values: Collection[str]) -> _Where:
        """``first IN values OR second IN values``."""
        both = list(values)
        self.shape.append(("either", first, second, self._bind(both), self._bind(both)))
        return self

    def time_range(self, q: ParsedQuery, prefix: str, column: str) -> _Where:
        """§3.18.4.1.2.3.4: ``...From`` matches value >= From, ``...To`` matches value < To."""
        lo, hi = q.get_str(prefix + "From"), q.get_str(prefix + "To")
        if lo is not None:
            self.shape.append(("ge", column, self._bind(lo)))
        if hi is not None:
            self.shape.append(("lt", column, self._bind(hi)))
        return self

    def codes(self, q: ParsedQuery, name: str, scheme: str) -> _Where:
        """§3.18.4.1.2.3.6: each slot is an OR-list of ``code^^scheme``; repeated slots are ANDed."""
        for values in q.get_codes(name) or []:
            self.shape.append(("code", self._bind(scheme), self._bind(values)))
        return self

    def authors(self, patterns: list[str] | None) -> _Where:
        """AuthorPerson: SQL LIKE with % and _ wildcards (§3.18.4.1.2.3.7.1); several values are ORed."""
        if patterns:
            self.shape.append(("like", *(self._bind(p) for p in patterns)))
        return self

    def references(self, values: list[str] | None) -> _Where:
        """§3.18.4.1.2.3.7.14: an entry matches when any of its referenceIdList values is listed."""
        if values is not None:
            self.shape.append(("ref", self._bind(values)))
        return self

    def de_filters(self, q: ParsedQuery, default_types: tuple[str, ...] = (v.DE_STABLE,)) -> _Where:
        """Filters shared by FindDocuments, GetAll and the *AndContents queries (objectType stable by default)."""
        self.in_("object_type", q.get_list("$XDSDocumentEntryType") or default_types)
        self.codes(q, "$XDSDocumentEntryFormatCode", v.DE_FORMAT_CODE)
        return self.codes(q, "$XDSDocumentEntryConfidentialityCode", v.DE_CONFIDENTIALITY_CODE)

    def run(self, conn: Connection) -> list[StoredObject]:
        key = tuple(self.shape)
        stmt = _cache.get(key)
        if stmt is None:
            stmt = cast("Select[Any]", select(*COLUMNS).where(*(_clause(i) for i in self.shape)).order_by(RO.c.seq))
            _cache[key] = stmt
            if len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        return to_objects(conn.execute(stmt, self.values).all())


def _col(name: str) -> ColumnElement[Any]:
    return cast("ColumnElement[Any]", RO.c[name])


def _clause(item: tuple[Any, ...]) -> ColumnElement[bool]:
    """The SQL of one recorded clause, with bind parameters in place of values."""
    op = item[0]
    if op == "kind":
        return _col("kind") == str(item[1])
    if op == "eq":
        return _col(item[1]) == bindparam(item[2])
    if op == "in":
        return _col(item[1]).in_(bindparam(item[2], expanding=True))
    if op == "either":
        first = _col(item[1]).in_(bindparam(item[3], expanding=True))
        return or_(first, _col(item[2]).in_(bindparam(item[4], expanding=True)))
    if op == "ge":
        return _col(item[1]) >= bindparam(item[2])
    if op == "lt":
        return _col(item[1]) < bindparam(item[2])
    if op == "code":
        return exists().where(
            OC.c.object_seq == RO.c.seq,
            OC.c.scheme == bindparam(item[1]),
            OC.c.value.in_(bindparam(item[2], expanding=True)),
        )
    if op == "like":
        return exists().where(OA.c.object_seq == RO.c.seq, or_(*(OA.c.person.like(bindparam(p)) for p in item[1:])))
    return exists().where(OR.c.object_seq == RO.c.seq, OR.c.value.in_(bindparam(item[1], expanding=True)))


def _statuses(values: list[str] | None) -> list[str]:
    return [s if s.startswith("urn:") else _STATUS_PREFIX + s for s in values or []]


def find_documents(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.1 FindDocuments (and .14 FindDocumentsByReferenceId)."""
    return (
        _Where(KIND_DOCUMENT)
        .eq("patient_id", q.get_str("$XDSDocumentEntryPatientId"))
        .in_("status", _statuses(q.get_list("$XDSDocumentEntryStatus")))
        .de_filters(q)
        .codes(q, "$XDSDocumentEntryClassCode", v.DE_CLASS_CODE)
        .codes(q, "$XDSDocumentEntryTypeCode", v.DE_TYPE_CODE)
        .codes(q, "$XDSDocumentEntryPracticeSettingCode", v.DE_PRACTICE_SETTING_CODE)
        .codes(q, "$XDSDocumentEntryHealthcareFacilityTypeCode", v.DE_HEALTHCARE_FACILITY_TYPE_CODE)
        .codes(q, "$XDSDocumentEntryEventCodeList", v.DE_EVENT_CODE)
        .time_range(q, "$XDSDocumentEntryCreationTime", "creation_time")
        .time_range(q, "$XDSDocumentEntryServiceStartTime", "service_start_time")
        .time_range(q, "$XDSDocumentEntryServiceStopTime", "service_stop_time")
        .authors(q.get_list("$XDSDocumentEntryAuthorPerson"))
        .references(q.get_list("$XDSDocumentEntryReferenceIdList"))
        .run(conn)
    )


def find_submission_sets(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.2 FindSubmissionSets."""
    author = q.get_str("$XDSSubmissionSetAuthorPerson")
    where = (
        _Where(KIND_SUBMISSION_SET)
        .eq("patient_id", q.get_str("$XDSSubmissionSetPatientId"))
        .in_("status", _statuses(q.get_list("$XDSSubmissionSetStatus")))
        .time_range(q, "$XDSSubmissionSetSubmissionTime", "submission_time")
        .codes(q, "$XDSSubmissionSetContentType", v.SS_CONTENT_TYPE_CODE)
        .authors([author] if author else None)
    )
    sources = q.get_list("$XDSSubmissionSetSourceId")
    if sources is not None:
        where.in_("source_id", sources)
    return where.run(conn)


def find_folders(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.3 FindFolders."""
    return (
        _Where(KIND_FOLDER)
        .eq("patient_id", q.get_str("$XDSFolderPatientId"))
        .in_("status", _statuses(q.get_list("$XDSFolderStatus")))
        .time_range(q, "$XDSFolderLastUpdateTime", "last_update_time")
        .codes(q, "$XDSFolderCodeList", v.FOLDER_CODE_LIST)
        .run(conn)
    )


def _assocs(
    conn: Connection, *, sources: Collection[str] = (), targets: Collection[str] = (), types: Collection[str] = ()
) -> list[StoredObject]:
    """Associations from ``sources`` (all, when empty) to ``targets`` (all, when empty), of ``types``."""
    where = _Where(KIND_ASSOCIATION)
    if sources:
        where.in_("source_object", sources)
    if targets:
        where.in_("target_object", targets)
    if types:
        where.in_("assoc_type", types)
    return where.run(conn)


def _links(conn: Connection, objects: list[StoredObject], *, anchors: Collection[str] = ()) -> list[StoredObject]:
    """Associations between the returned objects, and HasMembers from ``anchors`` to those associations."""
    ids = [o.id for o in objects]
    if not ids:
        return []
    found = _assocs(conn, sources=ids, targets=ids)
    if anchors and found:
        found += _assocs(conn, sources=anchors, targets=[a.id for a in found])
    return found


def get_all(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.4 GetAll: every SubmissionSet, DocumentEntry, Folder of a patient and their links."""
    pid = q.get_str("$patientId")
    sets = (
        _Where(KIND_SUBMISSION_SET)
        .eq("patient_id", pid)
        .in_("status", _statuses(q.get_list("$XDSSubmissionSetStatus")))
        .run(conn)
    )
    docs = (
        _Where(KIND_DOCUMENT)
        .eq("patient_id", pid)
        .in_("status", _statuses(q.get_list("$XDSDocumentEntryStatus")))
        .de_filters(q)
        .run(conn)
    )
    folders = (
        _Where(KIND_FOLDER).eq("patient_id", pid).in_("status", _statuses(q.get_list("$XDSFolderStatus"))).run(conn)
    )
    objects = sets + docs + folders
    return objects + _links(conn, objects, anchors=[s.id for s in sets])


def _by_ids(conn: Connection, q: ParsedQuery, kind: str, *params: tuple[str, str]) -> list[StoredObject]:
    """GetX queries name objects by entryUUID, uniqueId or (ITI-57) logicalID: ``(parameter, column)`` pairs.

    The parameter table allows exactly one of them (:mod:`xds.registry.sq_params`).
    """
    for param, column in params:
        values = q.get_list(param)
        single = q.get_str(param)
        if values is not None:
            return _Where(kind).in_(column, values).run(conn)
        if single is not None:
            return _Where(kind).eq(column, single).run(conn)
    return []


_DOC_IDS = (("$XDSDocumentEntryEntryUUID", "id"), ("$XDSDocumentEntryUniqueId", "unique_id"))
_FOLDER_IDS = (("$XDSFolderEntryUUID", "id"), ("$XDSFolderUniqueId", "unique_id"))
_SET_IDS = (("$XDSSubmissionSetEntryUUID", "id"), ("$XDSSubmissionSetUniqueId", "unique_id"))


def get_documents(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.5 GetDocuments."""
    return _by_ids(conn, q, KIND_DOCUMENT, *_DOC_IDS, ("$XDSDocumentEntryLogicalID", "lid"))


def get_folders(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.6 GetFolders."""
    return _by_ids(conn, q, KIND_FOLDER, *_FOLDER_IDS)


def _assocs_touching(conn: Connection, ids: Collection[str], types: Collection[str] = ()) -> list[StoredObject]:
    """Associations with one of ``ids`` at either end."""
    where = _Where(KIND_ASSOCIATION).either_in("source_object", "target_object", ids)
    if types:
        where.in_("assoc_type", types)
    return where.run(conn)


def get_associations(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.7 GetAssociations: associations with a listed object at either end."""
    return _assocs_touching(conn, q.get_list("$uuid") or [])


def get_documents_and_associations(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.8 GetDocumentsAndAssociations."""
    docs = _by_ids(conn, q, KIND_DOCUMENT, *_DOC_IDS)
    return docs + (_assocs_touching(conn, [d.id for d in docs]) if docs else [])


def get_submission_sets(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.9 GetSubmissionSets: the SubmissionSets holding the listed objects, and the HasMembers."""
    links = _assocs(conn, targets=q.get_list("$uuid") or [], types=[v.HAS_MEMBER])
    if not links:
        return []
    sets = _Where(KIND_SUBMISSION_SET).in_("id", {a.source or "" for a in links}).run(conn)
    set_ids = {s.id for s in sets}
    return sets + [a for a in links if a.source in set_ids]


def _members(conn: Connection, q: ParsedQuery, owner: StoredObject, *, folders: bool) -> list[StoredObject]:
    links = _assocs(conn, sources=[owner.id], types=[v.HAS_MEMBER])
    targets = [a.target or "" for a in links]
    docs = _Where(KIND_DOCUMENT).in_("id", targets).de_filters(q).run(conn) if targets else []
    fols = _Where(KIND_FOLDER).in_("id", targets).run(conn) if folders and targets else []
    objects = [owner, *docs, *fols]
    if not folders:
        # §3.18.4.1.2.3.7.11: the Folder, its DocumentEntries and the Folder's HasMember associations to them
        kept = {d.id for d in docs}
        return objects + [a for a in links if a.target in kept]
    return objects + _links(conn, objects, anchors=[owner.id])


def get_submission_set_and_contents(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.10 GetSubmissionSetAndContents."""
    found = _by_ids(conn, q, KIND_SUBMISSION_SET, *_SET_IDS)
    return _members(conn, q, found[0], folders=True) if found else []


def get_folder_and_contents(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.11 GetFolderAndContents."""
    found = _by_ids(conn, q, KIND_FOLDER, *_FOLDER_IDS)
    return _members(conn, q, found[0], folders=False) if found else []


def get_folders_for_document(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.12 GetFoldersForDocument."""
    docs = _by_ids(conn, q, KIND_DOCUMENT, *_DOC_IDS)
    if not docs:
        return []
    links = _assocs(conn, targets=[d.id for d in docs], types=[v.HAS_MEMBER])
    sources = [a.source or "" for a in links]
    return _Where(KIND_FOLDER).in_("id", sources).run(conn) if sources else []


def get_related_documents(conn: Connection, q: ParsedQuery) -> list[StoredObject]:
    """§3.18.4.1.2.3.7.13 GetRelatedDocuments: the document, its related documents and the associations.

    "If no related documents are found, no documents are returned" (the original is left out too).
    """
    docs = _by_ids(conn, q, KIND_DOCUMENT, *_DOC_IDS)
    if not docs:
        return []
    doc = docs[0]
    links = _assocs_touching(conn, [doc.id], q.get_list("$AssociationTypes") or [])
    others = {(a.target if a.source == doc.id else a.source) or "" for a in links}
    types = q.get_list("$XDSDocumentEntryType") or [v.DE_STABLE, v.DE_ON_DEMAND]
    related = _Where(KIND_DOCUMENT).in_("id", others).in_("object_type", types).run(conn) if others else []
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
