"""Small-cell suppression of a two-way table of counts with its totals.

A table has ``m`` rows and ``n`` columns of counts, plus row totals, column totals and a grand
total. Entries are addressed ``(i, j)``: row ``i == m`` holds the column totals, column ``j == n``
the row totals, ``(m, n)`` the grand total.

Rules (the algorithm is public, so an attacker is assumed to know them):

1. **Primary suppression.** Every entry from 1 to 4 is shown as ``"<5"``. Zeros are shown.
2. **Complementary suppression.** Further entries are shown as ``"withheld"`` so that no
   ``"<5"`` entry can be worked out from the others and the totals. Only entries of 5 or more
   are ever withheld, and never a row total or the grand total: those are shared by every table
   built from the same cases (the caller merges small rows first, so they are 0 or at least 5).
   Someone who knows these rules therefore knows that a ``"<5"`` entry lies in 1..4 and a
   ``"withheld"`` one in 5..∞, and the guarantee below takes that into account.
3. **Guarantee.** For every ``"<5"`` entry, each value from 1 to 4 is consistent with everything
   published (the shown entries, both markers and every row and column sum) whenever the table
   allows it, and always at least two values. If not even that can be reached (a row such as
   5 and 1 whose total is published: the 5 cannot be withheld below 5), the whole table is
   withheld: only its row totals and grand total are published, and ``unprotected`` says which
   entries failed so the caller can merge rows and try again.

How it is computed. Write the table with its totals negated, so that every row and every
column sums to zero; a change to the hidden entries that keeps every published fact true is then
a *circulation* on the bipartite graph whose nodes are the rows and columns and whose edges are
the hidden entries, each edge able to carry as much change either way as its marker's range
allows (``"<5"``: down to 1 and up to 4; ``"withheld"``: down to 5, up without bound). The
values a hidden entry can take form an interval, and how far it can move up or down is a
maximum flow between the two ends of its edge. When an entry cannot yet reach its full 1..4
range, the cheapest augmenting path through not-yet-hidden entries (cost: their value, so small
counts are withheld before large ones) is found with Dijkstra's algorithm and those entries are
withheld. Hiding more never shrinks another entry's range, so one pass over the ``"<5"`` entries
suffices; a final check confirms every range.

This protects each table on its own against exact inference from its equalities. Tables built
from the same cases share only their row totals and grand total, which are published as they
are, so a change within one table never has to be matched in another.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

SMALL_LIMIT = 5
"""Counts from 1 to ``SMALL_LIMIT - 1`` are small."""

_UNBOUNDED = 1 << 50
Entry = tuple[int, int]


class Mark(StrEnum):
    SMALL = "<5"
    WITHHELD = "withheld"


class TableError(ValueError):
    """The table cannot be suppressed as given; the message says why."""


def is_small(count: int) -> bool:
    return 0 < count < SMALL_LIMIT


@dataclass(frozen=True)
class Table:
    """Counts (``counts[i][j]``, all rows the same length) with their totals derived."""

    counts: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, counts: Sequence[Sequence[int]]) -> Table:
        rows = tuple(tuple(row) for row in counts)
        if len({len(row) for row in rows}) > 1:
            raise TableError("every row must have the same number of columns")
        if any(value < 0 for row in rows for value in row):
            raise TableError("counts cannot be negative")
        return cls(rows)

    @property
    def rows(self) -> int:
        return len(self.counts)

    @property
    def columns(self) -> int:
        return len(self.counts[0]) if self.counts else 0

    def value(self, entry: Entry) -> int:
        i, j = entry
        m, n = self.rows, self.columns
        if i < m and j < n:
            return self.counts[i][j]
        if i < m:
            return sum(self.counts[i])
        if j < n:
            return sum(row[j] for row in self.counts)
        return sum(map(sum, self.counts))

    def entries(self) -> list[Entry]:
        return [(i, j) for i in range(self.rows + 1) for j in range(self.columns + 1)]

    def is_shared_total(self, entry: Entry) -> bool:
        """A row total or the grand total: published as it is, never withheld."""
        return entry[1] == self.columns


@dataclass(frozen=True)
class SuppressedTable:
    table: Table
    marks: Mapping[Entry, Mark]
    whole_table_withheld: bool = False
    ranges: Mapping[Entry, tuple[int, int]] = field(default_factory=dict)
    """For each ``"<5"`` entry, the values still consistent with what is published."""
    unprotected: tuple[Entry, ...] = ()
    """When the whole table is withheld: the small entries that could not be protected."""

    def shown(self, entry: Entry) -> int | Mark:
        """What is published for ``entry``: its count or a marker."""
        return self.marks.get(entry, self.table.value(entry))

    def published_entries(self) -> list[Entry]:
        if self.whole_table_withheld:
            return [e for e in self.table.entries() if self.table.is_shared_total(e)]
        return self.table.entries()


def suppress(table: Table) -> SuppressedTable:
    """Apply primary and complementary suppression (see the module documentation)."""
    for entry in table.entries():
        if table.is_shared_total(entry) and is_small(table.value(entry)):
            raise TableError("row totals and the grand total must be 0 or at least 5;"
                             " merge small rows first")
    marks = {e: Mark.SMALL for e in table.entries() if is_small(table.value(e))}
    for entry in sorted(marks, key=lambda e: (table.value(e), e)):
        _protect(table, marks, entry)
    ranges = {entry: feasible_range(table, marks, entry) for entry in _small(marks)}
    unprotected = tuple(sorted(entry for entry, (low, high) in ranges.items() if low == high))
    if unprotected:
        return SuppressedTable(table, {}, whole_table_withheld=True, unprotected=unprotected)
    return SuppressedTable(table, marks, ranges=ranges)


def feasible_range(table: Table, marks: Mapping[Entry, Mark], entry: Entry) -> tuple[int, int]:
    """The lowest and highest value of hidden ``entry`` consistent with what is published."""
    value = table.value(entry)
    low, high = _bounds(marks[entry])
    up = _max_flow(_network(table, marks, entry), *_ends(table, entry, up=True), high - value)
    down = _max_flow(_network(table, marks, entry), *_ends(table, entry, up=False), value - low)
    return value - down.value, value + up.value


def _small(marks: Mapping[Entry, Mark]) -> list[Entry]:
    return [entry for entry, mark in marks.items() if mark is Mark.SMALL]


def _bounds(mark: Mark) -> tuple[int, int]:
    if mark is Mark.SMALL:
        return 1, SMALL_LIMIT - 1
    return SMALL_LIMIT, _UNBOUNDED


def _sign(table: Table, entry: Entry) -> int:
    """+1 for counts and the grand total, -1 for row and column totals."""
    inner_row, inner_column = entry[0] < table.rows, entry[1] < table.columns
    return 1 if inner_row == inner_column else -1


def _row_node(i: int) -> int:
    return i


def _column_node(table: Table, j: int) -> int:
    return table.rows + 1 + j


def _ends(table: Table, entry: Entry, *, up: bool) -> tuple[int, int]:
    """Source and sink of the flow that moves ``entry`` up (or down).

    Moving a count up pushes one unit from its row node to its column node, which must come back
    through the other hidden entries: a flow from the column node to the row node. Totals carry
    the opposite sign.
    """
    row, column = _row_node(entry[0]), _column_node(table, entry[1])
    forward = up == (_sign(table, entry) > 0)
    return (column, row) if forward else (row, column)


def _room(table: Table, entry: Entry, mark: Mark) -> tuple[int, int]:
    """How far ``entry`` can move (row→column, column→row) within its marker's range."""
    value = table.value(entry)
    low, high = _bounds(mark)
    up, down = high - value, value - low
    return (up, down) if _sign(table, entry) > 0 else (down, up)


