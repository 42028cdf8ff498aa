"""ITI-42 Register Document Set-b (ITI TF-2 §3.42), Document Registry side.

Theory of operation: a submission is validated as a whole (:mod:`xds.validation`), its symbolic ids are
replaced by ``urn:uuid:`` values, and then, inside one store transaction, the rules that need the registry's
content run: the patient is known, ids and uniqueIds are new (a DocumentEntry resubmitted with an identical
hash is accepted and reuses the stored entry), association ends resolve, relationship targets are Approved
DocumentEntries of the same patient, RPLC/XFRM_RPLC deprecate their target and the replacement joins the
target's folders, and every folder that gains a document gets a new lastUpdateTime. Any failure rolls the
whole transaction back.

References
----------
ITI TF-2 §3.42.4.1.3 (expected actions), ITI TF-3 §4.1.6 to §4.1.9 (document relationships, folders),
§4.2.2 (associations), §4.2.4.1 (error codes).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from xds import vocabulary as v
from xds.ebrim import decode
from xds.ebrim.parser import parse_xml
from xds.errors import (
    DuplicateUniqueIdInRegistry,
    MetadataError,
    NonIdenticalHash,
    PatientIdDoesNotMatch,
    UnknownPatientId,
    UnresolvedReference,
    XDSError,
    XDSErrors,
)
from xds.model.hl7 import DTM
from xds.model.messages import RegistryResponse
from xds.model.metadata import Association, DocumentEntry, Folder, RegistryObject, Submission, SubmissionSet
from xds.registry.patients import PatientPolicy, patient_known
from xds.registry.ports import KIND_DOCUMENT, KIND_FOLDER, RegistryStore, RegistryTx, StoredObject
from xds.registry.transactions import Transaction
from xds.validation import Rules, validate_submission

TRANSACTION = Transaction(
    id="ITI-42",
    title="Register Document Set-b",
    action=v.ACTION_REGISTER,
    response_action=v.ACTION_REGISTER_RESPONSE,
    mtom=False,
    is_query=False,
)


@dataclass(frozen=True, slots=True)
class RegistryContext:
    """What ITI-42 needs besides the submission."""

    store: RegistryStore
    rules: Rules
    patient_policy: PatientPolicy = PatientPolicy.REGISTERED
    now: Callable[[], str] = lambda: utc_now()
    new_uuid: Callable[[], str] = lambda: f"urn:uuid:{uuid.uuid4()}"


def utc_now() -> str:
    """The current UTC time as a seconds-precision DTM."""
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


Within = Callable[[RegistryTx, Submission], None]
"""Work to commit together with a registration (the repository records its documents this way)."""


def register(sub: Submission, ctx: RegistryContext, *, within: Within | None = None) -> RegistryResponse:
    """Register a submission, all or nothing; raise :class:`XDSErrors` listing every problem.

    ``within`` runs inside the same transaction after the registry's own rules passed, with the submission
    as stored (final ids); whatever it raises rolls the whole registration back.
    """
    errors = validate_submission(sub, ctx.rules)
    if errors:
        raise XDSErrors(errors)
    sub = assign_ids(sub, ctx.new_uuid)
    with ctx.store.transaction() as tx:
        _Registration(sub, tx, ctx).run()
        if within is not None:
            within(tx, sub)
    return RegistryResponse()


def assign_ids(sub: Submission, new_uuid: Callable[[], str]) -> Submission:
    """Replace symbolic ids by new ``urn:uuid:`` values, everywhere they are referenced."""
    mapping = {o.id: new_uuid() for o in sub.objects() if not o.id.startswith("urn:uuid:")}

    def fix(o: RegistryObject) -> RegistryObject:
        new_id = mapping.get(o.id, o.id)
        changes: dict[str, object] = {"id": new_id, "lid": new_id if not o.lid or o.lid == o.id else o.lid}
        if isinstance(o, Association):
            changes["source"] = mapping.get(o.source, o.source)
            changes["target"] = mapping.get(o.target, o.target)
        return dataclasses.replace(o, **changes)  # type: ignore[arg-type]

    return Submission(
        submission_sets=tuple(fix(o) for o in sub.submission_sets),  # type: ignore[misc]
        document_entries=tuple(fix(o) for o in sub.document_entries),  # type: ignore[misc]
        folders=tuple(fix(o) for o in sub.folders),  # type: ignore[misc]
        associations=tuple(fix(o) for o in sub.associations),  # type: ignore[misc]
        object_refs=sub.object_refs,
    )


class _Registration:
    """The in-transaction half of ITI-42."""

    def __init__(self, sub: Submission, tx: RegistryTx, ctx: RegistryContext) -> None:
        self.tx, self.ctx = tx, ctx
        self.ss: SubmissionSet = sub.submission_sets[0]
        self.entries = list(sub.document_entries)
        self.folders = list(sub.folders)
        self.assocs = list(sub.associations)
        self.now = ctx.now()
        self.errors: list[XDSError] = []
        self.updates: dict[str, RegistryObject] = {}
        self.reused: set[str] = set()

    def run(self) -> None:
        self._patient()
        self._fail_if_errors()
        self._new_ids()
        self._unique_ids()
        self._fail_if_errors()
        stored = self._resolve()
        self._fail_if_errors()
        self._relationships(stored)
        self._folder_members(stored)
        self._fail_if_errors()
        self.tx.insert(self._approved(), reused_unique_ids=self.reused)
        for obj in self.updates.values():
            self.tx.replace(obj)

    def _fail_if_errors(self) -> None:
        if self.errors:
            raise XDSErrors(self.errors)

    def _patient(self) -> None:
        pid = self.ss.patient_id
        if pid is not None and not patient_known(pid, self.tx, self.ctx.patient_policy):
            self.errors.append(UnknownPatientId(f"patient id {pid} is not known to this registry", location=str(pid)))

    def _new_ids(self) -> None:
        ids = [o.id for o in (self.ss, *self.entries, *self.folders, *self.assocs)]
        for oid in self.tx.objects_by_id(ids):
            self.errors.append(MetadataError(f"object id {oid} is already in the registry", location=oid))

    def _unique_ids(self) -> None:
        """ITI TF-3 §4.2.4.1: XDSDuplicateUniqueIdInRegistry, or XDSNonIdenticalHash for a document."""
        objs: list[SubmissionSet | DocumentEntry | Folder] = [self.ss, *self.entries, *self.folders]
        mine = {o.unique_id: o for o in objs}
        for old in self.tx.objects_by_unique_id(list(mine)):
            new = mine[old.unique_id or ""]
            if isinstance(new, DocumentEntry) and old.kind == KIND_DOCUMENT:
                if (old.hash or "").lower() == new.hash.lower() and new.hash:
                    self.reused.add(new.unique_id)  # the same document registered again: accepted
                    continue
                self.errors.append(
                    NonIdenticalHash(
                        f"DocumentEntry uniqueId {new.unique_id} is registered with a different hash",
                        location=new.unique_id,
                    )
                )
                continue
            self.errors.append(
                DuplicateUniqueIdInRegistry(
                    f"uniqueId {new.unique_id} is already used in the registry", location=new.unique_id
                )
            )

    def _resolve(self) -> dict[str, StoredObject]:
        local = {o.id for o in (self.ss, *self.entries, *self.folders, *self.assocs)}
        wanted = {end for a in self.assocs for end in (a.source, a.target) if end not in local}
        stored = self.tx.objects_by_id(wanted) if wanted else {}
        for end in sorted(wanted - stored.keys()):
            self.errors.append(
                UnresolvedReference(
                    f"association end {end} is neither in the submission nor in the registry", location=end
                )
            )
        return stored

    def _doc(self, oid: str, stored: dict[str, StoredObject]) -> DocumentEntry | None:
        for de in self.entries:
            if de.id == oid:
                return de
        obj = stored.get(oid)
        if obj is not None and obj.kind == KIND_DOCUMENT:
            return self._current(obj)  # type: ignore[return-value]
        return None

    def _current(self, obj: StoredObject) -> RegistryObject:
        if obj.id in self.updates:
            return self.updates[obj.id]
        return decode.any_object(parse_xml(obj.xml.encode()))

    def _relationships(self, stored: dict[str, StoredObject]) -> None:
        """ITI TF-3 §4.1.6: targets of RPLC/APND/XFRM/XFRM_RPLC/signs are Approved DocumentEntries."""
        for a in [a for a in self.assocs if a.association_type in v.RELATIONSHIP_TYPES]:
            source, target = self._doc(a.source, stored), self._doc(a.target, stored)
            if target is None or source is None:
                self.errors.append(
                    MetadataError(
                        f"Association {a.id}: {a.association_type} must link two DocumentEntries",
                        location=a.id,
                    )
                )
                continue
            if a.target in stored and target.status != v.APPROVED and a.association_type != v.SIGNS:
                self.errors.append(
                    MetadataError(
                        f"Association {a.id}: target {a.target} is not Approved (status {target.status})",
                        location=a.target,
                    )
                )
                continue
            if source.patient_id != target.patient_id:
                self.errors.append(
                    PatientIdDoesNotMatch(
                        f"Association {a.id}: {source.id} and {target.id} belong to different patients",
                        location=a.id,
                    )
                )
                continue
            if a.association_type in v.REPLACING_TYPES and a.target in stored:
                self.updates[a.target] = dataclasses.replace(target, status=v.DEPRECATED)
                self._join_folders(a.source, a.target)

    def _join_folders(self, new_doc: str, original: str) -> None:
        """ITI TF-3 §4.1.8: the replacement becomes a member of every folder the original is in."""
        links = self.tx.associations(targets=[original], types=[v.HAS_MEMBER])
        owners = self.tx.objects_by_id([link.source or "" for link in links])
        for folder in owners.values():
            if folder.kind == KIND_FOLDER:
                self.assocs.append(
                    Association(
                        id=self.ctx.new_uuid(),
                        association_type=v.HAS_MEMBER,
                        source=folder.id,
                        target=new_doc,
                    )
                )

    def _folder_members(self, stored: dict[str, StoredObject]) -> None:
        """Folder membership: same patient (XDSPatientIdDoesNotMatch); folder lastUpdateTime is refreshed."""
        local_folders = {f.id: f for f in self.folders}
        for a in self.assocs:
            if a.association_type != v.HAS_MEMBER:
                continue
            folder: RegistryObject | None = local_folders.get(a.source)
            if folder is None and a.source in stored and stored[a.source].kind == KIND_FOLDER:
                folder = self._current(stored[a.source])
            if not isinstance(folder, Folder):
                continue
            doc = self._doc(a.target, stored)
            if doc is None:
                self.errors.append(
                    MetadataError(
                        f"Association {a.id}: a Folder's HasMember must target a DocumentEntry", location=a.id
                    )
                )
                continue
            if doc.patient_id != folder.patient_id:
                self.errors.append(
                    PatientIdDoesNotMatch(
                        f"DocumentEntry {doc.id} and Folder {folder.id} belong to different patients",
                        location=a.id,
                    )
                )
            elif folder.id not in local_folders:
                self.updates[folder.id] = dataclasses.replace(folder, last_update_time=DTM(self.now))

    def _approved(self) -> Sequence[RegistryObject]:
        out: list[RegistryObject] = [dataclasses.replace(self.ss, status=v.APPROVED, version_name="1")]
        out += [dataclasses.replace(de, status=v.APPROVED, version_name="1") for de in self.entries]
        out += [
            dataclasses.replace(f, status=v.APPROVED, version_name="1", last_update_time=DTM(self.now))
            for f in self.folders
        ]
        out += [dataclasses.replace(a, status=v.APPROVED) for a in self.assocs]
        return out


__all__ = ["TRANSACTION", "RegistryContext", "Within", "assign_ids", "register"]
