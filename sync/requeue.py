"""Records that must go out again, and rooms replaced by other rooms (M13, decision 0024).

Two cases need the same thing, records queued again instead of lost:

- a restored node's unsent frame whose place in a room's chain was taken by an envelope its old
  account posted after the backup (:mod:`sync.resume`): its envelope can never be accepted;
- a room the node can no longer post in because another room replaced it (a pair room the
  seized old account created, which the new account can never enter): its unsent frames and
  queued records go to the new room.

:func:`requeue_frames` puts the records of unsent frames back into the queue (for the same room
or another one): they are sealed anew by the outbox, for the recipients' current keys, as the
next envelopes of that room's chain, and the frames are deleted. It needs each record's SD-JWT,
which the outbox keeps (encrypted at rest) until the frame holding it has been posted; records
of frames bundled by an older node, whose SD-JWT was erased at bundling, cannot be re-sealed and
are counted as lost.

A replaced room stays readable as a chain: :func:`note_replaced` remembers ``old -> new`` (a
sync cursor row, ids only). The outbox posts answers to resend requests for frames of the old
room into the new one (the envelope unchanged, its chain context still naming the old room), and
the inbox accepts, in the new room, envelopes whose context names a room it replaced, keeping
them in the old room's chain; gap requests for that chain go to the new room naming the old one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sync.tables import Chain, Cursor, Frame, OutboxItem

REPLACED_ROOMS = "replaced_rooms"
QUEUED_FLAG = "minga_sync_queued"
"""Set in ``session.info`` when a transaction queued records: the outbox has work once it
commits (:func:`sync.outbox.queued_in`)."""


@dataclass(frozen=True)
class Requeued:
    """Records queued again, and records that could not be (their SD-JWT was erased)."""

    records: int = 0
    lost: int = 0

    def __add__(self, other: Requeued) -> Requeued:
        return Requeued(self.records + other.records, self.lost + other.lost)


async def requeue_frames(session: AsyncSession, frame_ids: Sequence[int],
                         into_room: str) -> Requeued:
    """Queue the records of the unsent frames ``frame_ids`` again, for ``into_room``, and delete
    the frames. Sent frames are left alone (their envelopes were posted; resends repeat them)."""
    frames = list(await session.scalars(
        select(Frame).where(Frame.id.in_(list(frame_ids)), Frame.event_id.is_(None))))
    if not frames:
        return Requeued()
    ids = [frame.id for frame in frames]
    items = list(await session.execute(
        select(OutboxItem.id, OutboxItem.token.is_not(None)).where(OutboxItem.frame_id.in_(ids))))
    kept = [item_id for item_id, has_token in items if has_token]
    erased = [item_id for item_id, has_token in items if not has_token]
    if kept:
        await session.execute(update(OutboxItem).where(OutboxItem.id.in_(kept)).values(
            frame_id=None, room_id=into_room, last_error=None))
        session.info[QUEUED_FLAG] = True
    if erased:
        await session.execute(delete(OutboxItem).where(OutboxItem.id.in_(erased)))
    await session.execute(delete(Frame).where(Frame.id.in_(ids)))
    # A frame counts its records; items missing from it were never kept (or already pruned).
    missing = sum(frame.record_count for frame in frames) - len(items)
    return Requeued(len(kept), len(erased) + max(missing, 0))


async def move_room(session: AsyncSession, old_room: str, new_room: str) -> Requeued:
    """``new_room`` replaces ``old_room`` for this node: what is queued or sealed and unsent for
    the old room goes to the new one (sealed anew there), and the replacement is remembered."""
    moved = await session.execute(
        update(OutboxItem).where(OutboxItem.room_id == old_room, OutboxItem.frame_id.is_(None))
        .values(room_id=new_room, last_error=None))
    count = int(moved.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        session.info[QUEUED_FLAG] = True
    unsent = list(await session.scalars(
        select(Frame.id).where(Frame.room_id == old_room, Frame.event_id.is_(None))))
    requeued = await requeue_frames(session, unsent, new_room)
    await note_replaced(session, old_room, new_room)
    return requeued + Requeued(count, 0)


# --- the replaced rooms ----------------------------------------------------------------------


async def replaced_rooms(session: AsyncSession) -> dict[str, str]:
    """Each room this node knows was replaced, and the room that replaces it now."""
    row = await session.get(Cursor, REPLACED_ROOMS, populate_existing=True)
    found = json.loads(row.value) if row is not None else {}
    return {str(old): str(new) for old, new in found.items()} if isinstance(found, dict) else {}


async def note_replaced(session: AsyncSession, old_room: str, new_room: str) -> None:
    """Remember that ``new_room`` replaces ``old_room`` (and every room ``old_room`` replaced)."""
    rooms = {old: (new_room if new == old_room else new)
             for old, new in (await replaced_rooms(session)).items()}
    rooms[old_room] = new_room
    rooms.pop(new_room, None)
    value = json.dumps(rooms, sort_keys=True)
    row = await session.get(Cursor, REPLACED_ROOMS)
    if row is None:
        session.add(Cursor(name=REPLACED_ROOMS, value=value))
    else:
        row.value = value


async def received_up_to(session: AsyncSession, issuer: str, room_id: str) -> int:
    """The highest seq of ``issuer``'s chain in ``room_id`` up to which this node holds every
    envelope (0 if none): where a replacing room's catch-up starts."""
    chain = await session.get(Chain, (issuer, room_id))
    if chain is None:
        return 0
    missing = json.loads(chain.missing)
    return min(int(low) for low, _ in missing) - 1 if missing else int(chain.top)


def successor(rooms: dict[str, str], room_id: str) -> str:
    """Where to post for ``room_id``: itself, or the room that replaced it."""
    return rooms.get(room_id, room_id)


async def chain_issuers(session: AsyncSession, room_id: str) -> set[str]:
    """The members whose chains in ``room_id`` this node holds (none: it never read the room)."""
    return set(await session.scalars(select(Chain.issuer).where(Chain.room_id == room_id)))
