"""One sharing path for every record kind (docs/architecture.md §4, §7; M4 item 5).

A share turns one record into one SD-JWT *per recipient* (fresh salts per audience), queues each
in the outbox of that recipient's pair room, and writes the sharing history and the audit entry,
all in one store transaction: either every recipient is queued, or nobody is.

- A **case** goes through the consent gate (:func:`federation.consent.disclose_case`), recipient
  by recipient, and every refusal is collected *before* anything is built or queued, so a share
  that consent refuses for one recipient sends nothing to anyone.
- **Every other kind** is issued with :func:`federation.disclosure.issue`, every disclosable path
  of its kind withholdable (so ``_sd`` sizes are fixed per kind), and presented with the chosen
  fields only. Kinds in :data:`CLEAR_KINDS` (retractions) travel wholly in clear inside the
  sealed envelope: there is nothing in them to withhold.
- **Alike** (``alike=True``, decision 0033): a record that every recipient gets with the same
  disclosures, in one room they all share (an alert and its updates), is issued ONCE with the
  sorted list of recipients as its ``aud`` (up to ``federation.sealing.MAX_RECIPIENTS`` per
  token; more are split in chunks of that size) and queued once for all of them, so the outbox
  seals one envelope to all. History and audit stay per recipient. Never for a case: consent is
  decided per recipient.

Later features (proposals, alerts, dedup, aggregates) call :func:`share_record` too. The pure part
(:func:`outgoing`, :func:`preview_share`) has no I/O; :func:`share_record` and
:func:`retract_record` are the shell around it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from federation.consent import (
    ATTACHMENTS,
    ConsentRefused,
    Recipient,
    allowed_fields,
    check_consent,
    disclose_case,
    preview,
    with_consent_scope,
)
from federation.consent_decision import COALITION_CLAIM, HEADER_CLAIMS
from federation.disclosure import issue, present
from federation.identity import OrgKeys
from federation.sealing import MAX_RECIPIENTS
from federation.transport import MatrixTransport
from node.core.rooms import ensure_pair_room, pair_room_of
from node.core.runtime import Node
from node.core.store import StoreTransaction
from node.core.store.ids import utc_now
from node.core.store.shares import RETRACT, SHARE, NewShare, ShareRepository
from node.core.sync_host import StoreCipher
from schemas.common import RecordRef
from schemas.fields import disclosable_paths, split_path
from schemas.ids import new_record_id
from schemas.payloads import Retraction
from schemas.records import (
    CaseRecord,
    RecordBase,
    RecordKind,
    RetractionRecord,
    build_record,
    record_to_wire,
)
from sync.host import after_commit, committed_actions, run_committed
from sync.outbox import enqueue_many

log = logging.getLogger("minga.sharing")

CLEAR_KINDS: Final = frozenset({RecordKind.RETRACTION})
"""Kinds issued with nothing withholdable: every claim is in clear inside the sealed envelope."""

SHARE_ACTION: Final = "record.share"
RETRACT_ACTION: Final = "record.retract"
PAIR_ROOMS_AT_ONCE: Final = 8
"""Pair rooms made at the same time for one share (each is a createRoom with an invite)."""


# --- errors -----------------------------------------------------------------------------------


class SharingError(Exception):
    """A share or retraction was refused before anything was queued."""


class UnknownRecipient(SharingError):
    """A recipient is not a verified member of the coalition (or is this node itself)."""

    def __init__(self, org_id: str, reason: str) -> None:
        super().__init__(f"recipient {org_id}: {reason}")
        self.org_id = org_id
        self.reason = reason


class NotDisclosable(SharingError):
    """Requested paths that are not disclosable paths of the record's kind."""

    def __init__(self, kind: str, paths: Collection[str]) -> None:
        self.paths = tuple(sorted(paths))
        super().__init__(f"not disclosable paths of a {kind}: {', '.join(self.paths)}")


class ShareRefused(SharingError):
    """Consent refused the share for at least one recipient; nothing was sent to anyone."""

    def __init__(self, refusals: Mapping[str, ConsentRefused]) -> None:
        self.refusals = dict(sorted(refusals.items()))
        super().__init__(
            "; ".join(f"{org_id}: {refusal}" for org_id, refusal in self.refusals.items())
        )

    @property
    def paths(self) -> tuple[str, ...]:
        """Every refused path, over all recipients."""
        return tuple(sorted({path for r in self.refusals.values() for path in r.paths}))


