"""De-duplication before new work (M6, docs/architecture.md §12): the protocol on top of
``federation.linkage``.

- **Per coalition** (decision 0032): each coalition this node is in has its own linkage key,
  its own index of this node's cases under that key, and its own queries; a query goes to one
  named coalition's room and is answered only with that coalition's key, in the room it came
  in. A key saved before that decision (one setting) belongs to the node's first coalition.
  Leaving a coalition drops its key and index (:func:`drop_coalition`).
- **Linkage key**: the coalition's creator generates it (:func:`start_linkage_key`) and sends it
  sealed to every verified member of that coalition as a ``dedup-query`` record of scheme
  :data:`KEY_SCHEME`; when that coalition's roster changes it issues a new key to the new roster
  (:func:`distribute_linkage_key`, run by :func:`run_dedup_duties`). A member accepts keys only
  from the issuer of the first key it accepted in that coalition. Decision record:
  ``docs/decisions/0006-linkage-key.md``.
- **Schemes**: the key grant names the encoding scheme members query in (decision 0020); a
  creator running a newer scheme rotates the key to bring it, so every member switches at the
  same moment. A member answers a query in the scheme it was asked in, for every scheme in
  :data:`federation.linkage.SCHEMES`, so members not yet updated are still answered.
- **Index**: each node holds an in-memory :class:`federation.linkage.EncodingIndex` of its own
  cases per coalition and scheme asked about (only the cases whose consent lets a member of that
  coalition learn of them: :func:`matchable_in`), under random handles mapped locally to record
  ids. Before every use it is brought up to date with the store (every case written, amended
  or deleted since, by whichever path), so it is current on every write without the writers
  knowing about it; at start-up it is built by :func:`run_dedup_duties`.
- **Case check**: :func:`start_case_check` encodes the draft's defenders and sends one query
  (scheme :data:`federation.linkage.SCHEME`) sealed to every member in the coalition room. Each
  member answers in its inbox transaction (:func:`on_dedup_query`), sealed to the querier: a
  band, and with a possible match a fresh per-query handle and its contact. Nothing else.
- **Abuse limits**: queries are rate-limited per querying organisation (in memory, per node
  process; :class:`DedupSettings`), every answered query is audit-logged (querier, query id,
  band or refusal, never the encodings), and malformed, oversized, foreign-key or rate-limited
  queries are answered with a refusal naming the reason, never compared.
- **Contact handshake**: the querier asks to connect about a handle (scheme
  :data:`CONTACT_SCHEME`); a staff member of the answering organisation accepts or declines
  (:func:`decide_contact`). On acceptance the answering node makes the pair room, so both can
  share through the normal sharing path with its consent gate.
- **Campaign check**: a local fuzzy search (:mod:`node.features.campaigns.check`), finished at once.

State lives in the store's encrypted settings (checks, handles, contact requests, the key), as for
alerts. Nothing here logs names, encodings or keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Integer, cast, false, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from federation.consent import Recipient, allowed_groups, with_consent_scope
from federation.encoding import b64u_decode, b64u_encode
from federation.linkage import (
    SCHEME,
    SCHEME_V1,
    SCHEMES,
    CaseFeatures,
    Encoding,
    EncodingIndex,
    FeatureError,
    LinkageKey,
    LinkageKeyError,
    MalformedEncodingError,
    encode_case_features,
    score_band,
)
from federation.linkage.encoding import MAX_NAMES
from node.core.duties import repeat
from node.core.rooms import answer_room, ensure_pair_room
from node.core.runtime import Node
from node.core.sharing import in_session, share_in_room
from node.core.store import StoreTransaction
from node.core.store.coalitions import Coalition
from node.core.store.database import mark_wiped
from node.core.store.tables import CaseRow, ReceivedRecordRow, StoreMeta
from node.features.campaigns import CampaignDraft, check_against_node
from node.features.cases import stored_record
from schemas.case import Case
from schemas.common import Name, RecordRef, ShortText
from schemas.countries import CountryCode
from schemas.dates import DateSpanText
from schemas.ids import new_record_id
from schemas.payloads import DedupAnswer, DedupQuery
from schemas.records import build_record
from schemas.typology import ConsentLevel
from sync.host import VerifiedRecord

log = logging.getLogger("minga.dedup")
_NOBODY: Final = ""
"""No organisation: a coalition member who is not among a case's named partners."""
M = TypeVar("M", bound=BaseModel)

KEY_SCHEME: Final = "minga.linkage-key:1"
CONTACT_SCHEME: Final = "minga.contact:1"
LINKAGE_SETTING: Final = "dedup_linkage_key"
"""Before decision 0032: the one linkage key, which belongs to the node's first coalition."""
LINKAGE_PREFIX: Final = "dedup.key."
SETTINGS_KEY: Final = "dedup_settings"
CHECK_PREFIX: Final = "dedup.check."
HANDLE_PREFIX: Final = "dedup.handle."
CONTACT_PREFIX: Final = "dedup.contact."
REQUEST_PREFIX: Final = "dedup.request."
MAX_DEFENDERS: Final = 8
RATE_WINDOW_SECONDS: Final = 3600
PENDING, COMPLETE = "pending", "complete"
REQUESTED, ACCEPTED, DECLINED = "requested", "accepted", "declined"
AUTOMATIC: Final = "dedup"


class DedupError(Exception):
    """A check or handshake was refused; the message names ids and fields, never content."""


class NoLinkageKey(DedupError):
    def __init__(self) -> None:
        super().__init__("this node holds no coalition linkage key yet; try again shortly")


