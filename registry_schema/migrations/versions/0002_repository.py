"""Repository documents: which uniqueIds this node's repository holds, and where their content lives.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repository_document",
        sa.Column("repository_unique_id", sa.String(64), nullable=False),
        sa.Column("unique_id", sa.String(256), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("sha1", sa.String(40), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mime_type", sa.String(256), nullable=False),
        sa.Column("entry_uuid", sa.String(256), nullable=False),
        sa.Column("stored_at", sa.String(32), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.PrimaryKeyConstraint("repository_unique_id", "unique_id", name="pk_repository_document"),
    )
    op.create_index("ix_repository_document_sha256", "repository_document", ["sha256"])


def downgrade() -> None:
    op.drop_index("ix_repository_document_sha256", table_name="repository_document")
    op.drop_table("repository_document")