class NotAlike(SharingError):
    """An alike share (one token for every recipient) was asked for a record that each
    recipient must get on its own: a case."""


class NothingToRetract(SharingError):
    """The record was never shared with anyone, so there is nobody to send a retraction to."""


class AlreadyRetracted(SharingError):
    """The record was retracted; recipients keep only its tombstone, so it is not sent again."""


# --- the pure part ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """One record disclosed for one recipient: the SD-JWT and the paths it discloses (in an
    alike share, the same token for every recipient of its audience list)."""

    recipient: str
    token: str = field(repr=False)
    fields: tuple[str, ...]


def _project(payload: Mapping[str, Any], paths: Collection[str]) -> dict[str, Any]:
    """The payload values at ``paths`` (absent and null left out); arrays of objects keep
    their length, each element holding only the chosen keys."""
    keys_by_array: dict[str, list[str]] = {}
    projected: dict[str, Any] = {}
    for path in paths:
        name, key = split_path(path)
        if key is not None:
            keys_by_array.setdefault(name, []).append(key)
        elif payload.get(name) is not None:
            projected[name] = payload[name]
    for name, keys in keys_by_array.items():
        elements = payload.get(name)
        if isinstance(elements, list):
            projected[name] = [
                {key: element[key] for key in keys if element.get(key) is not None}
                for element in elements
                if isinstance(element, Mapping)
            ]
    return projected


def record_claims(record: RecordBase[Any], paths: Collection[str]) -> dict[str, Any]:
    """The claims of ``record`` restricted to ``paths``: the record header, then the fields."""
    wire = record_to_wire(record)
    claims = {name: wire[name] for name in HEADER_CLAIMS}
    claims.update(_project(wire["payload"], paths))
    return claims


def _check_paths(kind: RecordKind, fields: Collection[str]) -> tuple[str, ...]:
    if isinstance(fields, str):
        raise TypeError("fields must be a collection of paths, not one string")
    unknown = set(fields) - set(disclosable_paths(kind))
    if unknown:
        raise NotDisclosable(kind.value, unknown)
    return tuple(sorted(set(fields)))


FilesFor = Mapping[str, Sequence[Mapping[str, Any]]]
"""Per recipient org id, the descriptions of the files shared with it (cases only; see
``federation.consent.ATTACHMENTS``): the gate refuses them as it refuses any field."""


def _case_fields(
    record: CaseRecord, recipients: Sequence[Recipient], fields: Collection[str] | None,
    files: FilesFor | None = None,
) -> dict[str, tuple[str, ...]]:
    """Per recipient, the fields the gate allows; raises :class:`ShareRefused` naming every
    refusal of every recipient (``fields=None`` asks for all that consent allows)."""
    allowed: dict[str, tuple[str, ...]] = {}
    refused: dict[str, ConsentRefused] = {}
    for recipient in recipients:
        wanted = allowed_fields(record.payload, recipient) if fields is None else fields
        if files and files.get(recipient.org_id):
            wanted = {*wanted, ATTACHMENTS}
        try:
            allowed[recipient.org_id] = tuple(sorted(check_consent(record.payload, wanted,
                                                                   recipient)))
        except ConsentRefused as refusal:
            refused[recipient.org_id] = refusal
    if refused:
        raise ShareRefused(refused)
    return allowed


def audience_chunks(org_ids: Collection[str]) -> list[list[str]]:
    """``org_ids`` sorted and cut into lists of at most ``MAX_RECIPIENTS``: one token and one
    envelope each in an alike share (the outbox seals to that many at most)."""
    ordered = sorted(org_ids)
    return [ordered[start:start + MAX_RECIPIENTS]
            for start in range(0, len(ordered), MAX_RECIPIENTS)]


def outgoing(
    record: RecordBase[Any],
    recipients: Sequence[Recipient],
    fields: Collection[str] | None,
    *,
    keys: OrgKeys,
    issued_at: int,
    files: FilesFor | None = None,
    alike: bool = False,
) -> list[Outgoing]:
    """One SD-JWT per recipient, or an exception before any is built.

    ``fields=None`` discloses every path the kind allows (for a case: every path consent allows
    to that recipient). ``files`` adds shared files to a case's recipients. ``alike`` issues
    one SD-JWT for all recipients (per :func:`audience_chunks`), its ``aud`` their list, and
    returns it for each of them; refused for a case (:class:`NotAlike`). Raises
    :class:`ShareRefused`, ``federation.consent.UnknownFieldPath`` (cases) or
    :class:`NotDisclosable` (other kinds).
    """
    if alike and isinstance(record, CaseRecord):
        raise NotAlike("a case goes to each recipient as consent decides for it, never alike")
    if isinstance(record, CaseRecord):
        chosen = _case_fields(record, recipients, fields, files)
        return [
            Outgoing(r.org_id, disclose_case(record, chosen[r.org_id], r,
                                             signing_key=keys.signing,
                                             kid=keys.signing_kid, issued_at=issued_at,
                                             files=(files or {}).get(r.org_id, ())),
                     chosen[r.org_id])
            for r in recipients
        ]
    if files:
        raise NotDisclosable(record.kind, [ATTACHMENTS])
    kind = record.record_kind
    every_path = disclosable_paths(kind)
    paths = every_path if fields is None else _check_paths(kind, fields)
    withholdable = () if kind in CLEAR_KINDS else every_path
    claims = record_claims(record, every_path)
    coalitions = {r.coalition for r in recipients}
    if len(coalitions) > 1:
        raise ValueError("one share goes through one coalition")
    if coalitions and (coalition := next(iter(coalitions))) is not None:
        claims[COALITION_CLAIM] = coalition
    audiences: list[list[str]] = (audience_chunks([r.org_id for r in recipients]) if alike
                                  else [[r.org_id] for r in recipients])
    token_for: dict[str, str] = {}
    for audience in audiences:
        issued = issue(claims, issuer=record.issuer, kid=keys.signing_kid,
                       signing_key=keys.signing, issued_at=issued_at, withholdable=withholdable,
                       audience=audience if alike else audience[0])
        token = present(issued, paths)
        token_for.update((org_id, token) for org_id in audience)
    return [Outgoing(r.org_id, token_for[r.org_id], tuple(paths)) for r in recipients]


def preview_share(
    record: CaseRecord, recipients: Sequence[Recipient], fields: Collection[str], *,
    issued_at: int, files: FilesFor | None = None,
) -> dict[str, dict[str, Any] | ConsentRefused]:
    """Per recipient: exactly the claims they would verify, or the gate's refusal."""
    answers: dict[str, dict[str, Any] | ConsentRefused] = {}
    for recipient in recipients:
        try:
            answers[recipient.org_id] = preview(record, fields, recipient, issued_at=issued_at,
                                                files=(files or {}).get(recipient.org_id, ()))
        except ConsentRefused as refusal:
            answers[recipient.org_id] = refusal
    return answers


