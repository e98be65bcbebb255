"""Joint campaigns (M7): proposals, responses, the campaign room, its content, leaving, closing.

Every step is a signed record sent through the one sharing path
(:func:`node.core.sharing.share_records`,
one SD-JWT per recipient, sealed) and kept in :mod:`node.features.campaigns.records`, own and
received
alike, so every page is computed from that table by the pure functions below.

- A **proposal** belongs to one coalition (decision 0032), named when it is posted (the node's
  only one by default). It and every **response** (an ``endorsement`` record: join with roles,
  endorse only, decline with a reason) go to every verified member of that coalition through its
  room, so every member sees the tally; the campaign record and its closing go there too, and
  the campaign room invites members of that coalition only. Each stored record knows its
  coalition (its ``coalition`` claim; an older record without one came through the node's
  first coalition). When this node leaves a coalition it leaves that coalition's campaign rooms
  (:func:`leave_coalition_campaigns`) and keeps the records. A response is changed by issuing
  a new version of the same record; responses issued after the deadline are refused here and
  ignored by every node's tally.
- The proposer counts as the first participant. When the participants reach the minimum, or the
  proposer launches early (before the deadline), the proposer's node creates the **campaign room**
  (invite only, room version 12, shared history; the participants' node accounts at member power,
  so only they may post ``org.minga.*``; ordinary messages open to the staff accounts participants
  listed, who are invited too) and announces a ``campaign`` record (participants, room id) to the
  whole coalition. Room work is done outside the inbox by :func:`campaign_duties`, which the
  node's federation loop runs every few seconds. A proposal whose deadline passes below the
  minimum is **expired**, on every node, from the same records.
- Campaign room content is ``campaign-post`` records (update, task with owner and due date, key
  message for named targets, timeline entry, leave, close vote) sealed to the current
  participants and sent in the campaign room; non-participants are never in the room and never
  a recipient.
- **Closing**: the proposer closes, or a majority of participants votes to close. The proposer's
  node then issues the campaign record's next version with status ``closed`` to every member, so
  every node shows it archived; every participant's node leaves the room. The room is not given
  an ``m.room.tombstone`` (that event names a replacement room, and there is none): it is
  invite-only, nobody is invited any more and every node has left it, which is the same for
  Matrix. A participant other than the proposer may leave (a ``leave`` post, then its node
  leaves the room).
- **A proposer restored elsewhere** (decision 0024) cannot enter the campaign room its old
  account made: its node makes a new one for the same participants, with ``org.minga.replaces``
  naming the old room (:func:`replace_campaign_rooms`); participants' nodes recognise it (its
  maker is the proposer's current account, the old room their campaign's room) and take it in
  the old room's place. The campaign record keeps naming the old room: posts for it go to the
  room that replaced it (:mod:`sync.requeue`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from federation.transport import MatrixTransport, TimelineEvent, TransportError
from node.core.coalition import MEMBER_POWER, coalition_power_levels, made_by_member
from node.core.duties import repeat
from node.core.rooms import note_room_replaced, read_replaces, replaces_state
from node.core.runtime import CoalitionNotChosen, Node
from node.core.sharing import record_claims, share_in_room
from node.core.store.coalitions import Coalition
from node.features.campaigns.records import (
    ROOM_LAUNCH,
    ROOM_LEFT,
    ROOM_OPEN,
    CampaignItem,
    CampaignRecords,
    CampaignRoom,
    coalition_of_claims,
    first_coalition_id,
)
from schemas.common import RecordRef
from schemas.fields import disclosable_paths
from schemas.ids import new_record_id
from schemas.payloads import Campaign, CampaignPost, Endorsement, Proposal
from schemas.records import PAYLOAD_CLASSES, Payload, RecordBase, RecordKind, build_record
from sync.requeue import move_room, received_up_to, replaced_rooms, successor
from sync.resume import release_room

log = logging.getLogger("minga.campaigns")

OPEN: Final = "open"
LAUNCHING: Final = "launching"
EXPIRED: Final = "expired"
ACTIVE: Final = "active"
CLOSED: Final = "closed"
DUTY_INTERVAL_SECONDS: Final = 2.0
CAMPAIGN_ROOM_NAME: Final = "Minga campaign"


class CampaignError(Exception):
    """A campaign action was refused; the message says why (ids only, no content)."""


class CampaignNotFound(CampaignError):
    pass


class ResponsesClosed(CampaignError):
    pass


class NotAllowed(CampaignError):
    pass


# --- the pure part ----------------------------------------------------------------------------


def payload_of(item: CampaignItem) -> Any:
    """The typed payload in a stored item's claims (header claims left out)."""
    model = PAYLOAD_CLASSES[RecordKind(item.kind)]
    return model.model_validate({k: v for k, v in item.claims.items() if k in model.model_fields})


