"""This node's alert room (docs/architecture.md §6): where its urgent alerts and the
acknowledgements to them go.

Each member node keeps **its own** alert room per coalition it is in
(docs/decisions/0007-alert-room-per-issuer.md, 0032): created the first time it sends an alert
in that coalition, private, room version 12, shared history, the power
levels of the coalition room with every verified member node at member power, and a state event
``org.minga.alerts`` naming the issuing organisation and the coalition (their ids only). Only
that coalition's verified members are invited (and the watchers); every recipient node is
invited; nodes join invites on their next sync (:class:`node.core.rooms.InviteHandler`), and the
sync
layer reads sealed envelopes in every joined room, verifying each against the roster. Members
that joined the coalition later are invited (and raised to member power) when the next alert
goes to them. Acknowledgements go back in the room the alert arrived in.

Next to each alert goes one plain ``m.notice`` with no content ("Urgent alert from <org> — open
Minga") so that staff sitting in the room with an ordinary Matrix client get a push. Member nodes
may invite (at member power): each invites its own staff's watcher accounts
(:mod:`node.features.alerts.watchers`).

A node restored elsewhere after a seizure (decision 0023) cannot enter the alert room its old
account made; it makes a new one (:func:`replace_alert_room`, decision 0024) and members' nodes
take it in place of the old one when they recognise it (:func:`node.core.rooms.take_replacement`).

This node's rooms are kept in the setting ``alert_rooms`` (coalition id -> room); the single
``alert_room`` of a node from before decision 0032 is its first coalition's. The other
members' alert rooms it joined are remembered with their coalition (``alert_rooms.joined``), so
that leaving a coalition leaves them (:func:`leave_alert_rooms`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

from federation.transport import MatrixTransport, TimelineEvent, TransportError
from node.core.coalition import MEMBER_POWER, coalition_power_levels, made_by_member
from node.core.rooms import note_room_replaced, replaces_state
from node.core.runtime import Node
from node.core.store import StoreTransaction
from node.core.store.coalitions import Coalition
from sync.outbox import abandon_room
from sync.requeue import move_room, received_up_to
from sync.resume import release_room

log = logging.getLogger("minga.alerts")

ALERT_ROOM_SETTING: Final = "alert_room"
"""Before decision 0032: the node's one alert room (its first coalition's)."""
ALERT_ROOMS_SETTING: Final = "alert_rooms"
"""This node's alert rooms: coalition id -> {room_id, members_invite, invited[, left]}."""
JOINED_SETTING: Final = "alert_rooms.joined"
"""Other members' alert rooms this node recognised: room id -> {issuer, coalition}."""
ALERT_MARKER_TYPE: Final = "org.minga.alerts"
ALERT_ROOM_CREATED: Final = "alert_room.create"
ALERT_ROOM_LEFT: Final = "alert_room.leave"
NOTICE_TEMPLATE: Final = "Urgent alert from {org} — open Minga"


class AlertRoomError(Exception):
    """The alert room could not be made ready; the message names ids only."""


def alert_room_state(own_org: str, coalition_id: str) -> list[dict[str, Any]]:
    return [
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "invite"}},
        {"type": "m.room.history_visibility", "state_key": "",
         "content": {"history_visibility": "shared"}},
        {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "forbidden"}},
        {"type": ALERT_MARKER_TYPE, "state_key": "",
         "content": {"issuer": own_org, "coalition": coalition_id}},
    ]


def alert_power_levels(member_users: Sequence[str]) -> dict[str, Any]:
    """The coalition room's levels, but member nodes may invite (their staff's watchers)."""
    levels = coalition_power_levels()
    levels["users"] = {user: MEMBER_POWER for user in member_users}
    levels["invite"] = MEMBER_POWER
    return levels


def notice_content(org_name: str) -> dict[str, Any]:
    """The content-free push: the issuing organisation's name, nothing about the alert."""
    return {"msgtype": "m.notice", "body": NOTICE_TEMPLATE.format(org=org_name)}


class AlertRoomMaker(NamedTuple):
    issuer: str
    creator: str
    coalition: str | None
    """``None``: a room made before decision 0032 (the first coalition's)."""