class NoCoalition(DedupError):
    def __init__(self) -> None:
        super().__init__("this node is in no coalition yet")


class CoalitionLeft(DedupError):
    def __init__(self, coalition_id: str) -> None:
        super().__init__(f"coalition: this node left coalition {coalition_id}")


class UnknownCheck(DedupError):
    def __init__(self, check_id: str) -> None:
        super().__init__(f"no check {check_id}")


class UnknownContact(DedupError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"no contact request {request_id}")


class QueryRefused(Exception):
    """A received query is not compared; the reason goes back to the querier."""


# --- settings and state -------------------------------------------------------------------------


class DedupSettings(BaseModel):
    queries_per_hour: int = Field(default=60, ge=1, le=100_000,
                                  description="queries answered per querying organisation")
    contact: ShortText | None = Field(
        default=None, description="who a matching organisation should contact; default: our name")


class KeyState(BaseModel):
    """The coalition linkage key this node holds, and (on its issuer) who it was sent to."""

    key_id: str
    secret: str = Field(repr=False)
    issuer: str
    issued_at: int
    sent_to: list[str] = Field(default_factory=list)
    scheme: str = SCHEME_V1
    """The encoding scheme queries under this key are made in (keys granted before schemes
    were named are scheme v1's)."""

    def key(self) -> LinkageKey:
        return LinkageKey(b64u_decode(self.secret))


class Answer(BaseModel):
    org_id: str
    score_band: str
    handle: str | None = None
    contact: str | None = None
    refused: str | None = None
    answered_at: int


class ContactAsk(BaseModel):
    """Our request to connect with ``org_id`` about ``handle``."""

    org_id: str
    handle: str
    request_id: str
    status: str = REQUESTED
    contact: str | None = None
    at: int


class CampaignMatch(BaseModel):
    org_id: str
    record_id: str
    kind: str
    title: str
    score: int
    score_band: str
    reasons: list[str]


class CheckState(BaseModel):
    check_id: str
    kind: Literal["case", "campaign", "overlap"]
    created_at: int
    coalition_id: str | None = None
    """The coalition asked (none for a campaign check, which is local; a check from before
    decision 0032 asked the node's first coalition: :func:`check_coalition`)."""
    asked: list[str] = Field(default_factory=list)
    answers: list[Answer] = Field(default_factory=list)
    campaign_matches: list[CampaignMatch] = Field(default_factory=list)
    contacts: list[ContactAsk] = Field(default_factory=list)

    @property
    def answered(self) -> list[str]:
        return sorted(a.org_id for a in self.answers)

    @property
    def status(self) -> str:
        return COMPLETE if set(self.asked) <= set(self.answered) else PENDING

    def answer_of(self, org_id: str) -> Answer | None:
        return next((a for a in self.answers if a.org_id == org_id), None)


class HandleState(BaseModel):
    """A handle this node gave in an answer: which own case, to whom."""

    handle: str
    record_id: str
    querier: str
    query_id: str
    score_band: str
    at: int
    coalition_id: str | None = None
    """The coalition the query came through (absent on handles given before decision 0032)."""


class ContactRequest(BaseModel):
    """A member asks us to connect about one of our answers; our staff decide."""

    request_id: str
    querier: str
    handle: str
    score_band: str
    room_id: str
    arrived_at: int
    coalition_id: str | None = None
    """The coalition it came through (absent on requests from before decision 0032: the
    node's first coalition)."""
    matched_case: str | None = None
    """Our case the answer was about (only ever shown to our staff); absent on requests stored
    before it was kept."""
    status: str = "pending"
    decided_by: str | None = None
    decided_at: int | None = None
    pair_room: str | None = None


def _digest(*parts: str) -> str:
    # Settings names are short and stored in clear: a digest of the ids, not the ids.
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:40]


async def _load(tx: StoreTransaction, model: type[M], name: str) -> M | None:
    saved = await tx.settings.get(name)
    return None if saved is None else model.model_validate(saved)


async def _save(tx: StoreTransaction, name: str, value: BaseModel) -> None:
    await tx.settings.set(name, value.model_dump(mode="json"))


async def _all(tx: StoreTransaction, model: type[M], prefix: str) -> list[M]:
    names = await tx.session.scalars(
        select(StoreMeta.name).where(StoreMeta.name.startswith("setting." + prefix)))
    found = [await _load(tx, model, name.removeprefix("setting.")) for name in names]
    return [item for item in found if item is not None]


async def _settings(tx: StoreTransaction) -> DedupSettings:
    return DedupSettings.model_validate(await tx.settings.get(SETTINGS_KEY) or {})


async def dedup_settings(node: Node) -> DedupSettings:
    async with node.store.read() as tx:
        return await _settings(tx)


async def set_dedup_settings(node: Node, settings: DedupSettings) -> None:
    async with node.store.transaction() as tx:
        await _save(tx, SETTINGS_KEY, settings)


def _key_name(coalition_id: str) -> str:
    return LINKAGE_PREFIX + _digest(coalition_id)


async def first_coalition_id(tx: StoreTransaction) -> str | None:
    """The node's first coalition (left ones included): what state saved before decision
    0032 belongs to."""
    known = await tx.coalitions.all(with_left=True)
    return known[0].coalition_id if known else None


async def _load_key(tx: StoreTransaction, coalition_id: str) -> KeyState | None:
    """The linkage key this node holds in ``coalition_id`` (a key saved before decision 0032
    is the first coalition's)."""
    state = await _load(tx, KeyState, _key_name(coalition_id))
    if state is None and coalition_id == await first_coalition_id(tx):
        state = await _load(tx, KeyState, LINKAGE_SETTING)
    return state


