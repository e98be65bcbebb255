"""The node's side of the sync layer: :class:`sync.host.SyncHost` on the node's store.

- **Cipher**: the store's column cipher, each at-rest value bound to the sync layer's context.
- **Transactions**: the store's own write transactions, so sync rows and node rows commit
  together (and a retraction's wipe is checkpointed out of the write-ahead log after commit).
- **Trust**: a key ring rebuilt from the verified roster entries in the store (only when the
  roster changed), each member's node account from its entry.
- **Delivery**: the verified records of one envelope go into ``received_records`` together
  (idempotent on issuer, record id, version; the highest version is the one shown), then, in
  order, each to the kind's handler, if any (``Registry.record_handlers``), in the same
  transaction. A retraction wipes what this node holds of its target and keeps the tombstone;
  a retraction that arrives before its target leaves a tombstone (version 0) so that the
  target, when it comes, is stored already retracted.
- **Pair rooms** are the rooms where every envelope must be addressed to this node.
- **Every sync batch** (:meth:`NodeSyncHost.on_sync`, before its events are checked): the roster
  is re-read when the coalition room's member state or membership changed (and on the first
  batch), and invites are joined, pair rooms from verified members recognised
  (:class:`node.core.rooms.InviteHandler`). After a roster read, or when a room's sync carries
  a move statement, the coalition room is checked for a move to follow or to make
  (:mod:`node.core.coalition_move`, decision 0025). A restored node replaces the held pair rooms its
  old account made (decision 0024) and resumes its chains in the others (decision 0023). A peer
  replaces a pair room a moved member's old account made that the member left alone for the
  grace period (:mod:`node.core.peer_replacement`, decision 0024).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy import CompoundSelect, Result, null, select, true, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from federation.coalition_move import MoveRefused
from federation.consent_decision import COALITION_CLAIM
from federation.identity import IdentityError, KeyRing, OrgKeys, RecipientKey, RefuseRevokedKeys
from federation.keys import SigningKeyResolver
from federation.roster import MEMBER_EVENT_TYPE
from federation.transport import (
    MatrixTransport,
    RoomUpdate,
    SyncBatch,
    TimelineEvent,
    TransportError,
)
from node.core.coalition import (
    EXPULSION_APPROVAL_EVENT_TYPE,
    EXPULSION_EVENT_TYPE,
    MOVE_EVENT_TYPE,
    REVOCATION_EVENT_TYPE,
    apply_stored_revocations,
    give_up_pair_room,
    nudge,
    refresh_roster,
)
from node.core.coalition_move import Outcome, check_coalition_room
from node.core.peer_replacement import (
    MOVED_ACCOUNTS_SETTING,
    MovedAccount,
    fallback_due,
    read_moves,
    replace_as_peer,
    write_moves,
)
from node.core.rooms import InviteHandler, PairRoomError, replace_pair_room
from node.core.roster_nudge import RoomNudges, server_of
from node.core.runtime import Node, NodeNotReady
from node.core.store.audit import AuditLog
from node.core.store.cipher import Cell, ColumnCipher
from node.core.store.coalitions import CoalitionRepository
from node.core.store.ids import utc_now
from node.core.store.pair_rooms import PairRoomRepository
from node.core.store.received import Incoming, ReceivedRepository
from node.core.store.store import StoreTransaction
from node.core.store.tables import MemberRow, PairRoomRow
from schemas.common import RecordRef
from schemas.records import RecordKind
from sync.engine import SyncConfig
from sync.host import Quarantined, VerifiedRecord
from sync.resume import (
    ChainDoesNotContinue,
    held_rooms,
    replacement_done,
    replacement_pending,
    resume_room,
)

log = logging.getLogger("minga.sync.host")

REPLACE_RETRY_SECONDS = 60.0
DEFAULT_PEER_GRACE_SECONDS = SyncConfig.peer_replacement_grace_seconds

VERIFIED = "verified"
RECHECK_MOVE_SECONDS = 30.0
RETRACTION_PLACEHOLDER_VERSION = 0
_ROSTER_TRIGGERS = frozenset({MEMBER_EVENT_TYPE, REVOCATION_EVENT_TYPE, EXPULSION_EVENT_TYPE,
                              EXPULSION_APPROVAL_EVENT_TYPE, "m.room.member",
                              "m.room.power_levels"})


def touches_roster(update: RoomUpdate) -> bool:
    return any(event.type in _ROSTER_TRIGGERS for event in update.state + update.events)


class StoreCipher:
    """:class:`sync.host.AtRestCipher` over the store's column cipher."""

    def __init__(self, cipher: ColumnCipher) -> None:
        self._cipher = cipher

    @staticmethod
    def _cell(context: tuple[str, ...]) -> Cell:
        return Cell("sync", "at_rest", context)

    def encrypt_at_rest(self, plaintext: bytes, context: tuple[str, ...]) -> bytes:
        return self._cipher.encrypt(plaintext, self._cell(context))

    def decrypt_at_rest(self, stored: bytes, context: tuple[str, ...]) -> bytes:
        return self._cipher.decrypt(stored, self._cell(context))


