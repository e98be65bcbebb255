"""What a node's operator sees when the PostgreSQL server cannot be used: one plain sentence
with the reason, never a traceback; and a database a store move left half-way is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from federation.secretbox import FAST_TEST_PARAMS
from node.core.store import (
    DataKey,
    StoreHalfMoved,
    StoreUnavailable,
    create_data_key,
    open_store,
)
from node.core.store.database import MOVING_MARKER
from tests.support.postgres import PostgresServer, free_port


@pytest.fixture
def key(tmp_path: Path) -> DataKey:
    return create_data_key(tmp_path, "pass", FAST_TEST_PARAMS)


async def test_an_unreachable_server_is_named_with_the_reason(key: DataKey) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(StoreUnavailable) as raised:
        await open_store(f"postgresql://minga:secret@127.0.0.1:{port}/minga", key)
    message = str(raised.value)
    assert f"minga:***@127.0.0.1:{port}/minga" in message
    assert "Connect call failed" in message or "refused" in message
    assert "secret" not in message  # the password is never shown


@pytest.mark.parametrize(("database", "user", "password", "reason"), [
    ("missing", "minga", None, 'database "missing" does not exist'),
    ("postgres", "nobody", None, 'password authentication failed for user "nobody"'),
    ("postgres", "minga", "wrong", 'password authentication failed for user "minga"'),
    ("postgres", "minga", "", "password"),  # none given, one needed
])
async def test_a_wrong_database_user_or_password_is_named(
        postgres: PostgresServer, key: DataKey, database: str, user: str, password: str | None,
        reason: str) -> None:
    with pytest.raises(StoreUnavailable, match=reason) as raised:
        await open_store(postgres.url(database, user, password), key)
    assert postgres.password not in str(raised.value)


async def test_missing_rights_are_named(postgres: PostgresServer, key: DataKey) -> None:
    database = postgres.new_database().rsplit("/", 1)[1]
    postgres.psql("DO $$ BEGIN CREATE ROLE visitor LOGIN PASSWORD 'visitor'; EXCEPTION"
                  " WHEN duplicate_object THEN NULL; END $$")
    with pytest.raises(StoreUnavailable, match="permission denied for schema public"):
        await open_store(postgres.url(database, "visitor", "visitor"), key)


async def test_a_half_moved_database_is_refused(postgres: PostgresServer, key: DataKey) -> None:
    location = postgres.new_database()
    store = await open_store(location, key)
    async with store.engine.begin() as connection:
        await connection.execute(text("INSERT INTO store_meta (name, value) VALUES (:n, '')"),
                                 {"n": MOVING_MARKER})
    await store.close()
    with pytest.raises(StoreHalfMoved, match="unfinished `minga store move`"):
        await open_store(location, key)
