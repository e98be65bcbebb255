"""SQLite through aiosqlite with each statement in one trip to the database thread.

aiosqlite runs its sqlite3 connection in a thread of its own, and each call is a round trip to
it: a queue put, a thread wake-up, a wake-up of the event loop. SQLAlchemy's adapter makes
four of them for a query (open a cursor, execute, fetch the rows, close) and three for a
write. On the 2-core machine where homeservers and nodes run, one trip takes about a tenth of
a millisecond, which for an alert's dozen statements was milliseconds of its latency (decision
0012). This adapter sends the whole statement — cursor, execute, every row, close — as one
function to that thread. Results are the same: SQLAlchemy's adapter also reads every row at
once for an ordinary (not server-side) cursor.

A connection with no transaction open is not sent a rollback (the pool sends one each time
it takes a connection back, even after a commit).

The one-trip call uses ``aiosqlite.Connection._execute`` and ``_conn``, the same private
entry points SQLAlchemy's own aiosqlite adapter already relies on; ``tests/test_store_driver.py``
would fail on a release that changed them.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

_Outcome = tuple[Any, list[Any], int, int | None]


def _statement(connection: sqlite3.Connection, run: Callable[[sqlite3.Cursor], Any]) -> _Outcome:
    """Runs in aiosqlite's thread: the statement and everything SQLAlchemy will read of it."""
    cursor = connection.cursor()
    try:
        run(cursor)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor holding the outcome of its last statement."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No aiosqlite cursor is opened here: each statement opens and closes its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        """Nothing stays open after a statement."""

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        arguments = () if parameters is None else parameters
        self._one_trip(lambda cursor: cursor.execute(operation, arguments))

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        self._one_trip(lambda cursor: cursor.executemany(operation, seq_of_parameters))

    def _one_trip(self, run: Callable[[sqlite3.Cursor], Any]) -> None:
        try:
            outcome = await_(self._send(run))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)

    async def _send(self, run: Callable[[sqlite3.Cursor], Any]) -> _Outcome:
        connection = cast(aiosqlite.Connection, self._connection)
        in_its_thread: Callable[..., Awaitable[_Outcome]] = connection._execute
        async with self._adapt_connection._execute_mutex:
            return await in_its_thread(_statement, connection._conn, run)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls: type[AsyncAdapt_aiosqlite_cursor] = OneTripCursor

    def rollback(self) -> None:
        # The pool rolls back every connection it takes back, also one whose transaction has
        # just committed. With none open there is nothing to undo: no trip. (The flag is read
        # between statements: the pool lends a connection to one user at a time.)
        connection = cast(aiosqlite.Connection, self._connection)
        if connection._connection is not None and not connection.in_transaction:
            return
        super().rollback()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite module adapter, handing out one-trip connections."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        plain = super().connect(*arg, **kw)
        return OneTripConnection(self, plain._connection)
