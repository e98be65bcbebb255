"""Urgent alerts between member nodes on two federated homeservers (M8).

A (homeserver 1) alerts B (homeserver 2) and C (homeserver 1): one sealed event for both.
Acknowledgements come back on their own (B's in its pair room with A, C's in the alert room);
staff answers follow; a node that was offline catches up, in order, marked late; a
silent member is sent the alert again. No homeserver file holds any alert text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import nio

from deploy.homeserver import Federation
from federation.roster import MEMBER_EVENT_TYPE, member_entry
from node.cli import main as cli_main
from node.core.coalition import refresh_roster
from node.core.rooms import ensure_pair_room, pair_room_of
from node.core.runtime import Node, open_node
from node.features.alerts.room import NOTICE_TEMPLATE, saved_alert_room
from node.features.alerts.service import (
    DELIVERED,
    HELPING,
    MAX_RESENDS,
    SEEN,
    SENT,
    AlertSettings,
    AlertState,
    alert_timeline,
    arrival_order,
    escalate_due,
    list_alerts,
    load_state,
    member_capabilities,
    respond,
    save_state,
    send_alert,
    set_alert_settings,
    update_alert,
)
from node.features.alerts.watchers import AlertWatchers, invite_watchers, set_alert_watchers
from schemas.payloads import Alert, OrgProfile
from sync.frame import SEALED_EVENT_TYPE
from sync.outbox import RESEND_MARK
from tests.support.api_harness import RunningApi
from tests.support.matrix_client import events_of_type, logged_in, wait_for_invite
from tests.support.sharing import (
    ORGS,
    eventually,
    files_under,
    form_coalition,
    member_running,
    new_member,
    passphrase_env,
    search,
)

SECRET_TEXT = "Sntl-alerta: la defensora fue llevada a la estación de Suba"
SECRET_PLACE = "Sntl-lugar Vereda Alto Bonito"


def _alert(text: str = SECRET_TEXT, **extra: object) -> Alert:
    return Alert.model_validate({"alert_type": "arrest", "urgency": "critical",
                                 "country": "CO", "place": SECRET_PLACE,
                                 "asks": ["legal_support", "public_statement"], "text": text,
                                 **extra})


async def _configs(federation: Federation, tmp_path: Path) -> list[Path]:
    homes = [federation[0], federation[1], federation[0]]
    configs = [await new_member(home, tmp_path / f"org{i}", name, country)
               for i, (home, (name, country)) in enumerate(zip(homes, ORGS, strict=True))]
    await form_coalition(configs)
    return configs


class Members:
    """The three member nodes, each started and stopped on demand."""

    def __init__(self, configs: list[Path]) -> None:
        self.configs = configs
        self.running: dict[int, tuple[AsyncExitStack, RunningApi]] = {}

    async def start(self, index: int) -> RunningApi:
        stack = AsyncExitStack()
        api = await stack.enter_async_context(member_running(self.configs[index]))
        self.running[index] = (stack, api)
        return api

    async def stop(self, index: int) -> None:
        stack, _ = self.running.pop(index)
        await stack.aclose()

    def node(self, index: int) -> Node:
        return self.running[index][1].node


@asynccontextmanager
async def members(configs: list[Path], start: tuple[int, ...] = (0, 1, 2)
                  ) -> AsyncIterator[Members]:
    group = Members(configs)
    try:
        for index in start:
            await group.start(index)
        yield group
    finally:
        for index in list(group.running):
            await group.stop(index)


async def _state_at(node: Node, issuer: str, record_id: str) -> AlertState | None:
    return next((s for s in await list_alerts(node)
                 if s.issuer == issuer and s.record_id == record_id), None)


async def _arrived(node: Node, issuer: str, record_id: str, version: int = 1) -> AlertState:
    async def probe() -> AlertState | None:
        state = await _state_at(node, issuer, record_id)
        return state if state is not None and state.version >= version else None

    return await eventually(probe, what=f"alert {record_id} v{version} at {node.org_id}")


async def _statuses(node: Node, record_id: str, wanted: dict[str, str]) -> AlertState:
    async def probe() -> AlertState | None:
        state = await _state_at(node, node.org_id, record_id)
        if state is None:
            return None
        seen = {r.org_id: r.status for r in state.recipients}
        return state if seen == wanted else None

    return await eventually(probe, what=f"statuses {wanted}")


async def _sealed_envelopes_of(node: Node, room_id: str) -> list[dict[str, object]]:
    """The sealed envelopes ``node`` posted in ``room_id``, as the homeserver has them, less
    answered resends (the same envelope again, for a member that joined after it was posted:
    ``node.core.rooms.ask_for_backlog``)."""
    async with node.transport() as transport:
        events, _ = await transport.messages(room_id, None, limit=100)
        me = transport.user_id
    return [e.content["envelope"] for e in events
            if e.type == SEALED_EVENT_TYPE and e.sender == me and RESEND_MARK not in e.content]


async def _announce_capabilities(node: Node, capabilities: list[str]) -> None:
    """Publish this member's directory entry again, now with capabilities."""
    room = (await node.chosen_coalition(None)).room_id
    profile = OrgProfile(name=node.own.name, country=node.own.country,
                         capabilities=capabilities)
    async with node.transport() as transport:
        await transport.put_state(room, MEMBER_EVENT_TYPE, node.org_id,
                                  member_entry(node.keys, profile, transport.user_id))