def readable(items: Sequence[CampaignItem]) -> list[CampaignItem]:
    """The items whose payload validates (one member's malformed record hides only itself)."""
    found = []
    for item in items:
        try:
            payload_of(item)
        except (ValidationError, ValueError):
            log.warning("ignored an unreadable %s record %s", item.kind, item.record_id)
            continue
        found.append(item)
    return found


@dataclass(frozen=True)
class Response:
    org_id: str
    response: str
    roles: tuple[str, ...]
    reason: str | None
    contacts: tuple[str, ...]
    version: int
    issued_at: int


@dataclass(frozen=True)
class Post:
    issuer: str
    record_id: str
    post_type: str
    title: str | None
    text: str | None
    owner: str | None
    due: str | None
    targets: tuple[str, ...]
    issued_at: int


@dataclass(frozen=True)
class ProposalState:
    """Everything a node knows about one proposal and the campaign it became."""

    issuer: str
    record_id: str
    issued_at: int
    proposal: Proposal
    responses: tuple[Response, ...]
    status: str
    joined: tuple[str, ...]
    campaign: Campaign | None
    campaign_record: tuple[str, int] | None  # (record id, version)
    participants: tuple[str, ...]
    left: tuple[str, ...]
    close_votes: tuple[str, ...]
    posts: tuple[Post, ...]
    coalition_id: str | None = None
    """The coalition the proposal went to (decision 0032)."""

    @property
    def ref(self) -> RecordRef:
        return RecordRef(issuer=self.issuer, record_id=self.record_id)

    def count(self, response: str) -> int:
        return sum(1 for r in self.responses if r.response == response)


def _responses(proposal: Proposal, issuer: str, items: Sequence[CampaignItem]
               ) -> tuple[Response, ...]:
    found = []
    for item in items:
        if item.kind != "endorsement" or item.issuer == issuer \
                or item.issued_at > proposal.deadline:
            continue
        answer: Endorsement = payload_of(item)
        found.append(Response(item.issuer, answer.response, tuple(answer.roles), answer.reason,
                              tuple(answer.contacts), item.version, item.issued_at))
    return tuple(sorted(found, key=lambda r: r.org_id))


def _posts(items: Sequence[CampaignItem], members: set[str]) -> tuple[Post, ...]:
    posts = []
    for item in items:
        if item.kind != "campaign-post" or item.issuer not in members:
            continue
        post: CampaignPost = payload_of(item)
        posts.append(Post(item.issuer, item.record_id, post.post_type, post.title, post.text,
                          post.owner, post.due, tuple(post.targets), item.issued_at))
    return tuple(posts)


def _status(proposal: Proposal, joined: Sequence[str], campaign: Campaign | None,
            participants: Sequence[str], votes: Sequence[str], now: int) -> str:
    if campaign is not None:
        closing = campaign.status == CLOSED or 2 * len(votes) > len(participants)
        return CLOSED if closing else ACTIVE
    if len(joined) >= proposal.min_organisations:
        return LAUNCHING
    return EXPIRED if now > proposal.deadline else OPEN


def proposal_state(items: Sequence[CampaignItem], now: int,
                   first_coalition: str | None = None) -> ProposalState | None:
    """The state of the proposal whose thread ``items`` are (None without the proposal); a
    proposal naming no coalition went to ``first_coalition`` (the node's first)."""
    items = readable(items)
    head = next((i for i in items if i.kind == "proposal" and i.record_id == i.thread), None)
    if head is None:
        return None
    proposal: Proposal = payload_of(head)
    coalition = coalition_of_claims(head.claims, first_coalition)
    # What came through another coalition is not part of this proposal's thread (decision 0032).
    items = [i for i in items if coalition_of_claims(i.claims, first_coalition) == coalition]
    responses = _responses(proposal, head.issuer, items)
    joined = (head.issuer, *(r.org_id for r in responses if r.response == "join"))
    found = next((i for i in items if i.kind == "campaign" and i.issuer == head.issuer), None)
    campaign: Campaign | None = None if found is None else payload_of(found)
    members = set(campaign.participants) if campaign else set()
    posts = _posts(items, members)
    left = tuple(sorted({p.issuer for p in posts if p.post_type == "leave"} - {head.issuer}))
    participants = tuple(p for p in (campaign.participants if campaign else []) if p not in left)
    votes = tuple(sorted({p.issuer for p in posts if p.post_type == "close_vote"}
                         & set(participants)))
    return ProposalState(
        issuer=head.issuer, record_id=head.record_id, issued_at=head.issued_at,
        proposal=proposal, responses=responses,
        status=_status(proposal, joined, campaign, participants, votes, now),
        joined=joined, campaign=campaign,
        campaign_record=None if found is None else (found.record_id, found.version),
        participants=participants, left=left, close_votes=votes, posts=posts,
        coalition_id=coalition)


