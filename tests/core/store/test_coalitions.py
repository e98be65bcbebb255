"""The coalitions a node is or was in, each one's verified members (decision 0032), and the
move of a store from before that decision: its one coalition setting becomes its first
coalition. Both backends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection

from federation.identity import OrgKeys, sign_member_entry
from federation.secretbox import FAST_TEST_PARAMS
from node.core.runtime import COALITION_SETTING, adopt_legacy_coalition
from node.core.store import (
    STORE_MIGRATIONS,
    DataKey,
    RecordNotFound,
    Store,
    create_data_key,
    open_store,
)
from node.core.store.coalitions import adopt_single_coalition
from node.core.store.migrate import _config
from node.core.store.received import Incoming
from tests.support.stores import database_content

A, B, C = (OrgKeys.generate().org_id for _ in range(3))
FIRST, SECOND, THIRD = "!first:hs", "!second:hs", "!third:hs"
R1, R2, R3, R4, OLD = (str(uuid.uuid4()) for _ in range(5))


class TickingClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def key(tmp_path: Path) -> DataKey:
    return create_data_key(tmp_path, "pass", FAST_TEST_PARAMS)


@pytest.fixture
async def store(store_location: Path | str, key: DataKey) -> AsyncIterator[Store]:
    opened = await open_store(store_location, key, clock=TickingClock())
    yield opened
    await opened.close()


async def _member(store: Store, org_id: str, *, verified: bool = True) -> None:
    async with store.transaction() as tx:
        await tx.orgs.save_member(org_id, {"org_id": org_id}, verified=verified,
                                  safety_code="s", matrix_user_id=f"@{org_id[:8]}:hs")


async def test_coalitions_are_listed_oldest_first_and_found_by_id_or_room(
        store: Store, store_location: Path | str) -> None:
    async with store.transaction() as tx:
        second = await tx.coalitions.add(SECOND, "!second-room:hs", "Sntl-coalition-name")
        first = await tx.coalitions.add(FIRST, FIRST, None)  # joined later, despite its id
    assert (second.coalition_id, second.room_id, second.name) == (
        SECOND, "!second-room:hs", "Sntl-coalition-name")
    assert second.active and second.label == "Sntl-coalition-name"
    assert first.label == FIRST  # no name: staff see its id
    async with store.read() as tx:
        assert [c.coalition_id for c in await tx.coalitions.all()] == [SECOND, FIRST]
        assert await tx.coalitions.get(SECOND) == second
        assert await tx.coalitions.by_room("!second-room:hs") == second
        assert await tx.coalitions.by_room(SECOND) is None  # its id is not its room
        with pytest.raises(RecordNotFound):
            await tx.coalitions.get(THIRD)
    # The list of coalitions says what the organisation is part of: names are encrypted.
    assert b"Sntl-coalition-name" not in await database_content(store, store_location)


async def test_a_moved_coalition_keeps_its_id_in_its_new_room(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.coalitions.add(FIRST, FIRST, "c")
        await tx.coalitions.move_room(FIRST, "!new-room:hs")
    async with store.read() as tx:
        moved = await tx.coalitions.get(FIRST)
        assert await tx.coalitions.by_room(FIRST) is None
        assert await tx.coalitions.by_room("!new-room:hs") == moved
    assert (moved.coalition_id, moved.room_id, moved.name) == (FIRST, "!new-room:hs", "c")


async def test_a_left_coalition_is_kept_apart_until_joined_again(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.coalitions.add(FIRST, FIRST, "one")
        await tx.coalitions.add(SECOND, SECOND, "two")
        await tx.coalitions.mark_left(FIRST)
    async with store.read() as tx:
        assert [c.coalition_id for c in await tx.coalitions.all()] == [SECOND]
        every = await tx.coalitions.all(with_left=True)
    assert [(c.coalition_id, c.active) for c in every] == [(FIRST, False), (SECOND, True)]
    assert every[0].left_at is not None and every[0].left_at > every[0].joined_at
    async with store.transaction() as tx:
        again = await tx.coalitions.add(FIRST, "!first-again:hs", "one")
    assert again.active and again.joined_at > every[1].joined_at
    async with store.read() as tx:
        assert [c.coalition_id for c in await tx.coalitions.all()] == [SECOND, FIRST]


async def test_each_coalition_has_its_own_verified_members(store: Store) -> None:
    for org_id in (A, B, C):
        await _member(store, org_id)
    async with store.transaction() as tx:
        await tx.coalitions.add(FIRST, FIRST, None)
        await tx.coalitions.add(SECOND, SECOND, None)
        await tx.coalitions.add(THIRD, THIRD, None)
        await tx.coalitions.set_members(FIRST, [A, B, B])
        await tx.coalitions.set_members(SECOND, [A, C])
        await tx.coalitions.add_member(SECOND, C)  # already there: nothing changes
        await tx.coalitions.add_member(THIRD, B)
        await tx.coalitions.set_members(FIRST, [A, C])  # the roster was read again
    async with store.read() as tx:
        assert await tx.coalitions.member_ids(FIRST) == {A, C}
        assert await tx.coalitions.member_ids("!unknown:hs") == frozenset()
        assert await tx.coalitions.memberships() == {FIRST: {A, C}, SECOND: {A, C}, THIRD: {B}}
        assert await tx.orgs.verified_ids(SECOND) == {A, C}
        assert await tx.orgs.verified_ids() == {A, B, C}
        assert [m.org_id for m in await tx.orgs.members(verified_only=True,
                                                         coalition_id=THIRD)] == [B]


async def test_a_member_is_shared_with_in_the_active_coalitions_it_is_verified_in(
        store: Store) -> None:
    async with store.transaction() as tx:
        for coalition_id in (FIRST, SECOND, THIRD):
            await tx.coalitions.add(coalition_id, coalition_id, None)
        await tx.coalitions.set_members(FIRST, [A, B])
        await tx.coalitions.set_members(SECOND, [A])
        await tx.coalitions.set_members(THIRD, [A, C])
        await tx.coalitions.mark_left(THIRD)
    async with store.read() as tx:
        assert [c.coalition_id for c in await tx.coalitions.shared_with(A)] == [FIRST, SECOND]
        assert [c.coalition_id for c in await tx.coalitions.shared_with(B)] == [FIRST]
        assert await tx.coalitions.shared_with(C) == []  # only in a coalition this node left


# --- a store from before decision 0032 ---------------------------------------------------------


async def _received(store: Store, *record_ids: str, coalition_id: str | None = None) -> None:
    async with store.transaction() as tx:
        await tx.received.add_many([Incoming(A, record_id, 1, "case", {"n": 1}, coalition_id)
                                    for record_id in record_ids], "verified")


async def _coalition_of(store: Store, record_id: str) -> str | None:
    async with store.read() as tx:
        latest = await tx.received.latest(A, record_id)
    assert latest is not None
    return latest.coalition_id


async def test_the_one_coalition_setting_becomes_the_first_coalition_once(store: Store) -> None:
    await _member(store, A)
    await _member(store, B)
    await _member(store, C, verified=False)
    await _received(store, R1, R2)
    async with store.transaction() as tx:
        adopted = await adopt_single_coalition(
            tx.coalitions, {"room_id": FIRST, "name": "Red"}, await tx.orgs.verified_ids())
    assert adopted is not None
    assert (adopted.coalition_id, adopted.room_id, adopted.name) == (FIRST, FIRST, "Red")
    async with store.read() as tx:
        assert await tx.coalitions.all() == [adopted]
        assert await tx.coalitions.member_ids(FIRST) == {A, B}  # every verified member
    assert [await _coalition_of(store, r) for r in (R1, R2)] == [FIRST, FIRST]

    await _received(store, R3, coalition_id=SECOND)
    await _received(store, R4)
    async with store.transaction() as tx:  # done once: a second time changes nothing
        assert await adopt_single_coalition(
            tx.coalitions, {"room_id": THIRD, "name": "Other"}, [C]) is None
    async with store.read() as tx:
        assert await tx.coalitions.all(with_left=True) == [adopted]
        assert await tx.coalitions.member_ids(FIRST) == {A, B}
    assert [await _coalition_of(store, r) for r in (R3, R4)] == [SECOND, None]


async def test_no_coalition_setting_adopts_nothing(store: Store) -> None:
    async with store.transaction() as tx:
        for single in (None, {}, {"name": "no room"}, {"room_id": 5}, "!room:hs"):
            assert await adopt_single_coalition(tx.coalitions, single, [A]) is None
        assert await tx.coalitions.all(with_left=True) == []
        unnamed = await adopt_single_coalition(tx.coalitions, {"room_id": FIRST, "name": 3},
                                               [])
    assert unnamed is not None and unnamed.name is None and unnamed.label == FIRST


def _downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(_config(STORE_MIGRATIONS, connection), revision)


async def test_a_store_from_before_several_coalitions_moves_on_first_open(
        store_location: Path | str, key: DataKey) -> None:
    """The upgrade of a store back at 0011: the migration adds the tables again, and the
    first open of the node (``adopt_legacy_coalition``) fills them from the encrypted
    setting."""
    store = await open_store(store_location, key)
    try:  # what a node of that time held: its coalition setting, members, received records
        async with store.transaction() as tx:
            await tx.settings.set(COALITION_SETTING, {"room_id": FIRST, "name": "Red"})
            for org_id in (A, B):
                entry = sign_member_entry(OrgKeys.generate(), {"name": "x", "country": "KE"})
                await tx.orgs.save_member(org_id, entry, verified=True, safety_code="s",
                                          matrix_user_id=None)
        await _received(store, OLD)
        async with store.engine.begin() as connection:
            await connection.run_sync(_downgrade, "0011_case_indexes")
    finally:
        await store.close()
    store = await open_store(store_location, key)
    try:
        assert await _coalition_of(store, OLD) is None
        await adopt_legacy_coalition(store)
        await adopt_legacy_coalition(store)  # every later open: nothing more
        async with store.read() as tx:
            (coalition,) = await tx.coalitions.all(with_left=True)
            members = await tx.coalitions.member_ids(FIRST)
        assert (coalition.coalition_id, coalition.name) == (FIRST, "Red")
        assert members == {A, B}
        assert await _coalition_of(store, OLD) == FIRST
    finally:
        await store.close()


async def test_a_node_already_in_coalitions_adopts_no_setting(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.coalitions.add(SECOND, SECOND, None)
        await tx.coalitions.mark_left(SECOND)
        await tx.settings.set(COALITION_SETTING, {"room_id": FIRST, "name": "Red"})
    await adopt_legacy_coalition(store)
    async with store.read() as tx:
        assert [c.coalition_id for c in await tx.coalitions.all(with_left=True)] == [SECOND]
