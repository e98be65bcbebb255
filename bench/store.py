"""Benchmark of the node store on SQLite and on PostgreSQL: filtered list pages, get-by-id,
sharing throughput and memory, side by side.

Usage: .venv/bin/python bench/store.py [--backend sqlite|postgresql|both] [--cases N ...]
       [--postgresql-url URL] [--dir DIR]

For each backend and each case count (default 100,000 and 1,000,000), a fresh store is filled
with N cases (realistic index values, a 1-2 KB encrypted document each) through the same
repository the node uses, in batches of one transaction each; then a page of 50 with a filter,
the next page, an unfiltered page and a get by id are timed many times, and records are shared:
queued one share per transaction (as the sharing service does) and sealed into frames by the
outbox. Each run is a process of its own, so its RSS is its own. PostgreSQL is a throw-away
server of Debian's package with its default (durable) settings, unless ``--postgresql-url``
names one; after the bulk insert it is ANALYZEd, as its autovacuum would soon do.

Prints one table, then last the line
``pg_p95_1M_ms=<N> sqlite_p95_1M_ms=<N>`` (filtered page p95 at the largest case count run).
Target: filtered page p95 under 100 ms at 1,000,000 cases on both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import text as sql

from federation.identity import OrgKeys, sign_member_entry
from node.core.runtime import SYNC_MIGRATIONS, Node
from node.core.store import (
    CaseFilter,
    CaseIndex,
    NewCase,
    Store,
    create_data_key,
    open_store,
)
from node.core.sync_host import NodeSyncHost
from sync.outbox import Outbox
from tests.support.postgres import start_postgres  # Debian's server, as the tests use
from tests.support.sync import record_token  # a signed SD-JWT record, as shared

BATCH = 1000
FILTERED_PAGES = 400
GETS = 2000
PAGE = 50
SHARES = 2000
SHARE_ROOMS = 4
BACKENDS = ("sqlite", "postgresql")

COUNTRIES = [
    "CO",
    "MX",
    "GT",
    "HN",
    "BR",
    "PE",
    "KE",
    "UG",
    "CD",
    "PH",
    "IN",
    "MM",
    "RU",
    "TR",
    "EG",
    "NG",
    "ZW",
    "NI",
    "VE",
    "BD",
]
COUNTRY_WEIGHTS = [30, 18, 10, 9, 9, 7, 8, 5, 5, 12, 10, 6, 4, 4, 3, 3, 2, 2, 2, 1]
VIOLATIONS = [
    "killing",
    "attempted_killing",
    "enforced_disappearance",
    "kidnapping",
    "arbitrary_detention",
    "torture",
    "physical_assault",
    "sexual_violence",
    "death_threat",
    "threat",
    "harassment",
    "surveillance",
    "raid",
    "judicial_harassment",
    "stigmatisation",
    "digital_attack",
    "forced_displacement",
    "property_destruction",
    "travel_ban",
    "administrative_restriction",
    "attack_on_relatives",
    "other",
]
VIOLATION_WEIGHTS = [6, 3, 2, 2, 8, 3, 6, 2, 10, 14, 10, 4, 3, 9, 8, 4, 3, 2, 1, 2, 2, 2]
VICTIM_GROUPS = [
    "defender",
    "land_environmental_defender",
    "indigenous_leader",
    "woman_hrd",
    "lgbtiq_defender",
    "journalist",
    "trade_unionist",
    "lawyer",
    "community",
]
WORDS = [
    "la",
    "comunidad",
    "denunció",
    "amenazas",
    "contra",
    "lideresa",
    "territorio",
    "río",
    "vereda",
    "policía",
    "ejército",
    "empresa",
    "minera",
    "the",
    "community",
    "reported",
    "threats",
    "against",
    "leader",
    "land",
    "river",
    "village",
    "police",
    "army",
    "company",
    "mining",
    "jamii",
    "iliripoti",
    "vitisho",
    "dhidi",
    "ya",
    "kiongozi",
    "ardhi",
    "mto",
    "ang",
    "komunidad",
    "ay",
    "nag-ulat",
    "ng",
    "banta",
    "laban",
    "sa",
    "lider",
    "lupa",
    "ilog",
    "барангай",
    "община",
    "угрозы",
    "защитник",
    "земля",
    "река",
    "بلاغ",
    "تهديد",
    "المدافع",
    "الأرض",
    "社区",
    "报告",
    "威胁",
    "捍卫者",
    "土地",
]
NAMES = [
    "Rosa Elvira Quispe",
    "Wanjiru Kamau",
    "Juan dela Cruz",
    "María José Huamaní",
    "Dmitri Sokolov",
    "عائشة الحربي",
    "李明辉",
    "Ananya Krishnan",
    "Ngozi Okafor",
    "Tomás Ixcoy Batz",
]


def random_index(rng: random.Random) -> CaseIndex:
    start = date(2015, 1, 1) + timedelta(days=rng.randrange(11 * 365))
    shape = rng.random()
    if shape < 0.05:
        date_from, date_to = None, None
    elif shape < 0.15:
        date_from, date_to = start.isoformat(), None
    else:
        date_from, date_to = start.isoformat(), (start + timedelta(rng.randrange(60))).isoformat()
    return CaseIndex(
        country=rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0],
        date_from=date_from,
        date_to=date_to,
        violations=frozenset(rng.choices(VIOLATIONS, VIOLATION_WEIGHTS, k=rng.randint(1, 3))),
        victim_groups=frozenset(rng.sample(VICTIM_GROUPS, rng.randint(1, 2))),
    )


def random_document(rng: random.Random, index: CaseIndex) -> dict[str, Any]:
    def text(words: int) -> str:
        return " ".join(rng.choices(WORDS, k=words))

    return {
        "schema": "minga.case/1",
        "country": index.country,
        "place": text(4),
        "narrative": text(rng.randint(90, 190)),
        "victims": [
            {"name": rng.choice(NAMES), "groups": sorted(index.victim_groups)}
            for _ in range(rng.randint(1, 3))
        ],
        "violations": sorted(index.violations),
        "story_of_impact": text(rng.randint(10, 40)),
    }


def random_filter(rng: random.Random) -> CaseFilter:
    start = date(2015, 1, 1) + timedelta(days=rng.randrange(10 * 365))
    period = {
        "date_from": start.isoformat(),
        "date_to": (start + timedelta(days=rng.choice([30, 90, 365]))).isoformat(),
    }
    shapes: list[dict[str, Any]] = [
        {"country": rng.choice(COUNTRIES)},
        {"violation": rng.choice(VIOLATIONS)},
        {"victim_group": rng.choice(VICTIM_GROUPS)},
        {"country": rng.choice(COUNTRIES), "violation": rng.choice(VIOLATIONS)},
        {"country": rng.choice(COUNTRIES), **period},
        {"violation": rng.choice(VIOLATIONS), **period},
        {
            "country": rng.choice(COUNTRIES),
            "violation": rng.choice(VIOLATIONS),
            "victim_group": rng.choice(VICTIM_GROUPS),
            **period,
        },
    ]
    return CaseFilter(**rng.choice(shapes))


async def insert_cases(store: Store, count: int, rng: random.Random) -> list[str]:
    record_ids: list[str] = []
    started = time.perf_counter()
    for first in range(0, count, BATCH):
        batch = []
        for _ in range(min(BATCH, count - first)):
            record_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            index = random_index(rng)
            batch.append(NewCase(record_id, random_document(rng, index), index, "bench"))
            record_ids.append(record_id)
        async with store.transaction() as tx:
            await tx.cases.add_many(batch)
    elapsed = time.perf_counter() - started
    print(f"inserted {count} cases in {elapsed:.1f} s ({count / elapsed:.0f} cases/s)")
    return record_ids


async def timed(samples: int, call: Callable[[int], Awaitable[None]]) -> list[float]:
    timings = []
    for n in range(samples):
        started = time.perf_counter()
        await call(n)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


def memory_mb() -> tuple[float, float]:
    """Current and peak resident set size of this process, in MB (Linux)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def report(label: str, timings: list[float]) -> None:
    print(
        f"{label:<34} n={len(timings):<5} p50={percentile(timings, 0.5):7.2f} ms"
        f"  p95={percentile(timings, 0.95):7.2f} ms  max={max(timings):7.2f} ms"
    )