def retraction_record(
    issuer: str, target_record_id: str, reason: str, note: str | None, *, record_id: str,
    issued_at: int,
) -> RetractionRecord:
    payload = Retraction(target=RecordRef(issuer=issuer, record_id=target_record_id),
                         reason=reason, note=note)
    record = build_record(issuer, payload, record_id=record_id, issued_at=issued_at)
    assert isinstance(record, RetractionRecord)
    return record


def disclosed_fields(claims: Mapping[str, Any] | None) -> list[str]:
    """The payload paths present in received claims (``victims.name`` for arrays of objects)."""
    if not claims:
        return []
    skip = {*HEADER_CLAIMS, COALITION_CLAIM, "iss", "iat", "aud", "cnf", "_sd_alg"}
    paths: set[str] = set()
    for name, value in claims.items():
        if name in skip:
            continue
        if name == ATTACHMENTS:  # files: one path, whatever describes them
            paths.add(name)
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            paths.update(f"{name}.{key}" for element in value for key in element)
        else:
            paths.add(name)
    return sorted(paths)


# --- the shell --------------------------------------------------------------------------------


class Enqueue(Protocol):
    """Queue SD-JWTs for delivery in a room to the same recipients, inside the caller's
    transaction (``sync.outbox.enqueue_many``)."""

    def __call__(
        self, session: AsyncSession, room_id: str, recipient_org_ids: Sequence[str],
        tokens: Sequence[str],
    ) -> Awaitable[Any]: ...


