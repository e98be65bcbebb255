"""Aggregates: counting cases, suppression that cannot be undone from totals, coalition sums.

The suppression checks do not trust the flow computation in ``node.features.figures.suppression``:
an independent
brute-force search lists every value a hidden count can take given only what is published (the
shown counts, ``"<5"`` meaning 1..4, ``"withheld"`` meaning 5 or more, and every row and column
sum), and compares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.features.figures.aggregates import (
    CASE_COUNT_TABLES,
    COUNTRY,
    OTHER_COUNTRIES,
    SDG_TABLE,
    TABLE,
    Dimension,
    Granularity,
    build_aggregate,
    coalition_sums,
    column_values,
    period_between,
    render_aggregate,
)
from node.features.figures.suppression import Entry, Mark, Table, TableError, suppress
from schemas.case import Case
from schemas.dates import DateSpan
from schemas.payloads import Aggregate
from schemas.records import RecordKind, build_record, parse_record, record_to_wire

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ORG = "o" + "a" * 26
RECORD_ID = "01890a5d-ac96-774b-bcce-b302099a8057"

Published = Mapping[Entry, int | Mark]


# --- an independent brute-force attacker ------------------------------------------------

def _lines(rows: int, columns: int) -> list[list[tuple[Entry, int]]]:
    """Every row and column equation: counts minus their total equal zero."""
    lines = [[((i, j), 1) for j in range(columns)] + [((i, columns), -1)]
             for i in range(rows + 1)]
    lines += [[((i, j), 1) for i in range(rows)] + [((rows, j), -1)] for j in range(columns + 1)]
    return lines


def _domains(published: Published, bound: int) -> dict[Entry, tuple[int, int]]:
    domains = {}
    for entry, shown in published.items():
        if shown is Mark.SMALL:
            domains[entry] = (1, 4)
        elif shown is Mark.WITHHELD:
            domains[entry] = (5, bound)
        else:
            assert isinstance(shown, int)
            domains[entry] = (shown, shown)
    return domains


def possible_values(published: Published, rows: int, columns: int, target: Entry) -> set[int]:
    """The values of hidden ``target`` for which some table fits everything published."""
    grand_total = published[(rows, columns)]
    assert isinstance(grand_total, int)
    lines = _lines(rows, columns)
    found = set()
    for value in range(1, 5):
        domains = _domains(published, grand_total)
        domains[target] = (value, value)
        if _solvable(domains, lines):
            found.add(value)
    return found


def _solvable(domains: dict[Entry, tuple[int, int]], lines: list[list[tuple[Entry, int]]]) -> bool:
    free = sorted(entry for entry, (low, high) in domains.items() if low != high)
    chosen = {entry: low for entry, (low, high) in domains.items() if low == high}

    def consistent() -> bool:
        for line in lines:
            low = high = 0
            for entry, sign in line:
                if entry in chosen:
                    low += sign * chosen[entry]
                    high += sign * chosen[entry]
                else:
                    a, b = domains[entry]
                    low, high = (low + a, high + b) if sign > 0 else (low - b, high - a)
            if not low <= 0 <= high:
                return False
        return True

    def search(position: int) -> bool:
        if not consistent():
            return False
        if position == len(free):
            return True
        entry = free[position]
        for value in range(domains[entry][0], domains[entry][1] + 1):
            chosen[entry] = value
            if search(position + 1):
                return True
        del chosen[entry]
        return False

    return search(0)


# --- suppression of one table -----------------------------------------------------------

def _with_publishable_row_totals(rows: list[list[int]]) -> list[list[int]]:
    """Row totals are 0 or at least 5 in real use (small countries are merged first)."""
    return [[row[0] + 5, *row[1:]] if 0 < sum(row) < 5 else row for row in rows]


tables = st.integers(1, 3).flatmap(
    lambda columns: st.lists(
        st.lists(st.sampled_from([0, 0, 1, 1, 2, 3, 4, 5, 6, 8, 11]),
                 min_size=columns, max_size=columns),
        min_size=1, max_size=3,
    )
).map(_with_publishable_row_totals)


def check_table_is_safe(rows: int, columns: int, published: Published,
                        truth: Table | None = None) -> None:
    small = [entry for entry, shown in published.items() if shown is Mark.SMALL]
    for entry in small:
        values = possible_values(published, rows, columns, entry)
        assert truth is None or truth.value(entry) in values
        assert len(values) >= 2, f"{entry} can be worked out: {values} from {published}"


@FAST
@given(tables)
def test_no_small_count_can_be_worked_out_from_what_is_published(counts: list[list[int]]) -> None:
    table = Table.of(counts)
    result = suppress(table)
    published = {entry: result.shown(entry) for entry in result.published_entries()}
    if result.whole_table_withheld:
        assert result.unprotected
        assert all(table.is_shared_total(entry) for entry in published)
        return
    for entry in table.entries():
        value, shown = table.value(entry), published[entry]
        if 1 <= value <= 4:
            assert shown is Mark.SMALL
        elif shown is Mark.WITHHELD:
            assert value >= 5 and not table.is_shared_total(entry)
        else:
            assert shown == value
    check_table_is_safe(table.rows, table.columns, published, table)
    for entry, (low, high) in result.ranges.items():
        assert possible_values(published, table.rows, table.columns, entry) == set(
            range(low, high + 1))


def test_two_ones_beside_a_large_count_are_not_given_away_by_the_row_total() -> None:
    table = Table.of([[1, 1, 10], [6, 0, 9]])
    result = suppress(table)
    assert result.shown((0, 0)) is Mark.SMALL and result.shown((0, 1)) is Mark.SMALL
    assert result.shown((0, 3)) == 12  # the row total is published as it is
    published = {entry: result.shown(entry) for entry in table.entries()}
    check_table_is_safe(table.rows, table.columns, published, table)


def test_every_small_count_keeps_its_whole_range_when_the_table_allows_it() -> None:
    table = Table.of([[1, 9, 12], [8, 2, 10], [7, 11, 4]])
    result = suppress(table)
    assert {entry: result.ranges[entry] for entry in result.ranges} == {
        (0, 0): (1, 4), (1, 1): (1, 4), (2, 2): (1, 4)}


def test_a_row_that_cannot_be_protected_withholds_the_table() -> None:
    # 5 + 1 = 6 is published; the 5 could only be withheld as "5 or more", so the 1 is exact.
    result = suppress(Table.of([[5, 1]]))
    assert result.whole_table_withheld
    assert result.unprotected == ((0, 1), (1, 1))  # the 1 and its column total
    assert result.published_entries() == [(0, 2), (1, 2)]


def test_small_row_totals_must_be_merged_first() -> None:
    with pytest.raises(TableError, match="merge small rows"):
        suppress(Table.of([[2, 1], [6, 6]]))


def test_zeros_and_large_counts_alone_are_all_shown() -> None:
    result = suppress(Table.of([[0, 7], [5, 0]]))
    assert not result.marks
    assert result.shown((0, 0)) == 0 and result.shown((2, 2)) == 12


# --- aggregates of cases ----------------------------------------------------------------

COUNTRIES = ("CO", "PE", "MX")


def make_case(country: str, date: str, violations: Sequence[str], groups: Sequence[str],
              perpetrators: Sequence[str], impunity: str) -> Case:
    return Case.model_validate({
        "incident_date": date, "country": country, "narrative": "hechos",
        "violations": list(violations),
        "victims": [{"kind": "individual", "groups": list(groups)}],
        "perpetrators": [{"category": category} for category in perpetrators],
        "impunity_status": impunity, "consent_level": "coalition", "risk_level": "low",
    })


def _sets(values: Sequence[str], min_size: int = 0) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), min_size=min_size, max_size=2, unique=True)


cases_strategy = st.builds(
    make_case,
    country=st.sampled_from(COUNTRIES),
    date=st.sampled_from(["2022", "2022-03", "2023-05-17", "2023-11"]),
    violations=_sets(["killing", "death_threat", "arbitrary_detention"], min_size=1),
    groups=_sets(["journalist", "woman_hrd"]),
    perpetrators=_sets(["police", "company"]),
    impunity=st.sampled_from(["unknown", "not_reported", "prosecution"]),
)
case_lists = st.lists(cases_strategy, max_size=36)


def true_count(cases: Sequence[Case], aggregate: Aggregate, dimensions: Mapping[str, str],
               granularity: Granularity = Granularity.YEAR) -> int:
    """Count a cell straight from the cases (``other`` rows as the aggregate lists them)."""
    table = Dimension(dimensions[TABLE])
    country = dimensions.get(COUNTRY)
    countries = (set(aggregate.other_rows.get(table.value, [])) if country == OTHER_COUNTRIES
                 else {country})
    value = dimensions.get(table.value)
    return sum(
        1
        for case in cases if country is None or case.country in countries
        for column in column_values(case, table, granularity) if value in (None, column)
    )


def published_table(aggregate: Aggregate, table: str) -> tuple[int, int, Published]:
    """Rebuild one published table from the cells: its rows, columns and what is shown."""
    cells = [cell for cell in aggregate.cells if cell.dimensions[TABLE] == table]
    rows = sorted({c.dimensions[COUNTRY] for c in cells if COUNTRY in c.dimensions},
                  key=lambda row: (row == OTHER_COUNTRIES, row))
    columns = sorted({c.dimensions[table] for c in cells if table in c.dimensions})
    shown: dict[Entry, int | Mark] = {
        (i, j): 0 for i in range(len(rows) + 1) for j in range(len(columns) + 1)}
    for cell in cells:
        i = rows.index(cell.dimensions[COUNTRY]) if COUNTRY in cell.dimensions else len(rows)
        j = columns.index(cell.dimensions[table]) if table in cell.dimensions else len(columns)
        shown[(i, j)] = cell.count if isinstance(cell.count, int) else Mark(cell.count)
    return len(rows), len(columns), shown


@FAST
@given(case_lists)
def test_published_aggregates_never_reveal_a_small_count(cases: list[Case]) -> None:
    aggregate = build_aggregate(cases, as_of=1_717_000_000)
    for cell in aggregate.cells:
        if cell.dimensions[TABLE] == SDG_TABLE:
            continue  # tests/features/figures/test_sdg_publishing.py
        truth = true_count(cases, aggregate, cell.dimensions)
        if cell.count == Mark.SMALL.value:
            assert 1 <= truth <= 4
        elif cell.count == Mark.WITHHELD.value:
            assert truth >= 5
        else:
            assert cell.count == truth
    if 0 < len(cases) < 5:
        return
    for table in Dimension:
        if table.value in aggregate.withheld_tables:
            continue
        check_table_is_safe(*published_table(aggregate, table.value))


@FAST
@given(case_lists)
def test_country_totals_are_published_as_they_are_and_agree_between_tables(
    cases: list[Case],
) -> None:
    aggregate = build_aggregate(cases, as_of=1_717_000_000)
    totals: dict[str, set[int | str]] = {}
    for cell in aggregate.cells:
        if cell.dimensions[TABLE] in CASE_COUNT_TABLES:
            row = cell.dimensions.get(COUNTRY, "all")
            if cell.dimensions.keys() <= {TABLE, COUNTRY} and row != OTHER_COUNTRIES:
                totals.setdefault(row, set()).add(cell.count)
    for row, counts in totals.items():
        assert len(counts) == 1, row
        (count,) = counts
        if 0 < len(cases) < 5:
            assert count == Mark.SMALL.value
        else:
            assert isinstance(count, int)


def test_countries_with_few_cases_are_merged_into_other() -> None:
    cases = [make_case("CO", "2023", ["killing"], [], [], "unknown")] * 6 + [
        make_case("PE", "2023", ["killing"], [], [], "unknown")] * 2 + [
        make_case("MX", "2022", ["death_threat"], [], [], "unknown")] * 3
    aggregate = build_aggregate(cases, as_of=1_717_000_000)
    rows = {cell.dimensions.get(COUNTRY) for cell in aggregate.cells}
    assert rows == {"CO", OTHER_COUNTRIES, None}
    assert aggregate.other_rows["period"] == ["MX", "PE"]
    assert {"table": "period", "country": "other", "period": "2023"} in [
        cell.dimensions for cell in aggregate.cells if cell.count == Mark.SMALL.value]


def test_fewer_than_five_cases_publish_only_small_grand_totals() -> None:
    cases = [make_case("CO", "2023", ["killing"], ["journalist"], ["police"], "unknown")] * 3
    aggregate = build_aggregate(cases, as_of=1_717_000_000)
    assert [(cell.dimensions, cell.count) for cell in aggregate.cells] == [
        ({"table": "period"}, "<5"), ({"table": "impunity_status"}, "<5")]
    assert aggregate.withheld_tables == [dimension.value for dimension in Dimension]


def test_no_cases_publish_zero_totals() -> None:
    aggregate = build_aggregate([], as_of=1_717_000_000)
    assert [(cell.dimensions, cell.count) for cell in aggregate.cells] == [
        ({"table": dimension.value}, 0) for dimension in Dimension]
    assert aggregate.period == "2024"


def test_cells_carry_the_sdg_category_and_the_perpetrator_type() -> None:
    cases = [make_case("CO", "2023-02", ["killing", "death_threat"], ["journalist"],
                       ["police", "company"], "prosecution")] * 7
    aggregate = build_aggregate(cases, as_of=1_717_000_000, granularity=Granularity.QUARTER)
    dimensions = [cell.dimensions for cell in aggregate.cells]
    assert {"table": "violation", "country": "CO", "violation": "death_threat",
            "sdg_category": "other_harmful_acts"} in dimensions
    assert {"table": "perpetrator_category", "perpetrator_category": "company",
            "perpetrator_type": "non_state"} in dimensions
    assert {"table": "period", "country": "CO", "period": "2023-Q1"} in dimensions


def test_the_period_keeps_the_cases_that_started_in_it() -> None:
    cases = [make_case("CO", year, ["killing"], [], [], "unknown")
             for year in ("2021", "2022-06", "2023-01", "2024")] * 5
    period = period_between(cases, "2022", "2023")
    assert period == DateSpan.parse("2022/2023")
    aggregate = build_aggregate(cases, as_of=1_717_000_000, period=period)
    totals = {cell.count for cell in aggregate.cells if cell.dimensions == {"table": "period"}}
    assert totals == {10}
    assert aggregate.period == "2022/2023"
    assert period_between(cases, "2023", None) == DateSpan.parse("2023/2024")


def test_an_aggregate_travels_as_a_record_payload() -> None:
    cases = [make_case("CO", "2023", ["killing"], ["woman_hrd"], ["police"], "unknown")] * 9 + [
        make_case("CO", "2022", ["death_threat"], [], [], "prosecution")] * 2 + [
        make_case("PE", "2023", ["killing"], [], [], "unknown")] * 3
    aggregate = build_aggregate(cases, as_of=1_717_000_000)
    counts = {cell.count for cell in aggregate.cells}
    assert {"<5", "withheld"} <= counts and aggregate.other_rows
    record = build_record(ORG, aggregate, record_id=RECORD_ID, issued_at=1_717_000_001)
    assert parse_record(record_to_wire(record)).payload == aggregate
    assert record.record_kind is RecordKind.AGGREGATE


def test_the_text_rendering_names_columns_and_markers() -> None:
    cases = [make_case("CO", "2023", ["killing"], [], [], "unknown")] * 6 + [
        make_case("CO", "2022", ["death_threat"], [], [], "unknown")] * 2
    text = render_aggregate(build_aggregate(cases, as_of=1_717_000_000),
                            lambda dimension, code: code.upper())
    assert "KILLING" in text and "<5" in text and "withheld" in text


# --- coalition sums ----------------------------------------------------------------------

MEMBERS = ("o" + "b" * 26, "o" + "c" * 26, "o" + "d" * 26)


@FAST
@given(st.tuples(case_lists, case_lists, case_lists))
def test_coalition_sums_bound_the_true_sums_and_are_exact_where_nothing_is_hidden(
    member_cases: tuple[list[Case], list[Case], list[Case]],
) -> None:
    aggregates = {member: build_aggregate(cases, as_of=1_717_000_000)
                  for member, cases in zip(MEMBERS, member_cases, strict=True)}
    every_case = [case for cases in member_cases for case in cases]
    for figure in coalition_sums(aggregates):
        if figure.dimensions.get(COUNTRY) == OTHER_COUNTRIES:
            truth = sum(true_count(cases, aggregates[member], figure.dimensions)
                        for member, cases in zip(MEMBERS, member_cases, strict=True))
        else:
            truth = true_count(every_case, aggregates[MEMBERS[0]], figure.dimensions)
        assert figure.low <= truth
        assert figure.high is None or truth <= figure.high
        if figure.exact:
            assert figure.low == truth


def test_coalition_sums_are_exact_when_no_member_hides_anything() -> None:
    def member(country: str, killings: int, threats: int) -> Aggregate:
        cases = ([make_case(country, "2023", ["killing"], [], [], "unknown")] * killings
                 + [make_case(country, "2023", ["death_threat"], [], [], "unknown")] * threats)
        return build_aggregate(cases, as_of=1_717_000_000)

    aggregates = {MEMBERS[0]: member("CO", 5, 7), MEMBERS[1]: member("CO", 6, 0),
                  MEMBERS[2]: member("PE", 9, 5)}
    figures = {tuple(sorted(f.dimensions.items())): f for f in coalition_sums(aggregates)}
    killings = figures[(("country", "CO"), ("sdg_category", "killing"), ("table", "violation"),
                        ("violation", "killing"))]
    assert (killings.low, killings.high, killings.members) == (11, 11, MEMBERS[:2])
    everything = figures[(("table", "period"),)]
    assert everything.exact and everything.low == 32


def test_a_small_member_makes_the_sum_a_range() -> None:
    big = [make_case("CO", "2023", ["killing"], [], [], "unknown")] * 8
    small = [make_case("CO", "2023", ["killing"], [], [], "unknown")] * 2
    figures = coalition_sums({MEMBERS[0]: build_aggregate(big, as_of=1),
                              MEMBERS[1]: build_aggregate(small, as_of=1)})
    grand = next(f for f in figures if f.dimensions == {"table": "period"})
    assert (grand.low, grand.high, grand.exact) == (9, 12, False)
    row = next(f for f in figures if f.dimensions == {"table": "period", "country": "CO"})
    assert (row.low, row.high) == (8, None)
