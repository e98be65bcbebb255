"""Sharing throughput over two federated homeservers, against one plain Matrix event per record.

Usage: .venv/bin/python bench/share.py [--records N] [--offline-records M] [--dir DIR]

Member A's node runs in this process (HTTP-free: the sharing function the API calls, and its
sync loop); member B's node is a real ``minga run`` process on the other homeserver. One run:

a. **minga**: A shares N cases with B (bulk shares of 500 per transaction: consent gate, one
   SD-JWT per record, queued in the outbox; bundled, sealed, posted; verified and stored by B).
   Records/s from the first share call to the last record verified and stored in B's store.
b. **naive**: the same N case payloads, each as one plain matrix-nio event (unsigned, not
   encrypted, sent one after the other), from an account on A's homeserver to an account on
   B's, same servers; records/s from the first send to the last event seen by B's sync loop.
c. **catch-up**: B's node stopped, A shares M more records (all of them posted by A's
   homeserver), then B's node starts: seconds from its start to the last record stored.

Prints the three results and the ratio, and last ``speedup_vs_naive=<N>x catchup_10k_s=<N>``.
Targets: speedup at least 20x, catch-up under 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import nio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.homeserver import Account, Federation, start_federation
from node.assembly import node_registry
from node.core.federation_loop import run_federation
from node.core.runtime import Node, open_node
from node.core.sharing import share_many_from_node
from node.core.store import NewCase, Role
from node.core.store.database import DATABASE_FILE_NAME
from node.features.cases.casebook import case_index
from schemas.case import Case
from schemas.ids import new_record_id
from schemas.records import CaseRecord, build_record, record_to_wire
from tests.support.sharing import (
    NodeProcess,
    form_coalition,
    new_member,
    passphrase_env,
)

FIELDS = ["country", "incident_date", "violations", "victims.groups", "victims.name", "place",
          "narrative"]
CHUNK = 500
BENCH_EVENT_TYPE = "org.minga.bench"
COUNTRIES = ["CO", "KE", "PH", "GT", "BR", "UG", "IN", "MX"]
VIOLATIONS = ["death_threat", "harassment", "arbitrary_detention", "surveillance",
              "judicial_harassment", "raid", "stigmatisation"]


def bench_case(number: int) -> Case:
    """An invented case of realistic size (a few hundred bytes of narrative)."""
    return Case.model_validate({
        "title": f"Caso de referencia {number}",
        "incident_date": f"20{18 + number % 7}-{1 + number % 12:02d}",
        "country": COUNTRIES[number % len(COUNTRIES)],
        "place": f"Vereda número {number}, municipio inventado",
        "narrative": ("Hombres armados llegaron a la reunión comunitaria y amenazaron a las "
                      "lideresas; la denuncia ante la fiscalía no ha avanzado. " * 3
                      + f"(registro {number})"),
        "violations": [VIOLATIONS[number % len(VIOLATIONS)]],
        "victims": [{"kind": "individual", "name": f"Persona inventada {number}",
                     "gender": "woman", "groups": ["defender"]}],
        "perpetrators": [{"category": "armed_group"}],
        "consent_level": "coalition",
        "risk_level": "medium",
    })


async def add_cases(node: Node, count: int, first: int) -> list[CaseRecord]:
    """Store ``count`` new cases in one transaction (setup, not timed)."""
    now = int(time.time())
    records: list[CaseRecord] = []
    for number in range(first, first + count):
        case = bench_case(number)
        record = build_record(node.org_id, case, record_id=new_record_id(), issued_at=now)
        assert isinstance(record, CaseRecord)
        records.append(record)
    async with node.store.transaction() as tx:
        await tx.cases.add_many([NewCase(r.record_id, record_to_wire(r), case_index(r.payload),
                                         "bench") for r in records])
    return records


async def share(node: Node, records: Sequence[CaseRecord], to: str) -> None:
    for start in range(0, len(records), CHUNK):
        await share_many_from_node(node, records[start:start + CHUNK], [to], FIELDS,
                                   actor="bench", issued_at=int(time.time()))


def stored_at(database: Path) -> int:
    """Case records in B's store, read straight from its database file (read-only)."""
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
            (count,) = connection.execute(
                "SELECT count(*) FROM received_records WHERE kind = 'case'").fetchone()
    except sqlite3.OperationalError:  # not created yet, or briefly locked
        return -1
    return int(count)


