"""Push: deliveries received into mailboxes (with documents and status history), notification digests, the
pushes this node sent, and a name and push transaction for each community directory entry.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ID = sa.String(256)


def upgrade() -> None:
    op.create_table(
        "delivery",
        sa.Column("id", _KEY, autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(32), nullable=False),
        sa.Column("mailbox", sa.String(64), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("sender", sa.String(512), nullable=False),
        sa.Column("patient_id", _ID, nullable=False),
        sa.Column("local_patient_id", _ID, nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("received", sa.String(32), nullable=False),
        sa.Column("submission_set_uid", sa.String(128), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("metadata_xml", sa.Text(), nullable=False),
        sa.Column("digest_id", _KEY, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_delivery"),
        sa.UniqueConstraint("reference", name="uq_delivery_reference"),
    )
    op.create_index("ix_delivery_mailbox", "delivery", ["mailbox"])
    op.create_index("ix_delivery_submission_set_uid", "delivery", ["submission_set_uid"])
    op.create_index("ix_delivery_digest_id", "delivery", ["digest_id"])
    live = sa.text("status <> 'rejected' AND submission_set_uid <> ''")
    op.create_index(
        "uq_delivery_resend",
        "delivery",
        ["mailbox", "submission_set_uid"],
        unique=True,
        sqlite_where=live,
        postgresql_where=live,
    )
    op.create_table(
        "delivery_document",
        sa.Column("id", _KEY, autoincrement=True, nullable=False),
        sa.Column("delivery_id", _KEY, nullable=False),
        sa.Column("entry_id", _ID, nullable=False),
        sa.Column("unique_id", sa.String(128), nullable=False),
        sa.Column("mime_type", sa.String(128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha1", sa.String(40), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["delivery.id"], name="fk_delivery_document_delivery_id_delivery"),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_document"),
    )
    op.create_index("ix_delivery_document_delivery_id", "delivery_document", ["delivery_id"])
    op.create_index("ix_delivery_document_sha256", "delivery_document", ["sha256"])
    op.create_table(
        "delivery_event",
        sa.Column("id", _KEY, autoincrement=True, nullable=False),
        sa.Column("delivery_id", _KEY, nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["delivery.id"], name="fk_delivery_event_delivery_id_delivery"),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_event"),
    )
    op.create_index("ix_delivery_event_delivery_id", "delivery_event", ["delivery_id"])
    op.create_table(
        "digest",
        sa.Column("id", _KEY, autoincrement=True, nullable=False),
        sa.Column("mailbox", sa.String(64), nullable=False),
        sa.Column("patient_key", _ID, nullable=False),
        sa.Column("opened", sa.String(32), nullable=False),
        sa.Column("due", sa.String(32), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("claimed", sa.String(32), nullable=True),
        sa.Column("sent", sa.String(32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_digest"),
    )
    op.create_index("ix_digest_open", "digest", ["mailbox", "patient_key", "sent"])
    op.create_index("ix_digest_due", "digest", ["sent", "due"])
    op.create_table(
        "push",
        sa.Column("id", _KEY, autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(128), nullable=False),
        sa.Column("patient_id", _ID, nullable=False),
        sa.Column("submission_set_uid", sa.String(128), nullable=False),
        sa.Column("documents", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
        sa.Column("updated", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_push"),
        sa.UniqueConstraint("reference", name="uq_push_reference"),
    )
    op.create_index("ix_push_recipient", "push", ["recipient"])
    op.create_table(
        "push_event",
        sa.Column("id", _KEY, autoincrement=True, nullable=False),
        sa.Column("push_id", _KEY, nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["push_id"], ["push.id"], name="fk_push_event_push_id_push"),
        sa.PrimaryKeyConstraint("id", name="pk_push_event"),
    )
    op.create_index("ix_push_event_push_id", "push_event", ["push_id"])
    with op.batch_alter_table("community") as batch:
        batch.add_column(sa.Column("name", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("push_transaction", sa.String(8), nullable=False, server_default="ITI-41"))


def downgrade() -> None:
    with op.batch_alter_table("community") as batch:
        batch.drop_column("push_transaction")
        batch.drop_column("name")
    op.drop_index("ix_push_event_push_id", table_name="push_event")
    op.drop_table("push_event")
    op.drop_index("ix_push_recipient", table_name="push")
    op.drop_table("push")
    op.drop_index("ix_digest_due", table_name="digest")
    op.drop_index("ix_digest_open", table_name="digest")
    op.drop_table("digest")
    op.drop_index("ix_delivery_event_delivery_id", table_name="delivery_event")
    op.drop_table("delivery_event")
    op.drop_index("ix_delivery_document_sha256", table_name="delivery_document")
    op.drop_index("ix_delivery_document_delivery_id", table_name="delivery_document")
    op.drop_table("delivery_document")
    op.drop_index("uq_delivery_resend", table_name="delivery")
    op.drop_index("ix_delivery_digest_id", table_name="delivery")
    op.drop_index("ix_delivery_submission_set_uid", table_name="delivery")
    op.drop_index("ix_delivery_mailbox", table_name="delivery")
    op.drop_table("delivery")
