"""A few lines of matrix-nio for tests that talk to homeservers directly, as an outside client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import nio

from deploy.homeserver import Account

SYNC_FILTER = {"room": {"timeline": {"limit": 100}}, "presence": {"types": []}}


@asynccontextmanager
async def logged_in(account: Account) -> AsyncIterator[nio.AsyncClient]:
    config = nio.AsyncClientConfig(max_limit_exceeded=3, max_timeouts=3, request_timeout=30)
    client = nio.AsyncClient(account.homeserver_url, account.user_id, config=config)
    client.restore_login(account.user_id, account.device_id, account.access_token)
    try:
        yield client
    finally:
        await client.close()


async def events_of_type(
    client: nio.AsyncClient, room_id: str, event_type: str, count: int, timeout: float = 30
) -> list[dict[str, Any]]:
    """Sync until ``count`` events of ``event_type`` arrive in ``room_id``; return them."""
    found: list[dict[str, Any]] = []
    since = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await client.sync(timeout=1000, since=since, sync_filter=SYNC_FILTER)
        assert isinstance(response, nio.SyncResponse), response
        since = response.next_batch
        room = response.rooms.join.get(room_id)
        for event in room.timeline.events if room else []:
            if event.source.get("type") == event_type:
                found.append(event.source)
        if len(found) >= count:
            return found
        await asyncio.sleep(0)
    raise AssertionError(f"only {len(found)} of {count} {event_type} events within {timeout} s")


async def wait_for_invite(client: nio.AsyncClient, room_id: str, timeout: float = 30) -> None:
    since = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await client.sync(timeout=1000, since=since, sync_filter=SYNC_FILTER)
        assert isinstance(response, nio.SyncResponse), response
        since = response.next_batch
        if room_id in response.rooms.invite:
            return
    raise AssertionError(f"no invite to {room_id} within {timeout} s")
