"""A node in several coalitions (decision 0032): the coalitions it is or was in, each
coalition's verified members, and the coalition each received record came through.

The existing coalition is filled in when the node first opens the store after this migration
(``node.core.store.coalitions.adopt_single_coalition``): its room id is in an encrypted setting
that a migration cannot read.

Revision ID: 0012_coalitions
Revises: 0011_case_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_coalitions"
down_revision: str | None = "0011_case_indexes"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "coalitions",
        sa.Column("coalition_id", sa.String(255), nullable=False),
        sa.Column("room_id", sa.String(255), nullable=False),
        sa.Column("name", sa.LargeBinary(), nullable=True),
        sa.Column("joined_at", sa.DateTime(), nullable=False),
        sa.Column("left_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("coalition_id", name="pk_coalitions"),
    )
    op.create_index("ix_coalitions_room_id", "coalitions", ["room_id"])
    op.create_table(
        "coalition_members",
        sa.Column("coalition_id", sa.String(255), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("coalition_id", "org_id", name="pk_coalition_members"),
    )
    op.create_index("ix_coalition_members_org_id", "coalition_members", ["org_id"])
    op.add_column("received_records",
                  sa.Column("coalition_id", sa.String(255), nullable=True))
    op.create_index("ix_received_records_coalition_id", "received_records", ["coalition_id"])


def downgrade() -> None:
    op.drop_index("ix_received_records_coalition_id", table_name="received_records")
    with op.batch_alter_table("received_records") as batch:
        batch.drop_column("coalition_id")
    op.drop_index("ix_coalition_members_org_id", table_name="coalition_members")
    op.drop_table("coalition_members")
    op.drop_index("ix_coalitions_room_id", table_name="coalitions")
    op.drop_table("coalitions")
