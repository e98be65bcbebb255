"""The SDG 16.10.1 report for the whole coalition, from the figures members published.

Pure: each member's latest aggregate in, a report of ranges out. Raw cases never enter: members
publish their report's figures per country (table ``sdg`` of the aggregate, suppressed by the
report's own rules, :func:`node.features.figures.aggregates.sdg_cells`), and this module only
reads them. Decision: docs/decisions/0017-sdg-small-cells.md.

What one member contributes to a figure is a range:

- a published count is exact; ``"<5"`` and ``"withheld"`` are what the member's breakdown
  allows (1..4 and 5 up to the figure it breaks down at most, narrower when the other parts and
  the exact total say more); a figure not published is 0 when the figure it breaks down is
  exactly 0, else anything up to it;
- a member that published no SDG figures for the country (an older version, a country it merges
  into ``other``, or fewer than 5 cases in all) may still hold cases there: up to its country
  count, its ``other`` row or 4 cases, with any number of victims.

The coalition's figure adds the members' ranges (never their suppressed cells as if exact),
and then counts a case documented by several members once, as the figures page does, from the
members' overlap estimates (``node.features.figures.overlap``): a member whose estimate says
none of its cases is held by an earlier member adds exactly its own; otherwise up to the shared
cases it reported (all of its cases, when its overlap is unknown) may already be counted, which
lowers the low end. A shared case's victims are unknown, so any victim of a member with shared
cases may already be counted. The true figure always lies in the range; it is shown with
:func:`node.features.figures.coalition_view.shown`, so never as a number under 5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from node.core.api.organisations import OrganisationNames, named
from node.core.api.times import Time
from node.features.figures.aggregates import (
    COUNTRY,
    OTHER_COUNTRIES,
    SDG_TABLE,
    TABLE,
    CoalitionFigure,
    cell_key,
)
from node.features.figures.coalition_view import Contributor, shown
from node.features.figures.overlap import CASES_TABLE, shared_bounds
from node.features.figures.sdg_report import (
    BREAKDOWNS,
    CASES,
    FIGURES,
    ROOTS,
    TEXT,
    VERIFIED_SOURCES,
    VICTIMS,
    Breakdown,
    Key,
    Rendering,
    key,
    key_of,
    measure_of,
    nested,
)
from node.features.figures.suppression import SMALL_LIMIT, Mark, Shown, breakdown_range
from schemas.payloads import Aggregate
from schemas.typology import TYPOLOGY_VERSION, Language

Bounds = tuple[int, int | None]
"""At least, at most (None: no upper bound)."""


@dataclass(frozen=True)
class MemberFigures:
    bounds: Mapping[Key, Bounds]
    itemised: bool
    """Whether the member published SDG figures for the country (False: only bounds)."""


def _cell_bounds(count: int | str, parent_high: int | None) -> Bounds:
    if isinstance(count, int):
        return count, count
    if count == Mark.SMALL.value:
        return 1, SMALL_LIMIT - 1
    return SMALL_LIMIT, parent_high


def _period_cells(aggregate: Aggregate) -> dict[frozenset[tuple[str, str]], int | str]:
    return {cell_key(c.dimensions): c.count for c in aggregate.cells
            if c.dimensions.get(TABLE) == CASES_TABLE and set(c.dimensions) <= {TABLE, COUNTRY}}


def _unitemised_cases(aggregate: Aggregate, country: str) -> Bounds:
    """How many cases a member without SDG figures for ``country`` may hold there."""
    period = _period_cells(aggregate)
    row = period.get(cell_key({TABLE: CASES_TABLE, COUNTRY: country}))
    if row is not None:
        return _cell_bounds(row, None)
    if country in aggregate.other_rows.get(CASES_TABLE, ()):
        other = period.get(cell_key({TABLE: CASES_TABLE, COUNTRY: OTHER_COUNTRIES}))
        return 0, None if other is None else _cell_bounds(other, None)[1]
    if period.get(cell_key({TABLE: CASES_TABLE})) == Mark.SMALL.value:
        return 0, SMALL_LIMIT - 1  # fewer than 5 cases in all: wherever they are
    return 0, 0


def member_figures(aggregate: Aggregate, country: str) -> MemberFigures:
    cells = {}
    for cell in aggregate.cells:
        dims = cell.dimensions
        if dims.get(TABLE) == SDG_TABLE and dims.get(COUNTRY) == country:
            figure = key_of(dims)
            if figure is not None:
                cells[figure] = cell.count
    bounds: dict[Key, Bounds] = {}
    itemised = key(CASES) in cells and key(VICTIMS) in cells
    if itemised:
        bounds.update({root: _cell_bounds(cells[root], None) for root in ROOTS})
    else:
        low, high = _unitemised_cases(aggregate, country)
        bounds.update({key(CASES): (low, high), key(VICTIMS): (low, None if high else 0)})
    for breakdown in BREAKDOWNS:
        bounds.update(_breakdown_bounds(breakdown, cells, bounds[breakdown.parent]))
    return MemberFigures(bounds, itemised)


def _breakdown_bounds(breakdown: Breakdown, cells: Mapping[Key, int | str],
                      parent: Bounds) -> dict[Key, Bounds]:
    """What a member's published breakdown says of each part: with its exact total, exactly
    what can be worked out (``suppression.breakdown_range``); else each part on its own."""
    low, high = parent
    if low == high and all(child in cells for child in breakdown.children):
        shown: list[Shown] = [count if isinstance(count, int) else Mark(count)
                              for count in (cells[c] for c in breakdown.children)]
        return {child: breakdown_range(shown, low, index, additive=breakdown.additive)
                for index, child in enumerate(breakdown.children)}
    return {child: _cell_bounds(cells[child], high) if child in cells else (0, high)
            for child in breakdown.children}


@dataclass(frozen=True)
class CoalitionSdg:
    country: str
    figures: Mapping[Key, CoalitionFigure]
    contributors: tuple[Contributor, ...]
    estimated_by: tuple[str, ...]
    """Members whose overlap estimate is used."""
    overlap_unknown: tuple[str, ...]
    """Members who may share cases with earlier members in unknown number."""
    not_itemised: tuple[str, ...]
    """Members who may hold cases in the country but published no SDG figures for it."""


def _possibly_counted(figure: Key, member: Bounds, shared_high: int | None) -> int | None:
    """At most how much of a member's figure an earlier member may count too."""
    high = member[1]
    if shared_high == 0:
        return 0
    if measure_of(figure) == CASES and shared_high is not None:
        return shared_high if high is None else min(shared_high, high)
    return high