async def until_stored(database: Path, count: int, timeout: float = 900) -> float:
    deadline = time.monotonic() + timeout
    while (seen := stored_at(database)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"B holds {seen} of {count} records")
        await asyncio.sleep(0.02)
    return time.perf_counter()


async def outbox_drained(node: Node) -> None:
    from sync.engine import read_status

    while True:
        async with node.store.read() as tx:
            status = await read_status(tx.session)
        if status.queued_items == 0 and status.unsent_frames == 0:
            return
        await asyncio.sleep(0.1)


@asynccontextmanager
async def sync_loop(node: Node) -> AsyncIterator[None]:
    async with node.transport() as transport:
        task = asyncio.create_task(run_federation(node, transport, node_registry()))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


# --- the naive baseline ------------------------------------------------------------------------


def client_of(account: Account) -> nio.AsyncClient:
    config = nio.AsyncClientConfig(max_limit_exceeded=10, max_timeouts=10, request_timeout=60)
    client = nio.AsyncClient(account.homeserver_url, account.user_id, config=config)
    client.restore_login(account.user_id, account.device_id, account.access_token)
    return client


async def count_events(client: nio.AsyncClient, since: str, room_id: str, expected: int,
                       done: asyncio.Future[float]) -> None:
    """Follow the receiver's sync until it saw ``expected`` bench events (pages back through
    limited timelines, so no event is missed)."""
    seen: set[str] = set()
    last_report = time.monotonic()
    while len(seen) < expected:
        response = await client.sync(timeout=30_000, since=since,
                                     sync_filter={"room": {"timeline": {"limit": 100}}})
        if not isinstance(response, nio.SyncResponse):
            await asyncio.sleep(0.1)
            continue
        since = response.next_batch
        room = response.rooms.join.get(room_id)
        if room is None:
            continue
        events = [e.source for e in room.timeline.events]
        if room.timeline.limited and room.timeline.prev_batch:
            events += await page_back(client, room_id, room.timeline.prev_batch, seen)
        seen.update(e["event_id"] for e in events if e.get("type") == BENCH_EVENT_TYPE)
        if time.monotonic() - last_report > 10:
            print(f"   naive: {len(seen)} of {expected} seen", file=sys.stderr, flush=True)
            last_report = time.monotonic()
    done.set_result(time.perf_counter())


async def page_back(client: nio.AsyncClient, room_id: str, token: str,
                    seen: set[str]) -> list[dict[str, Any]]:
    """Events before ``token``, back to the first one already seen."""
    found: list[dict[str, Any]] = []
    while token:
        page = await client.room_messages(room_id, start=token, limit=100)
        if not isinstance(page, nio.RoomMessagesResponse) or not page.chunk:
            break
        chunk = [event.source for event in page.chunk]
        found += chunk
        if any(event.get("event_id") in seen for event in chunk):
            break
        token = page.end
    return found


async def naive(federation: Federation, payloads: list[dict[str, Any]]) -> float:
    """Seconds to move every payload as one plain event, first send to last seen."""
    sender = client_of(federation[0].create_account("naive-a"))
    receiver = client_of(federation[1].create_account("naive-b"))
    try:
        created = await sender.room_create(invite=[receiver.user_id])
        assert isinstance(created, nio.RoomCreateResponse), created
        for _ in range(300):  # the invite may take a moment to be stored on A's server
            if isinstance(await receiver.join(created.room_id), nio.JoinResponse):
                break
            await asyncio.sleep(0.2)
        else:
            raise RuntimeError("the naive receiver could not join the room")
        first = await receiver.sync(timeout=0)
        assert isinstance(first, nio.SyncResponse)

        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        counting = asyncio.create_task(count_events(receiver, first.next_batch,
                                                    created.room_id, len(payloads), done))
        started = time.perf_counter()
        for number, payload in enumerate(payloads):
            sent = await sender.room_send(created.room_id, BENCH_EVENT_TYPE, payload,
                                          tx_id=f"bench-{number}")
            assert isinstance(sent, nio.RoomSendResponse), sent
        finished = await asyncio.wait_for(done, timeout=1800)
        await counting
        return finished - started
    finally:
        await sender.close()
        await receiver.close()


