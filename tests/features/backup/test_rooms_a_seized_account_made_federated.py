"""Rooms a seized member's old account made are replaced after it is restored (M13, decision
0024): three members on real homeservers.

A shares with B first (A's old account makes the A–B pair room); C shares with A first (C's
node makes that one); A sends an alert (its old account makes A's alert room). A is backed up;
after the backup B shares with A into the pair room A's old account made and answers the alert
in A's alert room, and A's machine is seized; meanwhile B shares again and C answers the alert.
A is restored on a new machine with a new account and new keys. Its new account can never enter
the rooms its old account made (room version 12: their creator is the old account), so the
restored node makes a new pair room with B and a new alert room: everything B and C posted after
the backup reaches A there, once (no refusal, no gap, nothing twice), A holds no room any more,
the old rooms are forgotten on every side, and what each shares or alerts afterwards arrives.
"""

from __future__ import annotations

import time
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from deploy.homeserver import Federation
from node.core.api.times import iso_time
from node.core.cli_support import unix_now
from node.core.coalition import invite_member, join_coalition
from node.core.rooms import ROOM_REPLACED, pair_room_of
from node.core.runtime import open_node
from node.core.store import Role
from node.core.store.pair_rooms import PairRoomRepository
from node.features.alerts.room import saved_alert_room
from node.features.alerts.service import HELPING, SEEN, AlertState, list_alerts, respond, send_alert
from node.features.backup.service import create_backup
from schemas.payloads import Alert
from sync.requeue import replaced_rooms
from sync.resume import held_rooms
from tests.support.api_harness import PASSPHRASE, RunningApi, WallClock
from tests.support.restore import restore_on_new_account
from tests.support.sharing import (
    arrives_verified,
    chain_gaps,
    eventually,
    form_coalition,
    member_running,
    members_on,
    passphrase_env,
    quarantined_count,
    received,
    share_case,
)

ALERT = Alert.model_validate({"alert_type": "arrest", "urgency": "critical", "country": "CO",
                              "asks": ["legal_support"], "text": "retenido en el retén"})


async def _alert(api: RunningApi) -> str:
    return (await send_alert(api.node, ALERT, actor="ana", now=int(time.time()))).record_id


async def _alert_at(api: RunningApi, issuer: str, record_id: str) -> AlertState | None:
    return next((s for s in await list_alerts(api.node)
                 if s.issuer == issuer and s.record_id == record_id), None)


async def _answers(api: RunningApi, record_id: str, wanted: dict[str, str]) -> None:
    async def answered() -> Any:
        state = await _alert_at(api, api.node.org_id, record_id)
        got = {r.org_id: r.status for r in state.recipients} if state else {}
        return got == wanted or None

    await eventually(answered, what=f"answers {wanted} to {record_id}")


async def _alert_arrives(api: RunningApi, issuer: str, record_id: str) -> None:
    async def there() -> Any:
        return await _alert_at(api, issuer, record_id)

    await eventually(there, what=f"alert {record_id} from {issuer}")


async def _alert_room(api: RunningApi) -> str | None:
    saved = await saved_alert_room(api.node)
    return None if saved is None else str(saved["room_id"])


async def _pair_rooms(api: RunningApi) -> dict[str, str]:
    async with api.node.store.read() as tx:
        return {p.room_id: p.org_id for p in await PairRoomRepository(tx.session).all()}


