"""The SQLite adapter that sends each statement to aiosqlite's thread in one trip."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from node.core.store.database import create_engine, database_url, writer
from node.core.store.sqlite_driver import OneTripCursor

_metadata = MetaData()
_items = Table(
    "items", _metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False, unique=True),
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    made = create_engine(database_url(tmp_path))
    async with made.begin() as connection:
        await connection.run_sync(_metadata.create_all)
    yield made
    await made.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every function sent to an aiosqlite connection's thread, by name."""
    sent: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    yield sent


async def test_the_node_engine_uses_one_trip_cursors(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.driver_connection, aiosqlite.Connection)
        assert isinstance(raw.dbapi_connection.cursor(), OneTripCursor)  # type: ignore[union-attr]


async def test_a_query_and_a_write_each_take_one_trip(
        engine: AsyncEngine, trips: list[str]) -> None:
    async with AsyncSession(writer(engine)) as session, session.begin():
        await session.execute(text("SELECT 1"))  # the connection is checked out and begun
        trips.clear()
        await session.execute(insert(_items).values(name="first"))
        rows = (await session.execute(select(_items.c.name))).all()
        assert trips == ["_statement", "_statement"]
    assert rows == [("first",)]


async def test_a_committed_connection_goes_back_without_a_rollback(
        engine: AsyncEngine, trips: list[str]) -> None:
    async with AsyncSession(engine) as session:
        async with session.begin():
            await session.execute(insert(_items).values(name="kept"))
            trips.clear()
        await session.close()
    assert trips == ["commit"]  # the pool's reset found no transaction open
    async with AsyncSession(engine) as session:
        await session.execute(insert(_items).values(name="undone"))
        trips.clear()
        await session.close()  # open: rolled back on its way back to the pool
    assert trips == ["rollback"]
    async with AsyncSession(engine) as session:
        assert (await session.scalars(select(_items.c.name))).all() == ["kept"]


async def test_every_row_of_a_query_is_read(engine: AsyncEngine) -> None:
    names = [f"item {n:04}" for n in range(2500)]
    async with AsyncSession(engine) as session, session.begin():
        inserted = await session.execute(insert(_items), [{"name": n} for n in names])
        assert inserted.rowcount == len(names)
    async with AsyncSession(engine) as session:
        result = await session.execute(select(_items.c.name).order_by(_items.c.id))
        assert result.fetchone() == (names[0],)
        assert [row.name for row in result.fetchmany(2)] == names[1:3]
        assert [row.name for row in result.all()] == names[3:]


async def test_row_counts_new_row_ids_and_returning(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session, session.begin():
        first = await session.execute(insert(_items).values(name="a"))
        second = await session.execute(insert(_items).values(name="b"))
        assert first.inserted_primary_key is not None
        assert second.inserted_primary_key is not None
        assert second.inserted_primary_key[0] == first.inserted_primary_key[0] + 1
        missed = await session.execute(update(_items).where(_items.c.name == "z").values(name="y"))
        hit = await session.execute(update(_items).where(_items.c.name == "a").values(name="c"))
        assert (missed.rowcount, hit.rowcount) == (0, 1)
        claimed = await session.execute(text(
            "INSERT INTO items (name) VALUES ('b'), ('d') ON CONFLICT DO NOTHING RETURNING name"))
        assert claimed.scalars().all() == ["d"]


async def test_an_error_names_the_problem_and_leaves_the_session_usable(
        engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        async with session.begin():
            await session.execute(insert(_items).values(name="only"))
        with pytest.raises(IntegrityError, match=r"UNIQUE constraint failed: items\.name"):
            async with session.begin():
                await session.execute(insert(_items).values(name="only"))
        with pytest.raises(OperationalError, match="no such table: missing"):
            await session.execute(text("SELECT * FROM missing"))
        await session.rollback()
        assert (await session.scalars(select(_items.c.name))).all() == ["only"]


async def test_a_savepoint_rolls_back_alone(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session, session.begin():
        await session.execute(insert(_items).values(name="kept"))
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                await session.execute(insert(_items).values(name="dropped"))
                await session.execute(insert(_items).values(name="kept"))
    async with AsyncSession(engine) as session:
        assert (await session.scalars(select(_items.c.name))).all() == ["kept"]
