"""/api/v1/export and /api/v1/imports: cases to and from files, on a node served over real
HTTP."""

from __future__ import annotations

import base64
import json
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from node.core.store import Role
from node.features.cases.exporting import cases_csv, own_case_records
from node.features.cases.files_api import WITHHELD_HEADER
from tests.support import DATA
from tests.support.api_harness import SAMPLE_CASES, RunningApi
from tests.support.offline_node import serving_sample_cases


@pytest.fixture
async def api(tmp_path: Path, store_location: Path | str) -> AsyncIterator[RunningApi]:
    async with serving_sample_cases(tmp_path / "node", store_at=store_location) as running:
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


async def test_export_is_for_admins_and_audited(api: RunningApi) -> None:
    await api.json("GET", "/export?format=csv", Role.editor, expect=403)
    exported = await api.file("/export?format=csv", Role.admin)
    assert exported.media_type == "text/csv; charset=utf-8"
    assert exported.file_name == "minga-cases.csv" and WITHHELD_HEADER not in exported.headers
    assert len(exported.text.splitlines()) >= 1 + len(SAMPLE_CASES)
    async with api.node.store.read() as tx:
        events = await tx.audit.recent(limit=1)
    assert (events[0].action, events[0].actor, events[0].details) == (
        "case.export", "amaru", {"format": "csv", "count": len(SAMPLE_CASES)})
    schema = await api.file("/export?format=jsonschema", Role.admin)
    assert schema.file_name == "minga-cases.schema.json"
    assert json.loads(schema.text)["$schema"].startswith("https://json-schema.org/")
    whole = await api.file("/export?format=json", Role.admin)
    assert (whole.media_type, whole.file_name) == ("application/json", "minga-cases.json")
    assert len(json.loads(whole.text)) == len(SAMPLE_CASES)
    await api.json("GET", "/export?format=json&hxl=true", Role.admin, expect=422)


async def test_an_hxl_export_publishes_only_public_cases_and_says_what_it_left_out(
    api: RunningApi,
) -> None:
    published = await api.file("/export?format=csv&hxl=true", Role.admin)
    assert published.file_name == "minga-cases-hxl.csv"
    lines = published.text.splitlines()
    assert lines[1].startswith("#event+id,")
    public = [case for case in SAMPLE_CASES.values() if case["consent_level"] == "public"]
    assert len(lines) == 2 + len(public)
    for case in SAMPLE_CASES.values():
        if case["consent_level"] != "public":
            assert case["narrative"] not in published.text
    withheld = json.loads(published.headers[WITHHELD_HEADER])
    assert withheld["cases"] == len(SAMPLE_CASES) - len(public)
    assert "risk_level" not in lines[0] and "consent_level" not in lines[0]


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


def csv_body(text: str, mapping: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"file_type": "csv",
                            "content_base64": base64.b64encode(text.encode()).decode()}
    if mapping is not None:
        body["mapping"] = mapping
    return body


async def test_importing_the_same_file_again_duplicates_nothing(api: RunningApi) -> None:
    before = await case_count(api)
    first = await api.json("POST", "/imports?commit=true", json=import_body("casos.csv"))
    assert (first["committed"], first["new"], first["imported"]) == (True, 3, 3)
    checked = await api.json("POST", "/imports", json=import_body("casos.csv"))
    assert (checked["committed"], checked["new"], checked["updated"], checked["unchanged"]) == (
        False, 0, 0, 3)
    assert [(o["status"], o["record_id"]) for o in checked["outcomes"]] == [
        ("unchanged", o["record_id"]) for o in first["outcomes"]]
    again = await api.json("POST", "/imports?commit=true", json=import_body("casos.csv"))
    assert (again["imported"], again["unchanged"], again["warnings"]) == (0, 3, [])
    assert await case_count(api) == before + 3


async def test_an_edited_row_is_an_update_and_an_appended_row_is_new(api: RunningApi) -> None:
    first = await api.json("POST", "/imports?commit=true", json=import_body("casos.csv"))
    peru = first["outcomes"][1]["record_id"]
    text = (DATA / "casos.csv").read_text("utf-8").replace(
        "durante una protesta", "durante una protesta en Puno") + (
        "GT-0009;2024-05;Guatemala;;Amenaza de muerte;;;Sindicalista;;;sin identificar;;0;"
        "Llamadas a la sede del sindicato.;anonymised\n")
    mapping = import_body("casos.csv")["mapping"]
    checked = await api.json("POST", "/imports", json=csv_body(text, mapping))
    assert checked["problems"] == []
    assert [(o["row"], o["status"], o["changed_fields"]) for o in checked["outcomes"]] == [
        (2, "unchanged", []), (3, "updated", ["narrative"]), (4, "unchanged", []),
        (5, "new", [])]
    done = await api.json("POST", "/imports?commit=true", json=csv_body(text, mapping))
    assert (done["imported"], done["new"], done["updated"]) == (2, 1, 1)
    case = await api.json("GET", f"/cases/{peru}")
    assert case["version"] == 2 and "en Puno" in case["payload"]["narrative"]


async def test_reimporting_our_own_export_changes_nothing(api: RunningApi) -> None:
    async with api.node.store.read() as tx:
        exported = cases_csv(await own_case_records(tx))
    before = await case_count(api)
    done = await api.json("POST", "/imports?commit=true", json=csv_body(exported, None))
    assert (done["problems"], done["imported"], done["unchanged"]) == ([], 0, len(SAMPLE_CASES))
    assert await case_count(api) == before


async def test_a_mapping_without_a_key_column_is_warned_about(api: RunningApi) -> None:
    body = import_body("casos.csv")
    del body["mapping"]["key_column"]
    checked = await api.json("POST", "/imports", json=body)
    assert len(checked["warnings"]) == 1 and "key_column" in checked["warnings"][0]
    assert "Código" in checked["ignored_columns"]
