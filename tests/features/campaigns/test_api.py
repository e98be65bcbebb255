"""The campaign API's shapes on one real node: a draft is checked with the same target objects
a proposal is posted with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deploy.homeserver import Homeserver
from node.assembly import node_registry
from node.core.api.times import iso_time
from node.core.coalition import create_coalition
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


async def test_deadlines_are_iso_8601_times_in_and_out(api: RunningApi) -> None:
    deadline = api.clock.value + 7 * 86_400
    proposal = {"title": "Liberen a Ligaya", "goal": "Una carta conjunta.", "targets": TARGETS,
                "min_organisations": 2}
    for given, problem in [(deadline, "must be an ISO 8601 time"),
                           ("2026-12-31T18:00:00", "needs a time zone")]:
        refused = await api.json("POST", "/proposals", expect=422,
                                 json={**proposal, "deadline": given})
        assert [(f["field"], problem in f["problem"]) for f in refused["error"]["fields"]] == [
            ("body.deadline", True)]
        refused = await api.json("POST", "/letters", expect=422, json={
            "title": "Carta", "text": "Exigimos.", "deadline": given})
        assert [f["field"] for f in refused["error"]["fields"]] == ["body.deadline"]
    await create_coalition(api.node, "Minga de prueba", node_registry().after_coalition_created)
    created = await api.json("POST", "/proposals", expect=201,
                             json={**proposal, "deadline": iso_time(deadline)})
    assert created["proposal"]["deadline"] == iso_time(deadline)
    assert created["issued_at"] == iso_time(api.clock.value)
    own = api.node.org_id
    assert created["issuer"] == own and created["organisations"][own] == api.node.own.name
