"""Copying a node's whole database to another one (SQLite ⇄ PostgreSQL), checked table by table.

Used by ``minga store move`` and by backups of a PostgreSQL store. The target is migrated to the
same revisions as the source, then, in order:

1. a ``store_move_incomplete`` marker is committed in the target's ``store_meta``: a node opened
   on it refuses to start (:class:`StoreHalfMoved`) until the move has finished;
2. in one target transaction: every row of every table is copied from one consistent snapshot
   of the source, PostgreSQL's id sequences are moved past the copied ids, each table's row
   count is compared with the source's, and the marker is deleted. Any difference rolls it all
   back, leaving the marker;
3. the source, whose write lock the copy held throughout, is marked ``store_moved_away`` with
   where it went, so a node still pointed at it refuses to start instead of running on a copy
   that is no longer current.

A target must be empty, or hold an unfinished move, or be a database this node was moved away
from before (moving back): the last two are emptied first. Values are copied as stored —
ciphertext stays ciphertext; nothing is decrypted on the way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import URL, Table, delete, func, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from node.core.store.database import (
    MOVED_AWAY_MARKER,
    MOVING_MARKER,
    create_engine,
    database_url,
    migrate,
    reader,
    shown,
    unavailable,
    writer,
)
from node.core.store.errors import StoreError
from node.core.store.migrate import MigrationSet
from node.core.store.tables import StoreMeta

_ROWS_PER_INSERT = 2_000
_MARKERS = (MOVING_MARKER, MOVED_AWAY_MARKER)


class MoveRefused(StoreError):
    """The move cannot be done as asked; nothing was changed in the source."""


@dataclass(frozen=True)
class TableCount:
    """Rows of one table in the source and, after the copy, in the target."""

    table: str
    source: int
    target: int


def _tables(sets: Sequence[MigrationSet]) -> list[Table]:
    """Every table the migration sets own, parents before children (foreign keys)."""
    return [table for migrations in sets for table in migrations.metadata.sorted_tables]


async def _count(connection: AsyncConnection, table: Table) -> int:
    query = select(func.count()).select_from(table)
    if table.name == StoreMeta.__tablename__:
        query = query.where(table.c.name.not_in(_MARKERS))
    return int(await connection.scalar(query) or 0)


async def _unknown_tables(connection: AsyncConnection, tables: list[Table]) -> list[str]:
    present = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    known = {table.name for table in tables}
    return sorted(name for name in present
                  if name not in known and not name.startswith("alembic_version"))


async def _target_state(connection: AsyncConnection, tables: list[Table]) -> str:
    """"empty", "reusable" (an unfinished or earlier move) or "occupied"."""
    markers = set(await connection.scalars(
        select(StoreMeta.name).where(StoreMeta.name.in_(_MARKERS))))
    if markers:
        return "reusable"
    counts = [await _count(connection, table) for table in tables]
    return "empty" if not any(counts) else "occupied"


async def _copy_table(source: AsyncConnection, target: AsyncConnection, table: Table) -> None:
    query = select(table)
    if table.name == StoreMeta.__tablename__:
        query = query.where(table.c.name.not_in(_MARKERS))
    result = await source.stream(query)
    async for rows in result.mappings().partitions(_ROWS_PER_INSERT):
        await target.execute(table.insert(), [dict(row) for row in rows])


async def _advance_sequences(target: AsyncConnection, tables: list[Table]) -> None:
    """Copied explicit ids leave PostgreSQL's serial sequences behind: move them past."""
    if target.dialect.name != "postgresql":
        return
    for table in tables:
        for column in table.primary_key.columns:
            if column.autoincrement is True:
                await target.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'),"
                    f" coalesce((SELECT max({column.name}) FROM {table.name}), 0) + 1, false)"))


async def _mark(engine: AsyncEngine, name: str, value: bytes) -> None:
    async with writer(engine).begin() as connection:
        await connection.execute(delete(StoreMeta).where(StoreMeta.name == name))
        await connection.execute(insert(StoreMeta), {"name": name, "value": value})


async def snapshot_database(
    source: Path | str | URL, target: Path | str | URL, sets: Sequence[MigrationSet],
) -> list[TableCount]:
    """:func:`copy_database` of one consistent snapshot, leaving the source as it is (a node
    may go on using it): for backups of a PostgreSQL store into an SQLite file."""
    return await _copy(source, target, sets, moving=False)


