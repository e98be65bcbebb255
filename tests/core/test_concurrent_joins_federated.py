"""Members joining a coalition at the same moment all come to verify each other (M15).

Four nodes on three federated homeservers; the coalition's creator invites the other
three and they all join at once, as staff do when a coalition is formed in a meeting. A member
that publishes its roster entry while another server is still joining through a third one
sends it only to the servers it knows of; without the nudge (node/core/roster_nudge.py) the
joining server never receives it, and the two members never verify each other
(bench/coalition_scale.py with 4 members on 3 homeservers stopped there, every time).
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

from deploy.homeserver import Federation
from node.assembly import node_registry
from node.core.coalition import create_coalition, invite_member, join_coalition
from node.core.roster_nudge import NUDGE_EVENT_TYPE
from node.core.runtime import open_node
from tests.support.api_harness import RunningApi
from tests.support.sharing import (
    ORGS,
    eventually,
    member_running,
    new_member,
    passphrase_env,
)

MEMBERS = [*ORGS, ("Defensores del Sur", "AR")]


async def _org_id(config: Path) -> str:
    with passphrase_env():
        async with open_node(config) as node:
            return node.org_id


async def _verifies(api: RunningApi, coalition_id: str, everyone: set[str]) -> bool:
    async with api.node.store.read() as tx:
        return set(await tx.orgs.verified_ids(coalition_id)) == everyone


async def _join_at_once(configs: list[Path]) -> str:
    """The creator invites everyone, then all join at the same moment, their nodes not yet
    running (`minga coalition join` run by each organisation's staff at once)."""
    with passphrase_env():
        async with AsyncExitStack() as stack:
            nodes = [await stack.enter_async_context(open_node(c)) for c in configs]
            creator, *others = nodes
            coalition = await create_coalition(creator, "Minga simultánea",
                                               node_registry().after_coalition_created)
            for other in others:
                await invite_member(creator, (await other.matrix_login()).user_id,
                                    coalition.room_id)
            await asyncio.gather(*(join_coalition(o, coalition.room_id, wait_seconds=60)
                                   for o in others))
    return coalition.coalition_id


async def test_members_joining_at_once_all_verify_each_other(
        federation3: Federation, tmp_path: Path) -> None:
    homes = [federation3[i % 3] for i in range(len(MEMBERS))]
    configs = [await new_member(home, tmp_path / f"org{i}", name, country)
               for i, (home, (name, country)) in enumerate(zip(homes, MEMBERS, strict=True))]
    coalition_id = await _join_at_once(configs)
    # Every member but the creator runs: the creator's node sends events into the coalition
    # room on its own (the linkage key), which would carry what its homeserver holds to the
    # others by chance. The fourth member shares the creator's homeserver, so an entry only
    # that homeserver holds is still nudged to the others.
    async with AsyncExitStack() as stack:
        apis = [await stack.enter_async_context(member_running(c)) for c in configs[1:]]
        everyone = {await _org_id(c) for c in configs}
        for api in apis:
            async def all_verified(api: RunningApi = api) -> bool:
                return await _verifies(api, coalition_id, everyone)

            await eventually(all_verified, timeout=120,
                             what=f"{api.node.org_id} verifies every member")

        # The nudges are content-free events in the coalition room.
        async with apis[0].node.transport() as transport:
            events, _ = await transport.messages(coalition_id, None, limit=200)
        nudges = [e for e in events if e.type == NUDGE_EVENT_TYPE]
        assert nudges and all(e.content == {} for e in nudges)
