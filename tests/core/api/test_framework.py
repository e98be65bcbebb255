"""The API layer: auth, roles, validation errors naming fields, JSON errors, OpenAPI from models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel, ConfigDict, Field

from node.core.api.framework import Api, Call, Endpoint, Principal, Role

TOKENS = {"v": Principal("vera", Role.viewer), "e": Principal("ed", Role.editor)}


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    count: int = Field(ge=0)


class ThingQuery(BaseModel):
    limit: int = Field(default=10, ge=1, le=100)


class ThingList(BaseModel):
    things: list[Thing]
    limit: int


async def create_thing(call: Call[Thing, Any]) -> Thing:
    return call.body


async def list_things(call: Call[Any, ThingQuery]) -> ThingList:
    return ThingList(things=[], limit=call.query.limit)


async def explode(call: Call[Any, Any]) -> None:
    raise RuntimeError("secret case content must not leak")


async def authenticate(token: str) -> Principal | None:
    return TOKENS.get(token)


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    api = Api(title="test", version="1")
    api.add(Endpoint("POST", "/things", create_thing, "create", Role.editor, body=Thing,
                     response=Thing, status=201))
    api.add(Endpoint("GET", "/things", list_things, "list", query=ThingQuery,
                     response=ThingList))
    api.add(Endpoint("GET", "/boom", explode, "fails"))
    app = web.Application()
    api.mount(app, authenticate)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_no_token_is_401_and_unknown_token_too(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/api/v1/things")).status == 401
    answer = await client.get("/api/v1/things", headers=_auth("nope"))
    assert answer.status == 401
    assert (await answer.json())["error"]["code"] == "unauthenticated"


async def test_viewer_cannot_write(client: TestClient[Any, Any]) -> None:
    answer = await client.post("/api/v1/things", json={"name": "a", "count": 1},
                               headers=_auth("v"))
    assert answer.status == 403
    assert "editor" in (await answer.json())["error"]["message"]


async def test_valid_body_is_accepted(client: TestClient[Any, Any]) -> None:
    answer = await client.post("/api/v1/things", json={"name": "a", "count": 1},
                               headers=_auth("e"))
    assert answer.status == 201
    assert await answer.json() == {"name": "a", "count": 1}


async def test_bad_fields_are_422_naming_each_field_without_echoing(
    client: TestClient[Any, Any],
) -> None:
    answer = await client.post("/api/v1/things",
                               json={"name": "", "count": -1, "colour": "Ana María"},
                               headers=_auth("e"))
    assert answer.status == 422
    body = await answer.json()
    fields = {item["field"] for item in body["error"]["fields"]}
    assert fields == {"body.name", "body.count", "body.colour"}
    assert "Ana María" not in await answer.text()


async def test_bad_json_and_bad_query(client: TestClient[Any, Any]) -> None:
    answer = await client.post("/api/v1/things", data=b"{not json", headers=_auth("e"))
    assert answer.status == 400
    answer = await client.get("/api/v1/things?limit=1000", headers=_auth("v"))
    assert answer.status == 422
    assert (await answer.json())["error"]["fields"][0]["field"] == "query.limit"


async def test_internal_error_is_json_and_content_free(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    answer = await client.get("/api/v1/boom", headers=_auth("v"))
    assert answer.status == 500
    assert "secret" not in await answer.text()
    assert "secret" not in caplog.text


async def test_openapi_describes_every_endpoint_with_resolvable_refs(
    client: TestClient[Any, Any],
) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {"/api/v1/things", "/api/v1/boom"}
    post = document["paths"]["/api/v1/things"]["post"]
    assert {"201", "401", "403", "422"} <= set(post["responses"])
    schemas = document["components"]["schemas"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for item in node for r in refs(item)]
        return []

    for ref in refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas
    params = document["paths"]["/api/v1/things"]["get"]["parameters"]
    assert params[0]["name"] == "limit" and params[0]["schema"]["maximum"] == 100
