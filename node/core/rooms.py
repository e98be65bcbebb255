"""Pair rooms: one private room per pair of member organisations, for direct sharing
(docs/architecture.md §6).

The node that shares first with another member creates the room: private (invite only), room
version 12, shared history (so the other node can backfill what was posted before it joined),
guests forbidden, the power levels of the coalition room with the other node at member power,
so that only the two nodes may post ``org.minga.*`` events. A state event
``org.minga.pair`` names the two organisations (ids only; the homeservers of both already see
who is in the room). It invites the other node, which joins on its next sync and recognises
the room as a pair room only if the marker names both organisations and the room was created by
the other organisation's verified node account. Envelopes in a pair room must all be addressed
to this node (``SyncHost.expects_all_addressed``).

Both nodes may create a room at the same moment; each then keeps both (sends go to the oldest).

What the creator posted before the other node joined may not be on the joining node's homeserver
(it holds the room from the join on), and with nothing after it no gap shows. So the joining node
asks at once, with an ordinary ``org.minga.resend`` request, for the creator's first
``MAX_RESEND_SEQS`` envelopes in the room; what it already holds comes again as answered resends,
which the inbox takes for what they are.

**Replacing a room a seized account made** (decision 0024). Room version 12 gives a room's
creator unlimited power, so a room made by a member's old account (seized, the member restored
elsewhere with a new one, decision 0023) can never let the new account in. The restored node
makes a new room with its new account, carrying an ``org.minga.replaces`` state event: the old
room's id and, for each member, the last seq of that member's chain in the old room it holds
(:func:`replaces_state`). The new room replaces the old one for its queue (:func:`sync.requeue.
move_room`: what was held for the old room is sealed anew in the new one) and the old room is
forgotten. A member's node that recognises the new room (its creator the member's *current*
verified account) and knows the old one as the same member's room of the same kind takes the
replacement (:func:`take_replacement`): its queue for the old room moves too, everything it
posted there after the named seq is re-posted in the new room (the envelopes unchanged; the
restored node's inbox keeps them in the old room's chain, so nothing arrives twice), and it
leaves the old room. For pair rooms the restored node makes the new room
(:func:`replace_pair_room`): it alone knows which of its held pair rooms its old account made.
A pair room its old account made after its last backup it does not know: the peer replaces
that one after a grace period (``by_peer``, :mod:`node.core.peer_replacement`), re-posting
everything it posted there, and the restored node takes it though it never knew the old room.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from federation.transport import MatrixTransport, TimelineEvent, TransportError
from node.core.coalition import (
    MEMBER_POWER,
    coalition_power_levels,
    made_by_member,
    member_node_accounts,
)
from node.core.runtime import Node
from node.core.store import RecordNotFound
from node.core.store.pair_rooms import PairRoomRepository
from node.core.store.store import StoreTransaction
from sync.frame import MAX_RESEND_SEQS, RESEND_EVENT_TYPE, resend_request_content
from sync.outbox import resend_after
from sync.requeue import Requeued, chain_issuers, move_room, received_up_to
from sync.resume import release_room

log = logging.getLogger("minga.rooms")

PAIR_EVENT_TYPE: Final = "org.minga.pair"
PAIR_ROOM_CREATED: Final = "pair_room.create"
PAIR_ROOM_JOINED: Final = "pair_room.join"
REPLACES_EVENT_TYPE: Final = "org.minga.replaces"
ROOM_REPLACED: Final = "room.replaced"
RECHECK_SECONDS: Final = 30.0
MAX_RECHECKS: Final = 10
MAX_JOIN_ATTEMPTS: Final = 20


class PairRoomError(Exception):
    """A pair room could not be made; the message says why (no content, ids only)."""


class PairRoomListener(Protocol):
    def note_pair_room(self, room_id: str) -> None: ...


def pair_marker(org_a: str, org_b: str) -> dict[str, Any]:
    return {"orgs": sorted((org_a, org_b))}


def pair_power_levels(other_node_user: str) -> dict[str, Any]:
    levels = coalition_power_levels()
    levels["users"] = {other_node_user: MEMBER_POWER}
    return levels


def pair_initial_state(own_org: str, other_org: str) -> list[dict[str, Any]]:
    return [
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "invite"}},
        {"type": "m.room.history_visibility", "state_key": "",
         "content": {"history_visibility": "shared"}},
        {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "forbidden"}},
        {"type": PAIR_EVENT_TYPE, "state_key": "", "content": pair_marker(own_org, other_org)},
    ]


# One room creation at a time per pair (an asyncio lock belongs to one event loop).
class PairRoomLocks(dict[str, asyncio.Lock]):
    """One pair room creation at a time per other organisation (a part of the node)."""


def _lock(node: Node, other_org: str) -> asyncio.Lock:
    return node.part(PairRoomLocks).setdefault(other_org, asyncio.Lock())


async def pair_room_of(node: Node, org_id: str) -> str | None:
    async with node.store.read() as tx:
        found = await PairRoomRepository(tx.session).for_org(org_id)
    return None if found is None else found.room_id


async def answer_room(tx: StoreTransaction, org_id: str, asked_in: str) -> str:
    """Where this node's answer to a record ``org_id`` sent to many goes (an alert, a
    de-duplication query; decision 0033): the pair room with ``org_id`` when this node has one,
    so the others in ``asked_in`` do not each receive and examine every member's answer; else
    ``asked_in``. None is made for an answer: making one takes longer than it may wait."""
    found = await PairRoomRepository(tx.session).for_org(org_id)
    return asked_in if found is None else found.room_id


async def ensure_pair_room(
    node: Node, transport: MatrixTransport, org_id: str,
    listener: PairRoomListener | None = None,
) -> str:
    """The pair room with ``org_id``, created (and the other node invited) if there is none."""
    async with _lock(node, org_id):
        existing = await pair_room_of(node, org_id)
        if existing is not None:
            return existing
        async with node.store.read() as tx:
            try:
                member = await tx.orgs.member(org_id)
            except RecordNotFound:
                raise PairRoomError(f"{org_id} is not a member of the coalition") from None
        if not member.verified or not member.matrix_user_id:
            raise PairRoomError(f"{org_id} has no verified node account")
        try:
            room_id = await transport.create_room(
                invite=[member.matrix_user_id],
                initial_state=pair_initial_state(node.org_id, org_id),
                power_levels=pair_power_levels(member.matrix_user_id),
            )
        except TransportError as error:
            raise PairRoomError(f"could not create the pair room with {org_id}: {error}") from None
        async with node.store.transaction() as tx:
            await PairRoomRepository(tx.session).remember(org_id, room_id, created_by_us=True,
                                                          at=datetime.now(UTC))
            await tx.audit.append("federation", PAIR_ROOM_CREATED, target=org_id,
                                  details={"room_id": room_id})
        if listener is not None:
            listener.note_pair_room(room_id)
        log.info("created pair room %s with %s", room_id, org_id)
        return room_id


def _pair_partner(node: Node, state: list[TimelineEvent]) -> tuple[str, str] | None:
    """(other org id, creator account) if the room state is a pair room marker naming us."""
    marker = next((e for e in state if e.type == PAIR_EVENT_TYPE and e.state_key == ""), None)
    create = next((e for e in state if e.type == "m.room.create"), None)
    if marker is None or create is None:
        return None
    orgs = marker.content.get("orgs")
    if not (isinstance(orgs, list) and len(orgs) == 2 and node.org_id in orgs
            and all(isinstance(o, str) for o in orgs) and orgs[0] != orgs[1]):
        return None
    other = orgs[1] if orgs[0] == node.org_id else orgs[0]
    return other, create.sender


async def recognise_pair_room(
    node: Node, transport: MatrixTransport, state: list[TimelineEvent], room_id: str,
    listener: PairRoomListener | None = None,
) -> str | None:
    """Record ``room_id`` (its ``state``) as a pair room if it is one from a verified member;
    its org id. A pair room that replaces one the member's old account made takes its place."""
    partner = _pair_partner(node, state)
    if partner is None or not await made_by_member(node, *partner):
        return None
    org_id, _ = partner
    async with node.store.transaction() as tx:
        await PairRoomRepository(tx.session).remember(org_id, room_id, created_by_us=False,
                                                      at=datetime.now(UTC))
        await tx.audit.append("federation", PAIR_ROOM_JOINED, target=org_id,
                              details={"room_id": room_id})
    if listener is not None:
        listener.note_pair_room(room_id)
    log.info("joined pair room %s with %s", room_id, org_id)
    await take_replacement(node, transport, state, room_id, org_id, _pair_room_of_org(org_id))
    return org_id


