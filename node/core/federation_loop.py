"""The node's federation loop: the sync engine (outbox and inbox) hosted by this node.

:class:`node.core.sync_host.NodeSyncHost` is the engine's host: before each sync batch is checked it
re-reads the coalition roster when member state changed and joins invites (recognising pair
rooms from verified members); verified records go into the store. While the loop runs, a share
wakes the outbox at once (``Node.wake_sync``). Homeserver outages are survived by the engine
with a capped backoff; the loop only stops when it is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from federation.transport import MatrixTransport
from node.core.monitoring import RunningSync
from node.core.registry import Registry
from node.core.runtime import Node
from node.core.sync_host import NodeSyncHost
from sync.engine import SyncConfig, SyncEngine

log = logging.getLogger("minga.federation")


async def run_federation(
    node: Node, transport: MatrixTransport, registry: Registry,
    config: SyncConfig | None = None,
) -> None:
    """Run the sync engine for ``node``, and the features' duties beside it, until cancelled."""
    config = config or SyncConfig()
    host = await NodeSyncHost.open(node, registry, transport,
                                   peer_grace_seconds=config.peer_replacement_grace_seconds)
    engine = SyncEngine(host, transport, config)
    node.wake_sync, node.outbox = engine.wake, engine.outbox
    node.part(RunningSync).engine = engine  # read by /health and the metrics
    duties = [asyncio.create_task(duty(node, transport)) for duty in registry.duties]
    try:
        await engine.run()
    finally:
        node.wake_sync, node.outbox = _no_engine, None
        node.part(RunningSync).engine = None
        for duty in duties:
            duty.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await duty


def _no_engine() -> None:
    """Nothing to wake: whatever was queued is sent when the loop runs again."""
