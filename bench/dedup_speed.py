"""Speed of one de-duplication query against 1,000,000 local encodings, on one core.

Usage: .venv/bin/python bench/dedup_speed.py [--entries N] [--queries Q] [--quick]

Builds an :class:`EncodingIndex` of N encodings (default 1,000,000) and times
``best_matches`` (the responder's whole lookup: candidates, scores, ranking) for Q queries.

The encodings are made fast but realistic: every name token, place and date is a real encoding
under a linkage key (``encode_case_features``), but the 1M names are assembled from a pool of
3,000 encoded pseudo-words per country instead of being encoded one by one: 2 to 4 tokens drawn
with Zipf weights (the k-th commonest with weight k^-0.8: the commonest is in about one name in
eight, as "María" in Colombia), a tenth of the names with a second written form. Dates are
spread over the years with 80 % known to the day, 12 % to the month, 6 % to the year and 2 %
unknown (more than real: a case's incident date is required, so only ranges of more than five
years count as unknown). Queries are drawn the same way; half of them copy a held entry, so
they have at least one match.

Two spreads of the same N:

- **coalition**: 20 countries, 25 years (a large member's archive);
- **one country**: every case in one country over 10 years, so each date holds 20 times as
  many cases: the index's date blocking helps least.

Side by side on the same machine, a flat Dice scan of N record-level 1024-bit CLKs of
realistic density (one query against all N): numpy (``bitwise_count``; numpy is a bench extra,
not a runtime dependency), anonlink's C++ ``dice_coefficient_accelerated`` if it is importable,
and our pure-Python scorer on a flat scan (measured on 20,000 entries, scaled to N).

Times are CPU time of this process (``time.process_time``; everything here runs on one core),
so other work on a shared machine does not inflate them; the wall-clock mean of the queries is
printed alongside. The last line is ``ms_per_query_1M=<N>``: the mean CPU ms per query of the
index on the coalition spread, scaled to 1,000,000 entries if N differs. Target: under 100 ms.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import itertools
import random
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

from federation.linkage import (
    CaseFeatures,
    Encoding,
    EncodingIndex,
    LinkageKey,
    encode_case_features,
)
from federation.linkage.encoding import TOKEN_BYTES
from federation.linkage.scoring import parse_query, score_with_date

KEY = LinkageKey(hashlib.sha256(b"dedup-speed").digest())
COUNTRIES = (
    "CO", "MX", "GT", "HN", "BR", "PE", "KE", "UG", "CD", "PH",
    "IN", "MM", "RU", "TR", "EG", "NG", "ZW", "NI", "VE", "BD",
)  # fmt: skip
TOKENS_PER_COUNTRY = 3_000
PLACES_PER_COUNTRY = 40
PRECISIONS = (("day", 0.80), ("month", 0.12), ("year", 0.06), ("none", 0.02))
SYLLABLES = [c + v for c in "bdfghjklmnprstvwyz" for v in "aeiou"] + ["ng", "sh", "ch", "ll"]
FLAT_SCAN_SAMPLE = 20_000
# Name frequencies are Zipf-like: token k of a country's pool is drawn with weight k ** -0.8,
# so the commonest is in about one name in eight (as "María" in Colombia) and the top hundred
# make up about two fifths of all tokens.
ZIPF_CUMULATIVE = list(
    itertools.accumulate(rank**-0.8 for rank in range(1, TOKENS_PER_COUNTRY + 1))
)
CLK_BITS = 1024


@dataclass(frozen=True)
class Spread:
    name: str
    countries: tuple[str, ...]
    first_day: date
    days: int


class Generator:
    """Realistic encodings, fast: pools of real encoded tokens, places and dates per country."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._tokens: dict[str, list[bytes]] = {}
        self._places: dict[str, list[bytes | None]] = {}

    def encoding(self, spread: Spread) -> Encoding:
        country = self.rng.choice(spread.countries)
        forms = [self._name_form(country) for _ in range(1 if self.rng.random() < 0.9 else 2)]
        return Encoding(
            key_id=KEY.key_id,
            country=_country_tag(country),
            name=bytes([len(forms)]) + b"".join(sorted(forms)),
            date=_date_field(country, self._date_text(spread)),
            place=self.rng.choice(self._place_pool(country)),
        )

    def _name_form(self, country: str) -> bytes:
        count = self.rng.choices((2, 3, 4), weights=(45, 40, 15))[0]
        pool = self._token_pool(country)
        tokens = sorted(self.rng.choices(pool, cum_weights=ZIPF_CUMULATIVE, k=count))
        return bytes([count]) + b"".join(tokens)

    def _date_text(self, spread: Spread) -> str | None:
        day = spread.first_day + timedelta(self.rng.randrange(spread.days))
        precision = self.rng.choices(
            [name for name, _ in PRECISIONS], weights=[share for _, share in PRECISIONS]
        )[0]
        return {"day": day.isoformat(), "month": day.isoformat()[:7], "year": str(day.year)}.get(
            precision
        )

    def _token_pool(self, country: str) -> list[bytes]:
        if country not in self._tokens:
            words: set[str] = set()
            while len(words) < TOKENS_PER_COUNTRY:
                words.add(self._pseudo_word())
            ranked = sorted(words)
            self.rng.shuffle(ranked)
            # Each word encoded alone: the name field is [forms][tokens][token bytes]...; a word
            # that scheme v2 reads as several tokens (Burmese syllables) gives its first.
            self._tokens[country] = [
                _encode(country, word).name[2 : 2 + TOKEN_BYTES] for word in ranked
            ]
        return self._tokens[country]

    def _place_pool(self, country: str) -> list[bytes | None]:
        if country not in self._places:
            places = [self._pseudo_word() for _ in range(PLACES_PER_COUNTRY)]
            self._places[country] = [_encode(country, "x", place=p).place for p in places]
            self._places[country].append(None)
        return self._places[country]

    def _pseudo_word(self) -> str:
        return "".join(self.rng.choices(SYLLABLES, k=self.rng.randint(2, 4)))