PairRoomFor = Callable[[str], Awaitable[str]]
"""The pair room to reach one organisation through, created if needed (node.rooms)."""
Alongside = Callable[[StoreTransaction], Awaitable[None]]
"""More to write in the transaction that records a share (see :func:`share_records`)."""


@dataclass(frozen=True)
class ShareReceipt:
    record_id: str
    version: int
    kind: str
    recipients: tuple[Outgoing, ...]
    rooms: Mapping[str, str]


async def first_coalition_id(tx: StoreTransaction) -> str | None:
    """The node's first coalition (left ones included): what the consent of a case recorded
    before decision 0032 covers."""
    known = await tx.coalitions.all(with_left=True)
    return known[0].coalition_id if known else None


async def consent_scoped(tx: StoreTransaction, record: CaseRecord) -> CaseRecord:
    """``record`` with the coalitions its consent covers spelled out, as a share sees it
    (:func:`federation.consent.with_consent_scope`): previews and offers use this."""
    return with_consent_scope(record, await first_coalition_id(tx))


async def verified_recipients(
    tx: StoreTransaction, own_org_id: str, org_ids: Sequence[str],
    coalition_id: str | None = None,
) -> list[Recipient]:
    """The recipients as members of the coalition ``coalition_id`` (any, when None);
    :class:`UnknownRecipient` for the first bad one."""
    return checked_recipients(own_org_id, org_ids, await tx.orgs.verified_ids(coalition_id),
                              coalition_id)


def checked_recipients(
    own_org_id: str, org_ids: Sequence[str], verified: Collection[str],
    coalition_id: str | None = None,
) -> list[Recipient]:
    """:func:`verified_recipients` against the ``verified`` member org ids already read."""
    if len(set(org_ids)) != len(org_ids):
        raise UnknownRecipient(next(o for o in org_ids if org_ids.count(o) > 1), "listed twice")
    for org_id in org_ids:
        if org_id == own_org_id:
            raise UnknownRecipient(org_id, "is this node's own organisation")
        if org_id not in verified:
            raise UnknownRecipient(org_id, "is not a verified member of the coalition")
    return [Recipient.member(org_id, coalition_id) for org_id in org_ids]


@dataclass(frozen=True)
class _Planned:
    """What one record's share (or retraction) sends: history is filed under ``target``."""

    target: RecordBase[Any]
    sent: Sequence[Outgoing]


def _audit_details(planned: _Planned, action: str) -> dict[str, Any]:
    target = planned.target
    recipients: dict[str, list[str]] = {
        i.recipient: [] if action == RETRACT else list(i.fields) for i in planned.sent}
    return {"record": target.record_id, "version": target.version, "kind": target.kind,
            "recipients": recipients}


async def _queue(
    tx: StoreTransaction,
    planned: Sequence[_Planned],
    rooms: Mapping[str, str],
    enqueue: Enqueue,
    *,
    action: str,
    actor: str,
    at: datetime,
) -> None:
    """Queue every copy (one outbox call per room and set of identical tokens: per recipient,
    or once for an alike audience), file the history, write the audit."""
    tokens: dict[str, list[str]] = {}
    for plan in planned:
        for item in plan.sent:
            tokens.setdefault(item.recipient, []).append(item.token)
    together: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for recipient, queued in tokens.items():
        together.setdefault((rooms[recipient], tuple(queued)), []).append(recipient)
    for (room_id, queued_tokens), recipients in together.items():
        await enqueue(tx.session, room_id, recipients, list(queued_tokens))
    await ShareRepository(tx.session, tx.cipher).add_many([
        NewShare(record_id=plan.target.record_id, version=plan.target.version,
                 kind=plan.target.kind, action=action, recipient=item.recipient,
                 fields=() if action == RETRACT else item.fields,
                 room_id=rooms[item.recipient], actor=actor, at=at)
        for plan in planned for item in plan.sent
    ])
    name = RETRACT_ACTION if action == RETRACT else SHARE_ACTION
    if len(planned) == 1:
        (plan,) = planned
        await tx.audit.append(actor, name, target=plan.target.record_id,
                              details=_audit_details(plan, action))
    else:  # a bulk share: one entry naming every record
        await tx.audit.append(actor, name, details={
            "records": [_audit_details(plan, action) for plan in planned]})


