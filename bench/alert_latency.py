"""Alert latency over two federated homeservers, against a bare Matrix event (M8).

Usage: .venv/bin/python bench/alert_latency.py [--runs N]

Member A's node (homeserver 1) and B's node (homeserver 2) run as real ``minga run`` processes
with their default settings. Each run times, alternately:

- **alert**: from A's ``POST /api/v1/alerts`` to B's node having verified the SD-JWT, opened
  the sealed envelope and committed the alert to its store (the alert's row is looked for in
  B's database every millisecond over one read-only connection; its name is a digest of
  issuer and id, nothing is decrypted). The looking starts once B's homeserver has handed A's
  sealed event to the bench's own sync client of B's account, the one that also sees the bare
  events: polling from the moment of sending took CPU from the homeservers while they carried
  the event. In one run of 40 alerts, alternating, the sealed event reached B's sync 65.9 ms
  (median) after sending with polling from the start and 61.8 ms without it;
- **bare**: from a plain matrix-nio ``room_send`` by A's account to a plain matrix-nio ``sync``
  loop of B's account seeing that event, in the same room over the same servers.

A warm-up alert first creates A's alert room and lets B join it. Prints every run, the median
and 95th percentile of each, and last ``median_ratio_vs_bare=<N>x median_ms=<N>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import nio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.homeserver import start_federation
from node.core.runtime import open_node
from node.core.store import Role
from node.core.store.database import DATABASE_FILE_NAME
from node.features.alerts.room import saved_alert_room
from node.features.alerts.service import state_key
from sync.frame import SEALED_EVENT_TYPE
from tests.support.sharing import NodeProcess, form_coalition, new_member, passphrase_env

BARE_EVENT_TYPE = "org.minga.bench"
# Each measurement starts on quiet servers: after an alert, its acknowledgement and push notice
# have gone through; after a bare event, B's node has synced it.
SETTLE_SECONDS = 0.5
SIGHTING_WAIT_SECONDS = 5.0


def _alert(run: int) -> dict[str, Any]:
    return {"alert_type": "arrest", "urgency": "critical", "country": "CO",
            "place": "bench place", "asks": ["legal_support"], "text": f"bench alert {run}"}


@asynccontextmanager
async def _process(config: Path, log: Path) -> AsyncIterator[tuple[NodeProcess, str]]:
    with passphrase_env():
        async with open_node(config) as node, node.store.transaction() as tx:
            token = await tx.tokens.create("bench", Role.editor)
            http = node.config.http
    process = NodeProcess(config, f"http://{http.host}:{http.port}/api/v1", log)
    process.start()
    try:
        await process.ready(token)
        yield process, token
    finally:
        process.stop()


async def _stored_at(database: Path, issuer: str, record_id: str) -> None:
    """Poll B's database (one read-only connection: opening one every millisecond would take
    CPU from the servers and nodes while they work, which the bare measurement does not do)."""
    name = "setting." + state_key(issuer, record_id)
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        while db.execute("SELECT 1 FROM store_meta WHERE name = ?", (name,)).fetchone() is None:
            await asyncio.sleep(0.001)


class Member:
    """A node's API over one kept-alive connection, as a web page or a client keeps it (the
    bare event's client also has its connection open)."""

    def __init__(self, process: NodeProcess, token: str, org_id: str, database: Path,
                 http: aiohttp.ClientSession) -> None:
        self.process, self.token, self.org_id, self.database = process, token, org_id, database
        self.http = http

    async def call(self, method: str, path: str, *, expect: int = 200, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.http.request(method, self.process.api_url + path, headers=headers,
                                     **kwargs) as answer:
            text = await answer.text()
            if answer.status != expect:
                raise RuntimeError(f"{method} {path}: {answer.status} {text}")
            return await answer.json(content_type=None) if text else None


async def _time_alert(a: Member, b: Member, receiver: BareReceiver, run: int) -> float:
    started = time.perf_counter()
    sent = await a.call("POST", "/alerts", json=_alert(run), expect=201)
    # Only a start signal: the time taken is the row's. Should the sighting not come, poll.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(receiver.sealed_since(started), SIGHTING_WAIT_SECONDS)
    await _stored_at(b.database, a.org_id, sent["record_id"])
    elapsed = time.perf_counter() - started
    await _acknowledged(a, sent["record_id"])
    await asyncio.sleep(SETTLE_SECONDS)  # the push notice follows the first acknowledgement
    return elapsed


async def _warm_up(a: Member, b: Member) -> None:
    """The first alert creates A's alert room and invites B. One posted before B's join has
    completed reaches B only once a later alert shows the gap (the room is new to B's
    homeserver, which has no history to page back to yet), so warm up until one arrives."""
    for run in range(-1, -6, -1):
        sent = await a.call("POST", "/alerts", json=_alert(run), expect=201)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_stored_at(b.database, a.org_id, sent["record_id"]), 10)
            await _acknowledged(a, sent["record_id"])
            return
    raise RuntimeError("no warm-up alert reached B")


async def _acknowledged(a: Member, record_id: str) -> None:
    for _ in range(400):
        state = await a.call("GET", f"/alerts/{a.org_id}/{record_id}")
        if all(r["status"] != "sent" for r in state["recipients"]):
            return
        await asyncio.sleep(0.05)


