"""Continuing this node's chains after it was restored elsewhere (issue M13 item 5).

A node restored from a backup has its outbox frames up to the backup, but its old account may
have posted more before the machine was seized; peers hold those envelopes in each room's chain,
so frames numbered from the backup on would be refused as ``chain-conflict``. A restored node
therefore *holds* each of its rooms (:func:`hold_rooms`): nothing is sealed or posted there until
it has read what its organisation posted in the room (:func:`own_envelopes_in`, through the new
account once it is back in the room) and continued from the last envelope peers accepted
(:func:`plan_resume`, :func:`resume_room`). Envelopes found after the backup become sent frames
(kept for resend requests); unsent frames of the backup that the room already holds are marked
sent; unsent frames whose place was taken by another envelope can no longer be posted: their
records are queued again (:func:`sync.requeue.requeue_frames`) and go out sealed anew after the
resumed chain; only records whose SD-JWT an older node had erased at bundling are lost (counted).
Receivers need no change: the chain goes on from the seq and hash they last accepted.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from federation.canonical import canonical_json
from federation.keys import SigningKeyResolver
from federation.sealing import SealingError, verify_envelope
from federation.transport import MatrixTransport, TimelineEvent, TransportError
from sync.frame import (
    SEALED_EVENT_TYPE,
    BlobRef,
    FrameError,
    envelope_from_blob,
    envelope_hash,
    parse_content,
    read_chain_context,
)
from sync.requeue import requeue_frames
from sync.tables import Cursor, Frame, OutboxItem, table

HELD_ROOMS = "chains_to_resume"
REPLACE_PENDING = "rooms_to_replace"
_PAGE = 100
_MAX_PAGES = 200
_MAX_BLOB_BYTES = 16 * 1024 * 1024
_NEXT_BATCH = "next_batch"  # sync.inbox.NEXT_BATCH (the inbox imports this module)


class ChainDoesNotContinue(ValueError):
    """The room holds another envelope where this node's records say it posted one."""


@dataclass(frozen=True)
class PostedEnvelope:
    """An envelope of this organisation found in a room, in timeline order."""

    seq: int
    hash: str
    prev: str
    content: dict[str, Any]
    event_id: str


@dataclass(frozen=True)
class LocalFrame:
    frame_id: int
    seq: int
    hash: str
    sent: bool


@dataclass(frozen=True)
class ResumePlan:
    adopt: list[PostedEnvelope] = field(default_factory=list)
    mark_sent: list[tuple[int, str]] = field(default_factory=list)  # (frame id, event id)
    superseded: list[int] = field(default_factory=list)  # unsent frame ids


def plan_resume(local: Sequence[LocalFrame], posted: Sequence[PostedEnvelope]) -> ResumePlan:
    """How the restored frames of one room continue from what the room holds.

    The first envelope at each seq wins (a second one was refused by peers as a conflict; a
    resend repeats the same hash)."""
    first: dict[int, PostedEnvelope] = {}
    for envelope in posted:
        first.setdefault(envelope.seq, envelope)
    plan = ResumePlan()
    top_posted = max(first, default=0)
    broken_from: int | None = None
    for frame in sorted(local, key=lambda f: f.seq):
        found = first.get(frame.seq)
        if frame.sent:
            if found is not None and found.hash != frame.hash:
                raise ChainDoesNotContinue(
                    f"seq {frame.seq}: the room holds another envelope than the one sent")
            continue
        if broken_from is None and found is not None and found.hash == frame.hash:
            plan.mark_sent.append((frame.frame_id, found.event_id))
        elif broken_from is not None or found is not None or frame.seq <= top_posted:
            broken_from = frame.seq if broken_from is None else broken_from
            plan.superseded.append(frame.frame_id)
    dropped = set(plan.superseded)
    kept = [f for f in local if f.frame_id not in dropped]
    head_seq, head_hash = max(((f.seq, f.hash) for f in kept), default=(0, ""))
    for seq in sorted(first):
        if seq <= head_seq:
            continue
        envelope = first[seq]
        if seq == head_seq + 1 and head_seq > 0 and envelope.prev != head_hash:
            raise ChainDoesNotContinue(f"seq {seq}: does not follow this node's last envelope")
        plan.adopt.append(envelope)
        head_seq, head_hash = seq, envelope.hash
    return plan


# --- the hold --------------------------------------------------------------------------------


async def held_rooms(session: AsyncSession) -> set[str]:
    row = await session.get(Cursor, HELD_ROOMS, populate_existing=True)
    return set(json.loads(row.value)) if row is not None else set()


async def _set_held(session: AsyncSession, rooms: set[str]) -> None:
    row = await session.get(Cursor, HELD_ROOMS)
    if not rooms:
        if row is not None:
            await session.delete(row)
        return
    value = json.dumps(sorted(rooms))
    if row is None:
        session.add(Cursor(name=HELD_ROOMS, value=value))
    else:
        row.value = value


async def hold_rooms(session: AsyncSession) -> set[str]:
    """Hold every room this node has sent or queued anything in; returns them. Also notes that
    the rooms an old account of this node made are to be replaced (decision 0024), even those
    it sent nothing in (:func:`replacement_pending`)."""
    rooms = set(await session.scalars(select(Frame.room_id).distinct()))
    rooms |= set(await session.scalars(select(OutboxItem.room_id).distinct()))
    rooms |= await held_rooms(session)
    await _set_held(session, rooms)
    if await session.get(Cursor, REPLACE_PENDING) is None:
        session.add(Cursor(name=REPLACE_PENDING, value="1"))
    return rooms