def campaign_payload(state: ProposalState, participants: Sequence[str], room_id: str,
                     status: str = ACTIVE) -> Campaign:
    proposal = state.proposal
    return Campaign(title=proposal.title, goal=proposal.goal, targets=proposal.targets,
                    countries=proposal.countries, themes=proposal.themes,
                    period=proposal.timeframe, status=status, proposal=state.ref,
                    participants=list(participants), room_id=room_id)


def campaign_room_power_levels(node_users: Sequence[str]) -> dict[str, Any]:
    """Only participating nodes post ``org.minga.*``; staff may talk (plain messages)."""
    levels = coalition_power_levels()
    levels["events_default"] = 0
    levels["users"] = {user: MEMBER_POWER for user in node_users}
    return levels


def campaign_room_state() -> list[dict[str, Any]]:
    return [
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "invite"}},
        {"type": "m.room.history_visibility", "state_key": "",
         "content": {"history_visibility": "shared"}},
        {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "forbidden"}},
    ]


# --- the shell: reading -----------------------------------------------------------------------


async def thread_items(node: Node, thread: str) -> tuple[list[CampaignItem], str | None]:
    """The thread's records, and the node's first coalition (for records naming none)."""
    async with node.store.read() as tx:
        return (await CampaignRecords(tx.session, tx.cipher).latest(thread=thread),
                await first_coalition_id(tx))


async def state_of(node: Node, issuer: str, record_id: str, now: int) -> ProposalState:
    items, first = await thread_items(node, record_id)
    state = proposal_state(items, now, first)
    if state is None or state.issuer != issuer:
        raise CampaignNotFound(f"no proposal {issuer}/{record_id} on this node")
    return state


async def all_proposals(node: Node, now: int) -> list[ProposalState]:
    """Every proposal this node knows, newest first."""
    async with node.store.read() as tx:
        records = CampaignRecords(tx.session, tx.cipher)
        heads = await records.latest(kind="proposal")
        threads = [await records.latest(thread=head.record_id) for head in heads]
        first = await first_coalition_id(tx)
    states = [proposal_state(items, now, first) for items in threads]
    return sorted((s for s in states if s is not None), key=lambda s: -s.issued_at)


# --- the shell: issuing -----------------------------------------------------------------------


async def other_members(node: Node, coalition_id: str | None = None) -> list[str]:
    """The other verified members of ``coalition_id`` (of any coalition when None)."""
    async with node.store.read() as tx:
        members = await tx.orgs.members(verified_only=True, coalition_id=coalition_id)
    return sorted(m.org_id for m in members if m.org_id != node.org_id)


async def coalition_of_state(node: Node, state: ProposalState) -> Coalition:
    """The coalition the proposal went to; :class:`NotAllowed` once this node left it."""
    if state.coalition_id is None:
        raise CampaignError("this node is in no coalition yet")
    try:
        return await node.coalition(state.coalition_id)
    except CoalitionNotChosen:
        raise NotAllowed("this node left the coalition of this proposal") from None


async def keep_own(node: Node, record: RecordBase[Any], coalition_id: str) -> None:
    claims = record_claims(record, disclosable_paths(record.record_kind))
    claims["coalition"] = coalition_id
    async with node.store.transaction() as tx:
        await CampaignRecords(tx.session, tx.cipher).add(
            record.issuer, record.record_id, record.version, record.kind, record.issued_at,
            claims)


