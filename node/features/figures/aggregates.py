"""Aggregate figures over the organisation's own cases, ready to publish (docs/architecture.md §14,
issue M9).

Pure: cases in, a ``schemas.payloads.Aggregate`` out; no store, no clock.

What is counted. One table per dimension, each with a row per country and a column per value
of the dimension, plus row totals, column totals and a grand total:

================================  ==================================================  ========
table (``table`` dimension)       a case counts in the column(s) of                   unit
================================  ==================================================  ========
``period``                        the year ("2023") or quarter ("2023-Q2") in which   cases
                                  the incident started; a date known only to the
                                  year stays a year when counting by quarter
``impunity_status``               its impunity status                                 cases
``violation`` (+ ``sdg_category``)  each of its violations, labelled with the       pairs
                                  violation's SDG 16.10.1 category
``victim_group``                  each group any of its victims belongs to, or        pairs
                                  ``unspecified``
``perpetrator_category``          each perpetrator category it names, labelled with   pairs
(+ ``perpetrator_type``)          state / non_state / unknown, or ``unspecified``
================================  ==================================================  ========

"pairs" tables count a case once under each distinct value it has, so their totals are counts of
(case, value) pairs, not of cases. SDG category totals are sums over violation columns.

Cells name their coordinates: ``{"table": "violation", "country": "CO", "violation": "killing",
"sdg_category": "killing"}``; a dimension left out is summed over, so ``{"table": "violation",
"country": "CO"}`` is a row total and ``{"table": "violation"}`` the grand total. Counts of zero
are not listed: in a published table, a missing cell is 0.

Privacy. Countries where the organisation holds fewer than 5 cases are merged into one row,
``country: "other"`` (with the next smallest countries if the merged row itself stays under 5),
so that every country's case total is 0 or at least 5 and can be published in every table
unchanged. Then :mod:`node.features.figures.suppression` hides every count from 1 to 4 as ``"<5"``
and withholds
further counts so none of them can be worked out from the totals. When a row cannot be protected
(5 cases of one status and 1 of another, say), that table merges the row into its ``other`` row
and tries again, so in one table ``other`` may cover countries that other tables list
(``other_rows`` names, per table, the countries in its ``other`` row: that a member holds some
case there is published, not how many). A table that still cannot be protected is published with
its totals only (``withheld_tables``). With fewer than 5 cases in all, only the case-count
tables' grand totals are published, as ``"<5"``.

SDG 16.10.1. Each country with a row of its own also gets the figures of the SDG report over the
aggregate's period (table ``sdg``, see :func:`sdg_cells`), suppressed by the report's own rules,
so that the coalition can make the report from what members publish. Their top figure, the
country's case count, is the row total already published in every table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from node.features.figures.sdg_report import (
    FIGURES,
    parent_of,
    suppress_figures,
    tally,
)
from node.features.figures.suppression import (
    SMALL_LIMIT,
    Entry,
    Mark,
    SuppressedTable,
    Table,
    suppress,
)
from node.features.figures.suppression import is_small as _is_small
from schemas.case import Case
from schemas.dates import DateSpan, PartialDate
from schemas.payloads import Aggregate, AggregateCell, OverlapReport
from schemas.typology import (
    TYPOLOGY_VERSION,
    Vocabulary,
    codes,
    perpetrator_type,
    sdg_category,
)

TABLE = "table"
COUNTRY = "country"
OTHER_COUNTRIES = "other"
UNSPECIFIED = "unspecified"
SDG_CATEGORY = "sdg_category"
PERPETRATOR_TYPE = "perpetrator_type"
SDG_TABLE = "sdg"
"""Cells of the SDG 16.10.1 figures per country (``node.features.figures.sdg_report``)."""


class Granularity(StrEnum):
    YEAR = "year"
    QUARTER = "quarter"


class Dimension(StrEnum):
    """The tables of an aggregate, named after the dimension of their columns."""

    PERIOD = "period"
    IMPUNITY_STATUS = "impunity_status"
    VIOLATION = "violation"
    VICTIM_GROUP = "victim_group"
    PERPETRATOR_CATEGORY = "perpetrator_category"


CASE_COUNT_TABLES = frozenset({Dimension.PERIOD, Dimension.IMPUNITY_STATUS})
"""Tables in which each case is counted exactly once."""


def period_of(case: Case, granularity: Granularity) -> str:
    start = DateSpan.parse(case.incident_date).start
    if granularity is Granularity.QUARTER and start.month is not None:
        return f"{start.year:04d}-Q{(start.month - 1) // 3 + 1}"
    return f"{start.year:04d}"


def column_values(case: Case, dimension: Dimension, granularity: Granularity) -> frozenset[str]:
    """The columns of ``dimension`` in which ``case`` is counted."""
    if dimension is Dimension.PERIOD:
        return frozenset({period_of(case, granularity)})
    if dimension is Dimension.IMPUNITY_STATUS:
        return frozenset({case.impunity_status})
    if dimension is Dimension.VIOLATION:
        return frozenset(case.violations)
    if dimension is Dimension.VICTIM_GROUP:
        groups = {group for victim in case.victims for group in victim.groups}
        return frozenset(groups or {UNSPECIFIED})
    categories = {perpetrator.category for perpetrator in case.perpetrators}
    return frozenset(categories or {UNSPECIFIED})


def column_labels(dimension: Dimension, value: str) -> dict[str, str]:
    """Dimensions that travel with a column: a violation's SDG category, a perpetrator type."""
    if dimension is Dimension.VIOLATION:
        return {SDG_CATEGORY: sdg_category(value).value}
    if dimension is Dimension.PERPETRATOR_CATEGORY and value != UNSPECIFIED:
        return {PERPETRATOR_TYPE: perpetrator_type(value)}
    return {}


