"""The store side of evidence: attachment rows and custody entries (tables in
``node.core.store.tables``). Everything but ids, sizes and times is encrypted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from federation.encoding import b64u_decode, b64u_encode
from node.core.store.cipher import Cell, ColumnCipher
from node.core.store.tables import AttachmentRow, CustodyEntryRow
from node.features.evidence.credentials import Credentials
from node.features.evidence.custody import LogHead, head_after


class AttachmentNotFound(LookupError):
    pass


@dataclass(frozen=True)
class CleanedCopy:
    """The working copy: made (with what it removed) or not, and why not."""

    made: bool
    sha256: str = ""
    size: int = 0
    key: bytes = field(default=b"", repr=False)
    removed: tuple[str, ...] = ()
    reason: str = ""  # when not made: "unsupported" or "failed"

    def wire(self) -> dict[str, Any]:
        return {"made": self.made, "sha256": self.sha256, "size": self.size,
                "key": b64u_encode(self.key), "removed": list(self.removed),
                "reason": self.reason}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> CleanedCopy:
        return cls(made=data["made"], sha256=data["sha256"], size=data["size"],
                   key=b64u_decode(data["key"]), removed=tuple(data["removed"]),
                   reason=data["reason"])


@dataclass(frozen=True)
class Attachment:
    attachment_id: str
    record_id: str
    name: str
    media_type: str
    size: int
    sha256: str
    created_at: int
    key: bytes = field(repr=False)
    working: CleanedCopy | None = None
    manifest: str = ""
    """A provenance manifest the original carries (``c2pa``, ``proofmode``), recognised from
    the file's structure (:mod:`.provenance`)."""
    credentials: Credentials | None = None
    """What the C2PA library found (:mod:`.credentials`); None when not checked (a kind of
    file the library does not read, or stored before decision 0031)."""

    def details(self) -> dict[str, Any]:
        return {"name": self.name, "media_type": self.media_type, "sha256": self.sha256,
                "key": b64u_encode(self.key),
                "working": self.working.wire() if self.working is not None else None,
                "manifest": self.manifest,
                "c2pa": self.credentials.wire() if self.credentials is not None else None}


def _details_cell(attachment_id: str) -> Cell:
    return Cell("attachments", "details", (attachment_id,))


def _entry_cell(attachment_id: str, seq: int) -> Cell:
    return Cell("custody_entries", "entry", (attachment_id, str(seq)))


class AttachmentStore:
    def __init__(self, session: AsyncSession, cipher: ColumnCipher) -> None:
        self._session = session
        self._cipher = cipher

    async def add(self, attachment: Attachment) -> None:
        self._session.add(AttachmentRow(
            attachment_id=attachment.attachment_id, record_id=attachment.record_id,
            size=attachment.size, created_at=datetime.fromtimestamp(attachment.created_at, UTC),
            details=self._cipher.encrypt_json(attachment.details(),
                                              _details_cell(attachment.attachment_id))))
        await self._session.flush()

    async def set_working(self, attachment_id: str, working: CleanedCopy,
                          manifest: str = "",
                          credentials: Credentials | None = None) -> Attachment:
        row = await self._row(attachment_id)
        attachment = self._attachment(row)
        details = {**attachment.details(), "working": working.wire(), "manifest": manifest,
                   "c2pa": credentials.wire() if credentials is not None else None}
        row.details = self._cipher.encrypt_json(details, _details_cell(attachment_id))
        await self._session.flush()
        return self._attachment(row)

    async def set_credentials(self, attachment_id: str, credentials: Credentials | None,
                              manifest: str) -> Attachment:
        row = await self._row(attachment_id)
        details = {**self._attachment(row).details(), "manifest": manifest,
                   "c2pa": credentials.wire() if credentials is not None else None}
        row.details = self._cipher.encrypt_json(details, _details_cell(attachment_id))
        await self._session.flush()
        return self._attachment(row)

    async def ids(self) -> list[str]:
        """Every attachment's id, oldest first."""
        return list(await self._session.scalars(
            select(AttachmentRow.attachment_id)
            .order_by(AttachmentRow.created_at, AttachmentRow.attachment_id)))

    async def get(self, attachment_id: str) -> Attachment:
        return self._attachment(await self._row(attachment_id))

    async def of_case(self, record_id: str) -> list[Attachment]:
        rows = await self._session.scalars(
            select(AttachmentRow).where(AttachmentRow.record_id == record_id)
            .order_by(AttachmentRow.created_at, AttachmentRow.attachment_id))
        return [self._attachment(row) for row in rows]

    async def append_entry(self, entry: dict[str, Any]) -> None:
        """Store a signed entry made with :meth:`head` read in this same transaction; the
        primary key (attachment, seq) refuses a second entry at the same place."""
        attachment_id, seq = entry["attachment"], entry["seq"]
        self._session.add(CustodyEntryRow(
            attachment_id=attachment_id, seq=seq, at=datetime.fromtimestamp(entry["at"], UTC),
            entry=self._cipher.encrypt_json(entry, _entry_cell(attachment_id, seq))))
        await self._session.flush()

    async def entries(self, attachment_id: str) -> list[dict[str, Any]]:
        rows = await self._session.scalars(
            select(CustodyEntryRow).where(CustodyEntryRow.attachment_id == attachment_id)
            .order_by(CustodyEntryRow.seq))
        return [self._cipher.decrypt_json(row.entry, _entry_cell(attachment_id, row.seq))
                for row in rows]

    async def head(self, attachment_id: str) -> LogHead:
        return head_after(await self.entries(attachment_id))

    async def _row(self, attachment_id: str) -> AttachmentRow:
        row = await self._session.get(AttachmentRow, attachment_id)
        if row is None:
            raise AttachmentNotFound(attachment_id)
        return row

    def _attachment(self, row: AttachmentRow) -> Attachment:
        data = self._cipher.decrypt_json(row.details, _details_cell(row.attachment_id))
        working = data.get("working")
        credentials = data.get("c2pa")
        return Attachment(
            attachment_id=row.attachment_id, record_id=row.record_id, name=data["name"],
            media_type=data["media_type"], size=row.size, sha256=data["sha256"],
            created_at=int(row.created_at.timestamp()), key=b64u_decode(data["key"]),
            working=CleanedCopy.from_wire(working) if working is not None else None,
            manifest=str(data.get("manifest", "")),
            credentials=Credentials.from_wire(credentials) if credentials is not None else None)
