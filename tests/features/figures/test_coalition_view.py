"""The coalition view: latest aggregate per member, sums by country and year, CSV and SVG charts."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from node.features.figures.aggregates import COUNTRY, TABLE, CoalitionFigure, build_aggregate
from node.features.figures.charts import bar_chart, time_series
from node.features.figures.coalition_view import (
    Bar,
    aggregate_from_claims,
    by_country,
    by_period,
    coalition_view,
    latest_per_member,
    shown,
    view_csv,
)
from schemas.case import Case
from tests.features.figures.test_aggregates import FAST, MEMBERS, case_lists, make_case

SVG = "{http://www.w3.org/2000/svg}"


def cases(country: str, year: str, count: int) -> list[Case]:
    return [make_case(country, year, ["killing"], [], [], "unknown")] * count


def test_the_view_equals_the_true_sums_where_no_member_hides_anything() -> None:
    held = {MEMBERS[0]: cases("CO", "2022", 6) + cases("PE", "2023", 5),
            MEMBERS[1]: cases("CO", "2022", 7) + cases("CO", "2023", 8),
            MEMBERS[2]: cases("PE", "2023", 9)}
    view = coalition_view({m: build_aggregate(c, as_of=100) for m, c in held.items()})
    countries = {bar.label: (bar.low, bar.high, bar.shown) for bar in by_country(view)}
    assert countries == {"CO": (21, 21, "21"), "PE": (14, 14, "14")}
    years = {bar.label: bar.shown for bar in by_period(view)}
    assert years == {"2022": "13", "2023": "22"}
    grand = next(f for f in view.figures if f.dimensions == {TABLE: "period"})
    assert grand.members == MEMBERS and grand.low == grand.high == 35
    assert [c.org_id for c in view.contributors] == sorted(MEMBERS)
    assert {c.as_of for c in view.contributors} == {100}


def test_the_latest_aggregate_of_each_member_counts() -> None:
    old = build_aggregate(cases("CO", "2022", 6), as_of=100)
    new = build_aggregate(cases("CO", "2022", 9), as_of=200)
    other = build_aggregate(cases("CO", "2022", 5), as_of=50)
    latest = latest_per_member([(MEMBERS[0], new), (MEMBERS[0], old), (MEMBERS[1], other)])
    assert latest == {MEMBERS[0]: new, MEMBERS[1]: other}


def test_an_aggregate_is_read_back_from_its_claims_without_the_header() -> None:
    aggregate = build_aggregate(cases("CO", "2022", 6), as_of=100)
    claims = {"iss": MEMBERS[0], "record_id": "x", **aggregate.model_dump(mode="json")}
    assert aggregate_from_claims(claims) == aggregate


def figure(low: int, high: int | None) -> CoalitionFigure:
    return CoalitionFigure({TABLE: "period"}, low, high, MEMBERS[:1])


def test_sums_that_may_be_small_are_never_shown_as_a_number() -> None:
    assert [shown(figure(1, 4)), shown(figure(2, 4)), shown(figure(0, 0))] == ["<5", "<5", "0"]
    assert [shown(figure(9, 12)), shown(figure(5, None)), shown(figure(12, 12))] == [
        "9–12", "≥5", "12"]
    assert [shown(figure(2, 8)), shown(figure(0, None))] == ["≤8", "?"]


def _numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


@FAST
@given(st.tuples(case_lists, case_lists, case_lists))
def test_no_figure_csv_cell_or_chart_shows_a_count_between_1_and_4(
    member_cases: tuple[list[Case], list[Case], list[Case]],
) -> None:
    view = coalition_view({member: build_aggregate(held, as_of=1_717_000_000)
                           for member, held in zip(MEMBERS, member_cases, strict=True)})
    for row in csv.DictReader(io.StringIO(view_csv(view))):
        for column in ("low", "high", "shown"):
            assert all(n == 0 or n >= 5 for n in _numbers(row[column])), row
    for bar in [*by_country(view), *by_period(view)]:
        assert all(n == 0 or n >= 5 for n in _numbers(bar.shown)), bar


def test_the_csv_lists_every_figure_with_its_members() -> None:
    view = coalition_view({MEMBERS[0]: build_aggregate(cases("CO", "2022", 6), as_of=1),
                           MEMBERS[1]: build_aggregate(cases("CO", "2022", 2), as_of=1)})
    rows = list(csv.DictReader(io.StringIO(view_csv(view))))
    assert len(rows) == len(view.figures) + 1
    # Neither member reported its overlap: B's 1 to 4 cases may all be A's too.
    distinct = rows[-1]
    assert (distinct["table"], distinct["low"], distinct["high"]) == ("distinct_cases", "6", "10")
    assert distinct["shown"] == "6–10" and distinct["members"] == ""
    co = next(r for r in rows if r["table"] == "period" and r["country"] == "CO"
              and r["value"] == "")
    assert co["shown"] == "≥6" and co["low"] == "6" and co["high"] == ""
    assert co["members"] == ";".join(MEMBERS[:2])
    assert {r[COUNTRY] for r in rows} <= {"", "CO"}


HOSTILE = '<script>alert("x")</script> & \'Ñ\''


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


BARS: Sequence[Bar] = (Bar("CO", 21, 21, "21"), Bar(HOSTILE, 9, 12, "9–12"),
                       Bar("MX", 5, None, "≥5"))


def test_the_bar_chart_is_well_formed_and_escapes_its_labels() -> None:
    svg = bar_chart(BARS, f"Cases {HOSTILE}")
    root = _parse(svg)
    assert "<script" not in svg
    assert HOSTILE in _texts(root) and "9–12" in _texts(root)
    assert root.findtext(f"{SVG}title") == f"Cases {HOSTILE}"
    widths = [float(r.get("width", "0")) for r in root.iter(f"{SVG}rect")
              if r.get("class") == "bar"]
    assert widths[0] > widths[1] > widths[2] > 0
    assert len([r for r in root.iter(f"{SVG}rect") if r.get("class") == "uncertain"]) == 2


def test_the_time_series_is_well_formed_and_escapes_its_labels() -> None:
    svg = time_series(BARS, HOSTILE)
    root = _parse(svg)
    assert "<script" not in svg
    assert HOSTILE in _texts(root)
    assert len(list(root.iter(f"{SVG}circle"))) == 3
    assert root.find(f"{SVG}polyline") is not None
    assert len([x for x in root.iter(f"{SVG}line") if x.get("class") == "uncertain"]) == 2


def test_empty_charts_are_still_well_formed() -> None:
    assert _parse(bar_chart([], "none")).tag == f"{SVG}svg"
    assert _parse(time_series([], "none")).tag == f"{SVG}svg"


def test_a_member_with_no_cases_is_a_contributor_that_adds_nothing() -> None:
    view = coalition_view({MEMBERS[0]: build_aggregate(cases("CO", "2022", 6), as_of=1),
                           MEMBERS[1]: build_aggregate([], as_of=2)})
    assert [(c.org_id, c.as_of) for c in view.contributors] == [(MEMBERS[0], 1), (MEMBERS[1], 2)]
    assert [(bar.label, bar.shown) for bar in by_country(view)] == [("CO", "6")]
    co = next(f for f in view.figures if f.dimensions == {TABLE: "period", COUNTRY: "CO"})
    assert co.members == MEMBERS[:1]