def _encode(country: str, name: str, when: str | None = None, place: str | None = None) -> Encoding:
    features = CaseFeatures(names=[name], date=when, place=place, country=country)
    return encode_case_features(features, KEY)


@cache
def _country_tag(country: str) -> bytes:
    return _encode(country, "x").country


@cache
def _date_field(country: str, when: str | None) -> bytes:
    return _encode(country, "x", when).date


def _precision_of(encoding: Encoding) -> str:
    return ("none", "year", "month", "day")[encoding.date[0]]


def build_index(
    generator: Generator, spread: Spread, entries: int
) -> tuple[EncodingIndex, list[Encoding]]:
    """The index, and its first entries (to draw queries from and to time a flat scan)."""
    index = EncodingIndex(KEY.key_id)
    first: list[Encoding] = []
    started = time.perf_counter()
    for number in range(entries):
        encoding = generator.encoding(spread)
        index.add(f"case-{number}", encoding)
        if number < FLAT_SCAN_SAMPLE:
            first.append(encoding)
    print(f"  built {entries:,} entries in {time.perf_counter() - started:.0f} s")
    return index, first


def time_queries(index: EncodingIndex, queries: Sequence[Encoding]) -> list[float]:
    """CPU ms of each query (this process, one core), printed with the wall-clock mean."""
    index.best_matches(queries[0])  # warm up
    times: list[float] = []
    wall = 0.0
    by_precision: dict[str, list[float]] = {}
    matches = 0
    for query in queries:
        started, started_wall = time.process_time(), time.perf_counter()
        found = index.best_matches(query)
        elapsed = 1000 * (time.process_time() - started)
        wall += 1000 * (time.perf_counter() - started_wall)
        times.append(elapsed)
        by_precision.setdefault(_precision_of(query), []).append(elapsed)
        matches += bool(found)
    print(
        f"  {len(queries)} queries, CPU time: mean {statistics.fmean(times):.1f} ms, "
        f"p50 {statistics.median(times):.1f} ms, p95 {_p95(times):.1f} ms, "
        f"max {max(times):.1f} ms (wall-clock mean {wall / len(queries):.1f} ms); "
        f"{matches} with a match"
    )
    for precision in ("day", "month", "year", "none"):
        if precision in by_precision:
            values = by_precision[precision]
            print(
                f"    date known to the {precision:<5} ({len(values):>3} queries): "
                f"mean {statistics.fmean(values):7.1f} ms, p95 {_p95(values):7.1f} ms"
            )
    return times


def _p95(values: Sequence[float]) -> float:
    return sorted(values)[max(int(0.95 * len(values)) - 1, 0)]


