"""Sharing history: which version of which record went to which member, with which fields.

One row per record version (or retraction) sent to one recipient, written in the same
transaction that queues the delivery, so the history never claims a send that was not queued.
The staff user who shared is encrypted like every actor; field paths and org ids are not content.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from node.core.store.cipher import Cell, ColumnCipher
from node.core.store.ids import normalise_record_id
from node.core.store.tables import ShareRow
from sync.tables import table

_ADD = insert(table(ShareRow))  # built once: every share and alert files its shares

SHARE = "share"
RETRACT = "retract"
MAX_PAGE = 500
_IDS_PER_QUERY = 500  # well under every database's limit on bound parameters


@dataclass(frozen=True)
class ShareEntry:
    record_id: str
    version: int
    kind: str
    action: str
    recipient: str
    fields: tuple[str, ...]
    room_id: str
    actor: str = field(repr=False)
    shared_at: datetime


@dataclass(frozen=True)
class NewShare:
    record_id: str
    version: int
    kind: str
    action: str
    recipient: str
    fields: Collection[str]
    room_id: str
    actor: str = field(repr=False)
    at: datetime


def _actor_cell(record_id: str, version: int, recipient: str, action: str, at: datetime) -> Cell:
    return Cell("shares", "actor", (record_id, str(version), recipient, action, at.isoformat()))


class ShareRepository:
    def __init__(self, session: AsyncSession, cipher: ColumnCipher) -> None:
        self._session = session
        self._cipher = cipher

    async def add_many(self, shares: Sequence[NewShare]) -> list[ShareEntry]:
        """File several shares at once (one bulk insert: a bulk share files thousands)."""
        entries = [self._entry(share) for share in shares]
        if entries:
            await self._session.execute(_ADD, [self._values(e) for e in entries])
        return entries

    async def add(self, share: NewShare) -> ShareEntry:
        (entry,) = await self.add_many([share])
        return entry

    @staticmethod
    def _entry(share: NewShare) -> ShareEntry:
        return ShareEntry(normalise_record_id(share.record_id), share.version, share.kind,
                          share.action, share.recipient, tuple(sorted(share.fields)),
                          share.room_id, share.actor, share.at.astimezone(UTC))

    def _values(self, entry: ShareEntry) -> dict[str, Any]:
        cell = _actor_cell(entry.record_id, entry.version, entry.recipient, entry.action,
                           entry.shared_at)
        return {
            "record_id": entry.record_id, "version": entry.version, "kind": entry.kind,
            "action": entry.action, "recipient": entry.recipient, "fields": list(entry.fields),
            "room_id": entry.room_id, "shared_at": entry.shared_at,
            "actor": self._cipher.encrypt_text(entry.actor, cell),
        }

    async def history(self, record_id: str, *, limit: int = MAX_PAGE) -> list[ShareEntry]:
        """Every share and retraction of ``record_id``, oldest first."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        rows = await self._session.scalars(
            select(ShareRow)
            .where(ShareRow.record_id == normalise_record_id(record_id))
            .order_by(ShareRow.id)
            .limit(limit)
        )
        return [self._read(row) for row in rows]

    async def recipients(self, record_id: str) -> list[str]:
        """Every organisation that was sent any version of ``record_id``."""
        found = await self._session.scalars(
            select(ShareRow.recipient)
            .where(ShareRow.record_id == normalise_record_id(record_id), ShareRow.action == SHARE)
            .distinct()
            .order_by(ShareRow.recipient)
        )
        return list(found)

    async def retracted_among(self, record_ids: Sequence[str]) -> set[str]:
        """Those of ``record_ids`` that were retracted."""
        wanted = sorted({normalise_record_id(record_id) for record_id in record_ids})
        found: set[str] = set()
        for start in range(0, len(wanted), _IDS_PER_QUERY):
            found.update(await self._session.scalars(
                select(ShareRow.record_id).where(
                    ShareRow.record_id.in_(wanted[start:start + _IDS_PER_QUERY]),
                    ShareRow.action == RETRACT,
                ).distinct()
            ))
        return found

    def _read(self, row: ShareRow) -> ShareEntry:
        cell = _actor_cell(row.record_id, row.version, row.recipient, row.action, row.shared_at)
        return ShareEntry(
            record_id=row.record_id,
            version=row.version,
            kind=row.kind,
            action=row.action,
            recipient=row.recipient,
            fields=tuple(row.fields),
            room_id=row.room_id,
            actor=self._cipher.decrypt_text(row.actor, cell),
            shared_at=row.shared_at,
        )
