"""Imaging (XDS-I.b): the DICOM studies this node holds, with their current manifest and BSN quality, and their
instances (Part 10 files in the document store).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_UID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "imaging_study",
        sa.Column("study_uid", _UID, nullable=False),
        sa.Column("patient_id", sa.String(256), nullable=False),
        sa.Column("accession", _UID, nullable=False),
        sa.Column("manifest_unique_id", _UID, nullable=False),
        sa.Column("manifest_entry_uuid", sa.String(256), nullable=False),
        sa.Column("sender", sa.String(256), nullable=False),
        sa.Column("bsn_bucket", sa.String(16), nullable=False),
        sa.Column("bsn_detail", sa.Text(), nullable=False),
        sa.Column("stored_form", sa.String(16), nullable=False, server_default="outbound"),
        sa.Column("received", sa.String(32), nullable=False),
        sa.Column("updated", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("study_uid", name="pk_imaging_study"),
    )
    op.create_index("ix_imaging_study_patient_id", "imaging_study", ["patient_id"])
    op.create_index("ix_imaging_study_sender", "imaging_study", ["sender"])
    op.create_index("ix_imaging_study_received", "imaging_study", ["received"])
    op.create_table(
        "imaging_instance",
        sa.Column("sop_instance_uid", _UID, nullable=False),
        sa.Column("study_uid", _UID, nullable=False),
        sa.Column("series_uid", _UID, nullable=False),
        sa.Column("sop_class_uid", _UID, nullable=False),
        sa.Column("transfer_syntax", _UID, nullable=False),
        sa.Column("modality", sa.String(16), nullable=False),
        sa.Column("body_part", _UID, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", _UID, nullable=False),
        sa.Column("stored", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_uid"], ["imaging_study.study_uid"], name="fk_imaging_instance_study_uid_imaging_study"
        ),
        sa.PrimaryKeyConstraint("sop_instance_uid", name="pk_imaging_instance"),
    )
    op.create_index("ix_imaging_instance_study_uid", "imaging_instance", ["study_uid"])
    op.create_index("ix_imaging_instance_series_uid", "imaging_instance", ["series_uid"])
    op.create_index("ix_imaging_instance_sha256", "imaging_instance", ["sha256"])


def downgrade() -> None:
    op.drop_index("ix_imaging_instance_sha256", table_name="imaging_instance")
    op.drop_index("ix_imaging_instance_series_uid", table_name="imaging_instance")
    op.drop_index("ix_imaging_instance_study_uid", table_name="imaging_instance")
    op.drop_table("imaging_instance")
    op.drop_index("ix_imaging_study_received", table_name="imaging_study")
    op.drop_index("ix_imaging_study_sender", table_name="imaging_study")
    op.drop_index("ix_imaging_study_patient_id", table_name="imaging_study")
    op.drop_table("imaging_study")