# --- replacing a room a seized account made ---------------------------------------------------


def replaces_state(old_room: str, held_up_to: Mapping[str, int]) -> dict[str, Any]:
    """The state event saying a new room replaces ``old_room``; ``held_up_to``: for each
    member, the last seq of its chain in the old room the maker holds (ids and numbers only)."""
    return {"type": REPLACES_EVENT_TYPE, "state_key": "",
            "content": {"room": old_room, "after": dict(sorted(held_up_to.items()))}}


@dataclass(frozen=True)
class Replaces:
    old_room: str
    held_up_to: dict[str, int]


def read_replaces(state: Sequence[TimelineEvent]) -> Replaces | None:
    """What the room's ``org.minga.replaces`` state says it replaces, if it is well formed."""
    event = next((e for e in state if e.type == REPLACES_EVENT_TYPE and e.state_key == ""), None)
    if event is None:
        return None
    room, after = event.content.get("room"), event.content.get("after", {})
    if not (isinstance(room, str) and room.startswith("!") and isinstance(after, dict)):
        return None
    held = {org: seq for org, seq in after.items()
            if isinstance(org, str) and isinstance(seq, int) and not isinstance(seq, bool)
            and seq >= 0}
    return Replaces(room, held)


OldRoomCheck = Callable[[Node, str], Awaitable[bool]]
"""Whether this node knows ``room_id`` as the member's room of the replacing room's kind."""


