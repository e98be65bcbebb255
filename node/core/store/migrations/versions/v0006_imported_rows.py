"""Spreadsheet rows imported before, by keyed hash, so a re-import updates instead of
duplicating (M16).

Revision ID: 0006_imported_rows
Revises: 0005_drop_campaigns
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_imported_rows"
down_revision: str | None = "0005_drop_campaigns"
branch_labels: str | None = None
depends_on: str | None = None

RECORD_ID = 36


def upgrade() -> None:
    op.create_table(
        "imported_rows",
        sa.Column("identity", sa.LargeBinary(), nullable=False),
        sa.Column("record_id", sa.String(RECORD_ID), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"], ["cases.record_id"], name="fk_imported_rows_record_id_cases"
        ),
        sa.PrimaryKeyConstraint("identity", name="pk_imported_rows"),
    )


def downgrade() -> None:
    op.drop_table("imported_rows")
