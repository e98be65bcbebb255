"""Homeserver outages lose and duplicate nothing: the receiver's server down while records are
shared, and the sender's own server down while more are queued."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.homeserver import Federation, start_federation
from tests.support.sync import Member, eventually, members, record_token, running, shared_room


@pytest.fixture
def own_federation(tmp_path: Path) -> Iterator[Federation]:
    servers = start_federation(tmp_path / "federation", 2)
    try:
        yield servers
    finally:
        servers.stop()


async def _received(member: Member, expected: int) -> bool:
    return len(await member.host.received()) >= expected


async def _all_sent(member: Member) -> bool:
    unsent = await member.host.query(
        "SELECT count(*) FROM sync_frames WHERE event_id IS NULL"
    )
    queued = await member.host.query(
        "SELECT count(*) FROM sync_outbox_items WHERE frame_id IS NULL"
    )
    return bool(unsent[0][0] == 0 and queued[0][0] == 0)


async def test_outages_of_either_homeserver_lose_and_duplicate_nothing(
    own_federation: Federation, tmp_path: Path
) -> None:
    home_a, home_b = own_federation[0], own_federation[1]
    async with members(tmp_path, [("a", home_a), ("b", home_b)]) as (a, b):
        room = await shared_room(a, b)
        async with running(a.engine, b.engine):
            home_b.stop()
            for _ in range(4):  # shared in several goes while B's server is away
                await a.share(room, [record_token(a.keys) for _ in range(50)], [b.org_id])
                await asyncio.sleep(0.3)
            await eventually(lambda: _all_sent(a), what="A's server took every frame")
            home_a.stop()
            await a.share(room, [record_token(a.keys) for _ in range(50)], [b.org_id])
            await asyncio.sleep(2)  # A's outbox fails and backs off meanwhile
            assert not await _all_sent(a)
            assert a.engine.outbox.last_error is not None
            home_a.start()
            await eventually(lambda: _all_sent(a), what="A sends after its server is back")
            home_b.start()
            await eventually(lambda: _received(b, 250), timeout=120, what="250 records at B")
        received = await b.host.received()
        assert len(received) == len(set(received)) == 250
        assert b.host.deliveries == 250
        assert await b.host.quarantined() == []
