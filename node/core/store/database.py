"""Engine creation, SQLite and PostgreSQL settings, migrations at open, and the data-key check."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, event, make_url, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from node.core.store.cipher import Cell, ColumnCipher
from node.core.store.errors import (
    CiphertextRejected,
    StoreHalfMoved,
    StoreUnavailable,
    WrongDataKey,
)
from node.core.store.migrate import MigrationSet, upgrade
from node.core.store.sqlite_driver import OneTripDBAPI
from node.core.store.tables import StoreMeta

DATABASE_FILE_NAME = "store.db"
_KEY_CHECK = "data_key_check"
_KEY_CHECK_CELL = Cell("store_meta", "value", (_KEY_CHECK,))
_KEY_CHECK_PLAINTEXT = b"minga store data key check"
_WIPED = "minga_wiped_content"
# Present in a database while `minga store move` copies into it, removed once every table's row
# count was checked (node/core/store/move.py).
MOVING_MARKER = "store_move_incomplete"
# Left in a database the node's store was moved away from; its value says where to.
MOVED_AWAY_MARKER = "store_moved_away"
_BEGIN_OPTION = "minga_sqlite_begin"
_WRITE_BEGIN = "BEGIN IMMEDIATE"
# Every writing transaction on PostgreSQL takes this transaction-level advisory lock first, so
# writers run one at a time as on SQLite (decision 0021): per-room sequence numbers and hash
# chains, inbox claims and outbox bundling keep the order they have on SQLite. The number is
# arbitrary but fixed ("minga" in ASCII), so every node process on one database agrees on it.
WRITER_LOCK_KEY = 0x6D696E6761
POSTGRESQL_DRIVER = "postgresql+asyncpg"

# Why each setting: WAL lets the web UI read while the sync loop writes; FULL sync because an
# outbox entry or a case just entered must survive a power cut; secure_delete so deleted or
# overwritten content is zeroed in the file instead of lingering in free pages; foreign keys
# because SQLite leaves them off; temp_store so sorts never spill index values into temp files.
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA secure_delete=ON",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA busy_timeout=10000",
)


def database_url(location: Path | str | URL) -> URL:
    """A data directory becomes ``DIR/store.db`` (SQLite); a string is a database URL, where
    plain ``postgresql://`` means PostgreSQL through asyncpg (decision 0021)."""
    if isinstance(location, Path):
        return URL.create("sqlite+aiosqlite", database=str(location / DATABASE_FILE_NAME))
    url = make_url(location) if isinstance(location, str) else location
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername=POSTGRESQL_DRIVER)
    return url


def shown(url: URL) -> str:
    """A database URL for messages and logs: the password, if any, is masked."""
    return url.render_as_string(hide_password=True)


def _prepare_sqlite_file(url: URL) -> None:
    """Create the directory (0700) and an empty database file (0600) before SQLite does."""
    if not url.database or url.database == ":memory:":
        return
    path = Path(url.database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _apply_sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _take_over_transactions(dbapi_connection: Any, connection_record: Any) -> None:
    # The sqlite3 module's own transaction handling begins lazily and breaks SAVEPOINT; let
    # SQLAlchemy's "begin" event emit BEGIN itself (the SQLAlchemy documentation's recipe).
    dbapi_connection.isolation_level = None


def _begin(connection: Any) -> None:
    statement = connection.get_execution_options().get(_BEGIN_OPTION, "BEGIN")
    if statement:
        connection.exec_driver_sql(statement)


def _take_writer_lock(connection: Any) -> None:
    if connection.get_execution_options().get(_BEGIN_OPTION) == _WRITE_BEGIN:
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITER_LOCK_KEY})")