async def replacement_pending(session: AsyncSession) -> bool:
    """Whether this node took a new account and has yet to look for rooms its old one made."""
    return await session.get(Cursor, REPLACE_PENDING, populate_existing=True) is not None


async def replacement_done(session: AsyncSession) -> None:
    await session.execute(delete(Cursor).where(Cursor.name == REPLACE_PENDING))


async def release_room(session: AsyncSession, room_id: str) -> None:
    """Stop holding a room without resuming (say, a room the new account cannot enter)."""
    await _set_held(session, await held_rooms(session) - {room_id})


# --- reading the room ------------------------------------------------------------------------


async def _envelope_of(transport: MatrixTransport, event: TimelineEvent) -> dict[str, Any]:
    found = parse_content(event.content)
    if isinstance(found, BlobRef):
        found = envelope_from_blob(found, await transport.download(
            found.url, max_bytes=min(found.size, _MAX_BLOB_BYTES)))
    return found


async def own_envelopes_in(
    transport: MatrixTransport, room_id: str, org_id: str, resolver: SigningKeyResolver,
    *, known_up_to: int,
) -> list[PostedEnvelope]:
    """This organisation's verified envelopes in ``room_id``, oldest first, read backwards from
    the newest event until one at or below seq ``known_up_to`` (or the room's start)."""
    found: list[PostedEnvelope] = []
    token: str | None = None
    for _ in range(_MAX_PAGES):
        events, token = await transport.messages(room_id, token, limit=_PAGE)
        page: list[PostedEnvelope] = []
        for event in events:
            if event.type != SEALED_EVENT_TYPE or not isinstance(event.content, dict):
                continue
            try:
                wire = await _envelope_of(transport, event)
                sealed = verify_envelope(wire, resolver)
                link = read_chain_context(sealed.context)
            except (FrameError, SealingError, TransportError, ValueError):
                continue  # not ours, or nothing a peer accepted either
            if sealed.sender != org_id or link.room != room_id:
                continue
            content = {k: v for k, v in event.content.items() if k != "resend"}
            page.append(PostedEnvelope(link.seq, envelope_hash(sealed.to_wire()), link.prev,
                                       content, event.event_id))
        found = page + found
        if not events or token is None or any(e.seq <= known_up_to for e in page):
            break
    return found


# --- applying --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resumed:
    room_id: str
    adopted: int
    marked_sent: int
    records_lost: int
    next_seq: int
    records_requeued: int = 0


async def local_frames(session: AsyncSession, room_id: str) -> list[LocalFrame]:
    rows = await session.execute(select(Frame.id, Frame.seq, Frame.envelope_hash, Frame.event_id)
                                 .where(Frame.room_id == room_id))
    return [LocalFrame(frame_id, seq, hash_, event_id is not None)
            for frame_id, seq, hash_, event_id in rows]


async def apply_resume(session: AsyncSession, room_id: str, plan: ResumePlan,
                       *, at_ms: int) -> Resumed:
    """Store ``plan`` for ``room_id`` and stop holding the room."""
    for frame_id, event_id in plan.mark_sent:
        frame = await session.get(Frame, frame_id)
        assert frame is not None
        frame.event_id, frame.sent_at, frame.last_error = event_id, at_ms, None
    if plan.mark_sent:  # posted: their records are not sealed again (as in the outbox)
        await session.execute(update(OutboxItem).where(OutboxItem.frame_id.in_(
            [frame_id for frame_id, _ in plan.mark_sent])).values(token=None))
    # Deleted before the adopted envelopes take their seqs; sealed again after them.
    requeued = await requeue_frames(session, plan.superseded, room_id)
    if plan.adopt:
        await session.execute(insert(table(Frame)), [{
            "room_id": room_id, "seq": envelope.seq, "envelope_hash": envelope.hash,
            "txn_id": f"minga.restored.{secrets.token_hex(10)}",
            "content": canonical_json(envelope.content).decode(), "blob": None,
            "record_count": 0, "event_id": envelope.event_id, "created_at": at_ms,
            "sent_at": at_ms, "attempts": 0, "next_attempt_at": 0,
        } for envelope in plan.adopt])
    await release_room(session, room_id)
    frames = await local_frames(session, room_id)
    return Resumed(room_id, len(plan.adopt), len(plan.mark_sent), requeued.lost,
                   max((f.seq for f in frames), default=0) + 1, requeued.records)


async def resume_room(
    transaction: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    transport: MatrixTransport, room_id: str, org_id: str, resolver: SigningKeyResolver,
    *, at_ms: int,
) -> Resumed:
    """Read what this organisation posted in ``room_id`` and continue its chain from there
    (the room is read between two transactions; it stays held until the second commits)."""
    async with transaction() as session:
        local = await local_frames(session, room_id)
    known = max((f.seq for f in local if f.sent), default=0)
    posted = await own_envelopes_in(transport, room_id, org_id, resolver, known_up_to=known)
    async with transaction() as session:
        if room_id not in await held_rooms(session):
            return Resumed(room_id, 0, 0, 0, 0)  # resumed meanwhile
        plan = plan_resume(await local_frames(session, room_id), posted)
        return await apply_resume(session, room_id, plan, at_ms=at_ms)


async def forget_sync_position(session: AsyncSession) -> None:
    """Drop the stored sync token (it belongs to the account the node had): the next sync is
    an initial one, and rooms are paged back to the last event handled in each."""
    await session.execute(delete(Cursor).where(Cursor.name == _NEXT_BATCH))
