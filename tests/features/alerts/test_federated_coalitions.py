"""Alerts of a node in two coalitions, between real federated homeservers (decision 0032).

A (homeserver 1) is in coalition Andes with B (homeserver 2) and in coalition Sur with C
(homeserver 1). An alert to Andes reaches B only, in A's Andes alert room; one to Sur reaches C
only, in another room; each comes back acknowledged through its coalition. When C leaves Sur it
leaves A's Sur alert room and owes nothing there any more.
"""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from pathlib import Path

from deploy.homeserver import Federation
from node.assembly import node_registry
from node.core.coalition import (
    create_coalition,
    invite_member,
    join_coalition,
    leave_coalition,
    refresh_roster,
)
from node.core.runtime import Node, open_node
from node.features.alerts.service import DELIVERED, AlertState, list_alerts, send_alert
from schemas.payloads import Alert
from tests.support.sharing import (
    ORGS,
    eventually,
    member_running,
    new_member,
    passphrase_env,
)

ALERT = Alert.model_validate({"alert_type": "arrest", "urgency": "critical", "country": "CO",
                              "text": "Sntl detenida en Suba", "asks": ["legal_support"]})


async def _coalition(first: Path, other: Path, name: str) -> str:
    """``first`` creates a coalition (another one, if it is in one) and ``other`` joins it;
    both see each other verified in it."""
    with passphrase_env():
        async with open_node(first) as a, open_node(other) as c:
            made = await create_coalition(a, name, node_registry().after_coalition_created)
            await invite_member(a, (await c.matrix_login()).user_id, made.coalition_id)
            await join_coalition(c, made.room_id, wait_seconds=60)
            for node in (a, c):
                await _sees(node, made.room_id, {a.org_id, c.org_id})
    return made.coalition_id


async def _sees(node: Node, room: str, everyone: set[str]) -> None:
    async with node.transport() as transport:
        async def all_verified() -> bool:
            report = await refresh_roster(node, transport, room)
            return {m.org_id for m in report.members} == everyone

        await eventually(all_verified, what="every member verified")


async def _arrived(node: Node, issuer: str, record_id: str) -> AlertState:
    async def probe() -> AlertState | None:
        return next((s for s in await list_alerts(node)
                     if s.issuer == issuer and s.record_id == record_id), None)

    return await eventually(probe, what=f"alert {record_id} at {node.org_id}")


async def _delivered(node: Node, record_id: str, org_id: str) -> None:
    async def probe() -> bool:
        state = next(s for s in await list_alerts(node) if s.record_id == record_id)
        member = state.recipient(org_id)
        return member is not None and member.status == DELIVERED

    await eventually(probe, what=f"{org_id} acknowledged {record_id}")


async def test_an_alert_goes_to_one_coalition_and_leaving_leaves_its_alert_rooms(
    federation: Federation, tmp_path: Path
) -> None:
    homes = [federation[0], federation[1], federation[0]]
    configs = [await new_member(home, tmp_path / f"org{i}", name, country)
               for i, (home, (name, country)) in enumerate(zip(homes, ORGS, strict=True))]
    andes = await _coalition(configs[0], configs[1], "Andes")
    sur = await _coalition(configs[0], configs[2], "Sur")

    async with AsyncExitStack() as stack:
        a, b, c = [(await stack.enter_async_context(member_running(config))).node
                   for config in configs]
        to_andes = await send_alert(a, ALERT, coalition_id=andes, actor="ana",
                                    now=int(time.time()))
        to_sur = await send_alert(a, ALERT, coalition_id=sur, actor="ana",
                                  now=int(time.time()))
        assert [r.org_id for r in to_andes.recipients] == [b.org_id]
        assert [r.org_id for r in to_sur.recipients] == [c.org_id]
        assert to_andes.room_id != to_sur.room_id

        at_b = await _arrived(b, a.org_id, to_andes.record_id)
        at_c = await _arrived(c, a.org_id, to_sur.record_id)
        assert (at_b.coalition_id, at_b.room_id) == (andes, to_andes.room_id)
        assert (at_c.coalition_id, at_c.room_id) == (sur, to_sur.room_id)
        await _delivered(a, to_andes.record_id, b.org_id)
        await _delivered(a, to_sur.record_id, c.org_id)
        # Neither member was told of, or let into, the other coalition's alert room.
        assert [s.record_id for s in await list_alerts(b)] == [to_andes.record_id]
        assert [s.record_id for s in await list_alerts(c)] == [to_sur.record_id]
        async with a.transport() as transport:
            for room, outsider in ((to_andes.room_id, c), (to_sur.room_id, b)):
                members = {e.state_key for e in await transport.room_state(room)
                           if e.type == "m.room.member"}
                assert (await outsider.matrix_login()).user_id not in members

        await leave_coalition(c, sur, node_registry().after_coalition_left)
        async with c.transport() as transport:
            assert to_sur.room_id not in await transport.joined_rooms()
        left = next(s for s in await list_alerts(c) if s.record_id == to_sur.record_id)
        assert left.coalition_left and not left.ack_owed and not left.unacknowledged
