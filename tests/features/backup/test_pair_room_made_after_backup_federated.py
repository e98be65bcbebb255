"""A pair room a seized member's old account made *after* its last backup is replaced by the
peer (M13, decision 0024, the peer's fallback): two members on real homeservers.

A is backed up; then A shares with B for the first time, so A's old account makes the A–B pair
room, which the backup does not know. B shares with A there, once while A still runs and once
after A's machine is seized. A is restored on a new machine with a new account and new keys; it
cannot replace a room it does not know, and its new account can never enter it (room version
12: only its creator, the old account, may invite). B sees A's move in the roster, waits the
grace period (short here) for A's own replacement, then replaces the room itself: everything B
posted there reaches A, once, verified, with no refusal and no gap, and shares flow both ways in
the new room.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path

from deploy.homeserver import Federation
from node.core.cli_support import unix_now
from node.core.coalition import invite_member, join_coalition
from node.core.rooms import ROOM_REPLACED, pair_room_of
from node.core.runtime import open_node
from node.core.store.pair_rooms import PairRoomRepository
from node.features.backup.service import create_backup
from sync.requeue import replaced_rooms
from sync.resume import held_rooms
from tests.support.api_harness import PASSPHRASE, RunningApi, WallClock
from tests.support.restore import restore_on_new_account
from tests.support.sharing import (
    FAST,
    arrives_verified,
    chain_gaps,
    eventually,
    form_coalition,
    member_running,
    members_on,
    passphrase_env,
    quarantined_count,
    received,
    share_case,
)

# B waits this long for A's own replacement before it replaces the room itself.
GRACE = dataclasses.replace(FAST, peer_replacement_grace_seconds=2.0)


async def _pair_rooms(api: RunningApi) -> dict[str, str]:
    async with api.node.store.read() as tx:
        return {p.room_id: p.org_id for p in await PairRoomRepository(tx.session).all()}


async def test_the_peer_replaces_a_pair_room_made_after_the_backup(
    federation3: Federation, tmp_path: Path
) -> None:
    # A's new account goes to the third homeserver.
    b_cfg, a_cfg = await members_on([federation3[0], federation3[1]], tmp_path)
    coalition = await form_coalition([b_cfg, a_cfg])
    backup = tmp_path / "a.mingabackup"
    async with AsyncExitStack() as stack:
        b = await stack.enter_async_context(member_running(b_cfg, GRACE, clock=WallClock()))
        async with member_running(a_cfg, GRACE, clock=WallClock()) as a:
            a_org, b_org = a.node.org_id, b.node.org_id
            create_backup(a_cfg, backup, PASSPHRASE, created_at=unix_now())
            first = await share_case(a, "nairobi", [b_org])  # A's old account makes the room
            await arrives_verified(b, a_org, first)
            old_room = await pair_room_of(a.node, b_org)
            assert old_room is not None and await pair_room_of(b.node, a_org) == old_room
            after_backup = await share_case(b, "cauca", [a_org])
            await arrives_verified(a, b_org, after_backup)
        meanwhile = await share_case(b, "minsk", [a_org])  # A's machine is seized

        restored = await restore_on_new_account(backup, tmp_path / "new-machine", federation3[2])
        moved = restored.moved
        await invite_member(b.node, moved.user_id)
        with passphrase_env():
            async with open_node(restored.config_file) as node:
                assert await pair_room_of(node, b_org) is None  # the backup does not know it
                await join_coalition(node, coalition)

        a2 = await stack.enter_async_context(member_running(restored.config_file, GRACE,
                                                            clock=WallClock()))
        await arrives_verified(a2, b_org, after_backup)
        await arrives_verified(a2, b_org, meanwhile)

        async def b_replaced_it() -> str | None:
            room = await pair_room_of(b.node, a_org)
            return room if room not in (None, old_room) else None

        new_room = await eventually(b_replaced_it, what="B's pair room with A replaced")
        assert await pair_room_of(a2.node, b_org) == new_room
        for api in (a2, b):
            assert old_room not in await _pair_rooms(api)
            async with api.node.store.read() as tx:
                assert (await replaced_rooms(tx.session)).get(old_room) == new_room
        async with b.node.store.read() as tx:
            by_b = [e for e in await tx.audit.recent() if e.action == ROOM_REPLACED]
        # B re-posted both shares it had posted in the old room (A holds none of it).
        assert [(e.target, e.details["old_room"], e.details["room_id"], e.details["resent"],
                 e.details.get("by_peer")) for e in by_b] == \
            [(a_org, old_room, new_room, 2, True)]
        async with a2.node.store.read() as tx:
            taken = [e.details for e in await tx.audit.recent() if e.action == ROOM_REPLACED]
        assert [(d["old_room"], d["room_id"]) for d in taken] == [(old_room, new_room)]

        third = await share_case(a2, "addis", [b_org])
        await arrives_verified(b, a_org, third)
        back = await share_case(b, "addis", [a_org])
        await arrives_verified(a2, b_org, back)
        assert await pair_room_of(a2.node, b_org) == new_room
        assert await pair_room_of(b.node, a_org) == new_room

        for api in (a2, b):
            assert await quarantined_count(api) == 0
        assert await chain_gaps(b, a_org) == []
        assert await chain_gaps(a2, b_org) == []
        from_b = Counter(r["record_id"] for r in await received(a2) if r["issuer"] == b_org)
        assert from_b == Counter({after_backup: 1, meanwhile: 1, back: 1})
        from_a = Counter(r["record_id"] for r in await received(b) if r["issuer"] == a_org)
        assert from_a == Counter({first: 1, third: 1})


# B does not wait at all: it replaces a room A's backup knew before the restored A can.
NO_GRACE = dataclasses.replace(FAST, peer_replacement_grace_seconds=0.0)


async def test_the_peers_replacement_may_come_first_for_a_room_the_backup_knew(
    federation3: Federation, tmp_path: Path
) -> None:
    b_cfg, a_cfg = await members_on([federation3[0], federation3[1]], tmp_path)
    coalition = await form_coalition([b_cfg, a_cfg])
    backup = tmp_path / "a.mingabackup"
    async with AsyncExitStack() as stack:
        b = await stack.enter_async_context(member_running(b_cfg, NO_GRACE, clock=WallClock()))
        async with member_running(a_cfg, NO_GRACE, clock=WallClock()) as a:
            a_org, b_org = a.node.org_id, b.node.org_id
            first = await share_case(a, "nairobi", [b_org])  # A's old account makes the room
            await arrives_verified(b, a_org, first)
            before = await share_case(b, "cauca", [a_org])
            await arrives_verified(a, b_org, before)
            old_room = await pair_room_of(a.node, b_org)
            assert old_room is not None
            create_backup(a_cfg, backup, PASSPHRASE, created_at=unix_now())
            after_backup = await share_case(b, "minsk", [a_org])
            await arrives_verified(a, b_org, after_backup)
        meanwhile = await share_case(b, "addis", [a_org])  # A's machine is seized

        restored = await restore_on_new_account(backup, tmp_path / "new-machine", federation3[2])
        moved = restored.moved
        await invite_member(b.node, moved.user_id)
        with passphrase_env():
            async with open_node(restored.config_file) as node:
                assert await pair_room_of(node, b_org) == old_room  # the backup knows it
                await join_coalition(node, coalition)

        async def b_replaced_it() -> str | None:
            room = await pair_room_of(b.node, a_org)
            return room if room not in (None, old_room) else None

        new_room = await eventually(b_replaced_it, what="B's pair room with A replaced")
        a2 = await stack.enter_async_context(member_running(restored.config_file, NO_GRACE,
                                                            clock=WallClock()))
        await arrives_verified(a2, b_org, after_backup)
        await arrives_verified(a2, b_org, meanwhile)

        async def nothing_held() -> bool:
            async with a2.node.store.read() as tx:
                return not await held_rooms(tx.session)

        await eventually(nothing_held, what="A's old pair room released")
        assert await pair_room_of(a2.node, b_org) == new_room  # A made no room of its own
        async with a2.node.store.read() as tx:
            assert (await replaced_rooms(tx.session)).get(old_room) == new_room

        third = await share_case(a2, "addis", [b_org])
        await arrives_verified(b, a_org, third)
        back = await share_case(b, "nairobi", [a_org])
        await arrives_verified(a2, b_org, back)
        for api in (a2, b):
            assert await quarantined_count(api) == 0
        assert await chain_gaps(b, a_org) == [] and await chain_gaps(a2, b_org) == []
        from_b = Counter(r["record_id"] for r in await received(a2) if r["issuer"] == b_org)
        assert from_b == Counter({before: 1, after_backup: 1, meanwhile: 1, back: 1})
        from_a = Counter(r["record_id"] for r in await received(b) if r["issuer"] == a_org)
        assert from_a == Counter({first: 1, third: 1})