Network = dict[int, dict[int, int]]


def _network(table: Table, marks: Mapping[Entry, Mark], excluded: Entry) -> Network:
    network: Network = {}
    for entry, mark in marks.items():
        if entry != excluded:
            _add_arcs(network, table, entry, _room(table, entry, mark))
    return network


def _add_arcs(network: Network, table: Table, entry: Entry, room: tuple[int, int]) -> None:
    row, column = _row_node(entry[0]), _column_node(table, entry[1])
    forward, backward = room
    network.setdefault(row, {})[column] = network.get(row, {}).get(column, 0) + forward
    network.setdefault(column, {})[row] = network.get(column, {}).get(row, 0) + backward


@dataclass
class _Flow:
    value: int
    residual: Network


def _max_flow(network: Network, source: int, sink: int, limit: int) -> _Flow:
    """Edmonds–Karp up to ``limit`` units; ``network`` is consumed as the residual graph."""
    total = 0
    while total < limit:
        path = _shortest_path(network, source, sink)
        if path is None:
            break
        amount = min(limit - total, *(network[a][b] for a, b in path))
        for a, b in path:
            network[a][b] -= amount
            network.setdefault(b, {})[a] = network.get(b, {}).get(a, 0) + amount
        total += amount
    return _Flow(total, network)


def _shortest_path(network: Network, source: int, sink: int) -> list[tuple[int, int]] | None:
    previous: dict[int, int] = {source: source}
    queue = deque([source])
    while queue:
        node = queue.popleft()
        for neighbour, capacity in sorted(network.get(node, {}).items()):
            if capacity > 0 and neighbour not in previous:
                previous[neighbour] = node
                if neighbour == sink:
                    return _walk_back(previous, source, sink)
                queue.append(neighbour)
    return None


def _walk_back(previous: dict[int, int], source: int, sink: int) -> list[tuple[int, int]]:
    path, node = [], sink
    while node != source:
        path.append((previous[node], node))
        node = previous[node]
    return path[::-1]


def _protect(table: Table, marks: dict[Entry, Mark], entry: Entry) -> None:
    value = table.value(entry)
    for up, wanted in ((True, SMALL_LIMIT - 1 - value), (False, value - 1)):
        while wanted > 0:
            flow = _max_flow(_network(table, marks, entry), *_ends(table, entry, up=up), wanted)
            if flow.value >= wanted:
                break
            added = _cheapest_new_entries(table, marks, entry, flow.residual, up=up)
            if not added:
                break
            marks.update(dict.fromkeys(added, Mark.WITHHELD))


