"""The first sync schema: outbox items, frames and resends; inbox cursor, rooms, processed
events, chains and quarantine.

Revision ID: s0001_initial
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

ORG_ID = 64
MATRIX_ID = 255
HASH = 64
TXN_ID = 128
REASON = 64
DETAIL = 300
ERROR = 200


def _attempt_columns() -> list[sa.Column[int] | sa.Column[str]]:
    return [
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.String(ERROR), nullable=True),
    ]


def upgrade() -> None:
    _create_outbox()
    _create_inbox()


def _create_outbox() -> None:
    op.create_table(
        "sync_frames",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("room_id", sa.String(MATRIX_ID), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("envelope_hash", sa.String(HASH), nullable=False),
        sa.Column("txn_id", sa.String(TXN_ID), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("blob", sa.LargeBinary(), nullable=True),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(MATRIX_ID), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        *_attempt_columns(),
        sa.PrimaryKeyConstraint("id", name="pk_sync_frames"),
        sa.UniqueConstraint("room_id", "seq", name="uq_sync_frames_room_seq"),
        sa.UniqueConstraint("txn_id", name="uq_sync_frames_txn_id"),
    )
    op.create_index("ix_sync_frames_event_id", "sync_frames", ["event_id", "id"])
    op.create_table(
        "sync_outbox_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ref", sa.String(32), nullable=False),
        sa.Column("room_id", sa.String(MATRIX_ID), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("token", sa.LargeBinary(), nullable=True),
        sa.Column("frame_id", sa.Integer(), nullable=True),
        sa.Column("queued_at", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.String(ERROR), nullable=True),
        sa.ForeignKeyConstraint(
            ["frame_id"], ["sync_frames.id"], name="fk_sync_outbox_items_frame_id_sync_frames"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sync_outbox_items"),
        sa.UniqueConstraint("ref", name="uq_sync_outbox_items_ref"),
    )
    op.create_index("ix_sync_outbox_items_frame_id", "sync_outbox_items", ["frame_id", "id"])
    op.create_table(
        "sync_resends",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("frame_id", sa.Integer(), nullable=False),
        sa.Column("request_event_id", sa.String(MATRIX_ID), nullable=False),
        sa.Column("event_id", sa.String(MATRIX_ID), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        *_attempt_columns(),
        sa.ForeignKeyConstraint(
            ["frame_id"], ["sync_frames.id"], name="fk_sync_resends_frame_id_sync_frames"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sync_resends"),
    )
    op.create_index("ix_sync_resends_event_id", "sync_resends", ["event_id", "id"])
    op.create_index("ix_sync_resends_frame_id", "sync_resends", ["frame_id"])


def _create_inbox() -> None:
    op.create_table(
        "sync_cursor",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_sync_cursor"),
    )
    op.create_table(
        "sync_rooms",
        sa.Column("room_id", sa.String(MATRIX_ID), nullable=False),
        sa.Column("last_event_id", sa.String(MATRIX_ID), nullable=False),
        sa.PrimaryKeyConstraint("room_id", name="pk_sync_rooms"),
    )
    op.create_table(
        "sync_processed_events",
        sa.Column("event_id", sa.String(MATRIX_ID), nullable=False),
        sa.Column("room_id", sa.String(MATRIX_ID), nullable=False),
        sa.Column("processed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_sync_processed_events"),
    )
    op.create_table(
        "sync_chain_links",
        sa.Column("issuer", sa.String(ORG_ID), nullable=False),
        sa.Column("room_id", sa.String(MATRIX_ID), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(HASH), nullable=False),
        sa.Column("prev", sa.String(HASH), nullable=False),
        sa.Column("event_id", sa.String(MATRIX_ID), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "room_id", "seq", name="pk_sync_chain_links"),
    )
    op.create_table(
        "sync_chains",
        sa.Column("issuer", sa.String(ORG_ID), nullable=False),
        sa.Column("room_id", sa.String(MATRIX_ID), nullable=False),
        sa.Column("top", sa.Integer(), nullable=False),
        sa.Column("missing", sa.Text(), nullable=False),
        sa.Column("gap_since", sa.BigInteger(), nullable=True),
        sa.Column("last_request_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("issuer", "room_id", name="pk_sync_chains"),
    )
    op.create_table(
        "sync_quarantine",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("room_id", sa.String(MATRIX_ID), nullable=False),
        sa.Column("event_id", sa.String(MATRIX_ID), nullable=False),
        sa.Column("sender", sa.String(MATRIX_ID), nullable=False),
        sa.Column("reason", sa.String(REASON), nullable=False),
        sa.Column("detail", sa.String(DETAIL), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sync_quarantine"),
    )
    op.create_index("ix_sync_quarantine_event_id", "sync_quarantine", ["event_id"])
    op.create_index("ix_sync_quarantine_at", "sync_quarantine", ["at"])