async def copy_database(
    source: Path | str | URL, target: Path | str | URL, sets: Sequence[MigrationSet],
) -> list[TableCount]:
    """Copy every table of ``sets`` from ``source`` to ``target`` (see the module docstring);
    the row counts, equal in both. The source's writers wait meanwhile (stop the node first:
    once moved, the source refuses to open)."""
    return await _copy(source, target, sets, moving=True)


async def _copy(source: Path | str | URL, target: Path | str | URL,
                sets: Sequence[MigrationSet], *, moving: bool) -> list[TableCount]:
    source_url, target_url = database_url(source), database_url(target)
    if shown(source_url) == shown(target_url):
        raise MoveRefused("the store is already there")
    tables = _tables(sets)
    source_engine, target_engine = create_engine(source_url), create_engine(target_url)
    try:
        await _prepare_target(source_engine, target_engine, target_url, tables, sets)
        return await _copy_all(source_engine, target_engine, tables,
                               shown(target_url) if moving else None)
    finally:
        await source_engine.dispose()
        await target_engine.dispose()


async def _prepare_target(source_engine: AsyncEngine, target_engine: AsyncEngine,
                          target_url: URL, tables: list[Table],
                          sets: Sequence[MigrationSet]) -> None:
    await migrate(source_engine, list(sets))
    async with source_engine.connect() as connection:
        unknown = await _unknown_tables(connection, tables)
        if await _target_state(connection, tables) == "reusable":
            raise MoveRefused("the store to move holds an unfinished or earlier move itself;"
                              " move from the database the node runs on")
    if unknown:
        raise MoveRefused(f"the store holds tables this Minga does not know: {', '.join(unknown)}"
                          " (written by a newer Minga?)")
    try:
        await migrate(target_engine, list(sets))
    except OSError as error:
        raise unavailable(target_url, error) from None
    async with target_engine.connect() as connection:
        state = await _target_state(connection, tables)
    if state == "occupied":
        raise MoveRefused(f"{shown(target_url)} already holds data: move into an empty"
                          " database")
    await _mark(target_engine, MOVING_MARKER, b"")


async def _copy_all(source_engine: AsyncEngine, target_engine: AsyncEngine,
                    tables: list[Table], moved_to: str | None) -> list[TableCount]:
    # A move holds the source's write lock throughout, so a node still running on it cannot
    # write a row the copy would miss: its writes wait, then find the store moved away. A
    # snapshot (moved_to None) reads one consistent state while the node goes on writing.
    sources = writer(source_engine) if moved_to is not None else reader(source_engine)
    async with sources.connect() as source, source.begin(), \
            writer(target_engine).begin() as target:
        for table in reversed(tables):  # children first: an earlier copy is emptied
            if table.name == StoreMeta.__tablename__:
                await target.execute(delete(table).where(table.c.name != MOVING_MARKER))
            else:
                await target.execute(delete(table))
        for table in tables:
            await _copy_table(source, target, table)
        await _advance_sequences(target, tables)
        counts = [TableCount(table.name, await _count(source, table), await _count(target, table))
                  for table in tables]
        wrong = [count for count in counts if count.source != count.target]
        if wrong:
            raise MoveRefused("the copy differs from the store: " + ", ".join(
                f"{c.table} has {c.target} rows instead of {c.source}" for c in wrong))
        await target.execute(delete(StoreMeta).where(StoreMeta.name == MOVING_MARKER))
        if moved_to is not None:
            await source.execute(insert(StoreMeta), {"name": MOVED_AWAY_MARKER,
                                                     "value": moved_to.encode()})
    await _analyze(target_engine, tables)
    return counts


async def _analyze(engine: AsyncEngine, tables: list[Table]) -> None:
    """Give PostgreSQL's planner statistics of the rows just loaded, in a transaction of its
    own that commits (an ANALYZE rolled back with its transaction leaves none): without them it
    guesses a quarter of a table for each lookup of a page's ids, and scans whole tables until
    autovacuum gets round to the new rows."""
    if engine.dialect.name != "postgresql":
        return
    async with writer(engine).begin() as connection:
        for table in tables:
            await connection.execute(text(f'ANALYZE "{table.name}"'))