async def issue(node: Node, payload: Payload, recipients: Sequence[str], room_id: str,
                coalition_id: str, *, actor: str, issued_at: int, record_id: str | None = None,
                version: int = 1) -> RecordBase[Any]:
    """Sign ``payload`` as a record, send it to ``recipients`` in ``room_id`` through the
    coalition ``coalition_id`` (only its verified members receive it), keep it here. Every
    recipient gets the same record: one token and one envelope for all (decision 0033)."""
    record = build_record(node.org_id, payload, record_id=record_id or new_record_id(),
                          issued_at=issued_at, version=version)
    members = set(await other_members(node, coalition_id))
    recipients = [org for org in recipients if org in members]
    if recipients:
        await share_in_room(node, [record], recipients, room_id, actor=actor,
                            issued_at=issued_at, coalition_id=coalition_id, alike=True)
    await keep_own(node, record, coalition_id)
    return record


async def to_coalition(node: Node, payload: Payload, coalition: Coalition, *, actor: str,
                       issued_at: int, record_id: str | None = None,
                       version: int = 1) -> RecordBase[Any]:
    """Send ``payload`` to every other verified member of ``coalition``, in its room."""
    return await issue(node, payload, await other_members(node, coalition.coalition_id),
                       coalition.room_id, coalition.coalition_id, actor=actor,
                       issued_at=issued_at, record_id=record_id, version=version)


# --- proposals and responses ------------------------------------------------------------------


async def propose(node: Node, proposal: Proposal, *, actor: str, now: int,
                  coalition_id: str | None = None) -> ProposalState:
    """Post ``proposal`` to the coalition ``coalition_id`` (the node's only one when None;
    :class:`node.core.runtime.CoalitionNotChosen` when it must be named)."""
    if proposal.deadline <= now:
        raise ResponsesClosed("deadline: must be in the future")
    coalition = await node.chosen_coalition(coalition_id)
    record = await to_coalition(node, proposal, coalition, actor=actor, issued_at=now)
    return await state_of(node, node.org_id, record.record_id, now)


async def respond(node: Node, issuer: str, record_id: str, response: str, *,
                  roles: Sequence[str] = (), reason: str | None = None,
                  contacts: Sequence[str] = (), actor: str, now: int) -> ProposalState:
    """Join, endorse or decline; a second call changes this organisation's response."""
    state = await state_of(node, issuer, record_id, now)
    if issuer == node.org_id:
        raise NotAllowed("the proposer takes part already; it does not respond")
    if now > state.proposal.deadline:
        raise ResponsesClosed(_closed_message(state.proposal.deadline))
    if state.status == CLOSED:
        raise NotAllowed("the campaign is closed")
    coalition = await coalition_of_state(node, state)
    payload = Endorsement(proposal=state.ref, response=response, roles=list(roles),
                          reason=reason, contacts=list(contacts))
    async with node.store.read() as tx:
        mine = [i for i in await CampaignRecords(tx.session, tx.cipher).latest(
            kind="endorsement", thread=record_id) if i.issuer == node.org_id]
    await to_coalition(node, payload, coalition, actor=actor, issued_at=now,
                       record_id=mine[0].record_id if mine else None,
                       version=mine[0].version + 1 if mine else 1)
    return await state_of(node, issuer, record_id, now)


def _closed_message(deadline: int) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(deadline))
    return f"responses closed at the deadline ({when}); a response can no longer be changed"


async def launch(node: Node, record_id: str, *, now: int) -> ProposalState:
    """Ask for the campaign room now (before the deadline, even below the minimum)."""
    state = await state_of(node, node.org_id, record_id, now)
    if state.status not in (OPEN, LAUNCHING):
        raise NotAllowed(f"the proposal is {state.status}; it cannot be launched")
    async with node.store.transaction() as tx:
        records = CampaignRecords(tx.session, tx.cipher)
        if await records.room(record_id) is None:
            await records.set_room(record_id, node.org_id, state=ROOM_LAUNCH)
    return state


# --- campaign room content --------------------------------------------------------------------


async def _room_of(node: Node, state: ProposalState) -> str:
    if state.campaign is None or state.campaign.room_id is None:
        raise NotAllowed("this proposal has no campaign room yet")
    if node.org_id not in state.participants:
        raise NotAllowed("this organisation does not take part in the campaign")
    if state.status == CLOSED:
        raise NotAllowed("the campaign is closed")
    return state.campaign.room_id