async def _save_key(tx: StoreTransaction, coalition_id: str, state: KeyState | None) -> None:
    """Keep (or, with None, drop) ``coalition_id``'s key; the pre-0032 setting, read as the
    first coalition's, is cleared once that coalition's key is written."""
    await tx.settings.set(_key_name(coalition_id),
                          None if state is None else state.model_dump(mode="json"))
    if coalition_id == await first_coalition_id(tx) \
            and await tx.settings.get(LINKAGE_SETTING) is not None:
        await tx.settings.set(LINKAGE_SETTING, None)


async def key_state(node: Node, coalition_id: str | None = None) -> KeyState | None:
    """The linkage key held in ``coalition_id`` (by default the node's only coalition; None
    when it is in none). :class:`node.core.runtime.CoalitionNotChosen` for an unknown one, or
    none named when the node is in several."""
    if coalition_id is None and not await node.coalitions():
        return None
    coalition = await node.chosen_coalition(coalition_id)
    async with node.store.read() as tx:
        return await _load_key(tx, coalition.coalition_id)


async def check_coalition(tx: StoreTransaction, check: CheckState) -> str | None:
    """The coalition a check asked (a check from before decision 0032: the first one)."""
    if check.coalition_id is not None or check.kind == "campaign":
        return check.coalition_id
    return await first_coalition_id(tx)


async def get_check(node: Node, check_id: str) -> CheckState:
    async with node.store.read() as tx:
        state = await _load(tx, CheckState, CHECK_PREFIX + _digest(check_id))
    if state is None:
        raise UnknownCheck(check_id)
    return state


async def contact_requests(node: Node) -> list[ContactRequest]:
    """Contact requests received, pending ones first, then newest first."""
    async with node.store.read() as tx:
        found = await _all(tx, ContactRequest, CONTACT_PREFIX)
    return sorted(found, key=lambda r: (r.status != "pending", -r.arrived_at, r.request_id))


# --- features of drafts and cases ---------------------------------------------------------------