async def test_a_pair_room_the_seized_account_made_is_replaced_and_nothing_is_lost(
    federation3: Federation, tmp_path: Path
) -> None:
    homes = [federation3[0], federation3[1], federation3[0]]
    b_cfg, a_cfg, c_cfg = await members_on(homes, tmp_path)
    coalition = await form_coalition([b_cfg, a_cfg, c_cfg])
    backup = tmp_path / "a.mingabackup"
    async with AsyncExitStack() as stack:
        b = await stack.enter_async_context(member_running(b_cfg, clock=WallClock()))
        c = await stack.enter_async_context(member_running(c_cfg, clock=WallClock()))
        async with member_running(a_cfg, clock=WallClock()) as a:
            a_org, b_org, c_org = a.node.org_id, b.node.org_id, c.node.org_id
            from_c = await share_case(c, "addis", [a_org])  # C's node makes the A–C room
            await arrives_verified(a, c_org, from_c)
            first = await share_case(a, "nairobi", [b_org, c_org])  # A's makes the A–B room
            await arrives_verified(b, a_org, first)
            await arrives_verified(c, a_org, first)
            old_room = await pair_room_of(a.node, b_org)
            assert old_room is not None and await pair_room_of(b.node, a_org) == old_room
            before = await share_case(b, "cauca", [a_org])
            await arrives_verified(a, b_org, before)
            alert = await _alert(a)  # A's old account makes A's alert room
            await _alert_arrives(b, a_org, alert)
            await _alert_arrives(c, a_org, alert)
            old_alert_room = await _alert_room(a)
            assert old_alert_room is not None
            await _answers(a, alert, {b_org: "delivered", c_org: "delivered"})
            create_backup(a_cfg, backup, PASSPHRASE, created_at=unix_now())
            after_backup = await share_case(b, "minsk", [a_org])  # A's old node receives it
            await arrives_verified(a, b_org, after_backup)
            await respond(b.node, a_org, alert, answer=HELPING, offers=["legal_support"],
                          actor="beto", now=int(time.time()))
            await _answers(a, alert, {b_org: HELPING, c_org: "delivered"})
            second = await share_case(a, "minsk", [b_org])
            await arrives_verified(b, a_org, second)
        # A's machine is seized; meanwhile B shares with A, in the room A's old account made,
        # and C answers A's alert in A's old alert room.
        meanwhile = await share_case(b, "nairobi", [a_org])
        await respond(c.node, a_org, alert, answer=SEEN, actor="carla", now=int(time.time()))

        restored = await restore_on_new_account(backup, tmp_path / "new-machine", federation3[2])
        moved = restored.moved
        await invite_member(b.node, moved.user_id)
        with passphrase_env():
            async with open_node(restored.config_file) as node:
                await join_coalition(node, coalition)

        a2 = await stack.enter_async_context(member_running(restored.config_file,
                                                            clock=WallClock()))
        await arrives_verified(a2, b_org, after_backup)
        await arrives_verified(a2, b_org, meanwhile)
        await _answers(a2, alert, {b_org: HELPING, c_org: SEEN})

        async def nothing_held() -> bool:
            async with a2.node.store.read() as tx:
                return not await held_rooms(tx.session)

        await eventually(nothing_held, what="A's rooms replaced or resumed")
        assert (await a2.json("GET", "/status", Role.viewer))["sync"]["held_rooms"] == []
        new_room = await pair_room_of(a2.node, b_org)
        assert new_room is not None and new_room != old_room

        async def b_took_the_new_room() -> bool:
            return await pair_room_of(b.node, a_org) == new_room

        await eventually(b_took_the_new_room, what="B's pair room with A replaced")
        for api in (a2, b):
            assert old_room not in await _pair_rooms(api)
            async with api.node.store.read() as tx:
                assert (await replaced_rooms(tx.session)).get(old_room) == new_room
        new_alert_room = await _alert_room(a2)
        assert new_alert_room not in (None, old_alert_room)
        async with a2.node.store.read() as tx:
            replaced = [e for e in await tx.audit.recent() if e.action == ROOM_REPLACED]
            assert (await replaced_rooms(tx.session)).get(old_alert_room) == new_alert_room
        assert sorted((e.target, e.details["old_room"], e.details["room_id"])
                      for e in replaced) == \
            sorted([(b_org, old_room, new_room), (a_org, old_alert_room, new_alert_room)])
        for api in (b, c):
            async def took_the_new_alert_room(api: RunningApi = api) -> bool:
                async with api.node.store.read() as tx:
                    rooms = await replaced_rooms(tx.session)
                return rooms.get(old_alert_room) == new_alert_room

            await eventually(took_the_new_alert_room, what="the new alert room taken")
        async with b.node.store.read() as tx:
            taken = [e.details for e in await tx.audit.recent() if e.action == ROOM_REPLACED]
        # B re-posted in the new rooms what it had posted after what A's backup held: two
        # shares and its answer to A's alert, all in the pair room (B answers an alert there,
        # decision 0033), nothing in the alert room.
        assert sorted((d["old_room"], d["room_id"], d["resent"]) for d in taken) == \
            sorted([(old_room, new_room, 3), (old_alert_room, new_alert_room, 0)])

        third = await share_case(a2, "addis", [b_org, c_org])
        await arrives_verified(b, a_org, third)
        await arrives_verified(c, a_org, third)
        back = await share_case(b, "addis", [a_org])
        await arrives_verified(a2, b_org, back)
        again = await _alert(a2)  # in the new alert room
        await _alert_arrives(b, a_org, again)
        await _alert_arrives(c, a_org, again)
        await respond(b.node, a_org, again, answer=SEEN, actor="beto", now=int(time.time()))
        await _answers(a2, again, {b_org: SEEN, c_org: "delivered"})

        for api in (a2, b, c):
            assert await quarantined_count(api) == 0
        for api in (b, c):
            assert await chain_gaps(api, a_org) == []
        assert await chain_gaps(a2, b_org) == []
        from_b = Counter(r["record_id"] for r in await received(a2) if r["issuer"] == b_org)
        assert from_b == Counter({before: 1, after_backup: 1, meanwhile: 1, back: 1})
        from_a = Counter(r["record_id"] for r in await received(b) if r["issuer"] == a_org)
        assert from_a == Counter({first: 1, second: 1, third: 1})


# --- a campaign room the seized account made --------------------------------------------------


