"""Files received with shared cases (M14, evidence sharing).

Revision ID: 0009_evidence_sharing
Revises: 0007_evidence
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_evidence_sharing"
down_revision: str | None = "0008_key_events"
branch_labels: str | None = None
depends_on: str | None = None

RECORD_ID = 36
ORG_ID = 64


def upgrade() -> None:
    op.create_table(
        "received_files",
        sa.Column("file_id", sa.String(RECORD_ID), nullable=False),
        sa.Column("issuer", sa.String(ORG_ID), nullable=False),
        sa.Column("record_id", sa.String(RECORD_ID), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("parts_done", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("details", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("file_id", name="pk_received_files"),
    )
    op.create_index("ix_received_files_record", "received_files",
                    ["issuer", "record_id", "version", "position"], unique=True)
    op.create_index("ix_received_files_status", "received_files", ["status"])


def downgrade() -> None:
    op.drop_index("ix_received_files_status", table_name="received_files")
    op.drop_index("ix_received_files_record", table_name="received_files")
    op.drop_table("received_files")
