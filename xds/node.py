"""One node: the database, the stores, the node's identities and the service contexts, composed once.

This is adapter-level composition (it opens the database); services receive what they need from here.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from registry_schema import migrate
from xds.codelists import CodeLists, parse_codes_xml
from xds.config import ConfigError, Settings
from xds.registry.iti18 import QueryContext
from xds.registry.iti42 import RegistryContext
from xds.registry_client import SoapRegistry
from xds.repository.iti41 import RepositoryContext
from xds.repository.iti43 import RetrieveContext
from xds.repository.local import LocalRegistry
from xds.repository.ports import Registry
from xds.repository.remote import Reconciled, RemoteRegistry
from xds.soap.mtom import PartHeaders
from xds.store.documents import FileDocumentStore, StagedFile
from xds.store.sql import SqlRegistryStore, make_engine
from xds.validation import Rules

log = logging.getLogger("xds.node")


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
    _soap_registry: SoapRegistry | None = None

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
        documents.recover(store.recorded_contents)
        return cls(settings, engine, store, home, repo, _code_lists(settings.code_lists), documents)

    def registry_context(self) -> RegistryContext:
        """Context for ITI-42."""
        rules = Rules(code_lists=self.code_lists)
        return RegistryContext(store=self.store, rules=rules, patient_policy=self.settings.patient_id_policy)

    def query_context(self) -> QueryContext:
        """Context for ITI-18."""
        return QueryContext(store=self.store, max_results=self.settings.max_query_results)

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
        self.documents.remove_unreferenced([d.content.sha256 for d in result.dropped], self.store.recorded_contents)
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
        )

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
        }

    def close(self) -> None:
        """Release database connections, outbound connections and this process's staging area."""
        if self._soap_registry is not None:
            self._soap_registry.close()
        self.documents.close()
        self.engine.dispose()


def _code_lists(path: str) -> CodeLists | None:
    if not path:
        return None
    try:
        return parse_codes_xml(Path(path).read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read code lists {path}: {exc.strerror}") from None


__all__ = ["Node"]
