"""The SDG 16.10.1 figures members publish, and the coalition's report made from them.

Test vectors for the combination (exact where nothing is hidden, ranges where members hid small
counts or may count the same cases), and properties: what members publish never shows a count
under 5 nor lets one be worked out, and the coalition's range always holds the true figure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from node.features.figures.aggregates import (
    COUNTRY,
    SDG_TABLE,
    TABLE,
    build_aggregate,
    country_rows,
)
from node.features.figures.coalition_sdg import (
    coalition_rendering,
    coalition_report,
    coalition_sdg,
)
from node.features.figures.sdg_report import (
    FIGURES,
    Key,
    key,
    key_of,
    parent_of,
    rendering_csv,
    rendering_html,
    tally,
)
from node.features.figures.suppression import Mark
from schemas.case import Case
from schemas.payloads import Aggregate, AggregateCell, OverlapReport
from tests.features.figures.test_aggregates import FAST, MEMBERS
from tests.features.figures.test_sdg_report import attack, case, report_cases

A, B, C = MEMBERS


def cases(count: int, country: str = "CO", **fields: Any) -> list[Case]:
    return [case(country=country, independent_sources=2, **fields)] * count


def published(cases_held: Sequence[Case], member: str, *, shared: int | None = 0,
              earlier: Sequence[str] = ()) -> Aggregate:
    """``member``'s aggregate; ``shared``: how many of its cases earlier members hold (None:
    no overlap estimate)."""
    overlap = None if shared is None else OverlapReport(
        with_members=list(earlier), as_of=1, every_case_checked=True, estimate=shared,
        low=shared, high=shared)
    return build_aggregate(cases_held, as_of=1_717_000_000, overlap=overlap)


def sdg_part(aggregate: Aggregate, country: str) -> dict[Key, int | Mark | None]:
    """One country's SDG figures rebuilt from the cells, as a reader of the record would."""
    cells = {key_of(c.dimensions): c.count for c in aggregate.cells
             if c.dimensions[TABLE] == SDG_TABLE and c.dimensions[COUNTRY] == country}
    found: dict[Key, int | Mark | None] = {}
    for figure in FIGURES:
        parent = parent_of(figure)
        value = cells.get(figure)
        if value is None and parent is not None and found[parent] == 0:
            value = 0
        found[figure] = Mark(value) if isinstance(value, str) else value
    return found


# --- what members publish ----------------------------------------------------------------

countries = st.sampled_from(["CO", "PE"])
located_cases = st.builds(lambda c, country: c.model_copy(update={"country": country}),
                          report_cases, countries)


@FAST
@given(st.lists(located_cases, max_size=30))
def test_published_sdg_figures_show_no_count_under_five_and_none_can_be_worked_out(
    held: list[Case],
) -> None:
    aggregate = build_aggregate(held, as_of=1_717_000_000)
    for cell in aggregate.cells:
        assert not (isinstance(cell.count, int) and 1 <= cell.count <= 4), cell
    for country in ("CO", "PE"):
        mine = [c for c in held if c.country == country]
        part = sdg_part(aggregate, country)
        if country_rows(held).get(country) != country:
            assert all(value is None for value in part.values()), "merged: nothing published"
            continue
        assert part[key("cases")] == len(mine)
        attack(part, tally(mine))


def test_a_country_merged_into_other_publishes_no_sdg_figures() -> None:
    # Mexico is small; merged with the next smallest, Peru, into "other".
    aggregate = build_aggregate(cases(7) + cases(6, "PE") + cases(2, "MX"), as_of=1)
    sdg_countries = {c.dimensions[COUNTRY] for c in aggregate.cells
                     if c.dimensions[TABLE] == SDG_TABLE}
    assert sdg_countries == {"CO"}