# --- the run -----------------------------------------------------------------------------------


async def admin_token(config: Path) -> str:
    async with open_node(config) as node, node.store.transaction() as tx:
        return await tx.tokens.create("bench", Role.admin)


async def run(scratch: Path, records: int, offline_records: int) -> dict[str, float]:
    federation = start_federation(scratch / "federation", 2)
    try:
        configs = [await new_member(federation[0], scratch / "a", "Tierra Viva", "CO"),
                   await new_member(federation[1], scratch / "b", "Haki Ardhi", "KE")]
        await form_coalition(configs)
        with passphrase_env():
            return await measure(federation, configs, scratch, records, offline_records)
    finally:
        federation.stop()


async def measure(federation: Federation, configs: list[Path], scratch: Path, records: int,
                  offline_records: int) -> dict[str, float]:
    token = await admin_token(configs[1])
    async with open_node(configs[1]) as b_node:
        b_org, http = b_node.org_id, b_node.config.http
    b = NodeProcess(configs[1], f"http://{http.host}:{http.port}/api/v1", scratch / "b.log")
    b_database = configs[1].parent / DATABASE_FILE_NAME
    results: dict[str, float] = {}
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(open_node(configs[0]))
        await stack.enter_async_context(sync_loop(a))
        b.start()
        stack.callback(b.stop)
        await b.ready(token)
        await share(a, await add_cases(a, 1, first=10_000_000), b_org)  # pair room, warm-up
        await until_stored(b_database, 1)

        batch = await add_cases(a, records, first=0)
        started = time.perf_counter()
        await share(a, batch, b_org)
        results["minga_s"] = await until_stored(b_database, 1 + records) - started
        print(f"a. minga: {records} records in {results['minga_s']:.1f} s "
              f"= {records / results['minga_s']:.0f} records/s", flush=True)

        b.stop()
        later = await add_cases(a, offline_records, first=records)
        await share(a, later, b_org)
        await outbox_drained(a)
        started = time.perf_counter()
        b.start()
        results["catchup_s"] = (await until_stored(b_database, 1 + records + offline_records)
                                - started)
        print(f"c. catch-up: {offline_records} records in {results['catchup_s']:.1f} s "
              "after B's node started", flush=True)
        status = await b.call("GET", "/status", token)
        results["quarantined"] = status["sync"]["quarantined"]

    payloads = [json.loads(json.dumps(record_to_wire(r))) for r in batch]
    results["naive_s"] = await naive(federation, payloads)
    print(f"b. naive: {records} events in {results['naive_s']:.1f} s "
          f"= {records / results['naive_s']:.0f} records/s", flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5_000)
    parser.add_argument("--offline-records", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, help="scratch directory (default: a temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with contextlib.ExitStack() as stack:
        scratch = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        results = asyncio.run(run(scratch, args.records, args.offline_records))
    minga_rate = args.records / results["minga_s"]
    naive_rate = args.records / results["naive_s"]
    speedup = minga_rate / naive_rate
    print()
    print(f"{'':24}{'records':>10}{'seconds':>10}{'records/s':>12}")
    print(f"{'minga (sealed, signed)':24}{args.records:>10}{results['minga_s']:>10.1f}"
          f"{minga_rate:>12.0f}")
    print(f"{'naive (plain events)':24}{args.records:>10}{results['naive_s']:>10.1f}"
          f"{naive_rate:>12.0f}")
    print(f"{'catch-up after offline':24}{args.offline_records:>10}"
          f"{results['catchup_s']:>10.1f}{args.offline_records / results['catchup_s']:>12.0f}")
    print(f"quarantined at B: {results['quarantined']:.0f}")
    print(f"speedup_vs_naive={speedup:.1f}x catchup_10k_s={results['catchup_s']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
