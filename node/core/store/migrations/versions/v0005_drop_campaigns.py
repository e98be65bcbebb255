"""Drop the ``campaigns`` table: joint campaigns live in ``campaign_records`` (M7); the first
campaign store was only ever written by its own tests (M10).

Revision ID: 0005_drop_campaigns
Revises: 0004_campaign_records
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_drop_campaigns"
down_revision: str | None = "0004_campaign_records"
branch_labels: str | None = None
depends_on: str | None = None

RECORD_ID = 36


def upgrade() -> None:
    op.drop_index("ix_campaigns_status_updated", table_name="campaigns")
    op.drop_table("campaigns")


def downgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("record_id", sa.String(RECORD_ID), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("record_id", name="pk_campaigns"),
    )
    op.create_index("ix_campaigns_status_updated", "campaigns", ["status", "updated_at"])
