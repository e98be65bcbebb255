"""Key revocations after a raid (M13): the statements a node applied, and since when each
member's keys are revoked.

Revision ID: 0008_key_events
Revises: 0006_imported_rows
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_key_events"
down_revision: str | None = "0007_evidence"
branch_labels: str | None = None
depends_on: str | None = None

ORG_ID = 64


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("revoked_at", sa.BigInteger(), nullable=True))
    op.create_table(
        "key_revocations",
        sa.Column("statement_hash", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(ORG_ID), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=False),
        sa.Column("statement", sa.JSON(), nullable=False),
        sa.Column("reason", sa.LargeBinary(), nullable=True),
        sa.Column("applied_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("statement_hash", name="pk_key_revocations"),
    )
    op.create_index("ix_key_revocations_org_id", "key_revocations", ["org_id"])


def downgrade() -> None:
    op.drop_index("ix_key_revocations_org_id", table_name="key_revocations")
    op.drop_table("key_revocations")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("revoked_at")
