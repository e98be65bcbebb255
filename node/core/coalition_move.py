"""The coalition moves to a new room when its room's creator is no longer trusted (M13,
decision 0025; the statement and the rules: :mod:`federation.coalition_move`).

In a room of version 12 the creator's account has unlimited power for ever. So when the
organisation whose account made the coalition room is revoked (expelled by quorum, or
self-revoked after a seizure) or moved to a new account (restored elsewhere), the member
:func:`federation.coalition_move.designated_mover` names:

- makes a new room with the same design, carrying over the coalition marker (name, expulsion
  threshold) and every key revocation it applied, expulsions included (statements anyone can
  check), with every
  verified, non-revoked member's *current* account at member power and invited (never the old
  creator account);
- posts its roster entry and the signed move statement (``org.minga.coalition-move``, state
  key ``""``) in the new room and in the old one, switches its coalition setting and leaves
  the old room.

Every other node, on reading a statement in its coalition room, or in a room it was invited to
by a member node, verifies it (signature by the designated member's keys, posted by that
member's account, the creator really untrusted unless the designated member's staff declare a
seizure), then joins the new room, posts its own entry there (entries are signed by each
organisation and must be posted by its own account, so nobody can copy them), switches the
setting, points what is queued and not sealed yet at the new room, stops holding the old room
and leaves it. Anything else is refused and audited once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from federation.coalition_move import (
    CREATOR_MOVED,
    CREATOR_SEIZED,
    MoveRefused,
    MoveStatement,
    Reason,
    build_move,
    designated_mover,
    read_move,
    verify_move,
    why_move,
)
from federation.identity import IdentityError, KeyRing, RefuseRevokedKeys
from federation.roster import MEMBER_EVENT_TYPE
from federation.transport import MatrixTransport, TimelineEvent, TransportError
from node.core.coalition import (
    COALITION_EVENT_TYPE,
    MEMBER_POWER,
    MOVE_EVENT_TYPE,
    REVOCATION_EVENT_TYPE,
    apply_stored_revocations,
    coalition_id_of,
    coalition_power_levels,
    initial_state,
    join_coalition,
    join_when_invited,
    publish_own_entry,
    refresh_roster,
)
from node.core.runtime import Node, NodeNotReady
from node.core.store.coalitions import Coalition
from sync.frame import MAX_RESEND_SEQS, RESEND_EVENT_TYPE, resend_request_content
from sync.requeue import move_room, received_up_to
from sync.resume import release_room

log = logging.getLogger("minga.coalition.move")

ACTOR = "federation"
MOVED = "coalition.moved"
"""Audit action: this node followed the coalition into a new room."""
MOVE_MADE = "coalition.move"
"""Audit action: this node moved the coalition into a room it made."""
MOVE_REFUSED = "coalition.move-refused"
JOIN_WAIT_SECONDS = 10.0


class Outcome(Enum):
    NOTHING = "nothing"
    MOVED = "moved"
    PENDING = "pending"
    """A statement to follow, but the new room could not be joined yet; or this node's own move
    statement, posted by `minga coalition move` in another process that has not switched the
    setting yet: try again."""


@dataclass(frozen=True)
class RoomView:
    """What a node knows of its coalition room and roster, to judge a move."""

    room_id: str
    creator: str
    creator_org: str | None
    members: list[str]
    """Verified, non-revoked members (this node included)."""
    accounts: dict[str, str]
    """Their node accounts now (this node's: its login)."""
    reason_now: Reason | None
    keyring: KeyRing = field(repr=False)
    state: list[TimelineEvent] = field(repr=False)
    coalition_id: str = ""
    """The coalition the room is for (decision 0032)."""


async def _roster(node: Node, user_id: str, coalition_id: str
                  ) -> tuple[KeyRing, list[str], dict[str, str], set[str]]:
    """One coalition's verified roster as this node keeps it: key ring (revocations applied),
    the non-revoked members (this node included unless revoked), their accounts now (this
    node's: ``user_id``), the revoked ones. Keys are one per organisation, so the revoked
    ones are those of any coalition: a revoked member's entry no longer counts in the
    coalition's roster, yet the room it made must still be left (decision 0032)."""
    async with node.store.read() as tx:
        known = await tx.orgs.members(verified_only=True, with_revoked=True)
        in_coalition = await tx.coalitions.member_ids(coalition_id)
        applied = await tx.orgs.revocations()
    keyring = KeyRing()
    for member in known:
        try:
            keyring.add_member_entry(member.entry)
        except (IdentityError, ValueError):
            log.warning("stored roster entry of %s no longer verifies", member.org_id)
    apply_stored_revocations(keyring, applied)
    revoked = {m.org_id for m in known if m.revoked_at is not None or
               (m.org_id in keyring and keyring.is_revoked(m.org_id))}
    current = [m for m in known if m.org_id in in_coalition and m.org_id not in revoked]
    accounts = {m.org_id: m.matrix_user_id for m in current if m.matrix_user_id}
    accounts[node.org_id] = user_id
    members = sorted({m.org_id for m in current} | ({node.org_id} - revoked))
    return keyring, members, accounts, revoked


async def _view(node: Node, transport: MatrixTransport, coalition: Coalition) -> RoomView:
    room_id = coalition.room_id
    state = await transport.room_state(room_id)
    creator = next((e.sender for e in state if e.type == "m.room.create"), "")
    posted = {e.sender: e.state_key or "" for e in state if e.type == MEMBER_EVENT_TYPE}
    keyring, members, accounts, revoked = await _roster(node, transport.user_id,
                                                        coalition.coalition_id)
    creator_org = posted.get(creator)
    reason = why_move(creator_org, creator, revoked=revoked, current_accounts=accounts)
    return RoomView(room_id, creator, creator_org, members, accounts, reason, keyring, state,
                    coalition.coalition_id)


def _statement_in(state: Iterable[TimelineEvent]) -> TimelineEvent | None:
    return next((e for e in state if e.type == MOVE_EVENT_TYPE and e.state_key == ""), None)


def judge(view: RoomView, content: dict[str, Any], sender: str, posted_in: str) -> MoveStatement:
    """The statement if this node is to follow it (posted in ``posted_in`` by ``sender``);
    else :class:`MoveRefused`."""
    move = verify_move(content, RefuseRevokedKeys(view.keyring), members=view.members,
                       room_creator_org=view.creator_org, old_room=view.room_id,
                       reason_now=view.reason_now)
    if posted_in not in (move.old_room, move.new_room):
        raise MoveRefused("the statement was posted in a room it does not name")
    if view.accounts.get(move.mover) != sender:
        raise MoveRefused("posted by another account than the mover's node")
    return move


async def check_coalition_room(node: Node, transport: MatrixTransport,
                               rooms_with_statements: Iterable[str] = ()) -> Outcome:
    """For each coalition this node is in: follow a move statement that verifies (in its
    room, or in ``rooms_with_statements``: rooms whose sync carried one), refuse and audit
    others; move the coalition if its creator is no longer trusted and this node is the one
    to move it. MOVED if any moved, else PENDING if any is to be looked at again."""
    node.forget_coalitions()  # `minga coalition move` may have moved one from another process
    outcomes = [await _check_one(node, transport, coalition, rooms_with_statements)
                for coalition in await node.coalitions()]
    for outcome in (Outcome.MOVED, Outcome.PENDING):
        if outcome in outcomes:
            return outcome
    return Outcome.NOTHING


async def _check_one(node: Node, transport: MatrixTransport, coalition: Coalition,
                     rooms_with_statements: Iterable[str]) -> Outcome:
    room_id = coalition.room_id
    view = await _view(node, transport, coalition)
    if node.org_id not in view.members:
        return Outcome.NOTHING  # this organisation was expelled or revoked: it is out
    candidates: list[tuple[str, TimelineEvent]] = []
    found = _statement_in(view.state)
    if found is not None:
        candidates.append((room_id, found))
    for other in sorted(set(rooms_with_statements) - {room_id}):
        try:
            found = _statement_in(await transport.room_state(other))
        except TransportError as error:
            log.warning("could not read a move statement in %s: %s", other, error)
            continue
        if found is not None and _names_old_room(found, room_id):
            candidates.append((other, found))
    own_move_under_way = False
    for posted_in, event in candidates:
        if event.sender == transport.user_id:
            # `minga coalition move` in another process may have posted it before switching
            # the setting: look again later rather than settle on the old room now.
            own_move_under_way |= _names_another_room(event, room_id)
            continue
        try:
            if read_move(event.content).new_room == room_id:
                continue  # the statement this node already followed
            move = judge(view, dict(event.content), event.sender, posted_in)
        except MoveRefused as error:
            await _refused(node, posted_in, event, str(error))
            continue
        return await follow_move(node, transport, move, coalition.coalition_id)
    if view.reason_now is not None and \
            designated_mover(view.members, view.creator_org or "") == node.org_id:
        await move_coalition(node, transport, view, view.reason_now)
        return Outcome.MOVED
    return Outcome.PENDING if own_move_under_way else Outcome.NOTHING


def _names_old_room(event: TimelineEvent, room_id: str) -> bool:
    try:
        return read_move(event.content).old_room == room_id
    except MoveRefused:
        return True  # judged (and refused, audited) with this coalition's room


def _names_another_room(event: TimelineEvent, room_id: str) -> bool:
    try:
        return read_move(event.content).new_room != room_id
    except MoveRefused:
        return False


class _Refusals(set[tuple[str, str, str]]):
    """(room, event id, reason) of move statements already audited as refused (a node part)."""


async def _refused(node: Node, room_id: str, event: TimelineEvent, reason: str) -> None:
    key = (room_id, event.event_id or "", reason)
    seen = node.part(_Refusals)
    if key in seen:
        return
    seen.add(key)
    log.warning("refused a coalition move statement in %s from %s: %s", room_id, event.sender,
                reason)
    async with node.store.transaction() as tx:
        await tx.audit.append(ACTOR, MOVE_REFUSED, target=room_id,
                              details={"sender": event.sender, "event_id": event.event_id,
                                       "reason": reason})


async def move_coalition(node: Node, transport: MatrixTransport, view: RoomView,
                         reason: Reason) -> str:
    """Make the new room, post the statement in both rooms, invite every member, switch."""
    if view.creator_org is None:
        raise NodeNotReady("the coalition room's creator is not a known member")
    marker = next((dict(e.content) for e in view.state
                   if e.type == COALITION_EVENT_TYPE and e.state_key == ""), {})
    marker["id"] = view.coalition_id or coalition_id_of(view.room_id, marker)
    name = marker.get("name")
    invitees = sorted({account for org_id, account in view.accounts.items()
                       if org_id != node.org_id and account != view.creator})
    levels = coalition_power_levels()
    levels["users"] = dict.fromkeys(invitees, MEMBER_POWER)
    # Every revocation this node applied, expulsions included (their co-signed statements
    # verify like any published revocation): a member that joins later learns of them too.
    async with node.store.read() as tx:
        applied = await tx.orgs.revocations()
    carried = [{"type": REVOCATION_EVENT_TYPE,
                "state_key": f"{r.org_id}/{r.statement_hash[:16]}", "content": r.statement}
               for r in applied]
    initial = [event for event in initial_state(name if isinstance(name, str) else "")
               if event["type"] != COALITION_EVENT_TYPE]
    initial += [{"type": COALITION_EVENT_TYPE, "state_key": "", "content": marker}, *carried]
    new_room = await transport.create_room(initial_state=initial, power_levels=levels)
    await publish_own_entry(node, transport, new_room)
    statement = build_move(node.keys, view.room_id, new_room, view.creator_org, reason,
                           int(time.time()))
    await transport.put_state(new_room, MOVE_EVENT_TYPE, "", statement)
    for account in invitees:
        try:
            await transport.invite(new_room, account)
        except TransportError as error:
            log.warning("could not invite a member's node into the new coalition room: %s",
                        error)
    try:
        await transport.put_state(view.room_id, MOVE_EVENT_TYPE, "", statement)
    except TransportError as error:  # a room made before the type had member power
        log.warning("could not post the move statement in the old room: %s", error)
    await _switch(node, transport, read_move(statement), name, action=MOVE_MADE,
                  coalition_id=marker["id"])
    log.warning("moved the coalition to a new room (%s)", reason)
    return new_room


async def follow_move(node: Node, transport: MatrixTransport, move: MoveStatement,
                      coalition_id: str) -> Outcome:
    """Join the room a verified statement names, post our entry there and switch to it."""
    deadline = time.monotonic() + JOIN_WAIT_SECONDS
    while True:
        try:
            await transport.join(move.new_room)
            break
        except TransportError as error:
            if time.monotonic() >= deadline:
                log.warning("could not join the coalition's new room yet: %s", error)
                return Outcome.PENDING
        await asyncio.sleep(0.5)
    await publish_own_entry(node, transport, move.new_room)
    name = (await transport.state_event(move.new_room, COALITION_EVENT_TYPE)).get("name")
    await _switch(node, transport, move, name, action=MOVED, coalition_id=coalition_id)
    log.warning("followed the coalition to its new room (%s)", move.reason)
    return Outcome.MOVED


async def _switch(node: Node, transport: MatrixTransport, move: MoveStatement, name: object,
                  *, action: str, coalition_id: str) -> None:
    async with node.store.transaction() as tx:
        await tx.coalitions.move_room(coalition_id, move.new_room)
        moved = await move_room(tx.session, move.old_room, move.new_room)
        await release_room(tx.session, move.old_room)
        members = [m.org_id for m in await tx.orgs.members(verified_only=True,
                                                           coalition_id=coalition_id)
                   if m.org_id not in (node.org_id, move.departed)]
        held_up_to = {org: await received_up_to(tx.session, org, move.old_room)
                      for org in members}
        await tx.audit.append(ACTOR, action, target=move.new_room, details={
            "old_room": move.old_room, "new_room": move.new_room, "mover": move.mover,
            "departed": move.departed, "reason": move.reason, "requeued": moved.records,
            "records_lost": moved.lost})
    node.forget_coalitions()
    try:
        await transport.leave(move.old_room)
    except TransportError as error:
        log.warning("could not leave the old coalition room: %s", error)
    await _ask_for_the_rest(transport, move, held_up_to)
    await refresh_roster(node, transport, move.new_room)


async def _ask_for_the_rest(transport: MatrixTransport, move: MoveStatement,
                            held_up_to: dict[str, int]) -> None:
    """Events still arriving in the old room are skipped once it is replaced, so ask each
    member, in the new room, for what it posted in the old room after the last envelope this
    node holds without a gap (its node answers with re-posts there, decision 0024)."""
    for org_id, seq in held_up_to.items():
        content = resend_request_content(org_id, [(seq + 1, seq + MAX_RESEND_SEQS)],
                                         room=move.old_room)
        txn_id = "minga-move-" + hashlib.sha256(
            f"{move.new_room}/{org_id}".encode()).hexdigest()[:32]
        try:
            await transport.send(move.new_room, RESEND_EVENT_TYPE, content, txn_id)
        except TransportError as error:
            log.warning("could not ask %s for its last posts in the old coalition room: %s",
                        org_id, error)


async def declare_seizure(node: Node, coalition_id: str | None = None) -> str:
    """Staff of the designated member say the coalition room's creator was seized (members
    know it out of band): move now. The new room's id."""
    coalition = await node.chosen_coalition(coalition_id)
    async with node.transport() as transport:
        view = await _view(node, transport, coalition)
        mover = designated_mover(view.members, view.creator_org or "")
        if view.creator_org is None or view.creator_org == node.org_id:
            raise NodeNotReady("this node's own account made the coalition room")
        if mover != node.org_id:
            raise NodeNotReady(f"the member to move the coalition is {mover}, not this node")
        return await move_coalition(node, transport, view, view.reason_now or CREATOR_SEIZED)


async def join_coalition_room(node: Node, room_id: str, *, wait_seconds: float = 60.0) -> None:
    """``minga coalition join ROOM``: an ordinary join (of a new coalition, or again of one
    this node is in), or, for a node whose coalition room moved while it could not follow
    (its old account made the room and it was restored elsewhere, decision 0023), joining the
    new room a verified move statement names after a member invited its new account (having
    compared its new safety code)."""
    if await node.coalition_of_room(room_id) is not None:
        await join_coalition(node, room_id, wait_seconds=wait_seconds)
        return
    async with node.transport() as transport:
        await join_when_invited(transport, room_id, wait_seconds)
        event = _statement_in(await transport.room_state(room_id))
        moved_from = _moved_from(event)
        coalition = next((c for c in await node.coalitions() if c.room_id == moved_from), None)
        if event is None or coalition is None:
            new_coalition = True
        else:
            new_coalition = False
            try:
                move = await _judge_from_afar(node, transport, dict(event.content),
                                              event.sender, room_id, coalition)
            except MoveRefused as error:
                await transport.leave(room_id)
                raise NodeNotReady(f"{room_id} is not where the coalition moved ({error})"
                                   ) from None
            await publish_own_entry(node, transport, room_id)
            name = (await transport.state_event(room_id, COALITION_EVENT_TYPE)).get("name")
            await _switch(node, transport, move, name, action=MOVED,
                          coalition_id=coalition.coalition_id)
    if new_coalition:
        await join_coalition(node, room_id, wait_seconds=wait_seconds)


def _moved_from(event: TimelineEvent | None) -> str | None:
    if event is None:
        return None
    try:
        return read_move(event.content).old_room
    except MoveRefused:
        return None


async def _judge_from_afar(node: Node, transport: MatrixTransport, content: dict[str, Any],
                           sender: str, room_id: str, coalition: Coalition) -> MoveStatement:
    """A statement for a node that cannot read its old coalition room any more: its own
    account made that room and was left behind (restored elsewhere, decision 0023), so the
    departed organisation must be this one; checked against the roster this node kept."""
    move = read_move(content)
    if move.new_room != room_id:
        raise MoveRefused("the statement names another new room")
    if move.departed != node.org_id:
        raise MoveRefused("the statement names another organisation than this one")
    keyring, members, accounts, _ = await _roster(node, transport.user_id,
                                                  coalition.coalition_id)
    view = RoomView(coalition.room_id, "", node.org_id, members, accounts, CREATOR_MOVED,
                    keyring, [], coalition.coalition_id)
    return judge(view, content, sender, room_id)
