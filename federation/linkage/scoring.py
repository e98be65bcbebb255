"""Comparing two encodings: Dice coefficients per field, combined into one score and a band.

Scores are integers in thousandths (0-1000), so they can travel and be logged without floats.

- **country** and **date** are gates: different countries, or dates that cannot be the same day
  (see ``dates``), score 0. Otherwise the date scores 1000 for the same day, 800 within the
  window, 700 when compared by month, 500 by year and 400 when either date is unknown.
- **name**: tokens are paired greedily by similarity, best pairs first; a pair counts when its
  similarity reaches :data:`TOKEN_MATCH` (the larger of the Dice coefficient of the spellings and
  :data:`SKELETON_WEIGHT` times that of the skeletons). Initials then pair with a remaining token
  that starts with the same letter, as half a token. The name score is the sum of paired
  similarities over the paired weight plus a penalty for tokens left over: a token left on both
  sides is a different name where one was expected (:data:`CONFLICT_PENALTY`), a token left on
  one side only is a name the other side omitted (:data:`MISSING_PENALTY`, small: second
  surnames and Christian names are often dropped). Names of two or more full tokens need two
  full tokens paired to score above 500. The best score over all written forms counts.
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
    SKELETON_BYTES,
    SPELLING_BYTES,
    TOKEN_BYTES,
    Encoding,
)

ScoreBand = Literal["none", "low", "medium", "high"]

TOKEN_MATCH: Final = 0.5
SKELETON_WEIGHT: Final = 0.9
CONFLICT_PENALTY: Final = 1.5
MISSING_PENALTY: Final = 0.25
INITIAL_WEIGHT: Final = 0.5
CAPPED_NAME: Final = 0.5
NAME_SHARE: Final = 700
DATE_SHARE: Final = 150
PLACE_SHARE: Final = 150
UNKNOWN_PLACE: Final = 500
DATE_SCORES: Final = {Precision.MONTH: 700, Precision.YEAR: 500}
SAME_DAY: Final = 1000
WITHIN_WINDOW: Final = 800
UNKNOWN_DATE: Final = 400

LOW: Final = 700
MEDIUM: Final = 800
HIGH: Final = 900


class KeyMismatchError(ValueError):
    """Two encodings made under different linkage keys cannot be compared."""


@dataclass(frozen=True)
class Score:
    """Thousandths. ``excluded_by`` names the gate that set ``total`` to 0, if any."""

    total: int
    name: int = 0
    date: int = 0
    place: int = 0
    excluded_by: Literal["country", "date"] | None = None


@dataclass(frozen=True, slots=True)
class TokenBits:
    initial: bool
    spelling: int
    skeleton: int
    spelling_count: int
    skeleton_count: int


@dataclass(frozen=True, slots=True)
class DateTags:
    precision: Precision
    points: dict[Precision, frozenset[bytes]]
    windows: dict[Precision, frozenset[bytes]]


@dataclass(frozen=True, slots=True)
class ParsedEncoding:
    """An encoding unpacked for comparing; see :func:`parse`."""

    key_id: str
    country: bytes
    names: tuple[tuple[TokenBits, ...], ...]
    date: DateTags
    place: int | None
    place_count: int


def parse(encoding: Encoding) -> ParsedEncoding:
    place = None if encoding.place is None else int.from_bytes(encoding.place, "big")
    return ParsedEncoding(
        key_id=encoding.key_id,
        country=encoding.country,
        names=_parse_names(encoding.name),
        date=_parse_date(encoding.date),
        place=place,
        place_count=0 if place is None else place.bit_count(),
    )


def compare(query: Encoding, held: Encoding) -> Score:
    """How likely ``query`` and ``held`` describe the same defender in the same incident."""
    return compare_parsed(parse(query), parse(held))


def compare_parsed(query: ParsedEncoding, held: ParsedEncoding) -> Score:
    if query.key_id != held.key_id:
        raise KeyMismatchError("key_id: the encodings were made under different linkage keys")
    if query.country != held.country:
        return Score(0, excluded_by="country")
    date = date_similarity(query.date, held.date)
    if date is None:
        return Score(0, excluded_by="date")
    name = max(_name_similarity(q, h) for q in query.names for h in held.names)
    place = _place_similarity(query, held)
    share = NAME_SHARE * 1000 + DATE_SHARE * date + PLACE_SHARE * place
    total = round(name * share / 1000)
    return Score(total=total, name=round(name * 1000), date=date, place=place)


def score_band(score: Score | int) -> ScoreBand:
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


def _place_similarity(query: ParsedEncoding, held: ParsedEncoding) -> int:
    if query.place is None or held.place is None:
        return UNKNOWN_PLACE
    shared = (query.place & held.place).bit_count()
    return round(2000 * shared / (query.place_count + held.place_count))


def _name_similarity(query: tuple[TokenBits, ...], held: tuple[TokenBits, ...]) -> float:
    pairs = sorted(
        (
            (_token_similarity(q, h), qi, hi)
            for qi, q in enumerate(query)
            if not q.initial
            for hi, h in enumerate(held)
            if not h.initial
        ),
        reverse=True,
    )
    used_query: set[int] = set()
    used_held: set[int] = set()
    matched = 0.0
    for similarity, qi, hi in pairs:
        if similarity < TOKEN_MATCH:
            break
        if qi not in used_query and hi not in used_held:
            used_query.add(qi)
            used_held.add(hi)
            matched += similarity
    full_pairs = len(used_query)
    initial_pairs = _pair_initials(query, held, used_query, used_held)
    if full_pairs + initial_pairs == 0:
        return 0.0
    left_query = _weight(query, used_query)
    left_held = _weight(held, used_held)
    paired_weight = full_pairs + INITIAL_WEIGHT * initial_pairs
    penalty = CONFLICT_PENALTY * min(left_query, left_held) + MISSING_PENALTY * abs(
        left_query - left_held
    )
    score = (matched + INITIAL_WEIGHT * initial_pairs) / (paired_weight + penalty)
    if full_pairs < 2 <= min(_full_tokens(query), _full_tokens(held)):
        return min(score, CAPPED_NAME)
    return score


def _pair_initials(
    query: tuple[TokenBits, ...],
    held: tuple[TokenBits, ...],
    used_query: set[int],
    used_held: set[int],
) -> int:
    pairs = 0
    for qi, q in enumerate(query):
        if qi in used_query:
            continue
        for hi, h in enumerate(held):
            if hi not in used_held and (q.initial or h.initial) and _initials_agree(q, h):
                used_query.add(qi)
                used_held.add(hi)
                pairs += 1
                break
    return pairs


def _initials_agree(a: TokenBits, b: TokenBits) -> bool:
    if a.initial and b.initial:
        return a.spelling == b.spelling
    initial, token = (a, b) if a.initial else (b, a)
    return initial.spelling & token.spelling == initial.spelling


def _token_similarity(a: TokenBits, b: TokenBits) -> float:
    spelling = 2 * (a.spelling & b.spelling).bit_count() / (a.spelling_count + b.spelling_count)
    skeletons = a.skeleton_count + b.skeleton_count
    if not skeletons:
        return spelling
    skeleton = 2 * (a.skeleton & b.skeleton).bit_count() / skeletons
    return max(spelling, SKELETON_WEIGHT * skeleton)


def _weight(tokens: tuple[TokenBits, ...], used: set[int]) -> float:
    return sum(
        INITIAL_WEIGHT if token.initial else 1.0
        for index, token in enumerate(tokens)
        if index not in used
    )


def _full_tokens(tokens: tuple[TokenBits, ...]) -> int:
    return sum(not token.initial for token in tokens)


def _parse_names(blob: bytes) -> tuple[tuple[TokenBits, ...], ...]:
    forms: list[tuple[TokenBits, ...]] = []
    position = 1
    for _ in range(blob[0]):
        count = blob[position]
        position += 1
        forms.append(tuple(_parse_token(blob, position + i * TOKEN_BYTES) for i in range(count)))
        position += count * TOKEN_BYTES
    return tuple(forms)


def _parse_token(blob: bytes, start: int) -> TokenBits:
    spelling_end = start + 1 + SPELLING_BYTES
    spelling = int.from_bytes(blob[start + 1 : spelling_end], "big")
    skeleton = int.from_bytes(blob[spelling_end : spelling_end + SKELETON_BYTES], "big")
    return TokenBits(
        initial=bool(blob[start] & INITIAL_FLAG),
        spelling=spelling,
        skeleton=skeleton,
        spelling_count=spelling.bit_count(),
        skeleton_count=skeleton.bit_count(),
    )


def _parse_date(blob: bytes) -> DateTags:
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