def _queries(
    generator: Generator, spread: Spread, held: Sequence[Encoding], count: int
) -> list[Encoding]:
    rng = generator.rng
    return [
        rng.choice(held) if number % 2 else generator.encoding(spread) for number in range(count)
    ]


def run_spread(spread: Spread, entries: int, queries: int) -> float:
    print(f"\n{spread.name}: {len(spread.countries)} countries, {spread.days // 365} years")
    generator = Generator(random.Random(spread.name))
    index, held = build_index(generator, spread, entries)
    print(f"  process max RSS so far: {_rss_mb():,.0f} MB")
    times = time_queries(index, _queries(generator, spread, held, queries))
    flat_scan_ms(held[-1], held, entries)
    del index, held
    gc.collect()
    return statistics.fmean(times)


def flat_scan_ms(query: Encoding, sample: Sequence[Encoding], entries: int) -> None:
    """Our scorer on every entry, without the date blocking (scaled from a sample)."""
    parsed = parse_query(query)
    started = time.process_time()
    for encoding in sample:
        score_with_date(parsed, encoding, 1000)
    per_entry = (time.process_time() - started) / len(sample)
    print(
        f"  pure-Python flat scan, no blocking: {1000 * per_entry * entries:,.0f} ms per query "
        f"(measured on {len(sample):,} entries: {1e6 * per_entry:.1f} us each)"
    )


def baselines(entries: int) -> None:
    print(f"\nflat Dice scan of {entries:,} record-level {CLK_BITS}-bit CLKs, one query")
    try:
        import numpy as np
    except ImportError:
        print("  numpy is not installed (pip install -e '.[bench]'): no baseline")
        return
    rng = np.random.default_rng(7)
    words = CLK_BITS // 64
    # About 20 % of bits set, like a CLK of ~30 bigrams x 10 hashes on 1024 bits; made in
    # chunks so the random floats never take more than a few hundred MB.
    clks = np.empty((entries, words), dtype=np.uint64)
    for start in range(0, entries, 50_000):
        stop = min(start + 50_000, entries)
        bits = rng.random((stop - start, CLK_BITS), dtype=np.float32) < 0.2
        clks[start:stop] = np.packbits(bits, axis=1).view(np.uint64)
    ones = np.bitwise_count(clks).sum(axis=1, dtype=np.int32)
    query = clks[entries // 2].copy()
    query_ones = int(np.bitwise_count(query).sum())

    def numpy_dice() -> None:
        shared = np.bitwise_count(clks & query).sum(axis=1, dtype=np.int32)
        dice = 2 * shared / (ones + query_ones)
        best = np.argpartition(dice, -5)[-5:]
        assert entries // 2 in best

    print(f"  numpy: {_best_ms(numpy_dice):.1f} ms per query")
    _anonlink_baseline([row.tobytes() for row in clks], query.tobytes())


def _anonlink_baseline(clks: list[bytes], query: bytes) -> None:
    try:
        from anonlink.similarities import dice_coefficient_accelerated
        from bitarray import bitarray
    except ImportError:
        print("  anonlink: not importable, skipped")
        return
    filters = []
    for clk in clks:
        bits = bitarray()
        bits.frombytes(clk)
        filters.append(bits)
    query_bits = bitarray()
    query_bits.frombytes(query)

    def anonlink_dice() -> None:
        dice_coefficient_accelerated([[query_bits], filters], threshold=0.7, k=5)

    print(
        f"  anonlink dice_coefficient_accelerated: {_best_ms(anonlink_dice):.1f} ms per query"
        " (mostly its per-call Python checks and copies of all N filters; it is built for"
        " batches of queries)"
    )


def _best_ms(function: Callable[[], None], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.process_time()
        function()
        times.append(1000 * (time.process_time() - started))
    return statistics.median(times)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="coalition spread only, no baselines")
    args = parser.parse_args()
    coalition = Spread("coalition", COUNTRIES, date(2001, 1, 1), 25 * 365)
    one_country = Spread("one country", ("CO",), date(2016, 1, 1), 10 * 365)
    print(f"one query against {args.entries:,} local encodings, one core")
    mean_ms = run_spread(coalition, args.entries, args.queries)
    if not args.quick:
        run_spread(one_country, args.entries, args.queries)
        baselines(args.entries)
    print(f"\nprocess max RSS: {_rss_mb():,.0f} MB")
    print(f"ms_per_query_1M={mean_ms * 1_000_000 / args.entries:.1f}")


if __name__ == "__main__":
    main()
