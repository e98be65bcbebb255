"""Alert latency over two federated homeservers, against a bare Matrix event (M8).

Usage: .venv/bin/python bench/alert_latency.py [--runs N]

Member A's node is on homeserver 1 and B's on homeserver 2, both running their federation loop
with the default sync settings. Each run times, alternately:

- **alert**: from A's ``send_alert`` call to B's node having verified the SD-JWT, opened the
  sealed envelope and stored the alert (read back from B's store);
- **bare**: from a plain matrix-nio ``room_send`` by A's account to a plain matrix-nio
  ``sync`` loop of B's account seeing that event, in the same room over the same servers.

A warm-up alert first creates A's alert room and lets B join it. Prints every run, the median
and 95th percentile of each, and last ``median_ratio_vs_bare=<N>x median_ms=<N>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import nio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.homeserver import start_federation
from node.alert_room import saved_alert_room
from node.alerts import UnknownAlert, bus_of, get_alert, send_alert
from node.federation_loop import run_federation
from node.runtime import Node, open_node
from schemas.payloads import Alert
from tests.sharing_support import form_coalition, new_member, passphrase_env

BARE_EVENT_TYPE = "org.minga.bench"


def _alert(run: int) -> Alert:
    return Alert.model_validate({"alert_type": "arrest", "urgency": "critical", "country": "CO",
                                 "place": "bench place", "asks": ["legal_support"],
                                 "text": f"bench alert {run}"})


@asynccontextmanager
async def _running(node: Node) -> AsyncIterator[None]:
    async with node.transport() as transport:
        task = asyncio.create_task(run_federation(node, transport))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _stored_at(node: Node, issuer: str, record_id: str) -> None:
    """Return once ``node`` holds the alert: its alert bus wakes this when the handler ran,
    then the store is read every few milliseconds until the inbox transaction committed."""
    async with bus_of(node).listen() as changed:
        while True:
            with contextlib.suppress(UnknownAlert):
                await get_alert(node, issuer, record_id)
                return
            if changed.is_set():
                await asyncio.sleep(0.003)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), 0.05)


async def _time_alert(a: Node, b: Node, run: int) -> float:
    started = time.perf_counter()
    state = await send_alert(a, _alert(run), actor="bench", now=int(time.time()))
    await _stored_at(b, a.org_id, state.record_id)
    elapsed = time.perf_counter() - started
    await _acknowledged(a, state.record_id)  # let the acknowledgement traffic settle
    return elapsed


async def _acknowledged(a: Node, record_id: str) -> None:
    for _ in range(400):
        state = await get_alert(a, a.org_id, record_id)
        if all(r.status != "sent" for r in state.recipients):
            return
        await asyncio.sleep(0.05)


class BareReceiver:
    """A plain matrix-nio sync loop of B's account, noting when each bench event arrives."""

    def __init__(self, client: nio.AsyncClient) -> None:
        self.client = client
        self.arrived: dict[str, float] = {}
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
                    marker = event.source.get("content", {}).get("bench")
                    if event.source.get("type") == BARE_EVENT_TYPE and isinstance(marker, str):
                        self.arrived[marker] = now
                        self.changed.set()

    async def wait_for(self, marker: str) -> float:
        while marker not in self.arrived:
            self.changed.clear()
            await self.changed.wait()
        return self.arrived[marker]


async def _client(node: Node) -> nio.AsyncClient:
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
        with passphrase_env():
            async with AsyncExitStack() as stack:
                a, b = [await stack.enter_async_context(open_node(c)) for c in configs]
                for node in (a, b):
                    await stack.enter_async_context(_running(node))
                return await _measure(a, b, runs)
    finally:
        federation.stop()


async def _measure(a: Node, b: Node, runs: int) -> tuple[list[float], list[float]]:
    await _time_alert(a, b, -1)  # warm-up: the alert room is created and joined
    room = await saved_alert_room(a)
    assert room is not None
    sender, receiving = await _client(a), await _client(b)
    receiver = BareReceiver(receiving)
    loop = asyncio.create_task(receiver.run())
    try:
        await _time_bare(sender, receiver, room["room_id"], -1)  # warm-up
        alerts, bares = [], []
        for run in range(runs):
            alerts.append(await _time_alert(a, b, run))
            bares.append(await _time_bare(sender, receiver, room["room_id"], run))
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