_VOCABULARY_ORDER: Mapping[Dimension, Vocabulary] = {
    Dimension.IMPUNITY_STATUS: Vocabulary.IMPUNITY_STATUS,
    Dimension.VIOLATION: Vocabulary.VIOLATION,
    Dimension.VICTIM_GROUP: Vocabulary.VICTIM_GROUP,
    Dimension.PERPETRATOR_CATEGORY: Vocabulary.PERPETRATOR_CATEGORY,
}


def _ordered_columns(dimension: Dimension, present: Iterable[str]) -> tuple[str, ...]:
    present = set(present)
    vocabulary = _VOCABULARY_ORDER.get(dimension)
    if vocabulary is None:
        return tuple(sorted(present))
    order = [*codes(vocabulary), UNSPECIFIED]
    return tuple(code for code in order if code in present)


def country_rows(cases: Sequence[Case]) -> dict[str, str]:
    """Each country's row: itself, or ``other`` when it holds too few cases (see module doc)."""
    totals = Counter(case.country for case in cases)
    merged = {country for country, total in totals.items() if _is_small(total)}
    kept = sorted((total, country) for country, total in totals.items() if country not in merged)
    while _is_small(sum(totals[country] for country in merged)) and kept:
        merged.add(kept.pop(0)[1])
    return {country: OTHER_COUNTRIES if country in merged else country for country in totals}


@dataclass(frozen=True)
class CountTable:
    """One dimension's counts: rows are country rows, columns the dimension's values."""

    dimension: Dimension
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    table: Table
    countries: tuple[frozenset[str], ...]
    """The countries each row counts (one, or several for ``other``)."""

    def other_countries(self) -> list[str]:
        return sorted(country for row, members in zip(self.rows, self.countries, strict=True)
                      if row == OTHER_COUNTRIES for country in members)