def create_engine(url: URL) -> AsyncEngine:
    options: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        _prepare_sqlite_file(url)
    if url.get_driver_name() == "aiosqlite":
        options["module"] = OneTripDBAPI()
    if url.get_backend_name() == "postgresql":
        # A connection the server closed (restart, idle timeout) is replaced, not handed out.
        options["pool_pre_ping"] = True
    engine = create_async_engine(url, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _apply_sqlite_pragmas)
        event.listen(engine.sync_engine, "connect", _take_over_transactions)
        event.listen(engine.sync_engine, "begin", _begin)
    elif engine.dialect.name == "postgresql":
        event.listen(engine.sync_engine, "begin", _take_writer_lock)
    return engine


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine, but transactions take the write lock when they begin, so concurrent
    writers wait for each other instead of failing half-way: ``BEGIN IMMEDIATE`` on SQLite
    (busy_timeout), the writer advisory lock on PostgreSQL (READ COMMITTED, so every statement
    after the lock sees all that was committed before it)."""
    return engine.execution_options(**{_BEGIN_OPTION: _WRITE_BEGIN})


def reader(engine: AsyncEngine) -> AsyncEngine:
    """The engine for snapshots: as is on SQLite (a read transaction is a snapshot); REPEATABLE
    READ on PostgreSQL (one snapshot for the whole transaction). Not READ ONLY: as on SQLite, a
    write in a read is allowed and then rolled back, so the same code runs on both."""
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="REPEATABLE READ")


def unbegun(engine: AsyncEngine) -> AsyncEngine:
    """The same engine, but SQLite is sent no BEGIN: each statement is then a transaction of
    its own, consistent by itself. For reads of one statement (two trips fewer). On PostgreSQL
    (whose driver always begins) it is :func:`reader`."""
    if engine.dialect.name != "sqlite":
        return reader(engine)
    return engine.execution_options(**{_BEGIN_OPTION: ""})


def unavailable(url: URL, error: BaseException) -> StoreUnavailable:
    """A server-side failure (refused, unknown host, login, rights) as one plain sentence."""
    cause: BaseException = error
    if isinstance(error, DBAPIError) and error.orig is not None:
        cause = error.orig.__cause__ or error.orig
    reason = str(cause).strip() or type(cause).__name__
    if isinstance(cause, OSError) and cause.strerror:
        reason = cause.strerror
    return StoreUnavailable(f"cannot use the database {shown(url)}: {reason}")


async def migrate(engine: AsyncEngine, sets: list[MigrationSet]) -> None:
    async with writer(engine).begin() as connection:
        await connection.run_sync(_upgrade, sets)


def _upgrade(connection: Connection, sets: list[MigrationSet]) -> None:
    upgrade(connection, sets)


def holds_a_store(connection: Connection) -> bool:
    """Whether a migrated database already holds a node's store (its data-key check)."""
    found = connection.scalar(select(StoreMeta.name).where(StoreMeta.name == _KEY_CHECK))
    return found is not None


async def check_data_key(session: AsyncSession, cipher: ColumnCipher) -> None:
    """Refuse a data key other than the one the database was created with."""
    stored = await session.scalar(select(StoreMeta.value).where(StoreMeta.name == _KEY_CHECK))
    if stored is None:
        session.add(
            StoreMeta(name=_KEY_CHECK, value=cipher.encrypt(_KEY_CHECK_PLAINTEXT, _KEY_CHECK_CELL))
        )
        return
    try:
        cipher.decrypt(stored, _KEY_CHECK_CELL)
    except CiphertextRejected:
        raise WrongDataKey(
            "this database was created with another data key (is store.key from another node?)"
        ) from None


async def check_not_half_moved(session: AsyncSession) -> None:
    """Refuse a database that ``minga store move`` began to fill but did not finish, and one
    the store was moved away from (a stale copy)."""
    found = await session.execute(select(StoreMeta.name, StoreMeta.value).where(
        StoreMeta.name.in_((MOVING_MARKER, MOVED_AWAY_MARKER))))
    markers = {name: value for name, value in found}
    if MOVING_MARKER in markers:
        raise StoreHalfMoved(
            "this database holds an unfinished `minga store move`: run the move again (it starts"
            " over) or point [store] url back at the database it was moving from")
    if MOVED_AWAY_MARKER in markers:
        raise StoreHalfMoved(
            "the store was moved away from this database to"
            f" {bytes(markers[MOVED_AWAY_MARKER]).decode()} by `minga store move`; set"
            " [store] url to where it is now")


async def checkpoint(engine: AsyncEngine) -> bool:
    """Fold the SQLite write-ahead log into the database and empty it.

    After a deletion this removes the old page images, which still hold the deleted ciphertext.
    Returns False if a concurrent reader kept the checkpoint from completing (it is retried on the
    next deletion and SQLite checkpoints on its own as well).
    """
    if engine.dialect.name != "sqlite":
        return True
    async with engine.connect() as connection:
        busy, _, _ = (await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))).one()
    return not busy


def mark_wiped(session: AsyncSession) -> None:
    """Note that this transaction wiped content, so the store checkpoints after commit."""
    session.info[_WIPED] = True


def wiped(session: AsyncSession) -> bool:
    return bool(session.info.get(_WIPED))