async def post(node: Node, issuer: str, record_id: str, post_type: str, *,
               title: str | None = None, text: str | None = None, owner: str | None = None,
               due: str | None = None, targets: Sequence[str] = (), actor: str,
               now: int) -> ProposalState:
    state = await state_of(node, issuer, record_id, now)
    room_id = await _room_of(node, state)
    if owner is not None and owner not in state.participants:
        raise NotAllowed("owner: a task is owned by a participating organisation")
    payload = CampaignPost(campaign=state.ref, post_type=post_type, title=title, text=text,
                           owner=owner, due=due, targets=list(targets))
    coalition = await coalition_of_state(node, state)
    others = [org for org in state.participants if org != node.org_id]
    await issue(node, payload, others, room_id, coalition.coalition_id, actor=actor,
                issued_at=now)
    return await state_of(node, issuer, record_id, now)


async def leave(node: Node, issuer: str, record_id: str, *, actor: str, now: int
                ) -> ProposalState:
    if issuer == node.org_id:
        raise NotAllowed("the proposer closes the campaign instead of leaving it")
    return await post(node, issuer, record_id, "leave", actor=actor, now=now)


async def close(node: Node, issuer: str, record_id: str, *, actor: str, now: int
                ) -> ProposalState:
    """The proposer closes; another participant votes to close (a majority closes)."""
    state = await state_of(node, issuer, record_id, now)
    if issuer != node.org_id:
        return await post(node, issuer, record_id, "close_vote", actor=actor, now=now)
    await _room_of(node, state)
    await _announce_closed(node, state, actor=actor, now=now)
    return await state_of(node, issuer, record_id, now)


async def _announce_closed(node: Node, state: ProposalState, *, actor: str, now: int) -> None:
    assert state.campaign is not None and state.campaign_record is not None
    record_id, version = state.campaign_record
    payload = campaign_payload(state, state.participants, state.campaign.room_id or "",
                               status=CLOSED)
    await to_coalition(node, payload, await coalition_of_state(node, state), actor=actor,
                       issued_at=now, record_id=record_id,
                       version=version + 1)


# --- duties: room work outside the inbox ------------------------------------------------------


async def _node_users(node: Node, org_ids: Sequence[str], coalition_id: str | None
                      ) -> dict[str, str]:
    """The node accounts of ``org_ids`` that are verified members of ``coalition_id``."""
    async with node.store.read() as tx:
        members = await tx.orgs.members(verified_only=True, coalition_id=coalition_id)
    return {m.org_id: m.matrix_user_id for m in members
            if m.org_id in org_ids and m.matrix_user_id}


async def _create_room(node: Node, transport: MatrixTransport, state: ProposalState,
                       known_room: str | None, now: int) -> None:
    """Create the room (unless an earlier attempt did) and announce the campaign."""
    coalition = await coalition_of_state(node, state)
    participants = list(dict.fromkeys(state.joined))
    room_id = known_room
    if room_id is None:
        users = await _node_users(node, [p for p in participants if p != node.org_id],
                                  coalition.coalition_id)
        room_id = await transport.create_room(
            name=CAMPAIGN_ROOM_NAME, invite=sorted(users.values()),
            initial_state=campaign_room_state(),
            power_levels=campaign_room_power_levels(sorted(users.values())))
        async with node.store.transaction() as tx:
            await CampaignRecords(tx.session, tx.cipher).set_room(
                state.record_id, node.org_id, state=ROOM_OPEN, room_id=room_id,
                created_by_us=True)
            await tx.audit.append("federation", "campaign.room.create", target=state.record_id,
                                  details={"room_id": room_id, "participants": participants})
        log.info("created campaign room %s for %s", room_id, state.record_id)
        await _invite_staff(transport, room_id, state, participants)
    await to_coalition(node, campaign_payload(state, participants, room_id), coalition,
                       actor="federation", issued_at=now)


async def _invite_staff(transport: MatrixTransport, room_id: str, state: ProposalState,
                        orgs: Sequence[str]) -> None:
    """Invite the staff accounts the joining organisations listed; one that fails (a typo, a
    server that is down) is logged and skipped, never holding up the campaign."""
    for contact in sorted({c for r in state.responses if r.org_id in orgs for c in r.contacts}):
        try:
            await transport.invite(room_id, contact)
        except TransportError as error:
            log.warning("could not invite a staff account to %s: %s", room_id, error.status)


