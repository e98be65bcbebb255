"""The sync engine: the outbox's sender loop and the inbox's sync loop, side by side.

The node builds one :class:`SyncEngine` from its :class:`sync.host.SyncHost` and a logged-in
:class:`federation.transport.MatrixTransport`, runs :meth:`SyncEngine.run` as a task for as long
as the node runs (it returns only when cancelled), queues records with
:meth:`SyncEngine.enqueue` inside its own transactions and calls :meth:`SyncEngine.wake` after
they commit. :func:`read_status` gives the counters from the database alone (for ``minga
status``, which does not run the loops); :meth:`SyncEngine.status` adds the loops' live state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from federation.transport import SYNC_TIMELINE_LIMIT, MatrixTransport
from sync.host import SyncHost
from sync.inbox import Inbox
from sync.outbox import Outbox, outbox_counts
from sync.quarantine import count_quarantined
from sync.retry import DEFAULT_BACKOFF, Backoff


@dataclass(frozen=True)
class SyncConfig:
    timeline_limit: int = SYNC_TIMELINE_LIMIT
    long_poll_ms: int = 5_000
    backoff: Backoff = DEFAULT_BACKOFF
    idle_seconds: float = 1.0
    send_window: int = 8
    resend_grace_seconds: float = 2.0
    resend_interval_seconds: float = 30.0
    resend_min_interval_seconds: float = 10.0
    peer_replacement_grace_seconds: float = 600.0
    """How long a member that moved to a new account has to replace the pair rooms its old
    account made before this node replaces them itself (decision 0024, the peer's fallback)."""


@dataclass(frozen=True)
class SyncStatus:
    queued_items: int
    unsent_frames: int
    sent_frames: int
    pending_resends: int
    quarantined: int
    outbox_error: str | None = None
    inbox_error: str | None = None
    last_sync_ms: int | None = None


async def read_status(session: AsyncSession) -> SyncStatus:
    """The sync counters as stored (no live loop state)."""
    counts = await outbox_counts(session)
    return SyncStatus(
        queued_items=counts.queued_items,
        unsent_frames=counts.unsent_frames,
        sent_frames=counts.sent_frames,
        pending_resends=counts.pending_resends,
        quarantined=await count_quarantined(session),
        outbox_error=counts.last_error,
    )


class SyncEngine:
    def __init__(
        self,
        host: SyncHost,
        transport: MatrixTransport,
        config: SyncConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        config = config or SyncConfig()
        self.host = host
        self.outbox = Outbox(
            host, transport, backoff=config.backoff, clock=clock,
            idle_seconds=config.idle_seconds, send_window=config.send_window,
        )
        self.inbox = Inbox(
            host, transport,
            timeline_limit=config.timeline_limit,
            long_poll_ms=config.long_poll_ms,
            backoff=config.backoff,
            clock=clock,
            resend_grace_seconds=config.resend_grace_seconds,
            resend_interval_seconds=config.resend_interval_seconds,
            resend_min_interval_seconds=config.resend_min_interval_seconds,
            on_outbox_work=self.outbox.wake,
        )

    async def run(self) -> None:
        """Run both loops until cancelled. Neither stops on a homeserver outage or a bad
        event; cancelling this task stops both."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.outbox.run(), name="minga-sync-outbox")
            group.create_task(self.inbox.run(), name="minga-sync-inbox")

    async def enqueue(
        self, session: AsyncSession, room_id: str, recipient_org_ids: Sequence[str], token: str
    ) -> int:
        """Queue one record inside the caller's transaction; call :meth:`wake` after commit."""
        return await self.outbox.enqueue(session, room_id, recipient_org_ids, token)

    def wake(self) -> None:
        self.outbox.wake()

    async def status(self) -> SyncStatus:
        async with self.host.transaction() as session:
            stored = await read_status(session)
        return SyncStatus(
            queued_items=stored.queued_items,
            unsent_frames=stored.unsent_frames,
            sent_frames=stored.sent_frames,
            pending_resends=stored.pending_resends,
            quarantined=stored.quarantined,
            outbox_error=self.outbox.last_error or stored.outbox_error,
            inbox_error=self.inbox.last_error,
            last_sync_ms=self.inbox.last_sync_ms,
        )
