"""Three members publish their aggregate figures; each one's coalition view adds them up.

Three real nodes on two federated homeservers, through the API and the sync engine. Each member
holds a known set of cases; after all three publish, A's coalition view lists all three as
contributors, with the sums of the known totals where no member hid a cell, and never a count
under 5.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from deploy.homeserver import Federation, Homeserver
from node.assembly import node_registry
from node.core.coalition import create_coalition
from node.core.store import Role
from node.features.figures.aggregates import Granularity, build_aggregate
from node.features.figures.overlap import published_report
from node.features.figures.overlap_survey import REPORT_SETTING
from node.features.figures.publishing import (
    PUBLISHED_SETTING,
    PublicationSchedule,
    own_published,
    publication_schedule,
    publication_tick,
    set_publication_schedule,
)
from schemas.payloads import OverlapReport
from tests.features.figures.test_aggregates import make_case
from tests.support.api_harness import RunningApi
from tests.support.sharing import ORGS, eventually, form_coalition, member_running, new_member
from tests.support.web import running_web


def cases(country: str, year: str, count: int) -> list[dict[str, Any]]:
    case = make_case(country, year, ["killing"], ["journalist"], ["police"], "unknown")
    return [case.model_dump(mode="json", exclude_none=True)] * count


HELD = (
    cases("CO", "2022", 6) + cases("PE", "2023", 5),
    cases("CO", "2022", 7) + cases("CO", "2023", 8),
    cases("PE", "2023", 9) + cases("MX", "2023", 2),  # Mexico is too small: "other"
)


def figure(view: dict[str, Any], **dimensions: str) -> dict[str, Any]:
    found: dict[str, Any] = next(f for f in view["figures"] if f["dimensions"] == dimensions)
    return found


async def coalition(api: RunningApi, members: Sequence[str]) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        view: dict[str, Any] = await api.json("GET", "/coalition/aggregates", Role.viewer)
        contributors = {c["org_id"] for c in view["contributors"]}
        return view if contributors == set(members) else None

    return await eventually(probe, what="every member's aggregate")


async def with_every_estimate(api: RunningApi, members: Sequence[str]) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        view: dict[str, Any] = await api.json("GET", "/coalition/aggregates", Role.viewer)
        distinct = view["distinct_cases"]
        return view if distinct and distinct["estimated_by"] == list(members) else None

    return await eventually(probe, what="every member's overlap estimate")


async def test_the_coalition_view_adds_up_every_members_latest_figures(
    federation: Federation, tmp_path: Path
) -> None:
    homes = [federation[0], federation[1], federation[0]]
    configs = [await new_member(home, tmp_path / f"org{i}", name, country)
               for i, (home, (name, country)) in enumerate(zip(homes, ORGS, strict=True))]
    await form_coalition(configs)
    async with AsyncExitStack() as stack:
        apis = [await stack.enter_async_context(member_running(config)) for config in configs]
        a = apis[0]
        orgs = sorted(api.node.org_id for api in apis)
        for api, held in zip(apis, HELD, strict=True):
            for case in held:
                await api.json("POST", "/cases", json=case, expect=201)
        await a.json("POST", "/aggregates/publish", Role.viewer, json={}, expect=403)
        as_of = {}
        for api in apis:
            published = await api.json("POST", "/aggregates/publish", json={})
            recipients = published["recipients"]
            assert sorted(recipients) == sorted(set(orgs) - {api.node.org_id})
            assert set(published["organisations"]) == set(recipients)  # names beside the ids
            assert all(published["organisations"][r] != r for r in recipients)
            assert published["aggregate"]["as_of"].endswith("Z")
            as_of[api.node.org_id] = published["aggregate"]["as_of"]

        # A member that published before the linkage key reached it publishes again, with its
        # overlap estimate, once the key is there: wait for every estimate.
        view = await with_every_estimate(a, orgs)
        shown_as_of = {c["org_id"]: c["as_of"] for c in view["contributors"]}
        assert set(shown_as_of) == set(as_of)
        assert all(shown_as_of[org] >= as_of[org] for org in orgs)
        grand = figure(view, table="period")
        assert (grand["low"], grand["high"], grand["shown"]) == (37, 37, "37")
        assert grand["members"] == orgs
        co = figure(view, table="period", country="CO")
        assert (co["low"], co["high"], co["shown"]) == (21, 21, "21")
        assert len(co["members"]) == 2
        assert figure(view, table="period", period="2022")["shown"] == "13"
        # C counts its 2 Mexican cases with its 9 Peruvian ones in an "other" row, so Peru's
        # coalition figure is a range; no figure anywhere shows a count from 1 to 4.
        pe = figure(view, table="period", country="PE")
        assert pe["low"] <= 14 and (pe["high"] is None or pe["high"] >= 14)
        killings = figure(view, table="violation", violation="killing", sdg_category="killing")
        assert killings["shown"] == "37"
        for shown in (f["shown"] for f in view["figures"]):
            assert not shown.isdigit() or int(shown) == 0 or int(shown) >= 5

        exported = await a.file("/coalition/aggregates/csv", Role.viewer)
        assert exported.file_name == "minga-coalition-figures.csv"
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert len(rows) == len(view["figures"]) + 1
        # No case names a defender, so none can be matched: every member reports no overlap.
        assert view["distinct_cases"]["estimated_by"] == orgs
        assert view["distinct_cases"]["distinct"]["shown"] == "37"
        assert rows[-1]["table"] == "distinct_cases" and rows[-1]["shown"] == "37"
        row = next(r for r in rows
                   if (r["table"], r["country"], r["value"]) == ("period", "CO", ""))
        assert row["shown"] == "21" and row["members"].count(";") == 1

        # The coalition's SDG report comes from the same published figures: every case is an
        # unverified killing of a journalist whose sex is not recorded.
        sdg = await a.json("GET", "/coalition/reports/sdg?country=CO", Role.viewer)
        assert {c["org_id"] for c in sdg["contributors"]} == set(orgs)
        assert all(sdg["organisations"][org] != org for org in orgs)
        assert sdg["cases"]["shown"] == "21" and sdg["not_itemised"] == []
        killing = sdg["not_verified"]["by_category"]["killing"]
        assert killing["victims_by_group"]["journalist"]["shown"] == "21"
        assert killing["victims_by_sex"]["unknown"]["shown"] == "21"
        assert sdg["verified"]["cases"]["shown"] == "0"

        # B documents five more cases and publishes again: only its latest figures count.
        b = apis[1]
        for case in cases("CO", "2023", 5):
            await b.json("POST", "/cases", json=case, expect=201)
        # Later than any publication B's node made by itself (those carry the real time).
        b.clock.value = max(b.clock.value, int(time.time())) + 60
        await b.json("POST", "/aggregates/publish", json={})

        async def updated() -> dict[str, Any] | None:
            view: dict[str, Any] = await a.json("GET", "/coalition/aggregates", Role.viewer)
            return view if figure(view, table="period")["low"] != 37 else None

        later = await eventually(updated, what="B's second aggregate at A")
        assert figure(later, table="period", country="CO")["shown"] == "26"
        assert figure(later, table="period")["shown"] == "42"


async def test_the_figures_page_publishes_and_shows_the_coalition_figures(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    async with running_web(homeserver, tmp_path / "node") as site:
        viewer = await site.logged_in("chidi")
        outside = await viewer.get("/coalition/figures")
        assert outside.status == 200 and "No member has published figures yet." in outside.text
        assert "/coalition/figures/publish" not in outside.text
        editor = await site.logged_in("beatriz")
        page = await editor.get("/coalition/figures")  # nowhere to publish to yet
        assert 'action="/coalition/figures/publish"' not in page.text
        assert "This node is not in a coalition yet." in page.text
        refused = await editor.post("/coalition/figures/publish", {})
        assert "not in a coalition yet" in refused.text

        await create_coalition(site.node, "Minga de prueba",
                               node_registry().after_coalition_created)
        denied = await viewer.submit("/coalition/figures", "/coalition/figures/publish", {})
        assert denied.status == 403
        done = await editor.submit("/coalition/figures", "/coalition/figures/publish", {})
        assert done.status == 200 and done.path == "/coalition/figures"
        assert "Your figures were published to the coalition." in done.text
        assert "<svg" in done.text and site.node.own.name in done.text
        exported = await editor.get("/coalition/figures.csv")
        assert exported.status == 200
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert {"table": "period", "shown": "0"}.items() <= next(
            r for r in rows if r["table"] == "period").items()
        # The only member has nobody to share cases with: counted once, the count is the same.
        assert "Cases, each counted once" in done.text and "Not known yet for" not in done.text


async def test_admins_set_the_publishing_schedule_and_the_node_keeps_it(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    async with running_web(homeserver, tmp_path / "node") as site:
        editor = await site.logged_in("beatriz")
        assert "/coalition/figures/schedule" not in (await editor.get("/coalition/figures")).text
        refused = await editor.post("/coalition/figures/schedule", {"every_days": "7"})
        assert refused.status == 403
        admin = await site.logged_in("amaru")
        for bad in ("seven", "-1", "400", ""):
            page = await admin.submit("/coalition/figures", "/coalition/figures/schedule",
                                      {"every_days": bad})
            assert "Every how many days: a whole number from 0 to 366." in page.text, bad
        assert (await publication_schedule(site.node)).every_days == 0
        saved = await admin.submit("/coalition/figures", "/coalition/figures/schedule",
                                   {"every_days": "7"})
        assert "The publishing schedule was saved." in saved.text
        assert 'name="every_days" type="number" min="0" max="366" inputmode="numeric" value="7"' \
            in saved.text
        assert (await publication_schedule(site.node)).every_days == 7


async def test_the_node_publishes_by_itself_when_the_schedule_says_so(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    async with running_web(homeserver, tmp_path / "node") as site:
        node = site.node
        made = await create_coalition(node, "Minga de prueba",
                                      node_registry().after_coalition_created)
        start = 1_800_000_000
        await publication_tick(node, start)
        async with node.store.read() as tx:
            # on demand only, by default
            assert await own_published(tx, made.coalition_id) is None
        await set_publication_schedule(node, PublicationSchedule(every_days=2), actor="amaru")
        await publication_tick(node, start)
        async with node.store.read() as tx:
            first = await own_published(tx, made.coalition_id)
        assert first is not None and first.as_of == start
        assert first.overlap is not None and first.overlap.with_members == []
        await publication_tick(node, start + 2 * 86_400 - 1)
        async with node.store.read() as tx:
            assert (await own_published(tx, made.coalition_id)) == first
        await publication_tick(node, start + 2 * 86_400)
        async with node.store.read() as tx:
            again = await own_published(tx, made.coalition_id)
            entries = await tx.audit.recent(limit=50)
        assert again is not None and again.as_of == start + 2 * 86_400
        published = [e for e in entries if e.action == "aggregates.publish"]
        assert [e.actor for e in published] == ["schedule", "schedule"]


STALE = published_report(["o" + "a" * 26], 6, 6, 0, as_of=1_800_000_000)
"""An estimate made while the roster still held a member that is no longer before this node (or,
alike, before one that now is had arrived): fresh, but the others read it as unknown."""


@pytest.mark.parametrize("overlap", [None, STALE], ids=["before-the-key", "other-members"])
async def test_figures_without_a_current_estimate_are_published_again_with_one(
    homeserver: Homeserver, tmp_path: Path, overlap: OverlapReport | None
) -> None:
    async with running_web(homeserver, tmp_path / "node") as site:
        node = site.node
        made = await create_coalition(node, "Minga de prueba",
                                      node_registry().after_coalition_created)
        start = 1_800_000_000
        # What a publication made while the key was still on its way, or while the roster
        # was, looks like.
        early = build_aggregate([], as_of=start, granularity=Granularity.YEAR, overlap=overlap)
        async with node.store.transaction() as tx:
            await tx.settings.set(PUBLISHED_SETTING, early.model_dump(mode="json"))
            if overlap is not None:
                await tx.settings.set(REPORT_SETTING, overlap.model_dump(mode="json"))
        await publication_tick(node, start + 10)
        async with node.store.read() as tx:
            again = await own_published(tx, made.coalition_id)
            entries = await tx.audit.recent(limit=10)
        assert again is not None and again.as_of == start + 10
        assert again.overlap is not None and again.overlap.with_members == []
        assert [e.actor for e in entries if e.action == "aggregates.publish"] == ["schedule"]
        await publication_tick(node, start + 20)  # complete now: nothing more is sent
        async with node.store.read() as tx:
            assert await own_published(tx, made.coalition_id) == again
