"""Append-only audit log of what users and the node did.

Callers put no case content in ``details`` (ids, field names, counts, recipients are fine). The
actor (a staff user name) and the details are encrypted anyway, bound to the entry's time, action
and target, so neither can be moved to another entry undetected. There is no update or delete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from node.core.store.cipher import Cell, ColumnCipher
from node.core.store.ids import Clock
from node.core.store.tables import AuditRow
from sync.tables import table

# Built once, and not through the unit of work: every share and alert appends an entry.
_APPEND = insert(table(AuditRow)).returning(AuditRow.id)

MAX_PAGE = 500


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: datetime
    actor: str = field(repr=False)
    action: str
    target: str | None
    details: dict[str, Any] = field(repr=False)


def _cell(column: str, at: datetime, action: str, target: str | None) -> Cell:
    return Cell("audit_log", column, (at.isoformat(), action, target or ""))


class AuditLog:
    def __init__(self, session: AsyncSession, cipher: ColumnCipher, clock: Clock) -> None:
        self._session = session
        self._cipher = cipher
        self._clock = clock

    async def append(
        self,
        actor: str,
        action: str,
        target: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        at = self._clock().astimezone(UTC)  # the cell must match the UTC time read back
        details = details or {}
        entry_id = await self._session.scalar(_APPEND, {
            "at": at, "action": action, "target": target,
            "actor": self._cipher.encrypt_text(actor, _cell("actor", at, action, target)),
            "details": self._cipher.encrypt_json(details, _cell("details", at, action, target)),
        })
        assert entry_id is not None
        return AuditEvent(entry_id, at, actor, action, target, details)

    async def recent(self, *, limit: int = 100, before_id: int | None = None) -> list[AuditEvent]:
        """Newest first; pass the smallest id seen as ``before_id`` for the next page."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(AuditRow.id < before_id)
        return [self._event(row) for row in await self._session.scalars(query)]

    def _event(self, row: AuditRow) -> AuditEvent:
        actor = self._cipher.decrypt_text(row.actor, _cell("actor", row.at, row.action, row.target))
        details = self._cipher.decrypt_json(
            row.details, _cell("details", row.at, row.action, row.target)
        )
        return AuditEvent(row.id, row.at, actor, row.action, row.target, details)
