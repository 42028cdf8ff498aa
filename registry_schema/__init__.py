"""The persistent schema of the registry: SQLAlchemy 2.0 tables and Alembic migrations."""

from registry_schema.tables import (
    Base,
    CommunityEntry,
    NodeSetting,
    ObjectAuthor,
    ObjectCode,
    ObjectReferenceId,
    Patient,
    PatientAlias,
    RegistryObjectRow,
    RepositoryDocument,
    UniqueIdClaim,
)

__all__ = [
    "Base",
    "CommunityEntry",
    "NodeSetting",
    "ObjectAuthor",
    "ObjectCode",
    "ObjectReferenceId",
    "Patient",
    "PatientAlias",
    "RegistryObjectRow",
    "RepositoryDocument",
    "UniqueIdClaim",
]