async def share_throughput(store: Store) -> tuple[float, float]:
    """Records per second queued (one share per transaction) and sealed into frames."""
    own, peer = OrgKeys.generate(), OrgKeys.generate()
    async with store.transaction() as tx:
        for keys in (own, peer):
            await tx.orgs.save_member(keys.org_id, sign_member_entry(keys, {"name": "m"}),
                                      verified=True, safety_code="s", matrix_user_id=None)
    node = Node(config=cast(Any, None), store=store, keys=own, own=cast(Any, None))
    host = await NodeSyncHost.for_sending(node)
    outbox = Outbox(host, cast(Any, None))  # sealing never touches the homeserver
    tokens = [record_token(own) for _ in range(SHARES)]
    started = time.perf_counter()
    for n, token in enumerate(tokens):
        async with host.transaction() as session:
            await outbox.enqueue(session, f"!room{n % SHARE_ROOMS}:bench", [peer.org_id], token)
    queued = SHARES / (time.perf_counter() - started)
    started = time.perf_counter()
    while await outbox.bundle_queued():
        pass
    sealed = SHARES / (time.perf_counter() - started)
    return queued, sealed


async def measure(location: Path | str, data_dir: Path, count: int) -> dict[str, float]:
    """Fill a store at ``location`` with ``count`` cases and time it; the figures."""
    rng = random.Random(20250301)
    store = await open_store(location, create_data_key(data_dir, "bench passphrase"),
                             migrations=[SYNC_MIGRATIONS])
    inserted_at = time.perf_counter()
    record_ids = await insert_cases(store, count, rng)
    insert_rate = count / (time.perf_counter() - inserted_at)
    if store.engine.dialect.name == "postgresql":
        async with store.engine.begin() as connection:  # committed: a rolled-back one keeps none
            await connection.execute(sql("ANALYZE"))
    else:
        await store.checkpoint()

    filters = [random_filter(rng) for _ in range(FILTERED_PAGES)]
    next_pages: list[tuple[CaseFilter, str]] = []

    async def filtered_page(n: int) -> None:
        async with store.read() as tx:
            page = await tx.cases.list(filters[n], limit=PAGE)
        if page.next_cursor:
            next_pages.append((filters[n], page.next_cursor))

    async def following_page(n: int) -> None:
        wanted, cursor = next_pages[n]
        async with store.read() as tx:
            await tx.cases.list(wanted, limit=PAGE, cursor=cursor)

    async def unfiltered_page(n: int) -> None:
        async with store.read() as tx:
            await tx.cases.list(limit=PAGE)

    async def get_by_id(n: int) -> None:
        async with store.read() as tx:
            await tx.cases.get(record_ids[rng.randrange(len(record_ids))])

    await timed(20, filtered_page)  # warm the caches and the statement caches
    next_pages.clear()
    pages = await timed(FILTERED_PAGES, filtered_page)
    second_pages = await timed(len(next_pages), following_page)
    plain = await timed(100, unfiltered_page)
    gets = await timed(GETS, get_by_id)
    queued, sealed = await share_throughput(store)
    await store.close()
    rss, peak = memory_mb()
    return {
        "insert_per_s": insert_rate,
        "page_p50": percentile(pages, 0.5), "page_p95": percentile(pages, 0.95),
        "next_p95": percentile(second_pages, 0.95),
        "plain_p95": percentile(plain, 0.95),
        "get_p50": percentile(gets, 0.5), "get_p95": percentile(gets, 0.95),
        "queued_per_s": queued, "sealed_per_s": sealed,
        "rss_mb": rss, "peak_rss_mb": peak,
    }


