"""Moving a store SQLite → PostgreSQL → SQLite: every row, counted per table; never half-way."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from federation.secretbox import FAST_TEST_PARAMS
from node.core.runtime import SYNC_MIGRATIONS
from node.core.store import (
    STORE_MIGRATIONS,
    CaseIndex,
    DataKey,
    Role,
    Store,
    StoreHalfMoved,
    create_data_key,
    open_store,
)
from node.core.store import move as move_module
from node.core.store.move import MoveRefused, TableCount, copy_database
from tests.support.postgres import PostgresServer

SETS = [STORE_MIGRATIONS, SYNC_MIGRATIONS]


@pytest.fixture
def key(tmp_path: Path) -> DataKey:
    return create_data_key(tmp_path, "pass", FAST_TEST_PARAMS)


async def _open(location: Path | str, key: DataKey) -> Store:
    return await open_store(location, key, migrations=[SYNC_MIGRATIONS])


async def _fill(store: Store, cases: int = 30) -> list[str]:
    record_ids = [str(uuid.uuid4()) for _ in range(cases)]
    async with store.transaction() as tx:
        for n, record_id in enumerate(record_ids):
            await tx.cases.add(record_id, {"narrative": f"case {n}"},
                               CaseIndex(country="KE", violations=("killing",)), "ana")
            await tx.audit.append("ana", "case.create", target=record_id)
        await tx.tokens.create("ana", Role.editor)
        await tx.settings.set("coalition", {"room": "!r:hs"})
    return record_ids


def _by_table(counts: list[TableCount]) -> dict[str, int]:
    assert all(count.source == count.target for count in counts)
    return {count.table: count.target for count in counts}


async def test_a_store_moves_to_postgresql_and_back_with_every_row(
        tmp_path: Path, key: DataKey, postgres: PostgresServer) -> None:
    store = await _open(tmp_path, key)
    record_ids = await _fill(store)
    await store.close()
    url = postgres.new_database()

    there = _by_table(await copy_database(tmp_path, url, SETS))
    assert there["cases"] == 30 and there["audit_log"] == 30 and there["case_violations"] == 30
    assert there["api_tokens"] == 1 and there["store_meta"] == 2  # key check, one setting
    analyzed = postgres.psql("SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT"
                             " NULL ORDER BY relname", database=url.rsplit("/", 1)[1])
    assert {"cases", "case_violations", "audit_log"} <= set(analyzed.split())  # planner stats
    with pytest.raises(StoreHalfMoved, match="moved away from this database"):
        await _open(tmp_path, key)  # the SQLite copy is stale now
    moved = await _open(url, key)
    async with moved.transaction() as tx:
        assert (await tx.cases.get(record_ids[7])).document == {"narrative": "case 7"}
        await tx.audit.append("bea", "case.read")  # ids continue after the copied ones
        assert await tx.settings.get("coalition") == {"room": "!r:hs"}
    await moved.close()

    back = _by_table(await copy_database(url, tmp_path, SETS))  # into the stale file: reused
    assert back["audit_log"] == 31 and back["cases"] == 30
    with pytest.raises(StoreHalfMoved, match="moved away"):
        await _open(url, key)
    home = await _open(tmp_path, key)
    async with home.read() as tx:
        assert [event.actor for event in await tx.audit.recent(limit=1)] == ["bea"]
    await home.close()


async def test_an_interrupted_move_leaves_a_target_the_node_refuses(
        tmp_path: Path, key: DataKey, postgres: PostgresServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = await _open(tmp_path, key)
    await _fill(store, cases=5)
    await store.close()
    url = postgres.new_database()
    copy_table = move_module._copy_table

    async def failing(source: object, target: object, table: object) -> None:
        if getattr(table, "name", "") == "audit_log":
            raise OSError("connection lost")
        await copy_table(source, target, table)  # type: ignore[arg-type]

    monkeypatch.setattr(move_module, "_copy_table", failing)
    with pytest.raises(OSError, match="connection lost"):
        await copy_database(tmp_path, url, SETS)
    with pytest.raises(StoreHalfMoved, match="unfinished `minga store move`"):
        await _open(url, key)
    source = await _open(tmp_path, key)  # the source is untouched and still the node's
    await source.close()

    monkeypatch.undo()
    assert _by_table(await copy_database(tmp_path, url, SETS))["cases"] == 5  # starts over
    moved = await _open(url, key)
    await moved.close()


async def test_a_target_holding_data_is_refused(
        tmp_path: Path, key: DataKey, postgres: PostgresServer) -> None:
    store = await _open(tmp_path, key)
    await _fill(store, cases=1)
    await store.close()
    url = postgres.new_database()
    other = await _open(url, key)
    await _fill(other, cases=1)
    await other.close()
    with pytest.raises(MoveRefused, match="already holds data"):
        await copy_database(tmp_path, url, SETS)
    reopened = await _open(tmp_path, key)  # nothing was marked in the source
    await reopened.close()
