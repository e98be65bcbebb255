"""Urgent alerts (M8): send, acknowledge, respond, update, close, escalate.

- **Send**: an ``alert`` record (:class:`schemas.payloads.Alert`) goes to one coalition
  (decision 0032: chosen, or the node's only one) through the one sharing path
  (:func:`node.core.sharing.share_records`), alike (decision 0033): one SD-JWT whose ``aud``
  lists every recipient (verified members of that coalition only), sealed in one envelope to
  all of them, queued in this node's alert room of that coalition
  (:mod:`node.features.alerts.room`), plus a content-free ``m.notice``.
  Country,
  place and the case link may be withheld (``withhold``); type, urgency, asks, text and status
  are always disclosed.
- **Acknowledge**: a member node that verifies an alert answers at once, in the same inbox
  transaction, with an ``alert-ack`` record ("delivered") sealed to the issuer, through the
  coalition the alert named: in the pair room with the issuer when this node has one (none is
  made for it), else in the room the alert came in, where every other member would see it too
  (decision 0033). Staff then answer "seen" or "helping"
  (with what), as new versions of the same ack record; the highest version is the member's
  answer. Offers accumulate.
- **Track**: the issuer keeps, per recipient, every answer with its time (delivered / seen /
  helping) and what is offered, each offer with its time; members whose directory capabilities
  match an ask are flagged ``matches_ask``.
- **Escalate**: a recipient that has not acknowledged after ``escalate_after_seconds`` is sent
  the alert again (a fresh SD-JWT of the same version, addressed to it alone) and marked
  ``resends``.
- **Update / close / reopen**: a new version with another status ("released", "closed") and one
  more signed update in its ordered list, to the same recipients with the same disclosure (one
  token and one envelope for all, like the alert); the alert's text stays as first sent.
  Reopening a closed alert needs a reason (:mod:`node.features.alerts.timeline` holds these
  rules).
- **Late**: a received alert whose issue time is more than ``late_after_seconds`` before its
  arrival (a node that was offline catches up through the sync layer) is marked late.

Leaving a coalition (:func:`on_coalition_left`) leaves its alert rooms; alerts of it are kept,
shown as from a coalition this node left, and are no longer escalated or acknowledged.

State lives in the store's encrypted settings, one entry per alert (``alert.`` and a digest of
issuer and id): alerts are few, and this needs no table of its own. Entries saved before alerts
kept updates and answer times are read as they are (:meth:`AlertState.from_older_shape`), their
unknown times as ``None``; those saved before decision 0032 as of the node's first coalition.
Nothing here logs alert content.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from federation.transport import MatrixTransport
from node.core.duties import repeat
from node.core.rooms import answer_room
from node.core.runtime import Node
from node.core.sharing import checked_recipients, in_session, run_follow_ups, share_in_room
from node.core.store import StoreTransaction
from node.core.store.coalitions import Coalition
from node.core.store.tables import StoreMeta
from node.features.alerts.room import (
    ensure_alert_room,
    first_coalition_id,
    forget_alert_rooms,
    joined_alert_room_coalition,
    leave_rooms,
    own_alert_rooms,
    post_notice,
    usable,
)
from node.features.alerts.timeline import (
    ACTIVE,
    CLOSED,
    AnswerEvent,
    OfferEntry,
    TimelineEntry,
    TimelineRefused,
    accumulate_offers,
    current_answer,
    legacy_update,
    merge_updates,
    missing_updates,
    next_update,
    offers_of_ack,
    read_updates,
    record_answer,
    timeline,
    wire_offers,
)
from schemas.common import RecordRef
from schemas.ids import new_record_id
from schemas.payloads import Alert, AlertAck, AlertUpdate
from schemas.records import build_record, record_to_wire
from sync.host import VerifiedRecord, after_commit, committed_actions
from sync.outbox import item_states

log = logging.getLogger("minga.alerts")

SETTINGS_KEY: Final = "alert_settings"
STATE_PREFIX: Final = "alert."
UPDATE_PATHS: Final = tuple(f"updates.{name}" for name in AlertUpdate.model_fields)
ALWAYS_DISCLOSED: Final = ("alert_type", "asks", "status", "text", "urgency", *UPDATE_PATHS)
WITHHOLDABLE: Final = ("case", "country", "place")
SENT, DELIVERED, SEEN, HELPING = "sent", "delivered", "seen", "helping"
STAFF_ANSWERS: Final = frozenset({SEEN, HELPING})
MAX_RESENDS: Final = 6
"""A member still silent after this many re-sends is left to people (the page shows it)."""


class AlertError(Exception):
    """An alert action was refused; the message names ids and fields, never content. ``field``
    names the input at fault, when one is."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownAlert(AlertError):
    def __init__(self, issuer: str, record_id: str) -> None:
        super().__init__(f"no alert {record_id} from {issuer}")


