"""Joint-campaign records (M7): proposals, responses, campaigns, campaign posts, letters and
sign-ons, this node's own and those received, plus the campaign rooms this node knows.

Every such record is kept here whoever issued it, so the tally, the campaign page and the letter's
signatories are computed from one table (the sync host also keeps received ones in
``received_records``, as for every kind). One row per (issuer, record id, version); storing the
same triple again is a no-op. ``thread`` is the record id the record belongs to: the proposal for
proposals, responses, campaigns and campaign posts; the letter for letters and sign-ons. Claims
are encrypted; ids, kinds, versions and issue times are not content.

Each record knows the coalition it went through (decision 0032): its ``coalition`` claim, kept
with the claims (received records always carry it; this node adds it to its own). A record kept
before that decision names none: it came through the node's first coalition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from node.core.runtime import Node
from node.core.store.cipher import Cell, ColumnCipher
from node.core.store.ids import utc_now
from node.core.store.store import StoreTransaction
from node.core.store.tables import RECORD_ID, CampaignRecordRow, CampaignRoomRow
from sync.host import VerifiedRecord

CAMPAIGN_KINDS: Final = frozenset(
    {"proposal", "endorsement", "campaign", "campaign-post", "letter", "sign-on"})
_THREAD_FIELD: Final = {"endorsement": "proposal", "campaign": "proposal",
                        "campaign-post": "campaign", "sign-on": "letter"}

# Room states: a launch was asked for (no room yet); the room is open; this node left it.
ROOM_LAUNCH: Final = "launch"
ROOM_OPEN: Final = "open"
ROOM_LEFT: Final = "left"


@dataclass(frozen=True)
class CampaignItem:
    """One version of one campaign record, with its claims (header and payload fields)."""

    issuer: str
    record_id: str
    version: int
    kind: str
    thread: str
    issued_at: int
    claims: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class CampaignRoom:
    proposal_id: str
    proposal_issuer: str
    room_id: str | None
    state: str
    created_by_us: bool


def thread_of(kind: str, record_id: str, claims: Mapping[str, Any]) -> str | None:
    """The record id ``claims`` belong to (see the module docstring); None if malformed."""
    name = _THREAD_FIELD.get(kind)
    if name is None:
        return record_id
    ref = claims.get(name)
    target = ref.get("record_id") if isinstance(ref, Mapping) else None
    return target if isinstance(target, str) and len(target) <= RECORD_ID else None


def coalition_of_claims(claims: Mapping[str, Any], first_coalition: str | None) -> str | None:
    """The coalition a kept record went through: its ``coalition`` claim, else the node's
    first coalition (a record kept before decision 0032)."""
    named = claims.get("coalition")
    return named if isinstance(named, str) else first_coalition


async def first_coalition_id(tx: StoreTransaction) -> str | None:
    """The node's first coalition, left or not: where records naming none came through."""
    known = await tx.coalitions.all(with_left=True)
    return known[0].coalition_id if known else None


def _cell(issuer: str, record_id: str, version: int) -> Cell:
    return Cell("campaign_records", "claims", (issuer, record_id, str(version)))


class CampaignRecords:
    def __init__(self, session: AsyncSession, cipher: ColumnCipher) -> None:
        self._session = session
        self._cipher = cipher

    async def add(self, issuer: str, record_id: str, version: int, kind: str, issued_at: int,
                  claims: Mapping[str, Any]) -> bool:
        """Keep one version; False if it was already kept or names no thread."""
        thread = thread_of(kind, record_id, claims)
        if thread is None or await self._session.get(
                CampaignRecordRow, (issuer, record_id, version)) is not None:
            return False
        self._session.add(CampaignRecordRow(
            issuer=issuer, record_id=record_id, version=version, kind=kind, thread=thread,
            issued_at=issued_at,
            claims=self._cipher.encrypt_json(dict(claims), _cell(issuer, record_id, version)),
            stored_at=utc_now()))
        await self._session.flush()
        return True

    async def latest(self, *, kind: str | None = None, thread: str | None = None
                     ) -> list[CampaignItem]:
        """The highest version of each record, oldest issue first."""
        query = select(CampaignRecordRow)
        if kind is not None:
            query = query.where(CampaignRecordRow.kind == kind)
        if thread is not None:
            query = query.where(CampaignRecordRow.thread == thread)
        newest: dict[tuple[str, str], CampaignRecordRow] = {}
        for row in await self._session.scalars(query):
            key = (row.issuer, row.record_id)
            if key not in newest or newest[key].version < row.version:
                newest[key] = row
        rows = sorted(newest.values(), key=lambda r: (r.issued_at, r.issuer, r.record_id))
        return [self._item(row) for row in rows]

    async def room(self, proposal_id: str) -> CampaignRoom | None:
        row = await self._session.get(CampaignRoomRow, proposal_id)
        return None if row is None else _room(row)

    async def rooms(self) -> list[CampaignRoom]:
        return [_room(row) for row in await self._session.scalars(select(CampaignRoomRow))]

    async def set_room(self, proposal_id: str, proposal_issuer: str, *, state: str,
                       room_id: str | None = None, created_by_us: bool = False) -> None:
        row = await self._session.get(CampaignRoomRow, proposal_id)
        if row is None:
            row = CampaignRoomRow(proposal_id=proposal_id, proposal_issuer=proposal_issuer,
                                  room_id=room_id, state=state, created_by_us=created_by_us,
                                  updated_at=utc_now())
            self._session.add(row)
        else:
            row.state = state
            row.room_id = room_id or row.room_id
            row.created_by_us = row.created_by_us or created_by_us
            row.updated_at = utc_now()
        await self._session.flush()

    def _item(self, row: CampaignRecordRow) -> CampaignItem:
        claims = self._cipher.decrypt_json(row.claims, _cell(row.issuer, row.record_id,
                                                              row.version))
        return CampaignItem(row.issuer, row.record_id, row.version, row.kind, row.thread,
                            row.issued_at, claims)


def _room(row: CampaignRoomRow) -> CampaignRoom:
    return CampaignRoom(row.proposal_id, row.proposal_issuer, row.room_id, row.state,
                        row.created_by_us)


async def keep_received(session: AsyncSession, node: Node, record: VerifiedRecord) -> None:
    """The record handler of every campaign kind: keep the verified record here too."""
    async with node.store.read() as tx:
        cipher = tx.cipher
    await CampaignRecords(session, cipher).add(record.issuer, record.record_id, record.version,
                                               record.kind, record.issued_at,
                                               dict(record.claims))