@dataclass(frozen=True)
class RosterTrust:
    """:class:`sync.host.Trust`: the verified roster's key ring and node accounts."""

    keyring: KeyRing
    node_users: Mapping[str, str]

    @property
    def resolver(self) -> SigningKeyResolver:
        # What arrives now: a revoked key is refused whatever date the record claims (M13).
        return RefuseRevokedKeys(self.keyring)

    def recipient_key(self, org_id: str) -> RecipientKey:
        return self.keyring.encryption_key_for(org_id)

    def node_user(self, org_id: str) -> str | None:
        return self.node_users.get(org_id)


RosterVersion = tuple[tuple[str, datetime], ...]

RecordHandler = Callable[[AsyncSession, Node, VerifiedRecord], Awaitable[None]]
"""What a feature does with a verified record of its kind, beyond storing it. Runs inside the
inbox's transaction, with its session: what it writes or queues commits together with the
record, or not at all. Idempotent (a record may come again after a crash); never waits on the
network (to answer, it queues in the outbox)."""

RoomRecogniser = Callable[[Node, Sequence[TimelineEvent]], Awaitable[str | None]]
"""Given a joined room's state: the member org whose room it is (its backlog is asked for),
or ``None`` when the room is not one the feature knows."""


RoomReplacer = Callable[[Node, MatrixTransport, frozenset[str]], Awaitable[set[str]]]
"""Given a node's held rooms (a node restored elsewhere), once it is in the coalition under its
current account: the feature replaces the rooms an old account of this node made for it and
the current one cannot enter (decision 0024), and returns the held ones it replaced. Called
once after the node took a new account even with nothing held (a campaign room it sent nothing
in), then while rooms are held. A failure is logged and returns nothing."""


RoomOwnerCheck = Callable[[Node, str, str], Awaitable[bool]]
"""Whether this node knows a room (the third argument) as a member's (the second) room of the
feature's kind, say the room of a campaign that member proposed: a room replacing it, made by
that member's current account, then takes its place (decision 0024)."""


class FeatureHooks(Protocol):
    """What the host needs of the node's features (``node.core.registry.Registry``)."""

    @property
    def record_handlers(self) -> Mapping[str, RecordHandler]: ...

    async def recognise_room(self, node: Node, state: Sequence[TimelineEvent]) -> str | None: ...

    async def replace_held_rooms(self, node: Node, transport: MatrixTransport,
                                 held: frozenset[str]) -> set[str]: ...

    async def owns_room(self, node: Node, org_id: str, room_id: str) -> bool: ...


