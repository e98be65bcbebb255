"""How similar two encoded names are (the name part of ``scoring``).

Tokens are paired greedily, most similar pairs first; a pair of full tokens counts when its
similarity reaches :data:`TOKEN_MATCH`, the similarity being the larger of the Dice coefficient
of the spelling filters and :data:`SKELETON_WEIGHT` times that of the skeleton filters. Initials
then pair with a remaining token of the other side that starts with the same letter (its filter
holds the initial's only bigram), or with the same initial, as half a token. The score is the sum
of the paired similarities (an initial pair counts its half weight) over the paired weight plus
penalties for what is left: a token left on both sides is a different name where one was
expected (:data:`CONFLICT_PENALTY` each, counted on the side with fewer left), one left on one
side only is a name the other side omitted (:data:`MISSING_PENALTY` each: second surnames and
Christian names are often dropped). When both names have two or more full tokens, fewer than two
paired full tokens cap the score at :data:`CAPPED_NAME`. The best pair of written forms counts.

A :class:`NameScorer` is made once per query and scores many held names; it remembers how each
held token (and each whole held name) it has seen compares with the query, since names recur.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from federation.linkage.encoding import INITIAL_FLAG, SKELETON_BITS, SPELLING_BITS, TOKEN_BYTES

TOKEN_MATCH: Final = 0.5
SKELETON_WEIGHT: Final = 0.9
CONFLICT_PENALTY: Final = 1.5
MISSING_PENALTY: Final = 0.25
INITIAL_WEIGHT: Final = 0.5
CAPPED_NAME: Final = 0.5

_SPELLING_MASK: Final = (1 << SPELLING_BITS) - 1
_SKELETON_MASK: Final = (1 << SKELETON_BITS) - 1
_FLAGS_SHIFT: Final = SPELLING_BITS + SKELETON_BITS


@dataclass(frozen=True, slots=True)
class Token:
    initial: bool
    spelling: int
    skeleton: int
    spelling_ones: int
    skeleton_ones: int

    @classmethod
    def parse(cls, raw: bytes) -> Token:
        value = int.from_bytes(raw, "big")
        spelling = (value >> SKELETON_BITS) & _SPELLING_MASK
        skeleton = value & _SKELETON_MASK
        initial = bool((value >> _FLAGS_SHIFT) & INITIAL_FLAG)
        return cls(initial, spelling, skeleton, spelling.bit_count(), skeleton.bit_count())


@dataclass(frozen=True, slots=True)
class _Row:
    """How one held token compares with each query token (all forms, in order)."""

    initial: bool
    similarities: tuple[float, ...]  # 0.0 below TOKEN_MATCH or when an initial is involved
    initials_agree: tuple[bool, ...]  # only where exactly one or both are initials


@dataclass(frozen=True, slots=True)
class _Form:
    start: int  # position of its first token among all query tokens
    initials: tuple[bool, ...]
    full_tokens: int


class NameScorer:
    """The name similarity of held names to one query's names."""

    def __init__(self, query_name: bytes, floor: float = 0.0) -> None:
        """``floor``: similarities below it may be reported as 0.0 (for a known threshold)."""
        self._floor = floor
        self._tokens: list[Token] = []
        self._forms: list[_Form] = []
        for form in split_forms(query_name):
            tokens = [Token.parse(raw) for raw in form]
            initials = tuple(token.initial for token in tokens)
            self._forms.append(_Form(len(self._tokens), initials, initials.count(False)))
            self._tokens.extend(tokens)
        self._rows: dict[bytes, _Row] = {}
        self._names: dict[bytes, float] = {}

    def similarity(self, held_name: bytes) -> float:
        """0.0 to 1.0: the best over every pair of written forms."""
        best = self._names.get(held_name)
        if best is None:
            best = 0.0
            for held_form in split_forms(held_name):
                rows = [self._row(raw) for raw in held_form]
                for form in self._forms:
                    best = max(best, _form_similarity(form, rows, self._floor))
            self._names[held_name] = best
        return best

    def _row(self, raw: bytes) -> _Row:
        row = self._rows.get(raw)
        if row is None:
            held = Token.parse(raw)
            row = self._rows[raw] = _Row(
                held.initial,
                tuple(_similarity(query, held) for query in self._tokens),
                tuple(_initials_agree(query, held) for query in self._tokens),
            )
        return row


