"""Figures on a node in two coalitions (decision 0032): published to the coalition chosen, kept
per coalition as received, and each coalition's view and SDG report made only from what came
through it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from node.core.runtime import CoalitionNotChosen, Node, open_node
from node.core.store import Role
from node.core.store.received import Incoming
from node.features.cases.casebook import add_case
from node.features.figures.aggregates import build_aggregate
from node.features.figures.coalition_sdg import coalition_sdg
from node.features.figures.overlap import published_report
from node.features.figures.overlap_survey import REPORT_SETTING, latest_report
from node.features.figures.publishing import (
    PUBLISHED_SETTING,
    coalition_aggregates,
    figures_coalition,
    fits,
    own_published,
    publication_tick,
    publish_aggregate,
    stop_publishing,
)
from schemas.case import Case
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


def case(country: str) -> Case:
    return Case.model_validate({
        "incident_date": "2023-04", "country": country, "narrative": "Relato reservado",
        "violations": ["killing"], "consent_level": "coalition", "risk_level": "high",
        "consent_coalitions": [A, B],
        "independent_sources": 2,
        "victims": [{"kind": "individual", "name": "Nombre Reservado", "gender": "woman",
                     "groups": ["journalist"]}],
    })


async def two_coalitions(node: Node) -> None:
    """A node in coalitions A and B (tests.support.coalitions), holding six cases in
    Colombia."""
    await in_two_coalitions(node)
    async with node.store.transaction() as tx:
        for index in range(6):
            await add_case(tx, issuer=node.org_id, case=case("CO"), author="ana",
                           issued_at=T0 + index)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    path = await make_offline_node(tmp_path / "node")
    with passphrase_in_environment():
        async with open_node(path) as opened:
            await two_coalitions(opened)
            yield opened


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[RunningApi]:
    async with serve_node(await make_offline_node(tmp_path / "node")) as running:
        await two_coalitions(running.node)
        yield running


async def received(node: Node, issuer: str, record_id: str, coalition_id: str,
                   cases: list[Case]) -> None:
    """An aggregate of ``cases`` from ``issuer``, come through ``coalition_id``."""
    claims = build_aggregate(cases, as_of=T0).model_dump(mode="json")
    async with node.store.transaction() as tx:
        await tx.received.add_many([Incoming(issuer, record_id, 1, "aggregate",
                                             {**claims, "coalition": coalition_id},
                                             coalition_id)], "verified")


async def test_figures_are_published_to_the_coalition_chosen_only(node: Node) -> None:
    with pytest.raises(CoalitionNotChosen):
        await publish_aggregate(node, actor="ana", now=T0)
    done = await publish_aggregate(node, actor="ana", now=T0, coalition_id=B)
    assert done.coalition_id == B
    assert sorted(done.recipients) == sorted([ONLY_B.org_id, BOTH.org_id])
    # One envelope for every member (decision 0033): each gets the same figures.
    assert await queued(node) == [(B, sorted([ONLY_B.org_id, BOTH.org_id]))]
    async with node.store.read() as tx:
        assert await own_published(tx, B) is not None
        assert await own_published(tx, A) is None
    assert list(await coalition_aggregates(node, B)) == [node.org_id]
    assert await coalition_aggregates(node, A) == {}


async def test_figures_of_two_coalitions_stay_apart(node: Node) -> None:
    # The member in both coalitions published different figures to each.
    await received(node, BOTH.org_id, "0190a5c4-0000-7000-8000-0000000000a1", A, [case("CO")] * 7)
    await received(node, BOTH.org_id, "0190a5c4-0000-7000-8000-0000000000b1", B,
                   [case("CO")] * 20)
    await received(node, ONLY_A.org_id, "0190a5c4-0000-7000-8000-0000000000a2", A,
                   [case("PE")] * 9)
    in_a, in_b = await coalition_aggregates(node, A), await coalition_aggregates(node, B)
    assert set(in_a) == {BOTH.org_id, ONLY_A.org_id} and set(in_b) == {BOTH.org_id}
    assert in_a[BOTH.org_id] == build_aggregate([case("CO")] * 7, as_of=T0)
    assert in_b[BOTH.org_id] == build_aggregate([case("CO")] * 20, as_of=T0)


async def test_the_sdg_report_of_b_uses_only_bs_figures(node: Node) -> None:
    await received(node, BOTH.org_id, "0190a5c4-0000-7000-8000-0000000000a1", A, [case("CO")] * 7)
    await received(node, ONLY_A.org_id, "0190a5c4-0000-7000-8000-0000000000a2", A,
                   [case("CO")] * 9)
    await received(node, BOTH.org_id, "0190a5c4-0000-7000-8000-0000000000b1", B,
                   [case("CO")] * 20)
    coalition = await figures_coalition(node, B)
    report = coalition_sdg(await coalition_aggregates(node, coalition.coalition_id), "CO")
    assert [c.org_id for c in report.contributors] == [BOTH.org_id]
    in_a = coalition_sdg(await coalition_aggregates(node, A), "CO")
    assert sorted(c.org_id for c in in_a.contributors) == sorted([BOTH.org_id, ONLY_A.org_id])


async def test_a_publication_from_before_coalitions_belongs_to_the_first(node: Node) -> None:
    aggregate = build_aggregate([case("CO")] * 6, as_of=T0)
    async with node.store.transaction() as tx:
        await tx.settings.set(PUBLISHED_SETTING, aggregate.model_dump(mode="json"))
    assert list(await coalition_aggregates(node, A)) == [node.org_id]
    assert await coalition_aggregates(node, B) == {}


async def test_a_left_coalition_is_published_to_no_more_and_its_figures_stay(
    node: Node,
) -> None:
    await received(node, BOTH.org_id, "0190a5c4-0000-7000-8000-0000000000b1", B,
                   [case("CO")] * 20)
    async with node.store.transaction() as tx:
        await tx.coalitions.mark_left(B)
        left = await tx.coalitions.get(B)
    node.forget_coalitions()
    await stop_publishing(node, None, left)  # type: ignore[arg-type]  # it needs no transport
    with pytest.raises(CoalitionNotChosen):
        await publish_aggregate(node, actor="ana", now=T0, coalition_id=B)
    async with node.store.transaction() as tx:
        await tx.settings.set("aggregates.schedule", {"every_days": 1})
    await publication_tick(node, T0)  # the schedule publishes to the coalitions it is in
    assert {room for room, _ in await queued(node)} == {A}
    assert list(await coalition_aggregates(node, B)) == [BOTH.org_id]


async def test_the_api_names_the_coalition_of_the_figures(api: RunningApi) -> None:
    refused = await api.json("GET", "/coalition/aggregates", Role.viewer, expect=422)
    assert [f["field"] for f in refused["error"]["fields"]] == ["query.coalition"]
    unchosen = await api.json("POST", "/aggregates/publish", Role.editor, json={}, expect=422)
    assert [f["field"] for f in unchosen["error"]["fields"]] == ["body.coalition"]
    unknown = await api.json("POST", "/aggregates/publish", Role.editor,
                             json={"coalition": "!elsewhere:test"}, expect=422)
    assert [f["field"] for f in unknown["error"]["fields"]] == ["body.coalition"]
    done = await api.json("POST", "/aggregates/publish", Role.editor, json={"coalition": B})
    assert done["coalition"] == B
    in_b = await api.json("GET", "/coalition/aggregates?coalition=%21coalition-b%3Atest",
                          Role.viewer)
    assert (in_b["coalition"], [c["org_id"] for c in in_b["contributors"]]) == (
        B, [api.node.org_id])
    in_a = await api.json("GET", "/coalition/aggregates?coalition=%21coalition-a%3Atest",
                          Role.viewer)
    assert in_a["contributors"] == []
    report = await api.json(
        "GET", "/coalition/reports/sdg?country=CO&coalition=%21coalition-a%3Atest", Role.viewer)
    assert report["contributors"] == []


async def test_an_overlap_estimate_is_per_coalition_and_names_no_outsider(node: Node) -> None:
    made_in_a = published_report([ONLY_A.org_id], 6, 6, 0, as_of=T0)
    async with node.store.transaction() as tx:  # kept before decision 0032: the first's
        await tx.settings.set(REPORT_SETTING, made_in_a.model_dump(mode="json"))
    async with node.store.read() as tx:
        assert await latest_report(tx, A) == made_in_a
        assert await latest_report(tx, B) is None
    assert fits(made_in_a, frozenset({ONLY_A.org_id, BOTH.org_id})) == made_in_a
    assert fits(made_in_a, frozenset({ONLY_B.org_id, BOTH.org_id})) is None
    done = await publish_aggregate(node, actor="ana", now=T0 + 10, coalition_id=A)
    assert done.aggregate.overlap == made_in_a
    done = await publish_aggregate(node, actor="ana", now=T0 + 10, coalition_id=B)
    assert done.aggregate.overlap is None


async def test_the_page_shows_one_coalitions_figures_and_publishes_there(tmp_path: Path) -> None:
    async with serve_web(await make_offline_node(tmp_path / "node")) as site:
        await two_coalitions(site.node)
        await received(site.node, ONLY_A.org_id, "0190a5c4-0000-7000-8000-0000000000a2", A,
                       [case("PE")] * 9)
        editor = await site.logged_in("beatriz")
        page = await editor.get("/coalition/figures")  # the first coalition by default
        assert ">Red A</option>" in page.text and ">Red B</option>" in page.text
        assert "Figures of the coalition Red A" in page.text and "Member 0" in page.text
        other = await editor.get("/coalition/figures?coalition=%21coalition-b%3Atest")
        assert "Figures of the coalition Red B" in other.text
        assert "Member 0" not in other.text
        assert f'name="coalition" value="{B}"' in other.text
        done = await editor.post("/coalition/figures/publish", {"coalition": B})
        assert "Your figures were published to the coalition." in done.text
        assert "Figures of the coalition Red B" in done.text
        assert {room for room, _ in await queued(site.node)} == {B}
