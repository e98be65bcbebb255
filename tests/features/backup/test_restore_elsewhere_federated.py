"""Restoring a seized member elsewhere (issue M13 item 5): three members on three homeservers.

B and C share with A (their nodes make the pair rooms), A shares, A is backed up, A shares
more, A's machine is seized. A is restored from the backup on a new machine with a new
account on another homeserver and new keys; B lets the account into the coalition room, and
the members' nodes let it into their rooms. Meanwhile B shared with A. Afterwards A receives
what B shared meanwhile and shares again: nothing refused, no gap, nothing twice.
"""

from __future__ import annotations

from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path

from deploy.homeserver import Federation
from node.core.cli_support import unix_now
from node.core.coalition import invite_member, join_coalition
from node.core.runtime import open_node
from node.core.status import render_status
from node.core.store import Role
from node.features.backup.service import create_backup
from sync.resume import held_rooms
from tests.support.api_harness import PASSPHRASE, WallClock
from tests.support.restore import restore_on_new_account
from tests.support.sharing import (
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


async def test_a_seized_member_restored_on_a_new_account_shares_and_receives_without_loss(
    federation3: Federation, tmp_path: Path
) -> None:
    homes = [federation3[0], federation3[1], federation3[0]]
    b_cfg, a_cfg, c_cfg = await members_on(homes, tmp_path)
    coalition = await form_coalition([b_cfg, a_cfg, c_cfg])  # B makes the coalition room
    backup = tmp_path / "a.mingabackup"
    async with AsyncExitStack() as stack:
        b = await stack.enter_async_context(member_running(b_cfg, clock=WallClock()))
        c = await stack.enter_async_context(member_running(c_cfg, clock=WallClock()))
        async with member_running(a_cfg, clock=WallClock()) as a:
            a_org, b_org, c_org = a.node.org_id, b.node.org_id, c.node.org_id
            old_account = (await a.node.matrix_login()).user_id
            from_b = await share_case(b, "cauca", [a_org])  # B's and C's nodes make the pair rooms
            from_c = await share_case(c, "addis", [a_org])
            await arrives_verified(a, b_org, from_b)
            await arrives_verified(a, c_org, from_c)
            first = await share_case(a, "nairobi", [b_org, c_org])
            await arrives_verified(b, a_org, first)
            await arrives_verified(c, a_org, first)
            create_backup(a_cfg, backup, PASSPHRASE, created_at=unix_now())
            second = await share_case(a, "minsk", [b_org, c_org])  # after the backup
            await arrives_verified(b, a_org, second)
            await arrives_verified(c, a_org, second)
        # A's machine is seized; meanwhile B shares with A.
        meanwhile = await share_case(b, "nairobi", [a_org])

        restored = await restore_on_new_account(backup, tmp_path / "new-machine", federation3[2])
        moved = restored.moved
        status = restored.status
        assert len(status["sync"]["held_rooms"]) == 2  # both pair rooms
        assert "Held rooms     2" in render_status(status)
        assert moved.user_id != old_account and moved.previous_user_id == old_account
        await invite_member(b.node, moved.user_id)  # after comparing the new safety code
        with passphrase_env():
            async with open_node(restored.config_file) as node:
                await join_coalition(node, coalition)

        a2 = await stack.enter_async_context(member_running(restored.config_file,
                                                            clock=WallClock()))
        assert (await a2.node.matrix_login()).user_id == moved.user_id
        await arrives_verified(a2, b_org, meanwhile)

        async def chains_resumed() -> bool:
            async with a2.node.store.read() as tx:
                return not await held_rooms(tx.session)

        await eventually(chains_resumed, what="A's chains resumed in both pair rooms")
        assert (await a2.json("GET", "/status", Role.viewer))["sync"]["held_rooms"] == []
        third = await share_case(a2, "addis", [b_org, c_org])
        await arrives_verified(b, a_org, third)
        await arrives_verified(c, a_org, third)
        back = await share_case(b, "minsk", [a_org])
        await arrives_verified(a2, b_org, back)

        for api in (a2, b, c):
            assert await quarantined_count(api) == 0
        for api in (b, c):
            assert await chain_gaps(api, a_org) == []
            from_a = Counter(r["record_id"] for r in await received(api)
                             if r["issuer"] == a_org)
            assert from_a == Counter({first: 1, second: 1, third: 1})
        assert await chain_gaps(a2, b_org) == []
        members = (await b.json("GET", "/members", Role.viewer))["members"]
        assert next(m for m in members if m["org_id"] == a_org)["safety_code"] == \
            moved.safety_code
        async with a2.node.store.read() as tx:
            resumed = [e.details for e in await tx.audit.recent()
                       if e.action == "restore.chain-resumed"]
        # In each pair room: the envelope posted after the backup was taken over, seq 3 next.
        assert sorted((d["adopted"], d["next_seq"], d["records_lost"]) for d in resumed) == \
            [(1, 3, 0), (1, 3, 0)]