def split_forms(name: bytes) -> list[list[bytes]]:
    """The raw tokens of each written form of an encoded name field."""
    forms: list[list[bytes]] = []
    position = 1
    for _ in range(name[0]):
        count = name[position]
        position += 1
        forms.append(
            [
                name[start : start + TOKEN_BYTES]
                for start in range(position, position + count * TOKEN_BYTES, TOKEN_BYTES)
            ]
        )
        position += count * TOKEN_BYTES
    return forms


def _form_similarity(form: _Form, rows: list[_Row], floor: float) -> float:
    pairs = _similar_pairs(form, rows)
    no_initials = True not in form.initials and not any(row.initial for row in rows)
    if no_initials and _below(floor, len(pairs), min(form.full_tokens, len(rows))):
        return 0.0
    used_query: set[int] = set()
    used_held: set[int] = set()
    matched = 0.0
    for similarity, qi, hi in sorted(pairs, reverse=True):
        if qi not in used_query and hi not in used_held:
            used_query.add(qi)
            used_held.add(hi)
            matched += similarity
    full_pairs = len(used_query)
    initial_pairs = _pair_initials(form, rows, used_query, used_held)
    if full_pairs + initial_pairs == 0:
        return 0.0
    left_query = sum(
        INITIAL_WEIGHT if initial else 1.0
        for qi, initial in enumerate(form.initials)
        if qi not in used_query
    )
    left_held = sum(
        INITIAL_WEIGHT if row.initial else 1.0 for hi, row in enumerate(rows) if hi not in used_held
    )
    conflicts, missing = min(left_query, left_held), abs(left_query - left_held)
    penalty = CONFLICT_PENALTY * conflicts + MISSING_PENALTY * missing
    paired = full_pairs + INITIAL_WEIGHT * initial_pairs
    score = (matched + INITIAL_WEIGHT * initial_pairs) / (paired + penalty)
    held_full = sum(not row.initial for row in rows)
    if full_pairs < 2 <= min(form.full_tokens, held_full):
        return min(score, CAPPED_NAME)
    return score


def _similar_pairs(form: _Form, rows: list[_Row]) -> list[tuple[float, int, int]]:
    """(similarity, query token, held token) for every pair of full tokens that counts."""
    start = form.start
    return [
        (row.similarities[start + qi], qi, hi)
        for hi, row in enumerate(rows)
        if not row.initial
        for qi in range(len(form.initials))
        if row.similarities[start + qi]
    ]


def _below(floor: float, pairs: int, fewer_full_tokens: int) -> bool:
    """Whether names without initials must score 0 or below ``floor`` with so few pairs."""
    return pairs == 0 or (pairs < 2 <= fewer_full_tokens and floor > CAPPED_NAME)


def _pair_initials(form: _Form, rows: list[_Row], used_query: set[int], used_held: set[int]) -> int:
    pairs = 0
    for qi, initial in enumerate(form.initials):
        if qi in used_query:
            continue
        for hi, row in enumerate(rows):
            if (
                hi not in used_held
                and (initial or row.initial)
                and row.initials_agree[form.start + qi]
            ):
                used_query.add(qi)
                used_held.add(hi)
                pairs += 1
                break
    return pairs


def _similarity(query: Token, held: Token) -> float:
    if query.initial or held.initial:
        return 0.0
    spelling = 2 * (query.spelling & held.spelling).bit_count()
    similarity = spelling / (query.spelling_ones + held.spelling_ones)
    skeleton_ones = query.skeleton_ones + held.skeleton_ones
    if skeleton_ones:
        skeleton = 2 * (query.skeleton & held.skeleton).bit_count() / skeleton_ones
        similarity = max(similarity, SKELETON_WEIGHT * skeleton)
    return similarity if similarity >= TOKEN_MATCH else 0.0


def _initials_agree(a: Token, b: Token) -> bool:
    if a.initial and b.initial:
        return a.spelling == b.spelling
    if not (a.initial or b.initial):
        return False
    initial, token = (a.spelling, b.spelling) if a.initial else (b.spelling, a.spelling)
    return initial & token == initial
