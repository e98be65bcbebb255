"""How many cases members count twice, estimated with the de-duplication matching (issue M9).

Pure: counts in, published reports and coalition figures out; no store, no clock.

A case documented by two members is in both members' aggregates, so the sum of their figures
counts it twice. Members cannot pool their cases to find out which ones, but each can ask the
others, with the de-duplication query of docs/architecture.md §12, whether they hold a possible
match of a case.
Asking about every case would hand another member every encoding in bulk, which
docs/architecture.md §12 forbids; so a
member asks about a random sample of at most :data:`SAMPLE_SIZE` of its cases (within the default
rate limit members apply to queries) and publishes an estimate with its 95% interval. With no more
cases than that, every case is asked about and the count is exact.

Counting each shared case once: members are ordered by org id. A member asks only the members
*before* it, and reports how many of its cases one of them also holds. A case held by A, B and C
is then reported by B (held by A) and by C (held by A or B), and subtracted twice from the three
counts of it: it is counted once. The first member asks no one and reports no overlap.

Cases naming no defender cannot be matched (docs/architecture.md §12 matches names): they are left
out of the sample
and assumed not to be shared, so the estimate errs towards counting them, never towards dropping
a case that is not a duplicate.

Published counts follow the aggregates' small-cell rule: an estimate from 1 to 4 is published as
``"<5"``, a lower bound from 1 to 4 as 1 and an upper bound from 1 to 4 as 4 (still true bounds).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from node.features.figures.aggregates import TABLE, CoalitionFigure, cell_key
from node.features.figures.suppression import SMALL_LIMIT, Mark
from schemas.payloads import Aggregate, OverlapReport

SAMPLE_SIZE = 30
"""Cases asked about per estimate: half the default 60 queries an hour a member answers."""
Z_95 = 1.959964
CASES_TABLE = "period"
"""The table in which every case is counted exactly once (its grand total is the case count)."""


def earlier_members(own_org_id: str, members: Iterable[str]) -> list[str]:
    """The members a member asks: those before it in org-id order."""
    return sorted(member for member in set(members) if member < own_org_id)


def asked_the_members_before(report: OverlapReport | None, own_org_id: str,
                             members: Iterable[str]) -> bool:
    """Whether ``report`` asked exactly the members now before ``own_org_id`` (no report: no).
    One made while the roster was still arriving, or before a member joined or left, is read by
    the others as unknown (:func:`shared_bounds`): it has to be made again, however fresh."""
    return report is not None and \
        sorted(report.with_members) == earlier_members(own_org_id, members)


def draw_sample(case_ids: Sequence[str], rng: random.Random,
                size: int = SAMPLE_SIZE) -> list[str]:
    """Up to ``size`` of ``case_ids``, drawn without replacement; all of them when fewer."""
    if len(case_ids) <= size:
        return sorted(case_ids)
    return sorted(rng.sample(list(case_ids), size))


@dataclass(frozen=True)
class Estimate:
    """Shared cases among ``population``: ``count``, within ``low``..``high`` (95%)."""

    count: int
    low: int
    high: int


def estimate_overlap(population: int, checked: int, matched: int) -> Estimate:
    """The number of shared cases among ``population`` when ``matched`` of ``checked`` were.

    Exact when every case was checked; otherwise the Wilson score interval for a sample drawn
    without replacement (variance scaled by the finite-population correction), kept within what
    the sample proves: at least ``matched``, at most ``population - (checked - matched)``.
    """
    if not 0 <= matched <= checked <= population:
        raise ValueError("need 0 <= matched <= checked <= population")
    if checked == population:
        return Estimate(matched, matched, matched)
    if checked == 0:
        return Estimate(0, 0, population)
    share = matched / checked
    correction = (population - checked) / (population - 1)
    n = checked / correction
    z2 = Z_95 * Z_95
    centre = (share + z2 / (2 * n)) / (1 + z2 / n)
    spread = Z_95 * math.sqrt(share * (1 - share) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = max(matched, math.floor(population * max(0.0, centre - spread)))
    high = min(population - (checked - matched), math.ceil(population * min(1.0, centre + spread)))
    return Estimate(round(population * share), low, high)


def published_report(with_members: Sequence[str], population: int, checked: int, matched: int,
                     *, as_of: int) -> OverlapReport:
    """The estimate as published: no count from 1 to 4 (see the module doc)."""
    found = estimate_overlap(population, checked, matched)
    small = 1 <= found.count < SMALL_LIMIT
    return OverlapReport(
        with_members=sorted(with_members), as_of=as_of, every_case_checked=checked == population,
        estimate=Mark.SMALL.value if small else found.count,
        low=1 if 1 <= found.low < SMALL_LIMIT else found.low,
        high=SMALL_LIMIT - 1 if 1 <= found.high < SMALL_LIMIT else found.high)


# --- in the coalition view ------------------------------------------------------------------------


@dataclass(frozen=True)
class DistinctCases:
    """The coalition's case count with shared cases counted once.

    ``counted`` is the plain sum of members' case counts, ``shared`` the bounds of the cases
    counted more than once, ``distinct`` the difference. ``estimated_by`` are the members whose
    reports were used, ``unknown`` those whose overlap is unknown (no report, or one that asked
    other members than those now contributing), taken as anything up to their whole count.
    """

    counted: CoalitionFigure
    shared_low: int
    shared_high: int | None
    distinct: CoalitionFigure
    estimated_by: tuple[str, ...]
    unknown: tuple[str, ...]


def _case_count(aggregate: Aggregate) -> tuple[int, int | None]:
    cell = next((c.count for c in aggregate.cells if c.dimensions == {TABLE: CASES_TABLE}), 0)
    if isinstance(cell, int):
        return cell, cell
    return (1, SMALL_LIMIT - 1) if cell == Mark.SMALL.value else (SMALL_LIMIT, None)


def shared_bounds(member: str, aggregate: Aggregate,
                   contributors: set[str]) -> tuple[int, int | None] | None:
    """What ``member`` counts that an earlier contributor counts too; None when unknown."""
    report = aggregate.overlap
    if report is None:
        return None
    asked = set(report.with_members)
    if set(earlier_members(member, contributors)) != asked:
        return None
    return report.low, report.high


def distinct_cases(aggregates: Mapping[str, Aggregate], counted: CoalitionFigure) -> DistinctCases:
    """``counted`` (the summed case count) less the shared cases members reported."""
    contributors = set(aggregates)
    shared_low, single_low = 0, 0
    shared_high: int | None = 0
    estimated_by, unknown = [], []
    for member, aggregate in sorted(aggregates.items()):
        own_low, own_high = _case_count(aggregate)
        single_low = max(single_low, own_low)
        bounds = shared_bounds(member, aggregate, contributors)
        if bounds is None:
            unknown.append(member)
            bounds = (0, own_high)
        else:
            estimated_by.append(member)
        shared_low += bounds[0]
        shared_high = None if shared_high is None or bounds[1] is None else shared_high + bounds[1]
    low = max(single_low, counted.low - shared_high) if shared_high is not None else single_low
    high = None if counted.high is None else max(low, counted.high - shared_low)
    distinct = CoalitionFigure(dict(counted.dimensions), low, high, counted.members)
    return DistinctCases(counted, shared_low, shared_high, distinct, tuple(estimated_by),
                         tuple(unknown))


def case_count_figure(figures: Iterable[CoalitionFigure]) -> CoalitionFigure | None:
    """The summed case count among the coalition's figures."""
    key = cell_key({TABLE: CASES_TABLE})
    return next((f for f in figures if cell_key(f.dimensions) == key), None)
