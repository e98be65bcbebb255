"""Sharing history: which version of which record went to which member, with which fields.

One row per record version (or retraction) sent to one recipient, written in the same
transaction that queues the delivery, so the history never claims a send that was not queued.
The staff user who shared is encrypted like every actor; field paths and org ids are not content.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from node.store.cipher import Cell, ColumnCipher
from node.store.ids import normalise_record_id
from node.store.tables import ShareRow

SHARE = "share"
RETRACT = "retract"
MAX_PAGE = 500


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


def _actor_cell(record_id: str, version: int, recipient: str, action: str, at: datetime) -> Cell:
    return Cell("shares", "actor", (record_id, str(version), recipient, action, at.isoformat()))


class ShareRepository:
    def __init__(self, session: AsyncSession, cipher: ColumnCipher) -> None:
        self._session = session
        self._cipher = cipher

    async def add(
        self,
        *,
        record_id: str,
        version: int,
        kind: str,
        action: str,
        recipient: str,
        fields: Collection[str],
        room_id: str,
        actor: str,
        at: datetime,
    ) -> ShareEntry:
        record_id = normalise_record_id(record_id)
        at = at.astimezone(UTC)
        paths = tuple(sorted(fields))
        row = ShareRow(
            record_id=record_id, version=version, kind=kind, action=action,
            recipient=recipient, fields=list(paths), room_id=room_id, shared_at=at,
            actor=self._cipher.encrypt_text(
                actor, _actor_cell(record_id, version, recipient, action, at)
            ),
        )
        self._session.add(row)
        await self._session.flush()
        return ShareEntry(record_id, version, kind, action, recipient, paths, room_id, actor, at)

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
        return [self._entry(row) for row in rows]

    async def recipients(self, record_id: str) -> list[str]:
        """Every organisation that was sent any version of ``record_id``."""
        found = await self._session.scalars(
            select(ShareRow.recipient)
            .where(ShareRow.record_id == normalise_record_id(record_id), ShareRow.action == SHARE)
            .distinct()
            .order_by(ShareRow.recipient)
        )
        return list(found)

    def _entry(self, row: ShareRow) -> ShareEntry:
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
