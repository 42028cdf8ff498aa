"""Community directory: remote communities added with ``xds community add``.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "community",
        sa.Column("home_community_id", sa.String(128), nullable=False),
        sa.Column("query_url", sa.String(2048), nullable=False),
        sa.Column("retrieve_url", sa.String(2048), nullable=False),
        sa.Column("push_url", sa.String(2048), nullable=False),
        sa.Column("xdm_email", sa.String(320), nullable=False),
        sa.Column("assigning_authority", sa.String(64), nullable=False),
        sa.Column("timeout", sa.Float(), nullable=True),
        sa.Column("tls_ca_file", sa.String(2048), nullable=False),
        sa.Column("tls_cert_file", sa.String(2048), nullable=False),
        sa.Column("tls_key_file", sa.String(2048), nullable=False),
        sa.Column("tls_verify", sa.Boolean(), nullable=False),
        sa.Column("added", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("home_community_id", name="pk_community"),
    )


def downgrade() -> None:
    op.drop_table("community")
