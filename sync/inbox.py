"""The verifying inbox (docs/architecture.md §5, §7): every envelope checked, every failure kept,
no gap left.

One sync batch is handled in one host transaction: its events are claimed as processed in it
and, when due, the batch's ``next_batch`` token is stored in it, so a crash at any point makes
the next start handle the batch again; already processed event ids are skipped and the host's
``deliver`` is idempotent on (issuer, record id, version). The token is written at most every
:data:`CURSOR_STORE_INTERVAL_MS` (a batch with nothing for the inbox costs no transaction at
all): starting again from an older token only brings back events that are skipped as
processed. A limited timeline is completed first with ``/messages``, paging back to the newest
event already handled in that room.

For each ``org.minga.sealed`` event, in order (the first failure quarantines it):

1. content: inline envelope, or a blob fetched from the media repository and checked against
   its hash (``malformed``, ``tampered``, ``blob-unavailable``);
2. the envelope's shape and sender signature (:func:`federation.sealing.verify_envelope`);
3. the event was posted by the issuer's node account (``wrong-sender``); this organisation's
   own envelopes are left alone, whichever account posted them (one it had before a restore
   elsewhere, :mod:`sync.resume`);
4. the signed chain context names this room, or a room this one replaced (``wrong-room``;
   :mod:`sync.requeue`), and fits the issuer's chain there:
   the same envelope again is ``replayed`` unless it is an answered resend (marked ``"resend"``
   in the content); another envelope at a known seq or a broken prev link is
   ``chain-conflict``. Otherwise the link is recorded and the gaps below it updated;
5. not addressed to this node: fine in shared rooms, ``not-a-recipient`` where the host expects
   every envelope to be addressed to it (pair rooms);
6. open, unbundle, and verify each record: SD-JWT checks, issuer = envelope sender
   (``issuer-mismatch``), audience if present = this org or a list holding it
   (``audience-mismatch``). The valid records go to ``host.deliver`` in one call; a bad one
   is quarantined alone.

Gaps in a chain that persist for ``resend_grace_seconds`` are asked for with an
``org.minga.resend`` event (ids and numbers only), at most every ``resend_interval_seconds``
per chain. A request for this node's own chain is turned into outbox resends. A request (or
a gap) for the chain of a room another one replaced goes through the new room, naming the old;
events still arriving in a replaced room are claimed and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from federation.disclosure import addressed_to, verify
from federation.sdjwt import SdJwtError
from federation.sealing import Envelope, SealingError, open_verified, verify_envelope
from federation.transport import (
    SYNC_TIMELINE_LIMIT,
    MatrixTransport,
    RoomUpdate,
    TimelineEvent,
    TransportError,
)
from sync.frame import (
    RESEND_EVENT_TYPE,
    SEALED_EVENT_TYPE,
    BlobRef,
    ChainLink,
    ChainState,
    FrameError,
    Gaps,
    envelope_from_blob,
    envelope_hash,
    parse_content,
    read_chain_context,
    read_resend_request,
    resend_request_content,
    resend_request_room,
    unbundle,
)
from sync.host import (
    Quarantined,
    SyncHost,
    Trust,
    VerifiedRecord,
    committed_actions,
    run_committed,
)
from sync.outbox import RESEND_MARK, now_ms, queued_in, schedule_resends
from sync.quarantine import quarantine
from sync.requeue import replaced_rooms, successor
from sync.retry import DEFAULT_BACKOFF, Backoff, is_unreachable, short_error
from sync.tables import Chain, ChainLinkRow, Cursor, PerDialect, ProcessedEvent, RoomMark, table

log = logging.getLogger("minga.sync.inbox")

NEXT_BATCH = "next_batch"
# The sync token is written down at most this often: starting from an older one only brings
# back events that are then skipped as processed. A batch with nothing for the inbox (a node's
# own events, notices, room state) then needs no transaction at all.
CURSOR_STORE_INTERVAL_MS = 60_000
HANDLED_TYPES = frozenset({SEALED_EVENT_TYPE, RESEND_EVENT_TYPE})
_PAGE = 100
# Built once: every batch claims its events; every envelope joins its issuer's chain.
_CLAIM = PerDialect(lambda insert: insert(table(ProcessedEvent)).on_conflict_do_nothing()
                    .returning(ProcessedEvent.event_id))
_CHAIN_NEIGHBOURS = select(ChainLinkRow.seq, ChainLinkRow.hash, ChainLinkRow.prev).where(
    ChainLinkRow.issuer == bindparam("issuer"), ChainLinkRow.room_id == bindparam("room_id"),
    ChainLinkRow.seq.between(bindparam("low"), bindparam("high")))
_ADD_LINK = insert(table(ChainLinkRow))
# The usual case, the next seq of a chain without gaps; not evaluated against loaded Chain
# objects (the slow path re-reads its row).
_CHAIN_MOVED_ON = (
    update(table(Chain))
    .where(Chain.issuer == bindparam("chain_issuer"), Chain.room_id == bindparam("chain_room"),
           Chain.top == bindparam("previous"), Chain.missing == "[]")
    .values(top=bindparam("new_top")))  # parameters named as columns would be SET


class Rejected(Exception):
    """An event failed a check; ``reason`` is the quarantine code, the message a short detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass
