"""What the sync layer needs from the node that hosts it (docs/architecture.md §1: ``sync`` never
imports
``node``; the node implements :class:`SyncHost` and hands it to the outbox and the inbox).

- Sync keeps its own tables in the node's database and joins the node's transactions through
  the SQLAlchemy ``AsyncSession`` the host gives it, so "store the share, queue its delivery"
  and "store the record, advance the sync token" are each one atomic step.
- Anything that holds record content at rest (queued outbox records) is encrypted with the
  host's :class:`AtRestCipher` (the store's data key), bound to a context naming its row.
- :class:`Trust` is the verified roster: keys to verify signatures as they were at issue time,
  current recipient keys, and which Matrix account is which member's node.
- Verified records are handed to :meth:`SyncHost.deliver` inside the inbox's transaction, all
  the valid records of one envelope in one call (a backlog blob holds thousands); it must be
  idempotent on (issuer, record id, version).
- :meth:`SyncHost.on_sync` sees every sync batch before its events are checked, so the node can
  refresh its roster (a new member's entry and its first records often arrive together) and
  join invites from member nodes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from federation.identity import OrgKeys, RecipientKey
from federation.keys import SigningKeyResolver
from federation.transport import SyncBatch


class AtRestCipher(Protocol):
    def encrypt_at_rest(self, plaintext: bytes, context: tuple[str, ...]) -> bytes: ...

    def decrypt_at_rest(self, stored: bytes, context: tuple[str, ...]) -> bytes: ...


class Trust(Protocol):
    """The verified roster as the sync layer sees it."""

    @property
    def resolver(self) -> SigningKeyResolver: ...

    def recipient_key(self, org_id: str) -> RecipientKey:
        """The member's current encryption key; raises ``KeyNotTrusted`` if unknown/revoked."""
        ...

    def node_user(self, org_id: str) -> str | None:
        """The Matrix account of the member's node, or None if the org is unknown."""
        ...


@dataclass(frozen=True)
class VerifiedRecord:
    """One record that arrived, passed every check, and is for this node."""

    issuer: str
    record_id: str
    version: int
    kind: str
    claims: dict[str, Any] = field(repr=False)
    disclosed_paths: frozenset[str]
    issued_at: int
    room_id: str
    event_id: str
    origin_server_ts: int


@dataclass(frozen=True)
class Quarantined:
    """An event that failed a check; kept with its reason, never silently dropped."""

    room_id: str
    event_id: str
    sender: str
    reason: str
    detail: str


class SyncHost(Protocol):
    @property
    def keys(self) -> OrgKeys: ...

    @property
    def cipher(self) -> AtRestCipher: ...

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A read-write transaction on the node's database (commits when the block ends)."""
        ...

    async def trust(self, session: AsyncSession | None = None) -> Trust:
        """The current verified roster (rebuilt by the host when the roster changes), read in
        ``session`` when the caller has a transaction open."""
        ...

    async def deliver(self, session: AsyncSession, records: Sequence[VerifiedRecord]) -> None:
        """Store verified records, in the order given (idempotent on issuer, record id,
        version: a record stored before, or twice in ``records``, is stored once)."""
        ...

    def expects_all_addressed(self, room_id: str) -> bool:
        """True for rooms (pair rooms) where every envelope must be addressed to this node."""
        ...

    async def note_quarantined(self, session: AsyncSession,
                               entries: Sequence[Quarantined]) -> None:
        """Called in the batch's transaction with the events it quarantined (the node audits
        those posted by a revoked member's account)."""
        ...

    async def on_sync(self, batch: SyncBatch) -> None:
        """Called with every sync batch before its events are checked (and before
        :meth:`trust` is asked for): refresh the roster when member state changed, join invites
        from members. A :class:`federation.transport.TransportError` or any other exception
        makes the inbox retry the same batch later (the sync token is not advanced)."""
        ...


log = logging.getLogger("minga.sync.host")

_AFTER_COMMIT = "minga_after_commit"


def after_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Have ``action`` called once the transaction open in ``session`` has committed, by
    whoever commits it (the inbox for its batch, ``send_alert`` for its own transaction): a
    follow-up that must not hold the transaction back, such as a post or an acknowledgement.
    It is never called for a transaction that rolls back; it may be called although a record
    handler's own savepoint rolled back, so it must only start work that reads what was
    committed."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


def committed_actions(session: AsyncSession) -> list[Callable[[], None]]:
    """The actions :func:`after_commit` gathered in this session (read before it commits)."""
    return list(session.info.get(_AFTER_COMMIT, []))


def run_committed(actions: Sequence[Callable[[], None]]) -> None:
    """Call a committed transaction's :func:`after_commit` actions; one that fails is logged
    (type only) and the rest still run, since what they follow is stored."""
    for action in actions:
        try:
            action()
        except Exception as error:
            log.error("a follow-up of a committed transaction failed (%s)",
                      type(error).__name__)