async def one_run(backend: str, count: int, url: str | None, directory: Path) -> dict[str, float]:
    if backend == "sqlite":
        return await measure(directory, directory, count)
    if url is not None:
        return await measure(url, directory, count)
    server = start_postgres(durable=True)
    try:
        return await measure(server.new_database("bench"), directory, count)
    finally:
        server.stop()


ROWS = [
    ("insert cases/s", "insert_per_s", "{:.0f}"),
    ("filtered page p50 ms", "page_p50", "{:.1f}"),
    ("filtered page p95 ms", "page_p95", "{:.1f}"),
    ("next page (cursor) p95 ms", "next_p95", "{:.1f}"),
    ("unfiltered page p95 ms", "plain_p95", "{:.1f}"),
    ("get by id p50 ms", "get_p50", "{:.2f}"),
    ("get by id p95 ms", "get_p95", "{:.2f}"),
    ("shares queued records/s", "queued_per_s", "{:.0f}"),
    ("shares sealed records/s", "sealed_per_s", "{:.0f}"),
    ("RSS MB (peak)", "rss_mb", "{:.0f}"),
]


def table(results: dict[tuple[str, int], dict[str, float]]) -> str:
    columns = sorted(results, key=lambda key: (key[1], BACKENDS.index(key[0])))
    heads = [f"{backend} {count:,}" for backend, count in columns]
    lines = ["| " + " | ".join(["", *heads]) + " |", "|" + "---|" * (len(heads) + 1)]
    for label, key, form in ROWS:
        cells = []
        for column in columns:
            figures = results[column]
            cell = form.format(figures[key])
            if key == "rss_mb":
                cell += f" ({figures['peak_rss_mb']:.0f})"
            cells.append(cell)
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