def alert_room_maker(state: Sequence[TimelineEvent]) -> AlertRoomMaker | None:
    """Who made the room, for which coalition, if its state carries an alert room marker."""
    marker = next((e for e in state if e.type == ALERT_MARKER_TYPE and e.state_key == ""), None)
    create = next((e for e in state if e.type == "m.room.create"), None)
    issuer = None if marker is None else marker.content.get("issuer")
    if create is None or not isinstance(issuer, str):
        return None
    assert marker is not None
    coalition = marker.content.get("coalition")
    if coalition is not None and not isinstance(coalition, str):
        return None
    return AlertRoomMaker(issuer, create.sender, coalition)


async def first_coalition_id(tx: StoreTransaction) -> str | None:
    """The node's first coalition (left ones included): what was "the" coalition before 0032."""
    known = await tx.coalitions.all(with_left=True)
    return known[0].coalition_id if known else None


async def _marked_coalition(node: Node, maker: AlertRoomMaker) -> str | None:
    """The active coalition an alert room is for: the one its marker names, or (a room made
    before decision 0032) this node's first coalition; ``None`` if this node is not in it."""
    if maker.coalition is None:
        async with node.store.read() as tx:
            named = await first_coalition_id(tx)
    else:
        named = maker.coalition
    active = {c.coalition_id for c in await node.coalitions()}
    return named if named in active else None


async def alert_room_of(node: Node, state: Sequence[TimelineEvent]) -> tuple[str, str] | None:
    """(issuing member, coalition) of another member's alert room: made by that member's
    node, for a coalition both are in; ``None`` otherwise."""
    maker = alert_room_maker(state)
    if maker is None or maker.issuer == node.org_id:
        return None
    coalition = await _marked_coalition(node, maker)
    if coalition is None or not await made_by_member(node, maker.issuer, maker.creator):
        return None
    async with node.store.read() as tx:
        if maker.issuer not in await tx.orgs.verified_ids(coalition):
            return None
    return maker.issuer, coalition


async def alert_room_issuer(node: Node, state: Sequence[TimelineEvent]) -> str | None:
    """The member whose alert room this is (made by that member's node, for a coalition both
    are in), or ``None``; the room is remembered with its coalition."""
    known = await alert_room_of(node, state)
    room_id = next((e.room_id for e in state if e.type == "m.room.create"), None)
    if known is None or room_id is None:
        return None
    issuer, coalition = known
    async with node.store.transaction() as tx:
        joined = await _joined(tx)
        if joined.get(room_id) != {"issuer": issuer, "coalition": coalition}:
            joined[room_id] = {"issuer": issuer, "coalition": coalition}
            await tx.settings.set(JOINED_SETTING, joined)
    return issuer


async def _joined(tx: StoreTransaction) -> dict[str, dict[str, str]]:
    saved = await tx.settings.get(JOINED_SETTING)
    return dict(saved) if isinstance(saved, dict) else {}


async def joined_alert_room_coalition(tx: StoreTransaction, room_id: str) -> str | None:
    """The coalition of another member's alert room this node recognised, if it did."""
    entry = (await _joined(tx)).get(room_id)
    return entry.get("coalition") if isinstance(entry, dict) else None


async def knows_alert_room(node: Node, org_id: str, room_id: str) -> bool:
    """Whether this node knows ``room_id`` as ``org_id``'s alert room (decision 0024: a room
    that member's current account made may replace it)."""
    async with node.store.read() as tx:
        entry = (await _joined(tx)).get(room_id)
    return isinstance(entry, dict) and entry.get("issuer") == org_id


class AlertRoomLock(asyncio.Lock):
    """One alert room set-up at a time on a node (a part of the node)."""


async def own_alert_rooms(tx: StoreTransaction) -> dict[str, dict[str, Any]]:
    """This node's alert rooms by coalition id, those of coalitions it left marked ``left``;
    the alert room of a node from before decision 0032 is its first coalition's."""
    saved = await tx.settings.get(ALERT_ROOMS_SETTING)
    rooms = {k: v for k, v in saved.items() if isinstance(v, dict)} \
        if isinstance(saved, dict) else {}
    legacy = await tx.settings.get(ALERT_ROOM_SETTING)
    first = await first_coalition_id(tx) if isinstance(legacy, dict) else None
    if isinstance(legacy, dict) and first is not None and first not in rooms:
        rooms[first] = legacy
    return rooms


