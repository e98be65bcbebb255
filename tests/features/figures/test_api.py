"""/api/v1 aggregates, SDG report, export and import, on a node served over real HTTP."""

from __future__ import annotations

import base64
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from node.core.store import Role
from schemas.payloads import Aggregate
from tests.support import DATA
from tests.support.api_harness import SAMPLE_CASES, RunningApi, serve_node
from tests.support.offline_node import make_offline_node


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[RunningApi]:
    config = await make_offline_node(tmp_path / "node")
    async with serve_node(config) as running:
        for case in SAMPLE_CASES.values():
            await running.json("POST", "/cases", json=case, expect=201)
        yield running


def import_body(name: str, *, mapping: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "file_type": "csv",
        "content_base64": base64.b64encode((DATA / name).read_bytes()).decode(),
    }
    if mapping:
        body["mapping"] = tomllib.loads((DATA / "import_mapping.toml").read_text("utf-8"))
    return body


async def case_count(api: RunningApi) -> int:
    async with api.node.store.read() as tx:
        return await tx.cases.count()


async def test_aggregates_are_the_suppressed_record_this_node_would_publish(
    api: RunningApi,
) -> None:
    answer = await api.json("GET", "/aggregates?granularity=quarter", Role.viewer)
    aggregate = Aggregate.model_validate(answer)
    assert aggregate.as_of == api.clock.value
    # Six cases in six countries: every country holds fewer than 5 and is merged.
    assert aggregate.other_rows["period"] == ["BY", "CO", "ET", "KE", "PH", "SD"]
    assert {"table": "period"} in [cell.dimensions for cell in aggregate.cells]
    assert all(cell.count != 1 for cell in aggregate.cells)
    within = await api.json("GET", "/aggregates?date_from=2023&date_to=2023", Role.viewer)
    assert within["period"] == "2023"
    bad = await api.json("GET", "/aggregates?date_from=2024&date_to=2023", Role.viewer,
                         expect=422)
    assert bad["error"]["fields"][0]["field"] == "query.date_to"


async def test_the_sdg_report_counts_verified_cases_apart(api: RunningApi) -> None:
    report = await api.json("GET", "/reports/sdg?country=CO&from=2023&to=2023", Role.viewer)
    assert report["verified"]["cases"] == 1 and report["not_verified"]["cases"] == 0
    other = report["verified"]["by_category"]["other_harmful_acts"]
    assert (other["cases"], other["victims"]) == (1, 2)
    assert other["victims_by_group"]["indigenous_leader"] == 1
    assert other["victims_by_sex"] == {**dict.fromkeys(other["victims_by_sex"], 0),
                                       "woman": 1, "collective": 1}
    reversed_period = await api.json("GET", "/reports/sdg?country=CO&from=2024&to=2023",
                                     Role.viewer, expect=422)
    assert reversed_period["error"]["fields"][0]["field"] == "query.to"
    await api.json("GET", "/reports/sdg?country=XX&from=2020&to=2024", Role.viewer, expect=422)


async def test_export_is_for_admins_and_audited(api: RunningApi) -> None:
    await api.json("GET", "/export?format=csv", Role.editor, expect=403)
    exported = await api.json("GET", "/export?format=csv&hxl=true", Role.admin)
    assert exported["media_type"].startswith("text/csv")
    lines = exported["content"].splitlines()
    assert lines[1].startswith("#event+id,") and len(lines) >= 2 + len(SAMPLE_CASES)
    async with api.node.store.read() as tx:
        events = await tx.audit.recent(limit=1)
    assert (events[0].action, events[0].actor, events[0].details) == (
        "case.export", "amaru", {"format": "csv", "count": len(SAMPLE_CASES)})
    schema = await api.json("GET", "/export?format=jsonschema", Role.admin)
    assert schema["file_name"] == "minga-cases.schema.json"
    await api.json("GET", "/export?format=json&hxl=true", Role.admin, expect=422)


async def test_import_checks_by_default_and_commits_all_or_nothing(api: RunningApi) -> None:
    before = await case_count(api)
    checked = await api.json("POST", "/imports", json=import_body("casos_con_errores.csv"))
    assert (checked["rows"], checked["rows_with_problems"], checked["imported"]) == (6, 5, 0)
    assert {(p["row"], p["column"]) for p in checked["problems"]} >= {
        (3, "Fecha"), (4, "Tipo de agresión"), (5, "País"), (6, "Relato")}
    refused = await api.json("POST", "/imports?commit=true",
                             json=import_body("casos_con_errores.csv"))
    assert refused["imported"] == 0 and await case_count(api) == before
    done = await api.json("POST", "/imports?commit=true", json=import_body("casos.csv"))
    assert (done["imported"], done["problems"]) == (3, [])
    assert await case_count(api) == before + 3
    await api.json("POST", "/imports", Role.viewer, json=import_body("casos.csv"), expect=403)


async def test_import_reports_an_unusable_mapping_or_file(api: RunningApi) -> None:
    body = import_body("casos.csv")
    body["mapping"]["columns"]["Fecha"] = "fecha_del_hecho"
    answer = await api.json("POST", "/imports", json=body, expect=422)
    assert "fecha_del_hecho" in answer["error"]["message"]
    no_mapping = await api.json("POST", "/imports", json=import_body("casos.csv", mapping=False),
                                expect=422)
    assert "give a mapping file" in no_mapping["error"]["message"]


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