def _pair_room_of_org(org_id: str) -> OldRoomCheck:
    """A pair room replaces a pair room with the same member, whoever made it (the member's
    old account, or, when the member's peer replaced it, this node's old account), or a room
    this node never knew: one its old account made after its last backup, which the peer
    replaced (decision 0024, the peer's fallback). A room where this node holds chains of other
    members, or the coalition room, is never taken."""
    async def check(node: Node, room_id: str) -> bool:
        async with node.store.read() as tx:
            found = await PairRoomRepository(tx.session).for_room(room_id)
            if found is not None:
                return found.org_id == org_id
            issuers = await chain_issuers(tx.session, room_id)
        return issuers <= {org_id, node.org_id} and await node.coalition_of_room(room_id) is None

    return check


async def take_replacement(
    node: Node, transport: MatrixTransport, state: Sequence[TimelineEvent], room_id: str,
    org_id: str, is_theirs: OldRoomCheck,
) -> bool:
    """``room_id`` (recognised as ``org_id``'s, made by its current account) replaces a room
    its old account made, if its state says so and this node knows that room as ``org_id``'s:
    the queue moves, what this node posted there after what the maker holds is re-posted in the
    new room, and the old room is left. Whether it did."""
    replaces = read_replaces(state)
    if replaces is None or replaces.old_room == room_id:
        return False
    if not await is_theirs(node, replaces.old_room):
        log.warning("room %s claims to replace %s, not a room of %s here; ignored", room_id,
                    replaces.old_room, org_id)
        return False
    after = replaces.held_up_to.get(node.org_id, 0)
    async with node.store.transaction() as tx:
        await PairRoomRepository(tx.session).forget(replaces.old_room)
        await release_room(tx.session, replaces.old_room)  # if this node was restored, too
        moved = await move_room(tx.session, replaces.old_room, room_id)
        resent = await resend_after(tx.session, replaces.old_room, after, room_id,
                                    at_ms=int(datetime.now(UTC).timestamp() * 1000))
        await note_room_replaced(tx, org_id, replaces.old_room, room_id, moved, resent=resent)
    await _leave(transport, replaces.old_room)
    log.info("room %s replaces %s of %s; %d record(s) moved, %d envelope(s) re-posted",
             room_id, replaces.old_room, org_id, moved.records, resent)
    return True


def made_alike(transport: MatrixTransport, new_state: Sequence[TimelineEvent]) -> OldRoomCheck:
    """A feature's room (an alert room) replaces an old one of the same member: the old room,
    which this node is in, carries the same ``org.minga.*`` markers as the new one (same kind,
    same member) and was not made by this node's account."""
    def markers(state: Sequence[TimelineEvent]) -> set[tuple[str, str]]:
        return {(e.type, json.dumps(e.content, sort_keys=True)) for e in state
                if e.type.startswith("org.minga.") and e.type != REPLACES_EVENT_TYPE
                and e.state_key == ""}

    wanted = markers(new_state)

    async def check(node: Node, room_id: str) -> bool:
        try:
            old_state = await transport.room_state(room_id)
        except TransportError:
            return False
        create = next((e for e in old_state if e.type == "m.room.create"), None)
        return (bool(wanted) and create is not None and create.sender != transport.user_id
                and wanted <= markers(old_state))

    return check


