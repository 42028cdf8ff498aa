"""Registry tables: one row per registry object with its ebRIM XML and promoted search keys.

Theory of operation (ARCHITECTURE.md §4): every object keeps its full ebRIM XML in ``xml`` so LeafClass answers
are concatenations of stored bytes. Everything a stored query filters on is promoted to an indexed column of
``registry_object`` (patient, status, kind, uniqueId, times, association ends) or to a side table (coded
values, author persons, referenceIdList values), so no query self-joins a generic slot table.

Times are stored as 14-digit padded DTM strings (``YYYYMMDDhhmmss``), which order lexically.

References
----------
ITI TF-2 §3.18.4.1.2.3.7 (the parameters each stored query filters on).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, MetaData, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_ID = String(256)
_LONG = String(2048)  # URLs and file paths
_KEY = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base with a fixed constraint naming convention (stable migrations)."""

    metadata = MetaData(naming_convention=_NAMING)


class RegistryObjectRow(Base):
    """One DocumentEntry (``DE``), SubmissionSet (``SS``), Folder (``FD``) or Association (``AS``)."""

    __tablename__ = "registry_object"

    seq: Mapped[int] = mapped_column(_KEY, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(_ID, unique=True)
    lid: Mapped[str] = mapped_column(_ID, index=True)
    kind: Mapped[str] = mapped_column(String(2))
    object_type: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    patient_id: Mapped[str | None] = mapped_column(_ID)
    unique_id: Mapped[str | None] = mapped_column(String(128))
    hash: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    repository_unique_id: Mapped[str | None] = mapped_column(String(64))
    home: Mapped[str | None] = mapped_column(String(128))
    creation_time: Mapped[str | None] = mapped_column(String(14))
    service_start_time: Mapped[str | None] = mapped_column(String(14))
    service_stop_time: Mapped[str | None] = mapped_column(String(14))
    submission_time: Mapped[str | None] = mapped_column(String(14))
    last_update_time: Mapped[str | None] = mapped_column(String(14))
    source_id: Mapped[str | None] = mapped_column(String(128))
    assoc_type: Mapped[str | None] = mapped_column(String(80))
    source_object: Mapped[str | None] = mapped_column(_ID, index=True)
    target_object: Mapped[str | None] = mapped_column(_ID, index=True)
    xml: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index("ix_registry_object_unique_id", "unique_id"),
        Index("ix_registry_object_patient", "patient_id", "kind", "status", "creation_time"),
    )


class UniqueIdClaim(Base):
    """The first registration of a uniqueId; the primary key makes concurrent claims race safely.

    A DocumentEntry may be registered again under a claimed uniqueId only with the identical hash (ITI TF-3
    §4.2.4.1, XDSNonIdenticalHash); every other reuse is XDSDuplicateUniqueIdInRegistry.
    """

    __tablename__ = "unique_id_claim"

    unique_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(2))
    hash: Mapped[str | None] = mapped_column(String(64))


class ObjectCode(Base):
    """A coded value of an object: ``value`` is ``code^^codingScheme`` (the stored-query form)."""

    __tablename__ = "object_code"

    object_seq: Mapped[int] = mapped_column(
        _KEY, ForeignKey("registry_object.seq", ondelete="CASCADE"), primary_key=True
    )
    scheme: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(320), primary_key=True)

    __table_args__ = (Index("ix_object_code_lookup", "scheme", "value", "object_seq"),)


class ObjectAuthor(Base):
    """An author person (XCN as sent) of a DocumentEntry or SubmissionSet."""

    __tablename__ = "object_author"

    object_seq: Mapped[int] = mapped_column(
        _KEY, ForeignKey("registry_object.seq", ondelete="CASCADE"), primary_key=True
    )
    person: Mapped[str] = mapped_column(String(320), primary_key=True, index=True)