def _candidates(table: Table, marks: Mapping[Entry, Mark], excluded: Entry) -> list[Entry]:
    return [
        e for e in table.entries()
        if e != excluded and e not in marks and not table.is_shared_total(e)
        and table.value(e) >= SMALL_LIMIT
    ]


def _cheapest_new_entries(
    table: Table, marks: Mapping[Entry, Mark], entry: Entry, residual: Network, *, up: bool
) -> list[Entry]:
    """Entries to withhold for one more unit of movement: the cheapest augmenting path."""
    arcs: dict[int, list[tuple[int, int, Entry | None]]] = {}
    for node, targets in residual.items():
        for target, capacity in targets.items():
            if capacity > 0:
                arcs.setdefault(node, []).append((target, 0, None))
    for candidate in _candidates(table, marks, entry):
        forward, backward = _room(table, candidate, Mark.WITHHELD)
        row, column = _row_node(candidate[0]), _column_node(table, candidate[1])
        cost = table.value(candidate)
        if forward > 0:
            arcs.setdefault(row, []).append((column, cost, candidate))
        if backward > 0:
            arcs.setdefault(column, []).append((row, cost, candidate))
    source, sink = _ends(table, entry, up=up)
    return _dijkstra(arcs, source, sink)


def _dijkstra(
    arcs: Mapping[int, list[tuple[int, int, Entry | None]]], source: int, sink: int
) -> list[Entry]:
    best: dict[int, tuple[int, list[Entry]]] = {source: (0, [])}
    heap: list[tuple[int, int, list[Entry]]] = [(0, source, [])]
    done: set[int] = set()
    while heap:
        cost, node, used = heapq.heappop(heap)
        if node in done:
            continue
        if node == sink:
            return used
        done.add(node)
        for target, step, candidate in sorted(arcs.get(node, []), key=lambda arc: arc[:2]):
            extra = [candidate] if candidate is not None and candidate not in used else []
            total = cost + (step if extra else 0)
            if target not in best or total < best[target][0]:
                best[target] = (total, used + extra)
                heapq.heappush(heap, (total, target, used + extra))
    return []


# --- one-way breakdowns of a total -------------------------------------------------------
#
# Reports such as SDG 16.10.1 break a total down one way at a time (victims by sex, cases by
# category) and publish no sums across those breakdowns. Each breakdown is then one equation,
# and the values a hidden count can take follow from interval arithmetic: the sum of integer
# intervals is every integer between their bounds, so the ranges below are exact.

Shown = int | Mark


def breakdown_range(shown: Sequence[Shown], total: int, index: int, *,
                    additive: bool) -> tuple[int, int]:
    """The values hidden entry ``index`` can take given everything else published.

    ``additive``: the entries add up to ``total`` (each counted once, as victims by sex).
    Otherwise they *cover* it (each counted under every value it has, as victims by group):
    their sum is at least ``total``. Either way no entry exceeds ``total``. A ``"<5"`` entry
    lies in 1..4 and a ``"withheld"`` one in 5..``total``, by the published rule.
    """
    low, high = _entry_bounds(shown[index], total)
    fixed = sum(value for k, value in enumerate(shown) if k != index and isinstance(value, int))
    others = [_entry_bounds(value, total) for k, value in enumerate(shown)
              if k != index and isinstance(value, Mark)]
    rest = total - fixed
    low = max(low, rest - sum(bound[1] for bound in others))
    if additive:
        high = min(high, rest - sum(bound[0] for bound in others))
    return low, high


def _entry_bounds(value: Shown, total: int) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    low, high = _bounds(value)
    return low, min(high, total)


def suppress_breakdown(counts: Sequence[int], total: int, *,
                       additive: bool) -> list[Shown] | None:
    """Counts of 1 to 4 shown as ``"<5"``, further counts withheld so none can be worked out.

    Complementary counts are withheld smallest first until every ``"<5"`` entry may be any of
    1..4 that the total allows; if some entry could still take only one value, the whole
    breakdown is withheld (``None``). ``total`` is treated as published, which protects the
    entries as well when it is not.
    """
    if any(count < 0 for count in counts) or total < 0:
        raise TableError("counts cannot be negative")
    shown: list[Shown] = [Mark.SMALL if is_small(count) else count for count in counts]
    small = [k for k, value in enumerate(shown) if value is Mark.SMALL]
    wanted = (1, min(SMALL_LIMIT - 1, total))

    def narrow() -> list[int]:
        return [k for k in small if breakdown_range(shown, total, k, additive=additive) != wanted]

    while narrow():
        candidates = sorted((count, k) for k, count in enumerate(counts)
                            if shown[k] == count and count >= SMALL_LIMIT)
        if not candidates:
            break
        shown[candidates[0][1]] = Mark.WITHHELD
    for k in small:
        low, high = breakdown_range(shown, total, k, additive=additive)
        if low >= high:
            return None
    return shown