async def note_room_replaced(tx: StoreTransaction, org_id: str, old_room: str, new_room: str,
                             moved: Requeued, *, resent: int = 0, by_peer: bool = False) -> None:
    """The audit entry of a replaced room, under the member whose room it is (ids and counts
    only); ``by_peer``: this node replaced a room the member's old account made."""
    details: dict[str, Any] = {
        "old_room": old_room, "room_id": new_room, "records_requeued": moved.records,
        "records_lost": moved.lost, "resent": resent}
    if by_peer:
        details["by_peer"] = True
    await tx.audit.append("federation", ROOM_REPLACED, target=org_id, details=details)


async def _leave(transport: MatrixTransport, room_id: str) -> None:
    try:
        await transport.leave(room_id)
    except TransportError as error:  # not in it (any more): nothing to leave
        log.info("could not leave replaced room %s: %s", room_id, error)


async def replace_pair_room(
    node: Node, transport: MatrixTransport, old_room: str, org_id: str,
    listener: PairRoomListener | None = None, *, by_peer: bool = False,
) -> str:
    """A new pair room with ``org_id``, made by this node's current account, in place of
    ``old_room`` (one this node's old account made, which the new account cannot enter).

    ``by_peer``: ``old_room`` is one ``org_id``'s *old* account made, and ``org_id``, restored
    elsewhere, did not replace it (its backup did not know it): this node replaces it, re-posts
    everything it posted there (``org_id``'s node holds none of it) and leaves it."""
    async with _lock(node, org_id):
        if by_peer and not await _still_pair_room(node, old_room):  # the member replaced it
            raise PairRoomError(f"{old_room} is no pair room with {org_id} any more")
        async with node.store.read() as tx:
            try:
                member = await tx.orgs.member(org_id)
            except RecordNotFound:
                raise PairRoomError(f"{org_id} is not a member of the coalition") from None
            held = await received_up_to(tx.session, org_id, old_room)
        if not member.verified or not member.matrix_user_id:
            raise PairRoomError(f"{org_id} has no verified node account")
        try:
            room_id = await transport.create_room(
                invite=[member.matrix_user_id],
                initial_state=[*pair_initial_state(node.org_id, org_id),
                               replaces_state(old_room, {org_id: held})],
                power_levels=pair_power_levels(member.matrix_user_id),
            )
        except TransportError as error:
            raise PairRoomError(f"could not replace the pair room with {org_id}: {error}") \
                from None
        async with node.store.transaction() as tx:
            pairs = PairRoomRepository(tx.session)
            await pairs.forget(old_room)
            await pairs.remember(org_id, room_id, created_by_us=True, at=datetime.now(UTC))
            moved = await move_room(tx.session, old_room, room_id)
            await release_room(tx.session, old_room)
            resent = await resend_after(tx.session, old_room, 0, room_id,
                                        at_ms=int(datetime.now(UTC).timestamp() * 1000)) \
                if by_peer else 0
            await note_room_replaced(tx, org_id, old_room, room_id, moved, resent=resent,
                                     by_peer=by_peer)
        if listener is not None:
            listener.note_pair_room(room_id)
        if by_peer:
            await _leave(transport, old_room)
        log.info("replaced pair room %s with %s by %s", old_room, org_id, room_id)
        return room_id


async def _still_pair_room(node: Node, room_id: str) -> bool:
    async with node.store.read() as tx:
        return await PairRoomRepository(tx.session).for_room(room_id) is not None


async def ask_for_backlog(transport: MatrixTransport, room_id: str, org_id: str) -> None:
    """Ask ``org_id``'s node to re-post what it sent in ``room_id`` before we joined."""
    content = resend_request_content(org_id, [(1, MAX_RESEND_SEQS)])
    txn_id = "minga-backlog-" + hashlib.sha256(room_id.encode()).hexdigest()[:32]
    await transport.send(room_id, RESEND_EVENT_TYPE, content, txn_id)


