"""The SDG indicator 16.10.1 report: counting rules, small-cell suppression, CSV and HTML.

The suppression checks do not trust ``node.features.figures.suppression``: an independent
brute-force attacker lists every value a ``"<5"`` figure can take given what the report shows
beside it (the other figures of its breakdown, the total they break down, and the rules: "<5"
is 1 to 4, "withheld" 5 or more, no part exceeds its total) and must find at least two.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.features.figures.sdg_report import (
    BREAKDOWNS,
    CATEGORIES,
    FIGURES,
    ReportError,
    SdgReport,
    key,
    report_csv,
    report_html,
    report_values,
    sdg_report,
    tally,
)
from node.features.figures.suppression import Mark, suppress_breakdown
from schemas.case import Case
from tests.features.figures.test_aggregates import FAST


def case(**fields: Any) -> Case:
    base: dict[str, Any] = {
        "incident_date": "2023-04", "country": "CO", "narrative": "Relato reservado",
        "violations": ["killing"], "consent_level": "coalition", "risk_level": "high",
        "victims": [{"kind": "individual", "name": "Nombre Reservado", "gender": "woman",
                     "groups": ["journalist"]}],
    }
    return Case.model_validate({**base, **fields})


CASES = [
    # verified: two sources; killing + torture, two victims
    case(independent_sources=2, violations=["killing", "torture"], victims=[
        {"kind": "individual", "gender": "man", "groups": ["trade_unionist", "defender"]},
        {"kind": "individual", "groups": []}]),
    # verified: other harmful acts twice over, one collective victim
    case(independent_sources=3, violations=["death_threat", "harassment"],
         victims=[{"kind": "collective", "groups": ["community"]}]),
    # not verified: one source
    case(independent_sources=1),
    # outside the report: another country, another year
    case(country="PE", independent_sources=2),
    case(incident_date="2021", independent_sources=2),
]
IN_REPORT = CASES[:3]


# --- counting ----------------------------------------------------------------------------

def test_verified_cases_are_counted_apart_and_by_category() -> None:
    counts = tally(IN_REPORT)
    assert (counts[key("cases")], counts[key("victims")]) == (3, 4)
    assert (counts[key("cases", "verified")], counts[key("victims", "verified")]) == (2, 3)
    assert (counts[key("cases", "not_verified")], counts[key("victims", "not_verified")]) == (
        1, 1)
    assert (counts[key("cases", "verified", "killing")],
            counts[key("victims", "verified", "killing")]) == (1, 2)
    killing = {name: counts[key("victims", "verified", "killing", group=name)]
               for name in ("trade_unionist", "defender", "unspecified")}
    assert killing == {"trade_unionist": 1, "defender": 1, "unspecified": 1}
    assert counts[key("victims", "verified", "killing", sex="man")] == 1
    assert counts[key("victims", "verified", "killing", sex="unknown")] == 1
    assert counts[key("victims", "verified", "torture", sex="man")] == 1
    assert counts[key("cases", "verified", "other_harmful_acts")] == 1
    assert counts[key("victims", "verified", "other_harmful_acts", sex="collective")] == 1
    assert counts[key("cases", "verified", "enforced_disappearance")] == 0
    assert counts[key("victims", "not_verified", "killing", group="journalist")] == 1


def test_the_period_must_not_end_before_it_starts() -> None:
    with pytest.raises(ReportError, match="--to"):
        sdg_report(CASES, country="CO", from_year=2024, to_year=2023)


# --- suppression of one breakdown: test vectors ------------------------------------------

S, W = Mark.SMALL, Mark.WITHHELD


@pytest.mark.parametrize(("counts", "total", "additive", "expected"), [
    # Two ones beside a 10: the 10 is withheld, else each 1 follows from the other and the total.
    ([1, 1, 10], 12, True, [S, S, W]),
    # 6 + 2 = 8: with the 6 withheld the 2 may be 1 to 3.
    ([6, 2, 0], 8, True, [W, S, 0]),
    # 5 + 1 = 6 cannot be protected: withholding the 5 (5 or more) leaves the 1 exact.
    ([5, 1], 6, True, None),
    # Groups overlap (they cover the total): 3 + 6 >= 7 leaves the 3 anywhere in 1..4.
    ([3, 6, 0], 7, False, [S, 6, 0]),
    # 4 + 4 >= 8, each at most 4: both are exactly 4.
    ([4, 4], 8, False, None),
    ([0, 7, 5], 12, True, [0, 7, 5]),
])
def test_a_breakdown_is_suppressed_as_expected(counts: list[int], total: int, additive: bool,
                                               expected: list[int | Mark] | None) -> None:
    assert suppress_breakdown(counts, total, additive=additive) == expected


# --- the attacker ------------------------------------------------------------------------

def possible_values(shown: Sequence[int | Mark], total: int, target: int,
                    *, additive: bool) -> set[int]:
    """Every value of hidden ``shown[target]`` for which the breakdown fits what is shown."""
    domains = []
    for value in shown:
        if value is Mark.SMALL:
            domains.append(range(1, 5))
        elif value is Mark.WITHHELD:
            domains.append(range(5, total + 1))
        else:
            assert isinstance(value, int)
            domains.append(range(value, value + 1))

    def fits(position: int, partial: int) -> bool:
        if position == len(domains):
            return partial == total if additive else partial >= total
        if position == target:
            return fits(position + 1, partial + chosen)
        return any(fits(position + 1, partial + value) for value in domains[position]
                   if not additive or partial + value <= total)

    found = set()
    for chosen in domains[target]:
        if fits(0, 0):
            found.add(chosen)
    return found


def attack(published: Mapping[Any, int | Mark | None], truth: Mapping[Any, int]) -> None:
    """Try to work out every ``"<5"`` figure from its breakdown and the total it breaks down."""
    for breakdown in BREAKDOWNS:
        children = [published[child] for child in breakdown.children]
        if any(value is None for value in children):
            assert all(value is None for value in children), "a breakdown is shown whole or not"
            continue
        parent = published[breakdown.parent]
        assert isinstance(parent, int) and not isinstance(parent, Mark), (
            "only a figure shown exactly is broken down")
        shown = [value for value in children if value is not None]
        for index, child in enumerate(breakdown.children):
            if shown[index] is Mark.SMALL:
                values = possible_values(shown, truth[breakdown.parent], index,
                                         additive=breakdown.additive)
                assert truth[child] in values
                assert len(values) >= 2, f"{child} can be worked out: {values}"


def published_of(report: SdgReport) -> dict[Any, int | Mark | None]:
    return {figure: Mark(value) if isinstance(value, str) else value
            for figure, value in report_values(report).items()}


def check_report(cases: Sequence[Case], report: SdgReport) -> None:
    truth = tally(cases)
    published = published_of(report)
    for figure, value in published.items():
        if value is Mark.SMALL:
            assert 1 <= truth[figure] <= 4
        elif value is Mark.WITHHELD:
            assert truth[figure] >= 5
        elif value is not None:
            assert value == truth[figure] and not 1 <= value <= 4
    attack(published, truth)


victims = st.lists(st.fixed_dictionaries({
    "kind": st.just("individual"),
    "gender": st.sampled_from(["woman", "man"]),
    "groups": st.lists(st.sampled_from(["journalist", "defender", "trade_unionist"]),
                       max_size=2, unique=True),
}), min_size=1, max_size=3)
report_cases = st.builds(
    lambda sources, violations, people: case(independent_sources=sources,
                                             violations=violations, victims=people),
    st.sampled_from([0, 1, 2, 3]),
    st.lists(st.sampled_from(["killing", "torture", "death_threat"]), min_size=1, max_size=2,
             unique=True),
    victims,
)


@FAST
@given(st.lists(report_cases, max_size=30))
def test_no_suppressed_figure_can_be_worked_out_from_the_report(cases: list[Case]) -> None:
    report = sdg_report(cases, country="CO", from_year=2023, to_year=2023)
    check_report(cases, report)


def test_counts_of_one_by_group_and_sex_are_never_printed() -> None:
    report = sdg_report(CASES, country="CO", from_year=2022, to_year=2023)
    assert (report.cases, report.victims) == ("<5", "<5")
    assert report.verified.cases is None and report.verified.by_category["killing"].cases is None
    assert all(value is None
               for value in report.verified.by_category["killing"].victims_by_sex.values())
    assert [(s.figure, s.reason.value) for s in report.suppressed] == [
        ("cases", "under_threshold"), ("victims", "under_threshold"),
        ("verified.cases", "not_broken_down"), ("not_verified.cases", "not_broken_down"),
        ("verified.victims", "not_broken_down"), ("not_verified.victims", "not_broken_down")]
    assert "cannot be worked out" not in report.suppressed[0].explanation
    check_report(IN_REPORT, report)


def test_a_small_section_is_shown_as_under_five_with_its_neighbour_withheld() -> None:
    cases = [case(independent_sources=2, victims=[{"kind": "individual", "gender": "woman"}])
             ] * 9 + [case(independent_sources=0)] * 2
    report = sdg_report(cases, country="CO", from_year=2023, to_year=2023)
    assert (report.cases, report.victims) == (11, 11)
    assert (report.verified.cases, report.not_verified.cases) == ("withheld", "<5")
    assert report.not_verified.by_category["killing"].cases is None
    reasons = {s.figure: s.reason.value for s in report.suppressed}
    assert reasons["not_verified.cases"] == "under_threshold"
    assert reasons["verified.cases"] == "complementary"
    check_report(cases, report)


def test_large_figures_are_shown_as_they_are() -> None:
    cases = [case(independent_sources=2)] * 6
    report = sdg_report(cases, country="CO", from_year=2023, to_year=2023)
    killing = report.verified.by_category["killing"]
    assert (killing.cases, killing.victims, killing.victims_by_sex["woman"]) == (6, 6, 6)
    assert killing.victims_by_sex["man"] == 0 and killing.victims_by_group["journalist"] == 6
    assert report.not_verified.cases == 0 and report.suppressed == []


# --- CSV and HTML ------------------------------------------------------------------------

BIG = [case(independent_sources=2, violations=["killing", "torture"])] * 6 + [
    case(independent_sources=2, violations=["torture"],
         victims=[{"kind": "individual", "gender": "man", "groups": ["journalist"]}])] * 2


def test_the_csv_has_one_row_per_section_and_category_with_markers() -> None:
    report = sdg_report(BIG, country="CO", from_year=2022, to_year=2023)
    rows = list(csv.DictReader(io.StringIO(report_csv(report, "es"))))
    assert len(rows) == 2 * (len(CATEGORIES) + 1) + 1
    torture = next(r for r in rows if r["section"] == "verified"
                   and r["sdg_category"] == "torture")
    assert (torture["sdg_category_label"], torture["cases"], torture["victims"]) == (
        "Tortura", "8", "8")
    assert (torture["victims_sex_woman"], torture["victims_sex_man"]) == ("reservado", "<5")
    everything = rows[-1]
    assert (everything["section"], everything["cases"], everything["victims"]) == (
        "all", "8", "8")
    for row in rows:
        for column, value in row.items():
            if column.startswith(("cases", "victims")) and (value or "").isdigit():
                assert not 1 <= int(value) <= 4, (column, row)


def test_the_page_is_escaped_translated_explains_suppression_and_has_no_case_content() -> None:
    report = sdg_report(BIG, country="CO", from_year=2022, to_year=2023)
    page = report_html(report, language="es", organisation="<b>Colectivo & Cía</b>",
                       generated_at=1_717_000_000)
    assert "&lt;b&gt;Colectivo &amp; Cía&lt;/b&gt;" in page
    assert "Casos verificados" in page and "Desaparición forzada" in page
    assert "2024-05-29 16:26 UTC" in page and "@page" in page
    assert "No se muestra ninguna cifra menor que 5" in page and "reservado" in page
    assert "1 cifra(s) mostradas como" in page
    assert "Nombre Reservado" not in page and "Relato reservado" not in page
    english = report_html(report)
    assert "Verified cases" in english and "Generated" not in english
    assert "No count under 5 is shown" in english and "withheld" in english


def test_every_figure_has_a_path_in_the_report() -> None:
    report = sdg_report(BIG, country="CO", from_year=2022, to_year=2023)
    assert set(report_values(report)) == set(FIGURES)
