"""Records travel sealed between members on two federated homeservers: all, once, only to whom
they are addressed; retries after a crash post nothing twice; large records go as blobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.homeserver import Federation
from federation.transport import MatrixTransport
from sync.engine import SyncEngine
from sync.outbox import Outbox, outbox_counts
from tests.support.sync import (
    FAST,
    Member,
    count,
    eventually,
    members,
    record_token,
    running,
    shared_room,
)


async def test_two_hundred_records_arrive_bundled_exactly_once(
    federation: Federation, tmp_path: Path
) -> None:
    placements = [("a", federation[0]), ("b", federation[1]), ("c", federation[1])]
    async with members(tmp_path, placements) as (a, b, c):
        room = await shared_room(a, b, c)
        tokens = [record_token(a.keys) for _ in range(200)]
        await a.share(room, tokens, [b.org_id])
        async with running(a.engine, b.engine, c.engine):
            await eventually(lambda: _has(b, 200), what="200 records at B")
            sent = await count(a.host, "SELECT count(*) FROM sync_frames")
            await eventually(lambda: _links(c, sent), what="C sees every frame")
        assert len(await b.host.received()) == 200
        assert b.host.deliveries == 200  # each delivered once, not just stored once
        assert 1 <= sent < 20  # bundled, not one event per record
        assert await c.host.received() == [] and c.host.deliveries == 0
        assert await c.host.quarantined() == [] and await b.host.quarantined() == []
        async with a.host.transaction() as session:
            counts = await outbox_counts(session)
        assert (counts.queued_items, counts.unsent_frames, counts.sent_frames) == (0, 0, sent)


async def _has(member: Member, expected: int) -> bool:
    return len(await member.host.received()) >= expected


async def _links(member: Member, expected: int) -> bool:
    return await count(member.host, "SELECT count(*) FROM sync_chain_links") >= expected


class CrashAfterSend(MatrixTransport):
    """Posts the event, then dies before the outbox can note the event id (a crash)."""

    async def send(self, room_id: str, event_type: str, content: dict[str, object],
                   txn_id: str) -> str:
        await super().send(room_id, event_type, content, txn_id)
        raise RuntimeError("node killed after the homeserver took the event")


async def test_a_frame_posted_before_a_crash_is_not_posted_twice(
    federation: Federation, tmp_path: Path
) -> None:
    placements = [("a", federation[0]), ("b", federation[1])]
    async with members(tmp_path, placements) as (a, b):
        room = await shared_room(a, b)
        await a.share(room, [record_token(a.keys) for _ in range(3)], [b.org_id])
        crashing = CrashAfterSend(a.transport.login, request_timeout=20, max_retries=2)
        try:
            doomed = Outbox(a.host, crashing)
            await doomed.bundle_queued()
            with pytest.raises(RuntimeError, match="killed"):
                await doomed.send_due()
        finally:
            await crashing.close()
        async with a.host.transaction() as session:
            assert (await outbox_counts(session)).unsent_frames == 1
        restarted = a.new_transport()  # a new process: same device, same access token
        try:
            assert await Outbox(a.host, restarted).send_due() == 1
        finally:
            await restarted.close()
        async with running(b.engine):
            await eventually(lambda: _has(b, 3), what="3 records at B")
        sealed = await _sealed_events(b.transport, room)
        assert len(sealed) == 1  # the retry reused the txn id: one event
        [(event_id,)] = await a.host.query("SELECT event_id FROM sync_frames")
        assert sealed == [event_id]
        assert len(await b.host.received()) == 3 and await b.host.quarantined() == []


async def _sealed_events(transport: MatrixTransport, room: str) -> list[str]:
    events, _ = await transport.messages(room, None, backwards=True, limit=100)
    return [event.event_id for event in events if event.type == "org.minga.sealed"]


async def test_a_large_record_travels_as_a_media_blob(
    federation: Federation, tmp_path: Path
) -> None:
    placements = [("a", federation[0]), ("b", federation[1])]
    async with members(tmp_path, placements) as (a, b):
        room = await shared_room(a, b)
        large = record_token(a.keys, body_size=150_000)
        small = record_token(a.keys)
        await a.share(room, [large, small], [b.org_id])
        async with running(a.engine, b.engine):
            await eventually(lambda: _has(b, 2), what="both records at B")
        [(content,)] = await a.host.query("SELECT content FROM sync_frames WHERE seq = 1")
        reference = json.loads(content)["blob"]
        assert reference["url"].startswith("mxc://") and reference["size"] > 150_000
        assert await a.host.query("SELECT blob FROM sync_frames WHERE blob IS NOT NULL") == []
        assert len(await b.host.received()) == 2 and await b.host.quarantined() == []


async def test_engine_status_counts_what_was_sent(
    federation: Federation, tmp_path: Path
) -> None:
    placements = [("a", federation[0]), ("b", federation[1])]
    async with members(tmp_path, placements) as (a, b):
        room = await shared_room(a, b)
        engine = SyncEngine(a.host, a.transport, FAST)
        await a.share(room, [record_token(a.keys) for _ in range(4)], [b.org_id])
        before = await engine.status()
        assert (before.queued_items, before.sent_frames) == (4, 0)
        async with running(engine, b.engine):
            await eventually(lambda: _has(b, 4), what="4 records at B")
        after = await engine.status()
        assert (after.queued_items, after.unsent_frames, after.sent_frames) == (0, 0, 1)
        assert after.last_sync_ms is not None and after.quarantined == 0
