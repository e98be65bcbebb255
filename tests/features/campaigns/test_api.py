"""The campaign API's shapes on one real node: a draft is checked with the same target objects
a proposal is posted with."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deploy.homeserver import Homeserver
from node.assembly import node_registry
from node.core.api.times import iso_time
from node.core.coalition import create_coalition, leave_coalition
from node.core.store import Role
from node.features.campaigns.records import ROOM_LEFT, CampaignRecords
from node.features.campaigns.service import campaign_duties, launch, propose, state_of
from schemas.payloads import Proposal
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


async def test_leaving_a_coalition_leaves_its_campaign_rooms_and_keeps_the_records(
    api: RunningApi,
) -> None:
    """Decision 0032: the node in two coalitions launches a campaign in the second; leaving
    that coalition leaves the campaign room (and only it); the records stay."""
    node, hooks = api.node, node_registry()
    first = await create_coalition(node, "Red A", hooks.after_coalition_created)
    second = await create_coalition(node, "Red B", hooks.after_coalition_created)
    now = int(time.time())
    proposal = Proposal(title="Liberen a Ligaya", goal="Su libertad.", min_organisations=2,
                        targets=TARGETS, deadline=now + 3_600)
    state = await propose(node, proposal, actor="beatriz", now=now,
                          coalition_id=second.coalition_id)
    await launch(node, state.record_id, now=now)
    async with node.transport() as transport:
        await campaign_duties(node, transport, now)
    launched = await state_of(node, node.org_id, state.record_id, now)
    assert launched.campaign is not None and launched.campaign.room_id is not None
    room_id = launched.campaign.room_id
    async with node.transport() as transport:
        assert room_id in await transport.joined_rooms()

    await leave_coalition(node, second.coalition_id, hooks.after_coalition_left)
    async with node.transport() as transport:
        joined = set(await transport.joined_rooms())
    assert room_id not in joined and first.room_id in joined
    async with node.store.read() as tx:
        room = await CampaignRecords(tx.session, tx.cipher).room(state.record_id)
    assert room is not None and room.state == ROOM_LEFT
    kept = await api.json("GET", f"/proposals/{node.org_id}/{state.record_id}", Role.viewer)
    assert kept["coalition"] == {"coalition_id": second.coalition_id, "label": "Red B",
                                 "left": True}
