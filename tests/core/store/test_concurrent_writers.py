"""Writers at the same time on one database, as two node processes (``minga run`` and a CLI
command) or many tasks of one would: per-room sequence numbers stay gapless, hash chains
unbroken, and every record is sealed, claimed and delivered exactly once. SQLite orders writers
with its single writer lock; PostgreSQL with the store's advisory lock (decision 0021)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import func, select

from federation.identity import OrgKeys, sign_member_entry
from federation.secretbox import FAST_TEST_PARAMS
from federation.transport import MatrixTransport, TimelineEvent
from node.assembly import node_registry
from node.core.runtime import SYNC_MIGRATIONS, Node
from node.core.store import Store, create_data_key, open_store, unlock_data_key
from node.core.sync_host import NodeSyncHost
from schemas.ids import new_record_id
from sync.frame import envelope_hash, parse_content, read_chain_context
from sync.host import VerifiedRecord
from sync.inbox import _claim
from sync.outbox import Outbox
from sync.tables import Frame, OutboxItem, ProcessedEvent
from tests.support.coalitions import in_coalition
from tests.support.sync import record_token

OWN, PEER = OrgKeys.generate(), OrgKeys.generate()
ROOMS = ("!one:hs", "!two:hs")
WRITERS = 6
SHARES_PER_WRITER = 8


@pytest.fixture
async def hosts(store_location: Path | str, tmp_path: Path) -> AsyncIterator[list[NodeSyncHost]]:
    """Two hosts, each on a store of its own (own engine and connections), one database."""
    create_data_key(tmp_path, "pass", FAST_TEST_PARAMS)
    key = unlock_data_key(tmp_path, "pass")
    stores: list[Store] = []
    try:
        for _ in range(2):
            stores.append(await open_store(store_location, key, migrations=[SYNC_MIGRATIONS]))
        async with stores[0].transaction() as tx:
            for keys in (OWN, PEER):
                entry = sign_member_entry(keys, {"name": "x", "country": "KE"})
                await tx.orgs.save_member(keys.org_id, entry, verified=True, safety_code="s",
                                          matrix_user_id=f"@{keys.org_id[:8]}:hs")
            await in_coalition(tx, OWN.org_id, PEER.org_id)  # records from others are refused
        nodes = [Node(config=cast(Any, None), store=store, keys=OWN, own=cast(Any, None))
                 for store in stores]
        yield [await NodeSyncHost.open(node, node_registry()) for node in nodes]
    finally:
        for store in stores:
            await store.close()


def _outbox(host: NodeSyncHost) -> Outbox:
    return Outbox(host, cast(MatrixTransport, None))  # sealing never touches the homeserver


async def _share(host: NodeSyncHost, room_id: str, count: int, *, urgent: bool) -> None:
    """Queue ``count`` records; an urgent one (an alert) is sealed in its own transaction."""
    outbox = _outbox(host)
    for _ in range(count):
        async with host.transaction() as session:
            item = await outbox.enqueue(session, room_id, [PEER.org_id], record_token(OWN))
            if urgent:
                await outbox.bundle_in(session, [item])
        await asyncio.sleep(0)


async def _bundle_repeatedly(host: NodeSyncHost, rounds: int) -> None:
    for _ in range(rounds):
        await _outbox(host).bundle_queued()
        await asyncio.sleep(0)


async def test_concurrent_shares_and_alerts_keep_every_room_chain_gapless(
        hosts: list[NodeSyncHost]) -> None:
    work = [_share(hosts[n % 2], ROOMS[n % 2], SHARES_PER_WRITER, urgent=n % 3 == 0)
            for n in range(WRITERS)]
    work += [_bundle_repeatedly(host, SHARES_PER_WRITER) for host in hosts]
    await asyncio.gather(*work)
    await _outbox(hosts[0]).bundle_queued()  # whatever the racing passes left

    async with hosts[0].transaction() as session:
        frames = list(await session.scalars(select(Frame).order_by(Frame.room_id, Frame.seq)))
        unbundled = await session.scalar(
            select(func.count()).where(OutboxItem.frame_id.is_(None)))
        items = await session.scalar(select(func.count()).select_from(OutboxItem))
    assert unbundled == 0 and items == WRITERS * SHARES_PER_WRITER
    assert sum(frame.record_count for frame in frames) == items  # each record sealed once
    for room_id in ROOMS:
        chain = [frame for frame in frames if frame.room_id == room_id]
        assert [frame.seq for frame in chain] == list(range(1, len(chain) + 1))
        previous = ""
        for frame in chain:
            assert frame.content is not None
            envelope = parse_content(json.loads(frame.content))
            assert isinstance(envelope, dict)
            context = read_chain_context(envelope["context"])
            assert (context.seq, context.prev) == (frame.seq, previous)
            previous = envelope_hash(envelope)
            assert previous == frame.envelope_hash


def _event(n: int) -> TimelineEvent:
    return TimelineEvent(event_id=f"$event{n}", room_id=ROOMS[0], sender="@peer:hs",
                         type="org.minga.sealed", content={}, origin_server_ts=n)


async def test_concurrent_inbox_batches_claim_and_deliver_each_record_once(
        hosts: list[NodeSyncHost]) -> None:
    record_ids = [new_record_id() for _ in range(20)]

    async def batch(host: NodeSyncHost, numbers: range) -> set[str]:
        """One sync batch: claim its events, deliver the records of those newly claimed."""
        async with host.transaction() as session:
            claimed = await _claim(session, [_event(n) for n in numbers], at_ms=1)
            records = [VerifiedRecord(
                issuer=PEER.org_id, record_id=record_ids[n], version=1, kind="case",
                claims={"record_id": record_ids[n], "version": 1, "kind": "case", "n": n},
                disclosed_paths=frozenset({"n"}), issued_at=1, room_id=ROOMS[0],
                event_id=f"$event{n}", origin_server_ts=1)
                for n in numbers if f"$event{n}" in claimed]
            await host.deliver(session, records)
        return claimed

    # Overlapping batches, as after a restart from an older sync token in two processes.
    claims = await asyncio.gather(*(batch(hosts[n % 2], range(n, n + 10)) for n in range(0, 11)))
    every = [event for claimed in claims for event in claimed]
    assert sorted(every) == sorted({f"$event{n}" for n in range(20)})  # each exactly once
    async with hosts[0].node.store.read() as tx:
        delivered = [await tx.received.versions(PEER.org_id, record_id)
                     for record_id in record_ids]
        processed = await tx.session.scalar(select(func.count()).select_from(ProcessedEvent))
    assert [len(versions) for versions in delivered] == [1] * 20
    assert processed == 20