async def rooms_of(org_ids: Sequence[str], pair_room_for: PairRoomFor) -> dict[str, str]:
    """Each member's pair room, up to :data:`PAIR_ROOMS_AT_ONCE` made at the same time (a
    first share with fifty members made fifty rooms one after the other). Every room is
    finished, made or not, before the first failure is raised: one half made and forgotten
    would leave the member a room nobody posts in."""
    gate = asyncio.Semaphore(PAIR_ROOMS_AT_ONCE)

    async def one(org_id: str) -> str:
        async with gate:
            return await pair_room_for(org_id)

    found = await asyncio.gather(*(one(org_id) for org_id in org_ids), return_exceptions=True)
    for outcome in found:
        if isinstance(outcome, BaseException):
            raise outcome
    return {org_id: str(room) for org_id, room in zip(org_ids, found, strict=True)}


async def share_records(
    tx_factory: Callable[[], Any],
    keys: OrgKeys,
    records: Sequence[RecordBase[Any]],
    recipient_org_ids: Sequence[str],
    fields: Collection[str] | None = None,
    *,
    actor: str,
    pair_room_for: PairRoomFor,
    enqueue: Enqueue,
    issued_at: int,
    verified: Collection[str] | None = None,
    new_records: bool = False,
    files: FilesFor | None = None,
    alongside: Alongside | None = None,
    coalition_id: str | None = None,
    alike: bool = False,
) -> list[ShareReceipt]:
    """Share each of ``records`` with each recipient (see the module docstring); all or nothing.

    ``tx_factory`` opens a store transaction (``node.store.transaction``). Recipients, retractions
    and consent are checked for every record first, then pair rooms are made sure of (this may
    create rooms on the homeserver), then everything is queued and recorded in one transaction.
    A caller that has just read the ``verified`` member ids in the same transaction passes them
    instead of having them read again; ``new_records`` (ids made for this share) cannot have
    been retracted. ``alongside`` runs in the transaction that queues the share, before it
    commits: what must be recorded with the share or not at all (a file's custody entry).
    Recipients must be verified members of ``coalition_id``, which every token names; a
    case's consent must cover that coalition (decision 0032). ``alike``: one token per record
    for all recipients (see the module docstring), for records they all get in one room.
    """
    async with tx_factory() as tx:
        recipients = (checked_recipients(keys.org_id, recipient_org_ids, verified, coalition_id)
                      if verified is not None
                      else await verified_recipients(tx, keys.org_id, recipient_org_ids,
                                                     coalition_id))
        retracted = set() if new_records else await ShareRepository(
            tx.session, tx.cipher).retracted_among([record.record_id for record in records])
        if any(isinstance(record, CaseRecord) for record in records):
            first = await first_coalition_id(tx)
            records = [with_consent_scope(record, first) if isinstance(record, CaseRecord)
                       else record for record in records]
    if retracted:
        raise AlreadyRetracted(f"record {sorted(retracted)[0]} was retracted")
    batches = [outgoing(record, recipients, fields, keys=keys, issued_at=issued_at, files=files,
                        alike=alike)
               for record in records]
    rooms = await rooms_of([r.org_id for r in recipients], pair_room_for)
    at = datetime.fromtimestamp(issued_at, UTC)
    async with tx_factory() as tx:
        await _queue(tx, [_Planned(record, sent) for record, sent in zip(records, batches,
                                                                         strict=True)],
                     rooms, enqueue, action=SHARE, actor=actor, at=at)
        if alongside is not None:
            await alongside(tx)
    return [ShareReceipt(record.record_id, record.version, record.kind, tuple(sent), rooms)
            for record, sent in zip(records, batches, strict=True)]


async def share_record(
    tx_factory: Callable[[], Any],
    keys: OrgKeys,
    record: RecordBase[Any],
    recipient_org_ids: Sequence[str],
    fields: Collection[str] | None = None,
    *,
    actor: str,
    pair_room_for: PairRoomFor,
    enqueue: Enqueue,
    issued_at: int,
    coalition_id: str | None = None,
) -> ShareReceipt:
    """Share one record through ``coalition_id``: :func:`share_records` with a single
    record."""
    (receipt,) = await share_records(tx_factory, keys, [record], recipient_org_ids, fields,
                                     actor=actor, pair_room_for=pair_room_for, enqueue=enqueue,
                                     issued_at=issued_at, coalition_id=coalition_id)
    return receipt


