"""Benchmark of the node store at 100,000 cases: filtered list pages and get-by-id.

Usage: .venv/bin/python bench/store.py [--cases N] [--dir DIR]

Inserts N cases (realistic index values, a 1-2 KB encrypted document each) through the same
repository the node uses, in batches of one transaction each, then times a page of 50 with a
filter and a get by id, many times. Prints p50/p95 for each and the process's memory, and ends
with the line ``p95_filtered_page_ms=<N> rss_mb=<N>``. Target: p95 under 100 ms for a page.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from node.core.store import (
    CaseFilter,
    CaseIndex,
    NewCase,
    Store,
    create_data_key,
    open_store,
)

BATCH = 1000
FILTERED_PAGES = 400
GETS = 2000
PAGE = 50

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


async def run(data_dir: Path, count: int) -> None:
    rng = random.Random(20250301)
    store = await open_store(data_dir, create_data_key(data_dir, "bench passphrase"))
    record_ids = await insert_cases(store, count, rng)
    await store.checkpoint()
    size = sum(path.stat().st_size for path in data_dir.glob("store.db*")) / 1e6
    print(f"database size: {size:.0f} MB")

    filters = [random_filter(rng) for _ in range(FILTERED_PAGES)]
    returned: list[int] = []

    next_pages: list[tuple[CaseFilter, str]] = []

    async def filtered_page(n: int) -> None:
        async with store.read() as tx:
            page = await tx.cases.list(filters[n], limit=PAGE)
        returned.append(len(page.items))
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

    await timed(20, filtered_page)  # warm the page cache and the statement cache
    returned.clear()
    next_pages.clear()
    pages = await timed(FILTERED_PAGES, filtered_page)
    second_pages = await timed(len(next_pages), following_page)
    plain = await timed(100, unfiltered_page)
    gets = await timed(GETS, get_by_id)
    await store.close()

    print(
        f"filtered pages: mean {statistics.mean(returned):.1f} cases returned per page"
        f" (page size {PAGE}), {sum(1 for n in returned if n == 0)} empty"
    )
    report(f"list page of {PAGE} with a filter", pages)
    report("next page (cursor) with a filter", second_pages)
    report(f"list page of {PAGE}, no filter", plain)
    report("get case by id", gets)
    rss, peak = memory_mb()
    print(f"process memory: rss {rss:.0f} MB, peak {peak:.0f} MB")
    print(f"p95_filtered_page_ms={percentile(pages, 0.95):.1f} rss_mb={rss:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, help="keep the database here (default: temporary)")
    args = parser.parse_args()
    if args.dir:
        asyncio.run(run(args.dir, args.cases))
        return
    with tempfile.TemporaryDirectory(prefix="minga-bench-store-") as directory:
        asyncio.run(run(Path(directory), args.cases))


if __name__ == "__main__":
    main()
