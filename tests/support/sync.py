"""A minimal :class:`sync.host.SyncHost` so the sync layer can be tested without the node.

Each member has its own SQLite file holding only the sync tables (migrated with Alembic from
``sync.migrations``, as the node does) plus a ``test_received`` table that ``deliver`` fills
(idempotent on issuer, record id, version, like the node's). Keys and the roster are a shared
:class:`KeyRing`; the at-rest cipher is ChaCha20-Poly1305 with a random in-memory key.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from deploy.homeserver import Account, Homeserver
from federation.canonical import canonical_json
from federation.disclosure import issue
from federation.identity import KeyRing, OrgKeys, RecipientKey, sign_member_entry
from federation.transport import MatrixLogin, MatrixTransport, TransportError
from node.core.store.database import database_url
from sync.engine import SyncConfig, SyncEngine
from sync.host import VerifiedRecord
from sync.migrations import SYNC_METADATA, SYNC_SCRIPT_LOCATION, SYNC_VERSION_TABLE
from sync.retry import Backoff

FAST = SyncConfig(
    long_poll_ms=500,
    backoff=Backoff(first=0.2, cap=2.0),
    idle_seconds=0.3,
    resend_grace_seconds=0.5,
    resend_interval_seconds=2.0,
    resend_min_interval_seconds=1.0,
)
WITHHOLDABLE = ("title", "body")


class MemoryCipher:
    def __init__(self) -> None:
        self._aead = ChaCha20Poly1305(ChaCha20Poly1305.generate_key())

    def encrypt_at_rest(self, plaintext: bytes, context: tuple[str, ...]) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, canonical_json(list(context)))

    def decrypt_at_rest(self, stored: bytes, context: tuple[str, ...]) -> bytes:
        return self._aead.decrypt(stored[:12], stored[12:], canonical_json(list(context)))


@dataclass
class RingTrust:
    ring: KeyRing
    users: dict[str, str]

    @property
    def resolver(self) -> KeyRing:
        return self.ring

    def recipient_key(self, org_id: str) -> RecipientKey:
        return self.ring.encryption_key_for(org_id)

    def node_user(self, org_id: str) -> str | None:
        return self.users.get(org_id)


# --- the database -----------------------------------------------------------------------------


def _sqlite_setup(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN (SAVEPOINT works)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _migrate(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(SYNC_SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = SYNC_VERSION_TABLE
    config.attributes["target_metadata"] = SYNC_METADATA
    command.upgrade(config, "head")
    connection.execute(text(
        "CREATE TABLE IF NOT EXISTS test_received (issuer TEXT, record_id TEXT, version INTEGER,"
        " kind TEXT, event_id TEXT, PRIMARY KEY (issuer, record_id, version))"
    ))


def database_in(store_location: Path | str, name: str) -> Path | str:
    """The test's database for ``open_database``: a file ``name`` in the test's directory, or
    the PostgreSQL database of ``store_location`` (the ``store_location`` fixture)."""
    return store_location / name if isinstance(store_location, Path) else store_location


async def open_database(location: Path | str) -> AsyncEngine:
    """An SQLite file (a path) or a PostgreSQL database (a URL), migrated."""
    if isinstance(location, str):
        engine = create_async_engine(database_url(location))
    else:
        engine = create_async_engine(f"sqlite+aiosqlite:///{location}")
        event.listen(engine.sync_engine, "connect", _sqlite_setup)
        event.listen(engine.sync_engine, "begin", _begin)
    async with engine.begin() as connection:
        await connection.run_sync(_migrate)
    return engine


# --- the host ---------------------------------------------------------------------------------


@dataclass
class TestHost:
    keys: OrgKeys
    engine: AsyncEngine
    trust_view: RingTrust
    pair_rooms: set[str] = field(default_factory=set)
    cipher: MemoryCipher = field(default_factory=MemoryCipher)
    deliveries: int = 0
    batches: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    __test__ = False  # not a pytest test class

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with (
            self._lock,
            AsyncSession(self.engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    async def trust(self, session: AsyncSession | None = None) -> RingTrust:
        return self.trust_view

    async def deliver(self, session: AsyncSession, records: Sequence[VerifiedRecord]) -> None:
        self.deliveries += len(records)
        await session.execute(
            text("INSERT INTO test_received VALUES (:i, :r, :v, :k, :e) ON CONFLICT DO NOTHING"),
            [{"i": record.issuer, "r": record.record_id, "v": record.version, "k": record.kind,
              "e": record.event_id} for record in records],
        )

    def expects_all_addressed(self, room_id: str) -> bool:
        return room_id in self.pair_rooms

    async def note_quarantined(self, session: AsyncSession, entries: Sequence[Any]) -> None:
        pass

    async def on_sync(self, batch: Any) -> None:
        self.batches += 1

    async def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        async with self.transaction() as session:
            return [tuple(row) for row in await session.execute(text(sql), params)]

    async def received(self) -> list[tuple[str, str, int]]:
        rows = await self.query("SELECT issuer, record_id, version FROM test_received")
        return sorted((str(i), str(r), int(v)) for i, r, v in rows)

    async def quarantined(self) -> list[tuple[str, str]]:
        rows = await self.query("SELECT event_id, reason FROM sync_quarantine ORDER BY id")
        return [(str(e), str(r)) for e, r in rows]


# --- members on homeservers -------------------------------------------------------------------


@dataclass
class Member:
    name: str
    keys: OrgKeys
    account: Account
    host: TestHost
    transport: MatrixTransport
    engine: SyncEngine

    @property
    def org_id(self) -> str:
        return self.keys.org_id

    @property
    def user_id(self) -> str:
        return self.account.user_id

    def new_transport(self) -> MatrixTransport:
        return MatrixTransport(login_of(self.account), request_timeout=20, max_retries=2)

    def new_engine(self, transport: MatrixTransport | None = None) -> SyncEngine:
        return SyncEngine(self.host, transport or self.transport, FAST)

    async def share(self, room_id: str, tokens: Iterable[str], recipients: list[str]) -> None:
        async with self.host.transaction() as session:
            for token in tokens:
                await self.engine.enqueue(session, room_id, recipients, token)
        self.engine.wake()


def login_of(account: Account) -> MatrixLogin:
    return MatrixLogin(account.homeserver_url, account.user_id, account.device_id,
                       account.access_token)


@asynccontextmanager
async def members(
    directory: Path, placements: list[tuple[str, Homeserver]], *, extra_keys: int = 0
) -> AsyncIterator[list[Member]]:
    """Members (name, homeserver) that all trust each other; closed when the block ends."""
    all_keys = [OrgKeys.generate() for _ in placements]
    ring = KeyRing()
    for keys in all_keys:
        ring.add_member_entry(sign_member_entry(keys, {"name": "member"}))
    accounts = [server.create_account(name) for name, server in placements]
    users = {keys.org_id: account.user_id for keys, account in zip(all_keys, accounts, strict=True)}
    trust = RingTrust(ring, users)
    async with AsyncExitStack() as stack:
        result = []
        for (name, _), keys, account in zip(placements, all_keys, accounts, strict=True):
            engine = await open_database(directory / f"{name}-{uuid.uuid4().hex[:6]}.db")
            stack.push_async_callback(engine.dispose)
            transport = MatrixTransport(login_of(account), request_timeout=20, max_retries=2)
            stack.push_async_callback(transport.close)
            host = TestHost(keys, engine, trust)
            result.append(Member(name, keys, account, host, transport,
                                 SyncEngine(host, transport, FAST)))
        yield result


async def shared_room(owner: Member, *others: Member, timeout: float = 30) -> str:
    """A room created by ``owner`` that every other member has joined."""
    room_id = await owner.transport.create_room(invite=[member.user_id for member in others])
    for member in others:
        deadline = time.monotonic() + timeout
        while True:
            try:
                await member.transport.join(room_id)
                break
            except TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)
    return room_id


# --- records ----------------------------------------------------------------------------------


def record_token(
    issuer: OrgKeys, *, body_size: int = 200, version: int = 1, record_id: str | None = None,
    audience: str | list[str] | None = None,
) -> str:
    claims = {
        "kind": "alert",
        "schema": "minga.alert/1",
        "record_id": record_id or str(uuid.uuid4()),
        "version": version,
        "title": "Urgent alert",
        "body": os.urandom(body_size // 2 + 1).hex()[:body_size],
    }
    return issue(claims, issuer=issuer.org_id, kid=issuer.signing_kid, signing_key=issuer.signing,
                 issued_at=int(time.time()), withholdable=WITHHOLDABLE, audience=audience)


# --- running and waiting ----------------------------------------------------------------------


@asynccontextmanager
async def running(*engines: SyncEngine) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(engine.run()) for engine in engines]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 60, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.2)


async def count(host: TestHost, sql: str, **params: Any) -> int:
    rows = await host.query(sql, **params)
    return int(rows[0][0])