def run_all(args: argparse.Namespace, backends: tuple[str, ...], base: Path
            ) -> dict[tuple[str, int], dict[str, float]]:
    """Each (count, backend) in a child process of its own; their figures."""
    results: dict[tuple[str, int], dict[str, float]] = {}
    for count in args.cases:
        for backend in backends:
            directory = base / f"{backend}-{count}"
            directory.mkdir(parents=True)
            command = [sys.executable, __file__, "--child", "--backend", backend,
                       "--cases", str(count), "--dir", str(directory)]
            if args.postgresql_url:
                command += ["--postgresql-url", args.postgresql_url]
            print(f"== {backend}, {count:,} cases", flush=True)
            done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
            for line in done.stdout.splitlines():
                if line.startswith("FIGURES "):
                    results[(backend, count)] = json.loads(line.removeprefix("FIGURES "))
                else:
                    print(line, flush=True)
    return results


def last_line(results: dict[tuple[str, int], dict[str, float]], largest: int) -> str:
    def p95(backend: str) -> str:
        figures = results.get((backend, largest))
        return "n/a" if figures is None else f"{figures['page_p95']:.1f}"

    return f"pg_p95_1M_ms={p95('postgresql')} sqlite_p95_1M_ms={p95('sqlite')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--cases", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--postgresql-url", help="an empty database to use (default: start one)")
    parser.add_argument("--dir", type=Path, help="keep the data directories under here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    base = args.dir or Path(tempfile.mkdtemp(prefix="minga-bench-store-"))
    if args.child:  # one backend, one count, in this process: print its figures as JSON
        measured = asyncio.run(one_run(backends[0], args.cases[0], args.postgresql_url, base))
        print("FIGURES " + json.dumps(measured))
        return
    try:
        results = run_all(args, backends, base)
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
    print(table(results))
    largest = max(args.cases)
    if largest != 1_000_000:
        print(f"(the last line's figures are at {largest:,} cases, the largest count run)")
    print(last_line(results, largest))


if __name__ == "__main__":
    main()
