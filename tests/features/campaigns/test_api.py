"""The campaign API's shapes on one real node: a draft is checked with the same target objects
a proposal is posted with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deploy.homeserver import Homeserver
from node.core.store import Role
from tests.support.api_harness import RunningApi, running_api

TARGETS = [{"name": "Department of Justice", "target_type": "government", "country": "PH"}]


@pytest.fixture
async def api(homeserver: Homeserver, tmp_path: Path) -> AsyncIterator[RunningApi]:
    async with running_api(homeserver, tmp_path / "node") as running:
        yield running


async def test_the_check_takes_the_targets_a_proposal_is_posted_with(api: RunningApi) -> None:
    draft = {"title": "Liberen a Ligaya", "targets": TARGETS, "countries": ["PH"]}
    checked = await api.json("POST", "/proposals/check", Role.viewer, json=draft)
    assert checked["overlaps"] == []
    untyped = {"title": "Liberen a Ligaya", "targets": [{"name": "Department of Justice"}]}
    await api.json("POST", "/proposals/check", Role.viewer, json=untyped)  # a draft's type waits
    names_only = await api.json("POST", "/proposals/check", Role.viewer, expect=422,
                                json={"title": "Liberen a Ligaya", "targets": ["DOJ"]})
    assert [f["field"] for f in names_only["error"]["fields"]] == ["body.targets[0]"]
