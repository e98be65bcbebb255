"""/api/v1 aggregates and the SDG report, on a node served over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from node.core.api.times import iso_time
from node.core.store import Role
from schemas.payloads import Aggregate
from tests.support.api_harness import RunningApi
from tests.support.offline_node import serving_sample_cases


@pytest.fixture
async def api(tmp_path: Path, store_location: Path | str) -> AsyncIterator[RunningApi]:
    async with serving_sample_cases(tmp_path / "node", store_at=store_location) as running:
        yield running


async def test_aggregates_are_the_suppressed_record_this_node_would_publish(
    api: RunningApi,
) -> None:
    answer = await api.json("GET", "/aggregates?granularity=quarter", Role.viewer)
    assert answer["as_of"] == iso_time(api.clock.value)
    aggregate = Aggregate.model_validate({**answer, "as_of": api.clock.value})
    # Six cases in six countries: every country holds fewer than 5 and is merged.
    assert aggregate.other_rows["period"] == ["BY", "CO", "ET", "KE", "PH", "SD"]
    assert {"table": "period"} in [cell.dimensions for cell in aggregate.cells]
    assert all(cell.count != 1 for cell in aggregate.cells)
    within = await api.json("GET", "/aggregates?date_from=2023&date_to=2023", Role.viewer)
    assert within["period"] == "2023"
    bad = await api.json("GET", "/aggregates?date_from=2024&date_to=2023", Role.viewer,
                         expect=422)
    assert bad["error"]["fields"][0]["field"] == "query.date_to"


async def test_the_sdg_report_of_one_case_shows_no_count_under_five(api: RunningApi) -> None:
    # One case in Colombia in 2023, with two victims: it used to print 1s by group and sex.
    report = await api.json("GET", "/reports/sdg?country=CO&from=2023&to=2023", Role.viewer)
    assert (report["cases"], report["victims"]) == ("<5", "<5")
    assert report["verified"]["cases"] is None
    other = report["verified"]["by_category"]["other_harmful_acts"]
    assert other["victims_by_group"]["indigenous_leader"] is None
    assert set(other["victims_by_sex"].values()) == {None}
    assert {s["figure"]: s["reason"] for s in report["suppressed"]}["cases"] == "under_threshold"
    reversed_period = await api.json("GET", "/reports/sdg?country=CO&from=2024&to=2023",
                                     Role.viewer, expect=422)
    assert reversed_period["error"]["fields"][0]["field"] == "query.to"
    await api.json("GET", "/reports/sdg?country=XX&from=2020&to=2024", Role.viewer, expect=422)


async def test_the_openapi_document_lists_the_endpoints(api: RunningApi) -> None:
    document = await api.json("GET", "/openapi.json", None)
    for path in ("/api/v1/aggregates", "/api/v1/reports/sdg", "/api/v1/export",
                 "/api/v1/imports"):
        assert path in document["paths"]
    names = {p["name"] for p in document["paths"]["/api/v1/reports/sdg"]["get"]["parameters"]}
    assert names == {"country", "from", "to"}


async def test_the_publishing_schedule_is_for_admins(api: RunningApi) -> None:
    assert await api.json("GET", "/aggregates/schedule", Role.admin) == {"every_days": 0}
    await api.json("GET", "/aggregates/schedule", Role.editor, expect=403)
    refused = await api.json("PUT", "/aggregates/schedule", Role.admin,
                             json={"every_days": 400}, expect=422)
    assert [f["field"] for f in refused["error"]["fields"]] == ["body.every_days"]
    await api.json("PUT", "/aggregates/schedule", Role.admin, json={"every_days": 7, "x": 1},
                   expect=422)
    assert await api.json("PUT", "/aggregates/schedule", Role.admin,
                          json={"every_days": 7}) == {"every_days": 7}
    assert await api.json("GET", "/aggregates/schedule", Role.admin) == {"every_days": 7}
