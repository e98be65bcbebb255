"""The overlap estimate (node.overlap) and how a survey's answers become one (node.overlap_survey).

Pure: no store, no network."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.features.dedup.service import Answer, CheckState
from node.features.figures.aggregates import TABLE, CoalitionFigure, build_aggregate, coalition_sums
from node.features.figures.overlap import (
    SAMPLE_SIZE,
    asked_the_members_before,
    case_count_figure,
    distinct_cases,
    draw_sample,
    earlier_members,
    estimate_overlap,
    published_report,
)
from node.features.figures.overlap_survey import Survey, is_finished, survey_report
from schemas.payloads import Aggregate, AggregateCell, OverlapReport
from tests.features.figures.test_aggregates import make_case

A, B, C = "o" + "a" * 26, "o" + "b" * 26, "o" + "c" * 26


def test_a_member_asks_only_the_members_before_it() -> None:
    assert earlier_members(C, [B, A, C, B]) == [A, B]
    assert earlier_members(B, [A, C]) == [A]
    assert earlier_members(A, [B, C]) == []


def test_a_report_is_current_only_while_it_asked_exactly_the_members_now_before() -> None:
    report = published_report([A], 6, 6, 0, as_of=0)
    assert asked_the_members_before(report, C, [A])
    assert asked_the_members_before(report, C, [A, C, "o" + "d" * 26])  # after C: not asked
    assert not asked_the_members_before(report, C, [A, B])  # B arrived since
    assert not asked_the_members_before(report, C, [B])  # A left
    assert asked_the_members_before(published_report([], 0, 0, 0, as_of=0), A, [B, C])
    assert not asked_the_members_before(None, A, [B, C])  # none made yet


def test_the_sample_is_every_case_when_few_and_a_random_subset_otherwise() -> None:
    few = [f"case-{i}" for i in range(SAMPLE_SIZE)]
    assert draw_sample(list(reversed(few)), random.Random(1)) == sorted(few)
    many = [f"case-{i:03d}" for i in range(200)]
    drawn = draw_sample(many, random.Random(1))
    assert len(drawn) == SAMPLE_SIZE == len(set(drawn)) and set(drawn) <= set(many)
    assert drawn != draw_sample(many, random.Random(2))


def test_every_case_checked_gives_the_exact_count() -> None:
    found = estimate_overlap(12, 12, 3)
    assert (found.count, found.low, found.high) == (3, 3, 3)
    assert estimate_overlap(0, 0, 0).high == 0


def test_a_sample_gives_an_interval_within_what_the_sample_proves() -> None:
    found = estimate_overlap(200, 30, 6)
    assert found.count == 40
    assert 6 <= found.low < 40 < found.high <= 200 - 24
    nothing = estimate_overlap(200, 30, 0)
    assert (nothing.count, nothing.low) == (0, 0) and 0 < nothing.high < 200 - 30
    unanswered = estimate_overlap(50, 0, 0)
    assert (unanswered.low, unanswered.high) == (0, 50)


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="matched <= checked <= population"):
        estimate_overlap(10, 11, 0)
    with pytest.raises(ValueError):
        estimate_overlap(10, 3, 4)


def test_the_interval_holds_the_true_overlap_in_most_samples() -> None:
    rng = random.Random(20261121)
    population, shared = 300, 45
    cases = [i < shared for i in range(population)]
    held = 0
    for _ in range(400):
        sample = rng.sample(cases, SAMPLE_SIZE)
        found = estimate_overlap(population, SAMPLE_SIZE, sum(sample))
        held += found.low <= shared <= found.high
    assert held >= 0.9 * 400  # a 95% interval; the finite-population correction keeps it honest


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 400).flatmap(lambda n: st.tuples(
    st.just(n), st.integers(0, n).flatmap(lambda k: st.tuples(st.just(k), st.integers(0, k))))))
def test_every_estimate_lies_within_its_bounds(drawn: tuple[int, tuple[int, int]]) -> None:
    population, (checked, matched) = drawn
    found = estimate_overlap(population, checked, matched)
    assert 0 <= found.low <= found.count <= found.high <= population
    assert found.low >= matched and found.high <= population - (checked - matched)


def test_small_overlaps_are_published_without_a_count_under_five() -> None:
    small = published_report([A], 10, 10, 2, as_of=5)
    assert (small.estimate, small.low, small.high, small.every_case_checked) == ("<5", 1, 4, True)
    none = published_report([A, B], 10, 10, 0, as_of=5)
    assert (none.estimate, none.low, none.high) == (0, 0, 0)
    large = published_report([A], 400, 30, 9, as_of=5)
    assert large.estimate == 120 and not large.every_case_checked
    assert large.low >= 5 and large.high >= 5
    for report in (small, none, large):
        assert all(not 1 < bound < 4 for bound in (report.low, report.high))


def test_a_report_with_bounds_out_of_order_is_refused() -> None:
    with pytest.raises(ValueError, match="low: must not exceed high"):
        OverlapReport(with_members=[A], as_of=1, every_case_checked=True, estimate=0, low=6,
                      high=5)


# --- the coalition view ---------------------------------------------------------------------------


def aggregate(cases: int, report: OverlapReport | None) -> Aggregate:
    held = [make_case("CO", "2023", ["killing"], ["journalist"], ["police"], "unknown")] * cases
    return build_aggregate(held, as_of=10, overlap=report)


def counted(aggregates: dict[str, Aggregate]) -> CoalitionFigure:
    found = case_count_figure(coalition_sums(aggregates))
    assert found is not None
    return found


def test_a_case_held_by_two_members_is_counted_once() -> None:
    # A holds 10 cases, B 8 of which 2 are A's too, C 7 of which 1 is A's and 1 B's.
    reports = {
        A: published_report([], 0, 0, 0, as_of=1),
        B: published_report([A], 8, 8, 2, as_of=1),
        C: published_report([A, B], 7, 7, 2, as_of=1),
    }
    members = {A: aggregate(10, reports[A]), B: aggregate(8, reports[B]),
               C: aggregate(7, reports[C])}
    found = distinct_cases(members, counted(members))
    assert (found.counted.low, found.counted.high) == (25, 25)
    assert (found.shared_low, found.shared_high) == (2, 8)  # two "<5" reports: 1-4 each
    assert found.distinct.low == 17 and found.distinct.high == 23
    assert found.distinct.low <= 25 - 4 <= found.distinct.high
    assert found.estimated_by == (A, B, C) and found.unknown == ()


def test_exact_large_overlaps_give_an_exact_distinct_count() -> None:
    members = {A: aggregate(20, published_report([], 0, 0, 0, as_of=1)),
               B: aggregate(12, published_report([A], 12, 12, 6, as_of=1))}
    found = distinct_cases(members, counted(members))
    assert (found.distinct.low, found.distinct.high) == (26, 26)


def test_a_member_without_a_report_may_share_anything_up_to_its_count() -> None:
    members = {A: aggregate(20, published_report([], 0, 0, 0, as_of=1)),
               B: aggregate(12, None)}
    found = distinct_cases(members, counted(members))
    assert found.unknown == (B,) and found.estimated_by == (A,)
    assert (found.shared_low, found.shared_high) == (0, 12)
    assert (found.distinct.low, found.distinct.high) == (20, 32)


def test_a_report_about_other_members_than_the_contributors_is_not_used() -> None:
    # B asked A and C, but C has published nothing: what B shares with C is not in the sum.
    members = {A: aggregate(20, published_report([], 0, 0, 0, as_of=1)),
               B: aggregate(12, published_report([A, C], 12, 12, 6, as_of=1))}
    found = distinct_cases(members, counted(members))
    assert found.unknown == (B,)
    # And C, asking only A although B now contributes too, is unknown as well.
    members[C] = aggregate(9, published_report([A], 9, 9, 0, as_of=1))
    assert distinct_cases(members, counted(members)).unknown == (B, C)


def test_a_member_with_few_cases_counts_as_one_to_four() -> None:
    members = {A: aggregate(20, published_report([], 0, 0, 0, as_of=1)),
               B: aggregate(3, None)}
    found = distinct_cases(members, counted(members))
    assert found.counted.low == 21 and found.counted.high == 24
    assert (found.distinct.low, found.distinct.high) == (20, 24)


def test_the_case_count_figure_is_the_grand_total_of_the_period_table() -> None:
    figures = [CoalitionFigure({TABLE: "violation"}, 3, 3, ()),
               CoalitionFigure({TABLE: "period"}, 7, 7, (A,))]
    found = case_count_figure(figures)
    assert found is not None and found.low == 7
    assert case_count_figure(figures[:1]) is None


def test_a_received_aggregate_without_overlap_still_reads() -> None:
    old = Aggregate(typology_version="1", period="2023", as_of=1,
                    cells=[AggregateCell(dimensions={TABLE: "period"}, count=9)])
    assert old.overlap is None


# --- a survey's answers ---------------------------------------------------------------------------


def check(check_id: str, asked: list[str], answers: dict[str, str | None]) -> CheckState:
    """``answers``: org id -> band, or None for a refusal."""
    return CheckState(check_id=check_id, kind="overlap", created_at=1, asked=asked, answers=[
        Answer(org_id=org, score_band=band or "none", refused=None if band else "rate limit",
               answered_at=2) for org, band in answers.items()])


def test_a_survey_counts_settled_cases_and_matches() -> None:
    survey = Survey(started_at=100, with_members=[A, B], population=4,
                    check_ids=["q1", "q2", "q3", "q4"])
    checks = [
        check("q1", [A, B], {A: "none", B: "high"}),   # matched
        check("q2", [A, B], {A: "none", B: "none"}),   # settled, no match
        check("q3", [A, B], {A: "none"}),               # B has not answered yet
        check("q4", [A, B], {A: "low", B: None}),       # a match, though B refused
    ]
    assert not is_finished(survey, checks, now=101)
    assert is_finished(survey, checks, now=100 + 15 * 60)
    report = survey_report(survey, checks)
    assert report.with_members == [A, B] and report.as_of == 100
    assert not report.every_case_checked  # 3 of 4 settled
    assert report.estimate == "<5" and report.low == 1 and report.high == 4


def test_a_survey_with_nobody_to_ask_reports_no_overlap() -> None:
    survey = Survey(started_at=100, with_members=[], population=40, check_ids=[])
    assert is_finished(survey, [], now=100)
    report = survey_report(survey, [])
    assert (report.estimate, report.low, report.high, report.every_case_checked) == (0, 0, 0,
                                                                                     True)