class BareReceiver:
    """A plain matrix-nio sync loop of B's account, noting when each bench event arrives, and
    when sealed events from ``sealer`` (A's node account) do."""

    def __init__(self, client: nio.AsyncClient, sealer: str) -> None:
        self.client, self.sealer = client, sealer
        self.arrived: dict[str, float] = {}
        self.sealed: list[float] = []
        self.changed = asyncio.Event()

    async def run(self) -> None:
        since = (await self.client.sync(timeout=0)).next_batch
        while True:
            response = await self.client.sync(timeout=30_000, since=since)
            if not isinstance(response, nio.SyncResponse):
                await asyncio.sleep(0.1)
                continue
            since = response.next_batch
            now = time.perf_counter()
            for room in response.rooms.join.values():
                for event in room.timeline.events:
                    if (event.source.get("type") == SEALED_EVENT_TYPE
                            and event.source.get("sender") == self.sealer):
                        self.sealed.append(now)
                        self.changed.set()
                    marker = event.source.get("content", {}).get("bench")
                    if event.source.get("type") == BARE_EVENT_TYPE and isinstance(marker, str):
                        self.arrived[marker] = now
                        self.changed.set()

    async def sealed_since(self, started: float) -> None:
        while not self.sealed or self.sealed[-1] < started:
            self.changed.clear()
            await self.changed.wait()

    async def wait_for(self, marker: str) -> float:
        while marker not in self.arrived:
            self.changed.clear()
            await self.changed.wait()
        return self.arrived[marker]


async def _client(config: Path) -> nio.AsyncClient:
    with passphrase_env():
        async with open_node(config) as node:
            login = await node.matrix_login()
    client = nio.AsyncClient(login.homeserver_url, login.user_id, device_id=login.device_id)
    client.restore_login(login.user_id, login.device_id, login.access_token)
    return client


async def _time_bare(sender: nio.AsyncClient, receiver: BareReceiver, room_id: str,
                     run: int) -> float:
    marker = f"bare-{run}-{time.time_ns()}"
    started = time.perf_counter()
    response = await sender.room_send(room_id, BARE_EVENT_TYPE, {"bench": marker},
                                      tx_id=marker)
    if not isinstance(response, nio.RoomSendResponse):
        raise RuntimeError(f"bare send failed: {response}")
    return await receiver.wait_for(marker) - started


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def _bench(scratch: Path, runs: int) -> tuple[list[float], list[float]]:
    federation = start_federation(scratch / "servers", 2)
    try:
        configs = [await new_member(federation[0], scratch / "a", "Alerting Org", "CO"),
                   await new_member(federation[1], scratch / "b", "Receiving Org", "KE")]
        await form_coalition(configs)
        members = []
        async with contextlib.AsyncExitStack() as stack:
            http = await stack.enter_async_context(aiohttp.ClientSession())
            for config, name in zip(configs, ("a", "b"), strict=True):
                process, token = await stack.enter_async_context(
                    _process(config, scratch / f"{name}.log"))
                with passphrase_env():
                    async with open_node(config) as node:
                        org_id, data_dir = node.org_id, node.config.node.data_dir
                members.append(Member(process, token, org_id, data_dir / DATABASE_FILE_NAME,
                                      http))
            return await _measure(members[0], members[1], configs, runs)
    finally:
        federation.stop()


async def _alert_room(config: Path) -> str:
    with passphrase_env():
        async with open_node(config) as node:
            room = await saved_alert_room(node)
    assert room is not None
    return str(room["room_id"])


async def _measure(a: Member, b: Member, configs: list[Path], runs: int
                   ) -> tuple[list[float], list[float]]:
    await _warm_up(a, b)
    room_id = await _alert_room(configs[0])
    sender, receiving = await _client(configs[0]), await _client(configs[1])
    receiver = BareReceiver(receiving, sender.user_id)
    loop = asyncio.create_task(receiver.run())
    try:
        await _time_bare(sender, receiver, room_id, -1)  # warm-up
        alerts, bares = [], []
        for run in range(runs):
            alerts.append(await _time_alert(a, b, receiver, run))
            bares.append(await _time_bare(sender, receiver, room_id, run))
            await asyncio.sleep(SETTLE_SECONDS)
            print(f"run {run + 1}: alert {alerts[-1] * 1000:.1f} ms, "
                  f"bare {bares[-1] * 1000:.1f} ms", flush=True)
        return alerts, bares
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        await sender.close()
        await receiving.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as scratch:
        alerts, bares = asyncio.run(_bench(Path(scratch), runs))
    alert_ms, bare_ms = statistics.median(alerts) * 1000, statistics.median(bares) * 1000
    print(f"alert (send -> verified and stored at B): median {alert_ms:.1f} ms, "
          f"p95 {_p95(alerts) * 1000:.1f} ms")
    print(f"bare matrix-nio event (A -> B):          median {bare_ms:.1f} ms, "
          f"p95 {_p95(bares) * 1000:.1f} ms")
    print(f"median_ratio_vs_bare={alert_ms / bare_ms:.2f}x median_ms={alert_ms:.1f}")


if __name__ == "__main__":
    main()