class BatchOutcome:
    """What one sync batch brought: events handled, records delivered, events quarantined."""

    events: int = 0
    delivered: int = 0
    quarantined: int = 0
    entries: list[Quarantined] = field(default_factory=list)


Blob = bytes | Rejected


class Inbox:
    """Follows the homeserver, verifies what arrives, delivers records, asks for gaps."""

    def __init__(
        self,
        host: SyncHost,
        transport: MatrixTransport,
        *,
        timeline_limit: int = SYNC_TIMELINE_LIMIT,
        long_poll_ms: int = 5_000,
        backoff: Backoff = DEFAULT_BACKOFF,
        clock: Callable[[], float] = time.time,
        resend_grace_seconds: float = 2.0,
        resend_interval_seconds: float = 30.0,
        resend_min_interval_seconds: float = 10.0,
        on_outbox_work: Callable[[], None] | None = None,
        max_gap_fill_events: int = 50_000,
        max_attempts: int = 5,
    ) -> None:
        self.host = host
        self.transport = transport
        self.timeline_limit = timeline_limit
        self.long_poll_ms = long_poll_ms
        self.backoff = backoff
        self.clock = clock
        self.resend_grace_ms = int(resend_grace_seconds * 1000)
        self.resend_interval_ms = int(resend_interval_seconds * 1000)
        self.resend_min_interval_ms = int(resend_min_interval_seconds * 1000)
        self.on_outbox_work = on_outbox_work
        self.max_gap_fill_events = max_gap_fill_events
        self.max_attempts = max_attempts
        self.last_error: str | None = None
        self.last_sync_ms: int | None = None
        self._failures: dict[str, int] = {}
        self._cursor: str | None = None
        self._cursor_read = False
        self._cursor_stored_ms = 0
        self._gaps_possible = True  # until a look at the chains finds none

    # ----- loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Sync, verify, deliver and ask for gaps until cancelled; never stops on an error."""
        failures = 0
        while True:
            try:
                await self.sync_once()
                await self.request_missing()
            except Exception as error:  # the loop must outlive any one failure
                failures += 1
                self.last_error = short_error(error)
                delay = self.backoff.delay(failures)
                if is_unreachable(error):
                    log.warning("homeserver unavailable (%s); retrying in %.1f s",
                                self.last_error, delay)
                else:
                    log.error("inbox batch failed (%s); retrying in %.1f s",
                              type(error).__name__, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0

    async def sync_once(self, *, timeout_ms: int | None = None) -> BatchOutcome:
        """Fetch one sync batch and handle it completely, or not at all."""
        since = await self._since()
        if timeout_ms is None:
            timeout_ms = 0 if since is None else self.long_poll_ms
        batch = await self.transport.sync(
            since, timeout_ms=timeout_ms, timeline_limit=self.timeline_limit
        )
        await self.host.on_sync(batch)
        timelines = {
            room_id: await self._timeline(update) for room_id, update in batch.rooms.items()
        }
        candidates = list({event.event_id: event for events in timelines.values()
                           for event in events if self._is_for_inbox(event)}.values())
        outcome = BatchOutcome()
        if not candidates and since is not None and not self._cursor_due():
            self._cursor = batch.next_batch  # a quiet batch: nothing to record yet
            self._synced()
            return outcome
        blobs = await self._fetch_blobs(await self._blob_events(candidates))
        async with self.host.transaction() as session:
            # Claimed in this transaction: a rolled-back batch leaves its events unprocessed.
            claimed = await _claim(session, candidates, now_ms(self.clock))
            fresh = [event for event in candidates if event.event_id in claimed]
            outcome.events = len(fresh)
            trust = await self.host.trust(session) if fresh else None
            # A replaced room is no longer read: its chains go on in the room that replaced it
            # (sync.requeue), where what is missing is re-posted as answered resends.
            replaced = await replaced_rooms(session) if fresh else {}
            for event in fresh:
                assert trust is not None
                if event.room_id in replaced:
                    continue
                await self._handle(session, trust, event, blobs.get(event.event_id), outcome)
            if outcome.entries:
                await self.host.note_quarantined(session, outcome.entries)
            # Gap filling stops at processed events as at marks: a room whose newest event was
            # just processed needs no mark.
            handled = {event.event_id for event in fresh}
            await self._mark_rooms(session, {
                room_id: events[-1].event_id for room_id, events in timelines.items()
                if events and events[-1].event_id not in handled})
            store_cursor = since is None or self._cursor_due()
            if store_cursor:
                await self._store_since(session, since, batch.next_batch)
            outbox_work = queued_in(session)
            follow_ups = committed_actions(session)
        self._cursor = batch.next_batch
        if store_cursor:
            self._cursor_stored_ms = now_ms(self.clock)
        self._synced()
        if outbox_work and self.on_outbox_work is not None:
            self.on_outbox_work()  # an answer (a resend) goes out now
        run_committed(follow_ups)
        return outcome

    def _synced(self) -> None:
        self.last_sync_ms = now_ms(self.clock)
        self.last_error = None

    def _cursor_due(self) -> bool:
        return now_ms(self.clock) - self._cursor_stored_ms >= CURSOR_STORE_INTERVAL_MS

    def _is_for_inbox(self, event: TimelineEvent) -> bool:
        return (event.type in HANDLED_TYPES and event.state_key is None
                and event.sender != self.transport.user_id and bool(event.event_id))

    @staticmethod
    async def _mark_rooms(session: AsyncSession, newest: dict[str, str]) -> None:
        """Note the newest event handled in each room (one statement for a room marked before)."""
        for room_id, event_id in newest.items():
            moved = await session.execute(
                update(RoomMark).where(RoomMark.room_id == room_id)
                .values(last_event_id=event_id)
            )
            if moved.rowcount == 0:  # type: ignore[attr-defined]
                session.add(RoomMark(room_id=room_id, last_event_id=event_id))

    @staticmethod
    async def _store_since(session: AsyncSession, since: str | None, next_batch: str) -> None:
        if since is None:
            await session.merge(Cursor(name=NEXT_BATCH, value=next_batch))
        else:
            await session.execute(update(Cursor).where(Cursor.name == NEXT_BATCH)
                                  .values(value=next_batch))

    async def _since(self) -> str | None:
        """The sync token to continue from: read once, then kept (this loop alone moves it)."""
        if not self._cursor_read:
            async with self.host.transaction() as session:
                cursor = await session.get(Cursor, NEXT_BATCH)
                self._cursor = None if cursor is None else cursor.value
            self._cursor_read = True
        return self._cursor

    async def _blob_events(self, events: list[TimelineEvent]) -> list[TimelineEvent]:
        """The events among ``events`` that refer to a blob and are not handled yet (a blob
        is downloaded before the batch's transaction, never twice)."""
        with_blob = [event for event in events
                     if event.type == SEALED_EVENT_TYPE and "blob" in event.content]
        if not with_blob:
            return []
        processed = await self._processed_ids([event.event_id for event in with_blob])
        return [event for event in with_blob if event.event_id not in processed]

    async def _processed_ids(self, event_ids: list[str]) -> set[str]:
        async with self.host.transaction() as session:
            return await _processed_ids(session, event_ids)

    # ----- limited timelines --------------------------------------------------------------

    async def _timeline(self, update: RoomUpdate) -> list[TimelineEvent]:
        if not (update.limited and update.prev_batch):
            return list(update.events)
        return await self._fill_gap(update.room_id, update.prev_batch) + list(update.events)

    async def _fill_gap(self, room_id: str, token: str) -> list[TimelineEvent]:
        """The events before ``token`` back to the newest one already handled, oldest first."""
        async with self.host.transaction() as session:
            mark = await session.get(RoomMark, room_id)
            last_seen = None if mark is None else mark.last_event_id
        pages: list[list[TimelineEvent]] = []
        total = 0
        next_token: str | None = token
        while next_token and total < self.max_gap_fill_events:
            page, next_token = await self.transport.messages(
                room_id, next_token, backwards=True, limit=_PAGE
            )
            if not page:
                break
            known = await self._processed_ids([event.event_id for event in page])
            if last_seen is not None:
                known.add(last_seen)
            handled = [index for index, event in enumerate(page) if event.event_id in known]
            if handled:
                pages.append(page[handled[-1] + 1:])
                break
            pages.append(page)
            total += len(page)
        return [event for page in reversed(pages) for event in page]

    # ----- blobs --------------------------------------------------------------------------

    async def _fetch_blobs(self, events: list[TimelineEvent]) -> dict[str, Blob]:
        """Download referenced blobs before the transaction (no network inside it).

        A homeserver that cannot serve a blob right now aborts the batch (it is retried);
        after ``max_attempts`` the event is quarantined as ``blob-unavailable``, and its seq
        stays missing so a later frame of that chain makes the receiver ask for it again.
        """
        blobs: dict[str, Blob] = {}
        for event in events:
            if event.type != SEALED_EVENT_TYPE or "blob" not in event.content:
                continue
            try:
                ref = parse_content(event.content)
            except FrameError:
                continue  # quarantined as malformed when handled
            if not isinstance(ref, BlobRef):
                continue
            try:
                blobs[event.event_id] = await self.transport.download(ref.url, max_bytes=ref.size)
            except TransportError as error:
                if is_unreachable(error) and self._count_failure(event.event_id):
                    raise
                blobs[event.event_id] = Rejected("blob-unavailable", short_error(error))
        return blobs

    def _count_failure(self, event_id: str) -> bool:
        """Count one more failure for this event; True while it may still be retried."""
        failures = self._failures.get(event_id, 0) + 1
        self._failures[event_id] = failures
        return failures < self.max_attempts

    # ----- one event ----------------------------------------------------------------------

    async def _handle(
        self,
        session: AsyncSession,
        trust: Trust,
        event: TimelineEvent,
        blob: Blob | None,
        outcome: BatchOutcome,
    ) -> None:
        # Only an event on its last attempt needs a savepoint, to be quarantined alone if it
        # fails: before that, any failure aborts the whole batch anyway.
        last_attempt = self._failures.get(event.event_id, 0) + 1 >= self.max_attempts
        try:
            async with session.begin_nested() if last_attempt else contextlib.nullcontext():
                if event.type == RESEND_EVENT_TYPE:
                    await self._handle_resend(session, event, outcome)
                else:
                    await self._handle_sealed(session, trust, event, blob, outcome)
        except Exception as error:
            if self._count_failure(event.event_id):
                raise  # the whole batch is retried, as after a crash
            log.error("event %s failed %d times (%s); quarantined", event.event_id,
                      self.max_attempts, type(error).__name__)
            async with session.begin_nested():  # the event stays claimed as processed
                self._quarantine(session, event, "internal-error", type(error).__name__,
                                 outcome)
        self._failures.pop(event.event_id, None)

    def _quarantine(
        self,
        session: AsyncSession,
        event: TimelineEvent,
        reason: str,
        detail: str,
        outcome: BatchOutcome,
    ) -> None:
        log.warning("quarantined event %s in %s: %s", event.event_id, event.room_id, reason)
        entry = Quarantined(event.room_id, event.event_id, event.sender, reason, detail)
        quarantine(session, entry, now_ms(self.clock))
        outcome.quarantined += 1
        outcome.entries.append(entry)

    async def _handle_resend(
        self, session: AsyncSession, event: TimelineEvent, outcome: BatchOutcome
    ) -> None:
        try:
            issuer, ranges = read_resend_request(event.content)
            room = resend_request_room(event.content)
        except FrameError as error:
            self._quarantine(session, event, error.reason, str(error), outcome)
            return
        if issuer != self.host.keys.org_id:
            return  # another member's chain: its node answers
        if room is not None and successor(await replaced_rooms(session), room) != event.room_id:
            return  # a room this one did not replace: not asked here
        await schedule_resends(
            session, room or event.room_id, event.event_id, ranges,
            at_ms=now_ms(self.clock), min_interval_ms=self.resend_min_interval_ms,
        )

    async def _handle_sealed(
        self,
        session: AsyncSession,
        trust: Trust,
        event: TimelineEvent,
        blob: Blob | None,
        outcome: BatchOutcome,
    ) -> None:
        try:
            sealed = self._verified_envelope(event, blob, trust)
            if sealed.sender == self.host.keys.org_id:
                return  # this organisation's own, posted by an account it had before a restore
            link = read_chain_context(sealed.context)
            if link.room != event.room_id and \
                    successor(await replaced_rooms(session), link.room) != event.room_id:
                raise Rejected("wrong-room", "the envelope was sealed for another room")
            if not await self._record_link(session, sealed.sender, link, sealed, event):
                return  # an answered resend of an envelope already held
            if not self._addressed_to_me(sealed):
                if self.host.expects_all_addressed(event.room_id):
                    raise Rejected("not-a-recipient", "every envelope here must be for this node")
                return
            opened = open_verified(sealed, self.host.keys)  # verified just above
            tokens = unbundle(opened.payload)
        except (Rejected, SealingError, FrameError) as error:
            self._quarantine(session, event, error.reason, str(error), outcome)
            return
        records = []
        for index, token in enumerate(tokens, 1):
            try:
                records.append(self._verified_record(token, sealed.sender, event, trust))
            except (Rejected, SdJwtError) as error:
                detail = f"record {index} of {len(tokens)}: {error}"
                self._quarantine(session, event, error.reason, detail, outcome)
        if records:
            await self.host.deliver(session, records)
            outcome.delivered += len(records)

    def _verified_envelope(
        self, event: TimelineEvent, blob: Blob | None, trust: Trust
    ) -> Envelope:
        found = parse_content(event.content)
        if isinstance(found, BlobRef):
            if isinstance(blob, Rejected):
                raise blob
            if blob is None:
                raise Rejected("blob-unavailable", "the blob was not fetched")
            found = envelope_from_blob(found, blob)
        sealed = verify_envelope(found, trust.resolver)
        if sealed.sender != self.host.keys.org_id and \
                event.sender != trust.node_user(sealed.sender):
            raise Rejected("wrong-sender", "not posted by the issuer's node account")
        return sealed

    def _addressed_to_me(self, sealed: Envelope) -> bool:
        mine = self.host.keys.decryption_keys()
        return any(slot.kid in mine for slot in sealed.recipients)

    def _verified_record(
        self, token: str, sender: str, event: TimelineEvent, trust: Trust
    ) -> VerifiedRecord:
        verified = verify(token, trust.resolver)
        if verified.issuer != sender:
            raise Rejected("issuer-mismatch", "the record's issuer is not the envelope's sender")
        claims = verified.claims
        if not addressed_to(claims, self.host.keys.org_id):  # verify() checked aud's shape
            raise Rejected("audience-mismatch", "the record is addressed to another org")
        kind, record_id = claims.get("kind"), claims.get("record_id")
        version = claims.get("version")
        if not (isinstance(kind, str) and kind and isinstance(record_id, str) and record_id
                and isinstance(version, int) and not isinstance(version, bool) and version >= 1):
            raise Rejected("malformed", "the record lacks kind, record_id or version")
        return VerifiedRecord(
            issuer=verified.issuer,
            record_id=record_id,
            version=version,
            kind=kind,
            claims=claims,
            disclosed_paths=verified.disclosed_paths,
            issued_at=verified.issued_at,
            room_id=event.room_id,
            event_id=event.event_id,
            origin_server_ts=event.origin_server_ts,
        )

    # ----- chains -------------------------------------------------------------------------

    async def _record_link(
        self,
        session: AsyncSession,
        issuer: str,
        link: ChainLink,
        sealed: Envelope,
        event: TimelineEvent,
    ) -> bool:
        """Add the envelope to its issuer's chain; False if it is an answered resend of one
        already held. Raises :class:`Rejected` for a replay or a conflicting envelope."""
        this_hash = envelope_hash(sealed.to_wire())
        neighbours = await session.execute(_CHAIN_NEIGHBOURS, {
            "issuer": issuer, "room_id": link.room, "low": link.seq - 1, "high": link.seq + 1})
        state = ChainState({seq: (hash_, prev) for seq, hash_, prev in neighbours})
        if state.is_duplicate(link, this_hash):
            if isinstance(event.content.get(RESEND_MARK), str):
                return False
            raise Rejected("replayed", f"seq {link.seq} of this chain was already received")
        problem = state.conflict(link, this_hash)
        if problem is not None:
            raise Rejected("chain-conflict", f"seq {link.seq}: {problem}")
        await session.execute(_ADD_LINK, {
            "issuer": issuer, "room_id": link.room, "seq": link.seq, "hash": this_hash,
            "prev": link.prev, "event_id": event.event_id})
        await self._note_arrival(session, issuer, link)
        return True

    async def _note_arrival(self, session: AsyncSession, issuer: str, link: ChainLink) -> None:
        if link.seq > 1:
            moved = await session.execute(_CHAIN_MOVED_ON, {
                "chain_issuer": issuer, "chain_room": link.room, "previous": link.seq - 1,
                "new_top": link.seq})
            if moved.rowcount == 1:  # type: ignore[attr-defined]
                return
        chain = await session.get(Chain, (issuer, link.room), populate_existing=True)
        if chain is None:
            chain = Chain(issuer=issuer, room_id=link.room, top=0, missing="[]")
            session.add(chain)
        missing: Any = json.loads(chain.missing)
        gaps = Gaps(chain.top, tuple((low, high) for low, high in missing)).arrive(link.seq)
        chain.top = gaps.top
        chain.missing = json.dumps([list(pair) for pair in gaps.missing])
        if not gaps.missing:
            chain.gap_since = chain.last_request_at = None
        elif chain.gap_since is None:
            chain.gap_since = now_ms(self.clock)
        if gaps.missing:
            self._gaps_possible = True

    async def request_missing(self) -> int:
        """Post a resend request for every chain whose gap is due; returns how many."""
        if not self._gaps_possible:
            return 0  # no chain had a gap, and only this inbox opens one (_note_arrival)
        now = now_ms(self.clock)
        async with self.host.transaction() as session:
            gapped = list(await session.scalars(select(Chain).where(Chain.missing != "[]")))
            due = [
                (chain.issuer, chain.room_id, json.loads(chain.missing)) for chain in gapped
                if chain.gap_since is not None and chain.gap_since <= now - self.resend_grace_ms
                and (chain.last_request_at is None
                     or chain.last_request_at <= now - self.resend_interval_ms)
            ]
            replaced = await replaced_rooms(session) if due else {}
        self._gaps_possible = bool(gapped)
        for issuer, room_id, missing in due:
            post_in = successor(replaced, room_id)
            content = resend_request_content(issuer, [(low, high) for low, high in missing],
                                             room=None if post_in == room_id else room_id)
            await self.transport.send(post_in, RESEND_EVENT_TYPE, content,
                                      f"minga.resend.{secrets.token_hex(12)}")
            log.info("asked for %d missing range(s) of a chain in %s",
                     len(content["ranges"]), room_id)
            async with self.host.transaction() as session:
                await session.execute(
                    update(Chain).where(Chain.issuer == issuer, Chain.room_id == room_id)
                    .values(last_request_at=now)
                )
        return len(due)


async def _claim(session: AsyncSession, events: list[TimelineEvent], at_ms: int) -> set[str]:
    """Note ``events`` as processed; the ids of those that were not yet (to handle now).

    Executed with a parameter list, the statement compiles once and is cached; SQLAlchemy
    sends the rows in multi-row pages under SQLite's parameter limit."""
    if not events:
        return set()
    rows = [{"event_id": e.event_id, "room_id": e.room_id, "processed_at": at_ms}
            for e in events]
    claimed = await session.execute(_CLAIM.on(session), rows)
    return set(claimed.scalars())


async def _processed_ids(session: AsyncSession, event_ids: list[str]) -> set[str]:
    if not event_ids:
        return set()
    found = await session.scalars(
        select(ProcessedEvent.event_id).where(ProcessedEvent.event_id.in_(event_ids))
    )
    return set(found)
