"""The alert endpoints on one node: validation, roles, settings, refusals before sending, and
the timelines (updates, answers, offers) with their times, old stored state included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deploy.homeserver import Homeserver
from federation.identity import OrgKeys, sign_member_entry
from node.core.runtime import Node
from node.core.store import Role
from node.features.alerts.service import (
    AlertState,
    RecipientState,
    _fields,
    on_alert,
    on_alert_ack,
    save_state,
    state_key,
)
from sync.host import VerifiedRecord, committed_actions, run_committed
from tests.support.api_harness import running_api
from tests.support.coalitions import TEST_COALITION, in_coalition

GOOD = {"alert_type": "arrest", "country": "CO", "text": "Sntl detenida en Suba",
        "asks": ["legal_support"]}


async def test_alert_endpoints_validate_and_refuse_without_members(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    async with running_api(homeserver, tmp_path / "node") as api:
        assert await api.json("GET", "/alerts", Role.viewer) == {"items": []}

        bad = await api.json("POST", "/alerts", json={**GOOD, "alert_type": "picnic",
                                                      "country": "XX"}, expect=422)
        fields = {f["field"] for f in bad["error"]["fields"]}
        assert {"body.alert_type", "body.country"} <= fields
        assert "Sntl" not in str(bad)

        twice = await api.json("POST", "/alerts",
                               json={**GOOD, "asks": ["legal_support", "legal_support"]},
                               expect=422)
        assert [f["field"] for f in twice["error"]["fields"]] == ["body.asks"]
        nowhere = await api.json("POST", "/alerts", json=GOOD, expect=422)
        assert [f["field"] for f in nowhere["error"]["fields"]] == ["body.coalition"]
        async with api.node.store.transaction() as tx:
            await in_coalition(tx)
        api.node.forget_coalitions()
        alone = await api.json("POST", "/alerts", json=GOOD, expect=422)
        assert "no other verified member" in alone["error"]["message"]
        withheld = await api.json("POST", "/alerts", json={**GOOD, "withhold": ["text"]},
                                  expect=422)
        assert "cannot withhold text" in withheld["error"]["message"]
        stranger = await api.json("POST", "/alerts",
                                  json={**GOOD, "recipients": ["o" + "z" * 25]}, expect=422)
        assert stranger["error"]["fields"][0]["field"] == "body.recipients"
        unknown = await api.json("POST", "/alerts", json={**GOOD, "coalition": "!other:hs"},
                                 expect=422)
        assert [f["field"] for f in unknown["error"]["fields"]] == ["body.coalition"]
        await api.json("POST", "/alerts", Role.viewer, json=GOOD, expect=403)
        assert await api.json("GET", "/alerts", Role.viewer) == {"items": []}

        missing = "0190a5c4-0000-7000-8000-0000000000aa"
        await api.json("GET", f"/alerts/{api.node.org_id}/{missing}", Role.viewer, expect=404)
        await api.json("POST", f"/alerts/{missing}/status", json={"status": "closed"},
                       expect=404)
        await api.json("POST", f"/alerts/{api.node.org_id}/{missing}/answer",
                       json={"answer": "seen"}, expect=404)
        await api.json("POST", f"/alerts/{api.node.org_id}/{missing}/answer",
                       json={"answer": "maybe"}, expect=422)


async def test_alert_settings_are_for_admins(homeserver: Homeserver, tmp_path: Path) -> None:
    async with running_api(homeserver, tmp_path / "node") as api:
        defaults = await api.json("GET", "/alerts/settings", Role.admin)
        assert defaults == {"escalate_after_seconds": 600, "late_after_seconds": 120}
        await api.json("GET", "/alerts/settings", Role.editor, expect=403)
        changed = {"escalate_after_seconds": 90, "late_after_seconds": 30}
        assert await api.json("PUT", "/alerts/settings", Role.admin, json=changed) == changed
        assert await api.json("GET", "/alerts/settings", Role.admin) == changed
        await api.json("PUT", "/alerts/settings", Role.admin,
                       json={"escalate_after_seconds": 0}, expect=422)


async def test_alert_watchers_are_for_admins_and_must_be_matrix_accounts(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    async with running_api(homeserver, tmp_path / "node") as api:
        assert await api.json("GET", "/alerts/watchers", Role.admin) == {"users": []}
        await api.json("PUT", "/alerts/watchers", Role.editor, json={"users": []}, expect=403)
        refused = await api.json("PUT", "/alerts/watchers", Role.admin,
                                 json={"users": ["ana@example.org"]}, expect=422)
        assert [f["field"] for f in refused["error"]["fields"]] == ["body.users[0]"]
        chosen = {"users": ["@beto:example.org", "@ana:example.org", "@ana:example.org"]}
        saved = await api.json("PUT", "/alerts/watchers", Role.admin, json=chosen)
        assert saved == {"users": ["@ana:example.org", "@beto:example.org"]}
        assert await api.json("GET", "/alerts/watchers", Role.admin) == saved


# --- timelines: updates, answers and offers with their times ----------------------------------

MEMBER_KEYS = OrgKeys.generate()
MEMBER = MEMBER_KEYS.org_id
ALERT_ID = "0190a5c4-0000-7000-8000-0000000000bb"
ISSUED = 1_780_000_000  # 2026-05-28T20:26:40Z


def _claims(text: str = "Sntl detenida en Suba") -> dict[str, Any]:
    return {"alert_type": "arrest", "urgency": "critical", "country": "CO",
            "asks": ["legal_support"], "text": text, "status": "active", "updates": []}


async def _add_member(node: Node) -> None:
    async with node.store.transaction() as tx:
        await tx.orgs.save_member(MEMBER, sign_member_entry(MEMBER_KEYS, {
            "name": "Haki Ardhi Trust", "country": "KE"}), verified=True, safety_code="s",
            matrix_user_id="@member:hs")
        await in_coalition(tx, MEMBER)
    node.forget_coalitions()


async def _store_own_alert(node: Node) -> AlertState:
    """Our alert, sent to the member (as :func:`send_alert` leaves it; no room is needed)."""
    await _add_member(node)
    state = AlertState(issuer=node.org_id, record_id=ALERT_ID, version=1, own=True,
                       claims=_claims(), issued_at=ISSUED, arrived_at=ISSUED,
                       room_id="!alerts:x", coalition_id=TEST_COALITION, updated_at=ISSUED,
                       fields=_fields([]),
                       recipients=[RecipientState(org_id=MEMBER, last_sent_at=ISSUED)])
    async with node.store.transaction() as tx:
        await save_state(tx, state)
    return state


def _record(issuer: str, record_id: str, version: int, kind: str, claims: dict[str, Any],
            issued_at: int) -> VerifiedRecord:
    return VerifiedRecord(
        issuer=issuer, record_id=record_id, version=version, kind=kind,
        claims={"issuer": issuer, "record_id": record_id, "version": version, "kind": kind,
                "issued_at": issued_at, "coalition": TEST_COALITION, **claims},
        disclosed_paths=frozenset(), issued_at=issued_at, room_id="!alerts:x", event_id="$e",
        origin_server_ts=issued_at * 1000)


async def _handle(node: Node, handler: Any, record: VerifiedRecord) -> None:
    """A record handler as the inbox runs it: in a transaction, follow-ups after commit."""
    async with node.store.transaction() as tx:
        await handler(tx.session, node, record)
        actions = committed_actions(tx.session)
    run_committed(actions)


async def test_updates_keep_the_alert_text_and_reopening_needs_a_reason(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    async with running_api(homeserver, tmp_path / "node") as api:
        me = api.node.org_id
        await _store_own_alert(api.node)
        path = f"/alerts/{ALERT_ID}/status"
        released = await api.json("POST", path, json={
            "status": "released", "text": "Sntl liberada esta tarde"})
        assert released["status"] == "released"
        assert released["text"] == released["claims"]["text"] == "Sntl detenida en Suba"
        assert "updates" not in released["claims"]  # shown once, with ISO 8601 times
        [first] = released["updates"]
        assert first["seq"] == 1 and first["text"] == "Sntl liberada esta tarde"
        assert released["issuer_name"] == api.node.own.name
        assert first["by"] == me and first["by_name"] == api.node.own.name
        assert first["at"].endswith("Z") and not first["reopened"]
        assert released["issued_at"] == "2026-05-28T20:26:40Z"
        assert released["missing_updates"] == []
        assert (released["coalition"], released["coalition_name"],
                released["coalition_left"]) == (TEST_COALITION, "c", False)

        await api.json("POST", path, json={"status": "closed"})
        for body in ({"status": "active"}, {"status": "active", "reason": "   "},
                     {"status": "released", "reason": ""}):
            refused = await api.json("POST", path, json=body, expect=422)
            assert [f["field"] for f in refused["error"]["fields"]] == ["body.reason"]
        reopened = await api.json("POST", path, json={"status": "active",
                                                      "reason": "detenida otra vez"})
        assert [(u["seq"], u["status"], u["reopened"]) for u in reopened["updates"]] == [
            (1, "released", False), (2, "closed", False), (3, "active", True)]
        assert reopened["updates"][2]["reason"] == "detenida otra vez"
        assert reopened["version"] == 4 and reopened["status"] == "active"
        listed = await api.json("GET", "/alerts", Role.viewer)
        assert listed["items"][0]["updates"] == reopened["updates"]
        async with api.node.store.transaction() as tx:
            await tx.coalitions.mark_left(TEST_COALITION)
        api.node.forget_coalitions()
        listed = await api.json("GET", "/alerts", Role.viewer)
        assert listed["items"][0]["coalition_left"] is True
        gone = await api.json("POST", path, json={"status": "closed"}, expect=422)
        assert [f["field"] for f in gone["error"]["fields"]] == ["body.coalition"]
        await api.json("POST", path, json={"status": "closed", "when": "now"}, expect=422)


async def test_received_updates_are_placed_in_order_and_answers_keep_their_times(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    async with running_api(homeserver, tmp_path / "node") as api:
        node, me = api.node, api.node.org_id
        await _add_member(node)
        received_id = "0190a5c4-0000-7000-8000-0000000000cc"

        def update(seq: int, status: str, at: int) -> dict[str, Any]:
            return {"seq": seq, "status": status, "text": f"Sntl update {seq}", "at": at,
                    "by": MEMBER}

        one, two = update(1, "released", ISSUED + 60), update(2, "closed", ISSUED + 120)
        await _handle(node, on_alert, _record(MEMBER, received_id, 1, "alert", _claims(),
                                              ISSUED))
        # Version 3 (updates 1 and 2) arrives before version 2, which then arrives twice.
        await _handle(node, on_alert, _record(
            MEMBER, received_id, 3, "alert",
            {**_claims(), "status": "closed", "updates": [one, two]}, ISSUED + 120))
        for _ in range(2):
            await _handle(node, on_alert, _record(
                MEMBER, received_id, 2, "alert",
                {**_claims(), "status": "released", "updates": [one]}, ISSUED + 60))
        view = await api.json("GET", f"/alerts/{MEMBER}/{received_id}", Role.viewer)
        assert view["status"] == "closed" and view["version"] == 3
        assert view["text"] == "Sntl detenida en Suba"
        assert [(u["seq"], u["status"], u["at"]) for u in view["updates"]] == [
            (1, "released", "2026-05-28T20:27:40Z"), (2, "closed", "2026-05-28T20:28:40Z")]
        assert view["answers"][0]["status"] == "delivered" and view["answers"][0]["at"]

        # Only update 2 reached a node so far: it is kept, and 1 is shown as missing.
        late_id = "0190a5c4-0000-7000-8000-0000000000dd"
        await _handle(node, on_alert, _record(
            MEMBER, late_id, 3, "alert", {**_claims(), "status": "closed", "updates": [two]},
            ISSUED + 120))
        late = await api.json("GET", f"/alerts/{MEMBER}/{late_id}", Role.viewer)
        assert [u["seq"] for u in late["updates"]] == [2] and late["missing_updates"] == [1]

        # Our own alert: a member's answers arrive out of order, offers accumulate.
        await _store_own_alert(node)
        ref = {"issuer": me, "record_id": ALERT_ID}
        ack_id = "0190a5c4-0000-7000-8000-0000000000ee"
        acks: list[tuple[int, dict[str, Any], int]] = [
            (1, {"status": "delivered"}, ISSUED + 5),
            (3, {"status": "helping", "offers": ["legal_support"],
                 "offered": [{"capability": "legal_support", "at": ISSUED + 300}]},
             ISSUED + 300),
            (2, {"status": "seen"}, ISSUED + 200),
            (4, {"status": "helping", "offers": ["relocation"]}, ISSUED + 400),  # older peer
            (4, {"status": "helping", "offers": ["relocation"]}, ISSUED + 400),  # duplicate
        ]
        for version, claims, at in acks:
            await _handle(node, on_alert_ack, _record(MEMBER, ack_id, version, "alert-ack",
                                                      {"alert": ref, **claims}, at))
        own = await api.json("GET", f"/alerts/{me}/{ALERT_ID}", Role.viewer)
        [member] = own["recipients"]
        assert member["status"] == "helping"
        assert member["answered_at"] == "2026-05-28T20:33:20Z"
        assert [(a["status"], a["at"]) for a in member["answers"]] == [
            ("delivered", "2026-05-28T20:26:45Z"), ("seen", "2026-05-28T20:30:00Z"),
            ("helping", "2026-05-28T20:31:40Z"), ("helping", "2026-05-28T20:33:20Z")]
        assert member["offers"] == [
            {"capability": "legal_support", "at": "2026-05-28T20:31:40Z"},
            {"capability": "relocation", "at": "2026-05-28T20:33:20Z"}]
        assert member["name"] == "Haki Ardhi Trust"


async def test_alerts_stored_before_timelines_still_show(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    """State saved by a node before updates and answer times were kept (the stored shape of
    then, written as it was), and an older peer's update that changed the text in place."""
    async with running_api(homeserver, tmp_path / "node") as api:
        node, me = api.node, api.node.org_id
        received_id = "0190a5c4-0000-7000-8000-0000000000cc"
        old_own: dict[str, Any] = {
            "issuer": me, "record_id": ALERT_ID, "version": 2, "own": True,
            "claims": {k: v for k, v in _claims("Sntl liberada").items() if k != "updates"}
            | {"status": "released"},
            "issued_at": ISSUED, "arrived_at": ISSUED, "late": False, "room_id": "!a:x",
            "updated_at": ISSUED, "fields": ["alert_type", "asks", "status", "text", "urgency"],
            "recipients": [{"org_id": MEMBER, "status": "helping", "offers": ["legal_support"],
                            "note": None, "ack_version": 2, "matches_ask": True,
                            "last_sent_at": ISSUED, "resends": 0, "answered_at": ISSUED + 9}],
            "answer": None, "answer_offers": [], "ack_record_id": None, "ack_version": 0,
            "ack_owed": False}
        old_received = {
            "issuer": MEMBER, "record_id": received_id, "version": 1, "own": False,
            "claims": {k: v for k, v in _claims().items() if k != "updates"},
            "issued_at": ISSUED, "arrived_at": ISSUED, "late": False, "room_id": "!a:x",
            "updated_at": ISSUED, "fields": [], "recipients": [], "answer": "helping",
            "answer_offers": ["funds"], "ack_record_id": "0190a5c4-0000-7000-8000-0000000000ff",
            "ack_version": 2, "ack_owed": False}
        await _add_member(node)
        async with node.store.transaction() as tx:
            await tx.settings.set(state_key(me, ALERT_ID), old_own)
            await tx.settings.set(state_key(MEMBER, received_id), old_received)

        own = await api.json("GET", f"/alerts/{me}/{ALERT_ID}", Role.viewer)
        assert own["status"] == "released" and own["updates"] == []
        assert own["missing_updates"] == [1]  # made before alerts kept their updates
        [member] = own["recipients"]
        assert member["answers"] == [{"status": "helping", "at": None}]
        assert member["offers"] == [{"capability": "legal_support", "at": None}]
        received = await api.json("GET", f"/alerts/{MEMBER}/{received_id}", Role.viewer)
        assert received["answer_offers"] == [{"capability": "funds", "at": None}]
        assert received["answers"] == [{"status": "helping", "at": None}]

        # An older peer's version 2 (no updates list, the text changed in place).
        await _handle(node, on_alert, _record(
            MEMBER, received_id, 2, "alert",
            {k: v for k, v in _claims("Sntl liberada").items() if k != "updates"}
            | {"status": "released"}, ISSUED + 50))
        received = await api.json("GET", f"/alerts/{MEMBER}/{received_id}", Role.viewer)
        assert [(u["seq"], u["status"], u["text"]) for u in received["updates"]] == [
            (1, "released", "Sntl liberada")]

        # Our old alert can be updated: the next update takes the next order number.
        updated = await api.json("POST", f"/alerts/{ALERT_ID}/status",
                                 json={"status": "closed"})
        assert [u["seq"] for u in updated["updates"]] == [2]
        assert updated["missing_updates"] == [1]