async def retract_record(
    tx_factory: Callable[[], Any],
    keys: OrgKeys,
    target: RecordBase[Any],
    *,
    reason: str,
    note: str | None,
    retraction_id: str,
    actor: str,
    pair_room_for: PairRoomFor,
    enqueue: Enqueue,
    issued_at: int,
) -> ShareReceipt:
    """Send a signed retraction of ``target`` to everyone who was sent any version of it."""
    async with tx_factory() as tx:
        history = ShareRepository(tx.session, tx.cipher)
        recipient_ids = await history.recipients(target.record_id)
    if not recipient_ids:
        raise NothingToRetract(f"record {target.record_id} was never shared")
    record = retraction_record(keys.org_id, target.record_id, reason, note,
                               record_id=retraction_id, issued_at=issued_at)
    recipients = [Recipient.member(org_id) for org_id in recipient_ids]
    sent = outgoing(record, recipients, None, keys=keys, issued_at=issued_at)
    rooms = await rooms_of(recipient_ids, pair_room_for)
    at = datetime.fromtimestamp(issued_at, UTC)
    async with tx_factory() as tx:
        await _queue(tx, [_Planned(target, sent)], rooms, enqueue, action=RETRACT, actor=actor,
                     at=at)
    return ShareReceipt(target.record_id, target.version, target.kind, tuple(sent), rooms)


# --- on a node ---------------------------------------------------------------------------------


class _PairRooms:
    """Pair rooms for a share, opening a Matrix connection only if one must be created."""

    def __init__(self, node: Node, stack: AsyncExitStack) -> None:
        self._node, self._stack = node, stack
        self._transport: MatrixTransport | None = None
        self._opening = asyncio.Lock()

    async def room_for(self, org_id: str) -> str:
        existing = await pair_room_of(self._node, org_id)
        if existing is not None:
            return existing
        async with self._opening:
            if self._transport is None:
                self._transport = await self._stack.enter_async_context(self._node.transport())
        return await ensure_pair_room(self._node, self._transport, org_id)


@asynccontextmanager
async def in_session(session: AsyncSession, node: Node) -> AsyncIterator[StoreTransaction]:
    """The store, inside an already open transaction (a record handler's, the inbox's)."""
    yield StoreTransaction(session, node.store.cipher, utc_now)


async def node_enqueue(node: Node) -> Enqueue:
    """:data:`Enqueue` on this node's outbox."""
    cipher = StoreCipher(node.store.cipher)

    async def queue(session: AsyncSession, room_id: str, recipient_org_ids: Sequence[str],
                    tokens: Sequence[str]) -> list[int]:
        return await enqueue_many(session, cipher, room_id, recipient_org_ids, tokens,
                                  queued_at_ms=int(time.time() * 1000))

    return queue


InTransaction = Callable[[StoreTransaction], Awaitable[object]]


