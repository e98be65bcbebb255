"""The node's federation loop: follow the homeserver and react to what arrives.

For now it keeps the coalition roster current: whenever the coalition room's state or
membership changes, the roster is re-read and re-verified. Homeserver outages are survived
with a capped backoff; the loop only stops when it is cancelled.
"""

from __future__ import annotations

import asyncio
import logging

from federation.roster import MEMBER_EVENT_TYPE
from federation.transport import MatrixTransport, RoomUpdate, TransportError
from node.coalition import refresh_roster
from node.runtime import Node

log = logging.getLogger("minga.federation")

LONG_POLL_MS = 5_000
MAX_BACKOFF_SECONDS = 30.0
_ROSTER_TRIGGERS = {MEMBER_EVENT_TYPE, "m.room.member", "m.room.power_levels"}


def _touches_roster(update: RoomUpdate) -> bool:
    return any(event.type in _ROSTER_TRIGGERS for event in update.state + update.events)


async def follow_homeserver(node: Node, transport: MatrixTransport) -> None:
    """Sync forever, refreshing the roster when the coalition room's membership changes."""
    since: str | None = None
    backoff = 1.0
    while True:
        try:
            room_id = await node.coalition_room()
            batch = await transport.sync(since, timeout_ms=0 if since is None else LONG_POLL_MS)
            update = batch.rooms.get(room_id) if room_id else None
            if room_id and (since is None or (update and _touches_roster(update))):
                await refresh_roster(node, transport, room_id)
            since = batch.next_batch
            backoff = 1.0
        except TransportError as error:
            log.warning("homeserver unreachable (%s); retrying in %.0f s", error.operation,
                        backoff)
        except Exception as error:  # one bad batch must never stop the node
            log.error("federation loop error (%s); retrying in %.0f s", type(error).__name__,
                      backoff)
        else:
            continue
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
