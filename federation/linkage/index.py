"""A member's index of its own cases' encodings, answering "what here matches this query?".

A query is never compared with the whole index. Entries are listed under the keyed tags their
dates can match at each level, and under their name keys where the date says little:

- entries known to the day, under each of their days and each month of their window, and in a
  set per year of their window;
- entries known to the month, under each of their months, and in a set per year;
- entries known only to the year, under (year, name key) for each of their name keys;
- undated entries, under (country, name key); and every entry under (country, name key).

A day or month query reads the lists at its own tags (and at its name keys for the year-only
and undated entries); a year query takes the entries under its name keys that are in its years'
sets; an undated query, every entry under its name keys. Since
:func:`~federation.linkage.scoring.compare` gates on the same date rule, and on an exact name key
when the dates are compared by year or not at all (see ``scoring``), the candidates are exactly
the entries that can score above 0, and the answer is exactly what comparing with every entry
would give. Which list an entry was found in also gives its date score, so held dates are not
even unpacked. Every candidate is scored with the same code as ``compare``. The index lives in
memory; the node updates it on every write of a case (``add`` / ``replace`` / ``remove`` by
handle) and can rebuild it from stored encodings.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from federation.linkage.dates import Precision
from federation.linkage.encoding import Encoding
from federation.linkage.scoring import (
    DATE_SCORES,
    LOW,
    SAME_DAY,
    UNKNOWN_DATE,
    WITHIN_WINDOW,
    KeyMismatchError,
    ParsedQuery,
    Score,
    ScoreBand,
    name_keys,
    parse_date,
    parse_query,
    score_band,
    score_with_name,
)
from federation.linkage.tables import SCHEME

_Bucket = dict[bytes, list[int]]


@dataclass(frozen=True)
class Match:
    """An entry of the index that may match the query; ``handle`` is whatever ``add`` got."""

    handle: str
    score: Score

    @property
    def band(self) -> ScoreBand:
        return score_band(self.score)


class EncodingIndex:
    """Encodings of one member's cases under one linkage key and scheme, by opaque handle."""

    def __init__(self, key_id: str, scheme: str = SCHEME) -> None:
        self.key_id = key_id
        self.scheme = scheme
        # Entry ids index these two lists; a removed entry leaves None behind.
        self._handle_of: list[str | None] = []
        self._encoding_of: list[Encoding | None] = []
        self._entries_of: dict[str, list[int]] = {}
        self._by_day: _Bucket = {}
        self._day_by_month: _Bucket = {}
        self._month_only: _Bucket = {}
        self._year_only_by_name: _Bucket = {}
        self._undated_by_name: _Bucket = {}
        self._country_by_name: _Bucket = {}
        self._dated_by_year: dict[bytes, set[int]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, handle: str, encoding: Encoding) -> None:
        """Add one encoding under ``handle`` (a case about several defenders adds several)."""
        self._check_key(encoding)
        entry = len(self._encoding_of)
        self._handle_of.append(handle)
        self._encoding_of.append(encoding)
        self._entries_of.setdefault(handle, []).append(entry)
        self._size += 1
        for bucket, tag in self._memberships(encoding):
            bucket.setdefault(tag, []).append(entry)
        for tag in self._dated_years(encoding):
            self._dated_by_year.setdefault(tag, set()).add(entry)

    def remove(self, handle: str) -> None:
        """Forget every encoding added under ``handle`` (no-op for an unknown handle)."""
        for entry in self._entries_of.pop(handle, []):
            encoding = self._encoding_of[entry]
            assert encoding is not None
            self._handle_of[entry] = self._encoding_of[entry] = None
            self._size -= 1
            for bucket, tag in self._memberships(encoding):
                members = bucket[tag]
                members.remove(entry)
                if not members:
                    del bucket[tag]
            for tag in self._dated_years(encoding):
                dated = self._dated_by_year[tag]
                dated.discard(entry)
                if not dated:
                    del self._dated_by_year[tag]

    def replace(self, handle: str, encodings: Iterable[Encoding]) -> None:
        """Make ``encodings`` the only ones under ``handle`` (a case was edited)."""
        fresh = list(encodings)
        for encoding in fresh:
            self._check_key(encoding)
        self.remove(handle)
        for encoding in fresh:
            self.add(handle, encoding)

    def best_matches(self, query: Encoding, limit: int = 5, threshold: int = LOW) -> list[Match]:
        """Up to ``limit`` handles scoring at least ``threshold`` (1 to 1000), best first, one
        per handle."""
        if not 1 <= threshold <= 1000:
            raise ValueError("threshold: must be between 1 and 1000")
        self._check_key(query)
        parsed = parse_query(query, threshold)
        best: dict[str, Score] = {}
        for entry, date in self._candidates(parsed, name_keys(query.name)).items():
            handle, encoding = self._handle_of[entry], self._encoding_of[entry]
            assert handle is not None and encoding is not None
            score = self._score(parsed, encoding, date, threshold)
            if score is None or score.total < threshold:
                continue
            if handle not in best or score.total > best[handle].total:
                best[handle] = score
        ranked = sorted(best.items(), key=lambda item: (-item[1].total, item[0]))
        return [Match(handle, score) for handle, score in ranked[:limit]]

    @staticmethod
    def _score(query: ParsedQuery, held: Encoding, date: int, threshold: int) -> Score | None:
        """The score of a candidate, or ``None`` when it cannot reach ``threshold``."""
        if held.country != query.country:
            return None  # a tag of another country: possible only by a 64-bit collision
        name = query.names.similarity(held.name)
        if round(name * 1000) < threshold:
            return None  # the total is at most the name score
        return score_with_name(query, held, date, name)

    def _candidates(self, query: ParsedQuery, names: frozenset[bytes]) -> dict[int, int]:
        """Entries that can score above 0, each with its date score (see the module docstring).

        The list an entry is found in tells the level its date is compared with the query's, and
        so its date score; at day level, an entry found under one of the query's own days (not
        only under its window) has the same day.
        """
        date = query.date
        found: dict[int, int] = {}
        by_name = _by_name(query.country, names)
        if date.precision is Precision.NONE:
            _collect(found, self._country_by_name, by_name, UNKNOWN_DATE)
            return found
        _collect(found, self._undated_by_name, by_name, UNKNOWN_DATE)
        year = DATE_SCORES[Precision.YEAR]
        years = [tag + key for tag in date.windows[Precision.YEAR] for key in names]
        _collect(found, self._year_only_by_name, years, year)
        month = DATE_SCORES[Precision.MONTH]
        if date.precision is Precision.YEAR:
            self._collect_dated_in_years(found, date.points[Precision.YEAR], by_name)
        elif date.precision is Precision.MONTH:
            _collect(found, self._day_by_month, date.points[Precision.MONTH], month)
            _collect(found, self._month_only, date.points[Precision.MONTH], month)
        else:
            days = date.points[Precision.DAY]
            for tag in date.windows[Precision.DAY]:
                _collect(found, self._by_day, (tag,), SAME_DAY if tag in days else WITHIN_WINDOW)
            _collect(found, self._month_only, date.windows[Precision.MONTH], month)
        return found

    def _collect_dated_in_years(
        self, found: dict[int, int], years: Iterable[bytes], by_name: list[bytes]
    ) -> None:
        """Entries known to the day or month whose window meets one of ``years`` and that share
        a name key: those in both lists."""
        dated = [self._dated_by_year[tag] for tag in years if tag in self._dated_by_year]
        if not dated:
            return
        in_years = dated[0] if len(dated) == 1 else set().union(*dated)
        score = DATE_SCORES[Precision.YEAR]
        for tag in by_name:
            for entry in self._country_by_name.get(tag, ()):
                if entry in in_years:
                    found[entry] = score

    def _memberships(self, encoding: Encoding) -> Iterator[tuple[_Bucket, bytes]]:
        """Every (list, tag) an entry is listed under; see ``_candidates`` for the reads."""
        names = name_keys(encoding.name)
        by_name = _by_name(encoding.country, names)
        for tag in by_name:
            yield self._country_by_name, tag
        date = parse_date(encoding.date)
        if date.precision is Precision.NONE:
            for tag in by_name:
                yield self._undated_by_name, tag
        elif date.precision is Precision.YEAR:
            for year in date.points[Precision.YEAR]:
                for key in names:
                    yield self._year_only_by_name, year + key
        elif date.precision is Precision.MONTH:
            for tag in date.points[Precision.MONTH]:
                yield self._month_only, tag
        else:
            for tag in date.points[Precision.DAY]:
                yield self._by_day, tag
            for tag in date.windows[Precision.MONTH]:
                yield self._day_by_month, tag

    def _dated_years(self, encoding: Encoding) -> frozenset[bytes]:
        """The year tags an entry known to the day or month is listed under (its window's)."""
        date = parse_date(encoding.date)
        if date.precision < Precision.MONTH:
            return frozenset()
        return date.windows[Precision.YEAR]

    def _check_key(self, encoding: Encoding) -> None:
        if encoding.key_id != self.key_id:
            raise KeyMismatchError("key_id: the encoding was made under another linkage key")
        if encoding.scheme != self.scheme:
            raise KeyMismatchError("scheme: the encoding was made in another scheme")


def _by_name(country: bytes, names: frozenset[bytes]) -> list[bytes]:
    return [country + key for key in names]


def _collect(found: dict[int, int], bucket: _Bucket, tags: Iterable[bytes], score: int) -> None:
    for tag in tags:
        for entry in bucket.get(tag, ()):
            if found.get(entry, -1) < score:
                found[entry] = score
