"""``GET /health``: is this node working? Unauthenticated, so it says nothing secret.

200 ``{"status": "ok", ...}`` when the store answers, the homeserver answers and the inbox
finished a sync recently; else 503 ``{"status": "failing", "problems": [...]}`` with fixed,
content-free reasons (no URL, no account, no error text from elsewhere). :func:`judge` is the
pure rule; :func:`health_handler` gathers the facts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import aiohttp
from aiohttp import web
from sqlalchemy import text

from node.core.monitoring.sync_watch import RunningSync
from node.core.runtime import Node
from node.core.web.app import bare_paths
from node.core.web.routes import Handler

HEALTH_PATH: Final = "/health"
SYNC_STALE_SECONDS: Final = 300
"""A running inbox long-polls every few seconds; five minutes without a sync is an outage."""
HOMESERVER_TIMEOUT_SECONDS: Final = 5.0
PROBE_CACHE_SECONDS: Final = 5.0
"""An unauthenticated caller cannot make the node ask its homeserver more often than this."""


@dataclass(frozen=True)
class HealthFacts:
    store_open: bool
    homeserver_answers: bool
    sync_running: bool
    seconds_since_sync: float | None


def judge(facts: HealthFacts, *, stale_after: float = SYNC_STALE_SECONDS) -> list[str]:
    """The problems, as fixed sentences; empty when the node is healthy."""
    problems = []
    if not facts.store_open:
        problems.append("store: closed or not answering")
    if not facts.homeserver_answers:
        problems.append("homeserver: not answering")
    if not facts.sync_running:
        problems.append("sync: not running")
    elif facts.seconds_since_sync is None:
        problems.append("sync: no sync with the homeserver has finished yet")
    elif facts.seconds_since_sync > stale_after:
        problems.append(f"sync: last finished {int(facts.seconds_since_sync)} s ago"
                        f" (more than {stale_after} s)")
    return problems


async def store_answers(node: Node) -> bool:
    if node.store.closed or node.locked:
        return False
    try:
        async with node.store.lookup() as tx:
            await tx.session.execute(text("SELECT 1"))
    except Exception:  # any failure of the database is "not answering"
        return False
    return True


@dataclass
class HomeserverProbe:
    """The last answer of the homeserver to ``/_matrix/client/versions`` (a node part)."""

    answered: bool = False
    at: float = field(default=-PROBE_CACHE_SECONDS)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def answers(self, base_url: str, clock: Callable[[], float] = time.monotonic) -> bool:
        async with self._lock:
            if clock() - self.at >= PROBE_CACHE_SECONDS:
                self.answered = await _ask(base_url)
                self.at = clock()
            return self.answered


async def _ask(base_url: str) -> bool:
    timeout = aiohttp.ClientTimeout(total=HOMESERVER_TIMEOUT_SECONDS)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(base_url.rstrip("/") + "/_matrix/client/versions") as answer:
            return answer.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


async def gather_facts(node: Node) -> HealthFacts:
    running = node.part(RunningSync)
    last = running.last_sync_ms()
    return HealthFacts(
        store_open=await store_answers(node),
        homeserver_answers=await node.part(HomeserverProbe).answers(
            str(node.config.homeserver.url)),
        sync_running=running.engine is not None,
        seconds_since_sync=None if last is None else max(0.0, time.time() - last / 1000),
    )


def health_handler(node: Node) -> Handler:
    async def health(request: web.Request) -> web.Response:
        facts = await gather_facts(node)
        problems = judge(facts)
        body: dict[str, object] = {"status": "failing" if problems else "ok"}
        if problems:
            body["problems"] = problems
        if facts.seconds_since_sync is not None:
            body["seconds_since_last_sync"] = int(facts.seconds_since_sync)
        return web.json_response(body, status=503 if problems else 200,
                                 headers={"Cache-Control": "no-store"})

    return health


def mount_health(app: web.Application, node: Node) -> None:
    """Serve ``GET /health`` on ``app``, outside the web interface's sessions and CSRF."""
    app.router.add_get(HEALTH_PATH, health_handler(node))
    bare_paths(app).add(HEALTH_PATH)