async def _sees_capabilities(node: Node, org_id: str) -> bool:
    room = (await node.chosen_coalition(None)).room_id
    async with node.transport() as transport:
        await refresh_roster(node, transport, room)
    async with node.store.read() as tx:
        member = await tx.orgs.member(org_id)
    return bool(member_capabilities(member.entry))


async def test_an_alert_reaches_every_member_and_answers_flow_back(
    federation: Federation, tmp_path: Path
) -> None:
    configs = await _configs(federation, tmp_path)
    async with members(configs) as group:
        a, b, c = group.node(0), group.node(1), group.node(2)
        await _announce_capabilities(b, ["legal_support", "documentation"])
        await eventually(lambda: _sees_capabilities(a, b.org_id), what="B's capabilities")
        # B already has a pair room with A (C has none): B answers there, C in the alert room.
        async with b.transport() as transport:
            pair_room = await ensure_pair_room(b, transport, a.org_id)

        async def a_knows_the_pair_room() -> bool:
            return await pair_room_of(a, b.org_id) == pair_room

        await eventually(a_knows_the_pair_room, what="the A-B pair room at A")

        sent = await send_alert(a, _alert(), withhold=["case"], actor="ana",
                                now=int(time.time()))
        assert {r.org_id: r.status for r in sent.recipients} == {b.org_id: SENT,
                                                                  c.org_id: SENT}
        matching = {r.org_id: r.matches_ask for r in sent.recipients}
        assert matching == {b.org_id: True, c.org_id: False}

        at_b = await _arrived(b, a.org_id, sent.record_id)
        at_c = await _arrived(c, a.org_id, sent.record_id)
        for state in (at_b, at_c):
            assert state.claims["text"] == SECRET_TEXT
            assert state.claims["place"] == SECRET_PLACE
            assert state.claims["alert_type"] == "arrest" and not state.late
            assert state.unacknowledged  # staff have not answered yet
        await _statuses(a, sent.record_id, {b.org_id: DELIVERED, c.org_id: DELIVERED})
        # One token, one envelope for both (decision 0033): A posted ONE sealed event in its
        # alert room, sealed to B and C, which both opened and acknowledged.
        (envelope,) = await _sealed_envelopes_of(a, sent.room_id)
        assert isinstance(envelope["recipients"], list) and len(envelope["recipients"]) == 2
        # B's acknowledgement went to A in their pair room, C's (no pair room) in the alert room.
        assert await _sealed_envelopes_of(b, sent.room_id) == []
        assert len(await _sealed_envelopes_of(b, pair_room)) == 1
        assert len(await _sealed_envelopes_of(c, sent.room_id)) == 1

        await respond(b, a.org_id, sent.record_id, answer=HELPING, offers=["legal_support"],
                      actor="beto", now=int(time.time()))
        await respond(c, a.org_id, sent.record_id, answer=SEEN, actor="caro",
                      now=int(time.time()))
        final = await _statuses(a, sent.record_id, {b.org_id: HELPING, c.org_id: SEEN})
        helping = final.recipient(b.org_id)
        assert helping is not None and [o.capability for o in helping.offers] == [
            "legal_support"]
        assert not final.unacknowledged
        # A second answer adds to the first offer; every answer arrives with its time.
        await respond(b, a.org_id, sent.record_id, answer=HELPING, offers=["relocation"],
                      actor="beto", now=int(time.time()))

        async def both_offers() -> AlertState | None:
            state = await _state_at(a, a.org_id, sent.record_id)
            member = state.recipient(b.org_id) if state else None
            return state if member and len(member.offers) == 2 else None

        offered = (await eventually(both_offers, what="B's two offers")).recipient(b.org_id)
        assert offered is not None
        assert {o.capability for o in offered.offers} == {"legal_support", "relocation"}
        assert all(o.at is not None for o in offered.offers)
        assert [e.status for e in offered.answers] == [DELIVERED, HELPING, HELPING]
        assert all(e.at is not None for e in offered.answers)
        # Staff answers take the same way as the acknowledgement.
        assert await _sealed_envelopes_of(b, sent.room_id) == []
        assert len(await _sealed_envelopes_of(b, pair_room)) == 3
        assert len(await _sealed_envelopes_of(c, sent.room_id)) == 2

        # Updated ("released"), closed, then reopened with a reason: every member sees the
        # alert's text as sent and every update in order.
        await update_alert(a, sent.record_id, status="released", text="Sntl liberada",
                           actor="ana", now=int(time.time()))
        released = await _arrived(b, a.org_id, sent.record_id, version=2)
        assert released.status == "released" and released.claims["text"] == SECRET_TEXT
        assert [(u.seq, u.text) for u in released.updates] == [(1, "Sntl liberada")]
        await update_alert(a, sent.record_id, status="closed", actor="ana",
                           now=int(time.time()))
        closed = await _arrived(c, a.org_id, sent.record_id, version=3)
        assert closed.status == "closed" and not closed.unacknowledged
        await update_alert(a, sent.record_id, status="active", reason="Sntl detenida otra vez",
                           actor="ana", now=int(time.time()))
        reopened = await _arrived(c, a.org_id, sent.record_id, version=4)
        await _arrived(b, a.org_id, sent.record_id, version=4)
        # The alert and its three updates: one sealed event each, whoever they go to.
        assert len(await _sealed_envelopes_of(a, sent.room_id)) == 4
        assert [(e.update.seq, e.update.status, e.reopened)
                for e in alert_timeline(reopened)] == [
            (1, "released", False), (2, "closed", False), (3, "active", True)]
        assert reopened.claims["text"] == SECRET_TEXT

        # The alert room carries, in clear, only the content-free notice.
        assert sent.coalition_id == (await a.chosen_coalition(None)).coalition_id
        room = await saved_alert_room(a, sent.coalition_id)
        assert room is not None
        async with a.transport() as transport:
            events, _ = await transport.messages(room["room_id"], None, limit=100)
        notices = [e.content for e in events if e.type == "m.room.message"]
        assert notices == [{"msgtype": "m.notice",
                            "body": NOTICE_TEMPLATE.format(org=ORGS[0][0])}]
        for node in (a, b, c):
            await node.store.checkpoint()

    homeserver_files = [p for server in federation for p in files_under(server.directory)
                        if ".db" in p.name or "log" in p.name or p.name.endswith(".stdout")
                        or "media_store" in p.parts]
    assert search(homeserver_files, [ORGS[0][0]])  # the search finds what is in clear
    assert search(homeserver_files, [SECRET_TEXT, SECRET_PLACE]) == []
    node_files = [p for i in range(3) for p in files_under(tmp_path / f"org{i}")]
    assert search(node_files, [SECRET_TEXT, SECRET_PLACE]) == []