class NoFeatures:
    """:class:`FeatureHooks` of a host that only seals and sends."""

    record_handlers: Mapping[str, RecordHandler] = {}

    async def recognise_room(self, node: Node, state: Sequence[TimelineEvent]) -> str | None:
        return None

    async def replace_held_rooms(self, node: Node, transport: MatrixTransport,
                                 held: frozenset[str]) -> set[str]:
        return set()

    async def owns_room(self, node: Node, org_id: str, room_id: str) -> bool:
        return False


class NodeSyncHost:
    """The node as the sync layer's host. Make one with :meth:`open`."""

    def __init__(
        self, node: Node, features: FeatureHooks, cipher: ColumnCipher,
        transport: MatrixTransport | None = None, *,
        peer_grace_seconds: float = DEFAULT_PEER_GRACE_SECONDS,
    ) -> None:
        self._node = node
        self._features = features
        self._transport = transport
        self._invites = InviteHandler(node, features.recognise_room, self, features.owns_room)
        self._roster_read = False
        self._rosters_read: set[str] = set()  # coalition rooms whose roster was read
        self._nudges = RoomNudges(server_of(transport.user_id) if transport else "")
        self._check_room = True  # whether to look for (or make) a coalition move next batch
        self._check_after = 0.0
        self._column_cipher = cipher
        self._cipher = StoreCipher(cipher)
        self._trust: RosterTrust | None = None
        self._roster_version: RosterVersion = ()
        self._pair_rooms: frozenset[str] = frozenset()
        self._held: set[str] | None = None  # rooms a restored node has yet to resume
        self._replace_again_at = 0.0
        self._replace_pending = False  # a new account: look for rooms the old one made
        self._peer_grace_ms = int(peer_grace_seconds * 1000)
        self._moves: dict[str, MovedAccount] | None = None  # members seen moving (fallback)
        self._fallback_again_at = 0.0

    @classmethod
    async def open(cls, node: Node, features: FeatureHooks,
                   transport: MatrixTransport | None = None, *,
                   peer_grace_seconds: float = DEFAULT_PEER_GRACE_SECONDS) -> NodeSyncHost:
        """The host of ``node``, handing received records to the ``features``' handlers;
        ``transport`` (the sync engine's) is needed by :meth:`on_sync`;
        ``peer_grace_seconds``: ``SyncConfig.peer_replacement_grace_seconds``."""
        async with node.store.read() as tx:
            host = cls(node, features, tx.cipher, transport,
                       peer_grace_seconds=peer_grace_seconds)
        await host.refresh()
        return host

    @classmethod
    async def for_sending(cls, node: Node,
                          transport: MatrixTransport | None = None) -> NodeSyncHost:
        """A host that seals and sends but hands received records to no feature: the outbox
        of a short-lived command, or the roster's trust."""
        return await cls.open(node, NoFeatures(), transport)

    @property
    def features(self) -> FeatureHooks:
        return self._features

    @property
    def node(self) -> Node:
        return self._node

    @property
    def keys(self) -> OrgKeys:
        return self._node.keys

    @property
    def cipher(self) -> StoreCipher:
        return self._cipher

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._node.store.transaction() as tx:
            yield tx.session

    async def refresh(self, session: AsyncSession | None = None) -> None:
        """Re-read the pair rooms and, if the roster changed, rebuild the trust (in ``session``
        when one is open, else in a read transaction of its own)."""
        if session is None:
            async with self._node.store.read() as tx:
                await self._refresh_in(tx)
        else:
            await self._refresh_in(StoreTransaction(session, self._column_cipher, utc_now))

    async def _refresh_in(self, tx: StoreTransaction) -> None:
        self._pair_rooms, version = await _pair_rooms_and_roster_version(tx.session)
        if self._trust is not None and version == self._roster_version:
            return
        members = await tx.orgs.members(verified_only=True, with_revoked=True)
        keyring = KeyRing()
        users: dict[str, str] = {}
        for member in members:
            try:
                keyring.add_member_entry(member.entry)
            except IdentityError as error:
                log.warning("stored roster entry of %s no longer verifies: %s", member.org_id,
                            error)
                continue
            if member.matrix_user_id:
                users[member.org_id] = member.matrix_user_id
        apply_stored_revocations(keyring, await tx.orgs.revocations())
        self._trust, self._roster_version = RosterTrust(keyring, users), version

    async def trust(self, session: AsyncSession | None = None) -> RosterTrust:
        await self.refresh(session)
        assert self._trust is not None
        return self._trust

    async def on_sync(self, batch: SyncBatch) -> None:
        if self._transport is None:
            raise RuntimeError("this sync host was opened without a transport")
        # Another process (`minga coalition join|leave`) may have changed the coalitions: one
        # small read per batch.
        self._node.forget_coalitions()
        if not self._roster_read:
            self._rosters_read.clear()
            self._roster_read = True
        coalitions = await self._node.coalitions()
        self._nudges.keep_only(c.room_id for c in coalitions)
        for coalition in coalitions:
            update = batch.rooms.get(coalition.room_id)
            if update is not None:
                self._nudges.saw(coalition.room_id, update.state + update.events)
            if coalition.room_id not in self._rosters_read or (update and touches_roster(update)):
                report = await refresh_roster(self._node, self._transport, coalition.room_id)
                self._nudges.read(coalition.room_id, report.joined)
                self._rosters_read.add(coalition.room_id)
                self._check_room = True
                self._moves = None  # the roster may have noted a member's move
        await self._nudge_coalition_rooms(self._transport)
        await self._invites.handle(self._transport, batch.invites)
        await self._leave_pair_rooms_peers_left(self._transport, batch)
        await self._check_coalition_room(self._transport, batch)
        await self._replace_rooms_the_old_account_made(self._transport)
        await self._replace_rooms_a_moved_member_made(self._transport)
        await self._resume_held_chains(self._transport, batch)
        # No refresh here: the inbox asks for trust() (which refreshes) before it checks events.

    async def _nudge_coalition_rooms(self, transport: MatrixTransport) -> None:
        """Send the nudges due (:mod:`node.core.roster_nudge`): content-free, best effort."""
        for room_id in self._nudges.due(time.monotonic()):
            try:
                await nudge(transport, room_id)
            except TransportError as error:
                self._nudges.failed(room_id)
                log.warning("could not nudge coalition room %s: %s", room_id, error)

    async def _leave_pair_rooms_peers_left(self, transport: MatrixTransport,
                                           batch: SyncBatch) -> None:
        """A member that left its pair room with this node (it left the last coalition the
        two shared, decision 0032): forget the room and leave it too, so that a later share
        between them makes a new one instead of going where the member no longer reads."""
        leaving = {room_id: users for room_id, update in batch.rooms.items()
                   if (users := {e.state_key for e in update.state + update.events
                                 if e.type == "m.room.member" and e.state_key == e.sender
                                 and e.content.get("membership") == "leave"})}
        if not leaving:
            return
        left: list[str] = []
        async with self._node.store.transaction() as tx:
            pair_rooms = PairRoomRepository(tx.session)
            accounts = {m.org_id: m.matrix_user_id for m in await tx.orgs.members()}
            for room_id, users in leaving.items():
                pair = await pair_rooms.for_room(room_id)
                if pair is None or accounts.get(pair.org_id) not in users:
                    continue
                await give_up_pair_room(tx, room_id, pair.org_id, actor="federation",
                                        action="pair-room.peer-left")
                left.append(room_id)
        for room_id in left:
            try:
                await transport.leave(room_id)
            except TransportError as error:
                log.warning("could not leave a pair room its member left: %s", error)

    async def _check_coalition_room(self, transport: MatrixTransport, batch: SyncBatch) -> None:
        """After the roster was read, or when a room carries a move statement: follow a move
        of the coalition room, or make one (node.core.coalition_move, decision 0025)."""
        statements = [room for room, update in batch.rooms.items()
                      if any(e.type == MOVE_EVENT_TYPE for e in update.state + update.events)]
        due = self._check_room and time.monotonic() >= self._check_after
        if not (due or statements):
            return
        try:
            outcome = await check_coalition_room(self._node, transport, statements)
        except (TransportError, MoveRefused, NodeNotReady) as error:
            # Say, a restored node whose new account is not in its old room: tried again
            # now and then, and whenever a move statement arrives.
            log.warning("could not check the coalition room for a move: %s", error)
            self._check_after = time.monotonic() + RECHECK_MOVE_SECONDS
            return
        self._check_room = outcome is Outcome.PENDING
        if outcome is Outcome.PENDING:  # not invited yet: the invite's room brings it back
            self._check_after = time.monotonic() + RECHECK_MOVE_SECONDS
        if outcome is Outcome.MOVED:
            self._roster_read = False

    async def _held_rooms(self) -> set[str]:
        if self._held is None:
            async with self.transaction() as session:
                self._held = await held_rooms(session)
                self._replace_pending = await replacement_pending(session)
        return self._held

    async def _replace_rooms_the_old_account_made(self, transport: MatrixTransport) -> None:
        """A held pair room this node's old account made can never let the new account in
        (its creator's power): once the node is back in the coalition under the new account,
        each is replaced by a new pair room (node.core.rooms.replace_pair_room, decision
        0024), and the features replace theirs (its alert room, campaign rooms it proposed; they
        are asked once after the new account, then while rooms are held). A failed pair room is
        tried again a minute later."""
        held = await self._held_rooms()
        if not (held or self._replace_pending) or time.monotonic() < self._replace_again_at:
            return
        async with self._node.store.read() as tx:
            own = next((m for m in await tx.orgs.members(verified_only=True)
                        if m.org_id == self._node.org_id), None)
            pairs = [p for p in await PairRoomRepository(tx.session).all()
                     if p.room_id in held and p.created_by_us]
        if own is None or own.matrix_user_id != transport.user_id:
            return  # not back in the coalition under this account yet: peers would not join
        for pair in pairs:
            try:
                await replace_pair_room(self._node, transport, pair.room_id, pair.org_id, self)
            except PairRoomError as error:
                log.warning("could not replace pair room %s: %s", pair.room_id, error)
                self._replace_again_at = time.monotonic() + REPLACE_RETRY_SECONDS
                continue
            held.discard(pair.room_id)
        held -= await self._features.replace_held_rooms(self._node, transport, frozenset(held))
        if self._replace_pending:  # the features have looked once (campaign rooms, unheld)
            async with self.transaction() as session:
                await replacement_done(session)
            self._replace_pending = False

    async def _replace_rooms_a_moved_member_made(self, transport: MatrixTransport) -> None:
        """The peer's fallback (decision 0024): a member that moved to a new account has
        ``peer_grace_seconds`` to replace the pair rooms its old account made; a pair room with
        it that its old account made and that is still here then (its backup did not know the
        room: made after the backup) is replaced by this node
        (``replace_pair_room(..., by_peer=True)``). Done once per move; a failure is tried
        again a minute later."""
        if self._moves is None:
            async with self._node.store.read() as tx:
                self._moves = read_moves(await tx.settings.get(MOVED_ACCOUNTS_SETTING))
        now_ms = int(time.time() * 1000)
        due = [move for move in self._moves.values()
               if fallback_due(move, now_ms, self._peer_grace_ms)]
        if not due or time.monotonic() < self._fallback_again_at:
            return
        async with self._node.store.read() as tx:
            accounts = {m.org_id: m.matrix_user_id
                        for m in await tx.orgs.members(verified_only=True)}
            pairs = await PairRoomRepository(tx.session).all()
        done: list[str] = []
        for move in due:
            finished = True
            for pair in (p for p in pairs if p.org_id == move.org_id and not p.created_by_us):
                try:
                    state = await transport.room_state(pair.room_id)
                except TransportError as error:
                    log.warning("could not read pair room %s: %s", pair.room_id, error)
                    finished = False
                    continue
                create = next((e for e in state if e.type == "m.room.create"), None)
                if create is None or not replace_as_peer(
                        move, created_by_us=pair.created_by_us, creator=create.sender,
                        current_user=accounts.get(move.org_id)):
                    continue
                try:
                    await replace_pair_room(self._node, transport, pair.room_id, move.org_id,
                                            self, by_peer=True)
                except PairRoomError as error:
                    log.warning("could not replace pair room %s: %s", pair.room_id, error)
                    finished = False
            if finished:
                done.append(move.org_id)
        if len(done) < len(due):
            self._fallback_again_at = time.monotonic() + REPLACE_RETRY_SECONDS
        if done:
            async with self._node.store.transaction() as tx:
                left = {org: m for org, m in read_moves(
                    await tx.settings.get(MOVED_ACCOUNTS_SETTING)).items()
                    if not (org in done and m == self._moves.get(org))}
                await tx.settings.set(MOVED_ACCOUNTS_SETTING, write_moves(left))
            self._moves = left

    async def _resume_held_chains(self, transport: MatrixTransport, batch: SyncBatch) -> None:
        """A restored node continues its chain in each held room once its new account is in
        it (sync.resume); until then the outbox leaves the room alone."""
        held = await self._held_rooms()
        for room_id in sorted(held & set(batch.rooms)):
            try:
                resumed = await resume_room(
                    self.transaction, transport, room_id, self._node.org_id,
                    (await self.trust()).resolver, at_ms=int(time.time() * 1000))
            except (ChainDoesNotContinue, TransportError) as error:
                log.warning("could not resume this node's chain in %s: %s", room_id, error)
                continue
            held.discard(room_id)
            async with self._node.store.transaction() as tx:
                await tx.audit.append("federation", "restore.chain-resumed", target=room_id,
                                      details={"adopted": resumed.adopted,
                                               "records_requeued": resumed.records_requeued,
                                               "records_lost": resumed.records_lost,
                                               "next_seq": resumed.next_seq})

    def note_pair_room(self, room_id: str) -> None:
        self._pair_rooms = self._pair_rooms | {room_id}
        if self._held:  # the room may replace a held one (a peer's replacement): read again
            self._held = None

    async def note_quarantined(self, session: AsyncSession,
                               entries: Sequence[Quarantined]) -> None:
        """Audit what a revoked (expelled or seized) member's account still posts: it is
        refused like any failed check, and the organisation should know someone tried."""
        tx = StoreTransaction(session, self._column_cipher, utc_now)
        revoked = {m.matrix_user_id: m.org_id
                   for m in await tx.orgs.members(verified_only=True, with_revoked=True)
                   if m.revoked_at is not None and m.matrix_user_id}
        for entry in entries:
            if entry.sender in revoked:
                await tx.audit.append("federation", "revoked-member.post",
                                      target=revoked[entry.sender],
                                      details={"room_id": entry.room_id,
                                               "event_id": entry.event_id,
                                               "reason": entry.reason})

    def expects_all_addressed(self, room_id: str) -> bool:
        return room_id in self._pair_rooms

    async def deliver(self, session: AsyncSession, records: Sequence[VerifiedRecord]) -> None:
        received = ReceivedRepository(session, self._column_cipher, utc_now)
        records = await self._through_coalitions(session, records)
        await received.add_many([Incoming(r.issuer, r.record_id, r.version, r.kind,
                                          dict(r.claims), r.claims.get(COALITION_CLAIM))
                                 for r in records], VERIFIED)
        for record in records:
            if record.kind == RecordKind.RETRACTION.value:
                await self._retract(received, record)
            handler = self._features.record_handlers.get(record.kind)
            if handler is not None:
                await handler(session, self._node, record)

    async def _through_coalitions(self, session: AsyncSession,
                                  records: Sequence[VerifiedRecord]) -> list[VerifiedRecord]:
        """Each record with the coalition it came through in its ``coalition`` claim; records
        from a coalition this node is not in, or whose issuer is not a member of it, are
        refused and audited (decision 0032). A record without the claim (an older issuer)
        came through the coalition whose room it is in, else the node's first coalition; a
        retraction goes wherever its target went."""
        coalitions = await self._node.coalitions()
        memberships = await CoalitionRepository(session, self._column_cipher, utc_now
                                                ).memberships()
        by_room = {c.room_id: c.coalition_id for c in coalitions}
        active = set(by_room.values())
        accepted: list[VerifiedRecord] = []
        for record in records:
            named = record.claims.get(COALITION_CLAIM)
            room_coalition = by_room.get(record.room_id)
            if record.kind == RecordKind.RETRACTION.value and named is None:
                accepted.append(record)
                continue
            coalition = named if isinstance(named, str) else (
                room_coalition or (coalitions[0].coalition_id if coalitions else None))
            problem = "malformed-coalition" if named is not None and not isinstance(
                named, str) else coalition_problem(coalition, room_coalition, active,
                                                   memberships.get(coalition or "", frozenset()),
                                                   record.issuer)
            if problem is not None:
                log.warning("refused record %s from %s: %s", record.record_id, record.issuer,
                            problem)
                await AuditLog(session, self._column_cipher, utc_now).append(
                    "federation", "record.refused", target=record.issuer,
                    details={"record_id": record.record_id, "kind": record.kind,
                             "reason": problem})
                continue
            accepted.append(replace(record, claims={**record.claims, COALITION_CLAIM: coalition}))
        return accepted

    async def _retract(self, received: ReceivedRepository, record: VerifiedRecord) -> None:
        target = _retraction_target(record.claims)
        if target is None or target.issuer != record.issuer:
            log.warning("retraction %s from %s names no record of its issuer; ignored",
                        record.record_id, record.issuer)
            return
        if await received.retract(target.issuer, target.record_id) == 0:
            await received.add(target.issuer, target.record_id, RETRACTION_PLACEHOLDER_VERSION,
                               RecordKind.RETRACTION.value, {}, VERIFIED)
            await received.retract(target.issuer, target.record_id)


