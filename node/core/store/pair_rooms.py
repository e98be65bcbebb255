"""Pair rooms: the Matrix room this node shares with each other member (docs/architecture.md §6).

Normally one per organisation. If both organisations created one at the same moment, both
rooms are kept and read; sends go to the oldest, so the two nodes do not need to agree. A room
replaced by another (its creator's account was seized, decision 0024) is forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from node.core.store.tables import PairRoomRow


@dataclass(frozen=True)
class PairRoom:
    org_id: str
    room_id: str
    created_by_us: bool
    created_at: datetime


def _pair(row: PairRoomRow) -> PairRoom:
    return PairRoom(row.org_id, row.room_id, row.created_by_us, row.created_at)


class PairRoomRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def for_org(self, org_id: str) -> PairRoom | None:
        """The room to send to ``org_id`` through: the oldest pair room with it."""
        row = await self._session.scalar(
            select(PairRoomRow)
            .where(PairRoomRow.org_id == org_id)
            .order_by(PairRoomRow.created_at, PairRoomRow.room_id)
            .limit(1)
        )
        return None if row is None else _pair(row)

    async def for_room(self, room_id: str) -> PairRoom | None:
        row = await self._session.get(PairRoomRow, room_id)
        return None if row is None else _pair(row)

    async def all(self) -> list[PairRoom]:
        rows = await self._session.scalars(
            select(PairRoomRow).order_by(PairRoomRow.org_id, PairRoomRow.created_at)
        )
        return [_pair(row) for row in rows]

    async def remember(
        self, org_id: str, room_id: str, *, created_by_us: bool, at: datetime
    ) -> PairRoom:
        """Record ``room_id`` as a pair room with ``org_id`` (a no-op if already recorded)."""
        existing = await self.for_room(room_id)
        if existing is not None:
            return existing
        row = PairRoomRow(room_id=room_id, org_id=org_id, created_by_us=created_by_us,
                          created_at=at)
        try:
            async with self._session.begin_nested():
                self._session.add(row)
        except IntegrityError:  # a concurrent transaction recorded it first
            found = await self.for_room(room_id)
            if found is None:
                raise
            return found
        return _pair(row)

    async def forget(self, room_id: str) -> None:
        """Stop treating ``room_id`` as a pair room (another room replaced it)."""
        await self._session.execute(delete(PairRoomRow).where(PairRoomRow.room_id == room_id))