def count_tables(cases: Sequence[Case], granularity: Granularity) -> list[CountTable]:
    rows_of = country_rows(cases)
    rows = tuple(sorted(set(rows_of.values()), key=lambda row: (row == OTHER_COUNTRIES, row)))
    countries = tuple(frozenset(c for c, r in rows_of.items() if r == row) for row in rows)
    tables = []
    for dimension in Dimension:
        counts: Counter[tuple[str, str]] = Counter()
        for case in cases:
            for value in column_values(case, dimension, granularity):
                counts[rows_of[case.country], value] += 1
        columns = _ordered_columns(dimension, (column for _, column in counts))
        grid = Table.of([[counts[row, column] for column in columns] for row in rows])
        tables.append(CountTable(dimension, rows, columns, grid, countries))
    return tables


def merge_rows(counted: CountTable, row: int) -> CountTable | None:
    """``row`` merged into the ``other`` row (or, with the smallest other row, into a new one).

    A merged row's total is the sum of published country totals, so it reveals nothing new;
    ``None`` when there is no other row to merge with, or ``row`` is the totals row.
    """
    rows = counted.rows
    if row >= len(rows) or len(rows) < 2:
        return None
    totals = [sum(counts) for counts in counted.table.counts]
    others = [k for k in range(len(rows)) if k != row]
    partner = next((k for k in others if rows[k] == OTHER_COUNTRIES),
                   min(others, key=lambda k: (totals[k], rows[k])))
    kept = [k for k in range(len(rows)) if k not in (row, partner)]
    merged = [a + b for a, b in zip(counted.table.counts[row], counted.table.counts[partner],
                                    strict=True)]
    counts = [list(counted.table.counts[k]) for k in kept] + [merged]
    return CountTable(counted.dimension, (*(rows[k] for k in kept), OTHER_COUNTRIES),
                      counted.columns, Table.of(counts),
                      (*(counted.countries[k] for k in kept),
                       counted.countries[row] | counted.countries[partner]))


def suppress_table(counted: CountTable) -> tuple[CountTable, SuppressedTable]:
    """Suppress ``counted``, merging rows that cannot be protected; the table may change."""
    suppressed = suppress(counted.table)
    while suppressed.whole_table_withheld:
        merged = merge_rows(counted, suppressed.unprotected[0][0])
        if merged is None:
            break
        counted, suppressed = merged, suppress(merged.table)
    return counted, suppressed


def _cell_dimensions(counted: CountTable, entry: Entry) -> dict[str, str]:
    i, j = entry
    dimensions = {TABLE: counted.dimension.value}
    if i < len(counted.rows):
        dimensions[COUNTRY] = counted.rows[i]
    if j < len(counted.columns):
        column = counted.columns[j]
        dimensions[counted.dimension.value] = column
        dimensions.update(column_labels(counted.dimension, column))
    return dimensions


def _published_cells(counted: CountTable, suppressed: SuppressedTable) -> list[AggregateCell]:
    grand_total = (counted.table.rows, counted.table.columns)
    cells = []
    for entry in suppressed.published_entries():
        shown = suppressed.shown(entry)
        if shown == 0 and entry != grand_total:
            continue
        count: int | str = shown.value if isinstance(shown, Mark) else shown
        cells.append(AggregateCell(dimensions=_cell_dimensions(counted, entry), count=count))
    return cells


@dataclass(frozen=True)
class PublishedCells:
    cells: list[AggregateCell]
    withheld_tables: list[str]
    other_rows: dict[str, list[str]]


def _too_few_cases() -> PublishedCells:
    cells = [
        AggregateCell(dimensions={TABLE: dimension.value}, count=Mark.SMALL.value)
        for dimension in Dimension if dimension in CASE_COUNT_TABLES
    ]
    return PublishedCells(cells, [dimension.value for dimension in Dimension], {})


def aggregate_cells(cases: Sequence[Case], granularity: Granularity) -> PublishedCells:
    """The published cells, the tables withheld whole, and each ``other`` row's countries."""
    if _is_small(len(cases)):
        return _too_few_cases()
    published = PublishedCells([], [], {})
    for counted in count_tables(cases, granularity):
        counted, suppressed = suppress_table(counted)
        if suppressed.whole_table_withheld:
            published.withheld_tables.append(counted.dimension.value)
        if counted.other_countries():
            published.other_rows[counted.dimension.value] = counted.other_countries()
        published.cells.extend(_published_cells(counted, suppressed))
    published.cells.extend(sdg_cells(cases))
    return published


