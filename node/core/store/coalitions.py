"""The coalitions this node is or was in, and each one's verified members (decision 0032).

One organisation identity (the same keys and safety code) belongs to any number of
coalitions. Each coalition has its own room and roster; a member organisation's roster entry
is kept once (``members``), and ``coalition_members`` says which coalitions it was verified in.
A coalition's name is encrypted: the list of coalitions is itself something to protect.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from node.core.store.cipher import Cell, ColumnCipher
from node.core.store.errors import RecordNotFound
from node.core.store.ids import Clock
from node.core.store.tables import CoalitionMemberRow, CoalitionRow, ReceivedRecordRow

# Before decision 0032 a node was in at most one coalition, kept in this setting.
SINGLE_COALITION_SETTING = "coalition"


@dataclass(frozen=True)
class Coalition:
    coalition_id: str
    room_id: str
    name: str | None = field(repr=False)
    joined_at: datetime
    left_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.left_at is None

    @property
    def label(self) -> str:
        """What staff see: the coalition's name, or its id when it gave none."""
        return self.name or self.coalition_id


def _name_cell(coalition_id: str) -> Cell:
    return Cell("coalitions", "name", (coalition_id,))


class CoalitionRepository:
    def __init__(self, session: AsyncSession, cipher: ColumnCipher, clock: Clock) -> None:
        self._session = session
        self._cipher = cipher
        self._clock = clock

    async def add(self, coalition_id: str, room_id: str, name: str | None) -> Coalition:
        """Remember a coalition this node created or joined (again, if it had left it)."""
        row = await self._session.get(CoalitionRow, coalition_id) or CoalitionRow(
            coalition_id=coalition_id)
        row.room_id = room_id
        row.name = None if name is None else self._cipher.encrypt_text(
            name, _name_cell(coalition_id))
        row.joined_at = self._clock()
        row.left_at = None
        self._session.add(row)
        await self._session.flush()
        return self._coalition(row)

    async def all(self, *, with_left: bool = False) -> list[Coalition]:
        """The coalitions this node is in (and those it left, with ``with_left``), oldest
        first."""
        query = select(CoalitionRow).order_by(CoalitionRow.joined_at, CoalitionRow.coalition_id)
        if not with_left:
            query = query.where(CoalitionRow.left_at.is_(None))
        return [self._coalition(row) for row in await self._session.scalars(query)]

    async def get(self, coalition_id: str) -> Coalition:
        row = await self._session.get(CoalitionRow, coalition_id)
        if row is None:
            raise RecordNotFound(f"no coalition {coalition_id}")
        return self._coalition(row)

    async def by_room(self, room_id: str) -> Coalition | None:
        row = await self._session.scalar(
            select(CoalitionRow).where(CoalitionRow.room_id == room_id))
        return None if row is None else self._coalition(row)

    async def move_room(self, coalition_id: str, room_id: str) -> None:
        """The coalition moved to a new room (decision 0025)."""
        await self._session.execute(update(CoalitionRow).where(
            CoalitionRow.coalition_id == coalition_id).values(room_id=room_id))

    async def mark_left(self, coalition_id: str) -> None:
        await self._session.execute(update(CoalitionRow).where(
            CoalitionRow.coalition_id == coalition_id).values(left_at=self._clock()))

    async def set_members(self, coalition_id: str, org_ids: Collection[str]) -> None:
        """The verified members of ``coalition_id`` are now exactly ``org_ids``."""
        await self._session.execute(delete(CoalitionMemberRow).where(
            CoalitionMemberRow.coalition_id == coalition_id))
        self._session.add_all([CoalitionMemberRow(coalition_id=coalition_id, org_id=org_id)
                               for org_id in sorted(set(org_ids))])
        await self._session.flush()

    async def add_member(self, coalition_id: str, org_id: str) -> None:
        if await self._session.get(CoalitionMemberRow, (coalition_id, org_id)) is None:
            self._session.add(CoalitionMemberRow(coalition_id=coalition_id, org_id=org_id))
            await self._session.flush()

    async def member_ids(self, coalition_id: str) -> frozenset[str]:
        """The org ids verified in ``coalition_id``'s roster (this node's own included)."""
        return frozenset(await self._session.scalars(select(CoalitionMemberRow.org_id).where(
            CoalitionMemberRow.coalition_id == coalition_id)))

    async def memberships(self) -> dict[str, frozenset[str]]:
        """Per coalition id (left ones included), its verified members' org ids."""
        found: dict[str, set[str]] = {}
        for coalition_id, org_id in await self._session.execute(
                select(CoalitionMemberRow.coalition_id, CoalitionMemberRow.org_id)):
            found.setdefault(coalition_id, set()).add(org_id)
        return {coalition_id: frozenset(ids) for coalition_id, ids in found.items()}

    async def shared_with(self, org_id: str) -> list[Coalition]:
        """The coalitions this node is in where ``org_id`` is a verified member."""
        rows = await self._session.scalars(
            select(CoalitionRow).join(CoalitionMemberRow, CoalitionMemberRow.coalition_id
                                      == CoalitionRow.coalition_id)
            .where(CoalitionMemberRow.org_id == org_id, CoalitionRow.left_at.is_(None))
            .order_by(CoalitionRow.joined_at, CoalitionRow.coalition_id))
        return [self._coalition(row) for row in rows]

    async def tag_unmarked_received(self, coalition_id: str) -> int:
        """Received records from before decision 0032 came through the one coalition the node
        was in: they are marked so."""
        result = await self._session.execute(
            update(ReceivedRecordRow).where(ReceivedRecordRow.coalition_id.is_(None))
            .values(coalition_id=coalition_id))
        return int(getattr(result, "rowcount", 0) or 0)

    def _coalition(self, row: CoalitionRow) -> Coalition:
        name = None if row.name is None else self._cipher.decrypt_text(
            row.name, _name_cell(row.coalition_id))
        return Coalition(row.coalition_id, row.room_id, name, row.joined_at, row.left_at)


async def adopt_single_coalition(repository: CoalitionRepository, single: object,
                                 verified_ids: Collection[str]) -> Coalition | None:
    """A store from before decision 0032 kept its one coalition in a setting (``single``):
    it becomes the node's first coalition, every verified member a member of it, and every
    record received so far marked as come through it. Nothing to do once done (or when the
    node was in no coalition)."""
    if not isinstance(single, dict) or not isinstance(single.get("room_id"), str):
        return None
    if await repository.all(with_left=True):
        return None
    coalition_id = single.get("coalition_id") or single["room_id"]
    name = single.get("name")
    coalition = await repository.add(str(coalition_id), single["room_id"],
                                     name if isinstance(name, str) else None)
    await repository.set_members(coalition.coalition_id, verified_ids)
    await repository.tag_unmarked_received(coalition.coalition_id)
    return coalition