def _combine(figure: Key, members: Mapping[str, Bounds],
             shared: Mapping[str, int | None], country: str) -> CoalitionFigure:
    low_sum, high_sum, counted_twice = 0, 0, 0
    unbounded_high = unbounded_twice = False
    largest = 0
    for member, (low, high) in members.items():
        low_sum += low
        largest = max(largest, low)
        twice = _possibly_counted(figure, (low, high), shared[member])
        if high is None:
            unbounded_high = True
        else:
            high_sum += high
        if twice is None:
            unbounded_twice = True
        else:
            counted_twice += twice
    low = largest if unbounded_twice else max(largest, low_sum - counted_twice)
    return CoalitionFigure({TABLE: SDG_TABLE, COUNTRY: country, **dict(figure)}, low,
                           None if unbounded_high else high_sum,
                           tuple(m for m, bounds in sorted(members.items()) if bounds[1] != 0))


def coalition_sdg(aggregates: Mapping[str, Aggregate], country: str) -> CoalitionSdg:
    """The coalition's report for ``country`` from each member's latest aggregate."""
    contributors = set(aggregates)
    per_member = {member: member_figures(aggregate, country)
                  for member, aggregate in sorted(aggregates.items())}
    shared: dict[str, int | None] = {}
    for member, aggregate in aggregates.items():
        found = shared_bounds(member, aggregate, contributors)
        shared[member] = None if found is None else found[1]
    figures = {figure: _combine(figure, {m: f.bounds[figure] for m, f in per_member.items()},
                                shared, country) for figure in FIGURES}
    holders = {m for m, f in per_member.items() if f.bounds[key(CASES)][1] != 0}
    return CoalitionSdg(
        country=country, figures=figures,
        contributors=tuple(Contributor(m, a.as_of, a.period)
                           for m, a in sorted(aggregates.items())),
        estimated_by=tuple(sorted(m for m in holders if shared[m] is not None)),
        overlap_unknown=tuple(sorted(m for m in holders if shared[m] is None)),
        not_itemised=tuple(sorted(m for m in holders if not per_member[m].itemised)),
    )


# --- as the API shows it -----------------------------------------------------------------

def public_bound(value: int | None) -> int | None:
    """A bound as shown: None when unknown or when it would give away a count under 5."""
    return value if value is not None and (value == 0 or value >= SMALL_LIMIT) else None


