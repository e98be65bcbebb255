"""The sync layer's own tables in the node's database (docs/architecture.md §1: sync owns them,
node does not).

Outbox: ``sync_outbox_items`` (one queued record each; its SD-JWT encrypted at rest with the
host's cipher until the frame it was sealed into is posted, then erased), ``sync_frames`` (one
sealed ``org.minga.sealed`` event each, kept after sending so it can be re-posted) and
``sync_resends`` (re-posts asked for by receivers).

Inbox: ``sync_cursor`` (the persisted ``next_batch``), ``sync_rooms`` (the newest event seen per
room, where gap filling stops), ``sync_processed_events``, ``sync_chain_links`` and
``sync_chains`` (each issuer's chain per room and its gaps) and ``sync_quarantine``.

Nothing here holds case content in clear: frames hold only sealed envelopes (or references to
them), quarantine rows hold reasons and ids. Times are unix milliseconds. Every change needs a new
revision in ``sync/migrations/versions``; a test compares these models with the migrated schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql import Executable

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ORG_ID = 64
MATRIX_ID = 255
HASH = 64
TXN_ID = 128
REASON = 64
DETAIL = 300
ERROR = 200


class SyncBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table(model: type[DeclarativeBase]) -> Table:
    """A model's table (the sync layer's or the store's), for plain Core statements on the hot
    paths: a row inserted through the ORM's unit of work or bulk machinery costs a few tenths
    of a millisecond more."""
    return cast(Table, model.__table__)


class _UpsertInsert(Protocol):
    """What SQLite's and PostgreSQL's INSERT both offer: ``ON CONFLICT`` and ``excluded``."""

    def __call__(self, table: Table) -> Any: ...


class PerDialect:
    """An INSERT ... ON CONFLICT statement, built once for each database the store runs on;
    :meth:`on` picks the one for a session's database. Both dialects spell the clause the same
    way in SQLAlchemy, so one ``build`` function makes both."""

    def __init__(self, build: Callable[[_UpsertInsert], Executable]) -> None:
        self._statements = {"sqlite": build(sqlite.insert), "postgresql": build(postgresql.insert)}

    def on(self, session: AsyncSession) -> Executable:
        return self._statements[session.get_bind().dialect.name]


# --- outbox -----------------------------------------------------------------------------------


class OutboxItem(SyncBase):
    __tablename__ = "sync_outbox_items"
    __table_args__ = (Index("ix_sync_outbox_items_frame_id", "frame_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Random, chosen before the row has an id: the at-rest cipher context of ``token``.
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    room_id: Mapped[str] = mapped_column(String(MATRIX_ID))
    recipients: Mapped[str] = mapped_column(Text)  # canonical JSON list of sorted org ids
    token: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    frame_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("sync_frames.id"), nullable=True
    )
    queued_at: Mapped[int] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(String(ERROR), nullable=True)


class Frame(SyncBase):
    __tablename__ = "sync_frames"
    __table_args__ = (
        UniqueConstraint("room_id", "seq", name="uq_sync_frames_room_seq"),
        Index("ix_sync_frames_event_id", "event_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    room_id: Mapped[str] = mapped_column(String(MATRIX_ID))
    seq: Mapped[int] = mapped_column(Integer)
    envelope_hash: Mapped[str] = mapped_column(String(HASH))
    txn_id: Mapped[str] = mapped_column(String(TXN_ID), unique=True)
    # Canonical JSON of the event content; None while a blob still waits for its upload.
    content: Mapped[str | None] = mapped_column(Text, nullable=True)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    record_count: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[str | None] = mapped_column(String(MATRIX_ID), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    sent_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(String(ERROR), nullable=True)


class Resend(SyncBase):
    __tablename__ = "sync_resends"
    __table_args__ = (Index("ix_sync_resends_event_id", "event_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    frame_id: Mapped[int] = mapped_column(Integer, ForeignKey("sync_frames.id"), index=True)
    request_event_id: Mapped[str] = mapped_column(String(MATRIX_ID))
    event_id: Mapped[str | None] = mapped_column(String(MATRIX_ID), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    sent_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(String(ERROR), nullable=True)


# --- inbox ------------------------------------------------------------------------------------


class Cursor(SyncBase):
    __tablename__ = "sync_cursor"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RoomMark(SyncBase):
    """The newest timeline event already handled in a room: gap filling pages back to it."""

    __tablename__ = "sync_rooms"

    room_id: Mapped[str] = mapped_column(String(MATRIX_ID), primary_key=True)
    last_event_id: Mapped[str] = mapped_column(String(MATRIX_ID))


class ProcessedEvent(SyncBase):
    __tablename__ = "sync_processed_events"

    event_id: Mapped[str] = mapped_column(String(MATRIX_ID), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(MATRIX_ID))
    processed_at: Mapped[int] = mapped_column(BigInteger)


class ChainLinkRow(SyncBase):
    __tablename__ = "sync_chain_links"

    issuer: Mapped[str] = mapped_column(String(ORG_ID), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(MATRIX_ID), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(HASH))
    prev: Mapped[str] = mapped_column(String(HASH))
    event_id: Mapped[str] = mapped_column(String(MATRIX_ID))


class Chain(SyncBase):
    """One issuer's chain in one room: highest seq seen, what is missing below it, requests."""

    __tablename__ = "sync_chains"

    issuer: Mapped[str] = mapped_column(String(ORG_ID), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(MATRIX_ID), primary_key=True)
    top: Mapped[int] = mapped_column(Integer, default=0)
    missing: Mapped[str] = mapped_column(Text, default="[]")  # JSON [[from, to], ...]
    gap_since: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_request_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class QuarantineRow(SyncBase):
    __tablename__ = "sync_quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    room_id: Mapped[str] = mapped_column(String(MATRIX_ID))
    event_id: Mapped[str] = mapped_column(String(MATRIX_ID), index=True)
    sender: Mapped[str] = mapped_column(String(MATRIX_ID))
    reason: Mapped[str] = mapped_column(String(REASON))
    detail: Mapped[str] = mapped_column(String(DETAIL))
    at: Mapped[int] = mapped_column(BigInteger, index=True)
