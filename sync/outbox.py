"""The durable outbox (docs/architecture.md §7): nothing queued is lost, nothing is posted twice.

1. :func:`enqueue` runs inside the host's transaction, so a share and its delivery commit
   together. The record (an SD-JWT, i.e. disclosed case content) is stored encrypted with the
   host's at-rest cipher, bound to the row's random ``ref``.
2. :meth:`Outbox.bundle_queued` takes queued items in order, groups them by (room, recipient
   set), packs each group into bundles whose ``org.minga.sealed`` event fits inline (the real
   sealed envelope is measured), seals each bundle once with the room's chain context (seq from
   1, prev = hash of the previous envelope in that room) and, in one transaction, stores the
   frame (content, a random Matrix txn id, seq) and marks its items bundled. Their SD-JWTs
   (encrypted at rest) are erased once the frame has been posted, not before: a frame that
   can no longer be posted (its room replaced, its place in a restored node's chain taken) is
   sealed again from them (:mod:`sync.requeue`). A single record too large for an inline
   event becomes a blob frame, and so does a backlog (:data:`BACKLOG_MIN_RECORDS` or more for
   one room and recipient set).
3. :meth:`Outbox.send_due` uploads pending blobs, then posts each frame with its stored txn id
   (a few at once, oldest first): a retry after a failure, a crash or a restart posts the same
   content under the same txn id, so Synapse never makes a second event (it remembers txn ids
   for 24 hours). A frame is sent only once the homeserver returned an event id, which is
   stored. Frames are kept after sending, for resend requests.
4. Resends (:func:`schedule_resends`, called by the inbox when a receiver asks for seqs of this
   node's chain) re-post a sent frame's envelope as a new event with txn id
   ``<txn>-resend-<resend id>``. The content carries ``"resend": <request event id>`` next to the
   unchanged envelope, so receivers that already hold it know it is an answered request and not a
   replay. A frame of a room that another room replaced is re-posted in the new room.

Failures: an unreachable homeserver (see :func:`sync.retry.is_unreachable`) stops the pass and the
loop waits with capped exponential backoff; a request the homeserver refuses (for example the
node left the room) delays only that frame's room, with its own backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from federation.canonical import canonical_json
from federation.identity import OrgKeys, RecipientKey
from federation.keys import KeyNotTrusted
from federation.sealing import MAX_RECIPIENTS, padded_length, seal
from federation.transport import MatrixTransport, TransportError
from sync.frame import (
    BUNDLE_TYPE,
    MAX_INLINE_CONTENT_BYTES,
    MAX_RECORDS_PER_BUNDLE,
    SEALED_EVENT_TYPE,
    blob_bytes,
    blob_content,
    bundle,
    chain_context,
    envelope_hash,
    fits_inline,
    inline_content,
)
from sync.host import AtRestCipher, SyncHost, Trust
from sync.requeue import QUEUED_FLAG, replaced_rooms, successor
from sync.resume import held_rooms
from sync.retry import DEFAULT_BACKOFF, Backoff, is_unreachable, short_error
from sync.tables import Frame, OutboxItem, Resend, table

log = logging.getLogger("minga.sync.outbox")

ITEM_CONTEXT = "sync_outbox_items"
RESEND_MARK = "resend"
BLOB_CONTENT_TYPE = "application/octet-stream"
_ITEMS_PER_PASS = 2_000
# A backlog of at least this many records for one room and recipient set (a bulk share, a
# catch-up after an outage) goes into media blobs instead of dozens of inline events
# (docs/architecture.md §5's path for bulk transfers): one upload and one event per blob.
BACKLOG_MIN_RECORDS = 200
BLOB_MAX_RECORDS = 500
BLOB_MAX_TOKEN_BYTES = 8 * 1024 * 1024  # sealed and encoded, well under MAX_BLOB_BYTES
_FRAMES_PER_PASS = 100
_TAG_LENGTH = 16  # ChaCha20-Poly1305
_QUEUED = QUEUED_FLAG
_QUEUED_ITEMS = "minga_sync_queued_items"  # what this transaction queued, by item id
# Built once: an alert is queued, sealed and stored with these, in its sender's transaction.
_ADD_ITEMS = insert(table(OutboxItem)).returning(OutboxItem.ref, OutboxItem.id)
_CHAIN_HEAD = (select(Frame.seq, Frame.envelope_hash).where(Frame.room_id == bindparam("room_id"))
               .order_by(Frame.seq.desc()).limit(1))
_ADD_FRAME = insert(table(Frame)).returning(Frame.id)
_ITEMS_BUNDLED = (update(table(OutboxItem))
                  .where(OutboxItem.id.in_(bindparam("item_ids", expanding=True)))
                  .values(frame_id=bindparam("bundled_in"), last_error=None))
# Posted: the frame's records will not be sealed again, their SD-JWTs go.
_ITEMS_POSTED = (update(table(OutboxItem)).where(OutboxItem.frame_id == bindparam("posted"))
                 .values(token=None))


class OutboxError(ValueError):
    """A record cannot be queued as asked; the message names the problem."""


class HomeserverUnavailable(Exception):
    """The homeserver could not take a request now; the loop backs off and tries again."""


def now_ms(clock: Callable[[], float]) -> int:
    return int(clock() * 1000)


# --- queueing ---------------------------------------------------------------------------------


def _recipient_list(recipient_org_ids: Sequence[str]) -> list[str]:
    if isinstance(recipient_org_ids, str):
        raise OutboxError("recipients must be a list of org ids, not one string")
    recipients = sorted(set(recipient_org_ids))
    if not recipients or len(recipients) > MAX_RECIPIENTS:
        raise OutboxError(f"a record goes to 1 to {MAX_RECIPIENTS} recipient organisations")
    if not all(isinstance(org, str) and org for org in recipients):
        raise OutboxError("recipients must be non-empty org ids")
    return recipients


async def enqueue(
    session: AsyncSession,
    cipher: AtRestCipher,
    room_id: str,
    recipient_org_ids: Sequence[str],
    token: str,
    *,
    queued_at_ms: int,
) -> int:
    """Queue ``token`` (a Minga SD-JWT) for ``recipient_org_ids`` in ``room_id``; returns the
    item id. Call inside the transaction that stores what is being shared."""
    [item_id] = await enqueue_many(session, cipher, room_id, recipient_org_ids, [token],
                                   queued_at_ms=queued_at_ms)
    return item_id


async def enqueue_many(
    session: AsyncSession,
    cipher: AtRestCipher,
    room_id: str,
    recipient_org_ids: Sequence[str],
    tokens: Sequence[str],
    *,
    queued_at_ms: int,
) -> list[int]:
    """:func:`enqueue` for several records with the same room and recipients (one flush);
    returns their item ids in order. Records for a room another room replaced go to that one
    (say, an answer to an alert that arrived in the replaced room)."""
    if not isinstance(room_id, str) or not room_id.startswith("!"):
        raise OutboxError("room_id must be a Matrix room id")
    room_id = successor(await replaced_rooms(session), room_id)
    if isinstance(tokens, str) or not all(isinstance(t, str) and t for t in tokens):
        raise OutboxError("each token must be a non-empty SD-JWT string")
    recipients = canonical_json(_recipient_list(recipient_org_ids)).decode()
    refs = [secrets.token_hex(16) for _ in tokens]
    if not refs:
        return []
    stored = [cipher.encrypt_at_rest(token.encode(), (ITEM_CONTEXT, ref))
              for ref, token in zip(refs, tokens, strict=True)]
    rows = [{"ref": ref, "room_id": room_id, "recipients": recipients, "token": token,
             "queued_at": queued_at_ms} for ref, token in zip(refs, stored, strict=True)]
    # Ids are matched back by ref: asking the database to return them in parameter order would
    # make SQLite insert one row per statement.
    inserted = await session.execute(_ADD_ITEMS, rows)
    ids: dict[str, int] = {ref: item_id for ref, item_id in inserted}
    session.info[_QUEUED] = True
    queued = session.info.setdefault(_QUEUED_ITEMS, {})
    recipient_tuple = tuple(json.loads(recipients))
    for ref, token in zip(refs, stored, strict=True):
        queued[ids[ref]] = _Queued(ids[ref], ref, room_id, recipient_tuple, token)
    return [ids[ref] for ref in refs]


def queued_in(session: AsyncSession) -> bool:
    """Whether anything was queued in this session's transaction (so the outbox has work once
    it commits)."""
    return bool(session.info.get(_QUEUED))


@dataclass(frozen=True)
class ItemState:
    """Where a queued record is: ``queued``, ``bundled`` (sealed, not yet posted) or ``sent``."""

    item_id: int
    state: str
    event_id: str | None
    seq: int | None
    last_error: str | None


async def item_states(session: AsyncSession, item_ids: Sequence[int]) -> dict[int, ItemState]:
    rows = await session.execute(
        select(OutboxItem.id, OutboxItem.last_error, Frame.event_id, Frame.seq, Frame.id)
        .outerjoin(Frame, OutboxItem.frame_id == Frame.id)
        .where(OutboxItem.id.in_(list(item_ids)))
    )
    states: dict[int, ItemState] = {}
    for item_id, error, event_id, seq, frame_id in rows:
        state = "queued" if frame_id is None else ("sent" if event_id else "bundled")
        states[item_id] = ItemState(item_id, state, event_id, seq, error)
    return states


# --- packing ----------------------------------------------------------------------------------


def _b64_length(size: int) -> int:
    return (4 * size + 2) // 3


def _bundle_length(token_lengths: Sequence[int]) -> int:
    """Length of ``bundle(tokens)`` from the canonical JSON length of each token string."""
    frame = len(canonical_json({"records": [], "type": BUNDLE_TYPE}))
    return frame + sum(token_lengths) + max(len(token_lengths) - 1, 0)


@dataclass(frozen=True)
class _Sealer:
    keys: OrgKeys
    recipients: tuple[RecipientKey, ...]
    created_at: int

    def seal(self, tokens: Sequence[str], context: dict[str, str | int]) -> dict[str, Any]:
        return seal(
            bundle(tokens), self.keys, self.recipients, self.created_at, context=context
        ).to_wire()

    def next_frame(
        self, tokens: Sequence[str], context: dict[str, str | int]
    ) -> tuple[int, dict[str, Any]]:
        """How many of ``tokens`` (from the first) go in the next frame, and its envelope: a
        backlog goes into one blob, anything less into inline bundles."""
        if len(tokens) < BACKLOG_MIN_RECORDS:
            return self.pack(tokens, context)
        count, size = 0, 0
        for token in tokens[:BLOB_MAX_RECORDS]:
            size += len(token)
            if count and size > BLOB_MAX_TOKEN_BYTES:
                break
            count += 1
        return count, self.seal(tokens[:count], context)

    def pack(
        self, tokens: Sequence[str], context: dict[str, str | int]
    ) -> tuple[int, dict[str, Any]]:
        """How many of ``tokens`` (from the first) go in the next inline frame, and its envelope.

        The count comes from the exact size of a probe envelope with the same recipients and
        context; the real envelope is then measured, and shrunk if it does not fit. A first token
        too large for any inline event is returned alone (it becomes a blob).
        """
        if len(tokens) == 1:  # one frame whatever its size (a large one is posted as a blob)
            return 1, self.seal(tokens, context)
        probe = self.seal([""], context)
        overhead = len(canonical_json(inline_content(probe))) - len(str(probe["ciphertext"]))
        lengths: list[int] = []
        for token in tokens[:MAX_RECORDS_PER_BUNDLE]:
            candidate = [*lengths, len(canonical_json(token))]
            padded = padded_length(_bundle_length(candidate) + 1) + _TAG_LENGTH
            if overhead + _b64_length(padded) > MAX_INLINE_CONTENT_BYTES:
                break
            lengths = candidate
        count = max(len(lengths), 1)
        while True:
            envelope = self.seal(tokens[:count], context)
            if count == 1 or fits_inline(envelope):
                return count, envelope
            count -= 1


# --- the outbox -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Queued:
    id: int
    ref: str
    room_id: str
    recipients: tuple[str, ...]
    token: bytes


@dataclass(frozen=True)
class Unsent:
    """A frame or a resend to post, read out of the database."""

    table: type[Frame] | type[Resend]
    row_id: int
    room_id: str
    txn_id: str
    content: dict[str, Any] | None
    blob: bytes | None
    frame_id: int
    next_attempt_at: int
    attempts: int


@dataclass(frozen=True)
class OutboxCounts:
    queued_items: int
    unsent_frames: int
    sent_frames: int
    pending_resends: int
    last_error: str | None


async def outbox_counts(session: AsyncSession) -> OutboxCounts:
    async def count(query: Any) -> int:
        return int(await session.scalar(query) or 0)

    queued = await count(select(func.count()).where(OutboxItem.frame_id.is_(None)))
    unsent = await count(select(func.count()).where(Frame.event_id.is_(None)))
    sent = await count(select(func.count()).where(Frame.event_id.is_not(None)))
    resends = await count(select(func.count()).where(Resend.event_id.is_(None)))
    error = await session.scalar(
        select(Frame.last_error).where(Frame.event_id.is_(None), Frame.last_error.is_not(None))
        .order_by(Frame.id).limit(1)
    )
    return OutboxCounts(queued, unsent, sent, resends, error)


class Outbox:
    """Bundles, seals and posts what was queued; answers resend requests."""

    def __init__(
        self,
        host: SyncHost,
        transport: MatrixTransport,
        *,
        backoff: Backoff = DEFAULT_BACKOFF,
        clock: Callable[[], float] = time.time,
        idle_seconds: float = 1.0,
        send_window: int = 8,
    ) -> None:
        self.host = host
        self.transport = transport
        self.backoff = backoff
        self.clock = clock
        self.idle_seconds = idle_seconds
        # Posts in flight at once: Synapse persists concurrent events of a room together, so
        # this multiplies throughput; receivers accept a chain's frames in any order.
        self.send_window = max(1, send_window)
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        # One upload at a time: a blob is large, so concurrent uploads would only split the
        # bandwidth; one after the other, the receiver can start on the first meanwhile.
        self._uploading = asyncio.Lock()
        self._in_flight: set[str] = set()  # txn ids being posted now
        self._handed: set[asyncio.Task[None]] = set()

    async def enqueue(
        self, session: AsyncSession, room_id: str, recipient_org_ids: Sequence[str], token: str
    ) -> int:
        """:func:`enqueue` with the host's cipher; call :meth:`wake` after the commit."""
        return await enqueue(session, self.host.cipher, room_id, recipient_org_ids, token,
                             queued_at_ms=now_ms(self.clock))

    def wake(self) -> None:
        """Something was queued or a resend was asked for: do not wait for the next poll."""
        self._wake.set()

    # ----- loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Bundle and send until cancelled; never stops on an error."""
        try:
            await self._run()
        finally:
            for task in list(self._handed):
                task.cancel()
            await asyncio.gather(*self._handed, return_exceptions=True)

    async def _run(self) -> None:
        failures = 0
        while True:
            self._wake.clear()
            try:
                made = await self.bundle_queued()
                sent = await self.send_due()
            except Exception as error:  # the loop must outlive any one failure
                failures += 1
                self.last_error = str(error) if isinstance(
                    error, HomeserverUnavailable) else short_error(error)
                delay = self.backoff.delay(failures)
                if isinstance(error, HomeserverUnavailable):
                    log.warning("homeserver unavailable (%s); retrying in %.1f s",
                                self.last_error, delay)
                else:
                    log.error("outbox pass failed (%s); retrying in %.1f s",
                              type(error).__name__, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            if made or sent:
                continue
            # No lingering after a wake: what is queued while a pass posts goes together in the
            # next one, so bursts still fill bundles and an alert leaves at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.idle_seconds)

    # ----- bundling -----------------------------------------------------------------------

    async def bundle_queued(self) -> int:
        """Seal queued items into frames (one transaction); returns the number of frames made."""
        async with self.host.transaction() as session:
            return len(await self.bundle_in(session))

    async def bundle_in(
        self, session: AsyncSession, item_ids: Sequence[int] | None = None
    ) -> list[Unsent]:
        """Seal queued items (all, or only ``item_ids``) into frames inside the caller's open
        transaction; the frames, for :meth:`post_now` once it has committed."""
        held = await held_rooms(session)  # a restored node's rooms, until their chains resume
        queued = [q for q in await self._queued(session, item_ids, held)
                  if q.room_id not in held]
        if not queued:
            return []
        queued_here = session.info.get(_QUEUED_ITEMS, {})
        for item in queued:  # sealed now: never again from memory
            queued_here.pop(item.id, None)
        trust = await self.host.trust(session)
        groups: dict[tuple[str, tuple[str, ...]], list[_Queued]] = {}
        for item in queued:
            groups.setdefault((item.room_id, item.recipients), []).append(item)
        frames: list[Unsent] = []
        for (room_id, recipients), items in groups.items():
            frames += await self._bundle_group(session, trust, room_id, recipients, items)
        return frames

    async def _queued(
        self, session: AsyncSession, item_ids: Sequence[int] | None = None,
        held: set[str] | None = None,
    ) -> list[_Queued]:
        queued_here: dict[int, _Queued] = session.info.get(_QUEUED_ITEMS, {})
        if item_ids is not None and all(i in queued_here for i in item_ids):
            return [queued_here[i] for i in sorted(item_ids)]  # queued in this transaction
        query = select(OutboxItem).where(OutboxItem.frame_id.is_(None))
        if held:
            query = query.where(OutboxItem.room_id.not_in(sorted(held)))
        if item_ids is not None:
            query = query.where(OutboxItem.id.in_(list(item_ids)))
        rows = await session.scalars(
            # Items stuck on an untrusted recipient must not hold back the ones behind them.
            query.order_by(OutboxItem.last_error.is_not(None), OutboxItem.id)
            .limit(_ITEMS_PER_PASS)
        )
        return [
            _Queued(row.id, row.ref, row.room_id, tuple(json.loads(row.recipients)),
                    row.token or b"")
            for row in rows
        ]

    async def _bundle_group(
        self,
        session: AsyncSession,
        trust: Trust,
        room_id: str,
        recipients: tuple[str, ...],
        items: list[_Queued],
    ) -> list[Unsent]:
        try:
            keys = tuple(trust.recipient_key(org_id) for org_id in recipients)
        except KeyNotTrusted:
            await self._note_item_error(session, items, "a recipient is not a trusted member")
            return []
        sealer = _Sealer(self.host.keys, keys, int(self.clock()))
        tokens = [
            self.host.cipher.decrypt_at_rest(item.token, (ITEM_CONTEXT, item.ref)).decode()
            for item in items
        ]
        seq, prev = await _chain_head(session, room_id)
        frames: list[Unsent] = []
        while tokens:
            count, envelope = sealer.next_frame(tokens, chain_context(room_id, seq + 1, prev))
            seq, prev = seq + 1, envelope_hash(envelope)
            frame = await self._store_frame(session, room_id, seq, prev, envelope, count)
            await session.execute(_ITEMS_BUNDLED, {
                "item_ids": [item.id for item in items[:count]], "bundled_in": frame.frame_id})
            tokens, items = tokens[count:], items[count:]
            frames.append(frame)
        return frames

    async def _store_frame(
        self,
        session: AsyncSession,
        room_id: str,
        seq: int,
        this_hash: str,
        envelope: dict[str, Any],
        count: int,
    ) -> Unsent:
        inline = fits_inline(envelope)
        txn_id = f"minga.{secrets.token_hex(12)}"
        content = canonical_json(inline_content(envelope)).decode() if inline else None
        blob = None if inline else blob_bytes(envelope)
        frame_id = await session.scalar(_ADD_FRAME, {
            "room_id": room_id, "seq": seq, "envelope_hash": this_hash, "txn_id": txn_id,
            "content": content, "blob": blob, "record_count": count,
            "created_at": now_ms(self.clock), "attempts": 0, "next_attempt_at": 0})
        assert frame_id is not None
        # The content as stored (what a retry by the loop would post), not read back.
        return Unsent(Frame, frame_id, room_id, txn_id,
                      json.loads(content) if content is not None else None, blob, frame_id,
                      0, 0)

    @staticmethod
    async def _note_item_error(
        session: AsyncSession, items: Sequence[_Queued], error: str
    ) -> None:
        await session.execute(
            update(OutboxItem).where(OutboxItem.id.in_([item.id for item in items]))
            .values(last_error=error)
        )

    # ----- sending ------------------------------------------------------------------------

    def post_now(self, frames: Sequence[Unsent]) -> None:
        """Post frames that :meth:`bundle_in` sealed in a transaction that has committed, at
        once: an alert does not wait for the loop's next pass. What fails is left to the loop."""
        for unsent in frames:
            task = asyncio.create_task(self._post_handed(unsent))
            self._handed.add(task)
            task.add_done_callback(self._handed.discard)

    async def _post_handed(self, unsent: Unsent) -> None:
        try:
            if await self._post(unsent):
                return
        except HomeserverUnavailable:
            pass
        except Exception as error:  # the loop retries the frame; nothing is lost
            log.error("posting a frame at once failed (%s); the loop retries it",
                      type(error).__name__)
        self.wake()

    async def send_due(self) -> int:
        """Post unsent frames, then pending resends, ``send_window`` at a time, in order;
        returns how many events were posted.

        Raises :class:`HomeserverUnavailable` when the homeserver cannot be reached.
        """
        async with self.host.transaction() as session:
            frames = await _unsent_frames(session)
            resends = await _unsent_resends(session)
        pending = [*frames, *resends]
        posted = 0
        blocked: set[str] = set()  # rooms whose next frame must wait: later ones wait too
        for start in range(0, len(pending), self.send_window):
            window = []
            for unsent in pending[start:start + self.send_window]:
                if unsent.room_id not in blocked and unsent.next_attempt_at > now_ms(self.clock):
                    blocked.add(unsent.room_id)
                if unsent.room_id not in blocked and unsent.txn_id not in self._in_flight:
                    window.append(unsent)
            results = await asyncio.gather(
                *(self._post(unsent) for unsent in window), return_exceptions=True
            )
            unavailable: HomeserverUnavailable | None = None
            for unsent, result in zip(window, results, strict=True):
                if isinstance(result, HomeserverUnavailable):
                    unavailable = result
                elif isinstance(result, BaseException):
                    raise result
                elif result:
                    posted += 1
                else:
                    blocked.add(unsent.room_id)
            if unavailable is not None:
                raise unavailable
        return posted

    async def _post(self, unsent: Unsent) -> bool:
        if unsent.txn_id in self._in_flight:
            return True  # handed to post_now meanwhile: posted by that task
        self._in_flight.add(unsent.txn_id)
        try:
            return await self._post_once(unsent)
        finally:
            self._in_flight.discard(unsent.txn_id)

    async def _post_once(self, unsent: Unsent) -> bool:
        try:
            content = unsent.content
            if content is None:
                async with self._uploading:
                    content = await self._upload(unsent)
            event_id = await self.transport.send(
                unsent.room_id, SEALED_EVENT_TYPE, content, unsent.txn_id
            )
        except Exception as error:
            if not is_unreachable(error) and not _is_refusal(error):
                raise
            unreachable = is_unreachable(error)
            # While the homeserver is away the loop's own backoff applies, not the frame's.
            await self._record_failure(unsent, error, delay=not unreachable)
            if unreachable:
                raise HomeserverUnavailable(short_error(error)) from error
            log.warning("homeserver refused a frame (%s); will retry", short_error(error))
            return False
        async with self.host.transaction() as session:
            await session.execute(
                update(unsent.table).where(unsent.table.id == unsent.row_id)
                .values(event_id=event_id, sent_at=now_ms(self.clock), last_error=None)
            )
            if unsent.table is Frame:
                await session.execute(_ITEMS_POSTED, {"posted": unsent.row_id})
        return True

    async def _upload(self, unsent: Unsent) -> dict[str, Any]:
        assert unsent.blob is not None
        url = await self.transport.upload(unsent.blob, BLOB_CONTENT_TYPE)
        content = blob_content(url, unsent.blob)
        async with self.host.transaction() as session:
            await session.execute(
                update(Frame).where(Frame.id == unsent.frame_id)
                .values(content=canonical_json(content).decode(), blob=None)
            )
        return content

    async def _record_failure(
        self, unsent: Unsent, error: BaseException, *, delay: bool
    ) -> None:
        self.last_error = short_error(error)
        attempts = unsent.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_error": self.last_error}
        if delay:
            values["next_attempt_at"] = (
                now_ms(self.clock) + int(self.backoff.delay(attempts) * 1000)
            )
        async with self.host.transaction() as session:
            await session.execute(
                update(unsent.table).where(unsent.table.id == unsent.row_id).values(**values)
            )


def _is_refusal(error: BaseException) -> bool:
    """The homeserver answered, and said no to this request (not "later")."""
    return isinstance(error, TransportError) and not is_unreachable(error)


async def _chain_head(session: AsyncSession, room_id: str) -> tuple[int, str]:
    """This node's last seq and envelope hash in ``room_id`` (0 and "" before the first)."""
    row = (await session.execute(_CHAIN_HEAD, {"room_id": room_id})).first()
    return (0, "") if row is None else (int(row[0]), str(row[1]))


async def _unsent_frames(session: AsyncSession) -> list[Unsent]:
    query = select(Frame).where(Frame.event_id.is_(None))
    held = await held_rooms(session)
    if held:
        query = query.where(Frame.room_id.not_in(sorted(held)))
    rows = await session.scalars(query.order_by(Frame.id).limit(_FRAMES_PER_PASS))
    return [_unsent_frame(row) for row in rows]


def _unsent_frame(row: Frame) -> Unsent:
    return Unsent(Frame, row.id, row.room_id, row.txn_id,
                   json.loads(row.content) if row.content is not None else None, row.blob,
                   row.id, row.next_attempt_at, row.attempts)


async def _unsent_resends(session: AsyncSession) -> list[Unsent]:
    rows = list(await session.execute(
        select(Resend, Frame).join(Frame, Resend.frame_id == Frame.id)
        .where(Resend.event_id.is_(None), Frame.content.is_not(None))
        .order_by(Resend.id).limit(_FRAMES_PER_PASS)
    ))
    unsent = []
    replaced = await replaced_rooms(session) if rows else {}
    for resend, frame in rows:
        content = {**json.loads(frame.content or "{}"), RESEND_MARK: resend.request_event_id}
        unsent.append(
            Unsent(Resend, resend.id, successor(replaced, frame.room_id),
                   f"{frame.txn_id}-resend-{resend.id}",
                   content, None, frame.id, resend.next_attempt_at, resend.attempts)
        )
    return unsent


async def schedule_resends(
    session: AsyncSession,
    room_id: str,
    request_event_id: str,
    ranges: Sequence[tuple[int, int]],
    *,
    at_ms: int,
    min_interval_ms: int,
) -> int:
    """Queue re-posts of this node's sent frames in ``room_id`` with seqs in ``ranges``.

    A frame already waiting for a resend, or resent less than ``min_interval_ms`` ago, is not
    queued again (several members may ask for the same gap). Returns how many were queued.
    """
    queued = 0
    for low, high in ranges:
        frames = await session.scalars(
            select(Frame.id).where(
                Frame.room_id == room_id, Frame.seq >= low, Frame.seq <= high,
                Frame.event_id.is_not(None),
            )
        )
        for frame_id in list(frames):
            recent = await session.scalar(
                select(func.count()).where(
                    Resend.frame_id == frame_id,
                    Resend.event_id.is_(None) | (Resend.sent_at >= at_ms - min_interval_ms),
                )
            )
            if recent:
                continue
            session.add(Resend(frame_id=frame_id, request_event_id=request_event_id,
                               created_at=at_ms, attempts=0, next_attempt_at=0))
            queued += 1
    if queued:
        session.info[_QUEUED] = True
    return queued


async def resend_after(session: AsyncSession, old_room: str, after: int, mark: str,
                       *, at_ms: int) -> int:
    """Queue re-posts of every frame this node posted in ``old_room`` after seq ``after``: the
    old room was replaced (its chain is closed, so this is all of it) and the re-posts go to
    the new room (:mod:`sync.requeue`). ``mark`` stands where a request's event id would."""
    return await schedule_resends(session, old_room, mark, [(after + 1, 2**31 - 1)],
                                  at_ms=at_ms, min_interval_ms=0)


async def abandon_room(session: AsyncSession, room_id: str) -> int:
    """This node leaves ``room_id`` for good (it left the coalition the room served): what
    was queued or sealed for it and not yet posted will never be posted. Removes it and
    returns how many records that was, for the caller's audit entry."""
    unsent = list(await session.scalars(select(Frame.id).where(
        Frame.room_id == room_id, Frame.event_id.is_(None))))
    records = int(await session.scalar(select(func.count()).select_from(OutboxItem).where(
        OutboxItem.room_id == room_id,
        OutboxItem.frame_id.is_(None) | OutboxItem.frame_id.in_(unsent))) or 0)
    await session.execute(delete(OutboxItem).where(
        OutboxItem.room_id == room_id,
        OutboxItem.frame_id.is_(None) | OutboxItem.frame_id.in_(unsent)))
    if unsent:
        await session.execute(delete(Frame).where(Frame.id.in_(unsent)))
    return records
