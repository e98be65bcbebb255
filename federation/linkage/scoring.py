"""Comparing two encodings: Dice coefficients per field, combined into one score and a band.

Scores are integers in thousandths (0-1000), so they can travel and be logged without floats.

- **country** and **date** are gates: different countries, or dates that cannot be the same day
  (see ``dates``), score 0. Otherwise the date scores 1000 for the same day, 800 within the
  window, 700 when compared by month, 500 by year and 400 when either date is unknown.
- With so weak a date (year or unknown), the names must also agree exactly on at least one full
  token (same skeleton; same spelling for a token without consonants), else the score is 0: the
  date no longer narrows the search, so an exact token is required instead. It costs almost no
  recall (1 of about 2,000 synthetic same-person pairs with year-only dates) and lets the index
  look up such entries by name token instead of comparing with all of them.
- **name**: see ``name_match``: tokens paired by the Dice coefficients of their spelling and
  skeleton filters, initials as half tokens, penalties for names left over on one side (small:
  second surnames and Christian names are often dropped) or on both (large: another given
  name). The best score over all written forms counts.
- **place**: Dice coefficient of the place filters; 500 when either place is unknown.
- **total** = name x (0.7 + 0.15 x date + 0.15 x place): the name decides, date and place adjust.

Bands: ``high`` from :data:`HIGH`, ``medium`` from :data:`MEDIUM`, ``low`` from :data:`LOW`,
else ``none``; a possible match is any band but ``none``. Thresholds were chosen on generic
kinds of variation (``bench/dedup_accuracy.py``, including its synthetic names), not on names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from federation.linkage.dates import LEVELS, Precision
from federation.linkage.encoding import (
    DATE_TAG_BYTES,
    INITIAL_FLAG,
    SPELLING_BYTES,
    TOKEN_BYTES,
    Encoding,
)
from federation.linkage.name_match import NameScorer

ScoreBand = Literal["none", "low", "medium", "high"]

NAME_SHARE: Final = 700
DATE_SHARE: Final = 150
PLACE_SHARE: Final = 150
UNKNOWN_PLACE: Final = 500
DATE_SCORES: Final = {Precision.MONTH: 700, Precision.YEAR: 500}
SAME_DAY: Final = 1000
WITHIN_WINDOW: Final = 800
UNKNOWN_DATE: Final = 400
WEAK_DATE: Final = 500

LOW: Final = 700
MEDIUM: Final = 800
HIGH: Final = 900


class KeyMismatchError(ValueError):
    """Two encodings made under different linkage keys (or schemes) cannot be compared."""


@dataclass(frozen=True)
class Score:
    """Thousandths. ``excluded_by`` names the gate that set ``total`` to 0, if any."""

    total: int
    name: int = 0
    date: int = 0
    place: int = 0
    excluded_by: Literal["country", "date", "name"] | None = None


@dataclass(frozen=True, slots=True)
class DateTags:
    precision: Precision
    points: dict[Precision, frozenset[bytes]]
    windows: dict[Precision, frozenset[bytes]]


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """A query unpacked once, to compare with many held encodings."""

    key_id: str
    country: bytes
    names: NameScorer
    date: DateTags
    place: int | None


def parse_query(encoding: Encoding, threshold: int = 0) -> ParsedQuery:
    """Unpack a query; with a ``threshold``, name scores that cannot reach it may read 0."""
    return ParsedQuery(
        key_id=encoding.key_id,
        country=encoding.country,
        names=NameScorer(encoding.name, floor=threshold / 1000),
        date=parse_date(encoding.date),
        place=_place_int(encoding.place),
    )


def compare(query: Encoding, held: Encoding) -> Score:
    """How likely ``query`` and ``held`` describe the same defender in the same incident."""
    if query.key_id != held.key_id:
        raise KeyMismatchError("key_id: the encodings were made under different linkage keys")
    if query.scheme != held.scheme:
        raise KeyMismatchError("scheme: the encodings were made in different schemes")
    if query.country != held.country:
        return Score(0, excluded_by="country")
    date = date_similarity(parse_date(query.date), parse_date(held.date))
    if date is None:
        return Score(0, excluded_by="date")
    if date <= WEAK_DATE and not name_keys(query.name) & name_keys(held.name):
        return Score(0, excluded_by="name")
    return score_with_date(parse_query(query), held, date)


def score_with_date(query: ParsedQuery, held: Encoding, date: int) -> Score:
    """The score of two encodings of one country whose dates were found compatible (``date``)."""
    return score_with_name(query, held, date, query.names.similarity(held.name))


def score_with_name(query: ParsedQuery, held: Encoding, date: int, name: float) -> Score:
    """The score given the date score and the name similarity (0.0 to 1.0) of ``held``."""
    place = _place_similarity(query.place, _place_int(held.place))
    share = NAME_SHARE * 1000 + DATE_SHARE * date + PLACE_SHARE * place
    return Score(total=round(name * share / 1000), name=round(name * 1000), date=date, place=place)


def score_band(score: Score | int) -> ScoreBand:
    """The band an answer reports; any band but ``"none"`` is a possible match."""
    total = score.total if isinstance(score, Score) else score
    if total >= HIGH:
        return "high"
    if total >= MEDIUM:
        return "medium"
    return "low" if total >= LOW else "none"


def date_similarity(query: DateTags, held: DateTags) -> int | None:
    """Thousandths, or ``None`` when the dates cannot be the same day."""
    level = min(query.precision, held.precision)
    if level is Precision.NONE:
        return UNKNOWN_DATE
    meets = query.windows[level] & held.points[level] or held.windows[level] & query.points[level]
    if not meets:
        return None
    if level is Precision.DAY:
        return SAME_DAY if query.points[level] & held.points[level] else WITHIN_WINDOW
    return DATE_SCORES[level]


def _place_similarity(query: int | None, held: int | None) -> int:
    if query is None or held is None:
        return UNKNOWN_PLACE
    return round(2000 * (query & held).bit_count() / (query.bit_count() + held.bit_count()))


def _place_int(place: bytes | None) -> int | None:
    return None if place is None else int.from_bytes(place, "big")


def name_keys(blob: bytes) -> frozenset[bytes]:
    """One key per full token of every form: its skeleton filter, or its spelling filter when
    the skeleton is empty. Equal keys mean the same skeleton (or spelling) exactly."""
    keys: set[bytes] = set()
    position = 1
    for _ in range(blob[0]):
        count = blob[position]
        position += 1
        for _ in range(count):
            if not blob[position] & INITIAL_FLAG:
                spelling_end = position + 1 + SPELLING_BYTES
                skeleton = blob[spelling_end : position + TOKEN_BYTES]
                keys.add(skeleton if any(skeleton) else blob[position + 1 : spelling_end])
            position += TOKEN_BYTES
    return frozenset(keys)


def parse_date(blob: bytes) -> DateTags:
    precision = Precision(blob[0])
    points: dict[Precision, frozenset[bytes]] = {}
    windows: dict[Precision, frozenset[bytes]] = {}
    position = 1
    for level in LEVELS:
        if level > precision:
            continue
        point_count, window_count = blob[position], blob[position + 1]
        position += 2
        points[level] = _tags(blob, position, point_count)
        position += point_count * DATE_TAG_BYTES
        windows[level] = _tags(blob, position, window_count)
        position += window_count * DATE_TAG_BYTES
    return DateTags(precision, points, windows)


def _tags(blob: bytes, start: int, count: int) -> frozenset[bytes]:
    return frozenset(
        blob[start + i * DATE_TAG_BYTES : start + (i + 1) * DATE_TAG_BYTES] for i in range(count)
    )
