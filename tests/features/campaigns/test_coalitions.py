"""Joint campaigns on a node in two coalitions (decision 0032): a proposal, its responses and a
letter go to the members of one coalition only, in that coalition's room; each stored record
knows its coalition, and leaving a coalition keeps its records but stops acting in it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from node.core.runtime import CoalitionNotChosen, Node, open_node
from node.core.store import Role
from node.features.campaigns.api import proposal_view
from node.features.campaigns.letters import create_letter
from node.features.campaigns.records import CampaignRecords
from node.features.campaigns.service import (
    NotAllowed,
    all_proposals,
    propose,
    respond,
)
from schemas.payloads import Proposal
from tests.support.api_harness import RunningApi, serve_node
from tests.support.coalitions import (
    BOTH,
    ONLY_A,
    ONLY_B,
    in_two_coalitions,
    queued,
)
from tests.support.coalitions import COALITION_A as A
from tests.support.coalitions import COALITION_B as B
from tests.support.offline_node import make_offline_node, passphrase_in_environment
from tests.support.web import serve_web

T0 = 1_717_000_000


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    path = await make_offline_node(tmp_path / "node")
    with passphrase_in_environment():
        async with open_node(path) as opened:
            await in_two_coalitions(opened)
            yield opened


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[RunningApi]:
    async with serve_node(await make_offline_node(tmp_path / "node")) as running:
        await in_two_coalitions(running.node)
        yield running


def proposal() -> Proposal:
    return Proposal(title="Liberen a Ligaya", goal="Her release.", min_organisations=2,
                    targets=[{"name": "Department of Justice", "target_type": "government"}],
                    deadline=T0 + 1_000)


async def test_a_proposal_goes_only_to_its_coalitions_members(node: Node) -> None:
    with pytest.raises(CoalitionNotChosen):  # two coalitions: one must be named
        await propose(node, proposal(), actor="ana", now=T0)
    assert await queued(node) == []
    state = await propose(node, proposal(), actor="ana", now=T0, coalition_id=B)
    # One envelope for all its recipients (decision 0033): the same record goes to each.
    assert await queued(node) == [(B, sorted([ONLY_B.org_id, BOTH.org_id]))]
    assert state.coalition_id == B
    listed = await all_proposals(node, T0)
    assert [s.coalition_id for s in listed] == [B]
    async with node.store.read() as tx:
        coalitions = {c.coalition_id: c for c in await tx.coalitions.all(with_left=True)}
    shown = proposal_view(listed[0], {}, coalitions).coalition
    assert shown is not None and (shown.label, shown.left) == ("Red B", False)


async def test_a_coalition_letter_goes_to_the_coalition_named(node: Node) -> None:
    letter = await create_letter(node, "Carta", "Texto de la carta.", T0 + 500, None,
                                 actor="ana", now=T0, coalition_id=A)
    assert await queued(node) == [(A, sorted([ONLY_A.org_id, BOTH.org_id]))]
    assert letter.coalition_id == A


async def test_a_received_proposal_is_answered_in_its_coalition_until_the_node_leaves_it(
    node: Node,
) -> None:
    # BOTH proposed in B; the record came through B (its coalition claim says so).
    claims = {**proposal().model_dump(mode="json"), "coalition": B}
    async with node.store.transaction() as tx:
        await CampaignRecords(tx.session, tx.cipher).add(
            BOTH.org_id, "0190a5c4-0000-7000-8000-0000000000c1", 1, "proposal", T0, claims)
    await respond(node, BOTH.org_id, "0190a5c4-0000-7000-8000-0000000000c1", "endorse",
                  actor="ana", now=T0 + 1)
    assert await queued(node) == [(B, sorted([ONLY_B.org_id, BOTH.org_id]))]

    async with node.store.transaction() as tx:
        await tx.coalitions.mark_left(B)
        coalitions = {c.coalition_id: c for c in await tx.coalitions.all(with_left=True)}
    node.forget_coalitions()
    with pytest.raises(NotAllowed):
        await respond(node, BOTH.org_id, "0190a5c4-0000-7000-8000-0000000000c1", "join",
                      actor="ana", now=T0 + 2)
    [kept] = await all_proposals(node, T0 + 2)  # the records stay
    shown = proposal_view(kept, {}, coalitions).coalition
    assert shown is not None and (shown.coalition_id, shown.left) == (B, True)


async def test_a_record_kept_before_coalitions_were_named_belongs_to_the_first(
    node: Node,
) -> None:
    claims = proposal().model_dump(mode="json")  # no coalition claim: an older record
    async with node.store.transaction() as tx:
        await CampaignRecords(tx.session, tx.cipher).add(
            BOTH.org_id, "0190a5c4-0000-7000-8000-0000000000c2", 1, "proposal", T0, claims)
    [state] = await all_proposals(node, T0)
    assert state.coalition_id == A


async def test_the_api_takes_the_coalition_and_shows_it(api: RunningApi) -> None:
    body = {**proposal().model_dump(mode="json"), "deadline": "2030-01-01T00:00:00Z"}
    refused = await api.json("POST", "/proposals", Role.editor, json=body, expect=422)
    assert [f["field"] for f in refused["error"]["fields"]] == ["body.coalition"]
    unknown = await api.json("POST", "/proposals", Role.editor,
                             json={**body, "coalition": "!elsewhere:test"}, expect=422)
    assert [f["field"] for f in unknown["error"]["fields"]] == ["body.coalition"]
    made = await api.json("POST", "/proposals", Role.editor, json={**body, "coalition": A},
                          expect=201)
    assert made["coalition"] == {"coalition_id": A, "label": "Red A", "left": False}
    listed = await api.json("GET", "/proposals", Role.viewer)
    assert [p["coalition"]["coalition_id"] for p in listed["items"]] == [A]
    letter = await api.json("POST", "/letters", Role.editor, expect=201, json={
        "title": "Carta", "text": "Texto.", "deadline": "2030-01-01T00:00:00Z",
        "coalition": B})
    assert letter["coalition"]["coalition_id"] == B


async def test_the_pages_let_staff_pick_the_coalition_and_show_it(tmp_path: Path) -> None:
    async with serve_web(await make_offline_node(tmp_path / "node")) as site:
        await in_two_coalitions(site.node)
        browser = await site.logged_in("beatriz")
        form = await browser.get("/proposals/new")
        assert '<select id="p-coalition" name="coalition" required>' in form.text
        assert ">Red A</option>" in form.text and ">Red B</option>" in form.text
        fields = [("title", "Liberen a Ligaya"), ("goal", "Su libertad."),
                  ("target_name", "Fiscalía"), ("target_type", "government"),
                  ("min_organisations", "2"), ("deadline", "2030-01-01"),
                  ("action", "post")]
        unchosen = await browser.post("/proposals/new", fields)
        assert unchosen.status == 422 and "Choose one of this node" in unchosen.text
        await browser.get("/proposals/new")
        posted = await browser.post("/proposals/new", [*fields, ("coalition", B)])
        assert posted.status == 200 and "in Red B" in posted.text
        async with site.node.store.transaction() as tx:
            await tx.coalitions.mark_left(B)
        site.node.forget_coalitions()
        listing = await browser.get("/proposals")
        assert "in Red B (left)" in listing.text
        letters = await browser.get("/letters")
        assert 'name="coalition"' in letters.text and ">Red B</option>" not in letters.text