async def roster_trust(node: Node) -> RosterTrust:
    """The verified roster's key ring and node accounts, read now (no sync host needed)."""
    return await (await NodeSyncHost.for_sending(node)).trust()


# Built once: read for every sync batch and every urgent seal.
_PAIR_ROOMS_AND_ROSTER: CompoundSelect[Any] = union_all(
    select(MemberRow.org_id, MemberRow.updated_at, null().label("room_id"))
    .where(MemberRow.verified == true()),
    select(null(), null(), PairRoomRow.room_id),
)


async def _pair_rooms_and_roster_version(
    session: AsyncSession,
) -> tuple[frozenset[str], RosterVersion]:
    """The pair room ids, and each verified member's org id and last change: one query, as
    both are read for every sync batch and every urgent seal. Nothing is decrypted."""
    rows: Result[Any] = await session.execute(_PAIR_ROOMS_AND_ROSTER)
    rooms: set[str] = set()
    members: list[tuple[str, datetime]] = []
    for org_id, updated_at, room_id in (tuple(row) for row in rows):
        if room_id is not None:
            rooms.add(str(room_id))
        else:
            assert updated_at is not None
            members.append((str(org_id), updated_at))
    return frozenset(rooms), tuple(sorted(members))


def _retraction_target(claims: Mapping[str, Any]) -> RecordRef | None:
    try:
        return RecordRef.model_validate(claims.get("target"))
    except ValidationError:
        return None


def coalition_problem(coalition: str | None, room_coalition: str | None, active: set[str],
                      members: frozenset[str], issuer: str) -> str | None:
    """Why a record said to come through ``coalition`` is refused, or None (decision 0032)."""
    if coalition is None or coalition not in active:
        return "not-in-coalition"
    if room_coalition is not None and room_coalition != coalition:
        return "wrong-coalition-room"
    if issuer not in members:
        return "issuer-not-in-coalition"
    return None
