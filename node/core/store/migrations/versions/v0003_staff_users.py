"""Staff accounts and sessions of the web interface (M5).

Revision ID: 0003_staff_users
Revises: 0002_shares_pair_rooms
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_staff_users"
down_revision: str | None = "0002_shares_pair_rooms"
branch_labels: str | None = None
depends_on: str | None = None

USER_ID = 32


def upgrade() -> None:
    op.create_table(
        "staff_users",
        sa.Column("user_id", sa.String(USER_ID), nullable=False),
        sa.Column("username", sa.LargeBinary(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("password", sa.LargeBinary(), nullable=False),
        sa.Column("totp_secret", sa.LargeBinary(), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_staff_users"),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(USER_ID), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["staff_users.user_id"],
                                name="fk_staff_sessions_user_id_staff_users"),
        sa.PrimaryKeyConstraint("token_hash", name="pk_staff_sessions"),
    )
    op.create_index("ix_staff_sessions_user_id", "staff_sessions", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_staff_sessions_user_id", table_name="staff_sessions")
    op.drop_table("staff_sessions")
    op.drop_table("staff_users")
