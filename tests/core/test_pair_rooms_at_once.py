"""A first share with many members makes their pair rooms a few at a time, and a failure is
raised only once every room under way is finished (node/core/sharing.py: rooms_of)."""

from __future__ import annotations

import asyncio

import pytest

from node.core.rooms import PairRoomError
from node.core.sharing import PAIR_ROOMS_AT_ONCE, rooms_of


class Maker:
    """Stands in for the node's pair room lookup: each room takes a moment to make."""

    def __init__(self, failing: str | None = None) -> None:
        self.failing = failing
        self.running = 0
        self.most_at_once = 0
        self.made: list[str] = []

    async def __call__(self, org_id: str) -> str:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(0.01)
            if org_id == self.failing:
                raise PairRoomError(f"could not create the pair room with {org_id}")
            self.made.append(org_id)
            return f"!pair-{org_id}:hs"
        finally:
            self.running -= 1


async def test_rooms_are_made_several_at_once_and_never_more_than_the_bound() -> None:
    members = [f"org{i:02d}" for i in range(30)]
    maker = Maker()
    rooms = await rooms_of(members, maker)
    assert rooms == {org: f"!pair-{org}:hs" for org in members}
    assert 1 < maker.most_at_once <= PAIR_ROOMS_AT_ONCE


async def test_a_failure_is_raised_after_every_other_room_is_made() -> None:
    members = [f"org{i:02d}" for i in range(20)]
    maker = Maker(failing="org03")
    with pytest.raises(PairRoomError, match="org03"):
        await rooms_of(members, maker)
    assert sorted(maker.made) == [org for org in members if org != "org03"]
    assert maker.running == 0
