"""Alerts in a node that is in several coalitions (decision 0032): an alert goes to one
coalition and only its members, each coalition has its own alert room, a joined alert room is
known with its coalition, and leaving a coalition leaves its alert rooms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from deploy.homeserver import Homeserver
from federation.identity import OrgKeys, sign_member_entry
from federation.transport import TimelineEvent
from node.core.runtime import CoalitionNotChosen, Node, open_node
from node.core.setup import MatrixAccountChoice, init_node
from node.core.sharing import SharingError
from node.core.sync_host import StoreCipher
from node.features.alerts.room import (
    ALERT_ROOM_SETTING,
    ALERT_ROOMS_SETTING,
    JOINED_SETTING,
    alert_room_issuer,
    alert_room_state,
    ensure_alert_room,
    knows_alert_room,
    own_alert_rooms,
    saved_alert_room,
)
from node.features.alerts.service import (
    AlertState,
    drop_coalition_alerts,
    escalate_due,
    get_alert,
    list_alerts,
    on_coalition_left,
    save_state,
    send_alert,
    send_owed_acks,
    update_alert,
)
from node.features.alerts.watchers import alert_rooms
from schemas.payloads import Alert
from sync.outbox import enqueue_many
from sync.tables import OutboxItem
from tests.support.api_harness import PASSPHRASE, running_api
from tests.support.coalitions import in_coalition
from tests.support.offline_node import make_offline_node, passphrase_in_environment

ANDES, SUR = "!andes:test", "!sur:test"
ROOM_ANDES, ROOM_SUR = "!alerts-andes:test", "!alerts-sur:test"
ALERT = Alert.model_validate({"alert_type": "arrest", "country": "CO", "urgency": "high",
                              "text": "Sntl detenida en Suba", "asks": ["legal_support"]})
NOW = 1_780_000_000


async def _member(node: Node, name: str, *coalitions: str,
                  user: str | None = None) -> str:
    keys = OrgKeys.generate()
    async with node.store.transaction() as tx:
        await tx.orgs.save_member(keys.org_id, sign_member_entry(keys, {
            "name": name, "country": "KE"}), verified=True, safety_code="s",
            matrix_user_id=user or f"@{name.lower()}:hs")
        for coalition in coalitions:
            await in_coalition(tx, keys.org_id, coalition_id=coalition, name=coalition[1:5])
    node.forget_coalitions()
    return keys.org_id


async def _queued(node: Node) -> list[tuple[str, list[str]]]:
    async with node.store.read() as tx:
        rows = await tx.session.execute(select(OutboxItem.room_id, OutboxItem.recipients))
    return sorted((room, json.loads(recipients)) for room, recipients in rows)


@pytest.fixture
async def two_coalitions(tmp_path: Path) -> Any:
    """An offline node in Andes (members Ana, Beto) and Sur (Beto, Ceci), with an alert room
    in each already made (so that nothing is asked of Matrix)."""
    config = await make_offline_node(tmp_path / "node")
    with passphrase_in_environment():
        async with open_node(config) as node:
            ana = await _member(node, "Ana", ANDES)
            beto = await _member(node, "Beto", ANDES, SUR)
            ceci = await _member(node, "Ceci", SUR)
            async with node.store.transaction() as tx:
                await tx.settings.set(ALERT_ROOMS_SETTING, {
                    ANDES: {"room_id": ROOM_ANDES, "members_invite": True,
                            "invited": sorted([ana, beto])},
                    SUR: {"room_id": ROOM_SUR, "members_invite": True,
                          "invited": sorted([beto, ceci])}})
            yield node, ana, beto, ceci


async def test_an_alert_to_a_coalition_is_queued_only_to_its_members(
    two_coalitions: Any,
) -> None:
    node, ana, beto, ceci = two_coalitions
    with pytest.raises(CoalitionNotChosen, match="several coalitions"):
        await send_alert(node, ALERT, actor="t", now=NOW)
    with pytest.raises(CoalitionNotChosen, match="no coalition"):
        await send_alert(node, ALERT, coalition_id="!unknown:test", actor="t", now=NOW)
    with pytest.raises(SharingError, match="not a verified member"):  # Ceci is not in Andes
        await send_alert(node, ALERT, recipients=[ceci], coalition_id=ANDES, actor="t",
                         now=NOW)
    assert await _queued(node) == []

    state = await send_alert(node, ALERT, coalition_id=ANDES, actor="t", now=NOW)
    assert state.coalition_id == ANDES and state.room_id == ROOM_ANDES
    assert sorted(r.org_id for r in state.recipients) == sorted([ana, beto])
    queued = await _queued(node)
    assert {room for room, _ in queued} == {ROOM_ANDES}
    assert {org for _, recipients in queued for org in recipients} == {ana, beto}

    other = await send_alert(node, ALERT, coalition_id=SUR, actor="t", now=NOW + 1)
    assert other.room_id == ROOM_SUR
    assert sorted(r.org_id for r in other.recipients) == sorted([beto, ceci])
    assert (await get_alert(node, node.org_id, other.record_id)).coalition_id == SUR


async def test_the_alert_room_of_a_node_from_before_is_its_first_coalitions(
    two_coalitions: Any,
) -> None:
    node, ana, beto, _ = two_coalitions
    legacy = {"room_id": "!old:test", "members_invite": True, "invited": [ana, beto]}
    async with node.store.transaction() as tx:
        await tx.settings.set(ALERT_ROOMS_SETTING, {})
        await tx.settings.set(ALERT_ROOM_SETTING, legacy)
        # An alert state saved then names no coalition: it is the first coalition's.
        await save_state(tx, AlertState(
            issuer=ana, record_id="0190a5c4-0000-7000-8000-0000000000aa", version=1,
            own=False, claims={"alert_type": "arrest", "text": "x"}, issued_at=NOW,
            arrived_at=NOW, room_id="!theirs:test", updated_at=NOW))
        assert await own_alert_rooms(tx) == {ANDES: legacy}
    assert await saved_alert_room(node, ANDES) == legacy
    assert await saved_alert_room(node, SUR) is None
    old = await get_alert(node, ana, "0190a5c4-0000-7000-8000-0000000000aa")
    assert old.coalition_id == ANDES
    state = await send_alert(node, ALERT, coalition_id=ANDES, actor="t", now=NOW)
    assert state.room_id == "!old:test"


def _room(room_id: str, creator: str, marker: dict[str, Any]) -> list[TimelineEvent]:
    return [TimelineEvent.from_source(room_id, {"type": "m.room.create", "sender": creator,
                                                "state_key": "", "content": {}}),
            TimelineEvent.from_source(room_id, {"type": "org.minga.alerts", "sender": creator,
                                                "state_key": "", "content": marker})]


async def test_a_joined_alert_room_is_known_with_its_coalition(two_coalitions: Any) -> None:
    node, ana, beto, _ = two_coalitions
    andes_room = _room("!ana-andes:hs", "@ana:hs", {"issuer": ana, "coalition": ANDES})
    assert await alert_room_issuer(node, andes_room) == ana
    # Ana is not in Sur: her room "for Sur" is not recognised; nor one made by another account.
    assert await alert_room_issuer(
        node, _room("!ana-sur:hs", "@ana:hs", {"issuer": ana, "coalition": SUR})) is None
    assert await alert_room_issuer(
        node, _room("!fake:hs", "@mallory:hs", {"issuer": ana, "coalition": ANDES})) is None
    assert await alert_room_issuer(
        node, _room("!beto-nowhere:hs", "@beto:hs", {"issuer": beto,
                                                     "coalition": "!unknown:test"})) is None
    # A room made before 0032 (no coalition named) is the first coalition's.
    assert await alert_room_issuer(node, _room("!beto-old:hs", "@beto:hs",
                                               {"issuer": beto})) == beto
    async with node.store.read() as tx:
        assert await tx.settings.get(JOINED_SETTING) == {
            "!ana-andes:hs": {"issuer": ana, "coalition": ANDES},
            "!beto-old:hs": {"issuer": beto, "coalition": ANDES}}
    assert await knows_alert_room(node, ana, "!ana-andes:hs")
    assert not await knows_alert_room(node, beto, "!ana-andes:hs")


async def test_leaving_a_coalition_drops_its_alert_rooms_and_owed_answers(
    two_coalitions: Any,
) -> None:
    node, ana, beto, _ = two_coalitions
    await send_alert(node, ALERT, coalition_id=ANDES, actor="t", now=NOW)
    await send_alert(node, ALERT, coalition_id=SUR, actor="t", now=NOW)
    await alert_room_issuer(node, _room("!ana-andes:hs", "@ana:hs",
                                        {"issuer": ana, "coalition": ANDES}))
    await alert_room_issuer(node, _room("!beto-sur:hs", "@beto:hs",
                                        {"issuer": beto, "coalition": SUR}))
    received = AlertState(
        issuer=ana, record_id="0190a5c4-0000-7000-8000-0000000000bb", version=1, own=False,
        claims={"alert_type": "arrest", "text": "x"}, issued_at=NOW, arrived_at=NOW,
        room_id="!ana-andes:hs", coalition_id=ANDES, updated_at=NOW, ack_owed=True,
        ack_record_id="0190a5c4-0000-7000-8000-0000000000cc", ack_version=1)
    async with node.store.transaction() as tx:
        await save_state(tx, received)
        await enqueue_many(tx.session, StoreCipher(node.store.cipher), "!ana-andes:hs", [ana],
                           ["an answer not yet posted"], queued_at_ms=NOW * 1000)
        await tx.coalitions.mark_left(ANDES)
    node.forget_coalitions()

    assert await drop_coalition_alerts(node, ANDES) == sorted([ROOM_ANDES, "!ana-andes:hs"])

    assert {room for room, _ in await _queued(node)} == {ROOM_SUR}
    after = await get_alert(node, ana, received.record_id)
    assert not after.ack_owed and not after.unacknowledged  # nothing waits for an answer
    assert [s.coalition_id for s in await list_alerts(node) if s.unacknowledged] == [SUR]
    assert await send_owed_acks(node) == 0
    assert await saved_alert_room(node, ANDES) is None
    assert (await saved_alert_room(node, SUR) or {}).get("room_id") == ROOM_SUR
    async with node.store.read() as tx:
        assert set(await tx.settings.get(JOINED_SETTING)) == {"!beto-sur:hs"}
        left = [e for e in await tx.audit.recent() if e.action == "alert_room.leave"]
    assert sorted(e.target for e in left) == sorted([ROOM_ANDES, "!ana-andes:hs"])
    assert sorted(await alert_rooms(node)) == [ROOM_SUR]
    with pytest.raises(CoalitionNotChosen):
        await send_alert(node, ALERT, coalition_id=ANDES, actor="t", now=NOW)


async def _all_coalitions(node: Node) -> list[Any]:
    async with node.store.read() as tx:
        return await tx.coalitions.all(with_left=True)


async def test_each_coalition_gets_its_own_alert_room_with_only_its_members_invited(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    """On a real homeserver: one room per coalition, marked with it, inviting only its
    members; leaving the coalition leaves its room and keeps the other."""
    other = await init_node(
        data_dir=tmp_path / "other", org_name="Haki Ardhi Trust", country="KE",
        homeserver_url=homeserver.url, passphrase=PASSPHRASE,
        account=MatrixAccountChoice(registration_secret=homeserver.state
                                    .registration_shared_secret))
    async with running_api(homeserver, tmp_path / "node") as api:
        node = api.node
        ana = await _member(node, "Ana", ANDES, user=other.matrix_user_id)
        async with node.store.transaction() as tx:
            await in_coalition(tx, coalition_id=SUR, name="Sur")
        node.forget_coalitions()
        async with node.transport() as transport:
            andes_room = await ensure_alert_room(node, transport, [ana], ANDES)
            sur_room = await ensure_alert_room(node, transport, [], SUR)
            assert andes_room != sur_room
            assert await ensure_alert_room(node, transport, [ana], ANDES) == andes_room
            for room, coalition, invited in ((andes_room, ANDES, {other.matrix_user_id}),
                                             (sur_room, SUR, set())):
                state = await transport.room_state(room)
                marker = next(e for e in state if e.type == "org.minga.alerts")
                assert marker.content == {"issuer": node.org_id, "coalition": coalition}
                assert {e.state_key for e in state if e.type == "m.room.member"
                        and e.content.get("membership") == "invite"} == invited
            async with node.store.transaction() as tx:
                await tx.coalitions.mark_left(ANDES)
            node.forget_coalitions()
            andes = next(c for c in await _all_coalitions(node) if c.coalition_id == ANDES)
            await on_coalition_left(node, transport, andes)
            joined = set(await transport.joined_rooms())
        assert andes_room not in joined and sur_room in joined
        assert alert_room_state(node.org_id, SUR)[-1]["content"]["coalition"] == SUR


async def test_a_member_no_longer_in_the_coalition_is_sent_no_more_of_its_alert(
    two_coalitions: Any,
) -> None:
    node, ana, beto, _ = two_coalitions
    sent = await send_alert(node, ALERT, coalition_id=ANDES, actor="t", now=NOW)
    assert {r.org_id for r in sent.recipients} == {ana, beto}
    async with node.store.transaction() as tx:
        await tx.coalitions.set_members(ANDES, [ana])  # Beto left Andes (still in Sur)
        await tx.session.execute(delete(OutboxItem))
    assert await escalate_due(node, now=NOW + 3600) == {sent.record_id: [ana]}
    await update_alert(node, sent.record_id, status="released", actor="t", now=NOW + 3601)
    assert {org for _, recipients in await _queued(node) for org in recipients} == {ana}
