"""Opening the store and working with it in transactions.

    key = unlock_data_key(data_dir, passphrase)
    store = await open_store(data_dir, key)
    async with store.transaction() as tx:
        case = await tx.cases.add(record_id, document, index, author="maria")
        await tx.audit.append("maria", "case.create", target=record_id)
    await store.close()

One transaction is one unit of work: it commits when the block ends and rolls back on an
exception. :meth:`Store.transaction` takes the write lock at its start (``BEGIN IMMEDIATE`` on
SQLite, an advisory lock on PostgreSQL) so concurrent writers queue instead of failing half-way,
and :meth:`Store.read` opens a read-only snapshot that never blocks writers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from sqlalchemy import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from node.core.store.audit import AuditLog
from node.core.store.cases import CaseRepository
from node.core.store.cipher import ColumnCipher
from node.core.store.coalitions import CoalitionRepository
from node.core.store.database import (
    check_data_key,
    check_not_half_moved,
    checkpoint,
    create_engine,
    database_url,
    holds_a_store,
    migrate,
    reader,
    shown,
    unavailable,
    unbegun,
    wiped,
    writer,
)
from node.core.store.errors import DatabaseInUse
from node.core.store.ids import Clock, utc_now
from node.core.store.imported import ImportedRowRepository
from node.core.store.migrate import STORE_MIGRATIONS, MigrationSet
from node.core.store.orgs import OrgRepository
from node.core.store.received import ReceivedRepository
from node.core.store.settings import SettingsRepository
from node.core.store.tokens import TokenRepository
from node.core.store.unlock import DataKey


class StoreTransaction:
    """The repositories, all sharing one session (and so one database transaction).

    ``session`` is exposed so that other packages' repositories (e.g. the sync outbox) can take
    part in the same transaction.
    """

    def __init__(self, session: AsyncSession, cipher: ColumnCipher, clock: Clock) -> None:
        self.session = session
        self.cipher = cipher
        self.cases = CaseRepository(session, cipher, clock)
        self.orgs = OrgRepository(session, cipher, clock)
        self.coalitions = CoalitionRepository(session, cipher, clock)
        self.received = ReceivedRepository(session, cipher, clock)
        self.audit = AuditLog(session, cipher, clock)
        self.tokens = TokenRepository(session, cipher, clock)
        self.settings = SettingsRepository(session, cipher)
        self.imported_rows = ImportedRowRepository(session, clock)


class Store:
    """An open, unlocked store. Close it with :meth:`close` (or ``async with``)."""

    def __init__(self, engine: AsyncEngine, cipher: ColumnCipher, clock: Clock) -> None:
        self.engine = engine
        self._cipher = cipher
        self._clock = clock
        self._writer = async_sessionmaker(writer(engine), expire_on_commit=False)
        self._reader = async_sessionmaker(reader(engine), expire_on_commit=False)
        self._single = async_sessionmaker(unbegun(engine), expire_on_commit=False)
        self.closed = False  # set by close(): an engine disposed of would quietly reconnect

    @property
    def cipher(self) -> ColumnCipher:
        """The column cipher of this store's data key."""
        return self._cipher

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTransaction]:
        """A read-write transaction; commits at the end of the block."""
        async with self._writer() as session:
            async with session.begin():
                yield StoreTransaction(session, self._cipher, self._clock)
            if wiped(session):
                await checkpoint(self.engine)

    def read(self) -> AbstractAsyncContextManager[StoreTransaction]:
        """A consistent read-only view; anything written in it is rolled back."""
        return self._reading(self._reader)

    def lookup(self) -> AbstractAsyncContextManager[StoreTransaction]:
        """:meth:`read` for a read of a single statement (an API token, a setting): no
        transaction is begun or ended around it, so it costs one trip to the database instead
        of three. Two statements in it would not see one consistent state (use :meth:`read`),
        and a write in it would not be rolled back: it is for reading only."""
        return self._reading(self._single)

    @asynccontextmanager
    async def _reading(
        self, sessions: async_sessionmaker[AsyncSession]
    ) -> AsyncIterator[StoreTransaction]:
        async with sessions() as session:
            try:
                yield StoreTransaction(session, self._cipher, self._clock)
            finally:
                await session.rollback()

    async def checkpoint(self) -> bool:
        """Fold the write-ahead log into the database file (SQLite); see database.checkpoint."""
        return await checkpoint(self.engine)

    async def close(self) -> None:
        self.closed = True
        await self.engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def open_store(
    location: Path | str | URL,
    data_key: DataKey,
    *,
    clock: Clock = utc_now,
    migrations: Sequence[MigrationSet] = (),
) -> Store:
    """Open (creating if needed) the store in a data directory or at a database URL.

    Runs the store's migrations, then those in ``migrations`` (other packages' tables, in order),
    and checks that ``data_key`` is the key the database was created with (``WrongDataKey``).
    A PostgreSQL server that cannot be reached or used raises ``StoreUnavailable``.
    """
    url = database_url(location)
    engine = create_engine(url)
    try:
        store = Store(engine, ColumnCipher(data_key), clock)
        try:
            await migrate(engine, [STORE_MIGRATIONS, *migrations])
            async with store.transaction() as tx:
                await check_not_half_moved(tx.session)
                await check_data_key(tx.session, tx.cipher)
        except (DBAPIError, OSError) as error:
            if url.get_backend_name() == "sqlite":
                raise
            raise unavailable(url, error) from None
    except BaseException:
        await engine.dispose()
        raise
    return store


async def check_new_store(location: Path | str | URL) -> None:
    """Before a node is created at ``location``: the database can be reached, logged into and
    migrated, and holds no node's store yet (``StoreUnavailable``, ``DatabaseInUse``)."""
    url = database_url(location)
    engine = create_engine(url)
    try:
        try:
            await migrate(engine, [STORE_MIGRATIONS])
            async with engine.connect() as connection:
                used = await connection.run_sync(holds_a_store)
        except (DBAPIError, OSError) as error:
            raise unavailable(url, error) from None
    finally:
        await engine.dispose()
    if used:
        raise DatabaseInUse(f"{shown(url)} already holds a node's store: give each node a"
                            " database of its own (or `minga store move` an existing node)")