def usable(saved: dict[str, Any] | None) -> dict[str, Any] | None:
    """A saved alert room to send in: not one of a coalition this node left."""
    return None if saved is None or saved.get("left") else saved


async def saved_alert_room(node: Node, coalition_id: str | None = None
                           ) -> dict[str, Any] | None:
    """This node's alert room of ``coalition_id`` (the node's only coalition when None), if
    it has one it still uses."""
    cid = coalition_id or (await node.chosen_coalition(None)).coalition_id
    async with node.store.read() as tx:
        return usable((await own_alert_rooms(tx)).get(cid))


async def _save_room(tx: StoreTransaction, coalition_id: str, saved: dict[str, Any]) -> None:
    rooms = await own_alert_rooms(tx)
    rooms[coalition_id] = saved
    await tx.settings.set(ALERT_ROOMS_SETTING, rooms)


async def _member_users(node: Node, coalition_id: str, org_ids: Sequence[str]
                        ) -> dict[str, str]:
    async with node.store.read() as tx:
        members = {m.org_id: m for m in await tx.orgs.members(verified_only=True,
                                                              coalition_id=coalition_id)}
    users = {}
    for org_id in org_ids:
        member = members.get(org_id)
        if member is None or not member.matrix_user_id:
            raise AlertRoomError(f"{org_id} has no verified node account in coalition "
                                 f"{coalition_id}")
        users[org_id] = member.matrix_user_id
    return users


async def _remember(node: Node, coalition_id: str, room_id: str, invited: Sequence[str],
                    created: bool) -> None:
    async with node.store.transaction() as tx:
        await _save_room(tx, coalition_id, {"room_id": room_id, "members_invite": True,
                                            "invited": sorted(invited)})
        if created:
            await tx.audit.append("federation", ALERT_ROOM_CREATED, target=room_id,
                                  details={"coalition": coalition_id})


async def _create(node: Node, transport: MatrixTransport, coalition_id: str,
                  users: dict[str, str]) -> str:
    try:
        room_id = await transport.create_room(
            invite=sorted(users.values()),
            initial_state=alert_room_state(node.org_id, coalition_id),
            power_levels=alert_power_levels(sorted(users.values())))
    except TransportError as error:
        raise AlertRoomError(f"could not create the alert room: {error}") from None
    log.info("created alert room %s for coalition %s", room_id, coalition_id)
    return room_id


async def _invite_more(transport: MatrixTransport, room_id: str, users: dict[str, str]) -> None:
    try:
        levels = await transport.state_event(room_id, "m.room.power_levels")
        raised = {**dict(levels.get("users", {})),
                  **{user: MEMBER_POWER for user in users.values()}}
        await transport.put_state(room_id, "m.room.power_levels", "",
                                  {**levels, "users": raised, "invite": MEMBER_POWER})
        for user in sorted(users.values()):
            await transport.invite(room_id, user)
    except TransportError as error:
        raise AlertRoomError(f"could not invite members to the alert room: {error}") from None


async def ensure_alert_room(
    node: Node, transport: MatrixTransport, recipient_org_ids: Sequence[str],
    coalition_id: str | None = None,
) -> str:
    """This node's alert room of ``coalition_id`` (the node's only coalition when None),
    created if needed, with every recipient (a verified member of that coalition) invited."""
    coalition_id = (await node.chosen_coalition(coalition_id)).coalition_id
    async with node.part(AlertRoomLock):
        saved = await saved_alert_room(node, coalition_id)
        invited = set(saved["invited"]) if saved else set()
        missing = [o for o in recipient_org_ids if o not in invited]
        # Rooms made before member nodes could invite their watchers are raised once.
        if saved is not None and not missing and saved.get("members_invite"):
            return str(saved["room_id"])
        users = await _member_users(node, coalition_id, missing)
        if saved is None:
            room_id = await _create(node, transport, coalition_id, users)
        else:
            room_id = str(saved["room_id"])
            await _invite_more(transport, room_id, users)
        await _remember(node, coalition_id, room_id, sorted(invited | set(missing)),
                        created=saved is None)
        return room_id


