"""Coalition membership for tests that build a node's roster by hand (decision 0032)."""

from __future__ import annotations

import json

from sqlalchemy import select

from federation.identity import OrgKeys, sign_member_entry
from node.core.runtime import Node
from node.core.store import StoreTransaction
from node.core.store.coalitions import Coalition
from sync.tables import OutboxItem

TEST_COALITION = "!coalition:test"


async def in_coalition(tx: StoreTransaction, *org_ids: str, coalition_id: str = TEST_COALITION,
                       room_id: str | None = None, name: str | None = "c") -> Coalition:
    """This node is in ``coalition_id`` (its room ``room_id``, by default the same id) and
    ``org_ids`` are verified members of it, beside those it had."""
    known = {c.coalition_id: c for c in await tx.coalitions.all(with_left=True)}
    coalition = known.get(coalition_id)
    if coalition is None or room_id is not None:
        coalition = await tx.coalitions.add(coalition_id, room_id or coalition_id, name)
    for org_id in org_ids:
        await tx.coalitions.add_member(coalition_id, org_id)
    return coalition


COALITION_A, COALITION_B = "!coalition-a:test", "!coalition-b:test"
ONLY_A, ONLY_B, BOTH = (OrgKeys.generate() for _ in range(3))
"""Members of coalition A only, of B only, and of both (see :func:`in_two_coalitions`)."""


async def in_two_coalitions(node: Node) -> None:
    """``node`` in coalitions A ("Red A", with ONLY_A and BOTH) and B ("Red B", with ONLY_B and
    BOTH), every member verified."""
    async with node.store.transaction() as tx:
        for n, keys in enumerate((ONLY_A, ONLY_B, BOTH)):
            await tx.orgs.save_member(keys.org_id, sign_member_entry(keys, {
                "name": f"Member {n}", "country": "CO"}), verified=True,
                safety_code="s", matrix_user_id=f"@member{n}:hs")
        await in_coalition(tx, node.org_id, ONLY_A.org_id, BOTH.org_id,
                           coalition_id=COALITION_A, name="Red A")
        await in_coalition(tx, node.org_id, ONLY_B.org_id, BOTH.org_id,
                           coalition_id=COALITION_B, name="Red B")
    node.forget_coalitions()


async def queued(node: Node) -> list[tuple[str, list[str]]]:
    """(room, recipients) of every item in the node's outbox, oldest first."""
    async with node.store.read() as tx:
        rows = await tx.session.scalars(select(OutboxItem).order_by(OutboxItem.id))
        return [(row.room_id, json.loads(row.recipients)) for row in rows]
