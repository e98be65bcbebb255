"""Records other members shared with this node, as verified by the sync layer.

One row per (issuer, record id, version); storing the same triple again is a no-op, so ingestion
is idempotent. The highest stored version is the current one, so an older version arriving late
never hides a newer one. A retraction wipes the disclosed claims of every version and keeps the
rows as tombstones; versions arriving after a retraction are stored as tombstones too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from node.store.cipher import Cell, ColumnCipher
from node.store.database import mark_wiped
from node.store.ids import Clock, normalise_record_id
from node.store.tables import ReceivedRecordRow

MAX_PAGE = 200


@dataclass(frozen=True)
class ReceivedRecord:
    issuer: str
    record_id: str
    version: int
    kind: str
    claims: dict[str, Any] | None = field(repr=False)  # None once retracted
    verification: str
    retracted: bool
    received_at: datetime


def _cell(issuer: str, record_id: str, version: int) -> Cell:
    return Cell("received_records", "claims", (issuer, record_id, str(version)))


def _latest_only() -> Select[ReceivedRecordRow]:
    newer = aliased(ReceivedRecordRow)
    highest = (
        select(func.max(newer.version))
        .where(
            and_(
                newer.issuer == ReceivedRecordRow.issuer,
                newer.record_id == ReceivedRecordRow.record_id,
            )
        )
        .scalar_subquery()
    )
    return select(ReceivedRecordRow).where(ReceivedRecordRow.version == highest)


class ReceivedRepository:
    def __init__(self, session: AsyncSession, cipher: ColumnCipher, clock: Clock) -> None:
        self._session = session
        self._cipher = cipher
        self._clock = clock

    async def add(
        self,
        issuer: str,
        record_id: str,
        version: int,
        kind: str,
        claims: dict[str, Any],
        verification: str,
    ) -> bool:
        """Store a received record version; False if this (issuer, id, version) is already in."""
        record_id = normalise_record_id(record_id)
        key = (issuer, record_id, version)
        if await self._session.get(ReceivedRecordRow, key) is not None:
            return False
        retracted = await self._is_retracted(issuer, record_id)
        row = ReceivedRecordRow(
            issuer=issuer,
            record_id=record_id,
            version=version,
            kind=kind,
            claims=None if retracted else self._cipher.encrypt_json(claims, _cell(*key)),
            verification=verification,
            retracted=retracted,
            received_at=self._clock(),
        )
        try:
            async with self._session.begin_nested():
                self._session.add(row)
        except IntegrityError:  # a concurrent transaction stored the same version first
            return False
        return True

    async def latest(self, issuer: str, record_id: str) -> ReceivedRecord | None:
        record_id = normalise_record_id(record_id)
        row = await self._session.scalar(
            select(ReceivedRecordRow)
            .where(ReceivedRecordRow.issuer == issuer, ReceivedRecordRow.record_id == record_id)
            .order_by(ReceivedRecordRow.version.desc())
            .limit(1)
        )
        return None if row is None else self._record(row)

    async def versions(self, issuer: str, record_id: str) -> list[ReceivedRecord]:
        rows = await self._session.scalars(
            select(ReceivedRecordRow)
            .where(
                ReceivedRecordRow.issuer == issuer,
                ReceivedRecordRow.record_id == normalise_record_id(record_id),
            )
            .order_by(ReceivedRecordRow.version)
        )
        return [self._record(row) for row in rows]

    async def count(self) -> int:
        """How many distinct records (latest versions) this node has received."""
        latest = _latest_only().subquery()
        total = await self._session.scalar(select(func.count()).select_from(latest))
        return int(total or 0)

    async def list_latest(
        self,
        *,
        kind: str | None = None,
        issuer: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ReceivedRecord]:
        """The latest version of each received record, most recently received first."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        query = _latest_only()
        if kind is not None:
            query = query.where(ReceivedRecordRow.kind == kind)
        if issuer is not None:
            query = query.where(ReceivedRecordRow.issuer == issuer)
        query = query.order_by(
            ReceivedRecordRow.received_at.desc(),
            ReceivedRecordRow.issuer,
            ReceivedRecordRow.record_id,
        )
        rows = await self._session.scalars(query.limit(limit).offset(offset))
        return [self._record(row) for row in rows]

    async def retract(self, issuer: str, record_id: str) -> int:
        """Wipe the claims of every stored version; returns how many versions were stored."""
        result = await self._session.execute(
            update(ReceivedRecordRow)
            .where(
                ReceivedRecordRow.issuer == issuer,
                ReceivedRecordRow.record_id == normalise_record_id(record_id),
            )
            .values(claims=None, retracted=True)
            .execution_options(synchronize_session="fetch")
        )
        mark_wiped(self._session)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def _is_retracted(self, issuer: str, record_id: str) -> bool:
        found = await self._session.scalar(
            select(ReceivedRecordRow.version)
            .where(
                ReceivedRecordRow.issuer == issuer,
                ReceivedRecordRow.record_id == record_id,
                ReceivedRecordRow.retracted == true(),
            )
            .limit(1)
        )
        return found is not None

    def _record(self, row: ReceivedRecordRow) -> ReceivedRecord:
        claims = (
            None
            if row.claims is None
            else self._cipher.decrypt_json(
                row.claims, _cell(row.issuer, row.record_id, row.version)
            )
        )
        return ReceivedRecord(
            issuer=row.issuer,
            record_id=row.record_id,
            version=row.version,
            kind=row.kind,
            claims=claims,
            verification=row.verification,
            retracted=row.retracted,
            received_at=row.received_at,
        )