def sdg_cells(cases: Sequence[Case]) -> list[AggregateCell]:
    """The SDG 16.10.1 figures of every country with a row of its own, suppressed as in the
    report. A figure not published (not broken down) has no cell; neither have the parts of a
    figure that is exactly 0, which are 0. Every other cell is listed, zeros included, so a
    missing cell under a figure that is not 0 means "not published", not 0."""
    cells = []
    rows = country_rows(cases)
    for country in sorted(c for c, row in rows.items() if row == c):
        published = suppress_figures(tally(case for case in cases if case.country == country))
        for figure in FIGURES:
            value, parent = published[figure], parent_of(figure)
            if value is None or (parent is not None and published[parent] == 0):
                continue
            count: int | str = value.value if isinstance(value, Mark) else value
            cells.append(AggregateCell(
                dimensions={TABLE: SDG_TABLE, COUNTRY: country, **dict(figure)}, count=count))
    return cells


def in_period(case: Case, period: DateSpan) -> bool:
    """A case belongs to a period when its incident started within it."""
    start = DateSpan.parse(case.incident_date).earliest()
    return period.earliest() <= start <= period.latest()


def default_period(cases: Sequence[Case], as_of: int) -> DateSpan:
    """From the first to the last year with a case (the year of ``as_of`` when none)."""
    years = [DateSpan.parse(case.incident_date).start.year for case in cases]
    if not years:
        return DateSpan.parse(f"{datetime.fromtimestamp(as_of, UTC).year:04d}")
    first, last = min(years), max(years)
    return DateSpan.parse(f"{first:04d}" if first == last else f"{first:04d}/{last:04d}")


def period_between(cases: Sequence[Case], first: str | None, last: str | None) -> DateSpan | None:
    """The period from partial date ``first`` to ``last``; a missing end is the cases' own.

    ``None`` when neither is given. Raises ``PartialDateError`` for a bad or reversed period.
    """
    if first is None and last is None:
        return None
    span = default_period(cases, 0)
    start = PartialDate.parse(first) if first is not None else span.start
    end = PartialDate.parse(last) if last is not None else (span.end or span.start)
    if first is not None and last is None and end.latest() < start.earliest():
        end = start
    if last is not None and first is None and start.earliest() > end.latest():
        start = end
    return DateSpan(start, None if end == start else end)


def build_aggregate(
    cases: Iterable[Case],
    *,
    as_of: int,
    granularity: Granularity = Granularity.YEAR,
    period: DateSpan | None = None,
    overlap: OverlapReport | None = None,
) -> Aggregate:
    """The aggregate of ``cases`` (those that started in ``period``, when given) at ``as_of``,
    with the ``overlap`` estimate (``node.features.figures.overlap``) when there is one."""
    chosen = [case for case in cases if period is None or in_period(case, period)]
    published = aggregate_cells(chosen, granularity)
    return Aggregate(
        typology_version=TYPOLOGY_VERSION,
        period=str(period or default_period(chosen, as_of)),
        as_of=as_of,
        cells=published.cells,
        withheld_tables=published.withheld_tables,
        other_rows=published.other_rows,
        overlap=overlap,
    )


# --- reading aggregates back -------------------------------------------------------------

CellKey = frozenset[tuple[str, str]]
Shown = int | str


def cell_key(dimensions: Mapping[str, str]) -> CellKey:
    return frozenset(dimensions.items())


@dataclass(frozen=True)
class CoalitionFigure:
    """A sum over members: exact when ``low == high``; ``high`` is None when unbounded."""

    dimensions: Mapping[str, str]
    low: int
    high: int | None
    members: tuple[str, ...]

    @property
    def exact(self) -> bool:
        return self.low == self.high


