"""Joint campaigns between three member nodes on two federated homeservers, through the API.

A (homeserver 1) proposes; B (homeserver 2) joins; C (homeserver 1) declines. The campaign room
holds A and B only; C never receives its content and cannot read it; closing archives it on
every node and every participant node leaves the room.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy.homeserver import Federation
from federation.transport import TransportError
from node.core.api.times import iso_time, unix_seconds
from node.core.coalition import MEMBER_POWER
from node.features.campaigns.records import ROOM_LEFT, CampaignRecords
from tests.support.api_harness import RunningApi
from tests.support.sharing import ORGS, eventually, form_coalition, member_running, new_member


@dataclass
class Trio:
    a: RunningApi
    b: RunningApi
    c: RunningApi

    @property
    def everyone(self) -> list[RunningApi]:
        return [self.a, self.b, self.c]


@asynccontextmanager
async def trio(federation: Federation, tmp_path: Path) -> AsyncIterator[Trio]:
    homes = [federation[0], federation[1], federation[0]]
    configs = [await new_member(home, tmp_path / f"org{i}", name, country)
               for i, (home, (name, country)) in enumerate(zip(homes, ORGS, strict=True))]
    await form_coalition(configs)
    async with AsyncExitStack() as stack:
        a, b, c = [await stack.enter_async_context(member_running(config)) for config in configs]
        yield Trio(a, b, c)


def proposal_body(api: RunningApi, minimum: int, *, days: int = 7) -> dict[str, Any]:
    return {
        "title": "Liberen a la defensora Ligaya Dimaculangan",
        "goal": "Joint letter and UN urgent appeal for her release.",
        "targets": [{"name": "Department of Justice", "target_type": "government",
                     "country": "PH"}],
        "countries": ["PH"],
        "themes": ["criminalisation"],
        "asks": ["legal", "advocacy", "media"],
        "min_organisations": minimum,
        "deadline": iso_time(api.clock.value + days * 86_400),
    }


async def seen(api: RunningApi, issuer: str, record_id: str, what: str,
               condition: Any = bool) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        answer = await api.call("GET", f"/proposals/{issuer}/{record_id}")
        if answer.status != 200:
            return None
        view: dict[str, Any] = await answer.json()
        return view if condition(view) else None

    return await eventually(probe, what=what)


async def campaign_items(api: RunningApi, kind: str) -> list[Any]:
    async with api.node.store.read() as tx:
        return await CampaignRecords(tx.session, tx.cipher).latest(kind=kind)


async def joined_members(api: RunningApi, room_id: str) -> set[str]:
    async with api.node.transport() as transport:
        state = await transport.room_state(room_id)
    return {e.state_key or "" for e in state
            if e.type == "m.room.member" and e.content.get("membership") == "join"}


async def test_a_campaign_forms_runs_and_closes_with_only_its_participants(
    federation: Federation, tmp_path: Path
) -> None:
    async with trio(federation, tmp_path) as t:
        a_org, b_org, c_org = (api.node.org_id for api in t.everyone)
        created = await t.a.json("POST", "/proposals", json=proposal_body(t.a, 2), expect=201)
        pid = created["record_id"]
        assert created["status"] == "open" and created["joined"] == [a_org]

        await seen(t.b, a_org, pid, "the proposal at B")
        await seen(t.c, a_org, pid, "the proposal at C")
        staff = federation[1].create_account("b-staff").user_id  # B's campaigner, in Element
        await t.b.json("POST", f"/proposals/{a_org}/{pid}/responses",
                       json={"response": "join", "roles": ["legal"],
                             "contacts": [staff, "@nobody:unreachable.invalid"]})
        await t.c.json("POST", f"/proposals/{a_org}/{pid}/responses",
                       json={"response": "decline", "reason": "No capacity this quarter"})

        def launched(view: dict[str, Any]) -> bool:
            return view["status"] == "active" and view["room_id"] is not None

        at_a = await seen(t.a, a_org, pid, "the campaign launched at A", launched)
        assert at_a["tally"] == {"join": 1, "endorse": 0, "decline": 1, "participants": 2,
                                 "minimum": 2}
        assert sorted(at_a["participants"]) == sorted([a_org, b_org])
        declined = next(r for r in at_a["responses"] if r["org_id"] == c_org)
        assert declined["reason"] == "No capacity this quarter"
        room = at_a["room_id"]
        at_c = await seen(t.c, a_org, pid, "the campaign announced to C", launched)
        assert at_c["room_id"] == room and c_org not in at_c["participants"]

        # B's node joins the room; A's and B's node accounts are its only members.
        a_user, b_user = [(await api.node.matrix_login()).user_id for api in (t.a, t.b)]

        async def both_in() -> bool:
            return await joined_members(t.a, room) == {a_user, b_user}

        await eventually(both_in, what="A and B in the campaign room")
        async with t.a.node.transport() as transport:
            state = await transport.room_state(room)
        invited = {e.state_key for e in state if e.type == "m.room.member"
                   and e.content.get("membership") == "invite"}
        assert invited == {staff}  # the listed staff account; the unreachable one skipped
        levels = next(e.content for e in state if e.type == "m.room.power_levels")
        assert staff not in levels["users"] and levels["users"].get(b_user) == MEMBER_POWER

        # An update from B reaches A; C neither receives it nor can read the room.
        await seen(t.b, a_org, pid, "the campaign at B", launched)
        await t.b.json("POST", f"/campaigns/{a_org}/{pid}/posts", expect=201, json={
            "post_type": "update", "title": "Tutela radicada",
            "text": "Filed the habeas corpus petition this morning."})
        await t.a.json("POST", f"/campaigns/{a_org}/{pid}/posts", expect=201, json={
            "post_type": "task", "title": "Draft the UN urgent appeal", "owner": b_org,
            "due": "2024-07-15"})

        def has_update(view: dict[str, Any]) -> bool:
            return any(p["post_type"] == "update" and p["issuer"] == b_org
                       and p["text"] == "Filed the habeas corpus petition this morning."
                       for p in view["posts"])

        await seen(t.a, a_org, pid, "B's update at A", has_update)
        await seen(t.b, a_org, pid, "A's task at B",
                   lambda v: any(p["post_type"] == "task" and p["owner"] == b_org
                                 for p in v["posts"]))
        assert await campaign_items(t.c, "campaign-post") == []
        assert (await t.c.json("GET", f"/campaigns/{a_org}/{pid}"))["posts"] == []
        async with t.c.node.transport() as transport:
            with pytest.raises(TransportError):
                await transport.messages(room, None, limit=10)
        # Only the proposer launches; only participants post.
        await t.c.json("POST", f"/campaigns/{a_org}/{pid}/posts", expect=409,
                       json={"post_type": "update", "text": "not a participant"})

        # The campaign's own sign-on letter is open while the campaign is.
        letter = await t.a.json("POST", "/letters", expect=201, json={
            "title": "Carta conjunta", "text": "Exigimos garantías.",
            "deadline": iso_time(t.a.clock.value + 3_600),
            "campaign": {"issuer": a_org, "record_id": pid}})
        assert letter["open"]

        # A closes: archived on every node; the participant nodes leave the room.
        closed = await t.a.json("POST", f"/campaigns/{a_org}/{pid}/close")
        assert closed["status"] == "closed"
        # ...and its letter says it is closed, as signing it is refused.
        lid = letter["record_id"]
        assert not (await t.a.json("GET", f"/letters/{a_org}/{lid}"))["open"]
        await t.a.json("POST", f"/letters/{a_org}/{lid}/signatures", expect=409,
                       json={"signatory_name": "Óscar Ñañez Ruiz"})
        for api in t.everyone:
            await seen(api, a_org, pid, "the campaign archived", lambda v: v["status"] == "closed")
        for api in (t.a, t.b):
            async def left(api: RunningApi = api) -> bool:
                async with api.node.store.read() as tx:
                    row = await CampaignRecords(tx.session, tx.cipher).room(pid)
                return row is not None and row.state == ROOM_LEFT

            await eventually(left, what="the participant node left the room")
        async with t.a.node.transport() as transport:
            assert room not in await transport.joined_rooms()
        await t.b.json("POST", f"/campaigns/{a_org}/{pid}/posts", expect=409,
                       json={"post_type": "update", "text": "too late"})


async def test_responses_change_until_the_deadline_and_a_proposal_below_minimum_expires(
    federation: Federation, tmp_path: Path
) -> None:
    async with trio(federation, tmp_path) as t:
        a_org, b_org, c_org = (api.node.org_id for api in t.everyone)
        created = await t.a.json("POST", "/proposals", json=proposal_body(t.a, 3, days=1),
                                 expect=201)
        pid, deadline = created["record_id"], unix_seconds(created["proposal"]["deadline"])
        await seen(t.b, a_org, pid, "the proposal at B")
        await t.b.json("POST", f"/proposals/{a_org}/{pid}/responses",
                       json={"response": "join", "roles": ["media"]})
        await seen(t.a, a_org, pid, "B's join at A", lambda v: v["tally"]["join"] == 1)
        changed = await t.b.json("POST", f"/proposals/{a_org}/{pid}/responses",
                                 json={"response": "endorse"})
        assert [(r["org_id"], r["response"], r["version"]) for r in changed["responses"]] == [
            (b_org, "endorse", 2)]
        at_a = await seen(t.a, a_org, pid, "B's changed response at A",
                          lambda v: v["tally"]["endorse"] == 1)
        assert at_a["tally"]["join"] == 0 and at_a["joined"] == [a_org]
        assert at_a["status"] == "open"
        await seen(t.c, a_org, pid, "the proposal at C")

        for api in t.everyone:
            api.clock.value = deadline + 60
        late = await t.c.call("POST", f"/proposals/{a_org}/{pid}/responses",
                              json={"response": "join"})
        assert late.status == 409
        assert "deadline" in (await late.json())["error"]["message"]
        for api in t.everyone:
            view = await api.json("GET", f"/proposals/{a_org}/{pid}")
            assert view["status"] == "expired", api.node.org_id
            assert view["room_id"] is None
        assert c_org not in at_a["joined"]
        assert (await t.a.json("GET", "/campaigns"))["items"] == []


async def test_an_early_launch_takes_later_joiners_and_a_majority_vote_closes_it(
    federation: Federation, tmp_path: Path
) -> None:
    async with trio(federation, tmp_path) as t:
        a_org, b_org, c_org = (api.node.org_id for api in t.everyone)
        created = await t.a.json("POST", "/proposals", json=proposal_body(t.a, 3), expect=201)
        pid = created["record_id"]
        await seen(t.b, a_org, pid, "the proposal at B")
        await t.b.json("POST", f"/proposals/{a_org}/{pid}/responses", json={"response": "join"})
        await seen(t.a, a_org, pid, "B's join at A", lambda v: v["tally"]["join"] == 1)
        # Below the minimum (2 of 3), the proposer launches early; only B is asked to launch.
        assert (await t.b.call("POST", f"/proposals/{pid}/launch")).status == 404
        await t.a.json("POST", f"/proposals/{pid}/launch", expect=202)

        def with_members(*orgs: str) -> Any:
            return lambda v: v["status"] == "active" and sorted(v["participants"]) == sorted(orgs)

        await seen(t.a, a_org, pid, "the early launch", with_members(a_org, b_org))
        # C joins before the deadline: the proposer's node adds it to the campaign.
        await seen(t.c, a_org, pid, "the campaign at C", with_members(a_org, b_org))
        await t.c.json("POST", f"/proposals/{a_org}/{pid}/responses", json={"response": "join"})
        for api in t.everyone:
            await seen(api, a_org, pid, "C added", with_members(a_org, b_org, c_org))
        room = (await t.a.json("GET", f"/campaigns/{a_org}/{pid}"))["room_id"]
        c_user = (await t.c.node.matrix_login()).user_id

        async def c_in_room() -> bool:
            return c_user in await joined_members(t.a, room)

        await eventually(c_in_room, what="C's node in the campaign room")
        await t.c.json("POST", f"/campaigns/{a_org}/{pid}/posts", expect=201,
                       json={"post_type": "key_message", "text": "Drop the charges now.",
                             "targets": ["Department of Justice"]})
        await seen(t.b, a_org, pid, "C's key message at B",
                   lambda v: any(p["issuer"] == c_org for p in v["posts"]))

        # One vote of three does not close; two do, on every node.
        voted = await t.b.json("POST", f"/campaigns/{a_org}/{pid}/close")
        assert voted["status"] == "active" and voted["close_votes"] == [b_org]
        await t.c.json("POST", f"/campaigns/{a_org}/{pid}/close")
        for api in t.everyone:
            await seen(api, a_org, pid, "closed by a majority", lambda v: v["status"] == "closed")