async def share_in_room(
    node: Node,
    records: Sequence[RecordBase[Any]],
    recipient_org_ids: Sequence[str],
    room_id: str,
    fields: Collection[str] | None = None,
    *,
    actor: str,
    issued_at: int,
    also: InTransaction | None = None,
    open_session: AsyncSession | None = None,
    urgent: bool = False,
    verified: Collection[str] | None = None,
    new_records: bool = False,
    coalition_id: str | None = None,
    alike: bool = False,
) -> list[int]:
    """:func:`share_records` into one room (the coalition room, an alert room) instead of pair
    rooms, in one transaction; the outbox item ids. The records go through ``coalition_id``:
    by default the coalition whose room ``room_id`` is, else the node's only coalition.

    ``also`` runs in the same transaction, just before the records are queued. With
    ``open_session`` all of it happens inside that open transaction (a record handler answering
    from the inbox's transaction) and the sync engine is not woken: the inbox wakes it once it
    has committed. ``urgent`` records (alerts) are sealed in the transaction that queues them
    and posted as soon as it commits, when this process runs the sync engine; inside an
    ``open_session`` the post is a :func:`sync.host.after_commit` action, for whoever commits
    it to run. ``verified``, ``new_records`` and ``alike`` (one token and one envelope for all
    the recipients, decision 0033) are passed to :func:`share_records`.
    """
    queue = await node_enqueue(node)
    pending = [also] if also is not None else []
    item_ids: list[int] = []
    if coalition_id is None:
        coalition = await node.coalition_of_room(room_id) or await node.chosen_coalition(None)
        coalition_id = coalition.coalition_id

    async def the_room(_org_id: str) -> str:
        return room_id

    async def enqueue(session: AsyncSession, room_id: str, recipient_org_ids: Sequence[str],
                      tokens: Sequence[str]) -> list[int]:
        while pending:
            await pending.pop()(StoreTransaction(session, node.store.cipher, utc_now))
        queued: list[int] = await queue(session, room_id, recipient_org_ids, tokens)
        item_ids.extend(queued)
        return queued

    outbox = node.outbox if urgent else None

    async def share(session: AsyncSession) -> None:
        await share_records(lambda: in_session(session, node), node.keys, records,
                            recipient_org_ids, fields, actor=actor, pair_room_for=the_room,
                            enqueue=enqueue, issued_at=issued_at, verified=verified,
                            new_records=new_records, coalition_id=coalition_id, alike=alike)
        if outbox is not None:
            sealed = await outbox.bundle_in(session, item_ids)
            if sealed:
                after_commit(session, lambda: outbox.post_now(sealed))

    if open_session is not None:
        await share(open_session)
        return item_ids
    async with node.store.transaction() as tx:
        await share(tx.session)
        follow_ups = committed_actions(tx.session)
    if follow_ups:
        await run_follow_ups(follow_ups)
    else:
        node.wake_sync()
    return item_ids


async def run_follow_ups(actions: Sequence[Callable[[], None]]) -> None:
    """Run what a committed transaction queued with :func:`sync.host.after_commit` (the posts
    of urgent records): the posts get going before the caller builds its answer."""
    run_committed(actions)
    await asyncio.sleep(0)


async def share_from_node(
    node: Node,
    record: RecordBase[Any],
    recipient_org_ids: Sequence[str],
    fields: Collection[str] | None = None,
    *,
    actor: str,
    issued_at: int,
    files: FilesFor | None = None,
    alongside: Alongside | None = None,
    coalition_id: str | None = None,
) -> ShareReceipt:
    """:func:`share_record` with this node's keys, store, pair rooms and outbox, through
    ``coalition_id`` (the node's only coalition when None).

    Raises ``node.core.rooms.PairRoomError`` if a pair room is missing and cannot be created now.
    """
    (receipt,) = await share_many_from_node(node, [record], recipient_org_ids, fields,
                                            actor=actor, issued_at=issued_at, files=files,
                                            alongside=alongside, coalition_id=coalition_id)
    return receipt


async def share_many_from_node(
    node: Node,
    records: Sequence[RecordBase[Any]],
    recipient_org_ids: Sequence[str],
    fields: Collection[str] | None = None,
    *,
    actor: str,
    issued_at: int,
    files: FilesFor | None = None,
    alongside: Alongside | None = None,
    coalition_id: str | None = None,
) -> list[ShareReceipt]:
    """:func:`share_records` with this node's keys, store, pair rooms and outbox (imports,
    bulk shares): one transaction for all of them, through ``coalition_id`` (the node's only
    coalition when None)."""
    coalition = await node.chosen_coalition(coalition_id)
    async with AsyncExitStack() as stack:
        receipts = await share_records(
            node.store.transaction, node.keys, records, recipient_org_ids, fields, actor=actor,
            pair_room_for=_PairRooms(node, stack).room_for, enqueue=await node_enqueue(node),
            issued_at=issued_at, files=files, alongside=alongside,
            coalition_id=coalition.coalition_id,
        )
    node.wake_sync()
    return receipts


async def retract_from_node(
    node: Node,
    target: RecordBase[Any],
    *,
    reason: str,
    note: str | None,
    actor: str,
    issued_at: int,
) -> ShareReceipt:
    """:func:`retract_record` with this node's keys, store, pair rooms and outbox."""
    async with AsyncExitStack() as stack:
        receipt = await retract_record(
            node.store.transaction, node.keys, target, reason=reason, note=note,
            retraction_id=new_record_id(), actor=actor,
            pair_room_for=_PairRooms(node, stack).room_for, enqueue=await node_enqueue(node),
            issued_at=issued_at,
        )
    node.wake_sync()
    return receipt
