"""The alert pages on one node: forms without JavaScript, live updates by server-sent events."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp

from deploy.homeserver import Homeserver
from federation.identity import OrgKeys, sign_member_entry
from node.core.runtime import Node
from node.features.alerts.service import (
    AlertState,
    RecipientState,
    _fields,
    bus_of,
    list_alerts,
    on_alert,
    on_alert_ack,
    save_state,
    state_key,
)
from sync.host import VerifiedRecord, committed_actions, run_committed
from tests.support.coalitions import TEST_COALITION, in_coalition
from tests.support.web import running_web

OTHER_ORG = "o" + "q" * 25
RECORD_ID = "0190a5c4-0000-7000-8000-0000000000aa"


async def _receive_alert(node: Node, text: str) -> AlertState:
    """An alert as the inbox handler leaves it (no member sends one in this test)."""
    now = int(time.time())
    state = AlertState(issuer=OTHER_ORG, record_id=RECORD_ID, version=1, own=False,
                       claims={"alert_type": "enforced_disappearance", "urgency": "critical",
                               "country": "CO", "asks": ["legal_support"], "text": text,
                               "status": "active"},
                       issued_at=now - 600, arrived_at=now, late=True, room_id="!r:x",
                       coalition_id=TEST_COALITION, updated_at=now, answer="delivered")
    async with node.store.transaction() as tx:
        await save_state(tx, state)
    bus_of(node).notify()
    return state


async def _next_event(stream: aiohttp.StreamReader) -> dict[str, Any]:
    """The data of the next ``alerts`` event (keepalive comments skipped)."""
    event: str | None = None
    while True:
        line = (await asyncio.wait_for(stream.readline(), 30)).decode().rstrip("\n")
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == "alerts":
            data: dict[str, Any] = json.loads(line.removeprefix("data: "))
            return data


async def test_alert_pages_work_without_javascript_and_refuse_clearly(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    async with running_web(homeserver, tmp_path / "node") as site:
        editor = await site.logged_in("beatriz")
        page = await editor.get("/alerts")
        assert page.status == 200 and "/alerts/new" in page.text
        form = await editor.get("/alerts/new")
        assert 'name="alert_type"' in form.text and 'name="withhold"' in form.text
        nowhere = await editor.post("/alerts/new", {"alert_type": "arrest", "urgency": "high",
                                                    "country": "CO", "text": "Sntl detenido"})
        assert nowhere.status == 422 and "no coalition yet" in nowhere.text
        async with site.node.store.transaction() as tx:
            await in_coalition(tx)
        site.node.forget_coalitions()
        form = await editor.get("/alerts/new")  # one coalition: chosen without asking
        assert f'type="hidden" name="coalition" value="{TEST_COALITION}"' in form.text
        incomplete = await editor.post("/alerts/new", {"alert_type": "arrest",
                                                       "urgency": "critical",
                                                       "country": "CO", "text": ""})
        assert incomplete.status == 422 and "text" in incomplete.text
        alone = await editor.post("/alerts/new", {"alert_type": "arrest", "urgency": "high",
                                                  "country": "CO", "text": "Sntl detenido"})
        assert alone.status == 409 and "no other verified member" in alone.text
        assert "Sntl detenido" in alone.text  # the form keeps what was typed

        async with site.node.store.transaction() as tx:
            await in_coalition(tx, coalition_id="!second:test", name="Red Sur")
        site.node.forget_coalitions()
        form = await editor.get("/alerts/new")  # several: staff pick one
        assert '<select id="a-coalition" name="coalition" required>' in form.text
        assert f'<option value="{TEST_COALITION}">c</option>' in form.text
        assert '<option value="!second:test">Red Sur</option>' in form.text
        unpicked = await editor.post("/alerts/new", {"alert_type": "arrest", "urgency": "high",
                                                     "country": "CO", "text": "Sntl detenido"})
        assert unpicked.status == 422 and "several coalitions" in unpicked.text
        picked = await editor.post("/alerts/new", {
            "alert_type": "arrest", "urgency": "high", "country": "CO", "text": "Sntl detenido",
            "coalition": "!second:test"})
        assert picked.status == 409 and "no other verified member" in picked.text
        assert '<option value="!second:test" selected>Red Sur</option>' in picked.text

        viewer = await site.logged_in("chidi")
        assert (await viewer.get("/alerts/new")).status == 403
        assert "/alerts/new" not in (await viewer.get("/alerts")).text


async def test_open_pages_learn_of_a_new_alert_by_server_sent_events(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    async with running_web(homeserver, tmp_path / "node") as site:
        async with site.node.store.transaction() as tx:
            await in_coalition(tx, name="Red Andina")
        site.node.forget_coalitions()
        viewer = await site.logged_in("chidi")
        async with viewer.session.get(site.base + "/alerts") as listing:
            policy = listing.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "connect-src 'self'" in policy
        async with viewer.session.get(site.base + "/alerts/events") as events:
            assert events.headers["Content-Type"].startswith("text/event-stream")
            first = await _next_event(events.content)
            assert first == {"alerts": [], "unacknowledged": 0, "newest": 0}
            state = await _receive_alert(site.node, "Sntl desaparecida en Bogotá")
            second = await _next_event(events.content)
        assert second["unacknowledged"] == 1
        assert second["alerts"] == [f"{OTHER_ORG}/{RECORD_ID}/1/{state.updated_at}"]
        assert "Sntl" not in json.dumps(second)  # the stream carries no alert content

        dashboard = await viewer.get("/")
        assert "Urgent alerts waiting for an answer" in dashboard.text
        assert dashboard.text.index("Sntl desaparecida") < dashboard.text.index('id="pending"')
        fragment = await viewer.get("/alerts/fragment")
        assert "Sntl desaparecida en Bogotá" in fragment.text
        listed = await viewer.get("/alerts")
        assert "Waiting for an answer" in listed.text and "Arrived late" in listed.text
        assert "In coalition Red Andina" in listed.text and "(left)" not in listed.text
        detail = await viewer.get(f"/alerts/{OTHER_ORG}/{RECORD_ID}")
        assert detail.status == 200 and "Sntl desaparecida en Bogotá" in detail.text
        assert "In coalition Red Andina" in detail.text
        assert 'value="helping"' not in detail.text  # viewers cannot answer
        editor = await site.logged_in("beatriz")
        editable = await editor.get(f"/alerts/{OTHER_ORG}/{RECORD_ID}")
        assert 'value="helping"' in editable.text and 'name="offers"' in editable.text
        assert (await viewer.get(f"/alerts/{OTHER_ORG}/{'0' * 8}-0000-7000-8000-"
                                 f"{'0' * 12}")).status == 404

        async with site.node.store.transaction() as tx:
            await tx.coalitions.mark_left(TEST_COALITION)
        site.node.forget_coalitions()
        assert "In coalition Red Andina (left)" in (await viewer.get("/alerts")).text


async def test_a_received_alert_wakes_open_pages_once_it_has_committed(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    """Woken inside the inbox's transaction, a page would read the alerts before the new one
    is there, and show it only at the next change."""
    async with running_web(homeserver, tmp_path / "node") as site:
        node = site.node
        now = int(time.time())
        record = VerifiedRecord(
            issuer=OTHER_ORG, record_id=RECORD_ID, version=1, kind="alert",
            claims={"alert_type": "raid", "urgency": "high", "country": "CO",
                    "text": "Sntl allanamiento", "status": "active",
                    "coalition": TEST_COALITION},
            disclosed_paths=frozenset(), issued_at=now, room_id="!r:x", event_id="$e",
            origin_server_ts=now * 1000)
        async with bus_of(node).listen() as changed:
            async with node.store.transaction() as tx:
                await on_alert(tx.session, node, record)
                assert not changed.is_set()
                actions = committed_actions(tx.session)
            assert not changed.is_set()
            run_committed(actions)
            assert changed.is_set()
        assert [(s.issuer, s.record_id) for s in await list_alerts(node)] == [
            (OTHER_ORG, RECORD_ID)]


async def test_an_alert_page_shows_updates_in_order_and_reopening_needs_a_reason(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    async with running_web(homeserver, tmp_path / "node") as site:
        node = site.node
        member = OrgKeys.generate()
        now = int(time.time())
        async with node.store.transaction() as tx:
            await tx.orgs.save_member(member.org_id, sign_member_entry(member, {
                "name": "Haki Ardhi Trust", "country": "KE"}), verified=True, safety_code="s",
                matrix_user_id="@member:hs")
            await in_coalition(tx, member.org_id)
            await save_state(tx, AlertState(
                issuer=node.org_id, record_id=RECORD_ID, version=1, own=True,
                claims={"alert_type": "arrest", "urgency": "critical", "country": "CO",
                        "text": "Sntl detenida en Suba", "status": "active", "updates": []},
                issued_at=now, arrived_at=now, room_id="!r:x", coalition_id=TEST_COALITION,
                updated_at=now, fields=_fields([]),
                recipients=[RecipientState(org_id=member.org_id, last_sent_at=now)]))
        node.forget_coalitions()
        page = f"/alerts/{node.org_id}/{RECORD_ID}"
        editor = await site.logged_in("beatriz")
        for status, text in (("released", "Sntl liberada esta tarde"), ("closed", "")):
            done = await editor.submit(page, page + "/status", {"status": status, "text": text,
                                                                 "reason": ""})
            assert done.status == 200 and done.path == page
        shown = await editor.get(page)
        assert "Sntl detenida en Suba" in shown.text  # the alert's text stays as sent
        assert shown.text.index("Update 1") < shown.text.index("Sntl liberada esta tarde") \
            < shown.text.index("Update 2")
        assert "Reopen the alert" in shown.text and 'name="reason"' in shown.text

        refused = await editor.submit(page, page + "/status", {"status": "active",
                                                                "text": "", "reason": " "})
        assert refused.status == 422
        assert "Reason: a closed alert is reopened only with a reason." in refused.text
        await editor.post("/language", {"language": "es", "next": page})
        en_espanol = await editor.submit(page, page + "/status", {"status": "active",
                                                                   "reason": ""})
        assert en_espanol.status == 422
        assert "una alerta cerrada solo se reabre indicando el motivo" in en_espanol.text
        assert "Reabrir la alerta" in en_espanol.text
        await editor.post("/language", {"language": "en", "next": page})

        reopened = await editor.submit(page, page + "/status", {
            "status": "active", "text": "", "reason": "Sntl detenida otra vez"})
        assert reopened.status == 200
        assert "Reopened" in reopened.text and "Reason: Sntl detenida otra vez" in reopened.text
        assert "Update the alert" in reopened.text


async def test_answers_and_offers_show_their_times_or_that_they_are_unknown(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    """Answers arrive as the inbox gives them; a member's state saved before answers had times
    (the stored shape of then) says the time is unknown."""
    async with running_web(homeserver, tmp_path / "node") as site:
        node = site.node
        now = int(time.time())
        async with node.store.transaction() as tx:
            await in_coalition(tx, OTHER_ORG)  # the state was saved before 0032: the first's
            await tx.settings.set(state_key(node.org_id, RECORD_ID), {
                "issuer": node.org_id, "record_id": RECORD_ID, "version": 1, "own": True,
                "claims": {"alert_type": "arrest", "urgency": "critical", "country": "CO",
                           "text": "Sntl detenida", "status": "active"},
                "issued_at": now, "arrived_at": now, "room_id": "!r:x", "updated_at": now,
                "recipients": [
                    {"org_id": OTHER_ORG, "status": "helping", "offers": ["legal_support"],
                     "ack_version": 2, "last_sent_at": now, "answered_at": now}]})
        ack = VerifiedRecord(
            issuer=OTHER_ORG, record_id="0190a5c4-0000-7000-8000-0000000000ee", version=3,
            kind="alert-ack", claims={
                "issued_at": 1_780_000_300, "status": "helping",
                "alert": {"issuer": node.org_id, "record_id": RECORD_ID},
                "offers": ["legal_support", "relocation"],
                "offered": [{"capability": "relocation", "at": 1_780_000_300}],
                "coalition": TEST_COALITION},
            disclosed_paths=frozenset(), issued_at=1_780_000_300, room_id="!r:x",
            event_id="$e", origin_server_ts=now * 1000)
        async with node.store.transaction() as tx:
            await on_alert_ack(tx.session, node, ack)
        viewer = await site.logged_in("chidi")
        shown = await viewer.get(f"/alerts/{node.org_id}/{RECORD_ID}")
        assert "Legal support · time unknown" in shown.text
        assert "Relocation · May 28, 2026, 8:31:40\u202fPM UTC" in shown.text
        assert "Helping · time unknown" in shown.text
