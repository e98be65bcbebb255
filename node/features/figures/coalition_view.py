"""The coalition view: sums of every member's latest aggregate (issue M9 part 2).

Pure: aggregates in, figures, chart data and CSV out. The sums themselves, with their bounds
where members suppressed small cells, come from
:func:`node.features.figures.aggregates.coalition_sums`; this
module picks each member's latest aggregate, says who contributed and as of when, takes the cases
members count twice out of the case count (:mod:`node.features.figures.overlap`), and never shows a
sum that
could be under 5 as a number (it is shown as ``"<5"``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from node.features.figures.aggregates import (
    COUNTRY,
    TABLE,
    CoalitionFigure,
    Dimension,
    coalition_sums,
)
from node.features.figures.overlap import DistinctCases, case_count_figure, distinct_cases
from node.features.figures.suppression import SMALL_LIMIT, Mark
from schemas.payloads import Aggregate

CSV_COLUMNS = ("table", "country", "value", "low", "high", "shown", "members")
DISTINCT_TABLE = "distinct_cases"
"""The CSV row of the case count with shared cases counted once; ``members`` are those whose
overlap estimate it uses."""


@dataclass(frozen=True)
class Contributor:
    org_id: str
    as_of: int
    period: str


@dataclass(frozen=True)
class CoalitionView:
    figures: tuple[CoalitionFigure, ...]
    contributors: tuple[Contributor, ...]
    distinct: DistinctCases | None
    """The case count with cases shared between members counted once (None: no figures)."""


@dataclass(frozen=True)
class Bar:
    """One bar or point: the sum lies between ``low`` and ``high`` (None: no upper bound)."""

    label: str
    low: int
    high: int | None
    shown: str


def latest_per_member(published: Iterable[tuple[str, Aggregate]]) -> dict[str, Aggregate]:
    """Each member's most recent aggregate (by ``as_of``) among ``(org id, aggregate)`` pairs."""
    latest: dict[str, Aggregate] = {}
    for org_id, aggregate in published:
        if org_id not in latest or aggregate.as_of > latest[org_id].as_of:
            latest[org_id] = aggregate
    return latest


def aggregate_from_claims(claims: Mapping[str, object]) -> Aggregate:
    """The aggregate payload inside a received record's claims (header claims left out)."""
    return Aggregate.model_validate({k: v for k, v in claims.items()
                                     if k in Aggregate.model_fields})


def coalition_view(aggregates: Mapping[str, Aggregate]) -> CoalitionView:
    contributors = tuple(Contributor(org_id, aggregate.as_of, aggregate.period)
                         for org_id, aggregate in sorted(aggregates.items()))
    figures = tuple(coalition_sums(aggregates))
    counted = case_count_figure(figures)
    distinct = None if counted is None else distinct_cases(aggregates, counted)
    return CoalitionView(figures, contributors, distinct)


def shown(figure: CoalitionFigure) -> str:
    """How a sum is displayed; a sum that may lie between 1 and 4 is never shown as a number.

    Exact sums are shown as they are (``"0"`` or at least 5), sums that may be small as
    ``"<5"``, other uncertain sums as a range ``"12–15"``, ``"≥12"``, ``"≤8"`` or ``"?"``.
    """
    low, high = figure.low, figure.high
    if high is not None and high < SMALL_LIMIT:
        return "0" if high == 0 else Mark.SMALL.value
    if figure.exact:
        return str(low)
    if low >= SMALL_LIMIT:
        return f"{low}–{high}" if high is not None else f"≥{low}"
    return f"≤{high}" if high is not None else "?"


def _bound(value: int | None) -> str:
    """A bound for the CSV, left empty when it is unknown or could give away a small count."""
    return str(value) if value is not None and (value == 0 or value >= SMALL_LIMIT) else ""


def _bar(label: str, figure: CoalitionFigure) -> Bar:
    return Bar(label, figure.low, figure.high, shown(figure))


def _only(figure: CoalitionFigure, table: str, *dimensions: str) -> bool:
    keys = set(figure.dimensions)
    return figure.dimensions.get(TABLE) == table and keys == {TABLE, *dimensions}


def by_country(view: CoalitionView) -> list[Bar]:
    """Cases per country (the ``period`` table's country totals), largest first."""
    bars = [_bar(f.dimensions[COUNTRY], f) for f in view.figures
            if _only(f, Dimension.PERIOD.value, COUNTRY)]
    return sorted(bars, key=lambda bar: (-bar.low, bar.label))


def by_period(view: CoalitionView) -> list[Bar]:
    """Cases per year or quarter, in time order (the ``period`` table's column totals)."""
    period = Dimension.PERIOD.value
    bars = [_bar(f.dimensions[period], f) for f in view.figures if _only(f, period, period)]
    return sorted(bars, key=lambda bar: bar.label)


def view_csv(view: CoalitionView) -> str:
    """Every coalition figure as CSV; a bound is empty when unknown or under 5."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for figure in view.figures:
        dims = figure.dimensions
        table = dims.get(TABLE, "")
        writer.writerow([table, dims.get(COUNTRY, ""), dims.get(table, ""), _bound(figure.low),
                         _bound(figure.high), shown(figure), ";".join(figure.members)])
    if view.distinct is not None:
        distinct = view.distinct.distinct
        writer.writerow([DISTINCT_TABLE, "", "", _bound(distinct.low), _bound(distinct.high),
                         shown(distinct), ";".join(view.distinct.estimated_by)])
    return out.getvalue()
