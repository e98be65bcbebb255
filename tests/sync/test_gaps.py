"""Nothing is lost between sync batches: limited timelines are paged, a missing frame is asked
for and re-posted by its issuer, and a crash mid-batch leaves nothing half-stored."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import text

from deploy.homeserver import Federation
from federation.transport import MatrixTransport
from sync.frame import RESEND_EVENT_TYPE, resend_request_content
from sync.host import VerifiedRecord
from sync.inbox import Inbox
from tests.support.sync import (
    Member,
    count,
    eventually,
    members,
    record_token,
    running,
    shared_room,
)


async def _frames_one_by_one(member: Member, room: str, recipients: list[str], n: int) -> None:
    """Queue and seal ``n`` records as ``n`` separate frames (one bundle each)."""
    for _ in range(n):
        async with member.host.transaction() as session:
            await member.engine.enqueue(session, room, recipients, record_token(member.keys))
        assert await member.engine.outbox.bundle_queued() == 1


async def _sealed_in_room(transport: MatrixTransport, room: str) -> int:
    events, _ = await transport.messages(room, None, backwards=True, limit=100)
    return sum(1 for event in events if event.type == "org.minga.sealed")


async def test_a_limited_timeline_is_filled_by_paging_back(
    federation: Federation, tmp_path: Path
) -> None:
    placements = [("a", federation[0]), ("b", federation[1])]
    async with members(tmp_path, placements) as (a, b):
        room = await shared_room(a, b)
        narrow = Inbox(b.host, b.transport, timeline_limit=5)
        await narrow.sync_once()  # B has a sync token, then stops syncing
        await _frames_one_by_one(a, room, [b.org_id], 30)
        assert await a.engine.outbox.send_due() == 30
        await eventually(lambda: _sealed_visible(b, room, 30), what="30 events on B's server")
        outcome = await narrow.sync_once(timeout_ms=0)
        assert (outcome.events, outcome.delivered, outcome.quarantined) == (30, 30, 0)
        assert len(await b.host.received()) == 30
        assert await b.host.query("SELECT missing FROM sync_chains") == [("[]",)]
        again = await narrow.sync_once(timeout_ms=0)
        assert again.events == 0 and b.host.deliveries == 30


async def _sealed_visible(member: Member, room: str, expected: int) -> bool:
    return await _sealed_in_room(member.transport, room) >= expected


async def test_a_missing_frame_is_asked_for_and_resent(
    federation: Federation, tmp_path: Path
) -> None:
    placements = [("a", federation[0]), ("b", federation[1]), ("c", federation[1])]
    async with members(tmp_path, placements) as (a, b, c):
        room = await shared_room(a, b, c)
        await _frames_one_by_one(a, room, [b.org_id, c.org_id], 5)
        # Frame 3 is lost on the way: A believes it was posted, nobody ever sees it.
        async with a.host.transaction() as session:
            await session.execute(text(
                "UPDATE sync_frames SET event_id = '$lost', sent_at = 0 WHERE seq = 3"
            ))
        async with running(a.engine, b.engine, c.engine):
            await eventually(lambda: _has(b, 5), what="all 5 records at B")
            await eventually(lambda: _has(c, 5), what="all 5 records at C")
        assert await b.host.query("SELECT missing FROM sync_chains") == [("[]",)]
        resent = await a.host.query(
            "SELECT f.seq FROM sync_resends r JOIN sync_frames f ON f.id = r.frame_id "
            "WHERE r.event_id IS NOT NULL"
        )
        assert {seq for (seq,) in resent} == {3}
        assert len(resent) <= 2  # B's and C's requests for the same gap share one re-post
        assert b.host.deliveries == 5 and c.host.deliveries == 5
        assert await b.host.quarantined() == [] and await c.host.quarantined() == []


async def _has(member: Member, expected: int) -> bool:
    return len(await member.host.received()) >= expected


async def test_an_answered_resend_of_a_held_frame_is_no_replay(
    federation: Federation, tmp_path: Path
) -> None:
    placements = [("a", federation[0]), ("b", federation[1])]
    async with members(tmp_path, placements) as (a, b):
        room = await shared_room(a, b)
        await a.share(room, [record_token(a.keys) for _ in range(3)], [b.org_id])
        async with running(a.engine, b.engine):
            await eventually(lambda: _has(b, 3), what="3 records at B")
            # Someone asks again for seq 1, which B already holds.
            await b.transport.send(room, RESEND_EVENT_TYPE,
                                   resend_request_content(a.org_id, [(1, 1)]), "ask-again-1")
            await eventually(lambda: _resends_sent(a, 1), what="A re-posts seq 1")
            await eventually(lambda: _processed(b, 2), what="B handles the re-post")
        assert await b.host.quarantined() == []
        assert b.host.deliveries == 3


async def _processed(member: Member, expected: int) -> bool:
    return await count(member.host, "SELECT count(*) FROM sync_processed_events") >= expected


async def _resends_sent(member: Member, expected: int) -> bool:
    sent = await count(member.host, "SELECT count(*) FROM sync_resends WHERE event_id IS NOT NULL")
    return sent >= expected


class CrashingDelivery:
    """Wraps a host; ``deliver`` fails on the records named (a crash, or a bug)."""

    def __init__(self, member: Member, fail_on: set[str] | None = None,
                 crash_after: int | None = None) -> None:
        self._host = member.host
        self.fail_on = fail_on or set()
        self.crash_after = crash_after
        self.calls = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._host, name)

    async def deliver(self, session: object, records: Sequence[VerifiedRecord]) -> None:
        for record in records:
            self.calls += 1
            if record.record_id in self.fail_on or (
                self.crash_after is not None and self.calls > self.crash_after
            ):
                raise RuntimeError("the node died while storing")
        await self._host.deliver(session, records)  # type: ignore[arg-type]


async def test_a_crash_in_the_middle_of_a_batch_stores_nothing_of_it(
    federation: Federation, tmp_path: Path
) -> None:
    placements = [("a", federation[0]), ("b", federation[1])]
    async with members(tmp_path, placements) as (a, b):
        room = await shared_room(a, b)
        await a.share(room, [record_token(a.keys) for _ in range(200)], [b.org_id])
        await a.engine.outbox.bundle_queued()
        frames = await a.engine.outbox.send_due()
        await eventually(lambda: _sealed_visible(b, room, frames), what="frames on B's server")
        dying = Inbox(CrashingDelivery(b, crash_after=120), b.transport)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="died"):
            await dying.sync_once(timeout_ms=0)
        assert await b.host.received() == []
        assert await b.host.query("SELECT value FROM sync_cursor") == []
        rolled_back = b.host.deliveries
        restarted = Inbox(b.host, b.transport)
        outcome = await restarted.sync_once(timeout_ms=0)
        assert outcome.delivered == 200 and b.host.deliveries - rolled_back == 200
        assert len(await b.host.received()) == 200


async def test_an_event_that_keeps_failing_is_quarantined_and_the_rest_delivered(
    federation: Federation, tmp_path: Path
) -> None:
    placements = [("a", federation[0]), ("b", federation[1])]
    async with members(tmp_path, placements) as (a, b):
        room = await shared_room(a, b)
        poison = record_token(a.keys, record_id="0190a5c4-0000-7000-8000-00000000dead")
        await _frames_one_by_one(a, room, [b.org_id], 2)
        async with a.host.transaction() as session:
            await a.engine.enqueue(session, room, [b.org_id], poison)
        await a.engine.outbox.bundle_queued()
        await _frames_one_by_one(a, room, [b.org_id], 2)
        assert await a.engine.outbox.send_due() == 5
        await eventually(lambda: _sealed_visible(b, room, 5), what="frames on B's server")
        buggy = CrashingDelivery(b, fail_on={"0190a5c4-0000-7000-8000-00000000dead"})
        inbox = Inbox(buggy, b.transport, max_attempts=3)  # type: ignore[arg-type]
        for _ in range(2):
            with pytest.raises(RuntimeError):
                await inbox.sync_once(timeout_ms=0)
        outcome = await inbox.sync_once(timeout_ms=0)
        assert (outcome.delivered, outcome.quarantined) == (4, 1)
        assert [reason for _, reason in await b.host.quarantined()] == ["internal-error"]
        assert len(await b.host.received()) == 4
        # Nothing of the failed frame was kept, so its seq stays missing and is asked for again.
        assert await b.host.query("SELECT missing FROM sync_chains") == [("[[3, 3]]",)]


async def _cursor(member: Member) -> list[tuple[object, ...]]:
    return await member.host.query("SELECT value FROM sync_cursor")


async def test_a_quiet_batch_is_not_written_and_a_restart_before_it_repeats_nothing(
    federation: Federation, tmp_path: Path
) -> None:
    placements = [("a", federation[0]), ("b", federation[1])]
    async with members(tmp_path, placements) as (a, b):
        room = await shared_room(a, b)
        inbox = Inbox(b.host, b.transport)
        await inbox.sync_once(timeout_ms=0)
        stored = await _cursor(b)
        assert stored != []
        await a.transport.send(room, "m.room.message", {"msgtype": "m.text", "body": "hi"},
                               "quiet-1")
        await eventually(lambda: _message_visible(b, room), what="the message on B's server")
        quiet = await inbox.sync_once(timeout_ms=0)
        assert quiet.events == 0 and await _cursor(b) == stored  # nothing written
        await _frames_one_by_one(a, room, [b.org_id], 1)
        assert await a.engine.outbox.send_due() == 1
        await eventually(lambda: _sealed_visible(b, room, 1), what="the frame on B's server")
        restarted = Inbox(b.host, b.transport)  # as after a crash: from the stored token
        delivered = 0
        for _ in range(5):  # Synapse may first answer the old token from its response cache
            delivered += (await restarted.sync_once(timeout_ms=1000)).delivered
            if delivered:
                break
        assert delivered == 1 and await _cursor(b) != stored
        again = await inbox.sync_once(timeout_ms=0)  # the first loop's newer, unstored token
        assert again.events == 0 and b.host.deliveries == 1


async def _message_visible(member: Member, room: str) -> bool:
    events, _ = await member.transport.messages(room, None, backwards=True, limit=20)
    return any(event.type == "m.room.message" for event in events)
