"""Consent and audit: the local consent registry, emergency-access records, the ATNA spool, and the patient and
data category of each repository document (the consent gate of ITI-43).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from xds.vocabulary import DE_CLASS_CODE

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "consent",
        sa.Column("id", _KEY, autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(256), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("who", sa.String(16), nullable=False),
        sa.Column("who_id", sa.String(128), nullable=False),
        sa.Column("category", sa.String(320), nullable=False),
        sa.Column("valid_from", sa.String(32), nullable=False),
        sa.Column("valid_until", sa.String(32), nullable=False),
        sa.Column("source", sa.String(256), nullable=False),
        sa.Column("recorded", sa.String(32), nullable=False),
        sa.Column("revoked", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_consent"),
    )
    op.create_index("ix_consent_patient_id", "consent", ["patient_id"])
    op.create_table(
        "emergency_access",
        sa.Column("id", _KEY, autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(256), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("requester", sa.String(512), nullable=False),
        sa.Column("organisation_id", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(512), nullable=False),
        sa.Column("notified", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_emergency_access"),
    )
    op.create_index("ix_emergency_access_patient_id", "emergency_access", ["patient_id"])
    op.create_table(
        "audit_record",
        sa.Column("id", _KEY, autoincrement=True, nullable=False),
        sa.Column("recorded", sa.String(32), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("outcome", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(256), nullable=True),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("sent", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_record"),
    )
    op.create_index("ix_audit_record_recorded", "audit_record", ["recorded"])
    op.create_index("ix_audit_record_patient_id", "audit_record", ["patient_id"])
    op.create_index("ix_audit_record_unsent", "audit_record", ["sent", "id"])
    with op.batch_alter_table("repository_document") as batch:
        batch.add_column(sa.Column("patient_id", sa.String(256), nullable=True))
        batch.add_column(sa.Column("category", sa.String(320), nullable=True))
    # Documents stored before this revision: their patient and classCode code from the registry, where it is ours.
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT d.repository_unique_id, d.unique_id, o.patient_id, c.value FROM repository_document d"
            " JOIN registry_object o ON o.id = d.entry_uuid"
            " LEFT JOIN object_code c ON c.object_seq = o.seq AND c.scheme = :scheme"
        ),
        {"scheme": DE_CLASS_CODE},
    ).all()
    for repository_unique_id, unique_id, patient_id, class_code in rows:
        conn.execute(
            sa.text(
                "UPDATE repository_document SET patient_id = :patient, category = :category"
                " WHERE repository_unique_id = :repo AND unique_id = :uid"
            ),
            {
                "patient": patient_id,
                "category": (class_code or "").split("^^", 1)[0],
                "repo": repository_unique_id,
                "uid": unique_id,
            },
        )


def downgrade() -> None:
    with op.batch_alter_table("repository_document") as batch:
        batch.drop_column("category")
        batch.drop_column("patient_id")
    op.drop_index("ix_audit_record_unsent", table_name="audit_record")
    op.drop_index("ix_audit_record_patient_id", table_name="audit_record")
    op.drop_index("ix_audit_record_recorded", table_name="audit_record")
    op.drop_table("audit_record")
    op.drop_index("ix_emergency_access_patient_id", table_name="emergency_access")
    op.drop_table("emergency_access")
    op.drop_index("ix_consent_patient_id", table_name="consent")
    op.drop_table("consent")
