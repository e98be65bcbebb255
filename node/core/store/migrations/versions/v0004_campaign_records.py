"""Joint campaigns: campaign records kept by thread, and campaign rooms (M7).

Revision ID: 0004_campaign_records
Revises: 0003_staff_users
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_campaign_records"
down_revision: str | None = "0003_staff_users"
branch_labels: str | None = None
depends_on: str | None = None

RECORD_ID = 36
ORG_ID = 64


def upgrade() -> None:
    op.create_table(
        "campaign_records",
        sa.Column("issuer", sa.String(ORG_ID), nullable=False),
        sa.Column("record_id", sa.String(RECORD_ID), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("thread", sa.String(RECORD_ID), nullable=False),
        sa.Column("issued_at", sa.Integer(), nullable=False),
        sa.Column("claims", sa.LargeBinary(), nullable=False),
        sa.Column("stored_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "record_id", "version", name="pk_campaign_records"),
    )
    op.create_index("ix_campaign_records_kind", "campaign_records", ["kind"])
    op.create_index("ix_campaign_records_thread", "campaign_records", ["thread"])
    op.create_table(
        "campaign_rooms",
        sa.Column("proposal_id", sa.String(RECORD_ID), nullable=False),
        sa.Column("proposal_issuer", sa.String(ORG_ID), nullable=False),
        sa.Column("room_id", sa.String(255), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_by_us", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("proposal_id", name="pk_campaign_rooms"),
    )


def downgrade() -> None:
    op.drop_table("campaign_rooms")
    op.drop_index("ix_campaign_records_thread", table_name="campaign_records")
    op.drop_index("ix_campaign_records_kind", table_name="campaign_records")
    op.drop_table("campaign_records")
