"""The outbox's queue and bundling, without a homeserver: what is stored, how frames are cut."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import select, text

from federation.encoding import b64u_encode
from federation.identity import KeyRing, OrgKeys, sign_member_entry
from federation.sealing import open_envelope, seal
from federation.transport import MatrixTransport
from sync.frame import (
    MAX_INLINE_CONTENT_BYTES,
    bundle,
    envelope_from_blob,
    envelope_hash,
    fits_inline,
    parse_content,
    read_chain_context,
    unbundle,
)
from sync.outbox import (
    BACKLOG_MIN_RECORDS,
    BLOB_MAX_RECORDS,
    ITEM_CONTEXT,
    Outbox,
    OutboxError,
    abandon_room,
    enqueue_many,
    item_states,
    outbox_counts,
    queued_in,
    schedule_resends,
)
from sync.requeue import (
    Requeued,
    move_room,
    note_replaced,
    received_up_to,
    replaced_rooms,
    requeue_frames,
    successor,
)
from sync.resume import PostedEnvelope, apply_resume, hold_rooms, local_frames, plan_resume
from sync.tables import Chain, Frame, OutboxItem
from tests.support.sync import RingTrust, TestHost, database_in, open_database, record_token

ROOM, OTHER_ROOM = "!room:test", "!other:test"
A, B, C = (OrgKeys.generate() for _ in range(3))
STRANGER = OrgKeys.generate()


def _ring(*orgs: OrgKeys) -> KeyRing:
    ring = KeyRing()
    for keys in orgs:
        ring.add_member_entry(sign_member_entry(keys, {"name": "member"}))
    return ring


RING = _ring(A, B, C)


@pytest.fixture
async def outbox(store_location: Path | str) -> AsyncIterator[Outbox]:
    engine = await open_database(database_in(store_location, "a.db"))
    host = TestHost(A, engine, RingTrust(RING, {}))
    try:
        # Bundling never touches the homeserver.
        yield Outbox(host, cast(MatrixTransport, None))
    finally:
        await engine.dispose()


async def _queue(outbox: Outbox, tokens: list[str], room: str = ROOM,
                 recipients: list[str] | None = None) -> list[int]:
    async with outbox.host.transaction() as session:
        return [await outbox.enqueue(session, room, recipients or [B.org_id], token)
                for token in tokens]


async def _frames(outbox: Outbox) -> list[Frame]:
    async with outbox.host.transaction() as session:
        return list(await session.scalars(select(Frame).order_by(Frame.id)))


def _envelope(frame: Frame) -> dict[str, Any]:
    if frame.content is not None:
        found = parse_content(json.loads(frame.content))
        assert isinstance(found, dict)
        return found
    assert frame.blob is not None
    return cast(dict[str, Any], json.loads(frame.blob))


def _tokens_in(frame: Frame, reader: OrgKeys = B) -> list[str]:
    return unbundle(open_envelope(_envelope(frame), reader, RING).payload)


async def test_queued_records_are_encrypted_at_rest(
        outbox: Outbox, store_location: Path | str) -> None:
    token = record_token(A)
    [item_id] = await _queue(outbox, [token])
    async with outbox.host.transaction() as session:
        item = await session.get(OutboxItem, item_id)
        assert item is not None and item.token is not None
        assert token.encode() not in item.token
        plain = outbox.host.cipher.decrypt_at_rest(item.token, (ITEM_CONTEXT, item.ref))
        assert plain == token.encode()
        with pytest.raises(Exception):  # noqa: B017 - bound to its own row's context
            outbox.host.cipher.decrypt_at_rest(item.token, (ITEM_CONTEXT, "another-row"))
    async with cast(TestHost, outbox.host).engine.connect() as connection:
        rows = await connection.execute(text("SELECT * FROM sync_outbox_items"))
        stored = b"".join(bytes(value) if isinstance(value, bytes | memoryview)
                          else str(value).encode() for row in rows for value in row)
    if isinstance(store_location, Path):  # and the file, write-ahead log included
        stored += b"".join(path.read_bytes() for path in store_location.glob("a.db*"))
    assert token.split(".")[1].encode() not in stored


async def test_bundles_fill_inline_events_and_form_a_chain(outbox: Outbox) -> None:
    tokens = [record_token(A, body_size=1500) for _ in range(BACKLOG_MIN_RECORDS - 1)]
    await _queue(outbox, tokens)
    made = await outbox.bundle_queued()
    frames = await _frames(outbox)
    assert made == len(frames) and 1 < len(frames) < len(tokens)
    carried: list[str] = []
    prev = ""
    full: list[bool] = []
    for seq, frame in enumerate(frames, 1):
        assert frame.content is not None and frame.event_id is None
        assert len(frame.content.encode()) <= MAX_INLINE_CONTENT_BYTES
        envelope = _envelope(frame)
        link = read_chain_context(envelope["context"])
        assert (link.room, link.seq, link.prev) == (ROOM, seq, prev)
        assert frame.seq == seq and frame.envelope_hash == envelope_hash(envelope)
        prev = frame.envelope_hash
        inside = _tokens_in(frame)
        assert frame.record_count == len(inside)
        carried += inside
        if len(carried) < len(tokens):
            full.append(not _fits_with(envelope, [*inside, tokens[len(carried)]]))
    assert carried == tokens  # in order, each once
    assert all(full)  # every frame but the last: one more record would not have fitted


def _fits_with(envelope: dict[str, Any], tokens: list[str]) -> bool:
    """Whether the same frame (recipients, context) holding ``tokens`` would fit inline."""
    resealed = seal(bundle(tokens), A, [RING.encryption_key_for(B.org_id)],
                    envelope["created_at"], context=envelope["context"]).to_wire()
    return fits_inline(resealed)


async def test_bundled_items_are_reported_and_erased_once_posted(outbox: Outbox) -> None:
    ids = await _queue(outbox, [record_token(A) for _ in range(5)])
    async with outbox.host.transaction() as session:
        assert {s.state for s in (await item_states(session, ids)).values()} == {"queued"}
        assert (await outbox_counts(session)).queued_items == 5
    await outbox.bundle_queued()
    async with outbox.host.transaction() as session:
        states = await item_states(session, ids)
        counts = await outbox_counts(session)
        items = [await session.get(OutboxItem, item_id) for item_id in ids]
    assert {s.state for s in states.values()} == {"bundled"}
    assert {s.seq for s in states.values()} == {1}
    # Kept (encrypted) until the frame is posted: a frame that cannot be posted is sealed again.
    assert all(item is not None and item.token is not None for item in items)
    assert (counts.queued_items, counts.unsent_frames, counts.sent_frames) == (0, 1, 0)
    sender, _ = _posting(outbox)
    assert await sender.send_due() == 1
    async with outbox.host.transaction() as session:
        items = [await session.get(OutboxItem, item_id, populate_existing=True)
                 for item_id in ids]
        assert (await outbox_counts(session)).sent_frames == 1
    assert all(item is not None and item.token is None for item in items)


async def test_a_record_too_large_for_an_event_becomes_a_blob(outbox: Outbox) -> None:
    small, large = record_token(A), record_token(A, body_size=100_000)
    await _queue(outbox, [small, large, small])
    await outbox.bundle_queued()
    frames = await _frames(outbox)
    assert [frame.record_count for frame in frames] == [1, 1, 1]
    blob_frame = frames[1]
    assert blob_frame.content is None and blob_frame.blob is not None
    envelope = json.loads(blob_frame.blob)
    assert not fits_inline(envelope)
    assert _tokens_in(blob_frame) == [large]
    assert [_tokens_in(frame) for frame in (frames[0], frames[2])] == [[small], [small]]
    assert envelope_from_blob(
        parse_content({"blob": {"url": "mxc://hs/x", "sha256": _sha(blob_frame.blob),
                                "size": len(blob_frame.blob)}}),  # type: ignore[arg-type]
        blob_frame.blob,
    ) == envelope


async def test_a_backlog_travels_in_blobs_and_what_is_left_inline(outbox: Outbox) -> None:
    tokens = [record_token(A) for _ in range(BLOB_MAX_RECORDS + BACKLOG_MIN_RECORDS - 1)]
    await _queue(outbox, tokens)
    await outbox.bundle_queued()
    frames = await _frames(outbox)
    blob, *inline = frames
    assert blob.content is None and blob.blob is not None
    assert blob.record_count == BLOB_MAX_RECORDS
    assert inline and all(frame.content is not None and frame.blob is None for frame in inline)
    carried = [token for frame in frames for token in _tokens_in(frame)]
    assert carried == tokens  # in order, each once
    prev = ""
    for seq, frame in enumerate(frames, 1):
        link = read_chain_context(_envelope(frame)["context"])
        assert (link.seq, link.prev) == (seq, prev)
        prev = frame.envelope_hash


def _sha(data: bytes) -> str:
    return b64u_encode(hashlib.sha256(data).digest())


async def test_frames_are_per_room_and_recipient_set(outbox: Outbox) -> None:
    await _queue(outbox, [record_token(A)], ROOM, [B.org_id])
    await _queue(outbox, [record_token(A)], ROOM, [B.org_id, C.org_id])
    await _queue(outbox, [record_token(A)], OTHER_ROOM, [C.org_id])
    await _queue(outbox, [record_token(A)], ROOM, [C.org_id, B.org_id])
    await outbox.bundle_queued()
    frames = await _frames(outbox)
    assert [(frame.room_id, frame.seq, frame.record_count) for frame in frames] == [
        (ROOM, 1, 1), (ROOM, 2, 2), (OTHER_ROOM, 1, 1)
    ]
    assert len(_tokens_in(frames[1], C)) == 2
    with pytest.raises(Exception, match="recipients"):
        _tokens_in(frames[2], B)


async def test_an_untrusted_recipient_keeps_the_record_queued(outbox: Outbox) -> None:
    [stuck] = await _queue(outbox, [record_token(A)], recipients=[STRANGER.org_id])
    [fine] = await _queue(outbox, [record_token(A)])
    assert await outbox.bundle_queued() == 1
    async with outbox.host.transaction() as session:
        states = await item_states(session, [stuck, fine])
    assert states[stuck].state == "queued" and states[stuck].last_error
    assert states[fine].state == "bundled"


@pytest.mark.parametrize(
    ("room", "recipients", "token"),
    [("room", ["b"], "t"), (ROOM, [], "t"), (ROOM, "b", "t"), (ROOM, ["b"], ""),
     (ROOM, [""], "t")],
)
async def test_enqueue_refuses_bad_input(
    outbox: Outbox, room: str, recipients: Any, token: str
) -> None:
    async with outbox.host.transaction() as session:
        with pytest.raises(OutboxError):
            await outbox.enqueue(session, room, recipients, token)


async def test_many_records_queue_in_order_in_one_go(outbox: Outbox) -> None:
    tokens = [record_token(A) for _ in range(5)]
    async with outbox.host.transaction() as session:
        ids = await enqueue_many(session, outbox.host.cipher, ROOM, [B.org_id], tokens,
                                 queued_at_ms=0)
        with pytest.raises(OutboxError):
            await enqueue_many(session, outbox.host.cipher, ROOM, [B.org_id], ["t", ""],
                               queued_at_ms=0)
    assert ids == sorted(ids) and len(set(ids)) == 5
    await outbox.bundle_queued()
    [frame] = await _frames(outbox)
    assert _tokens_in(frame) == tokens


class _HeldTransport:
    """Posts only while ``open`` is set; notes each txn id posted."""

    def __init__(self) -> None:
        self.posted: list[str] = []
        self.attempts = 0
        self.open = asyncio.Event()
        self.open.set()

    async def send(self, room_id: str, event_type: str, content: dict[str, Any],
                   txn_id: str) -> str:
        self.attempts += 1
        await self.open.wait()
        self.posted.append(txn_id)
        return f"$event-{len(self.posted)}"


def _posting(outbox: Outbox) -> tuple[Outbox, _HeldTransport]:
    transport = _HeldTransport()
    return Outbox(outbox.host, cast(MatrixTransport, transport)), transport


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def test_urgent_items_are_sealed_in_their_transaction_and_posted_at_once(
    outbox: Outbox,
) -> None:
    sender, transport = _posting(outbox)
    backlog = await _queue(outbox, [record_token(A) for _ in range(3)])
    urgent = record_token(A)
    async with outbox.host.transaction() as session:
        urgent_id = await sender.enqueue(session, ROOM, [B.org_id], urgent)
        frames = await sender.bundle_in(session, [urgent_id])
        assert await sender.bundle_in(session, [urgent_id]) == []  # sealed once only
    assert len(frames) == 1
    sender.post_now(frames)  # the loop is not running
    await _until(lambda: len(transport.posted) == 1)
    async with outbox.host.transaction() as session:
        states = await item_states(session, [urgent_id, *backlog])
    assert states[urgent_id].state == "sent" and states[urgent_id].seq == 1
    assert {states[i].state for i in backlog} == {"queued"}
    assert await sender.bundle_queued() == 1
    first, second = await _frames(outbox)
    assert _tokens_in(first) == [urgent] and len(_tokens_in(second)) == 3
    assert read_chain_context(_envelope(second)["context"]).prev == first.envelope_hash


async def test_a_frame_being_posted_is_not_posted_again_by_the_loop(outbox: Outbox) -> None:
    sender, transport = _posting(outbox)
    async with outbox.host.transaction() as session:
        item_id = await sender.enqueue(session, ROOM, [B.org_id], record_token(A))
        frames = await sender.bundle_in(session, [item_id])
    transport.open.clear()
    sender.post_now(frames)
    await _until(lambda: transport.attempts == 1)  # waiting for the homeserver
    assert await sender.send_due() == 0
    transport.open.set()
    await _until(lambda: len(transport.posted) == 1)
    for _ in range(1000):  # until the event id is stored
        [frame] = await _frames(outbox)
        if frame.event_id:
            break
        await asyncio.sleep(0.005)
    assert frame.event_id == "$event-1"
    assert await sender.send_due() == 0
    assert transport.attempts == 1


# --- records queued again (sync.requeue) --------------------------------------------------------


class _RoomsTransport(_HeldTransport):
    """Also notes the room each event was posted in."""

    def __init__(self) -> None:
        super().__init__()
        self.rooms: list[str] = []

    async def send(self, room_id: str, event_type: str, content: dict[str, Any],
                   txn_id: str) -> str:
        self.rooms.append(room_id)
        return await super().send(room_id, event_type, content, txn_id)


async def test_unsent_frames_are_queued_again_and_sealed_anew_in_another_room(
    outbox: Outbox,
) -> None:
    tokens = [record_token(A) for _ in range(3)]
    await _queue(outbox, tokens)
    await outbox.bundle_queued()
    [old] = await _frames(outbox)
    async with outbox.host.transaction() as session:
        requeued = await requeue_frames(session, [old.id], OTHER_ROOM)
        assert queued_in(session)
    assert requeued == Requeued(3, 0)
    assert await _frames(outbox) == []
    await outbox.bundle_queued()
    [new] = await _frames(outbox)
    assert (new.room_id, new.seq) == (OTHER_ROOM, 1)
    assert _tokens_in(new) == tokens
    assert read_chain_context(_envelope(new)["context"]).room == OTHER_ROOM


async def test_records_whose_token_was_erased_are_counted_lost_and_sent_frames_stay(
    outbox: Outbox,
) -> None:
    await _queue(outbox, [record_token(A) for _ in range(2)])
    await outbox.bundle_queued()
    sender, _ = _posting(outbox)
    assert await sender.send_due() == 1
    await _queue(outbox, [record_token(A) for _ in range(2)])
    await outbox.bundle_queued()
    sent, unsent = await _frames(outbox)
    async with outbox.host.transaction() as session:
        erased = await session.scalar(select(OutboxItem).where(OutboxItem.frame_id == unsent.id)
                                      .limit(1))
        assert erased is not None
        erased.token = None  # as an older node erased it at bundling
    async with outbox.host.transaction() as session:
        requeued = await requeue_frames(session, [sent.id, unsent.id], ROOM)
    assert requeued == Requeued(1, 1)
    assert [frame.id for frame in await _frames(outbox)] == [sent.id]
    await outbox.bundle_queued()
    assert [(frame.seq, len(_tokens_in(frame))) for frame in await _frames(outbox)] == \
        [(1, 2), (2, 1)]


async def test_a_replaced_room_hands_its_queue_to_the_new_room_and_resends_go_there(
    outbox: Outbox,
) -> None:
    sender = _RoomsTransport()
    sender_outbox = Outbox(outbox.host, cast(MatrixTransport, sender))
    await _queue(outbox, [record_token(A)])
    await outbox.bundle_queued()
    assert await sender_outbox.send_due() == 1  # seq 1 posted in the old room
    await _queue(outbox, [record_token(A)])
    await outbox.bundle_queued()  # seq 2 sealed, not posted
    waiting = await _queue(outbox, [record_token(A)])  # not sealed yet
    async with outbox.host.transaction() as session:
        moved = await move_room(session, ROOM, OTHER_ROOM)
        assert await replaced_rooms(session) == {ROOM: OTHER_ROOM}
        await note_replaced(session, OTHER_ROOM, "!third:test")
        assert await replaced_rooms(session) == {ROOM: "!third:test", OTHER_ROOM: "!third:test"}
        await note_replaced(session, "!third:test", OTHER_ROOM)  # back, for the rest
        assert successor(await replaced_rooms(session), ROOM) == OTHER_ROOM
        assert await schedule_resends(session, ROOM, "$asked", [(1, 5)], at_ms=1,
                                      min_interval_ms=0) == 1
    assert moved == Requeued(2, 0)
    async with outbox.host.transaction() as session:
        assert (await item_states(session, waiting))[waiting[0]].state == "queued"
    await outbox.bundle_queued()
    assert await sender_outbox.send_due() == 2  # the new room's first frame and the resend
    assert sender.rooms == [ROOM, OTHER_ROOM, OTHER_ROOM]
    frames = await _frames(outbox)
    assert [(f.room_id, f.seq, len(_tokens_in(f))) for f in frames] == \
        [(ROOM, 1, 1), (OTHER_ROOM, 1, 2)]


async def test_a_restored_frame_whose_place_was_taken_is_sealed_again_after_the_chain(
    outbox: Outbox,
) -> None:
    tokens = [record_token(A) for _ in range(2)]
    await _queue(outbox, tokens)
    await outbox.bundle_queued()
    [mine] = await _frames(outbox)  # seq 1, unsent at backup time
    taken = PostedEnvelope(1, "h-by-the-old-account", "", {"envelope": {}}, "$old1")
    async with outbox.host.transaction() as session:
        await hold_rooms(session)
        plan = plan_resume(await local_frames(session, ROOM), [taken])
        assert plan.superseded == [mine.id]
        resumed = await apply_resume(session, ROOM, plan, at_ms=5)
    assert (resumed.adopted, resumed.records_requeued, resumed.records_lost,
            resumed.next_seq) == (1, 2, 0, 2)
    await outbox.bundle_queued()
    adopted, again = await _frames(outbox)
    assert (adopted.seq, adopted.event_id) == (1, "$old1")
    assert again.seq == 2 and _tokens_in(again) == tokens
    assert read_chain_context(_envelope(again)["context"]).prev == "h-by-the-old-account"


async def test_a_replacing_room_asks_from_the_first_gap_of_each_chain(outbox: Outbox) -> None:
    async with outbox.host.transaction() as session:
        session.add_all([Chain(issuer="org-b", room_id=ROOM, top=5, missing="[[3, 4]]"),
                         Chain(issuer="org-c", room_id=ROOM, top=6, missing="[]")])
    async with outbox.host.transaction() as session:
        assert await received_up_to(session, "org-b", ROOM) == 2
        assert await received_up_to(session, "org-c", ROOM) == 6
        assert await received_up_to(session, "org-d", ROOM) == 0


async def test_an_abandoned_room_drops_only_what_was_never_posted_there(outbox: Outbox) -> None:
    """A node that leaves a coalition leaves pair rooms for good (decision 0032): what was
    queued or sealed for them and not posted is dropped and counted; what was posted, and
    other rooms' queues, stay."""
    await _queue(outbox, [record_token(A) for _ in range(2)])
    await outbox.bundle_queued()
    sender, _ = _posting(outbox)
    assert await sender.send_due() == 1
    await _queue(outbox, [record_token(A) for _ in range(2)])
    await outbox.bundle_queued()  # sealed, not posted
    await _queue(outbox, [record_token(A)])  # queued, not sealed
    kept = [record_token(A) for _ in range(2)]
    await _queue(outbox, kept, room=OTHER_ROOM)
    sent, _unsent = await _frames(outbox)
    async with outbox.host.transaction() as session:
        assert await abandon_room(session, ROOM) == 3
    async with outbox.host.transaction() as session:
        assert await abandon_room(session, ROOM) == 0  # nothing left to drop
        left = list(await session.scalars(select(OutboxItem.room_id).order_by(OutboxItem.id)))
    assert [frame.id for frame in await _frames(outbox)] == [sent.id]
    assert left == [ROOM, ROOM, OTHER_ROOM, OTHER_ROOM]  # the posted items and the other room
    await outbox.bundle_queued()
    frames = await _frames(outbox)
    assert [(frame.room_id, frame.seq) for frame in frames] == [(ROOM, 1), (OTHER_ROOM, 1)]
    assert _tokens_in(frames[1]) == kept
