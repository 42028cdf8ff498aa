"""Initial registry schema: registry objects, codes, authors, reference ids, patients, node settings.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "registry_object",
        sa.Column("seq", _KEY, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(256), nullable=False),
        sa.Column("lid", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(2), nullable=False),
        sa.Column("object_type", sa.String(128)),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(256)),
        sa.Column("unique_id", sa.String(128)),
        sa.Column("hash", sa.String(64)),
        sa.Column("size", sa.BigInteger()),
        sa.Column("repository_unique_id", sa.String(64)),
        sa.Column("home", sa.String(128)),
        sa.Column("creation_time", sa.String(14)),
        sa.Column("service_start_time", sa.String(14)),
        sa.Column("service_stop_time", sa.String(14)),
        sa.Column("submission_time", sa.String(14)),
        sa.Column("last_update_time", sa.String(14)),
        sa.Column("source_id", sa.String(128)),
        sa.Column("assoc_type", sa.String(80)),
        sa.Column("source_object", sa.String(256)),
        sa.Column("target_object", sa.String(256)),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_registry_object"),
        sa.UniqueConstraint("id", name="uq_registry_object_id"),
    )
    op.create_index("ix_registry_object_unique_id", "registry_object", ["unique_id"])
    op.create_table(
        "unique_id_claim",
        sa.Column("unique_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(2), nullable=False),
        sa.Column("hash", sa.String(64)),
        sa.PrimaryKeyConstraint("unique_id", name="pk_unique_id_claim"),
    )
    op.create_index("ix_registry_object_lid", "registry_object", ["lid"])
    op.create_index("ix_registry_object_patient", "registry_object", ["patient_id", "kind", "status", "creation_time"])
    op.create_index("ix_registry_object_source_object", "registry_object", ["source_object"])
    op.create_index("ix_registry_object_target_object", "registry_object", ["target_object"])
    for table, cols in (
        ("object_code", [sa.Column("scheme", sa.String(64)), sa.Column("value", sa.String(320))]),
        ("object_author", [sa.Column("person", sa.String(320))]),
        ("object_reference_id", [sa.Column("value", sa.String(320))]),
    ):
        op.create_table(
            table,
            sa.Column("object_seq", _KEY, nullable=False),
            *[sa.Column(c.name, c.type, nullable=False) for c in cols],
            sa.ForeignKeyConstraint(
                ["object_seq"],
                ["registry_object.seq"],
                name=f"fk_{table}_object_seq_registry_object",
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("object_seq", *[c.name for c in cols], name=f"pk_{table}"),
        )
    op.create_index("ix_object_code_lookup", "object_code", ["scheme", "value", "object_seq"])
    op.create_index("ix_object_author_person", "object_author", ["person"])
    op.create_index("ix_object_reference_id_value", "object_reference_id", ["value"])
    op.create_table(
        "patient",
        sa.Column("id", sa.String(256), nullable=False),
        sa.Column("added", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_patient"),
    )
    op.create_table(
        "node_setting",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.String(512), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_node_setting"),
    )


def downgrade() -> None:
    for table in (
        "unique_id_claim",
        "node_setting",
        "patient",
        "object_reference_id",
        "object_author",
        "object_code",
        "registry_object",
    ):
        op.drop_table(table)