class AlertSettings(BaseModel):
    escalate_after_seconds: int = Field(default=600, ge=1)
    late_after_seconds: int = Field(default=120, ge=0)


def _untimed_offers(values: dict[str, Any], name: str) -> None:
    """Offers saved as bare codes (before offers had times) become offers of unknown time."""
    offers = values.get(name)
    if isinstance(offers, list):
        values[name] = [{"capability": o} if isinstance(o, str) else o for o in offers]


def _untimed_answer(values: dict[str, Any], status_name: str) -> None:
    """An answer saved without its history becomes one answer of unknown time."""
    status = values.get(status_name)
    if "answers" not in values and status not in (None, SENT):
        values["answers"] = [{"version": values.get("ack_version") or 1, "status": status}]


class RecipientState(BaseModel):
    """Where one recipient stands with one of our alerts."""

    org_id: str
    status: str = SENT
    answers: list[AnswerEvent] = Field(default_factory=list)
    offers: list[OfferEntry] = Field(default_factory=list)
    note: str | None = None
    ack_version: int = 0
    matches_ask: bool = False
    last_sent_at: int
    resends: int = 0

    @model_validator(mode="before")
    @classmethod
    def from_older_shape(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            _untimed_offers(data, "offers")
            _untimed_answer(data, "status")
        return data

    @property
    def answered_at(self) -> int | None:
        """When the current answer was given (``None``: not answered, or time unknown)."""
        answer = current_answer(self.answers)
        return None if answer is None or answer.status == SENT else answer.at


class AlertState(BaseModel):
    """One alert as this node knows it: ours (with recipients) or received (with our answer)."""

    issuer: str
    record_id: str
    version: int
    own: bool
    claims: dict[str, Any]
    issued_at: int
    arrived_at: int
    late: bool = False
    room_id: str
    coalition_id: str | None = None
    """The coalition it went through (decision 0032); read as the node's first coalition for
    state saved before, ``None`` only on a node in no coalition."""
    coalition_left: bool = False
    """This node left that coalition: the alert waits for nothing any more."""
    updated_at: int
    updates: list[AlertUpdate] = Field(default_factory=list)
    """Merged by order number; for ours, the same list as ``claims["updates"]``."""
    # ours
    fields: list[str] = Field(default_factory=list)
    recipients: list[RecipientState] = Field(default_factory=list)
    # received
    answer: str | None = None
    answers: list[AnswerEvent] = Field(default_factory=list)
    answer_offers: list[OfferEntry] = Field(default_factory=list)
    ack_record_id: str | None = None
    ack_version: int = 0
    ack_owed: bool = False  # our acknowledgement is due and not queued yet

    @model_validator(mode="before")
    @classmethod
    def from_older_shape(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("own", True):
            data = dict(data)
            _untimed_offers(data, "answer_offers")
            _untimed_answer(data, "answer")
        return data

    @property
    def key(self) -> str:
        return state_key(self.issuer, self.record_id)

    @property
    def status(self) -> str:
        return str(self.claims.get("status", ACTIVE))

    @property
    def unacknowledged(self) -> bool:
        """Ours: a recipient has not acknowledged; received: our staff have not answered."""
        if self.status == CLOSED or self.coalition_left:
            return False
        if self.own:
            return any(r.status == SENT for r in self.recipients)
        return self.answer not in STAFF_ANSWERS

    @property
    def missing_updates(self) -> list[int]:
        return missing_updates(self.updates, self.version)

    def recipient(self, org_id: str) -> RecipientState | None:
        return next((r for r in self.recipients if r.org_id == org_id), None)


def alert_timeline(state: AlertState) -> list[TimelineEntry]:
    """The alert's updates in order, reopenings marked."""
    return timeline(state.updates)


def state_key(issuer: str, record_id: str) -> str:
    # Settings names are short (64 characters with their prefix) and in clear: a digest.
    digest = hashlib.sha256(f"{issuer}\n{record_id}".encode()).hexdigest()[:40]
    return STATE_PREFIX + digest


def ordered(states: Sequence[AlertState]) -> list[AlertState]:
    """Unacknowledged first, then newest first."""
    return sorted(states, key=lambda s: (not s.unacknowledged, -s.issued_at, s.record_id))


def arrival_order(states: Sequence[AlertState]) -> list[AlertState]:
    """Oldest issue first: the order in which a member should read what it missed."""
    return sorted(states, key=lambda s: (s.issued_at, s.record_id))


def capability_matches(asks: Collection[str], capabilities: Collection[str]) -> bool:
    return bool(set(asks) & set(capabilities))


# --- store ------------------------------------------------------------------------------------


async def load_state(tx: StoreTransaction, issuer: str, record_id: str) -> AlertState | None:
    states = await _load_states(tx, [state_key(issuer, record_id)])
    return states[0] if states else None


async def _load_states(tx: StoreTransaction, keys: Collection[str]) -> list[AlertState]:
    """The alert states stored under ``keys`` (one query; missing keys are left out); those
    saved before decision 0032 are of the node's first coalition."""
    saved = [AlertState.model_validate(value) for value in await tx.settings.get_many(*keys)
             if value is not None]
    if any(state.coalition_id is None for state in saved):
        first = await first_coalition_id(tx)
        for state in saved:
            state.coalition_id = state.coalition_id or first
    return saved


async def save_state(tx: StoreTransaction, state: AlertState) -> None:
    await tx.settings.set(state.key, state.model_dump(mode="json"))


async def all_states(tx: StoreTransaction) -> list[AlertState]:
    names = await tx.session.scalars(
        select(StoreMeta.name).where(StoreMeta.name.startswith("setting." + STATE_PREFIX)))
    return await _load_states(tx, [name.removeprefix("setting.") for name in names])


async def list_alerts(node: Node) -> list[AlertState]:
    async with node.store.read() as tx:
        return ordered(await all_states(tx))


async def get_alert(node: Node, issuer: str, record_id: str) -> AlertState:
    async with node.store.read() as tx:
        state = await load_state(tx, issuer, record_id)
    if state is None:
        raise UnknownAlert(issuer, record_id)
    return state


async def alert_settings(node: Node) -> AlertSettings:
    async with node.store.read() as tx:
        return await _settings(tx)


async def _settings(tx: StoreTransaction) -> AlertSettings:
    return AlertSettings.model_validate(await tx.settings.get(SETTINGS_KEY) or {})


async def set_alert_settings(node: Node, settings: AlertSettings) -> None:
    async with node.store.transaction() as tx:
        await tx.settings.set(SETTINGS_KEY, settings.model_dump(mode="json"))


# --- live changes -------------------------------------------------------------------------------


class AlertBus:
    """Wakes open pages (server-sent events) when an alert changed on this node: notified once
    the change has committed (from a record handler, by :func:`sync.host.after_commit`)."""

    def __init__(self) -> None:
        self._listeners: set[asyncio.Event] = set()
        self.closed = False

    def close(self) -> None:
        """The node is stopping: wake every listener for the last time."""
        self.closed = True
        self.notify()

    def notify(self) -> None:
        for listener in self._listeners:
            listener.set()

    @asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Event]:
        event = asyncio.Event()
        self._listeners.add(event)
        try:
            yield event
        finally:
            self._listeners.discard(event)


def bus_of(node: Node) -> AlertBus:
    return node.part(AlertBus)


# --- sending ----------------------------------------------------------------------------------


def _fields(withhold: Collection[str]) -> list[str]:
    unknown = set(withhold) - set(WITHHOLDABLE)
    if unknown:
        raise AlertError(f"cannot withhold {', '.join(sorted(unknown))}; only "
                         f"{', '.join(WITHHOLDABLE)}")
    return sorted(set(ALWAYS_DISCLOSED) | (set(WITHHOLDABLE) - set(withhold)))


def member_capabilities(entry: dict[str, Any]) -> list[str]:
    """The capabilities a member's directory entry names (its signed profile)."""
    profile = entry.get("profile")
    listed = profile.get("capabilities") if isinstance(profile, dict) else None
    return [c for c in listed if isinstance(c, str)] if isinstance(listed, list) else []


@dataclass(frozen=True)
class _Audience:
    coalition_id: str
    recipients: list[str]
    verified: frozenset[str]
    capabilities: dict[str, list[str]]
    room: dict[str, Any] | None


async def _audience(tx: StoreTransaction, node: Node, coalition: Coalition,
                    recipients: Sequence[str] | None) -> _Audience:
    """Who gets the alert (checked: verified members of ``coalition``), what they can do, this
    node's alert room of that coalition."""
    cid = coalition.coalition_id
    members = await tx.orgs.members(verified_only=True, coalition_id=cid)
    to = (list(recipients) if recipients is not None
          else sorted(m.org_id for m in members if m.org_id != node.org_id))
    if not to:
        raise AlertError("the coalition has no other verified member to alert")
    verified = frozenset(m.org_id for m in members)
    checked_recipients(node.org_id, to, verified, cid)  # refuses before any room is made
    room = usable((await own_alert_rooms(tx)).get(cid))
    return _Audience(cid, to, verified,
                     {m.org_id: member_capabilities(m.entry) for m in members}, room)


async def send_alert(
    node: Node,
    alert: Alert,
    *,
    recipients: Sequence[str] | None = None,
    withhold: Collection[str] = (),
    coalition_id: str | None = None,
    actor: str,
    now: int,
) -> AlertState:
    """Send a new alert in coalition ``coalition_id`` (the node's only one when None) to
    ``recipients`` (default: every verified member of it); its state.

    Audience, alert state and share commit in one transaction; Matrix is called before it only
    when the alert room must be created or someone invited (the write lock is never held over
    the network), and then the audience is read again."""
    fields = _fields(withhold)
    coalition = await node.chosen_coalition(coalition_id)
    record = build_record(node.org_id, alert, record_id=new_record_id(), issued_at=now)
    prepared: str | None = None
    while True:
        async with node.store.transaction() as tx:
            audience = await _audience(tx, node, coalition, recipients)
            room_id = _ready_room(audience) or prepared
            if room_id is not None:
                state = _sent_state(record, audience, fields, room_id, now)
                await save_state(tx, state)
                item_ids = await share_in_room(
                    node, [record], audience.recipients, room_id, fields, actor=actor,
                    issued_at=now, open_session=tx.session, urgent=True,
                    verified=audience.verified, new_records=True,
                    coalition_id=audience.coalition_id, alike=True)
                follow_ups = committed_actions(tx.session)
        if room_id is not None:
            break
        async with node.transport() as transport:
            prepared = await ensure_alert_room(node, transport, audience.recipients,
                                               audience.coalition_id)
    await run_follow_ups(follow_ups)
    _notice_after(node, state, item_ids)
    bus_of(node).notify()
    return state


def _ready_room(audience: _Audience) -> str | None:
    """The alert room, if it exists with every recipient invited."""
    saved = audience.room
    if saved is not None and set(audience.recipients) <= set(saved["invited"]):
        return str(saved["room_id"])
    return None


def _sent_state(record: Any, audience: _Audience, fields: Sequence[str], room_id: str,
                now: int) -> AlertState:
    claims = dict(record_to_wire(record)["payload"])
    asks = claims.get("asks", [])
    return AlertState(
        issuer=record.issuer, record_id=record.record_id, version=record.version, own=True,
        claims=claims, issued_at=now, arrived_at=now, room_id=room_id,
        coalition_id=audience.coalition_id, updated_at=now, fields=list(fields),
        recipients=[RecipientState(org_id=o, last_sent_at=now, matches_ask=capability_matches(
            asks, audience.capabilities.get(o, []))) for o in audience.recipients])


# The push notice waits until the sealed alert has left and a member has acknowledged it (or
# NOTICE_ACK_WAIT_SECONDS have passed): posted earlier, it competes with the alert for the same
# rooms and homeservers while members are opening and storing it. Its readers are people, to
# whom a fraction of a second is nothing.
class PendingNotices(set[asyncio.Task[None]]):
    """The push notices this node has still to post (a part of the node)."""


NOTICE_WAIT_SECONDS: Final = 30.0
NOTICE_ACK_WAIT_SECONDS: Final = 3.0
_NOTICE_POLL_SECONDS: Final = 0.1


def _notice_after(node: Node, state: AlertState, item_ids: Sequence[int]) -> None:
    task = asyncio.create_task(_post_notice_when_sent(node, state, item_ids))
    pending = node.part(PendingNotices)
    pending.add(task)
    task.add_done_callback(pending.discard)


async def _post_notice_when_sent(node: Node, state: AlertState, item_ids: Sequence[int]) -> None:
    try:
        await _until(node, lambda tx: _all_sent(tx, item_ids), NOTICE_WAIT_SECONDS)
        await _until(node, lambda tx: _acknowledged(tx, state), NOTICE_ACK_WAIT_SECONDS)
        async with node.transport() as transport:
            await post_notice(node, transport, state.room_id, f"minga-alert-{state.record_id}")
    except Exception as error:  # a push notice is a courtesy; the alert itself is queued
        log.warning("alert notice not posted: %s", type(error).__name__)


async def _until(node: Node, done: Callable[[StoreTransaction], Awaitable[bool]],
                 seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(_NOTICE_POLL_SECONDS)  # nothing is done at once: look later
        async with node.store.read() as tx:
            if await done(tx):
                return


async def _all_sent(tx: StoreTransaction, item_ids: Sequence[int]) -> bool:
    states = await item_states(tx.session, item_ids)
    return all(s.state == "sent" for s in states.values())


async def _acknowledged(tx: StoreTransaction, state: AlertState) -> bool:
    current = await load_state(tx, state.issuer, state.record_id)
    return current is not None and any(r.status != SENT for r in current.recipients)


async def notices_posted(node: Node) -> None:
    """Wait for every pending push notice of ``node`` (before a short-lived process exits)."""
    pending = node.part(PendingNotices)
    if pending:
        await asyncio.gather(*list(pending), return_exceptions=True)


async def update_alert(
    node: Node, record_id: str, *, status: str, text: str | None = None,
    reason: str | None = None, actor: str, now: int,
) -> AlertState:
    """A new version of our alert with another status and one more update (``text``; a
    ``reason``, needed to reopen a closed alert), to the same recipients. The alert's own text
    is kept as first sent."""
    state = await get_alert(node, node.org_id, record_id)
    if not state.own:
        raise AlertError(f"alert {record_id} is not this node's")
    coalition_id = await _active_coalition(node, state)
    try:
        update = next_update(state.status, state.version, status=status, text=text,
                             reason=reason, by=node.org_id, at=now)
    except TimelineRefused as refused:
        raise AlertError(str(refused), field=refused.field) from None
    updates = merge_updates(state.updates, [update])
    alert = Alert.model_validate({**state.claims, "status": status, "updates": [
        u.model_dump(mode="json", exclude_none=True) for u in updates]})
    record = build_record(node.org_id, alert, record_id=record_id, issued_at=now,
                          version=state.version + 1)
    recipients = await _still_members(node, coalition_id, [r.org_id for r in state.recipients])
    state.version, state.updated_at, state.updates = record.version, now, updates
    state.claims = dict(record_to_wire(record)["payload"])
    # Alerts sent before updates were kept did not disclose them yet.
    state.fields = sorted({*state.fields, *UPDATE_PATHS})

    async def remember(tx: StoreTransaction) -> None:
        current = await load_state(tx, node.org_id, record_id)
        assert current is not None
        current.version, current.updated_at, current.claims = (
            state.version, state.updated_at, state.claims)
        current.updates, current.fields = state.updates, state.fields
        await save_state(tx, current)
        state.recipients = current.recipients

    await share_in_room(node, [record], recipients, state.room_id, state.fields, actor=actor,
                        issued_at=now, also=remember, urgent=True, coalition_id=coalition_id,
                        alike=True)
    bus_of(node).notify()
    return state


async def escalate_due(node: Node, *, now: int, actor: str = "escalation") -> dict[str, list[str]]:
    """Re-send every active alert of ours to each recipient still silent after the configured
    time; per alert record id, who it was re-sent to."""
    settings = await alert_settings(node)
    active = {c.coalition_id for c in await node.coalitions()}
    resent: dict[str, list[str]] = {}
    for state in await list_alerts(node):
        if not state.own or state.status == CLOSED or state.coalition_id not in active:
            continue
        silent = await _still_members(node, state.coalition_id, [
            r.org_id for r in state.recipients if r.status == SENT and r.resends < MAX_RESENDS
            and now - r.last_sent_at >= settings.escalate_after_seconds])
        if silent:
            await _resend(node, state, silent, actor=actor, now=now)
            resent[state.record_id] = silent
    if resent:
        bus_of(node).notify()
    return resent


async def _resend(node: Node, state: AlertState, silent: Sequence[str], *, actor: str,
                  now: int) -> None:
    alert = Alert.model_validate(state.claims)
    record = build_record(node.org_id, alert, record_id=state.record_id, version=state.version,
                          issued_at=state.issued_at)

    async def remember(tx: StoreTransaction) -> None:
        current = await load_state(tx, node.org_id, state.record_id)
        assert current is not None
        for recipient in current.recipients:
            if recipient.org_id in silent:
                recipient.resends += 1
                recipient.last_sent_at = now
        current.updated_at = now
        await save_state(tx, current)

    await share_in_room(node, [record], silent, state.room_id, state.fields, actor=actor,
                        issued_at=now, also=remember, urgent=True,
                        coalition_id=state.coalition_id)
    log.info("alert %s re-sent to %d silent member(s)", state.record_id, len(silent))


async def run_escalation(node: Node, *, every_seconds: float = 30.0) -> None:
    """Escalate now and then until cancelled (``minga run``)."""
    await repeat(lambda now: escalate_due(node, now=now), every_seconds=every_seconds,
                 failure="alert escalation failed", log=log)


async def _still_members(node: Node, coalition_id: str | None, org_ids: Sequence[str]
                         ) -> list[str]:
    """Those of ``org_ids`` still verified members of the coalition (one that left it, or was
    expelled, is sent nothing more)."""
    async with node.store.read() as tx:
        verified = await tx.orgs.verified_ids(coalition_id) if coalition_id else frozenset()
    return [org_id for org_id in org_ids if org_id in verified]


async def _active_coalition(node: Node, state: AlertState) -> str:
    """The coalition the alert went through, if this node is still in it."""
    active = {c.coalition_id for c in await node.coalitions()}
    if state.coalition_id is None or state.coalition_id not in active:
        raise AlertError(f"alert {state.record_id} went through coalition {state.coalition_id},"
                         " which this node left", field="coalition")
    return state.coalition_id


# --- answering ----------------------------------------------------------------------------------


def _ack_record(node_org: str, state: AlertState, *, now: int) -> Any:
    assert state.ack_record_id is not None
    offers, offered = wire_offers(state.answer_offers)
    ack = AlertAck(alert=RecordRef(issuer=state.issuer, record_id=state.record_id),
                   status=state.answer or DELIVERED, offers=offers, offered=offered)
    return build_record(node_org, ack, record_id=state.ack_record_id, issued_at=now,
                        version=state.ack_version)


async def respond(
    node: Node, issuer: str, record_id: str, *, answer: str, offers: Sequence[str] = (),
    actor: str, now: int,
) -> AlertState:
    """Our staff's answer to a received alert: "seen", or "helping" with ``offers``, which add
    to what we offered before."""
    if answer not in STAFF_ANSWERS:
        raise AlertError(f"answer: must be one of {', '.join(sorted(STAFF_ANSWERS))}",
                         field="answer")
    state = await get_alert(node, issuer, record_id)
    if state.own:
        raise AlertError("an alert of this node cannot be answered by this node")
    coalition_id = await _active_coalition(node, state)
    state.answer = answer
    state.answer_offers = accumulate_offers(
        state.answer_offers, [OfferEntry(capability=o, at=now) for o in offers])
    state.ack_record_id = state.ack_record_id or new_record_id()
    state.ack_version += 1
    state.answers = record_answer(state.answers, state.ack_version, answer, now)
    state.ack_owed = False  # this answer is the acknowledgement
    state.updated_at = now
    record = _ack_record(node.org_id, state, now=now)

    async def remember(tx: StoreTransaction) -> None:
        await save_state(tx, state)

    await share_in_room(node, [record], [issuer], await _answer_room(node, state), actor=actor,
                        issued_at=now, also=remember, urgent=True, coalition_id=coalition_id)
    bus_of(node).notify()
    return state


# --- receiving (record handlers, run in the inbox transaction) ----------------------------------


async def on_alert(session: AsyncSession, node: Node, record: VerifiedRecord) -> None:
    """A verified alert: keep it (marked late if it arrived late), with the coalition it names,
    and acknowledge it. One naming another coalition than the alert room it came in is
    ignored."""
    now = int(time.time())
    coalition = record.claims.get("coalition")
    async with in_session(session, node) as tx:
        room_coalition = await joined_alert_room_coalition(tx, record.room_id)
        if room_coalition is not None and room_coalition != coalition:
            log.warning("alert %s names another coalition than its alert room %s; ignored",
                        record.record_id, record.room_id)
            return
        saved, saved_settings = await tx.settings.get_many(
            state_key(record.issuer, record.record_id), SETTINGS_KEY)
        state = None if saved is None else AlertState.model_validate(saved)
        claims = _payload_claims(record.claims)
        if state is None:
            settings = AlertSettings.model_validate(saved_settings or {})
            state = AlertState(
                issuer=record.issuer, record_id=record.record_id, version=record.version,
                own=False, claims=claims, issued_at=record.issued_at,
                arrived_at=now, late=now - record.issued_at > settings.late_after_seconds,
                room_id=record.room_id,
                coalition_id=coalition if isinstance(coalition, str) else None,
                updated_at=now, answer=DELIVERED,
                answers=[AnswerEvent(version=1, status=DELIVERED, at=now)],
                ack_record_id=new_record_id(), ack_version=1)
        state.updates = merge_updates(state.updates, _arriving_updates(record, claims, state))
        if record.version > state.version:
            state.version, state.claims = record.version, claims
            state.updated_at = now
        state.ack_owed = True
        await save_state(tx, state)
    # The acknowledgement is sealed and posted right after the batch commits, so storing the
    # alert does not wait for it; a node stopped in between sends it when it starts again.
    owed = _owed_acks_of(node)
    after_commit(session, lambda: owed.add(state.key))
    after_commit(session, bus_of(node).notify)  # open pages read what was committed


def _arriving_updates(record: VerifiedRecord, claims: dict[str, Any], state: AlertState
                      ) -> list[AlertUpdate]:
    """The updates a received version brings (an older peer's version: as one update)."""
    updates, unreadable = read_updates(claims.get("updates"), record.issuer)
    if unreadable:  # kept in the claims as they came; only counted here, never their content
        log.warning("alert %s: %d update(s) not readable or not by its issuer",
                    record.record_id, unreadable)
    legacy = legacy_update(claims, state.claims.get("text"), version=record.version,
                           at=_header_time(record), issuer=record.issuer)
    return updates if legacy is None else [legacy]


def _header_time(record: VerifiedRecord) -> int:
    """The record's signed issue time (for an answer: when it was given)."""
    issued_at = record.claims.get("issued_at")
    if isinstance(issued_at, int) and not isinstance(issued_at, bool) and issued_at >= 0:
        return issued_at
    return record.issued_at


def _payload_claims(claims: dict[str, Any]) -> dict[str, Any]:
    header = {"issuer", "record_id", "version", "kind", "schema", "issued_at", "iss", "iat",
              "aud", "cnf", "_sd_alg", "coalition"}
    return {k: v for k, v in claims.items() if k not in header}


class OwedAcks:
    """Keys of received alerts whose acknowledgement is due, and a wake-up for the duty."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.wake = asyncio.Event()

    def add(self, key: str) -> None:
        self.keys.add(key)
        self.wake.set()

    def take(self) -> set[str]:
        keys, self.keys = self.keys, set()
        self.wake.clear()
        return keys


def _owed_acks_of(node: Node) -> OwedAcks:
    return node.part(OwedAcks)


async def send_owed_acks(node: Node, keys: Collection[str] | None = None) -> int:
    """Queue, seal and post the acknowledgements still owed (of ``keys``, or of every received
    alert); how many were sent."""
    async with node.store.read() as tx:
        states = await (all_states(tx) if keys is None else _load_states(tx, keys))
    active = {c.coalition_id for c in await node.coalitions()}
    owed = [s for s in states if not s.own and s.ack_owed and s.coalition_id in active]
    for state in owed:
        await _send_ack(node, state, now=int(time.time()))
    return len(owed)


async def _send_ack(node: Node, state: AlertState, *, now: int) -> None:
    async def settled(tx: StoreTransaction) -> None:
        current = await load_state(tx, state.issuer, state.record_id)
        if current is not None:
            current.ack_owed = False
            await save_state(tx, current)

    await share_in_room(node, [_ack_record(node.org_id, state, now=now)], [state.issuer],
                        await _answer_room(node, state), actor="automatic acknowledgement",
                        issued_at=now, also=settled, urgent=True,
                        coalition_id=state.coalition_id)


async def _answer_room(node: Node, state: AlertState) -> str:
    """Where our answers to a received alert go (:func:`node.core.rooms.answer_room`). The
    issuer finds the alert by issuer, record id and coalition, whatever room they came in."""
    async with node.store.read() as tx:
        return await answer_room(tx, state.issuer, state.room_id)


async def run_acknowledgements(node: Node, *, sweep_seconds: float = 300.0) -> None:
    """Send owed acknowledgements as soon as the inbox stores an alert, and every
    ``sweep_seconds`` whatever is still owed (from before a stop, or after a failure)."""
    owed = _owed_acks_of(node)
    loop = asyncio.get_running_loop()
    while True:
        next_sweep = loop.time() + sweep_seconds
        await _acknowledge(node, None)
        while loop.time() < next_sweep:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(owed.wake.wait(), next_sweep - loop.time())
            if owed.keys:
                await _acknowledge(node, owed.take())


async def _acknowledge(node: Node, keys: Collection[str] | None) -> None:
    try:
        await send_owed_acks(node, keys)
    except Exception as error:  # the next sweep tries again; nothing is lost
        log.warning("acknowledging alerts failed: %s", type(error).__name__)


async def on_alert_ack(session: AsyncSession, node: Node, record: VerifiedRecord) -> None:
    """A member's acknowledgement of one of our alerts: every answer is kept with its time, the
    latest is its current answer, and its offers add to those it made before."""
    target = record.claims.get("alert")
    if not isinstance(target, dict) or target.get("issuer") != node.org_id:
        return
    async with in_session(session, node) as tx:
        state = await load_state(tx, node.org_id, str(target.get("record_id")))
        recipient = state.recipient(record.issuer) if state else None
        if state is None or recipient is None or record.claims.get(
                "coalition") != state.coalition_id:
            return
        answered_at = _header_time(record)
        status = str(record.claims.get("status", DELIVERED))
        recipient.answers = record_answer(recipient.answers, record.version, status, answered_at)
        recipient.offers = accumulate_offers(recipient.offers,
                                             offers_of_ack(record.claims, answered_at))
        if record.version >= recipient.ack_version:
            recipient.status, recipient.ack_version = status, record.version
        state.updated_at = int(time.time())
        await save_state(tx, state)
    after_commit(session, bus_of(node).notify)


# --- leaving a coalition --------------------------------------------------------------------------


async def drop_coalition_alerts(node: Node, coalition_id: str) -> list[str]:
    """This node left ``coalition_id``: no acknowledgement is owed there any more and its
    alert rooms (this node's own and the other members' it joined) are forgotten, what was
    queued there dropped; the rooms to leave. Alerts of it are kept, shown as from a coalition
    this node left."""
    async with node.store.transaction() as tx:
        states = [s for s in await all_states(tx) if s.coalition_id == coalition_id]
        for state in states:
            state.ack_owed, state.coalition_left = False, True
            await save_state(tx, state)
    theirs = sorted({s.room_id for s in states if not s.own})
    rooms = await forget_alert_rooms(node, coalition_id, also=theirs)
    bus_of(node).notify()
    return rooms


async def on_coalition_left(node: Node, transport: MatrixTransport, coalition: Coalition) -> None:
    """The ``coalition_left`` hook (decision 0032): drop the coalition's alerting
    (:func:`drop_coalition_alerts`) and leave its alert rooms."""
    rooms = await drop_coalition_alerts(node, coalition.coalition_id)
    await leave_rooms(transport, rooms)
    log.info("left coalition %s: %d alert room(s) left", coalition.coalition_id, len(rooms))