def test_the_parts_of_a_zero_are_left_out_and_every_other_part_is_listed() -> None:
    aggregate = build_aggregate(cases(6), as_of=1)
    sdg = {tuple(sorted(c.dimensions.items())): c.count for c in aggregate.cells
           if c.dimensions[TABLE] == SDG_TABLE}
    base = {TABLE: SDG_TABLE, COUNTRY: "CO", "measure": "victims", "section": "verified",
            "sdg_category": "killing"}
    assert sdg[tuple(sorted({**base, "sex": "man"}.items()))] == 0
    assert sdg[tuple(sorted({**base, "sex": "woman"}.items()))] == 6
    torture = {**base, "sdg_category": "torture"}
    assert tuple(sorted({**torture, "sex": "woman"}.items())) not in sdg
    assert sdg[tuple(sorted(torture.items()))] == 0


# --- the coalition's report: test vectors ------------------------------------------------

def figure(report: Any, path: str) -> tuple[int | None, int | None, str]:
    value = report.model_dump()
    for part in path.split("."):
        value = value[part]
    return value["low"], value["high"], value["shown"]


def test_members_that_share_no_case_add_up_exactly() -> None:
    aggregates = {A: published(cases(6), A), B: published(cases(5), B, earlier=[A])}
    report = coalition_report(coalition_sdg(aggregates, "CO"), {A: "Uno", B: "Dos"})
    assert figure(report, "cases") == (11, 11, "11")
    assert figure(report, "verified.by_category.killing.victims_by_sex.woman") == (11, 11, "11")
    assert figure(report, "not_verified.cases") == (0, 0, "0")
    assert [(c.org_id, c.period) for c in report.contributors] == [(A, "2023"), (B, "2023")]
    assert report.organisations == {A: "Uno", B: "Dos"}
    assert report.model_dump(mode="json")["contributors"][0]["as_of"] == "2024-05-29T16:26:40Z"
    assert report.overlap_estimated_by == [A, B]
    assert report.overlap_unknown == [] and report.not_itemised == []


def test_cases_shared_between_members_make_a_range_down_to_the_largest_member() -> None:
    aggregates = {A: published(cases(6), A), B: published(cases(5), B, shared=5, earlier=[A])}
    report = coalition_report(coalition_sdg(aggregates, "CO"), {})
    assert figure(report, "cases") == (6, 11, "6–11")
    no_estimate = {A: published(cases(6), A), B: published(cases(7), B, shared=None)}
    unknown = coalition_sdg(no_estimate, "CO")
    assert unknown.overlap_unknown == (B,)
    assert (unknown.figures[key("cases")].low, unknown.figures[key("cases")].high) == (7, 13)


def test_a_members_small_counts_are_not_added_as_if_exact() -> None:
    # B: 9 verified and 2 unverified cases: "withheld" and "<5" in its published figures.
    b_cases = cases(9) + [case(independent_sources=0)] * 2
    aggregates = {A: published(cases(6), A), B: published(b_cases, B, earlier=[A])}
    found = coalition_sdg(aggregates, "CO")
    report = coalition_report(found, {})
    assert figure(report, "cases") == (17, 17, "17")
    assert figure(report, "not_verified.cases") == (None, None, "<5")
    # B's verified cases are 11 less its 1 to 4 others: 7 to 10, never added as exact.
    assert figure(report, "verified.cases") == (13, 16, "13–16")
    # B's unverified cases are not broken down: the coalition's is only bounded.
    assert figure(report, "not_verified.by_category.killing.cases")[2] == "<5"


def test_members_without_sdg_figures_only_widen_the_ranges() -> None:
    old = published(cases(7), B, earlier=[A])
    older = old.model_copy(update={"cells": [c for c in old.cells
                                             if c.dimensions[TABLE] != SDG_TABLE]})
    tiny = published(cases(2, "PE"), C, earlier=[A, B])
    aggregates = {A: published(cases(6), A), B: older, C: tiny}
    found = coalition_sdg(aggregates, "CO")
    assert found.not_itemised == (B, C)
    assert (found.figures[key("cases")].low, found.figures[key("cases")].high) == (13, 17)
    assert found.figures[key("victims")].high is None
    report = coalition_report(found, {B: "Antigua", C: "Pequeña"})
    assert figure(report, "cases") == (13, 17, "13–17")
    assert figure(report, "victims") == (13, None, "≥13")
    woman = figure(report, "verified.by_category.killing.victims_by_sex.woman")
    assert woman == (6, None, "≥6")