async def _current_room(node: Node, room_id: str) -> str:
    """The campaign's room: the one named in its record, or the room that replaced it."""
    async with node.store.read() as tx:
        return successor(await replaced_rooms(tx.session), room_id)


async def _add_joiners(node: Node, transport: MatrixTransport, state: ProposalState,
                       now: int) -> None:
    assert state.campaign is not None and state.campaign_record is not None
    room_id = state.campaign.room_id or ""
    new = [o for o in state.joined if o not in state.campaign.participants and o not in state.left]
    if not new:  # responses issued after the deadline are not in the tally
        return
    coalition = await coalition_of_state(node, state)
    users = await _node_users(node, new, coalition.coalition_id)
    room_id = await _current_room(node, room_id)
    levels = await transport.state_event(room_id, "m.room.power_levels")
    levels["users"] = {**levels.get("users", {}), **{u: MEMBER_POWER for u in users.values()}}
    await transport.put_state(room_id, "m.room.power_levels", "", levels)
    for user in users.values():
        await transport.invite(room_id, user)
    await _invite_staff(transport, room_id, state, new)
    record_id, version = state.campaign_record
    participants = [*state.participants, *new]
    await to_coalition(node, campaign_payload(state, participants, room_id), coalition,
                       actor="federation", issued_at=now, record_id=record_id,
                       version=version + 1)


async def _leave_room(node: Node, transport: MatrixTransport, state: ProposalState) -> None:
    room_id = state.campaign.room_id if state.campaign else None
    if room_id is None:
        return
    room_id = await _current_room(node, room_id)
    try:
        await transport.leave(room_id)
    except TransportError as error:  # not in the room (never joined, or left already)
        log.info("leaving campaign room %s: %s", room_id, error)
    async with node.store.transaction() as tx:
        await CampaignRecords(tx.session, tx.cipher).set_room(
            state.record_id, state.issuer, state=ROOM_LEFT, room_id=room_id)
        await tx.audit.append("federation", "campaign.room.leave", target=state.record_id)


async def _duty(node: Node, transport: MatrixTransport, state: ProposalState,
                room: CampaignRoom | None, now: int) -> None:
    own = state.issuer == node.org_id
    room_state = room.state if room else None
    # A launch was checked against the deadline when it was asked for.
    if own and state.campaign is None and (state.status == LAUNCHING
                                           or room_state == ROOM_LAUNCH):
        await _create_room(node, transport, state, room.room_id if room else None, now)
        return
    if state.campaign is None or room_state == ROOM_LEFT:
        return
    closed_here = state.status == CLOSED
    if own and closed_here and state.campaign.status != CLOSED:
        await _announce_closed(node, state, actor="federation", now=now)
    if closed_here or node.org_id in state.left:
        await _leave_room(node, transport, state)
    elif own:
        await _add_joiners(node, transport, state, now)


async def campaign_duties(node: Node, transport: MatrixTransport, now: int) -> None:
    """Create, extend, announce closed and leave campaign rooms as the records require."""
    async with node.store.read() as tx:
        rooms = {r.proposal_id: r for r in
                 await CampaignRecords(tx.session, tx.cipher).rooms()}
    active = {c.coalition_id for c in await node.coalitions()}
    for state in await all_proposals(node, now):
        involved = state.issuer == node.org_id or node.org_id in (
            state.campaign.participants if state.campaign else ())
        if not involved or state.coalition_id not in active:  # left: see the hook
            continue
        try:
            await _duty(node, transport, state, rooms.get(state.record_id), now)
        except (TransportError, CampaignError) as error:
            log.warning("campaign %s: %s", state.record_id, error)
        except ValidationError as error:  # a malformed record; the problem names fields only
            log.warning("campaign %s: invalid record: %s", state.record_id,
                        [e.get("loc") for e in error.errors()])


# --- a proposer restored elsewhere (decision 0024) --------------------------------------------


async def _campaign_in(node: Node, room_id: str) -> ProposalState | None:
    """The campaign whose record names ``room_id`` as its room."""
    return next((s for s in await all_proposals(node, int(time.time()))
                 if s.campaign is not None and s.campaign.room_id == room_id), None)


async def campaign_room_of(node: Node, org_id: str, room_id: str) -> bool:
    """Whether ``room_id`` is the room of a campaign ``org_id`` proposed and this node takes
    part in (a room replacing it may take its place)."""
    state = await _campaign_in(node, room_id)
    return state is not None and state.issuer == org_id and node.org_id in state.participants