class ObjectReferenceId(Base):
    """One referenceIdList value (CXi) of a DocumentEntry."""

    __tablename__ = "object_reference_id"

    object_seq: Mapped[int] = mapped_column(
        _KEY, ForeignKey("registry_object.seq", ondelete="CASCADE"), primary_key=True
    )
    value: Mapped[str] = mapped_column(String(320), primary_key=True, index=True)


class Patient(Base):
    """A patient id fed to the registry (``xds patient add``; later ITI-8/ITI-44)."""

    __tablename__ = "patient"

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    added: Mapped[str] = mapped_column(String(32))


class RepositoryDocument(Base):
    """A document this node's repository holds: uniqueId -> content address, size, hashes and mimeType.

    Written in the same transaction as the registry objects of its submission (same-node registry), so a
    row exists exactly when the registry accepted the metadata. With a remote registry the row is written
    ``pending`` before ITI-42 is sent and becomes ``held`` when the registry accepted; only held documents
    are retrievable. ``sha256`` addresses the content in the document store (SHA-1 is kept for the metadata,
    not trusted as an address).
    """

    __tablename__ = "repository_document"

    repository_unique_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    unique_id: Mapped[str] = mapped_column(_ID, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    sha1: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(BigInteger)
    mime_type: Mapped[str] = mapped_column(String(256))
    entry_uuid: Mapped[str] = mapped_column(_ID)
    stored_at: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(8))
    patient_id: Mapped[str | None] = mapped_column(_ID)
    """The DocumentEntry's patient, for the consent gate of ITI-43 (also with a remote registry)."""
    category: Mapped[str | None] = mapped_column(String(320))
    """The DocumentEntry's classCode code (the consent gate's data category)."""


class PatientAlias(Base):
    """Another id of a fed patient, in another community's patient-id domain (``xds patient alias add``).

    The initiating gateway queries a community whose directory entry names an assigning authority with the
    alias in that domain (XCA patient-id translation).
    """

    __tablename__ = "patient_alias"

    patient_id: Mapped[str] = mapped_column(_ID, ForeignKey("patient.id", ondelete="CASCADE"), primary_key=True)
    alias: Mapped[str] = mapped_column(_ID, primary_key=True)
    added: Mapped[str] = mapped_column(String(32))


class NodeSetting(Base):
    """Node identities generated once and kept (homeCommunityId, repositoryUniqueId)."""

    __tablename__ = "node_setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(512))


class CommunityEntry(Base):
    """A remote community added with ``xds community add`` (TOML ``[[communities]]`` entries are not stored).

    Empty strings mean "not given"; ``timeout`` NULL means the gateway default. See :mod:`xds.communities`.
    """

    __tablename__ = "community"

    home_community_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    query_url: Mapped[str] = mapped_column(_LONG)
    retrieve_url: Mapped[str] = mapped_column(_LONG)
    push_url: Mapped[str] = mapped_column(_LONG)
    xdm_email: Mapped[str] = mapped_column(String(320))
    assigning_authority: Mapped[str] = mapped_column(String(64))
    timeout: Mapped[float | None] = mapped_column(Float)
    tls_ca_file: Mapped[str] = mapped_column(_LONG)
    tls_cert_file: Mapped[str] = mapped_column(_LONG)
    tls_key_file: Mapped[str] = mapped_column(_LONG)
    tls_verify: Mapped[bool] = mapped_column(Boolean)
    added: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64), server_default="")
    push_transaction: Mapped[str] = mapped_column(String(8), server_default="ITI-41")


class ConsentRow(Base):
    """One consent directive of a patient in the local consent registry (``xds consent grant|deny``).

    ``who`` is ``everyone``, ``community`` (``who_id`` a homeCommunityId), ``organisation`` (``who_id`` a URA)
    or ``emergency`` (a refusal of emergency access); ``category`` "" means every data category. Validity is
    ``[valid_from, valid_until)`` in ISO 8601 UTC ("" = open). A revoked directive stays, with ``revoked`` set.
    """

    __tablename__ = "consent"

    id: Mapped[int] = mapped_column(_KEY, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(_ID, index=True)
    decision: Mapped[str] = mapped_column(String(8))
    who: Mapped[str] = mapped_column(String(16))
    who_id: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(320))
    valid_from: Mapped[str] = mapped_column(String(32))
    valid_until: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(256))
    recorded: Mapped[str] = mapped_column(String(32))
    revoked: Mapped[str | None] = mapped_column(String(32))


