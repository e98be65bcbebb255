"""The API layer: auth, roles, validation errors naming fields, JSON errors, OpenAPI from models."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from node.core.api.framework import (
    MAX_JSON_DEPTH,
    Api,
    Call,
    Endpoint,
    FileAnswer,
    Link,
    Principal,
    Role,
    json_nesting_depth,
)

TOKENS = {"v": Principal("vera", Role.viewer), "e": Principal("ed", Role.editor)}


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    count: int = Field(ge=0)


class Note(BaseModel):
    """Like a record model: unknown fields are kept (for peers), so the API must refuse them."""

    model_config = ConfigDict(extra="allow")
    text: str
    things: list[Thing] = []


class ThingQuery(BaseModel):
    limit: int = Field(default=10, ge=1, le=100)


class ThingList(BaseModel):
    things: list[Thing]
    limit: int


async def create_thing(call: Call[Thing, Any]) -> Thing:
    return call.body


async def list_things(call: Call[Any, ThingQuery]) -> ThingList:
    return ThingList(things=[], limit=call.query.limit)


async def create_note(call: Call[Note, Any]) -> Note:
    return call.body


async def download(call: Call[Any, Any]) -> FileAnswer:
    return FileAnswer("año,n\n2026,5\n".encode(), "text/csv; charset=utf-8", "cifras año.csv",
                      headers={"Minga-Note": "two rows"})


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
    api.add(Endpoint("GET", "/file", download, "a file", files=("text/csv; charset=utf-8",),
                     file_headers=("Minga-Note",)))
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
    assert set(document["paths"]) == {"/api/v1/things", "/api/v1/boom", "/api/v1/file"}
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


@pytest.fixture
async def notes() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    api = Api(title="test", version="1")
    api.add(Endpoint("POST", "/things", create_thing, "create", Role.editor, body=Thing,
                     response=Thing, status=201))
    api.add(Endpoint("POST", "/notes", create_note, "create", Role.editor, body=Note,
                     response=Note, status=201))
    app = web.Application()
    api.mount(app, authenticate)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_a_field_no_model_knows_is_refused_even_where_records_keep_them(
    notes: TestClient[Any, Any],
) -> None:
    kept = await notes.post("/api/v1/notes", json={"text": "a"}, headers=_auth("e"))
    assert kept.status == 201
    answer = await notes.post("/api/v1/notes", json={"text": "a", "txet": "b"},
                               headers=_auth("e"))
    assert answer.status == 422
    fields = (await answer.json())["error"]["fields"]
    assert [f["field"] for f in fields] == ["body.txet"]
    assert "unknown field" in fields[0]["problem"]


@pytest.mark.parametrize("depth", [65, 1_000, 100_000])
async def test_a_body_nested_too_deep_is_400_naming_the_limit(
    notes: TestClient[Any, Any], depth: int
) -> None:
    body = "[" * depth + "]" * depth
    for path in ("/api/v1/things", "/api/v1/notes"):
        answer = await notes.post(path, data=body, headers=_auth("e"))
        assert answer.status == 400
        error = (await answer.json())["error"]
        assert error["code"] == "too_deep" and str(MAX_JSON_DEPTH) in error["message"]


async def test_a_body_at_the_depth_limit_is_parsed(notes: TestClient[Any, Any]) -> None:
    inner: Any = {"name": "a", "count": 1}
    body = {"text": "deep enough", "things": [inner]}
    deep: Any = "x"
    for _ in range(MAX_JSON_DEPTH - 2):
        deep = [deep]
    answer = await notes.post("/api/v1/notes", json={**body, "extra": deep},
                               headers=_auth("e"))
    assert answer.status == 422  # parsed, then refused for its unknown field, not its depth
    assert (await answer.json())["error"]["fields"][0]["field"] == "body.extra"


async def test_a_body_over_the_size_limit_is_413_naming_it(
    notes: TestClient[Any, Any],
) -> None:
    answer = await notes.post("/api/v1/things", data=b"[" + b" " * (1024**2 + 10) + b"]",
                               headers=_auth("e"))
    assert answer.status == 413
    error = (await answer.json())["error"]
    assert error["code"] == "too_large" and "1048576" in error["message"]


_JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.text(
    alphabet=st.sampled_from('ab"\\[]{}:,é'), max_size=8)
_JSON = st.recursive(_JSON_LEAVES, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(alphabet='k"\\[{', max_size=3), inner,
                                       max_size=3), max_leaves=30)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_the_depth_counted_before_parsing_is_the_depth_of_what_parses(value: Any) -> None:
    raw = json.dumps(value, ensure_ascii=False).encode()
    assert json_nesting_depth(raw, 1_000) == _depth(value)


async def test_a_query_parameter_no_model_knows_is_refused(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/api/v1/things?limit=5", headers=_auth("v"))).status == 200
    answer = await client.get("/api/v1/things?limt=5", headers=_auth("v"))
    assert answer.status == 422
    assert [f["field"] for f in (await answer.json())["error"]["fields"]] == ["query.limt"]


async def test_a_number_too_long_to_read_is_400_naming_the_limit(
    notes: TestClient[Any, Any],
) -> None:
    answer = await notes.post("/api/v1/things", data='{"name": "a", "count": ' + "9" * 5_000 + "}",
                              headers=_auth("e"))
    assert answer.status == 400
    error = (await answer.json())["error"]
    assert error["code"] == "number_too_long" and "4300" in error["message"]


async def test_a_file_is_served_as_itself_with_its_type_and_download_name(
    client: TestClient[Any, Any],
) -> None:
    answer = await client.get("/api/v1/file", headers=_auth("v"))
    assert answer.status == 200
    assert await answer.read() == "año,n\n2026,5\n".encode()
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert answer.headers["Content-Disposition"] == (
        "attachment; filename=\"cifras a?o.csv\"; filename*=UTF-8''cifras%20a%C3%B1o.csv")
    assert answer.headers["Minga-Note"] == "two rows"
    document = await (await client.get("/api/v1/openapi.json", headers=_auth("v"))).json()
    success = document["paths"]["/api/v1/file"]["get"]["responses"]["200"]
    assert success["content"] == {"text/csv; charset=utf-8": {
        "schema": {"type": "string", "format": "binary"}}}
    assert set(success["headers"]) == {"Minga-Note"}


async def _thing(call: Call[Any, Any]) -> Thing:
    return Thing(name="x", count=1)


def test_operation_ids_are_unique_and_links_name_real_operations() -> None:
    api = Api(title="test", version="1")
    api.add(Endpoint("POST", "/things", create_thing, "create", Role.editor, body=Thing,
                     response=Thing, status=201,
                     links=(Link("GetThing", "GET", "/things/{name}", {"name": "name"}),)))
    api.add(Endpoint("GET", "/things/{name}", _thing, "one", response=Thing))
    api.add(Endpoint("GET", "/others/{name}", _thing, "one too", response=Thing))
    document = api.openapi()
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert sorted(ids) == ["get_others_name", "get_things_name", "post_things"]
    links = document["paths"]["/api/v1/things"]["post"]["responses"]["201"]["links"]
    assert links == {"GetThing": {"operationId": "get_things_name",
                                  "parameters": {"name": "$response.body#/name"}}}


@pytest.mark.parametrize(("link", "problem"), [
    (Link("Lost", "GET", "/nowhere/{name}", {"name": "name"}), "names no endpoint"),
    (Link("Short", "GET", "/things/{name}", {}), "leaves out ['name']"),
])
def test_a_link_to_nothing_or_without_its_parameters_is_a_programming_error(
    link: Link, problem: str,
) -> None:
    api = Api(title="test", version="1")
    api.add(Endpoint("POST", "/things", create_thing, "create", body=Thing, response=Thing,
                     links=(link,)))
    api.add(Endpoint("GET", "/things/{name}", _thing, "one", response=Thing))
    with pytest.raises(ValueError, match=re.escape(problem)):
        api.openapi()


async def test_an_endpoint_with_a_body_refuses_a_missing_or_empty_one(
    client: TestClient[Any, Any],
) -> None:
    for data in (None, b"", b"  \n"):
        answer = await client.post("/api/v1/things", data=data, headers=_auth("e"))
        assert answer.status == 400
        error = (await answer.json())["error"]
        assert error["code"] == "bad_json" and "needs a JSON body" in error["message"]