def _proposal() -> dict[str, Any]:
    return {
        "title": "Liberen a la defensora Ligaya Dimaculangan",
        "goal": "Joint letter and UN urgent appeal for her release.",
        "targets": [{"name": "Department of Justice", "target_type": "government",
                     "country": "PH"}],
        "countries": ["PH"], "themes": ["criminalisation"], "asks": ["legal", "advocacy"],
        "min_organisations": 2, "deadline": iso_time(int(time.time()) + 7 * 86_400),
    }


async def _post(api: RunningApi, issuer: str, pid: str, title: str) -> None:
    await api.json("POST", f"/campaigns/{issuer}/{pid}/posts", expect=201, json={
        "post_type": "update", "title": title, "text": "Filed the petition."})


async def _campaign(api: RunningApi, issuer: str, pid: str) -> dict[str, Any] | None:
    answer = await api.call("GET", f"/campaigns/{issuer}/{pid}")
    return await answer.json() if answer.status == 200 else None


async def _posted(api: RunningApi, issuer: str, pid: str, titles: list[str]) -> None:
    """Exactly these posts, each once (posts issued in the same second may list either way)."""
    async def there() -> bool:
        view = await _campaign(api, issuer, pid)
        return view is not None and Counter(p["title"] for p in view["posts"]) == Counter(titles)

    await eventually(there, what=f"campaign posts {titles}")


async def test_a_campaign_room_the_seized_account_made_is_replaced(
    federation3: Federation, tmp_path: Path
) -> None:
    homes = [federation3[0], federation3[1], federation3[0]]
    b_cfg, a_cfg, c_cfg = await members_on(homes, tmp_path)
    coalition = await form_coalition([b_cfg, a_cfg, c_cfg])
    backup = tmp_path / "a.mingabackup"
    async with AsyncExitStack() as stack:
        b = await stack.enter_async_context(member_running(b_cfg, clock=WallClock()))
        await stack.enter_async_context(member_running(c_cfg, clock=WallClock()))
        async with member_running(a_cfg, clock=WallClock()) as a:
            a_org, b_org = a.node.org_id, b.node.org_id
            pid = (await a.json("POST", "/proposals", json=_proposal(), expect=201))["record_id"]

            async def proposed_at_b() -> bool:
                return (await b.call("GET", f"/proposals/{a_org}/{pid}")).status == 200

            await eventually(proposed_at_b, what="the proposal at B")
            await b.json("POST", f"/proposals/{a_org}/{pid}/responses",
                         json={"response": "join", "roles": ["legal"]})

            async def launched_at_b() -> bool:  # A's old account made the campaign room
                view = await _campaign(b, a_org, pid)
                return view is not None and view["room_id"] is not None

            await eventually(launched_at_b, what="the campaign room announced to B")
            old_room = (await _campaign(b, a_org, pid) or {})["room_id"]
            await _post(b, a_org, pid, "before the backup")
            await _posted(a, a_org, pid, ["before the backup"])
            create_backup(a_cfg, backup, PASSPHRASE, created_at=unix_now())
            await _post(b, a_org, pid, "after the backup")
            await _posted(a, a_org, pid, ["before the backup", "after the backup"])
        await _post(b, a_org, pid, "meanwhile")  # A's machine is seized

        restored = await restore_on_new_account(backup, tmp_path / "new-machine", federation3[2])
        moved = restored.moved
        await invite_member(b.node, moved.user_id)
        with passphrase_env():
            async with open_node(restored.config_file) as node:
                await join_coalition(node, coalition)
        a2 = await stack.enter_async_context(member_running(restored.config_file,
                                                            clock=WallClock()))
        await _posted(a2, a_org, pid, ["before the backup", "after the backup", "meanwhile"])

        async def nothing_held() -> bool:
            async with a2.node.store.read() as tx:
                return not await held_rooms(tx.session)

        await eventually(nothing_held, what="A's rooms replaced or resumed")
        async with a2.node.store.read() as tx:
            new_room = (await replaced_rooms(tx.session)).get(old_room)
            replaced = [e.details for e in await tx.audit.recent()
                        if e.action == ROOM_REPLACED and e.details["old_room"] == old_room]
        assert new_room is not None and [d["room_id"] for d in replaced] == [new_room]

        async def b_took_it() -> bool:
            async with b.node.store.read() as tx:
                return (await replaced_rooms(tx.session)).get(old_room) == new_room

        await eventually(b_took_it, what="B takes the new campaign room")
        await _post(a2, a_org, pid, "from the new machine")
        await _post(b, a_org, pid, "welcome back")
        everything = ["before the backup", "after the backup", "meanwhile",
                      "from the new machine", "welcome back"]
        await _posted(b, a_org, pid, everything)
        await _posted(a2, a_org, pid, everything)
        for api in (a2, b):
            assert await quarantined_count(api) == 0
        assert await chain_gaps(a2, b_org) == [] and await chain_gaps(b, a_org) == []
