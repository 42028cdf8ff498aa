"""One node: the database, the stores, the node's identities and the service contexts, composed once.

This is adapter-level composition (it opens the database); services receive what they need from here.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text

from registry_schema import migrate
from xds.audit import transactions as audits
from xds.audit.message import OUTCOME_SERIOUS_FAILURE, OUTCOME_SUCCESS, Code
from xds.audit.transactions import AuditNode, DocumentRef
from xds.codelists import CodeLists, parse_codes_xml
from xds.config import ConfigError, Settings
from xds.consent.gate import Gate
from xds.consent.local import LocalConsentPolicy
from xds.consent.model import AccessRequest, ConsentPolicy, Decision
from xds.ebrim.messages import submit_objects_request
from xds.ebrim.parser import parse_xml
from xds.errors import XDSError
from xds.model.hl7 import CX
from xds.model.messages import DocumentContent, ProvideAndRegisterRequest
from xds.recipient import iti41 as recipient_iti41
from xds.recipient.inbox import check_open, import_submission
from xds.recipient.model import ACCEPTED, REJECTED, Delivery, is_dicom
from xds.registry.iti18 import QueryContext
from xds.registry.iti42 import RegistryContext
from xds.registry.patients import patient_known
from xds.registry_client import SoapRegistry
from xds.repository import iti41
from xds.repository.iti41 import RepositoryContext
from xds.repository.iti43 import RetrieveContext
from xds.repository.local import LocalRegistry
from xds.repository.ports import Registry
from xds.repository.remote import Reconciled, RemoteRegistry
from xds.soap.mtom import PartHeaders
from xds.store.audit import SpoolRecord, SqlAuditSpool, first_in_batch, spool_record

if TYPE_CHECKING:
    from xds.audit.syslog import Forwarder
from xds.store.consent import SqlConsentStore
from xds.store.documents import FileDocumentStore, StagedFile
from xds.store.hooks import before_commit
from xds.store.imaging import SqlImaging
from xds.store.inbox import SqlInbox
from xds.store.sql import SqlRegistryStore, make_engine
from xds.validation import Rules

log = logging.getLogger("xds.node")

BSN_OID = "2.16.840.1.113883.2.4.6.3"
"""The assigning authority of the Dutch citizen service number (BSN)."""


def _generated_oid() -> str:
    """A new globally unique OID under the UUID arc 2.25 (ISO/IEC 9834-8)."""
    return f"2.25.{uuid.uuid4().int}"


@dataclass
class Node:
    """A running node's shared state (stateless beyond the database)."""

    settings: Settings
    engine: Engine
    store: SqlRegistryStore
    home_community_id: str
    repository_unique_id: str
    code_lists: CodeLists | None
    documents: FileDocumentStore
    consents: SqlConsentStore
    audit: SqlAuditSpool
    inbox: SqlInbox
    _soap_registry: SoapRegistry | None = None
    _gate: Gate | None = None
    _closers: list[object] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings, *, upgrade: bool = True) -> Node:
        """Open (and by default migrate) the node's database, settle its identities, recover the documents.

        Recovery finishes or undoes what a crashed process left in the document store's staging area (see
        :mod:`xds.store.documents`); live processes' work is left alone, so every worker may run it.
        """
        if not settings.database_url:
            settings.data_path.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.effective_database_url)
        if upgrade:
            migrate.upgrade(engine)
        store = SqlRegistryStore(engine)
        home = settings.home_community_id or store.setting("home_community_id", f"urn:oid:{_generated_oid()}")
        repo = settings.repository_unique_id or store.setting("repository_unique_id", _generated_oid())
        documents = FileDocumentStore(settings.documents_path, max_document_bytes=settings.max_attachment_bytes)
        inbox = SqlInbox(store)

        imaging = SqlImaging(store)

        def recorded(sha256s: Collection[str]) -> set[str]:
            return (
                store.recorded_contents(sha256s) | inbox.recorded_contents(sha256s) | imaging.recorded_contents(sha256s)
            )

        documents.recover(recorded)
        return cls(
            settings,
            engine,
            store,
            home,
            repo,
            _code_lists(settings.code_lists),
            documents,
            SqlConsentStore(store),
            SqlAuditSpool(store),
            inbox,
        )

    def recorded_contents(self, sha256s: Collection[str]) -> set[str]:
        """Which of these content addresses a repository record, a delivery or a stored DICOM instance holds."""
        return (
            self.store.recorded_contents(sha256s)
            | self.inbox.recorded_contents(sha256s)
            | self.imaging.recorded_contents(sha256s)
        )

    @property
    def imaging_source_id(self) -> str:
        """This node's Imaging Document Source id: ``[imaging] source_id``, else its repositoryUniqueId."""
        return self.settings.imaging_source_id or self.repository_unique_id

    @functools.cached_property
    def imaging(self) -> SqlImaging:
        """The index of stored DICOM studies and instances (XDS-I.b)."""
        return SqlImaging(self.store)

    @functools.cached_property
    def audit_node(self) -> AuditNode:
        """This node as its audit records name it."""
        host = self.settings.host if self.settings.host not in ("", "0.0.0.0", "::") else socket.gethostname()
        return AuditNode(
            source_id=f"xds-node {self.home_community_id}",
            enterprise_site_id=self.settings.audit_enterprise_site_id or self.settings.organisation_id,
            host=host,
            endpoint=f"http://{host}:{self.settings.port}",
            process_id=str(os.getpid()),
        )

    def gate(self) -> Gate:
        """The consent gate of this node's configuration (built once; see xds.consent.gate)."""
        if self._gate is None:
            local = LocalConsentPolicy(self.consents.directives, stance=self.settings.consent_default)
            policies: list[ConsentPolicy] = []
            for name in self.settings.consent_policies:
                if name == "local":
                    policies.append(local)
                elif name == "mitz":
                    policies.append(self._mitz())
            self._gate = Gate(
                policies=tuple(policies),
                record=self.record_decision,
                emergency=local if self.settings.consent_emergency else None,
                home_community_id=self.home_community_id,
                data_holder=self.settings.organisation_id,
                bsn=self._bsn if "mitz" in self.settings.consent_policies else _no_bsn,
            )
        return self._gate

    def audit_forwarder(self) -> Forwarder | None:
        """The ATNA forwarder of ``[audit]`` (not started), or None when no Audit Record Repository is set."""
        from xds.audit.syslog import Forwarder, Sender, TlsSender, UdpSender, client_ssl_context

        s = self.settings
        if not s.audit_syslog_host:
            return None
        sender: Sender
        if s.audit_syslog_transport == "udp":
            sender = UdpSender(s.audit_syslog_host, s.audit_syslog_port)
        else:
            try:
                context = client_ssl_context(s.audit_ca_file, s.audit_cert_file, s.audit_key_file)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"[audit] TLS settings: {exc}") from None
            sender = TlsSender(s.audit_syslog_host, s.audit_syslog_port, ssl_context=context)
        return Forwarder(self.audit, sender, hostname=socket.gethostname())

    def _mitz(self) -> ConsentPolicy:
        from xds.consent.mitz import MitzPolicy, MitzSettings

        try:
            mitz_settings = MitzSettings.from_mapping(self.settings.consent_mitz or {})
        except ValueError as exc:
            raise ConfigError(f"[consent.mitz] {exc}") from None
        policy = MitzPolicy(mitz_settings)
        self._closers.append(policy)
        return policy

    def bsn_of(self, patient_id: str) -> str:
        """The verified BSN of a local patient: its own id when it is in the BSN domain, else a BSN alias
        recorded with ``xds patient alias add`` (recorded after the BSN was verified); ``""`` when none."""
        return self._bsn(patient_id)

    def _bsn(self, patient_id: str) -> str:
        """The BSN of a patient id: its own id when it is in the BSN domain, else a BSN alias."""
        for candidate in (patient_id, *self.store.aliases(patient_id)):
            try:
                cx = CX.parse(candidate)
            except ValueError:
                continue
            if cx.assigning_authority.universal_id == BSN_OID:
                return cx.id_number
        return ""

    def record_decision(self, request: AccessRequest, decision: Decision) -> None:
        """Keep a consent decision in the audit spool (and an emergency access for the patient's notice)."""
        msg = audits.consent_decision(node=self.audit_node, request=request, decision=decision)
        self.audit.record([spool_record(msg, "consent")])
        if decision.emergency and first_in_batch(f"emergency {request.patient_id}"):  # one per patient and request
            r = request.requester
            self.consents.record_emergency(
                patient_id=request.patient_id,
                at=request.at,
                requester=" ".join(x for x in (r.user_id, r.user_name) if x) or "(unknown)",
                organisation_id=r.organisation_id,
                reason=decision.reason,
            )

    def registry_context(self) -> RegistryContext:
        """Context for ITI-42."""
        rules = Rules(code_lists=self.code_lists)
        return RegistryContext(store=self.store, rules=rules, patient_policy=self.settings.patient_id_policy)

    def query_context(self) -> QueryContext:
        """Context for ITI-18 (with the consent gate)."""
        return QueryContext(store=self.store, max_results=self.settings.max_query_results, gate=self.gate())

    def registry(self) -> Registry:
        """Where ITI-41 submissions are registered: this node's registry, or ``registry_url`` over SOAP."""
        if self.settings.registry_url:
            return RemoteRegistry(self._remote_registry(), self.store)
        return LocalRegistry(self.registry_context())

    def _remote_registry(self) -> SoapRegistry:
        if self._soap_registry is None:
            self._soap_registry = SoapRegistry(self.settings.registry_url, timeout=self.settings.registry_timeout)
        return self._soap_registry

    def reconcile(self, *, older_than: str | None = None) -> Reconciled:
        """Settle documents left pending by a remote registry whose answer was lost (see xds.repository.remote).

        By default only records older than twice the registry timeout are settled, so requests in flight in
        other workers are left alone.
        """
        if not self.settings.registry_url:
            return Reconciled()
        if older_than is None:
            cutoff = datetime.now(UTC) - timedelta(seconds=2 * self.settings.registry_timeout)
            older_than = cutoff.isoformat(timespec="seconds")
        result = RemoteRegistry(self._remote_registry(), self.store).reconcile(older_than=older_than)
        self.documents.remove_unreferenced([d.content.sha256 for d in result.dropped], self.recorded_contents)
        return result

    def repository_context(self) -> RepositoryContext:
        """Context for ITI-41."""
        return RepositoryContext(
            repository_unique_id=self.repository_unique_id, files=self.documents, registry=self.registry()
        )

    def retrieve_context(self) -> RetrieveContext:
        """Context for ITI-43."""
        return RetrieveContext(
            repository_unique_id=self.repository_unique_id,
            index=self.store,
            files=self.documents,
            max_documents=self.settings.max_retrieve_documents,
            gate=self.gate(),
        )

    def recipient_context(self) -> recipient_iti41.RecipientContext:
        """Context for the Document Recipient (XDR, ITI-80, XDM imports)."""
        return recipient_iti41.RecipientContext(
            mailboxes=self.settings.mailboxes,
            inbox=self.inbox,
            files=self.documents,
            patients=self.store,
            policy=self.settings.patient_id_policy,
            auto_import=self.accept_delivery,
        )

    def accept_delivery(self, reference: str, patient: str | None = None, *, force: bool = False) -> Delivery:
        """Import a delivery into this node's registry and repository (``patient``: reconcile it to that local
        patient first). The delivery becomes accepted in the registry's transaction, with its audit record.

        Raises KeyError (no such delivery), ValueError (settled already, patient unknown or not given) or the
        registry's :class:`~xds.errors.XDSError` (the import was refused; the delivery stays open).
        """
        delivery = self.inbox.get(reference)
        if delivery is None:
            raise KeyError(f"no delivery {reference}")
        local = check_open(delivery, patient)
        if is_dicom(delivery):  # images: filed as a study (one manifest), not registered document by document
            from xds.imaging import accept_study

            accept_study(self, reference, local, confirmed=patient is not None, force=force)
            filed = self.inbox.get(reference)
            assert filed is not None
            return filed
        try:
            local_cx = CX.parse(local)
        except ValueError as exc:
            raise ValueError(f"patient id {local!r}: {exc}") from None
        if patient is not None and not patient_known(local_cx, self.store, self.settings.patient_id_policy):
            raise ValueError(f"patient {patient} is not known here (xds patient add, or a valid BSN id)")
        sub = submit_objects_request(parse_xml(self.inbox.metadata(reference)))
        rewritten, ids = import_submission(sub, local_patient=local_cx, defaults=self.settings.import_defaults)
        staged: list[tuple[str, DocumentContent]] = []
        if patient is not None and patient != delivery.local_patient_id:
            detail = f"reconciled to patient {local} (sender's id {delivery.patient_id or 'none'}) and imported"
        else:
            detail = f"imported for patient {local}"
        record = self.inbox_record(audits.INBOX_ACCEPT, delivery, local, f"{reference}: {detail}")
        done: list[bool] = []

        def settle(conn: Connection) -> None:
            self.inbox.set_status(reference, ACCEPTED, detail, local_patient_id=local, conn=conn)
            self.audit.append([record], conn=conn)
            done.append(True)

        try:
            for d in delivery.documents:
                staged.append((ids[d.entry_id], self.documents.stage_copy(d.sha256, sha1=d.sha1, size=d.size)))
            request = ProvideAndRegisterRequest(submission=rewritten, documents=tuple(staged))
            with before_commit(settle):
                iti41.provide_and_register(request, self.repository_context())
        except Exception as exc:
            self.documents.discard(c for _, c in staged)  # done by the repository already, unless staging failed
            reason = (
                "; ".join(f"{e.error_code}: {e.code_context}" for e in exc.items())
                if isinstance(exc, XDSError)
                else str(exc)
            )
            self.inbox.note(reference, "import-failed", f"import refused: {reason or type(exc).__name__}")
            raise
        if not done:  # a remote registry: the registry's transaction was not ours
            self.inbox.set_status(reference, ACCEPTED, detail, local_patient_id=local)
            self.audit.append([record])
        found = self.inbox.get(reference)
        assert found is not None
        return found

    def push_record(
        self,
        kind: Code,
        *,
        ok: bool = True,
        export: bool = False,
        peer: str = "",
        patient_ids: Sequence[str] = (),
        submission_set_id: str = "",
        documents: Sequence[DocumentRef] = (),
        description: str = "",
        event: str = "",
    ) -> SpoolRecord:
        """The audit record of one step of a push, an import or an export, by this node now
        (:func:`~xds.audit.transactions.push_event`); ``event`` names it in the spool (default ``kind``'s code)."""
        message = audits.push_event(
            node=self.audit_node,
            type_code=kind,
            time=datetime.now(UTC),
            outcome=OUTCOME_SUCCESS if ok else OUTCOME_SERIOUS_FAILURE,
            export=export,
            peer=peer,
            patient_ids=patient_ids,
            submission_set_id=submission_set_id,
            documents=documents,
            description=description,
        )
        return spool_record(message, event or kind.code)

    def inbox_record(self, kind: Code, delivery: Delivery, patient: str, description: str) -> SpoolRecord:
        """The audit record of a decision on a delivery (accept, reject) by this node's operator."""
        return self.push_record(
            kind,
            peer=delivery.sender,
            patient_ids=(patient,),
            submission_set_id=delivery.submission_set_uid,
            description=description,
        )

    def reject_delivery(self, reference: str, reason: str) -> Delivery:
        """Reject an open delivery: it stays listed with the reason, its documents are deleted."""
        delivery = self.inbox.get(reference)
        if delivery is None:
            raise KeyError(f"no delivery {reference}")
        if not reason.strip():
            raise ValueError("a rejection needs a reason")
        patient = delivery.local_patient_id or delivery.patient_id
        record = self.inbox_record(audits.INBOX_REJECT, delivery, patient, f"{reference}: rejected")
        with self.store.writing() as conn:
            self.inbox.set_status(reference, REJECTED, f"rejected: {reason.strip()}", conn=conn)
            self.audit.append([record], conn=conn)
        self.documents.remove_unreferenced([d.sha256 for d in delivery.documents], self.recorded_contents)
        found = self.inbox.get(reference)
        assert found is not None
        return found

    def new_sink(self, _headers: PartHeaders) -> StagedFile:
        """Where an MTOM attachment streams to: a staging file of the document store."""
        return self.documents.new_file()

    def health(self) -> dict[str, object]:
        """Database reachability and schema version."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            revision = migrate.current_revision(self.engine)
            db = "ok"
        except Exception as exc:
            revision, db = None, f"error: {type(exc).__name__}"
        head = migrate.head_revision()
        store = self.documents.health()
        try:
            inbox: dict[str, object] = dict(self.inbox.counts())
        except Exception as exc:
            inbox = {"error": type(exc).__name__}
        ok = db == "ok" and revision == head and store["writable"] is True
        return {
            "status": "ok" if ok else "error",
            "database": db,
            "database_backend": self.engine.dialect.name,
            "schema_version": revision,
            "schema_head": head,
            "home_community_id": self.home_community_id,
            "repository_unique_id": self.repository_unique_id,
            "document_store": store,
            "inbox": inbox,
        }

    def close(self) -> None:
        """Release database connections, outbound connections and this process's staging area."""
        if self._soap_registry is not None:
            self._soap_registry.close()
        for closer in self._closers:
            close = getattr(closer, "close", None)
            if callable(close):
                close()
        self.documents.close()
        self.engine.dispose()


def _no_bsn(_patient_id: str) -> str:
    """No policy asks by BSN: skip the alias lookup."""
    return ""


def _code_lists(path: str) -> CodeLists | None:
    if not path:
        return None
    try:
        return parse_codes_xml(Path(path).read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read code lists {path}: {exc.strerror}") from None


__all__ = ["Node"]