class RangeFigure(BaseModel):
    low: int | None = Field(description="the figure is at least this (null: not shown, as it"
                                        " is unknown or under 5)")
    high: int | None = Field(description="and at most this (null: unknown or under 5)")
    shown: str = Field(description="how it may be displayed; never a count under 5")


class CoalitionCategoryFigures(BaseModel):
    cases: RangeFigure
    victims: RangeFigure
    victims_by_group: dict[str, RangeFigure]
    victims_by_sex: dict[str, RangeFigure]


class CoalitionSectionFigures(BaseModel):
    cases: RangeFigure
    victims: RangeFigure
    by_category: dict[str, CoalitionCategoryFigures]


class SdgContributor(BaseModel):
    org_id: str
    as_of: Time = Field(description="when the member's figures were computed")
    period: str = Field(description="the period the member's figures cover")


class CoalitionSdgReport(BaseModel):
    """The 16.10.1 figures of every member together, as ranges, from what members published."""

    country: str
    typology_version: str = TYPOLOGY_VERSION
    verified_sources: int = VERIFIED_SOURCES
    small_limit: int = SMALL_LIMIT
    contributors: list[SdgContributor]
    cases: RangeFigure
    victims: RangeFigure
    verified: CoalitionSectionFigures
    not_verified: CoalitionSectionFigures
    overlap_estimated_by: list[str] = Field(
        description="members whose estimate of cases shared with earlier members is used")
    overlap_unknown: list[str] = Field(
        description="members whose shared cases are unknown: their figures may count cases"
                    " other members count too, which widens the ranges")
    not_itemised: list[str] = Field(
        description="members who may hold cases in the country but published no SDG figures"
                    " for it; they widen the ranges")
    organisations: OrganisationNames = {}


def range_figure(figure: CoalitionFigure) -> RangeFigure:
    return RangeFigure(low=public_bound(figure.low), high=public_bound(figure.high),
                       shown=shown(figure))


def coalition_report(sdg: CoalitionSdg, names: Mapping[str, str]) -> CoalitionSdgReport:
    mentioned = [*(c.org_id for c in sdg.contributors), *sdg.estimated_by,
                 *sdg.overlap_unknown, *sdg.not_itemised]
    data: dict[str, Any] = {
        "country": sdg.country,
        "contributors": [{"org_id": c.org_id, "as_of": c.as_of, "period": c.period}
                         for c in sdg.contributors],
        **nested(lambda figure: range_figure(sdg.figures[figure])),
        "overlap_estimated_by": list(sdg.estimated_by),
        "overlap_unknown": list(sdg.overlap_unknown),
        "not_itemised": list(sdg.not_itemised),
        "organisations": named(mentioned, names),
    }
    return CoalitionSdgReport.model_validate(data)


def _names(members: Sequence[str], names: Mapping[str, str]) -> str:
    return ", ".join(sorted(names.get(m, m) for m in members))


NOTES: Mapping[Language, Mapping[str, str]] = {
    "en": {"unknown": "Cases shared with other members not known for: {members}.",
           "not_itemised": "No SDG figures published for this country by: {members}; what they"
                           " may hold there only widens the ranges.",
           "none": "No member has published figures yet."},
    "es": {"unknown": "Se desconocen los casos compartidos con otros miembros de: {members}.",
           "not_itemised": "No publicaron cifras ODS de este país: {members}; lo que puedan"
                           " tener allí solo amplía los intervalos.",
           "none": "Ningún miembro ha publicado cifras todavía."},
}


def coalition_rendering(sdg: CoalitionSdg, language: Language, names: Mapping[str, str],
                        *, when: Any = None) -> Rendering:
    """The report's cells as text. ``when(unix_seconds)`` formats the as-of times."""
    notes = [TEXT[language]["coalition_legend"]]
    if not sdg.contributors:
        notes.append(NOTES[language]["none"])
    if sdg.overlap_unknown:
        notes.append(NOTES[language]["unknown"].format(
            members=_names(sdg.overlap_unknown, names)))
    if sdg.not_itemised:
        notes.append(NOTES[language]["not_itemised"].format(
            members=_names(sdg.not_itemised, names)))
    periods = sorted({c.period for c in sdg.contributors})
    show_time = when or (lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC"))
    return Rendering(
        sdg.country, ", ".join(periods) or "—",
        {figure: shown(value) for figure, value in sdg.figures.items()}, tuple(notes),
        contributors=tuple((names.get(c.org_id, c.org_id), c.period, show_time(c.as_of))
                           for c in sdg.contributors))