def test_a_country_in_a_members_other_row_is_bounded_by_that_row() -> None:
    merged = published(cases(6, "PE") + cases(2) + cases(3, "MX"), B, earlier=[A])
    found = coalition_sdg({A: published(cases(6), A), B: merged}, "CO")
    assert found.not_itemised == (B,)
    assert (found.figures[key("cases")].low, found.figures[key("cases")].high) == (6, 11)


def test_no_members_give_zeros_and_say_so() -> None:
    found = coalition_sdg({}, "CO")
    assert found.figures[key("cases")].high == 0
    rendering = coalition_rendering(found, "es", {})
    assert "Ningún miembro ha publicado cifras todavía." in rendering.notes


def test_the_coalition_report_renders_as_csv_and_html_in_both_languages() -> None:
    aggregates = {A: published(cases(6), A), B: published(cases(2) + cases(6, "PE"), B,
                                                           shared=None)}
    found = coalition_sdg(aggregates, "CO")
    names = {A: "<i>Uno</i>", B: "Dos"}
    html = rendering_html(coalition_rendering(found, "es", names), language="es",
                          title="Indicador ODS 16.10.1 — coalición")
    assert "&lt;i&gt;Uno&lt;/i&gt;" in html and "<i>Uno</i>" not in html
    assert "Hecho con las cifras que publicaron los miembros" in html
    assert "Se desconocen los casos compartidos con otros miembros de: Dos." in html
    english = rendering_csv(coalition_rendering(found, "en", names), "en")
    assert english.splitlines()[1].startswith("CO,2023,verified,killing,Killing,")
    for number in re.findall(r"\d+", english.split("\n", 1)[1].replace("2023", "")):
        assert not 1 <= int(number) <= 4


# --- the coalition's report: properties --------------------------------------------------

member_cases = st.lists(located_cases, max_size=14)


@FAST
@given(st.tuples(member_cases, member_cases, member_cases), st.booleans())
def test_the_coalition_range_holds_the_true_figure_and_never_shows_a_small_count(
    held: tuple[list[Case], list[Case], list[Case]], estimates: bool,
) -> None:
    # Members hold different cases: with estimates, each says it shares none.
    aggregates = {
        member: published(mine, member, shared=0 if estimates else None,
                          earlier=[m for m in MEMBERS if m < member])
        for member, mine in zip(MEMBERS, held, strict=True)
    }
    found = coalition_sdg(aggregates, "CO")
    truth = tally([c for mine in held for c in mine if c.country == "CO"])
    for figure_key, value in found.figures.items():
        assert value.low <= truth[figure_key], figure_key
        assert value.high is None or truth[figure_key] <= value.high, figure_key
    report = coalition_report(found, {})
    for path_value in re.findall(r"'(?:low|high)': (\d+)", str(report.model_dump())):
        assert not 1 <= int(path_value) <= 4
    for shown in re.findall(r"'shown': '([^']*)'", str(report.model_dump())):
        assert all(not 1 <= int(n) <= 4 for n in re.findall(r"\d+", shown)), shown


def test_an_aggregate_with_sdg_cells_travels_as_a_record_payload() -> None:
    aggregate = published(cases(6), A)
    assert any(isinstance(c, AggregateCell) and c.dimensions[TABLE] == SDG_TABLE
               for c in aggregate.cells)
    assert Aggregate.model_validate(aggregate.model_dump(mode="json")) == aggregate
