"""Hostile request bodies against every operation of a real node's API: never a 5xx, and every
refusal says what was wrong (a field, or a limit)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from node.assembly import node_registry
from node.core.api.app import build_api
from node.core.store import Role
from schemas.ids import new_record_id
from tests.support.api_harness import SAMPLE_CASES, RunningApi, serve_node
from tests.support.offline_node import make_offline_node

CASE = json.dumps(SAMPLE_CASES["nairobi"])
HOSTILE: dict[str, bytes] = {
    "deep nesting": b"[" * 5_000 + b"]" * 5_000,
    "deep nesting in a field": (CASE[:-1] + ', "title": ' + "[" * 2_000 + "]" * 2_000 + "}"
                                ).encode(),
    "a huge integer": (CASE[:-1] + ', "independent_sources": ' + "9" * 5_000 + "}").encode(),
    "a huge float": (CASE[:-1] + ', "independent_sources": 1e400}').encode(),
    "NaN": (CASE[:-1] + ', "independent_sources": NaN}').encode(),
    "a lone surrogate": CASE.replace('"Journalist', '"\\ud800Journalist').encode(),
    "duplicate keys": (CASE[:-1] + ', "country": "KE", "country": "ZZ"}').encode(),
    "invalid UTF-8": b'{"title": "\xff\xfe\xfd", "country": "KE"}',
    "a 1.5 MB string": json.dumps({"title": "a" * 1_500_000}).encode(),
    "a 10 MB string": json.dumps({"title": "a" * 10_000_000}).encode(),
    "not an object": b"[1, 2, 3]",
    "null": b"null",
    "truncated": CASE[: len(CASE) // 2].encode(),
    "control characters": (CASE[:-1] + ', "place": "a\\u0000b\\u001f"}').encode(),
}
EXPLAINED_WITHOUT_FIELDS = {"bad_json", "too_deep", "too_large", "number_too_long", "not_found",
                            "deleted", "conflict", "version_conflict", "not_shared",
                            "retracted", "no_coalition", "homeserver_unavailable", "unreadable"}


@pytest.fixture(scope="module")
def operations() -> list[tuple[str, str]]:
    """Every (method, path) that takes a body, read from the API's own OpenAPI document."""
    class _Nobody:
        org_id = "o" + "x" * 26

    document = build_api(_Nobody(), node_registry().endpoints).openapi()  # type: ignore[arg-type]
    return sorted((method.upper(), path.removeprefix("/api/v1"))
                  for path, item in document["paths"].items()
                  for method, operation in item.items() if "requestBody" in operation)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[RunningApi]:
    config = await make_offline_node(tmp_path / "node")
    async with serve_node(config) as running:
        yield running


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: new_record_id(), path)


async def test_no_hostile_body_gets_a_5xx_and_every_refusal_explains_itself(
    api: RunningApi, operations: list[tuple[str, str]]
) -> None:
    assert len(operations) >= 10  # the document really listed the API
    for method, path in operations:
        for name, body in HOSTILE.items():
            answer = await api.call(method, _concrete(path), Role.admin, data=body)
            where = f"{method} {path} with {name}"
            assert answer.status < 500, where
            if answer.status < 400:
                continue  # a body this operation may ignore or accept (e.g. a settings reset)
            error: dict[str, Any] = (await answer.json())["error"]
            assert error["message"], where
            assert error.get("fields") or error["code"] in EXPLAINED_WITHOUT_FIELDS, (
                where, error)