async def replace_alert_room(node: Node, transport: MatrixTransport,
                             held: frozenset[str]) -> set[str]:
    """A restored node's alert rooms, each one its old account made (it is held), replaced by
    a new one its current account makes (decision 0024), coalition by coalition: the members
    it had invited (still verified in that coalition) are invited; the ``org.minga.replaces``
    state names the old room and how far this node holds each member's chain there, so their
    nodes re-post the rest (their answers) in the new room."""
    replaced: set[str] = set()
    async with node.part(AlertRoomLock):
        async with node.store.read() as tx:
            rooms = await own_alert_rooms(tx)
        for coalition in await node.coalitions():
            saved = usable(rooms.get(coalition.coalition_id))
            if saved is not None and saved["room_id"] in held and await _replace(
                    node, transport, coalition, saved):
                replaced.add(str(saved["room_id"]))
    return replaced


async def _replace(node: Node, transport: MatrixTransport, coalition: Coalition,
                   saved: dict[str, Any]) -> bool:
    old_room, cid = str(saved["room_id"]), coalition.coalition_id
    async with node.store.read() as tx:
        verified = await tx.orgs.verified_ids(cid)
        invited = sorted(o for o in saved["invited"] if o in verified and o != node.org_id)
        held_up_to = {o: await received_up_to(tx.session, o, old_room) for o in invited}
    try:
        users = await _member_users(node, cid, invited)
        room_id = await transport.create_room(
            invite=sorted(users.values()),
            initial_state=[*alert_room_state(node.org_id, cid),
                           replaces_state(old_room, held_up_to)],
            power_levels=alert_power_levels(sorted(users.values())))
    except (AlertRoomError, TransportError) as error:
        log.warning("could not replace the alert room %s: %s", old_room, error)
        return False
    async with node.store.transaction() as tx:
        await _save_room(tx, cid, {"room_id": room_id, "members_invite": True,
                                   "invited": invited})
        moved = await move_room(tx.session, old_room, room_id)
        await release_room(tx.session, old_room)
        await note_room_replaced(tx, node.org_id, old_room, room_id, moved)
    log.info("replaced alert room %s by %s", old_room, room_id)
    return True


async def forget_alert_rooms(node: Node, coalition_id: str, also: Sequence[str] = ()
                             ) -> list[str]:
    """This node left ``coalition_id``: its own alert room of it and the other members' alert
    rooms for it (those recognised, and ``also``: rooms its alerts arrived in) are no longer
    used; what was queued there and not posted is dropped (counted in the audit entry). The
    rooms to leave."""
    async with node.store.transaction() as tx:
        rooms = await own_alert_rooms(tx)
        own = usable(rooms.get(coalition_id))
        joined = await _joined(tx)
        theirs = {room for room, entry in joined.items()
                  if isinstance(entry, dict) and entry.get("coalition") == coalition_id}
        leaving = sorted(theirs | set(also) | ({str(own["room_id"])} if own else set()))
        for room_id in leaving:
            dropped = await abandon_room(tx.session, room_id)
            await tx.audit.append("minga coalition", ALERT_ROOM_LEFT, target=room_id,
                                  details={"coalition": coalition_id,
                                           "records_unsent": dropped})
        if own is not None:
            await _save_room(tx, coalition_id, {**own, "left": True})
        if theirs:
            await tx.settings.set(JOINED_SETTING, {room: entry for room, entry in joined.items()
                                                   if room not in theirs})
    return leaving


async def leave_rooms(transport: MatrixTransport, room_ids: Sequence[str]) -> None:
    for room_id in room_ids:
        try:
            await transport.leave(room_id)
        except TransportError as error:
            log.warning("could not leave alert room %s: %s", room_id, error)


async def post_notice(
    node: Node, transport: MatrixTransport, room_id: str, txn_id: str
) -> None:
    """Best effort: a failed push notice is logged, never fatal (the sealed alert is queued)."""
    try:
        await transport.send(room_id, "m.room.message", notice_content(node.own.name), txn_id)
    except TransportError as error:
        log.warning("could not post the alert notice in %s: %s", room_id, error)