def _bounds_of(shown: Shown) -> tuple[int, int | None]:
    if isinstance(shown, int):
        return shown, shown
    if shown == Mark.SMALL.value:
        return 1, SMALL_LIMIT - 1
    return SMALL_LIMIT, None


def _contribution(
    aggregate: Aggregate, cells: Mapping[CellKey, Shown], key: CellKey
) -> tuple[int, int | None]:
    """The bounds of what one member counts under ``key``."""
    if key in cells:
        return _bounds_of(cells[key])
    dimensions = dict(key)
    table = dimensions.get(TABLE, "")
    if table in aggregate.withheld_tables:
        return 0, None
    if dimensions.get(COUNTRY) in aggregate.other_rows.get(table, ()):
        # Counted in the member's "other" row: at most what that row holds.
        other = cell_key({**dimensions, COUNTRY: OTHER_COUNTRIES})
        return 0, _bounds_of(cells[other])[1] if other in cells else 0
    return 0, 0


def coalition_sums(aggregates: Mapping[str, Aggregate]) -> list[CoalitionFigure]:
    """Sum the members' published cells (``{org id: aggregate}``), cell by cell.

    Where every member published the exact count the sum is exact; a ``"<5"`` adds 1 to 4, a
    withheld count 5 or more, a country a member counts in its ``other`` row up to that row's
    count, and a table a member withheld whole an unknown amount.
    """
    published = {
        member: {cell_key(cell.dimensions): cell.count for cell in aggregate.cells}
        for member, aggregate in aggregates.items()
    }
    keys = sorted({key for cells in published.values() for key in cells
                   if dict(key).get(TABLE) != SDG_TABLE}, key=sorted)
    figures = []
    for key in keys:
        low, members = 0, []
        high: int | None = 0
        for member, aggregate in sorted(aggregates.items()):
            member_low, member_high = _contribution(aggregate, published[member], key)
            low += member_low
            high = None if high is None or member_high is None else high + member_high
            if member_high != 0:
                members.append(member)
        figures.append(CoalitionFigure(dict(sorted(key)), low, high, tuple(members)))
    return figures


# --- a readable rendering, for `minga aggregates show` -----------------------------------

Labeller = Callable[[str, str], str]


def render_aggregate(aggregate: Aggregate, label: Labeller | None = None) -> str:
    """Plain-text tables; ``label(dimension, code)`` names the columns (codes by default)."""
    name = label or (lambda dimension, code: code)
    by_table: dict[str, dict[tuple[str, str], Shown]] = {}
    for cell in aggregate.cells:
        dims = cell.dimensions
        table = dims[TABLE]
        if table == SDG_TABLE:
            continue  # shown by `minga report sdg`
        coordinates = (dims.get(COUNTRY, "total"), dims.get(table, "total"))
        by_table.setdefault(table, {})[coordinates] = cell.count
    lines = [f"Aggregate figures for {aggregate.period} (typology {aggregate.typology_version})"]
    for table, cells in by_table.items():
        lines += ["", _render_table(table, cells, name, table in aggregate.withheld_tables)]
    return "\n".join(lines) + "\n"


def _render_table(
    table: str, cells: Mapping[tuple[str, str], Shown], name: Labeller, withheld: bool
) -> str:
    rows = sorted({row for row, _ in cells}, key=lambda r: (r == "total", r == OTHER_COUNTRIES, r))
    columns = sorted({column for _, column in cells}, key=lambda c: (c == "total", c))
    default = "?" if withheld else "0"
    header = [table, *(name(table, column) for column in columns)]
    body = [[row, *(str(cells.get((row, column), default)) for column in columns)]
            for row in rows]
    widths = [max(len(line[k]) for line in [header, *body]) for k in range(len(header))]
    text = ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True))
            for line in [header, *body]]
    if withheld:
        text.append("(withheld: only totals are published for this table)")
    return "\n".join(line.rstrip() for line in text)
