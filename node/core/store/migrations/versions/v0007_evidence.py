"""Files attached to cases and their custody logs (M14, evidence).

Revision ID: 0007_evidence
Revises: 0006_imported_rows
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_evidence"
down_revision: str | None = "0006_imported_rows"
branch_labels: str | None = None
depends_on: str | None = None

RECORD_ID = 36


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("attachment_id", sa.String(RECORD_ID), nullable=False),
        sa.Column("record_id", sa.String(RECORD_ID), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("details", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"], ["cases.record_id"], name="fk_attachments_record_id_cases"
        ),
        sa.PrimaryKeyConstraint("attachment_id", name="pk_attachments"),
    )
    op.create_index("ix_attachments_record_id", "attachments", ["record_id"])
    op.create_table(
        "custody_entries",
        sa.Column("attachment_id", sa.String(RECORD_ID), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("entry", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["attachment_id"], ["attachments.attachment_id"],
            name="fk_custody_entries_attachment_id_attachments",
        ),
        sa.PrimaryKeyConstraint("attachment_id", "seq", name="pk_custody_entries"),
    )


def downgrade() -> None:
    op.drop_table("custody_entries")
    op.drop_index("ix_attachments_record_id", table_name="attachments")
    op.drop_table("attachments")
