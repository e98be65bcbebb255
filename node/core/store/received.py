"""Records other members shared with this node, as verified by the sync layer.

One row per (issuer, record id, version); storing the same triple again is a no-op, so ingestion
is idempotent. The highest stored version is the current one, so an older version arriving late
never hides a newer one. A retraction wipes the disclosed claims of every version and keeps the
rows as tombstones; versions arriving after a retraction are stored as tombstones too.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from node.core.store.cipher import Cell, ColumnCipher
from node.core.store.database import mark_wiped
from node.core.store.ids import Clock, normalise_record_id
from node.core.store.tables import ReceivedRecordRow
from sync.tables import table

MAX_PAGE = 200
_KEYS_PER_QUERY = 400  # 800 bound parameters: well under every database's limit
# Built once: every received envelope is checked and stored with them.
_R = ReceivedRecordRow
_STORED_AMONG = select(_R.issuer, _R.record_id, _R.version, _R.retracted).where(
    tuple_(_R.issuer, _R.record_id).in_(bindparam("keys", expanding=True)))
_ADD = insert(table(ReceivedRecordRow))


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
    coalition_id: str | None = None
    """The coalition the record came through (decision 0032)."""


RETRACTION_KIND = "retraction"


@dataclass(frozen=True)
class Incoming:
    """One verified record version to store."""

    issuer: str
    record_id: str
    version: int
    kind: str
    claims: dict[str, Any] = field(repr=False)
    coalition_id: str | None = None


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
        added = await self.add_many([Incoming(issuer, record_id, version, kind, claims)],
                                    verification)
        return added == 1

    async def add_many(self, records: Sequence[Incoming], verification: str) -> int:
        """Store received record versions (one envelope's worth); returns how many were new.

        Versions already stored, or listed twice, are skipped (the first copy counts); a
        version of a retracted record is stored as a tombstone. One query per
        :data:`_KEYS_PER_QUERY` records for what is stored, one insert for what is new. Run
        it in a write transaction: those are serialised, so nothing can slip in between the
        query and the insert (a concurrent insert elsewhere fails the transaction, which the
        inbox retries).
        """
        wanted: dict[tuple[str, str, int], Incoming] = {}
        for record in records:
            key = (record.issuer, normalise_record_id(record.record_id), record.version)
            wanted.setdefault(key, record)
        stored, retracted = await self._stored_among({key[:2] for key in wanted})
        now = self._clock()
        rows = [
            {"issuer": key[0], "record_id": key[1], "version": key[2], "kind": record.kind,
             "claims": None if key[:2] in retracted
             else self._cipher.encrypt_json(record.claims, _cell(*key)),
             "verification": verification, "retracted": key[:2] in retracted,
             "received_at": now, "coalition_id": record.coalition_id}
            for key, record in wanted.items() if key not in stored
        ]
        if rows:
            await self._session.execute(_ADD, rows)
        return len(rows)

    async def _stored_among(
        self, records: Collection[tuple[str, str]]
    ) -> tuple[set[tuple[str, str, int]], set[tuple[str, str]]]:
        """Of these (issuer, record id): every stored version, and which are retracted."""
        stored: set[tuple[str, str, int]] = set()
        retracted: set[tuple[str, str]] = set()
        wanted = sorted(records)
        for start in range(0, len(wanted), _KEYS_PER_QUERY):
            rows = await self._session.execute(
                _STORED_AMONG, {"keys": wanted[start:start + _KEYS_PER_QUERY]})
            for issuer, record_id, version, is_retracted in rows:
                stored.add((issuer, record_id, version))
                if is_retracted:
                    retracted.add((issuer, record_id))
        return stored, retracted

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

    async def retraction_of(self, issuer: str, record_id: str) -> ReceivedRecord | None:
        """The retraction ``issuer`` sent of its record ``record_id``, if one arrived (its
        reason and note stay readable: the tombstone says why and when)."""
        wanted = normalise_record_id(record_id)
        rows = await self._session.scalars(select(ReceivedRecordRow).where(
            ReceivedRecordRow.issuer == issuer, ReceivedRecordRow.kind == RETRACTION_KIND))
        for row in rows:
            record = self._record(row)
            target = (record.claims or {}).get("target")
            if isinstance(target, dict) and target.get("issuer") == issuer \
                    and target.get("record_id") == wanted:
                return record
        return None

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
            coalition_id=row.coalition_id,
        )
