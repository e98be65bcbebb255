"""A member's index of its own cases' encodings, answering "what here matches this query?".

Entries are grouped by the keyed date tags they can match at each level, so a query is compared
only with entries whose dates are compatible with its own (and entries without a date), never
with the whole index; since :func:`~federation.linkage.scoring.compare` gates on the same date
rule, the answer is exactly what comparing with every entry would give. Every candidate is then
scored with the same code as :func:`~federation.linkage.scoring.compare`. The index is kept in
memory and updated on every write of a case (``add`` / ``remove`` by handle).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from federation.linkage.dates import Precision
from federation.linkage.encoding import Encoding
from federation.linkage.scoring import (
    LOW,
    DateTags,
    KeyMismatchError,
    ParsedEncoding,
    Score,
    compare_parsed,
    parse,
)

_Bucket = dict[bytes, list[int]]


@dataclass(frozen=True)
class Match:
    """An entry of the index that may match the query; ``handle`` is whatever ``add`` got."""

    handle: str
    score: Score


class EncodingIndex:
    """Encodings of one member's cases under one linkage key, by opaque handle."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        self._entries: dict[int, tuple[str, Encoding]] = {}
        self._handles: dict[str, list[int]] = {}
        self._next_id = 0
        self._by_day: _Bucket = {}
        self._day_by_month: _Bucket = {}
        self._month_only: _Bucket = {}
        self._dated_by_year: _Bucket = {}
        self._year_only: _Bucket = {}
        self._undated: _Bucket = {}
        self._by_country: _Bucket = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, handle: str, encoding: Encoding) -> None:
        """Add one encoding under ``handle`` (a case about several defenders adds several)."""
        self._check_key(encoding)
        entry = self._next_id
        self._next_id += 1
        self._entries[entry] = (handle, encoding)
        self._handles.setdefault(handle, []).append(entry)
        for bucket, tag in self._memberships(encoding):
            bucket.setdefault(tag, []).append(entry)

    def remove(self, handle: str) -> None:
        """Forget every encoding added under ``handle`` (no-op for an unknown handle)."""
        for entry in self._handles.pop(handle, []):
            _, encoding = self._entries.pop(entry)
            for bucket, tag in self._memberships(encoding):
                members = bucket[tag]
                members.remove(entry)
                if not members:
                    del bucket[tag]

    def replace(self, handle: str, encodings: Iterable[Encoding]) -> None:
        """Make ``encodings`` the only ones under ``handle`` (a case was edited)."""
        fresh = list(encodings)
        for encoding in fresh:
            self._check_key(encoding)
        self.remove(handle)
        for encoding in fresh:
            self.add(handle, encoding)

    def best_matches(self, query: Encoding, limit: int = 5, threshold: int = LOW) -> list[Match]:
        """Up to ``limit`` handles scoring at least ``threshold``, best first, one per handle."""
        self._check_key(query)
        parsed = parse(query)
        best: dict[str, Score] = {}
        for entry in self._candidates(parsed):
            handle, encoding = self._entries[entry]
            score = compare_parsed(parsed, parse(encoding))
            if score.total >= threshold and (
                handle not in best or score.total > best[handle].total
            ):
                best[handle] = score
        ranked = sorted(best.items(), key=lambda item: (-item[1].total, item[0]))
        return [Match(handle, score) for handle, score in ranked[:limit]]

    def _candidates(self, query: ParsedEncoding) -> set[int]:
        date = query.date
        if date.precision is Precision.NONE:
            return set(self._by_country.get(query.country, ()))
        probes: list[tuple[_Bucket, frozenset[bytes]]] = [
            (self._undated, frozenset({query.country}))
        ]
        if date.precision is Precision.DAY:
            probes += [
                (self._by_day, date.windows[Precision.DAY]),
                (self._month_only, date.windows[Precision.MONTH]),
                (self._year_only, date.windows[Precision.YEAR]),
            ]
        elif date.precision is Precision.MONTH:
            probes += [
                (self._day_by_month, date.points[Precision.MONTH]),
                (self._month_only, date.points[Precision.MONTH]),
                (self._year_only, date.windows[Precision.YEAR]),
            ]
        else:
            probes += [
                (self._dated_by_year, date.points[Precision.YEAR]),
                (self._year_only, date.points[Precision.YEAR]),
            ]
        return {entry for bucket, tags in probes for tag in tags for entry in bucket.get(tag, ())}

    def _memberships(self, encoding: Encoding) -> Iterator[tuple[_Bucket, bytes]]:
        """Every (bucket, tag) an entry is listed under; see ``_candidates`` for the reads."""
        yield self._by_country, encoding.country
        date: DateTags = parse_date_only(encoding)
        if date.precision is Precision.NONE:
            yield self._undated, encoding.country
            return
        if date.precision is Precision.YEAR:
            for tag in date.points[Precision.YEAR]:
                yield self._year_only, tag
            return
        for tag in date.windows[Precision.YEAR]:
            yield self._dated_by_year, tag
        if date.precision is Precision.MONTH:
            for tag in date.points[Precision.MONTH]:
                yield self._month_only, tag
            return
        for tag in date.points[Precision.DAY]:
            yield self._by_day, tag
        for tag in date.windows[Precision.MONTH]:
            yield self._day_by_month, tag

    def _check_key(self, encoding: Encoding) -> None:
        if encoding.key_id != self.key_id:
            raise KeyMismatchError("key_id: the encoding was made under another linkage key")


def parse_date_only(encoding: Encoding) -> DateTags:
    return parse(encoding).date
