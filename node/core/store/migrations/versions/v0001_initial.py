"""The first store schema: organisations, cases with versions, campaigns, received records,
audit log and API tokens.

Revision ID: 0001_initial
Revises: (none)
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

RECORD_ID = 36
ORG_ID = 64
CODE = 64
ISO_DATE = 10


def _timestamp(name: str) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "store_meta",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_store_meta"),
    )
    op.create_table(
        "own_org",
        sa.Column("org_id", sa.String(ORG_ID), nullable=False),
        sa.Column("name", sa.LargeBinary(), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("private_keys", sa.LargeBinary(), nullable=False),
        sa.Column("public_keys", sa.JSON(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("org_id", name="pk_own_org"),
    )
    op.create_table(
        "members",
        sa.Column("org_id", sa.String(ORG_ID), nullable=False),
        sa.Column("entry", sa.LargeBinary(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("safety_code", sa.String(128), nullable=False),
        sa.Column("matrix_user_id", sa.String(255), nullable=True),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("org_id", name="pk_members"),
    )
    op.create_index("ix_members_matrix_user_id", "members", ["matrix_user_id"])
    _create_case_tables()
    op.create_table(
        "campaigns",
        sa.Column("record_id", sa.String(RECORD_ID), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("record_id", name="pk_campaigns"),
    )
    op.create_index("ix_campaigns_status_updated", "campaigns", ["status", "updated_at"])
    op.create_table(
        "received_records",
        sa.Column("issuer", sa.String(ORG_ID), nullable=False),
        sa.Column("record_id", sa.String(RECORD_ID), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("claims", sa.LargeBinary(), nullable=True),
        sa.Column("verification", sa.String(32), nullable=False),
        sa.Column("retracted", sa.Boolean(), nullable=False),
        _timestamp("received_at"),
        sa.PrimaryKeyConstraint("issuer", "record_id", "version", name="pk_received_records"),
    )
    op.create_index("ix_received_records_kind", "received_records", ["kind"])
    op.create_index("ix_received_records_received", "received_records", ["received_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _timestamp("at"),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(128), nullable=True),
        sa.Column("actor", sa.LargeBinary(), nullable=False),
        sa.Column("details", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "api_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user", sa.LargeBinary(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        _timestamp("created_at"),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_api_tokens"),
    )


def _create_case_tables() -> None:
    op.create_table(
        "cases",
        sa.Column("record_id", sa.String(RECORD_ID), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("date_from", sa.String(ISO_DATE), nullable=True),
        sa.Column("date_to", sa.String(ISO_DATE), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("record_id", name="pk_cases"),
    )
    op.create_index("ix_cases_listing", "cases", ["deleted", "updated_at", "record_id"])
    op.create_index(
        "ix_cases_country_listing", "cases", ["deleted", "country", "updated_at", "record_id"]
    )
    op.create_table(
        "case_versions",
        sa.Column("record_id", sa.String(RECORD_ID), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=True),
        sa.Column("author", sa.LargeBinary(), nullable=True),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["record_id"], ["cases.record_id"], name="fk_case_versions_record_id_cases"
        ),
        sa.PrimaryKeyConstraint("record_id", "version", name="pk_case_versions"),
    )
    for table in ("case_violations", "case_victim_groups"):
        op.create_table(
            table,
            sa.Column("record_id", sa.String(RECORD_ID), nullable=False),
            sa.Column("code", sa.String(CODE), nullable=False),
            sa.ForeignKeyConstraint(
                ["record_id"], ["cases.record_id"], name=f"fk_{table}_record_id_cases"
            ),
            sa.PrimaryKeyConstraint("record_id", "code", name=f"pk_{table}"),
        )
        op.create_index(f"ix_{table}_code", table, ["code", "record_id"])


def downgrade() -> None:
    for table in (
        "api_tokens",
        "audit_log",
        "received_records",
        "campaigns",
        "case_victim_groups",
        "case_violations",
        "case_versions",
        "cases",
        "members",
        "own_org",
        "store_meta",
    ):
        op.drop_table(table)