class DraftVictim(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Name | None = None
    native_name: Name | None = None
    romanised_name: Name | None = None


class CaseDraft(BaseModel):
    """The identifying part of a draft case (other fields of the form are ignored)."""

    model_config = ConfigDict(extra="ignore")

    victims: list[DraftVictim] = Field(min_length=1, max_length=50)
    incident_date: DateSpanText | None = None
    country: CountryCode
    place: ShortText | None = None


def _features(victims: Iterable[DraftVictim], date: str | None, place: str | None,
              country: str) -> list[CaseFeatures]:
    found = []
    for victim in victims:
        names = [n for n in (victim.name, victim.native_name, victim.romanised_name) if n]
        if names:
            found.append(CaseFeatures(names=names[:MAX_NAMES], date=date, place=place,
                                      country=country))
    return found


def draft_features(draft: CaseDraft) -> list[CaseFeatures]:
    return _features(draft.victims, draft.incident_date, draft.place, draft.country)


def matchable_in(case: Case, coalition_id: str) -> bool:
    """Whether a possible match with ``case`` may be told to members of ``coalition_id``:
    consent lets a member of it (not a named partner) receive something of the case. Pass a
    case whose consent scope is spelled out (:func:`federation.consent.with_consent_scope`);
    one without (``consent_coalitions`` None) is read as every coalition, as before 0032."""
    return bool(allowed_groups(case, Recipient.member(_NOBODY, coalition_id)))


def case_features(case: Case, coalition_id: str | None = None) -> list[CaseFeatures]:
    """What a stored case is matched on (in ``coalition_id``); nothing when the defender gave
    no consent (or withdrew it), or none for that coalition: even a possible match would tell
    another member that the case exists."""
    if case.consent_level is ConsentLevel.NONE:
        return []
    if coalition_id is not None and not matchable_in(case, coalition_id):
        return []
    victims = [DraftVictim.model_validate(v.model_dump()) for v in case.victims]
    return _features(victims, case.incident_date, case.place, case.country)


def encodings_of(features: Iterable[CaseFeatures], key: LinkageKey,
                 scheme: str = SCHEME) -> list[Encoding]:
    """Every defender's encoding in ``scheme``; a name without any letter is left out."""
    found = []
    for feature in features:
        try:
            found.append(encode_case_features(feature, key, scheme=scheme))
        except FeatureError:
            continue
    return found


# --- the local index ----------------------------------------------------------------------------


@dataclass
class LocalIndex:
    """The index of this node's own cases under one key and scheme, and which case each
    handle is."""

    key_id: str
    index: EncodingIndex
    versions: dict[str, tuple[int, str]] = field(default_factory=dict)
    record_of: dict[str, str] = field(default_factory=dict)
    marker: tuple[int, ...] | None = None
    """Cases, versions and deletions counted when last brought up to date."""

    def best(self, queries: Sequence[Encoding]) -> tuple[str, int] | None:
        """The record id and score of the best possible match of any query encoding."""
        found: tuple[str, int] | None = None
        for query in queries:
            for match in self.index.best_matches(query, limit=1):
                if found is None or match.score.total > found[1]:
                    found = (self.record_of[match.handle], match.score.total)
        return found


class IndexHolder:
    """This node's local index per coalition and scheme, and the lock that keeps one refresh at
    a time (a part of the node). An old scheme's index is built only once a query in it
    arrives."""

    def __init__(self) -> None:
        self.local: dict[tuple[str, str], LocalIndex] = {}
        self.lock = asyncio.Lock()


def _forget_index(node: Node, coalition_id: str) -> None:
    holder = node.part(IndexHolder)
    holder.local = {k: v for k, v in holder.local.items() if k[0] != coalition_id}


async def _current_index(tx: StoreTransaction, node: Node, coalition_id: str, key: LinkageKey,
                         scheme: str = SCHEME) -> LocalIndex:
    """``coalition_id``'s index in ``scheme``, first brought up to date with every case in the
    store."""
    holder = node.part(IndexHolder)
    async with holder.lock:
        return await _refresh(tx, holder, coalition_id, key, scheme)


async def _refresh(tx: StoreTransaction, holder: IndexHolder, coalition_id: str,
                   key: LinkageKey, scheme: str) -> LocalIndex:
    local = holder.local.get((coalition_id, scheme))
    if local is None or local.key_id != key.key_id:
        local = holder.local[(coalition_id, scheme)] = LocalIndex(
            key.key_id, EncodingIndex(key.key_id, scheme))
    # Every add, amend and delete changes one of these counts: an unchanged store costs one
    # aggregate query, not a read of every case's version.
    marker = tuple((await tx.session.execute(select(
        func.count(), func.coalesce(func.sum(CaseRow.version), 0),
        func.coalesce(func.sum(cast(CaseRow.deleted, Integer)), 0)))).one())
    if marker == local.marker:
        return local
    rows = await tx.session.execute(
        select(CaseRow.record_id, CaseRow.version).where(CaseRow.deleted == false()))
    current = {record_id: version for record_id, version in rows.all()}
    first = await first_coalition_id(tx)
    for record_id in [r for r in local.versions if r not in current]:
        _, handle = local.versions.pop(record_id)
        local.index.remove(handle)
        local.record_of.pop(handle, None)
    for record_id, version in current.items():
        known = local.versions.get(record_id)
        if known is not None and known[0] == version:
            continue
        handle = known[1] if known is not None else secrets.token_urlsafe(12)
        case = with_consent_scope(stored_record(await tx.cases.get(record_id)), first).payload
        local.index.replace(handle, encodings_of(case_features(case, coalition_id), key,
                                                 scheme))
        local.versions[record_id] = (version, handle)
        local.record_of[handle] = record_id
    local.marker = marker
    return local


async def warm_index(node: Node) -> int:
    """Build (or bring up to date) every coalition's index now; how many cases they cover
    (0 without a key)."""
    covered = 0
    for coalition in await node.coalitions():
        async with node.store.read() as tx:
            state = await _load_key(tx, coalition.coalition_id)
            if state is None:
                continue
            local = await _current_index(tx, node, coalition.coalition_id, state.key(),
                                         state.scheme)
        covered += len(local.versions)
    return covered


# --- the linkage key ----------------------------------------------------------------------------


def _new_key_state(org_id: str, now: int) -> KeyState:
    key = LinkageKey.generate()
    return KeyState(key_id=key.key_id, secret=b64u_encode(key.to_bytes()), issuer=org_id,
                    issued_at=now, scheme=SCHEME)


async def start_linkage_key(node: Node, now: int, coalition_id: str | None = None) -> KeyState:
    """Generate a coalition's first linkage key (on the node that creates the coalition; by
    default the node's only one)."""
    coalition = await node.chosen_coalition(coalition_id)
    state = _new_key_state(node.org_id, now)
    async with node.store.transaction() as tx:
        await _save_key(tx, coalition.coalition_id, state)
        await tx.audit.append(AUTOMATIC, "dedup.key.create",
                              details={"key_id": state.key_id,
                                       "coalition": coalition.coalition_id})
    return state


async def drop_coalition(node: Node, coalition_id: str) -> None:
    """This node left ``coalition_id``: forget its linkage key and index, so nothing is asked
    or answered there any more (what was received stays)."""
    async with node.store.transaction() as tx:
        held = await _load_key(tx, coalition_id)
        await _save_key(tx, coalition_id, None)
        if held is not None:
            await tx.audit.append(AUTOMATIC, "dedup.key.drop",
                                  details={"key_id": held.key_id, "coalition": coalition_id})
    _forget_index(node, coalition_id)


def key_successor(member_ids: Iterable[str]) -> str:
    """Who issues the linkage key once its issuer's keys are revoked (expelled, or seized):
    the member with the smallest org id, so every node names the same one without talking."""
    return min(member_ids)


async def _issuer_revoked(tx: StoreTransaction, issuer: str) -> bool:
    return any(m.org_id == issuer and m.revoked_at is not None
               for m in await tx.orgs.members(verified_only=True, with_revoked=True))


async def distribute_linkage_keys(node: Node, now: int) -> bool:
    """:func:`distribute_linkage_key` in every coalition this node is in; whether anything
    was sent. One coalition failing does not keep the others' keys from going out. The index
    of a coalition this node is no longer in is dropped."""
    sent = False
    failed: Exception | None = None
    active = await node.coalitions()
    # A coalition left (``minga coalition leave`` runs in another process): its index goes too.
    holder = node.part(IndexHolder)
    holder.local = {k: v for k, v in holder.local.items()
                    if k[0] in {c.coalition_id for c in active}}
    for coalition in active:
        try:
            sent = await distribute_linkage_key(node, now, coalition.coalition_id) or sent
        except Exception as error:  # raised again once the others had their turn
            failed = error
    if failed is not None:
        raise failed
    return sent


async def distribute_linkage_key(node: Node, now: int, coalition_id: str | None = None) -> bool:
    """On the issuer of ``coalition_id``'s key (by default the node's only coalition): if that
    coalition's verified roster differs from the members the key was sent to, or the key's
    scheme is not this software's, issue a new key (if it had been sent to anyone, or for the
    new scheme) and send it to every member of that coalition. Whether anything was sent.

    If the issuer's keys were revoked (an expelled or seized member), :func:`key_successor`
    among that coalition's members takes over: it issues a new key, which the others accept
    from it (:func:`_take_key`)."""
    coalition = await node.chosen_coalition(coalition_id)
    cid = coalition.coalition_id
    async with node.store.read() as tx:
        state = await _load_key(tx, cid)
        members = sorted(m.org_id for m in await tx.orgs.members(verified_only=True,
                                                                 coalition_id=cid)
                         if m.org_id != node.org_id)
        successor = (state is not None and state.issuer != node.org_id
                     and await _issuer_revoked(tx, state.issuer)
                     and key_successor([*members, node.org_id]) == node.org_id)
    if successor:
        state = _new_key_state(node.org_id, now)
        async with node.store.transaction() as tx:
            await _save_key(tx, cid, state)
            await tx.audit.append(AUTOMATIC, "dedup.key.take-over",
                                  details={"key_id": state.key_id, "coalition": cid})
    room_id = coalition.room_id
    if state is None or state.issuer != node.org_id or not members:
        return False
    if members == sorted(state.sent_to) and state.scheme == SCHEME:
        return False
    if state.sent_to or state.scheme != SCHEME:
        state = _new_key_state(node.org_id, max(now, state.issued_at + 1))
    grant = DedupQuery(scheme=KEY_SCHEME, linkage_key_id=state.key_id,
                       encodings={"key": state.secret,
                                  "scheme": b64u_encode(state.scheme.encode())})
    record = build_record(node.org_id, grant, record_id=new_record_id(), issued_at=now)
    state.sent_to = members

    async def remember(tx: StoreTransaction) -> None:
        await _save_key(tx, cid, state)
        await tx.audit.append(AUTOMATIC, "dedup.key.send",
                              details={"key_id": state.key_id, "members": members,
                                       "coalition": cid})

    await share_in_room(node, [record], members, room_id, actor=AUTOMATIC,
                        issued_at=now, also=remember, coalition_id=cid, alike=True)
    _forget_index(node, cid)
    return True


def _record_coalition(record: VerifiedRecord) -> str:
    """The coalition a record came through (the sync host always sets the claim)."""
    return str(record.claims["coalition"])


async def _take_key(tx: StoreTransaction, node: Node, record: VerifiedRecord) -> None:
    """A key grant: the key of the coalition it came through."""
    cid = _record_coalition(record)
    current = await _load_key(tx, cid)
    if current is not None and current.issuer != record.issuer and not (
            await _issuer_revoked(tx, current.issuer)
            and record.issuer == key_successor({*await tx.orgs.verified_ids(cid),
                                                node.org_id})):
        log.warning("linkage key from %s ignored: keys come from %s", record.issuer,
                    current.issuer)
        return
    if current is not None and current.issuer == record.issuer \
            and record.issued_at < current.issued_at:
        return
    encodings = record.claims.get("encodings")
    secret = encodings.get("key") if isinstance(encodings, Mapping) else None
    try:
        key = LinkageKey(b64u_decode(str(secret)))
    except (LinkageKeyError, ValueError):
        log.warning("malformed linkage key from %s ignored", record.issuer)
        return
    if key.key_id != record.claims.get("linkage_key_id"):
        log.warning("linkage key from %s does not match its key id; ignored", record.issuer)
        return
    scheme = _granted_scheme(encodings)
    if scheme not in SCHEMES:
        # A newer scheme than this software knows: keep querying in the one it knows best;
        # members on the newer one still answer it while both are live.
        scheme = SCHEME
    await _save_key(tx, cid, KeyState(key_id=key.key_id, secret=str(secret),
                                      issuer=record.issuer, issued_at=record.issued_at,
                                      scheme=scheme))
    await tx.audit.append(AUTOMATIC, "dedup.key.receive", target=record.issuer,
                          details={"key_id": key.key_id, "coalition": cid})
    _forget_index(node, cid)


def _granted_scheme(encodings: object) -> str:
    """The scheme a key grant names (base64url, as every value of ``encodings`` must be);
    grants from before schemes were named are scheme v1's."""
    named = encodings.get("scheme") if isinstance(encodings, Mapping) else None
    if named is None:
        return SCHEME_V1
    try:
        return b64u_decode(str(named)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return ""


# --- sharing helpers ----------------------------------------------------------------------------

# --- checking -----------------------------------------------------------------------------------


def _query(org_id: str, state: KeyState, encodings: Sequence[Encoding], now: int) -> Any:
    """The ``dedup-query`` record asking about one case's (or draft's) defenders."""
    wire = [e.wire_fields() for e in encodings[:MAX_DEFENDERS]]
    query = DedupQuery(scheme=state.scheme, linkage_key_id=state.key_id, encodings=wire[0],
                       more_encodings=wire[1:])
    return build_record(org_id, query, record_id=new_record_id(), issued_at=now)


async def _asking(node: Node, coalition_id: str | None) -> tuple[Coalition, KeyState, list[str]]:
    """The coalition to ask (the one named, or the node's only one), its linkage key and its
    verified members to ask."""
    if coalition_id is None and not await node.coalitions():
        raise NoCoalition()
    coalition = await node.chosen_coalition(coalition_id)
    async with node.store.read() as tx:
        state = await _load_key(tx, coalition.coalition_id)
        members = sorted(m.org_id for m in await tx.orgs.members(
            verified_only=True, coalition_id=coalition.coalition_id)
            if m.org_id != node.org_id)
    if state is None:
        raise NoLinkageKey()
    return coalition, state, members


async def _send_checks(node: Node, coalition: Coalition, queries: Sequence[Any],
                       checks: Sequence[CheckState], members: Sequence[str], *, actor: str,
                       now: int) -> None:
    async def remember(tx: StoreTransaction) -> None:
        for check in checks:
            await _save(tx, CHECK_PREFIX + _digest(check.check_id), check)

    await share_in_room(node, queries, members, coalition.room_id, actor=actor,
                        issued_at=now, also=remember, coalition_id=coalition.coalition_id,
                        alike=True)


async def start_case_check(node: Node, draft: CaseDraft, *, actor: str, now: int,
                           coalition_id: str | None = None) -> CheckState:
    """Send a query about ``draft`` to every verified member of ``coalition_id`` (by default
    the node's only coalition) under that coalition's key; the check, filled in later."""
    coalition, state, members = await _asking(node, coalition_id)
    encodings = encodings_of(draft_features(draft), state.key(), state.scheme)
    if not encodings:
        raise DedupError("victims: no defender with a name to check")
    if not members:
        raise DedupError("the coalition has no other verified member to ask")
    record = _query(node.org_id, state, encodings, now)
    check = CheckState(check_id=record.record_id, kind="case", created_at=now, asked=members,
                       coalition_id=coalition.coalition_id)
    await _send_checks(node, coalition, [record], [check], members, actor=actor, now=now)
    return check


def matchable_cases(cases: Mapping[str, Case], key: LinkageKey, scheme: str = SCHEME,
                    coalition_id: str | None = None) -> dict[str, list[Encoding]]:
    """The encodings in ``scheme`` of each case (by record id) that names at least one
    defender and whose consent allows matching it at all (in ``coalition_id``, when named:
    see :func:`matchable_in`)."""
    found = {record_id: encodings_of(case_features(case, coalition_id), key, scheme)
             for record_id, case in cases.items()}
    return {record_id: encodings for record_id, encodings in found.items() if encodings}


async def start_overlap_checks(node: Node, cases: Sequence[Sequence[Encoding]],
                               members: Sequence[str], *, now: int,
                               coalition_id: str | None = None) -> list[str]:
    """Ask ``members`` of ``coalition_id`` (by default the node's only coalition) about each
    case of ``cases`` (its encodings under that coalition's key, from
    :func:`matchable_cases`), as checks of kind ``overlap``; their ids, in the same order."""
    if not cases:
        return []
    coalition, state, _ = await _asking(node, coalition_id)
    queries = [_query(node.org_id, state, encodings, now) for encodings in cases]
    checks = [CheckState(check_id=q.record_id, kind="overlap", created_at=now,
                         asked=sorted(members), coalition_id=coalition.coalition_id)
              for q in queries]
    await _send_checks(node, coalition, queries, checks, members, actor=AUTOMATIC, now=now)
    return [check.check_id for check in checks]


async def load_checks(node: Node, check_ids: Iterable[str]) -> list[CheckState]:
    """The checks among ``check_ids`` that this node holds."""
    async with node.store.read() as tx:
        found = [await _load(tx, CheckState, CHECK_PREFIX + _digest(i)) for i in check_ids]
    return [check for check in found if check is not None]


def campaign_band(score: int) -> str:
    return "high" if score >= 70 else "medium" if score >= 50 else "low"


async def start_campaign_check(node: Node, draft: CampaignDraft, *, now: int) -> CheckState:
    """The local campaign check, complete at once."""
    overlaps = await check_against_node(node, draft, now)
    check = CheckState(
        check_id=new_record_id(), kind="campaign", created_at=now,
        campaign_matches=[CampaignMatch(org_id=o.issuer, record_id=o.record_id, kind=o.kind,
                                        title=o.title, score=o.score,
                                        score_band=campaign_band(o.score),
                                        reasons=list(o.reasons)) for o in overlaps])
    async with node.store.transaction() as tx:
        await _save(tx, CHECK_PREFIX + _digest(check.check_id), check)
    return check


# --- answering (record handlers, run in the inbox transaction) ----------------------------------


class RateLimiter:
    """Queries seen per querying organisation over the last hour."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[int]] = {}

    def allow(self, org_id: str, now: int, per_hour: int) -> bool:
        seen = self._seen.setdefault(org_id, deque())
        while seen and seen[0] <= now - RATE_WINDOW_SECONDS:
            seen.popleft()
        if len(seen) >= per_hour:
            return False
        seen.append(now)
        return True


def _limiter(node: Node) -> RateLimiter:
    return node.part(RateLimiter)


def decode_query(claims: Mapping[str, Any], key_id: str | None) -> list[Encoding]:
    """The query's encodings, in the scheme it names; :class:`QueryRefused` naming the field
    for anything wrong."""
    scheme = claims.get("scheme")
    if scheme not in SCHEMES:
        raise QueryRefused(f"scheme: not one of {', '.join(SCHEMES)}")
    if key_id is None:
        raise QueryRefused("this member holds no linkage key yet")
    if claims.get("linkage_key_id") != key_id:
        raise QueryRefused("linkage_key_id: not the coalition's current linkage key")
    more = claims.get("more_encodings") or []
    if not isinstance(more, list):
        raise QueryRefused("more_encodings: must be a list")
    objects = [("encodings", claims.get("encodings"))]
    objects += [(f"more_encodings.{i}", o) for i, o in enumerate(more)]
    if len(objects) > MAX_DEFENDERS:
        raise QueryRefused(f"more_encodings: at most {MAX_DEFENDERS - 1}")
    decoded = []
    for label, fields in objects:
        if not isinstance(fields, Mapping):
            raise QueryRefused(f"{label}: must be an object")
        try:
            decoded.append(Encoding.from_wire(fields, key_id=key_id, scheme=str(scheme)))
        except MalformedEncodingError as error:
            raise QueryRefused(f"{label}.{error.field}: {error.problem}") from None
    return decoded


async def on_dedup_query(session: AsyncSession, node: Node, record: VerifiedRecord) -> None:
    """A key grant, a contact request or a query: keep, record, or answer it."""
    async with in_session(session, node) as tx:
        await _forget_received(tx, record)
        cid = _record_coalition(record)
        if cid not in {c.coalition_id for c in await node.coalitions()}:
            # The sync host refuses these already; a coalition left meanwhile is not answered.
            log.info("dedup record %s through a coalition this node is not in; ignored",
                     record.record_id)
            return
        scheme = record.claims.get("scheme")
        if scheme == KEY_SCHEME:
            await _take_key(tx, node, record)
        elif scheme == CONTACT_SCHEME:
            await _take_contact_request(tx, record)
        else:
            answer = await _compare(tx, node, record, int(time.time()))
            # The querier finds its check by the query's id, whatever room the answer came in.
            await share_in_room(node, [answer], [record.issuer],
                                await answer_room(tx, record.issuer, record.room_id),
                                actor=AUTOMATIC,
                                issued_at=int(time.time()), open_session=session,
                                coalition_id=cid)


async def _forget_received(tx: StoreTransaction, record: VerifiedRecord) -> None:
    """Wipe the stored copy's claims: a key grant holds the linkage key, a query encodings;
    neither belongs in the received records that staff can list."""
    await tx.session.execute(
        update(ReceivedRecordRow)
        .where(ReceivedRecordRow.issuer == record.issuer,
               ReceivedRecordRow.record_id == record.record_id,
               ReceivedRecordRow.version == record.version)
        .values(claims=None)
        .execution_options(synchronize_session="fetch"))
    mark_wiped(tx.session)


async def _compare(tx: StoreTransaction, node: Node, record: VerifiedRecord, now: int) -> Any:
    """Our answer record to a query (a band, maybe a handle; or a refusal), audit-logged: only
    ever under the key of the coalition the query came through, against that coalition's
    index."""
    cid = _record_coalition(record)
    settings = await _settings(tx)
    state = await _load_key(tx, cid)
    refused: str | None = None
    best: tuple[str, int] | None = None
    try:
        if record.claims.get("scheme") not in SCHEMES:
            raise QueryRefused(f"scheme: not one of {', '.join(SCHEMES)}")
        if not _limiter(node).allow(record.issuer, now, settings.queries_per_hour):
            raise QueryRefused(f"rate limit: at most {settings.queries_per_hour} queries an hour")
        queries = decode_query(record.claims, None if state is None else state.key_id)
        assert state is not None
        scheme = queries[0].scheme
        best = (await _current_index(tx, node, cid, state.key(), scheme)).best(queries)
    except QueryRefused as refusal:
        refused = str(refusal)
    band = "none" if best is None else _band(best[1])
    handle = None
    if best is not None:
        handle = b64u_encode(secrets.token_bytes(16))
        await _save(tx, HANDLE_PREFIX + _digest(handle), HandleState(
            handle=handle, record_id=best[0], querier=record.issuer,
            query_id=record.record_id, score_band=band, at=now, coalition_id=cid))
    await tx.audit.append(AUTOMATIC, "dedup.answer", target=record.issuer,
                          details={"query": record.record_id, "band": band, "coalition": cid,
                                   **({"refused": refused} if refused else {})})
    answer = DedupAnswer(query=RecordRef(issuer=record.issuer, record_id=record.record_id),
                         possible_match=best is not None, score_band=band, handle=handle,
                         contact=(settings.contact or node.own.name) if best else None,
                         refused=refused)
    return build_record(node.org_id, answer, record_id=new_record_id(), issued_at=now)


def _band(score: int) -> str:
    return str(score_band(score))


async def on_dedup_answer(session: AsyncSession, node: Node, record: VerifiedRecord) -> None:
    """An answer to one of our queries, or a decision on one of our contact requests."""
    query = record.claims.get("query")
    if not isinstance(query, Mapping) or query.get("issuer") != node.org_id:
        return
    query_id = str(query.get("record_id"))
    async with in_session(session, node) as tx:
        if record.claims.get("handshake") is not None:
            await _take_decision(tx, record, query_id)
            return
        check = await _load(tx, CheckState, CHECK_PREFIX + _digest(query_id))
        if check is None or record.issuer not in check.asked \
                or record.claims.get("coalition") != await check_coalition(tx, check):
            return
        claims = record.claims
        check.answers = [a for a in check.answers if a.org_id != record.issuer] + [Answer(
            org_id=record.issuer, score_band=str(claims.get("score_band", "none")),
            handle=claims.get("handle"), contact=claims.get("contact"),
            refused=claims.get("refused"), answered_at=int(time.time()))]
        await _save(tx, CHECK_PREFIX + _digest(query_id), check)


# --- the contact handshake ----------------------------------------------------------------------


async def request_contact(node: Node, check_id: str, handle: str, *, actor: str,
                          now: int) -> CheckState:
    """Ask the organisation that answered ``handle`` in our check to connect."""
    check = await get_check(node, check_id)
    answer = next((a for a in check.answers if a.handle == handle and handle), None)
    if answer is None:
        raise DedupError("handle: no answer of this check has that handle")
    async with node.store.read() as tx:
        cid = await check_coalition(tx, check)
        state = None if cid is None else await _load_key(tx, cid)
    if cid is None:
        raise NoCoalition()
    active = {c.coalition_id: c for c in await node.coalitions()}
    if cid not in active:
        raise CoalitionLeft(cid)
    if state is None:
        raise NoLinkageKey()
    room_id = active[cid].room_id
    ask = DedupQuery(scheme=CONTACT_SCHEME, linkage_key_id=state.key_id,
                     encodings={"handle": handle})
    record = build_record(node.org_id, ask, record_id=new_record_id(), issued_at=now)
    check.contacts = [c for c in check.contacts if c.handle != handle] + [ContactAsk(
        org_id=answer.org_id, handle=handle, request_id=record.record_id, at=now)]

    async def remember(tx: StoreTransaction) -> None:
        await _save(tx, CHECK_PREFIX + _digest(check_id), check)
        await tx.settings.set(REQUEST_PREFIX + _digest(record.record_id), {"check": check_id})

    await share_in_room(node, [record], [answer.org_id], room_id, actor=actor,
                        issued_at=now, also=remember, coalition_id=cid)
    return check


async def _take_contact_request(tx: StoreTransaction, record: VerifiedRecord) -> None:
    encodings = record.claims.get("encodings")
    handle = str(encodings.get("handle")) if isinstance(encodings, Mapping) else ""
    given = await _load(tx, HandleState, HANDLE_PREFIX + _digest(handle))
    cid = _record_coalition(record)
    if given is None or given.querier != record.issuer \
            or (given.coalition_id or await first_coalition_id(tx)) != cid:
        log.warning("contact request from %s names no handle given to it", record.issuer)
        return
    name = CONTACT_PREFIX + _digest(record.record_id)
    if await tx.settings.get(name) is not None:
        return
    await _save(tx, name, ContactRequest(
        request_id=record.record_id, querier=record.issuer, handle=handle,
        score_band=given.score_band, room_id=record.room_id, arrived_at=int(time.time()),
        coalition_id=cid, matched_case=given.record_id))
    await tx.audit.append(AUTOMATIC, "dedup.contact.request", target=record.issuer,
                          details={"request": record.record_id})


async def get_contact_request(node: Node, request_id: str) -> ContactRequest:
    async with node.store.read() as tx:
        found = await _load(tx, ContactRequest, CONTACT_PREFIX + _digest(request_id))
    if found is None:
        raise UnknownContact(request_id)
    return found


async def decide_contact(node: Node, request_id: str, *, accept: bool, actor: str,
                         now: int) -> ContactRequest:
    """Our staff's decision; on acceptance the pair room with the querier is made."""
    request = await get_contact_request(node, request_id)
    if request.status != "pending":
        raise DedupError(f"contact request {request_id} was already {request.status}")
    cid = await contact_coalition(node, request)
    if cid not in {c.coalition_id for c in await node.coalitions()}:
        raise CoalitionLeft(str(cid))
    if accept:
        async with node.transport() as transport:
            request.pair_room = await ensure_pair_room(node, transport, request.querier)
    request.status = ACCEPTED if accept else DECLINED
    request.decided_by, request.decided_at = actor, now
    settings = await dedup_settings(node)
    reply = DedupAnswer(query=RecordRef(issuer=request.querier, record_id=request_id),
                        possible_match=True, score_band=request.score_band,
                        handle=request.handle, contact=settings.contact or node.own.name,
                        handshake=ACCEPTED if accept else DECLINED)
    record = build_record(node.org_id, reply, record_id=new_record_id(), issued_at=now)

    async def remember(tx: StoreTransaction) -> None:
        await _save(tx, CONTACT_PREFIX + _digest(request_id), request)
        await tx.audit.append(actor, f"dedup.contact.{request.status}", target=request.querier,
                              details={"request": request_id})

    await share_in_room(node, [record], [request.querier], request.room_id, actor=actor,
                        issued_at=now, also=remember, coalition_id=cid)
    return request


async def contact_coalition(node: Node, request: ContactRequest) -> str | None:
    """The coalition a contact request came through (before decision 0032: the first)."""
    if request.coalition_id is not None:
        return request.coalition_id
    async with node.store.read() as tx:
        return await first_coalition_id(tx)


async def _take_decision(tx: StoreTransaction, record: VerifiedRecord, request_id: str) -> None:
    pointer = await tx.settings.get(REQUEST_PREFIX + _digest(request_id))
    if not isinstance(pointer, dict):
        return
    name = CHECK_PREFIX + _digest(str(pointer["check"]))
    check = await _load(tx, CheckState, name)
    if check is None:
        return
    for ask in check.contacts:
        if ask.request_id == request_id and ask.org_id == record.issuer:
            ask.status = str(record.claims.get("handshake"))
            ask.contact = record.claims.get("contact")
    await _save(tx, name, check)


# --- the node's duties --------------------------------------------------------------------------


async def run_dedup_duties(node: Node, *, every_seconds: float = 1.0) -> None:
    """Build the indexes at start-up, then send each coalition's linkage key whenever its
    roster changed, until cancelled (run next to the sync engine)."""
    try:
        await warm_index(node)
    except Exception as error:  # the index is built on first use otherwise
        log.warning("dedup index not built at start-up: %s", type(error).__name__)
    await repeat(lambda now: distribute_linkage_keys(node, now), every_seconds=every_seconds,
                 failure="linkage key not distributed", log=log)