async def test_a_member_offline_gets_every_missed_alert_in_order_marked_late(
    federation: Federation, tmp_path: Path
) -> None:
    configs = await _configs(federation, tmp_path)
    async with members(configs) as group:
        a, b = group.node(0), group.node(1)
        first = await send_alert(a, _alert("Sntl first"), actor="ana", now=int(time.time()))
        await _arrived(b, a.org_id, first.record_id)
        # B's automatic acknowledgement goes out just after B stored the alert: back at A, it
        # has gone out.
        await _statuses(a, first.record_id, {b.org_id: DELIVERED,
                                             group.node(2).org_id: DELIVERED})
        async with b.store.transaction() as tx:  # before B stops: its setting for later
            await tx.settings.set("alert_settings",
                                  AlertSettings(late_after_seconds=1).model_dump())
        b_org = b.org_id
        await group.stop(1)
        with passphrase_env():  # as if B stopped right after storing an answer, before sending it
            async with open_node(configs[1]) as offline, offline.store.transaction() as tx:
                owed = await load_state(tx, a.org_id, first.record_id)
                assert owed is not None and not owed.ack_owed  # the automatic one went out
                owed.answer, owed.ack_version, owed.ack_owed = SEEN, owed.ack_version + 1, True
                await save_state(tx, owed)

        missed = []
        for text in ("Sntl second", "Sntl third"):
            missed.append(await send_alert(a, _alert(text), actor="ana", now=int(time.time())))
        await _statuses(a, missed[-1].record_id,
                        {b_org: SENT, group.node(2).org_id: DELIVERED})
        await asyncio.sleep(2.5)  # longer than B's late threshold: B is away that long

        b = (await group.start(1)).node
        for alert in missed:
            await _arrived(b, a.org_id, alert.record_id)
        at_b = arrival_order([s for s in await list_alerts(b) if s.issuer == a.org_id])
        assert [s.claims["text"] for s in at_b] == ["Sntl first", "Sntl second",
                                                    "Sntl third"]
        assert [s.late for s in at_b] == [False, True, True]
        assert [s.arrived_at >= s.issued_at for s in at_b] == [True, True, True]
        for alert in missed:
            await _statuses(a, alert.record_id, {b_org: DELIVERED,
                                                 group.node(2).org_id: DELIVERED})
        await _statuses(a, first.record_id, {b_org: SEEN, group.node(2).org_id: DELIVERED})

        # The same from the command line, while A's node runs.
        with passphrase_env():
            status = await asyncio.to_thread(cli_main, [
                "--config", str(configs[0]), "alert", "send", "--type", "raid",
                "--country", "CO", "--text", "Sntl from the command line",
                "--ask", "public_statement", "--to", b_org])
        assert status == 0

        async def from_cli() -> AlertState | None:
            return next((s for s in await list_alerts(b)
                         if s.claims.get("text") == "Sntl from the command line"), None)

        cli_alert = await eventually(from_cli, what="the alert sent with minga alert send")
        assert cli_alert.claims["alert_type"] == "raid"