@dataclass
class InviteHandler:
    """Joins rooms verified member nodes invite this node to, and recognises pair rooms and the
    features' rooms (members' alert rooms) among them.

    Only invites sent by a verified member node's account are joined: anyone on any homeserver
    can invite, and joining a stranger's room would tell them this node is alive. An invite from
    another account is held and looked at again now and then (the roster may learn of a new
    member a little after its invite), then left alone, neither joined nor declined (joining the
    coalition room itself is a staff decision: ``minga coalition join``). After joining, a pair
    room is recorded only if a verified member's node created it and its marker names both
    organisations; rooms not (yet) recognised are re-checked now and then. Other rooms (the
    coalition room, campaign rooms) are left to the code that handles them.
    """

    node: Node
    recognise_room: Callable[[Node, Sequence[TimelineEvent]], Awaitable[str | None]]
    """The features' rooms (``Registry.recognise_room``): whose room it is, or ``None``."""
    listener: PairRoomListener | None = None
    owns_room: Callable[[Node, str, str], Awaitable[bool]] | None = None
    """The features' rooms of a member this node knows (``Registry.owns_room``): one a
    recognised room may replace."""
    _joined: set[str] = field(default_factory=set)
    _pending: dict[str, int] = field(default_factory=dict)  # invite -> failed joins so far
    _unrecognised: dict[str, int] = field(default_factory=dict)  # room -> checks so far
    _held: dict[str, tuple[str | None, int]] = field(default_factory=dict)
    """Invites from accounts that are not member nodes: room -> (inviter, checks so far)."""
    _last_recheck: float = 0.0

    async def handle(self, transport: MatrixTransport,
                     invites: Mapping[str, str | None]) -> None:
        # A sync reports an invite once; a join can fail for a moment (the inviting server may
        # not have stored the invite yet when ours shows it), so failed joins are retried.
        fresh = {room: inviter for room, inviter in invites.items()
                 if room not in self._joined and room not in self._pending}
        if fresh:
            self._sort_invites(fresh, await member_node_accounts(self.node), checks=0)
        for room_id in list(self._pending):
            await self._join(transport, room_id)
        await self._recheck(transport)

    def _sort_invites(self, invites: Mapping[str, str | None], members: set[str], *,
                      checks: int) -> None:
        """Invites from member nodes to be joined; the others held, for ``MAX_RECHECKS``."""
        for room_id, inviter in invites.items():
            if inviter is not None and inviter in members:
                self._held.pop(room_id, None)
                self._pending.setdefault(room_id, 0)
            elif checks < MAX_RECHECKS:
                if room_id not in self._held:
                    log.info("invite to %s is not from a member node; not joined", room_id)
                self._held[room_id] = (inviter, checks)
            else:
                self._held.pop(room_id, None)

    async def _join(self, transport: MatrixTransport, room_id: str) -> None:
        try:
            await transport.join(room_id)
        except TransportError as error:
            failures = self._pending.pop(room_id) + 1
            if failures < MAX_JOIN_ATTEMPTS:
                self._pending[room_id] = failures
            log.warning("could not join %s (attempt %d): %s", room_id, failures, error)
            return
        del self._pending[room_id]
        self._joined.add(room_id)
        if await self.node.coalition_of_room(room_id) is None:
            await self._recognise(transport, room_id)

    async def _recognise(self, transport: MatrixTransport, room_id: str) -> None:
        # Records sent into a pair or alert room between its creation and our join may not
        # reach us by sync: the room's maker re-posts them when asked.
        try:
            state = await transport.room_state(room_id)
            org_id = await recognise_pair_room(self.node, transport, state, room_id,
                                               self.listener)
            if org_id is None:
                org_id = await self.recognise_room(self.node, state)
                if org_id is not None:
                    await take_replacement(self.node, transport, state, room_id, org_id,
                                           self._known_room(transport, state, org_id))
            if org_id is not None:
                await ask_for_backlog(transport, room_id, org_id)
        except TransportError as error:
            log.warning("could not set up room %s: %s", room_id, error)
            org_id = None
        checks = self._unrecognised.pop(room_id, 0) + 1
        if org_id is None and checks < MAX_RECHECKS:
            self._unrecognised[room_id] = checks

    def _known_room(self, transport: MatrixTransport, state: Sequence[TimelineEvent],
                    org_id: str) -> OldRoomCheck:
        alike = made_alike(transport, state)

        async def check(node: Node, room_id: str) -> bool:
            return (self.owns_room is not None and await self.owns_room(node, org_id, room_id)
                    ) or await alike(node, room_id)

        return check

    async def _recheck(self, transport: MatrixTransport) -> None:
        now = asyncio.get_running_loop().time()
        if not (self._unrecognised or self._held) or now - self._last_recheck < RECHECK_SECONDS:
            return
        self._last_recheck = now
        for room_id in sorted(self._unrecognised):
            await self._recognise(transport, room_id)
        if self._held:
            members = await member_node_accounts(self.node)
            for room_id, (inviter, checks) in sorted(self._held.items()):
                self._sort_invites({room_id: inviter}, members, checks=checks + 1)