class EmergencyAccessRow(Base):
    """A record that emergency access opened a patient's data, kept so the patient can be told."""

    __tablename__ = "emergency_access"

    id: Mapped[int] = mapped_column(_KEY, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(_ID, index=True)
    at: Mapped[str] = mapped_column(String(32))
    requester: Mapped[str] = mapped_column(String(512))
    organisation_id: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(512))
    notified: Mapped[str | None] = mapped_column(String(32))


class AuditRecordRow(Base):
    """The durable ATNA spool: one DICOM audit message per row, until the forwarder delivered it (``sent``)."""

    __tablename__ = "audit_record"

    id: Mapped[int] = mapped_column(_KEY, primary_key=True, autoincrement=True)
    recorded: Mapped[str] = mapped_column(String(32), index=True)
    event: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[int] = mapped_column(Integer)
    patient_id: Mapped[str | None] = mapped_column(_ID, index=True)
    xml: Mapped[str] = mapped_column(Text)
    sent: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (Index("ix_audit_record_unsent", "sent", "id"),)


class DeliveryRow(Base):
    """A push delivery received into a mailbox (XDR, ITI-80, an imported XDM package, XDM by e-mail).

    ``metadata_xml`` is the SubmitObjectsRequest as received; the documents are in the document store and in
    ``delivery_document``. ``status`` is ``new``, ``unknown-patient``, ``accepted`` or ``rejected``; its history
    is ``delivery_event``. ``digest_id`` is the notification digest that counts it.
    """

    __tablename__ = "delivery"

    id: Mapped[int] = mapped_column(_KEY, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    mailbox: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(24))
    transport: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str] = mapped_column(String(512))
    patient_id: Mapped[str] = mapped_column(_ID)
    local_patient_id: Mapped[str] = mapped_column(_ID)
    message: Mapped[str] = mapped_column(Text)
    urgent: Mapped[bool] = mapped_column(Boolean)
    received: Mapped[str] = mapped_column(String(32))
    submission_set_uid: Mapped[str] = mapped_column(String(128), index=True)
    recipients: Mapped[str] = mapped_column(Text)
    metadata_xml: Mapped[str] = mapped_column(Text)
    digest_id: Mapped[int | None] = mapped_column(_KEY, index=True)

    __table_args__ = (
        # one live delivery per mailbox and SubmissionSet: a concurrent identical push becomes a re-send
        Index(
            "uq_delivery_resend",
            "mailbox",
            "submission_set_uid",
            unique=True,
            sqlite_where=text("status <> 'rejected' AND submission_set_uid <> ''"),
            postgresql_where=text("status <> 'rejected' AND submission_set_uid <> ''"),
        ),
    )


class DeliveryDocumentRow(Base):
    """One document of a delivery; its content is in the document store under ``sha256``."""

    __tablename__ = "delivery_document"

    id: Mapped[int] = mapped_column(_KEY, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(_KEY, ForeignKey("delivery.id"), index=True)
    entry_id: Mapped[str] = mapped_column(_ID)
    unique_id: Mapped[str] = mapped_column(String(128))
    mime_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)
    sha1: Mapped[str] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(64), index=True)


class DeliveryEventRow(Base):
    """One step of a delivery's status history (received, re-sent, accepted, rejected, notified, ...)."""

    __tablename__ = "delivery_event"

    id: Mapped[int] = mapped_column(_KEY, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(_KEY, ForeignKey("delivery.id"), index=True)
    at: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str] = mapped_column(Text)


