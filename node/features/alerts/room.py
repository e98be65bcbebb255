"""This node's alert room (docs/architecture.md §6): where its urgent alerts and the
acknowledgements to them go.

Each member node keeps **its own** alert room (docs/decisions/0007-alert-room-per-issuer.md):
created the first time it sends an alert, private, room version 12, shared history, the power
levels of the coalition room with every verified member node at member power, and a state event
``org.minga.alerts`` naming the issuing organisation (its id only). Every recipient node is
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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Final

from federation.transport import MatrixTransport, TimelineEvent, TransportError
from node.core.coalition import MEMBER_POWER, coalition_power_levels, made_by_member
from node.core.rooms import note_room_replaced, replaces_state
from node.core.runtime import Node
from sync.requeue import move_room, received_up_to
from sync.resume import release_room

log = logging.getLogger("minga.alerts")

ALERT_ROOM_SETTING: Final = "alert_room"
ALERT_MARKER_TYPE: Final = "org.minga.alerts"
ALERT_ROOM_CREATED: Final = "alert_room.create"
NOTICE_TEMPLATE: Final = "Urgent alert from {org} — open Minga"


class AlertRoomError(Exception):
    """The alert room could not be made ready; the message names ids only."""


def alert_room_state(own_org: str) -> list[dict[str, Any]]:
    return [
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "invite"}},
        {"type": "m.room.history_visibility", "state_key": "",
         "content": {"history_visibility": "shared"}},
        {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "forbidden"}},
        {"type": ALERT_MARKER_TYPE, "state_key": "", "content": {"issuer": own_org}},
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


def alert_room_maker(state: Sequence[TimelineEvent]) -> tuple[str, str] | None:
    """(issuing org id, creator account) if the room state carries an alert room marker."""
    marker = next((e for e in state if e.type == ALERT_MARKER_TYPE and e.state_key == ""), None)
    create = next((e for e in state if e.type == "m.room.create"), None)
    issuer = None if marker is None else marker.content.get("issuer")
    if create is None or not isinstance(issuer, str):
        return None
    return issuer, create.sender


async def alert_room_issuer(node: Node, state: Sequence[TimelineEvent]) -> str | None:
    """The member whose alert room this is (made by that member's node), or ``None``."""
    maker = alert_room_maker(state)
    if maker is None or maker[0] == node.org_id or not await made_by_member(node, *maker):
        return None
    return maker[0]


class AlertRoomLock(asyncio.Lock):
    """One alert room set-up at a time on a node (a part of the node)."""


async def saved_alert_room(node: Node) -> dict[str, Any] | None:
    async with node.store.read() as tx:
        saved = await tx.settings.get(ALERT_ROOM_SETTING)
    return saved if isinstance(saved, dict) else None


async def _member_users(node: Node, org_ids: Sequence[str]) -> dict[str, str]:
    async with node.store.read() as tx:
        members = {m.org_id: m for m in await tx.orgs.members(verified_only=True)}
    users = {}
    for org_id in org_ids:
        member = members.get(org_id)
        if member is None or not member.matrix_user_id:
            raise AlertRoomError(f"{org_id} has no verified node account")
        users[org_id] = member.matrix_user_id
    return users


async def _remember(node: Node, room_id: str, invited: Sequence[str], created: bool) -> None:
    async with node.store.transaction() as tx:
        await tx.settings.set(ALERT_ROOM_SETTING, {"room_id": room_id, "members_invite": True,
                                                   "invited": sorted(invited)})
        if created:
            await tx.audit.append("federation", ALERT_ROOM_CREATED, target=room_id)


async def _create(node: Node, transport: MatrixTransport, users: dict[str, str]) -> str:
    try:
        room_id = await transport.create_room(
            invite=sorted(users.values()), initial_state=alert_room_state(node.org_id),
            power_levels=alert_power_levels(sorted(users.values())))
    except TransportError as error:
        raise AlertRoomError(f"could not create the alert room: {error}") from None
    log.info("created alert room %s", room_id)
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
    node: Node, transport: MatrixTransport, recipient_org_ids: Sequence[str]
) -> str:
    """This node's alert room, created if needed, with every recipient invited."""
    async with node.part(AlertRoomLock):
        saved = await saved_alert_room(node)
        invited = set(saved["invited"]) if saved else set()
        missing = [o for o in recipient_org_ids if o not in invited]
        # Rooms made before member nodes could invite their watchers are raised once.
        if saved is not None and not missing and saved.get("members_invite"):
            return str(saved["room_id"])
        users = await _member_users(node, missing)
        if saved is None:
            room_id = await _create(node, transport, users)
        else:
            room_id = str(saved["room_id"])
            await _invite_more(transport, room_id, users)
        await _remember(node, room_id, sorted(invited | set(missing)), created=saved is None)
        return room_id


async def replace_alert_room(node: Node, transport: MatrixTransport,
                             held: frozenset[str]) -> set[str]:
    """A restored node's alert room, if its old account made it (it is held), replaced by a new
    one its current account makes (decision 0024): the members it had invited are invited; the
    ``org.minga.replaces`` state names the old room and how far this node holds each member's
    chain there, so their nodes re-post the rest (their answers) in the new room."""
    async with node.part(AlertRoomLock):
        saved = await saved_alert_room(node)
        if saved is None or saved["room_id"] not in held:
            return set()
        old_room = str(saved["room_id"])
        async with node.store.read() as tx:
            verified = {m.org_id for m in await tx.orgs.members(verified_only=True)}
            invited = sorted(o for o in saved["invited"] if o in verified and o != node.org_id)
            held_up_to = {o: await received_up_to(tx.session, o, old_room) for o in invited}
        try:
            users = await _member_users(node, invited)
            room_id = await transport.create_room(
                invite=sorted(users.values()),
                initial_state=[*alert_room_state(node.org_id),
                               replaces_state(old_room, held_up_to)],
                power_levels=alert_power_levels(sorted(users.values())))
        except (AlertRoomError, TransportError) as error:
            log.warning("could not replace the alert room %s: %s", old_room, error)
            return set()
        async with node.store.transaction() as tx:
            await tx.settings.set(ALERT_ROOM_SETTING, {"room_id": room_id,
                                                       "members_invite": True,
                                                       "invited": invited})
            moved = await move_room(tx.session, old_room, room_id)
            await release_room(tx.session, old_room)
            await note_room_replaced(tx, node.org_id, old_room, room_id, moved)
        log.info("replaced alert room %s by %s", old_room, room_id)
        return {old_room}


async def post_notice(
    node: Node, transport: MatrixTransport, room_id: str, txn_id: str
) -> None:
    """Best effort: a failed push notice is logged, never fatal (the sealed alert is queued)."""
    try:
        await transport.send(room_id, "m.room.message", notice_content(node.own.name), txn_id)
    except TransportError as error:
        log.warning("could not post the alert notice in %s: %s", room_id, error)
