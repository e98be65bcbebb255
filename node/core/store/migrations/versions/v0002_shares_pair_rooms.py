"""Sharing history and pair rooms (M4).

Revision ID: 0002_shares_pair_rooms
Revises: 0001_initial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_shares_pair_rooms"
down_revision: str | None = "0001_initial"
branch_labels: str | None = None
depends_on: str | None = None

RECORD_ID = 36
ORG_ID = 64


def upgrade() -> None:
    op.create_table(
        "shares",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("record_id", sa.String(RECORD_ID), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(ORG_ID), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("room_id", sa.String(255), nullable=False),
        sa.Column("actor", sa.LargeBinary(), nullable=False),
        sa.Column("shared_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_shares"),
    )
    op.create_index("ix_shares_record", "shares", ["record_id", "id"])
    op.create_table(
        "pair_rooms",
        sa.Column("room_id", sa.String(255), nullable=False),
        sa.Column("org_id", sa.String(ORG_ID), nullable=False),
        sa.Column("created_by_us", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("room_id", name="pk_pair_rooms"),
    )
    op.create_index("ix_pair_rooms_org_id", "pair_rooms", ["org_id"])


def downgrade() -> None:
    op.drop_table("pair_rooms")
    op.drop_index("ix_shares_record", table_name="shares")
    op.drop_table("shares")