class DigestRow(Base):
    """A notification digest of one mailbox for one patient: open until ``due``, then mailed once (``sent``).

    ``claimed`` marks a digest a sender took (so two workers never mail it twice); a claim older than the
    sender's timeout is taken again.
    """

    __tablename__ = "digest"

    id: Mapped[int] = mapped_column(_KEY, primary_key=True, autoincrement=True)
    mailbox: Mapped[str] = mapped_column(String(64))
    patient_key: Mapped[str] = mapped_column(_ID)
    opened: Mapped[str] = mapped_column(String(32))
    due: Mapped[str] = mapped_column(String(32))
    urgent: Mapped[bool] = mapped_column(Boolean)
    claimed: Mapped[str | None] = mapped_column(String(32))
    sent: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_digest_open", "mailbox", "patient_key", "sent"),
        Index("ix_digest_due", "sent", "due"),
    )


class PushRow(Base):
    """A push this node sent (``xds push``): to whom, how (XDR, ITI-80, XDM by e-mail) and with what outcome."""

    __tablename__ = "push"

    id: Mapped[int] = mapped_column(_KEY, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    recipient: Mapped[str] = mapped_column(String(128), index=True)
    patient_id: Mapped[str] = mapped_column(_ID)
    submission_set_uid: Mapped[str] = mapped_column(String(128))
    documents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    transport: Mapped[str] = mapped_column(String(16))
    created: Mapped[str] = mapped_column(String(32))
    updated: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)


class PushEventRow(Base):
    """One attempt or outcome of a push."""

    __tablename__ = "push_event"

    id: Mapped[int] = mapped_column(_KEY, primary_key=True, autoincrement=True)
    push_id: Mapped[int] = mapped_column(_KEY, ForeignKey("push.id"), index=True)
    at: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)


class ImagingStudyRow(Base):
    """A DICOM study this node holds (XDS-I.b): its patient, its current KOS manifest in the registry, how well its
    instances carried the BSN (``bsn_bucket``, see :mod:`xds.dicom.identity`) and the form they are stored in."""

    __tablename__ = "imaging_study"

    study_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(_ID, index=True)
    accession: Mapped[str] = mapped_column(String(64))
    manifest_unique_id: Mapped[str] = mapped_column(String(64))
    manifest_entry_uuid: Mapped[str] = mapped_column(_ID)
    sender: Mapped[str] = mapped_column(String(256), index=True)
    bsn_bucket: Mapped[str] = mapped_column(String(16))
    bsn_detail: Mapped[str] = mapped_column(Text)
    stored_form: Mapped[str] = mapped_column(String(16), server_default="outbound")
    """``outbound``: the instances are stored as they leave (BSN policy applied); ``local``: filed under the
    local id (a received study), rewritten when they leave."""
    received: Mapped[str] = mapped_column(String(32), index=True)
    updated: Mapped[str] = mapped_column(String(32))


class ImagingInstanceRow(Base):
    """One stored DICOM instance (Part 10 file in the document store under ``sha256``)."""

    __tablename__ = "imaging_instance"

    sop_instance_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    study_uid: Mapped[str] = mapped_column(String(64), ForeignKey("imaging_study.study_uid"), index=True)
    series_uid: Mapped[str] = mapped_column(String(64), index=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    transfer_syntax: Mapped[str] = mapped_column(String(64))
    modality: Mapped[str] = mapped_column(String(16))
    body_part: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    stored: Mapped[str] = mapped_column(String(32))


__all__ = [
    "AuditRecordRow",
    "Base",
    "CommunityEntry",
    "ConsentRow",
    "DeliveryDocumentRow",
    "DeliveryEventRow",
    "DeliveryRow",
    "DigestRow",
    "EmergencyAccessRow",
    "ImagingInstanceRow",
    "ImagingStudyRow",
    "NodeSetting",
    "ObjectAuthor",
    "ObjectCode",
    "ObjectReferenceId",
    "Patient",
    "PatientAlias",
    "PushEventRow",
    "PushRow",
    "RegistryObjectRow",
    "RepositoryDocument",
]
