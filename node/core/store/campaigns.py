"""The organisation's own campaigns: current version only, document encrypted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from node.core.store.cipher import Cell, ColumnCipher
from node.core.store.database import mark_wiped
from node.core.store.errors import RecordExists, RecordNotFound, VersionConflict
from node.core.store.ids import Clock, normalise_record_id
from node.core.store.tables import CampaignRow

_MAX_STATUS = 32


@dataclass(frozen=True)
class StoredCampaign:
    record_id: str
    version: int
    status: str
    document: dict[str, Any] = field(repr=False)
    created_at: datetime
    updated_at: datetime


def _cell(record_id: str, version: int) -> Cell:
    return Cell("campaigns", "document", (record_id, str(version)))


def _check_status(status: str) -> None:
    if not status or len(status) > _MAX_STATUS:
        raise ValueError(f"campaign status must be 1 to {_MAX_STATUS} characters")


class CampaignRepository:
    def __init__(self, session: AsyncSession, cipher: ColumnCipher, clock: Clock) -> None:
        self._session = session
        self._cipher = cipher
        self._clock = clock

    async def add(self, record_id: str, document: dict[str, Any], status: str) -> StoredCampaign:
        record_id = normalise_record_id(record_id)
        _check_status(status)
        if await self._session.get(CampaignRow, record_id) is not None:
            raise RecordExists(f"campaign {record_id} already exists")
        now = self._clock()
        row = CampaignRow(
            record_id=record_id,
            version=1,
            status=status,
            document=self._cipher.encrypt_json(document, _cell(record_id, 1)),
            created_at=now,
            updated_at=now,
        )
        self._session.add(row)
        await self._session.flush()
        return self._stored(row)

    async def update(
        self,
        record_id: str,
        document: dict[str, Any],
        status: str,
        *,
        expected_version: int | None = None,
    ) -> StoredCampaign:
        _check_status(status)
        row = await self._row(record_id)
        if expected_version is not None and row.version != expected_version:
            raise VersionConflict(
                f"campaign {row.record_id} is at version {row.version}, not {expected_version}"
            )
        row.version += 1
        row.status = status
        row.document = self._cipher.encrypt_json(document, _cell(row.record_id, row.version))
        row.updated_at = self._clock()
        await self._session.flush()
        return self._stored(row)

    async def get(self, record_id: str) -> StoredCampaign:
        return self._stored(await self._row(record_id))

    async def list(self, status: str | None = None) -> list[StoredCampaign]:
        """All campaigns (an organisation has few), most recently updated first."""
        query = select(CampaignRow).order_by(
            CampaignRow.updated_at.desc(), CampaignRow.record_id.desc()
        )
        if status is not None:
            query = query.where(CampaignRow.status == status)
        return [self._stored(row) for row in await self._session.scalars(query)]

    async def delete(self, record_id: str) -> None:
        """Remove the campaign entirely (the freed space is zeroed by secure_delete)."""
        await self._session.delete(await self._row(record_id))
        mark_wiped(self._session)
        await self._session.flush()

    async def _row(self, record_id: str) -> CampaignRow:
        record_id = normalise_record_id(record_id)
        row = await self._session.get(CampaignRow, record_id)
        if row is None:
            raise RecordNotFound(f"no campaign {record_id}")
        return row

    def _stored(self, row: CampaignRow) -> StoredCampaign:
        document = self._cipher.decrypt_json(row.document, _cell(row.record_id, row.version))
        return StoredCampaign(
            row.record_id, row.version, row.status, document, row.created_at, row.updated_at
        )
