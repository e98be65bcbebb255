"""Filtered case pages walk one index in page order: the code tables carry a copy of the case's
listing columns (updated_at, country, dates) with indexes per code and per code and country,
and the country index carries the dates (decision 0021, "Filtered pages").

Revision ID: 0011_case_indexes
Revises: 0008_key_events
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_case_indexes"
down_revision: str | None = "0009_evidence_sharing"
branch_labels: str | None = None
depends_on: str | None = None

LINK_TABLES = ("case_violations", "case_victim_groups")
COPIED = ("updated_at", "country", "date_from", "date_to")


def upgrade() -> None:
    for table in LINK_TABLES:
        op.drop_index(f"ix_{table}_code", table_name=table)
        op.add_column(table, sa.Column("updated_at", sa.DateTime(), nullable=True))
        op.add_column(table, sa.Column("country", sa.String(2), nullable=True))
        op.add_column(table, sa.Column("date_from", sa.String(10), nullable=True))
        op.add_column(table, sa.Column("date_to", sa.String(10), nullable=True))
        copies = ", ".join(
            f"{column} = (SELECT cases.{column} FROM cases"
            f" WHERE cases.record_id = {table}.record_id)"
            for column in COPIED
        )
        op.execute(f"UPDATE {table} SET {copies}")
        with op.batch_alter_table(table) as batch:
            batch.alter_column("updated_at", existing_type=sa.DateTime(), nullable=False)
        op.create_index(
            f"ix_{table}_listing", table,
            ["code", "updated_at", "record_id", "date_from", "date_to"],
        )
        op.create_index(
            f"ix_{table}_country_listing", table,
            ["code", "country", "updated_at", "record_id", "date_from", "date_to"],
        )
    op.drop_index("ix_cases_country_listing", table_name="cases")
    op.create_index(
        "ix_cases_country_listing", "cases",
        ["deleted", "country", "updated_at", "record_id", "date_from", "date_to"],
    )


def downgrade() -> None:
    op.drop_index("ix_cases_country_listing", table_name="cases")
    op.create_index(
        "ix_cases_country_listing", "cases", ["deleted", "country", "updated_at", "record_id"]
    )
    for table in LINK_TABLES:
        op.drop_index(f"ix_{table}_country_listing", table_name=table)
        op.drop_index(f"ix_{table}_listing", table_name=table)
        with op.batch_alter_table(table) as batch:
            for column in COPIED:
                batch.drop_column(column)
        op.create_index(f"ix_{table}_code", table, ["code", "record_id"])
