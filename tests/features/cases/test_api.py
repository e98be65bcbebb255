"""/api/v1/cases on a real node (init_node against a real homeserver), over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from deploy.homeserver import Homeserver
from node.core.api.times import iso_time
from node.core.store import Role
from schemas.ids import is_uuid7, new_record_id
from tests.support.api_harness import SAMPLE_CASES, USERS, RunningApi, running_api


@pytest.fixture
async def api(homeserver: Homeserver, tmp_path: Path) -> AsyncIterator[RunningApi]:
    async with running_api(homeserver, tmp_path / "node") as running:
        yield running


async def create(api: RunningApi, key: str, role: Role = Role.editor) -> dict[str, Any]:
    created: dict[str, Any] = await api.json("POST", "/cases", role, json=SAMPLE_CASES[key],
                                             expect=201)
    return created


async def ids_for(api: RunningApi, query: str) -> set[str]:
    page = await api.json("GET", f"/cases?{query}", Role.viewer)
    assert page["next_cursor"] is None
    return {item["record_id"] for item in page["items"]}


def problem_fields(body: dict[str, Any]) -> set[str]:
    return {item["field"] for item in body["error"]["fields"]}


async def test_create_then_get_returns_the_stored_record(api: RunningApi) -> None:
    created = await create(api, "cauca")
    assert is_uuid7(created["record_id"])
    assert created["version"] == 1
    assert created["issuer"] == api.node.org_id
    assert created["issued_at"] == iso_time(api.clock.value)
    for field, value in SAMPLE_CASES["cauca"].items():
        assert created["payload"][field] == value
    fetched = await api.json("GET", f"/cases/{created['record_id']}", Role.viewer)
    assert fetched == created


async def test_a_misspelt_field_is_refused_naming_it_and_nothing_is_stored(
    api: RunningApi,
) -> None:
    victim = {**SAMPLE_CASES["addis"]["victims"][0], "gendre": "man"}
    case = {**SAMPLE_CASES["addis"], "impunity_statu": "conviction", "victims": [victim]}
    refused = await api.json("POST", "/cases", json=case, expect=422)
    assert problem_fields(refused) == {"body.impunity_statu", "body.victims[0].gendre"}
    assert await ids_for(api, "") == set()


async def test_a_patch_with_a_misspelt_field_is_refused_and_the_case_unchanged(
    api: RunningApi,
) -> None:
    created = await create(api, "addis")
    one = f"/cases/{created['record_id']}"
    refused = await api.json("PATCH", one, json={"impunity_statu": "conviction"}, expect=422)
    assert problem_fields(refused) == {"body.impunity_statu"}
    assert (await api.json("GET", one, Role.viewer))["version"] == 1


async def test_an_incident_date_in_the_future_is_refused(api: RunningApi) -> None:
    future = {**SAMPLE_CASES["addis"], "incident_date": "2099-03"}
    refused = await api.json("POST", "/cases", json=future, expect=422)
    assert problem_fields(refused) == {"body.incident_date"}
    created = await create(api, "addis")
    one = f"/cases/{created['record_id']}"
    refused = await api.json("PATCH", one, json={"incident_date": "2099"}, expect=422)
    assert problem_fields(refused) == {"body.incident_date"}


@pytest.mark.parametrize("path", ["/cases", "/dedup/checks"])
async def test_a_body_nested_a_thousand_deep_is_400_not_500(api: RunningApi, path: str) -> None:
    body = '{"title": ' + "[" * 1_000 + "]" * 1_000 + "}"
    refused = await api.json("POST", path, data=body, expect=400)
    assert refused["error"]["code"] == "too_deep"


async def test_list_filters_by_country_violation_victim_group_and_period(
    api: RunningApi,
) -> None:
    made = {key: (await create(api, key))["record_id"] for key in SAMPLE_CASES}
    assert await ids_for(api, "") == set(made.values())
    assert await ids_for(api, "country=KE") == {made["nairobi"]}
    assert await ids_for(api, "violation=raid") == {made["khartoum"], made["addis"]}
    assert await ids_for(api, "victim_group=journalist") == {made["nairobi"], made["addis"]}
    assert await ids_for(api, "victim_group=community") == {made["cauca"]}
    assert await ids_for(api, "violation=arbitrary_detention&country=BY") == {made["minsk"]}
    # Periods overlap: "2023-05" (cauca), "2022-11/2023-03" (mindanao), "2023" (khartoum).
    assert await ids_for(api, "date_from=2023-05-20&date_to=2023-06") == {
        made["cauca"], made["khartoum"]}
    assert await ids_for(api, "date_from=2022-12-31&date_to=2022-12-31") == {made["mindanao"]}
    assert await ids_for(api, "date_to=2021") == {made["minsk"], made["addis"]}
    assert await ids_for(api, "date_from=2024-02-15") == set()
    assert await ids_for(api, "country=CO&violation=torture") == set()


async def test_pagination_walks_every_case_once_newest_first(api: RunningApi) -> None:
    made = [(await create(api, key))["record_id"] for key in SAMPLE_CASES]
    seen: list[str] = []
    pages = 0
    cursor = ""
    while True:
        page = await api.json("GET", f"/cases?limit=4{cursor}", Role.viewer)
        pages += 1
        assert len(page["items"]) <= 4
        seen += [item["record_id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert pages == 2
    assert seen == list(reversed(made))


async def test_patch_merges_into_a_new_version(api: RunningApi) -> None:
    created = await create(api, "mindanao")
    path = f"/cases/{created['record_id']}"
    patch = {
        "place": None,
        "risk_level": "high",
        "violations": ["judicial_harassment", "surveillance", "threat_intimidation"],
        "victims": [{"kind": "individual", "name": "Rowena Dumalagan", "gender": "woman",
                     "groups": ["trade_unionist", "woman_hrd"]}],
    }
    updated = await api.json("PATCH", path, Role.admin, json=patch)
    assert updated["version"] == 2
    assert updated["record_id"] == created["record_id"]
    assert updated["created_at"] == created["created_at"]
    assert updated["issued_at"] > created["issued_at"]
    expected = {k: v for k, v in {**created["payload"], **patch}.items() if v is not None}
    assert updated["payload"] == expected
    assert await api.json("GET", path, Role.viewer) == updated
    assert created["record_id"] in await ids_for(api, "victim_group=woman_hrd")
    assert created["record_id"] in await ids_for(api, "violation=threat_intimidation")
    history = await api.json("GET", path + "/versions", Role.viewer)
    assert [(v["version"], v["author"]) for v in history["versions"]] == [
        (1, USERS[Role.editor]), (2, USERS[Role.admin])]


async def test_a_merge_patch_replaces_arrays(api: RunningApi) -> None:
    created = await api.json("POST", "/cases", json=SAMPLE_CASES["nairobi"], expect=201)
    victims = [{"kind": "individual", "name": "Otieno Baraka", "gender": "man"}]
    patch = {"victims": victims, "place": None}
    updated = await api.json("PATCH", f"/cases/{created['record_id']}", json=patch)
    assert updated["payload"]["victims"] == [{**victims[0], "groups": []}]
    assert "place" not in updated["payload"]


async def test_expected_version_guards_against_lost_updates(api: RunningApi) -> None:
    created = await create(api, "cauca")
    path = f"/cases/{created['record_id']}"
    first = await api.json("PATCH", path + "?expected_version=1", json={"risk_level": "critical"})
    assert first["version"] == 2
    stale = await api.call("PATCH", path + "?expected_version=1", json={"risk_level": "low"})
    assert stale.status == 409
    assert (await stale.json())["error"]["code"] == "version_conflict"
    current = await api.json("GET", path, Role.viewer)
    assert (current["version"], current["payload"]["risk_level"]) == (2, "critical")


async def test_delete_wipes_the_case_and_leaves_only_404s(api: RunningApi) -> None:
    kept = await create(api, "nairobi")
    gone = await create(api, "khartoum")
    path = f"/cases/{gone['record_id']}"
    answer = await api.call("DELETE", path)
    assert answer.status == 204
    for method, suffix in (("GET", ""), ("GET", "/versions"), ("DELETE", "")):
        body = await api.json(method, path + suffix, expect=404)
        assert body["error"]["code"] == "deleted"
    assert (await api.call("PATCH", path, json={"risk_level": "low"})).status == 404
    assert await ids_for(api, "") == {kept["record_id"]}


async def test_unknown_or_malformed_ids_are_404(api: RunningApi) -> None:
    for record_id in (new_record_id(), "not-a-uuid"):
        for method in ("GET", "DELETE"):
            body = await api.json(method, f"/cases/{record_id}", expect=404)
            assert body["error"]["code"] == "not_found"
            assert "not-a-uuid" not in body["error"]["message"]
        assert (await api.call("PATCH", f"/cases/{record_id}", json={})).status == 404


def _without(case: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in case.items() if k != field}


BAD_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("bad country", {**SAMPLE_CASES["cauca"], "country": "Colombia"}, "body.country"),
    ("missing narrative", _without(SAMPLE_CASES["cauca"], "narrative"), "body.narrative"),
    ("unknown violation", {**SAMPLE_CASES["cauca"], "violations": ["death_threat", "kiling"]},
     "body.violations[1]"),
    ("float in an int field", {**SAMPLE_CASES["cauca"], "independent_sources": 2.0},
     "body.independent_sources"),
    ("impossible date", {**SAMPLE_CASES["cauca"], "incident_date": "2023-02-30"},
     "body.incident_date"),
    ("bad victim group", {**SAMPLE_CASES["cauca"], "victims": [
        {"kind": "individual", "name": "María Fernanda Yatacué Pito", "groups": ["activist"]}]},
     "body.victims[0].groups[0]"),
    ("partners without named consent", {**SAMPLE_CASES["cauca"], "consent_partners": [
        "o" + "a" * 26]}, "body.consent_partners"),
]


async def test_bad_cases_are_422_naming_the_field_without_echoing(
    api: RunningApi, caplog: pytest.LogCaptureFixture
) -> None:
    for label, case, field in BAD_CASES:
        answer = await api.call("POST", "/cases", json=case)
        text = await answer.text()
        assert answer.status == 422, label
        assert problem_fields(json.loads(text)) == {field}, label
        assert "Yatacué" not in text and "minga por el territorio" not in text, label
    assert await ids_for(api, "") == set()
    assert "Yatacué" not in caplog.text


async def test_bad_patch_is_422_and_changes_nothing(api: RunningApi) -> None:
    created = await create(api, "minsk")
    path = f"/cases/{created['record_id']}"
    for patch, field in (
        ({"victims": []}, "body.victims"),
        ({"independent_sources": 1.5}, "body.independent_sources"),
        ({"narrative": None}, "body.narrative"),
        ({"victims": [{"kind": "group"}]}, "body.victims[0].kind"),
    ):
        body = await api.json("PATCH", path, json=patch, expect=422)
        assert problem_fields(body) == {field}, patch
    assert (await api.call("PATCH", path, json=["not", "an", "object"])).status == 422
    assert (await api.call("PATCH", path, data=b"{oops")).status == 400
    assert (await api.json("GET", path, Role.viewer))["version"] == 1


BAD_QUERIES = [
    ("country=XX", "query.country"),
    ("country=co", "query.country"),
    ("violation=kiling", "query.violation"),
    ("victim_group=activist", "query.victim_group"),
    ("date_from=2023-13", "query.date_from"),
    ("date_to=yesterday", "query.date_to"),
    ("date_from=2024&date_to=2023-12", "query.date_to"),
    ("limit=0", "query.limit"),
    ("limit=101", "query.limit"),
    ("limit=ten", "query.limit"),
    ("cursor=bm90IGEgY3Vyc29y", "query.cursor"),
    ("colour=red", "query.colour"),
    ("expected_version=1", "query.expected_version"),
]


async def test_bad_list_queries_are_422_naming_the_parameter(api: RunningApi) -> None:
    for query, field in BAD_QUERIES:
        body = await api.json("GET", f"/cases?{query}", Role.viewer, expect=422)
        assert problem_fields(body) == {field}, query


async def test_roles_and_tokens(api: RunningApi) -> None:
    assert (await api.call("GET", "/cases", None)).status == 401
    assert (await api.call("POST", "/cases", None, json=SAMPLE_CASES["addis"])).status == 401
    bad_token = {"Authorization": "Bearer minga_not-a-real-token"}
    assert (await api.client.get("/api/v1/cases", headers=bad_token)).status == 401
    assert (await api.call("POST", "/cases", Role.viewer, json=SAMPLE_CASES["addis"])
            ).status == 403
    created = await create(api, "addis")
    path = f"/cases/{created['record_id']}"
    forbidden = await api.json("PATCH", path, Role.viewer, json={"risk_level": "low"},
                               expect=403)
    assert forbidden["error"]["code"] == "forbidden"
    assert (await api.call("DELETE", path, Role.viewer)).status == 403
    assert (await api.json("GET", path, Role.viewer))["version"] == 1
    assert await ids_for(api, "") == {created["record_id"]}


async def test_writes_are_audit_logged_with_user_and_id_only(api: RunningApi) -> None:
    created = await create(api, "khartoum")
    record_id = created["record_id"]
    await api.json("PATCH", f"/cases/{record_id}", Role.admin, json={"risk_level": "high"})
    assert (await api.call("DELETE", f"/cases/{record_id}")).status == 204
    async with api.node.store.read() as tx:
        events = await tx.audit.recent(limit=10)
    writes = [(e.actor, e.action, e.target) for e in reversed(events)
              if e.action.startswith("case.")]
    assert writes == [
        (USERS[Role.editor], "case.create", record_id),
        (USERS[Role.admin], "case.update", record_id),
        (USERS[Role.editor], "case.delete", record_id),
    ]
    details = json.dumps([e.details for e in events], ensure_ascii=False)
    assert "عثمان" not in details and "Eltayeb" not in details


async def test_openapi_lists_every_endpoint_and_its_refs_resolve(api: RunningApi) -> None:
    document = await api.json("GET", "/openapi.json", None)
    operations = {(path, method) for path, item in document["paths"].items() for method in item}
    served = {
        (route.resource.canonical, route.method.lower())
        for route in api.client.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/v1/")
        and route.resource.canonical != "/api/v1/openapi.json"
        and route.method != "HEAD"
    }
    assert operations == served, "the OpenAPI document and the served routes differ"
    assert {
        ("/api/v1/status", "get"),
        ("/api/v1/members", "get"),
        ("/api/v1/cases", "post"),
        ("/api/v1/cases", "get"),
        ("/api/v1/cases/{record_id}", "get"),
        ("/api/v1/cases/{record_id}", "patch"),
        ("/api/v1/cases/{record_id}", "delete"),
        ("/api/v1/cases/{record_id}/versions", "get"),
    } <= operations
    schemas = document["components"]["schemas"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for item in node for r in refs(item)]
        return []

    found = refs(document)
    assert "#/components/schemas/Case" in found
    for ref in found:
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas
    cases = document["paths"]["/api/v1/cases"]
    post_body = cases["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert post_body == {"$ref": "#/components/schemas/Case"}
    assert {"narrative", "violations", "victims"} <= set(schemas["Case"]["required"])
    assert {p["name"] for p in cases["get"]["parameters"]} == {
        "limit", "cursor", "country", "violation", "victim_group", "date_from", "date_to"}
    patch = document["paths"]["/api/v1/cases/{record_id}"]["patch"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(patch["responses"])
