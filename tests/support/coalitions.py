"""Coalition membership for tests that build a node's roster by hand (decision 0032)."""

from __future__ import annotations

from node.core.store import StoreTransaction
from node.core.store.coalitions import Coalition

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
