"""Which pair-room replacements a member's node takes (decision 0024, the peer's fallback), on
a real store: the peer replaced a room the member's old account made after its last backup, so
the member's node may never have known the old room. No homeserver here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from federation.identity import OrgKeys
from federation.secretbox import FAST_TEST_PARAMS
from node.core.rooms import _pair_room_of_org
from node.core.runtime import SYNC_MIGRATIONS, Node
from node.core.store import create_data_key, open_store
from node.core.store.pair_rooms import PairRoomRepository
from sync.tables import Chain
from tests.support.coalitions import in_coalition

OWN, PEER, THIRD = OrgKeys.generate(), OrgKeys.generate(), OrgKeys.generate()


@pytest.fixture
async def node(store_location: Path | str, tmp_path: Path) -> AsyncIterator[Node]:
    store = await open_store(store_location, create_data_key(tmp_path, "pass", FAST_TEST_PARAMS),
                             migrations=[SYNC_MIGRATIONS])
    try:
        yield Node(config=cast(Any, None), store=store, keys=OWN, own=cast(Any, None))
    finally:
        await store.close()


async def test_a_replacement_is_taken_for_an_unknown_room_or_a_pair_room_with_the_peer(
    node: Node,
) -> None:
    at = datetime.now(UTC)
    async with node.store.transaction() as tx:
        pairs = PairRoomRepository(tx.session)
        await pairs.remember(PEER.org_id, "!ours:hs", created_by_us=True, at=at)
        await pairs.remember(PEER.org_id, "!peers:hs", created_by_us=False, at=at)
        await pairs.remember(THIRD.org_id, "!third:hs", created_by_us=False, at=at)
        await in_coalition(tx, coalition_id="!coalition:hs")
        await in_coalition(tx, coalition_id="!second:hs", room_id="!second-room:hs")
        tx.session.add_all([
            Chain(issuer=PEER.org_id, room_id="!replaced:hs", top=2, missing="[]"),
            Chain(issuer=OWN.org_id, room_id="!replaced:hs", top=1, missing="[]"),
            Chain(issuer=THIRD.org_id, room_id="!campaign:hs", top=1, missing="[]")])
    taken = _pair_room_of_org(PEER.org_id)
    assert await taken(node, "!never-known:hs")  # made by this node's old account after backup
    assert await taken(node, "!peers:hs")  # the member's own replacement (the usual case)
    assert await taken(node, "!ours:hs")  # the peer replaced it before this node could
    assert await taken(node, "!replaced:hs")  # this node replaced it too; the later one wins
    assert not await taken(node, "!third:hs")  # another member's pair room
    assert not await taken(node, "!coalition:hs")
    assert not await taken(node, "!second-room:hs")  # nor the room of any other coalition
    assert not await taken(node, "!campaign:hs")  # other members' chains there
