"""The sync tables are created by their own Alembic revisions and match the models."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from sync.migrations import SYNC_METADATA, SYNC_VERSION_TABLE
from tests.support.sync import database_in, open_database


def _differences(connection: Connection) -> list[object]:
    options = {"compare_type": True, "version_table": SYNC_VERSION_TABLE}
    context = MigrationContext.configure(connection, opts=options)
    return [
        difference for difference in compare_metadata(context, SYNC_METADATA)
        # the harness's own table is not a sync table
        if not (isinstance(difference, tuple) and difference[0] == "remove_table"
                and difference[1].name == "test_received")
    ]


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_migrated_schema_matches_the_models(store_location: Path | str) -> None:
    engine = await open_database(database_in(store_location, "sync.db"))
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
            tables = await connection.run_sync(_tables)
    finally:
        await engine.dispose()
    assert differences == []
    assert set(SYNC_METADATA.tables) <= tables
    assert SYNC_VERSION_TABLE in tables


async def test_migrating_twice_changes_nothing(store_location: Path | str) -> None:
    for _ in range(2):
        engine = await open_database(database_in(store_location, "sync.db"))
        async with engine.connect() as connection:
            tables = await connection.run_sync(_tables)
        await engine.dispose()
    assert set(SYNC_METADATA.tables) <= tables
