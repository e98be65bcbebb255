"""The coalition room and its roster (docs/architecture.md §3, §6), as seen from one node.

The room is private (invite only), pinned to room version 12, with shared history so a joining
member can read what came before, and power levels that let only member nodes post
``org.minga.*`` events. The creator's node invites other nodes and raises them to the member
level; each node publishes its own signed ``org.minga.member`` entry. Every node rebuilds the
roster from the room state, verifies each entry (:mod:`federation.roster`), keeps the verified
ones in its store, and records rejected ones with their reason. No case content is ever posted
here in clear.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from federation.expulsion import default_threshold, gather
from federation.identity import IdentityError, KeyRing, RevocationSummary, read_revocation
from federation.keys import KeyNotTrusted
from federation.roster import (
    MEMBER_EVENT_TYPE,
    Member,
    MemberStateEvent,
    RejectedEntry,
    Roster,
    member_entry,
)
from federation.transport import MatrixTransport, TimelineEvent, TransportError
from node.core.peer_replacement import (
    MOVED_ACCOUNTS_SETTING,
    noted_moves,
    read_moves,
    write_moves,
)
from node.core.roster_nudge import NUDGE_EVENT_TYPE, joined_users
from node.core.runtime import Node, NodeNotReady
from node.core.store import StoreTransaction
from node.core.store.coalitions import Coalition
from node.core.store.orgs import KeyRevocation
from node.core.store.pair_rooms import PairRoomRepository
from schemas.payloads import OrgProfile
from sync.outbox import abandon_room

log = logging.getLogger("minga.coalition")

COALITION_EVENT_TYPE = "org.minga.coalition"
SEALED_EVENT_TYPE = "org.minga.sealed"
# A key revocation published for a member (state key: "<org id>/<statement hash prefix>"), by
# any member node: after a raid the seized member cannot publish its own (M13).
REVOCATION_EVENT_TYPE = "org.minga.revocation"
# Expelling a member by quorum: a proposal ("<target>/<hash prefix>") and one approval per
# approving member ("<target>/<hash prefix>/<approver>"), posted by member nodes.
EXPULSION_EVENT_TYPE = "org.minga.expulsion"
EXPULSION_APPROVAL_EVENT_TYPE = "org.minga.expulsion-approval"
EXPULSIONS_SETTING = "expulsion_proposals"
# The coalition moved to a new room (decision 0025): a statement signed by the member that
# moved it, state key "", posted in the old room and the new one.
MOVE_EVENT_TYPE = "org.minga.coalition-move"
MEMBER_POWER = 50
# Matrix power levels name event types one by one; these are every org.minga.* type in use.
MINGA_EVENT_TYPES = (MEMBER_EVENT_TYPE, COALITION_EVENT_TYPE, SEALED_EVENT_TYPE, "org.minga.resend",
                     REVOCATION_EVENT_TYPE, EXPULSION_EVENT_TYPE, EXPULSION_APPROVAL_EVENT_TYPE,
                     MOVE_EVENT_TYPE, NUDGE_EVENT_TYPE)
ROSTER_REJECTIONS_SETTING = "roster_rejections"
SAFETY_CODE_CHANGES_SETTING = "safety_code_changes"


def coalition_power_levels() -> dict[str, Any]:
    """Power levels of a coalition room (room version 12: the creator is not listed)."""
    return {
        "users": {},
        "users_default": 0,
        "events_default": MEMBER_POWER,
        "state_default": 100,
        "events": {
            **{event_type: MEMBER_POWER for event_type in MINGA_EVENT_TYPES},
            COALITION_EVENT_TYPE: 100,
            "m.room.name": 100,
            "m.room.topic": 100,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.join_rules": 100,
            "m.room.encryption": 100,
            "m.room.server_acl": 100,
        },
        "invite": 100,
        "kick": 100,
        "ban": 100,
        "redact": 100,
    }


def initial_state(name: str) -> list[dict[str, Any]]:
    return [
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "invite"}},
        {"type": "m.room.history_visibility", "state_key": "",
         "content": {"history_visibility": "shared"}},
        {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "forbidden"}},
        {"type": COALITION_EVENT_TYPE, "state_key": "", "content": {"name": name}},
    ]


def own_profile(node: Node) -> OrgProfile:
    return OrgProfile(name=node.own.name, country=node.own.country)


async def publish_own_entry(node: Node, transport: MatrixTransport, room_id: str) -> None:
    entry = member_entry(node.keys, own_profile(node), transport.user_id)
    await transport.put_state(room_id, MEMBER_EVENT_TYPE, node.org_id, entry)


def coalition_id_of(room_id: str, marker: dict[str, Any]) -> str:
    """A coalition's id: the one its marker names, else the room it was made in (decision
    0032; the marker carries the id once the coalition moved rooms)."""
    named = marker.get("id")
    return named if isinstance(named, str) and named else room_id


async def _remember_coalition(node: Node, coalition_id: str, room_id: str, name: str | None,
                              action: str) -> None:
    async with node.store.transaction() as tx:
        await tx.coalitions.add(coalition_id, room_id, name)
        await tx.audit.append("minga coalition", action, target=coalition_id)
    node.forget_coalitions()


async def create_coalition(
    node: Node, name: str, on_created: Callable[[Node, Coalition, int], Awaitable[None]]
) -> Coalition:
    """Create a coalition room, publish our entry, remember the coalition, then call
    ``on_created`` (``Registry.after_coalition_created``: the features' hooks). A node may
    create or join any number of coalitions (decision 0032)."""
    async with node.transport() as transport:
        room_id = await transport.create_room(
            initial_state=initial_state(name), power_levels=coalition_power_levels()
        )
        await publish_own_entry(node, transport, room_id)
        await _remember_coalition(node, room_id, room_id, name, "coalition.create")
        await refresh_roster(node, transport, room_id)
    coalition = await node.coalition(room_id)
    await on_created(node, coalition, int(time.time()))
    return coalition


async def invite_member(node: Node, matrix_user_id: str, coalition_id: str | None = None) -> None:
    """Invite another node's account and let it post ``org.minga.*`` events."""
    room_id = (await node.chosen_coalition(coalition_id)).room_id
    async with node.transport() as transport:
        levels = await transport.state_event(room_id, "m.room.power_levels")
        users = dict(levels.get("users", {}))
        users[matrix_user_id] = MEMBER_POWER
        await transport.put_state(room_id, "m.room.power_levels", "", {**levels, "users": users})
        await transport.invite(room_id, matrix_user_id)
    async with node.store.transaction() as tx:
        await tx.audit.append("minga coalition", "coalition.invite", target=matrix_user_id)


async def join_coalition(node: Node, room_id: str, *, wait_seconds: float = 60.0) -> Coalition:
    """Join a coalition room (waiting for the invite to arrive) and publish our entry."""
    async with node.transport() as transport:
        await join_when_invited(transport, room_id, wait_seconds)
        marker = await transport.state_event(room_id, COALITION_EVENT_TYPE)
        coalition_id = coalition_id_of(room_id, marker)
        await publish_own_entry(node, transport, room_id)
        name = marker.get("name")
        await _remember_coalition(node, coalition_id, room_id,
                                  name if isinstance(name, str) else None, "coalition.join")
        await refresh_roster(node, transport, room_id)
    return await node.coalition(coalition_id)


async def leave_coalition(
    node: Node, coalition_id: str,
    on_left: Callable[[Node, MatrixTransport, Coalition], Awaitable[None]],
) -> Coalition:
    """Leave a coalition: withdraw this organisation's roster entry, let the features stop
    everything for it (``on_left``: alert and campaign rooms, the linkage key), leave the pair
    rooms of members this node now shares no coalition with, then the coalition room. What was
    received stays, marked as from a coalition this node left (decision 0032)."""
    coalition = await node.coalition(coalition_id)
    async with node.transport() as transport:
        try:  # members stop counting this organisation in the coalition's roster
            await transport.put_state(coalition.room_id, MEMBER_EVENT_TYPE, node.org_id, {})
        except TransportError as error:
            log.warning("could not withdraw the roster entry before leaving: %s", error)
        async with node.store.transaction() as tx:
            await tx.coalitions.mark_left(coalition_id)
            await tx.audit.append("minga coalition", "coalition.leave", target=coalition_id)
        node.forget_coalitions()
        await on_left(node, transport, coalition)
        await leave_unshared_pair_rooms(node, transport)
        await _leave(transport, coalition.room_id)
    return coalition


async def leave_unshared_pair_rooms(node: Node, transport: MatrixTransport) -> list[str]:
    """Leave the pair room of every member this node is in no coalition with any more; what
    was queued there and not posted is dropped (counted in the audit entry)."""
    left: list[str] = []
    async with node.store.transaction() as tx:
        for pair in await PairRoomRepository(tx.session).all():
            if not await tx.coalitions.shared_with(pair.org_id):
                await give_up_pair_room(tx, pair.room_id, pair.org_id, actor="minga coalition",
                                        action="pair-room.leave")
                left.append(pair.room_id)
    for room_id in left:
        await _leave(transport, room_id)
    return left


async def give_up_pair_room(tx: StoreTransaction, room_id: str, org_id: str, *, actor: str,
                            action: str) -> None:
    """Forget a pair room this node is leaving for good; what was queued there and not
    posted is dropped and counted in the audit entry."""
    dropped = await abandon_room(tx.session, room_id)
    await PairRoomRepository(tx.session).forget(room_id)
    await tx.audit.append(actor, action, target=org_id,
                          details={"room": room_id, "records_unsent": dropped})


async def _leave(transport: MatrixTransport, room_id: str) -> None:
    try:
        await transport.leave(room_id)
    except TransportError as error:
        log.warning("could not leave %s: %s", room_id, error)


async def join_when_invited(transport: MatrixTransport, room_id: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            await transport.join(room_id)
            return
        except TransportError as error:
            if time.monotonic() >= deadline:
                if error.status is None:
                    raise  # the homeserver did not answer: not a missing invite
                raise NodeNotReady(f"could not join {room_id}: {error}") from None
        await asyncio.sleep(0.5)


@dataclass(frozen=True)
class RosterReport:
    members: list[Member]
    rejected: list[RejectedEntry]
    joined: frozenset[str] = frozenset()
    """The accounts the room state says are joined."""


async def refresh_roster(node: Node, transport: MatrixTransport, room_id: str) -> RosterReport:
    """Re-read every member entry from the room state; store verified ones, report the rest.

    Entries already verified are replayed first, so the key ring remembers each member's key
    history and a stale or forked entry (say, from a compromised homeserver) cannot roll it back.
    """
    state = await transport.room_state(room_id)
    # An empty entry is one its organisation withdrew when it left the coalition.
    events = [MemberStateEvent(e.state_key or "", e.sender, e.content)
              for e in state if e.type == MEMBER_EVENT_TYPE and e.content]
    revocations = [MemberStateEvent(e.state_key or "", e.sender, e.content)
                   for e in state if e.type == REVOCATION_EVENT_TYPE]
    roster = Roster()
    async with node.store.read() as tx:
        known = await tx.orgs.members(verified_only=True, with_revoked=True)
        applied = await tx.orgs.revocations()
    codes_before = {stored.org_id: stored.safety_code for stored in known}
    for stored in known:
        try:
            roster.keyring.add_member_entry(stored.entry)
        except ValueError:
            log.warning("stored roster entry of %s no longer verifies", stored.org_id)
    apply_stored_revocations(roster.keyring, applied)
    verdicts = [roster.consider(event) for event in events]
    accepted = [v for v in verdicts if isinstance(v, Member)]
    rejected = [v for v in verdicts if isinstance(v, RejectedEntry)]
    known_hashes = {revocation.statement_hash for revocation in applied}
    new_revocations, refused = _apply_revocation_events(roster.keyring, revocations, known_hashes)
    rejected += refused
    accounts = {m.matrix_user_id: m.org_id for m in known if m.matrix_user_id}
    accounts.update({m.node_user_id: m.org_id for m in accepted})
    expelled, pending, refused = _apply_expulsions(roster.keyring, state, accounts,
                                                   {m.org_id for m in accepted}, known_hashes)
    new_revocations += expelled
    rejected += refused
    entries = {event.state_key: dict(event.content) for event in events}
    previous_accounts = {m.org_id: m.matrix_user_id for m in known if m.matrix_user_id}
    moved = [(member.org_id, member.node_user_id) for member in accepted
             if member.org_id != node.org_id and previous_accounts.get(member.org_id)
             and previous_accounts[member.org_id] != member.node_user_id]
    coalition = await node.coalition_of_room(room_id)
    async with node.store.transaction() as tx:
        if coalition is not None:
            await tx.coalitions.set_members(coalition.coalition_id,
                                            [member.org_id for member in accepted])
        if moved:  # the peer's fallback for pair rooms the old account made (decision 0024)
            await tx.settings.set(MOVED_ACCOUNTS_SETTING, write_moves(noted_moves(
                read_moves(await tx.settings.get(MOVED_ACCOUNTS_SETTING)), moved,
                int(time.time() * 1000))))
        # Per coalition room (decision 0032); a list saved before was the one room's.
        saved_rejections = await tx.settings.get(ROSTER_REJECTIONS_SETTING)
        rejections = dict(saved_rejections) if isinstance(saved_rejections, dict) else {}
        previous = rejections.get(room_id, saved_rejections
                                  if isinstance(saved_rejections, list) else [])
        for member in accepted:
            await tx.orgs.save_member(
                member.org_id, entries[member.org_id], verified=True,
                safety_code=member.safety_code, matrix_user_id=member.node_user_id,
            )
        await _note_safety_code_changes(tx, node.org_id, codes_before, accepted)
        await _keep_revocations(tx, roster.keyring, new_revocations)
        saved = await tx.settings.get(EXPULSIONS_SETTING)
        by_room = saved if isinstance(saved, dict) else {}
        await tx.settings.set(EXPULSIONS_SETTING, {**by_room, room_id: pending})
        new = [r for r in rejected if _rejection_wire(r) not in previous]
        for entry in new:
            await tx.audit.append("federation", "roster.reject", target=entry.state_key,
                                  details={"reason": entry.reason, "sender": entry.sender})
        await tx.settings.set(ROSTER_REJECTIONS_SETTING, {
            **rejections, room_id: [_rejection_wire(r) for r in rejected]})
    for entry in new:
        log.warning("ignored roster entry %s from %s: %s", entry.state_key, entry.sender,
                    entry.reason)
    for org_id, new_user in moved:
        await let_in_moved_account(transport, previous_accounts[org_id], new_user)
    reverse = {org_id: user for user, org_id in accounts.items()}
    for summary, _, reason in expelled:
        if summary.org_id in reverse:
            await remove_everywhere(transport, reverse[summary.org_id], reason or "expelled")
    return RosterReport(accepted, rejected, joined_users(state))


async def nudge(transport: MatrixTransport, room_id: str) -> None:
    """One content-free event in a coalition room, so that every server in it fetches what
    this node's homeserver holds (:mod:`node.core.roster_nudge` says when)."""
    await transport.send(room_id, NUDGE_EVENT_TYPE, {}, f"nudge-{secrets.token_hex(12)}")


def apply_stored_revocations(keyring: KeyRing, applied: Iterable[KeyRevocation]) -> None:
    """Replay the revocations this node applied before (they verified then; a key ring
    rebuilt from the stored entries takes them again)."""
    for revocation in applied:
        try:
            keyring.apply_revocation(revocation.statement)
        except IdentityError as error:
            log.warning("a stored revocation of %s no longer applies: %s", revocation.org_id,
                        error)


NewRevocation = tuple[RevocationSummary, dict[str, Any], str | None]
"""A revocation applied for the first time: what it says, the statement, an expulsion's
reason (None for an organisation's own)."""


def _apply_revocation_events(
    keyring: KeyRing, events: Iterable[MemberStateEvent], known_hashes: set[str],
) -> tuple[list[NewRevocation], list[RejectedEntry]]:
    """Apply the revocations published in the room; new ones to keep, refused ones."""
    new: list[NewRevocation] = []
    refused: list[RejectedEntry] = []
    for event in events:
        try:
            summary = read_revocation(event.content)
            keyring.apply_revocation(event.content)
        except (IdentityError, KeyNotTrusted) as error:
            refused.append(RejectedEntry(event.state_key, event.sender, f"revocation: {error}"))
            continue
        if summary.statement_hash not in known_hashes:
            known_hashes.add(summary.statement_hash)
            new.append((summary, dict(event.content), None))
    return new, refused


def _apply_expulsions(
    keyring: KeyRing, state: Iterable[TimelineEvent], accounts: dict[str, str],
    members: set[str], known_hashes: set[str],
) -> tuple[list[NewRevocation], list[dict[str, Any]], list[RejectedEntry]]:
    """Gather the expulsion proposals and approvals of the room; apply those at the
    threshold. Returns the new expulsions, the pending proposals, the refused ones."""
    events = list(state)
    threshold_setting = next((e.content.get("expulsion_threshold") for e in events
                              if e.type == COALITION_EVENT_TYPE), None)

    def posted(event_type: str) -> list[tuple[str, dict[str, Any]]]:
        return [(accounts[e.sender], dict(e.content)) for e in events
                if e.type == event_type and e.sender in accounts]

    new: list[NewRevocation] = []
    pending: list[dict[str, Any]] = []
    refused: list[RejectedEntry] = []
    for proposal in gather(posted(EXPULSION_EVENT_TYPE), posted(EXPULSION_APPROVAL_EVENT_TYPE)):
        if proposal.target not in keyring or keyring.is_revoked(proposal.target):
            continue
        others = len({m for m in members if not keyring.is_revoked(m)} - {proposal.target})
        threshold = (threshold_setting if isinstance(threshold_setting, int)
                     and not isinstance(threshold_setting, bool) and threshold_setting >= 2
                     else default_threshold(others))
        key = f"{proposal.target}/{proposal.request_hash[:16]}"
        if len(proposal.signers) < threshold:
            pending.append({"key": key, "target": proposal.target, "reason": proposal.reason,
                            "proposer": proposal.proposer, "signers": proposal.signers,
                            "threshold": threshold,
                            "revoked_at": proposal.statement.get("revoked_at")})
            continue
        statement = proposal.signed()
        quorum, keyring.revocation_quorum = keyring.revocation_quorum, threshold
        try:
            keyring.apply_revocation(statement)
        except (IdentityError, KeyNotTrusted) as error:
            refused.append(RejectedEntry(key, proposal.proposer, f"expulsion: {error}"))
            continue
        finally:
            keyring.revocation_quorum = quorum
        summary = read_revocation(statement)
        if summary.statement_hash not in known_hashes:
            known_hashes.add(summary.statement_hash)
            new.append((summary, statement, proposal.reason))
    return new, pending, refused


async def remove_everywhere(transport: MatrixTransport, user_id: str, reason: str) -> None:
    """Remove an expelled member's node account from every room this node may remove it from
    (the rooms it made: the coalition room if it created it, its pair, alert and campaign
    rooms); the other members' nodes do the same for theirs."""
    for room_id in await transport.joined_rooms():
        try:
            state = await transport.room_state(room_id)
            if user_id in _present(state) and _may_kick(state, transport.user_id):
                await transport.kick(room_id, user_id, reason[:200])
                log.warning("removed an expelled member's node from %s", room_id)
        except TransportError as error:
            log.warning("could not remove an expelled member's node from %s: %s", room_id,
                        error)


async def let_in_moved_account(transport: MatrixTransport, old_user: str, new_user: str) -> None:
    """A member's node moved to a new account (restored elsewhere after a seizure; its roster
    entry, signed by its keys and posted by the new account, says so). In every room this node
    may invite to where the old account is, the new one gets the old one's power and an
    invite, and the old one (perhaps in other hands) is removed."""
    for room_id in await transport.joined_rooms():
        try:
            state = await transport.room_state(room_id)
            present = _present(state)
            if old_user not in present:
                continue
            if _may(state, transport.user_id, "m.room.power_levels"):
                levels = next((dict(e.content) for e in state
                               if e.type == "m.room.power_levels"), {})
                users = dict(levels.get("users", {}))
                if old_user in users:
                    users[new_user] = users.pop(old_user)
                    await transport.put_state(room_id, "m.room.power_levels", "",
                                              {**levels, "users": users})
            if new_user not in present and _may(state, transport.user_id, "invite"):
                await transport.invite(room_id, new_user)
            if _may(state, transport.user_id, "kick"):
                await transport.kick(room_id, old_user, "moved to a new account")
            log.info("let a member's new node account into %s", room_id)
        except TransportError as error:
            log.warning("could not let a member's new node account into %s: %s", room_id,
                        error)


def _present(state: Iterable[TimelineEvent]) -> set[str]:
    return {e.state_key or "" for e in state if e.type == "m.room.member"
            and e.content.get("membership") in ("join", "invite")}


def _may_kick(state: Iterable[TimelineEvent], me: str) -> bool:
    return _may(state, me, "kick")


def _may(state: Iterable[TimelineEvent], me: str, action: str) -> bool:
    """Whether ``me`` may ``action`` ("kick", "invite", or a state event type) in a room with
    this state (room version 12: its creators always may, and are not listed in the power
    levels)."""
    events = list(state)
    for event in events:
        if event.type == "m.room.create":
            creators = event.content.get("additional_creators")
            if event.sender == me or (isinstance(creators, list) and me in creators):
                return True
    levels = next((e.content for e in events if e.type == "m.room.power_levels"), {})
    users = levels.get("users", {})
    mine = users.get(me, levels.get("users_default", 0)) if isinstance(users, dict) else 0
    if action in ("kick", "invite"):
        needed = levels.get(action, 50 if action == "kick" else 0)
    else:
        events_levels = levels.get("events", {})
        needed = (events_levels.get(action) if isinstance(events_levels, dict) else None) \
            or levels.get("state_default", 50)
    return isinstance(mine, int) and isinstance(needed, int) and mine >= needed


async def _keep_revocations(
    tx: StoreTransaction, keyring: KeyRing, revocations: list[NewRevocation],
) -> None:
    for summary, statement, reason in revocations:
        await tx.orgs.add_revocation(summary.statement_hash, summary.org_id, summary.revoked_at,
                                     statement, reason)
        if keyring.is_revoked(summary.org_id):
            await tx.orgs.mark_revoked(summary.org_id, summary.revoked_at)
        action = "keys.revocation-applied" if reason is None else "keys.expulsion-applied"
        await tx.audit.append("federation", action, target=summary.org_id,
                              details={"revoked_at": summary.revoked_at,
                                       "revoked_kids": list(summary.revoked_kids)})
        log.warning("applied a %s of %s's keys", "revocation" if reason is None
                    else "quorum revocation (expulsion)", summary.org_id)


async def _note_safety_code_changes(
    tx: StoreTransaction, own_org_id: str, before: dict[str, str], accepted: list[Member],
) -> None:
    """A member whose safety code changed (its keys were rotated) is to be compared again by
    people: remembered until someone says they compared it (:func:`safety_code_compared`)."""
    changed = [m for m in accepted if m.org_id != own_org_id
               and before.get(m.org_id) not in (None, m.safety_code)]
    if not changed:
        return
    changes = dict(await tx.settings.get(SAFETY_CODE_CHANGES_SETTING) or {})
    for member in changed:
        changes[member.org_id] = {"previous": before[member.org_id],
                                  "current": member.safety_code, "at": int(time.time())}
        await tx.audit.append("federation", "roster.safety-code-changed", target=member.org_id)
    await tx.settings.set(SAFETY_CODE_CHANGES_SETTING, changes)


@dataclass(frozen=True)
class SafetyCodeChange:
    org_id: str
    previous: str
    current: str
    at: int


async def safety_code_changes(node: Node) -> dict[str, SafetyCodeChange]:
    """Members whose safety code changed and was not compared again yet, by org id."""
    async with node.store.read() as tx:
        saved = await tx.settings.get(SAFETY_CODE_CHANGES_SETTING)
    changes = saved if isinstance(saved, dict) else {}
    return {org_id: SafetyCodeChange(org_id, change["previous"], change["current"], change["at"])
            for org_id, change in changes.items()}


async def safety_code_compared(node: Node, org_id: str, *, actor: str) -> bool:
    """Someone compared ``org_id``'s new safety code out of band; False if none was pending."""
    async with node.store.transaction() as tx:
        changes = dict(await tx.settings.get(SAFETY_CODE_CHANGES_SETTING) or {})
        if changes.pop(org_id, None) is None:
            return False
        await tx.settings.set(SAFETY_CODE_CHANGES_SETTING, changes)
        await tx.audit.append(actor, "roster.safety-code-compared", target=org_id)
    return True


def _rejection_wire(rejected: RejectedEntry) -> dict[str, str]:
    return {"state_key": rejected.state_key, "sender": rejected.sender, "reason": rejected.reason}


async def roster_rejections(node: Node) -> list[dict[str, str]]:
    """The roster entries ignored in the rooms of the coalitions this node is in."""
    async with node.store.read() as tx:
        saved = await tx.settings.get(ROSTER_REJECTIONS_SETTING)
    if isinstance(saved, list):  # saved before decision 0032: the one coalition's
        return list(saved)
    if not isinstance(saved, dict):
        return []
    return [entry for coalition in await node.coalitions()
            for entry in saved.get(coalition.room_id, [])]


async def member_node_accounts(node: Node) -> set[str]:
    """The Matrix accounts of the verified member nodes."""
    async with node.store.read() as tx:
        members = await tx.orgs.members(verified_only=True)
    return {m.matrix_user_id for m in members if m.matrix_user_id}


async def made_by_member(node: Node, org_id: str, creator: str) -> bool:
    """Whether ``creator`` is the Matrix account of verified member ``org_id``'s node."""
    async with node.store.read() as tx:
        members = {m.org_id: m for m in await tx.orgs.members(verified_only=True)}
    member = members.get(org_id)
    return member is not None and member.matrix_user_id == creator