async def replacing_campaign_room(node: Node, room_state: Sequence[TimelineEvent]) -> str | None:
    """The proposer, if the room replaces the room of a campaign it proposed and this node
    takes part in, and was made by the proposer's current node account."""
    replaces = read_replaces(room_state)
    create = next((e for e in room_state if e.type == "m.room.create"), None)
    if replaces is None or create is None:
        return None
    state = await _campaign_in(node, replaces.old_room)
    if state is None or state.issuer == node.org_id or node.org_id not in state.participants:
        return None
    return state.issuer if await made_by_member(node, state.issuer, create.sender) else None


async def replace_campaign_rooms(node: Node, transport: MatrixTransport,
                                 held: frozenset[str]) -> set[str]:
    """The open campaign rooms this node made but its current account is not in (an old
    account made them: the node was restored elsewhere), each replaced by a new room its
    current account makes for the same participants. A campaign room may hold nothing this
    node sent, so it need not be held."""
    async with node.store.read() as tx:
        rooms = [r for r in await CampaignRecords(tx.session, tx.cipher).rooms()
                 if r.created_by_us and r.state == ROOM_OPEN and r.room_id is not None]
    if not rooms:
        return set()
    try:
        joined = set(await transport.joined_rooms())
    except TransportError as error:
        log.warning("could not list the joined rooms: %s", error)
        return set()
    rooms = [r for r in rooms if r.room_id not in joined]
    replaced: set[str] = set()
    for room in rooms:
        assert room.room_id is not None
        try:
            state = await state_of(node, node.org_id, room.proposal_id, int(time.time()))
            if state.coalition_id not in {c.coalition_id for c in await node.coalitions()}:
                continue  # a coalition this node left: its campaign rooms were left too
            others = [p for p in state.participants if p != node.org_id and p not in state.left]
            users = await _node_users(node, others, state.coalition_id)
            async with node.store.read() as tx:
                held_up_to = {o: await received_up_to(tx.session, o, room.room_id)
                              for o in others}
            new_room = await transport.create_room(
                name=CAMPAIGN_ROOM_NAME, invite=sorted(users.values()),
                initial_state=[*campaign_room_state(), replaces_state(room.room_id, held_up_to)],
                power_levels=campaign_room_power_levels(sorted(users.values())))
        except (TransportError, CampaignError) as error:
            log.warning("could not replace campaign room %s: %s", room.room_id, error)
            continue
        async with node.store.transaction() as tx:
            await CampaignRecords(tx.session, tx.cipher).set_room(
                room.proposal_id, node.org_id, state=ROOM_OPEN, room_id=new_room,
                created_by_us=True)
            moved = await move_room(tx.session, room.room_id, new_room)
            await release_room(tx.session, room.room_id)
            await note_room_replaced(tx, node.org_id, room.room_id, new_room, moved)
        log.info("replaced campaign room %s by %s", room.room_id, new_room)
        await _invite_staff(transport, new_room, state, others)
        replaced.add(room.room_id)
    return replaced & held


async def leave_coalition_campaigns(node: Node, transport: MatrixTransport,
                                    coalition: Coalition) -> None:
    """The ``coalition_left`` hook: leave the campaign rooms of the coalition this node left
    (decision 0032); the records stay, shown as from a coalition this node left."""
    async with node.store.read() as tx:
        rooms = {r.proposal_id: r for r in
                 await CampaignRecords(tx.session, tx.cipher).rooms()}
    for state in await all_proposals(node, int(time.time())):
        room = rooms.get(state.record_id)
        if state.coalition_id != coalition.coalition_id or (room and room.state == ROOM_LEFT):
            continue
        if state.campaign is None:
            if room is not None:  # a launch asked for and never made: it will not be
                async with node.store.transaction() as tx:
                    await CampaignRecords(tx.session, tx.cipher).set_room(
                        state.record_id, state.issuer, state=ROOM_LEFT)
            continue
        if state.issuer == node.org_id or node.org_id in state.campaign.participants:
            await _leave_room(node, transport, state)


async def run_campaign_duties(node: Node, *, interval: float = DUTY_INTERVAL_SECONDS) -> None:
    """:func:`campaign_duties` every ``interval`` seconds until cancelled."""
    async with node.transport() as transport:
        await repeat(lambda now: campaign_duties(node, transport, now), every_seconds=interval,
                     failure="campaign duties failed", log=log)
