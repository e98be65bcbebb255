"""The store side of files other members shared with this node (table ``received_files``).

Ids, sizes, the transfer's status and progress are plaintext (the fetch loop picks rows by
status); the file's description, the key that opens it in transit and the key of its sealed copy
here are in the encrypted ``details`` column, wiped when a retraction removes the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from federation.encoding import b64u_decode, b64u_encode
from node.core.store.cipher import Cell, ColumnCipher
from node.core.store.tables import ReceivedFileRow
from node.features.evidence.transfer import SharedFile, Status, parse_shared_file


@dataclass(frozen=True)
class ReceivedFile:
    file_id: str
    issuer: str
    record_id: str
    version: int
    position: int
    status: Status
    reason: str | None
    size: int
    parts_done: int
    received_at: int
    shared: SharedFile | None = field(repr=False)
    """The signed description (``None`` if it did not parse, or once removed)."""
    room_id: str = ""
    event_id: str = ""
    local_key: bytes | None = field(default=None, repr=False)
    """The key of the sealed copy in ``DATA_DIR/evidence/`` once stored."""


def _cell(file_id: str) -> Cell:
    return Cell("received_files", "details", (file_id,))


def _time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class ReceivedFiles:
    def __init__(self, session: AsyncSession, cipher: ColumnCipher) -> None:
        self._session = session
        self._cipher = cipher

    async def add(self, received: ReceivedFile, description: object) -> bool:
        """Keep a file announced by a record; ``False`` if that record version's file at that
        position is already here (records are delivered at least once)."""
        exists = await self._session.scalar(select(ReceivedFileRow.file_id).where(
            ReceivedFileRow.issuer == received.issuer,
            ReceivedFileRow.record_id == received.record_id,
            ReceivedFileRow.version == received.version,
            ReceivedFileRow.position == received.position))
        if exists is not None:
            return False
        details = {"description": description, "room_id": received.room_id,
                   "event_id": received.event_id, "local_key": None}
        self._session.add(ReceivedFileRow(
            file_id=received.file_id, issuer=received.issuer, record_id=received.record_id,
            version=received.version, position=received.position,
            status=received.status.value, reason=received.reason, size=received.size,
            parts_done=0, received_at=_time(received.received_at),
            updated_at=_time(received.received_at),
            details=self._cipher.encrypt_json(details, _cell(received.file_id))))
        await self._session.flush()
        return True

    async def get(self, file_id: str) -> ReceivedFile | None:
        row = await self._session.get(ReceivedFileRow, file_id)
        return None if row is None else self._file(row)

    async def pending(self) -> list[str]:
        return list(await self._session.scalars(
            select(ReceivedFileRow.file_id).where(ReceivedFileRow.status == Status.PENDING.value)
            .order_by(ReceivedFileRow.received_at, ReceivedFileRow.file_id)))

    async def of_record(self, issuer: str, record_id: str,
                        version: int | None = None) -> list[ReceivedFile]:
        query = select(ReceivedFileRow).where(ReceivedFileRow.issuer == issuer,
                                              ReceivedFileRow.record_id == record_id)
        if version is not None:
            query = query.where(ReceivedFileRow.version == version)
        rows = await self._session.scalars(
            query.order_by(ReceivedFileRow.version, ReceivedFileRow.position))
        return [self._file(row) for row in rows]

    async def progress(self, file_id: str, parts_done: int, now: int) -> None:
        row = await self._row(file_id)
        row.parts_done, row.updated_at = parts_done, _time(now)
        await self._session.flush()

    async def stored(self, file_id: str, local_key: bytes, now: int) -> None:
        row = await self._row(file_id)
        details = self._details(row)
        details["local_key"] = b64u_encode(local_key)
        row.details = self._cipher.encrypt_json(details, _cell(file_id))
        row.status, row.updated_at = Status.STORED.value, _time(now)
        await self._session.flush()

    async def quarantined(self, file_id: str, reason: str, now: int) -> None:
        row = await self._row(file_id)
        row.status, row.reason, row.updated_at = Status.QUARANTINED.value, reason, _time(now)
        await self._session.flush()

    async def remove(self, file_id: str, now: int) -> None:
        """Forget the file: its description and keys are wiped; the row says it was removed."""
        row = await self._row(file_id)
        row.status, row.details, row.updated_at = Status.REMOVED.value, None, _time(now)
        await self._session.flush()

    async def _row(self, file_id: str) -> ReceivedFileRow:
        row = await self._session.get(ReceivedFileRow, file_id)
        if row is None:
            raise LookupError(file_id)
        return row

    def _details(self, row: ReceivedFileRow) -> dict[str, Any]:
        if row.details is None:
            return {}
        details: dict[str, Any] = self._cipher.decrypt_json(row.details, _cell(row.file_id))
        return details

    def _file(self, row: ReceivedFileRow) -> ReceivedFile:
        details = self._details(row)
        local_key = details.get("local_key")
        return ReceivedFile(
            file_id=row.file_id, issuer=row.issuer, record_id=row.record_id,
            version=row.version, position=row.position, status=Status(row.status),
            reason=row.reason, size=row.size, parts_done=row.parts_done,
            received_at=int(row.received_at.timestamp()),
            shared=parse_shared_file(details.get("description")),
            room_id=details.get("room_id", ""), event_id=details.get("event_id", ""),
            local_key=b64u_decode(local_key) if isinstance(local_key, str) else None)