async def test_escalation_sends_again_to_a_silent_member(
    federation: Federation, tmp_path: Path
) -> None:
    configs = await _configs(federation, tmp_path)
    async with members(configs, start=(0, 1)) as group:
        a, b = group.node(0), group.node(1)
        await set_alert_settings(a, AlertSettings(escalate_after_seconds=5))
        sent_at = int(time.time())
        sent = await send_alert(a, _alert(), actor="ana", now=sent_at)
        c_org = next(r.org_id for r in sent.recipients if r.org_id != b.org_id)
        await _statuses(a, sent.record_id, {b.org_id: DELIVERED, c_org: SENT})

        assert await escalate_due(a, now=sent_at + 1) == {}  # not yet due
        resent = await escalate_due(a, now=sent_at + 6)
        assert resent == {sent.record_id: [c_org]}
        state = await _state_at(a, a.org_id, sent.record_id)
        assert state is not None and state.unacknowledged
        marks = {r.org_id: r.resends for r in state.recipients}
        assert marks == {b.org_id: 0, c_org: 1}
        assert await escalate_due(a, now=sent_at + 7) == {}  # waits again after a re-send
        for later in range(2, MAX_RESENDS + 3):  # a member silent for long: re-sends stop
            await escalate_due(a, now=sent_at + 6 * later)
        capped = await _state_at(a, a.org_id, sent.record_id)
        assert capped is not None
        assert {r.org_id: r.resends for r in capped.recipients} == {b.org_id: 0,
                                                                    c_org: MAX_RESENDS}

        c = (await group.start(2)).node
        await _arrived(c, a.org_id, sent.record_id)
        answered = await _statuses(a, sent.record_id, {b.org_id: DELIVERED, c_org: DELIVERED})
        assert not answered.unacknowledged
        assert await escalate_due(a, now=sent_at + 600) == {}


async def test_staff_watchers_get_the_content_free_push_in_an_ordinary_matrix_client(
    federation: Federation, tmp_path: Path
) -> None:
    configs = await _configs(federation, tmp_path)
    watcher_a = federation[0].create_account("ana-phone")
    watcher_b = federation[1].create_account("beto-phone")
    async with members(configs) as group:
        a, b = group.node(0), group.node(1)
        await set_alert_watchers(a, AlertWatchers(users=[watcher_a.user_id]), actor="admin")
        await set_alert_watchers(b, AlertWatchers(users=[watcher_b.user_id]), actor="admin")
        first = await send_alert(a, _alert(), withhold=["case"], actor="ana",
                                 now=int(time.time()))
        await _arrived(b, a.org_id, first.record_id)
        assert first.coalition_id is not None
        room = await saved_alert_room(a, first.coalition_id)
        assert room is not None and room["room_id"] == first.room_id

        # A invites its own watcher; B, a member node of A's alert room, invites B's.
        for account in (watcher_a, watcher_b):
            async with logged_in(account) as phone:
                await wait_for_invite(phone, first.room_id, timeout=60)
                joined = await phone.join(first.room_id)
                assert isinstance(joined, nio.JoinResponse), joined

        second = await send_alert(a, _alert(text=SECRET_TEXT + " (2)"), withhold=["case"],
                                  actor="ana", now=int(time.time()))
        await _arrived(b, a.org_id, second.record_id)
        async with logged_in(watcher_b) as phone:
            notices = await events_of_type(phone, first.room_id, "m.room.message", 1,
                                           timeout=60)
            assert {n["content"]["body"] for n in notices} == {
                NOTICE_TEMPLATE.format(org=ORGS[0][0])}
            # A watcher only listens: it cannot post into the alert room.
            posted = await phone.room_send(first.room_id, "m.room.message",
                                           {"msgtype": "m.text", "body": "hola"})
            assert isinstance(posted, nio.RoomSendError), posted
        # Each watcher is invited once, however many alerts follow.
        assert await invite_watchers_now(b) == 0


async def invite_watchers_now(node: Node) -> int:
    async with node.transport() as transport:
        return await invite_watchers(node, transport)
