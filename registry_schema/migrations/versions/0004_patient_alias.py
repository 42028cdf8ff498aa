"""Patient aliases: a fed patient's ids in other communities' patient-id domains (XCA translation).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patient_alias",
        sa.Column("patient_id", sa.String(256), nullable=False),
        sa.Column("alias", sa.String(256), nullable=False),
        sa.Column("added", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name="fk_patient_alias_patient_id_patient", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("patient_id", "alias", name="pk_patient_alias"),
    )


def downgrade() -> None:
    op.drop_table("patient_alias")
