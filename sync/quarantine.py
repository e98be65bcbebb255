"""Events that failed a check, kept with their reason (docs/architecture.md §7: never silently
dropped).

Reasons are stable codes. From the inbox itself: ``malformed``, ``tampered`` (a blob that does
not match its hash), ``blob-unavailable``, ``wrong-sender`` (not posted by the issuer's node
account), ``wrong-room``, ``replayed``, ``chain-conflict``, ``not-a-recipient`` (in a room where
every envelope must be addressed to this node), ``issuer-mismatch`` (a record issued by another
org than the envelope's sender), ``audience-mismatch``, ``internal-error`` (handling failed
repeatedly). From :mod:`federation.sealing`: ``sender-not-trusted``, ``bad-signature``,
``tampered``. From :mod:`federation.sdjwt` for one record in a bundle: its ``reason``
(``bad_signature``, ``issuer_key_not_trusted``, ...). Details are short and content-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sync.host import Quarantined
from sync.tables import DETAIL, REASON, QuarantineRow


@dataclass(frozen=True)
class QuarantineEntry:
    id: int
    room_id: str
    event_id: str
    sender: str
    reason: str
    detail: str
    at_ms: int


def quarantine(session: AsyncSession, entry: Quarantined, at_ms: int) -> None:
    session.add(
        QuarantineRow(
            room_id=entry.room_id,
            event_id=entry.event_id,
            sender=entry.sender,
            reason=entry.reason[:REASON],
            detail=entry.detail[:DETAIL],
            at=at_ms,
        )
    )


async def list_quarantined(
    session: AsyncSession, *, limit: int = 50, before_id: int | None = None
) -> list[QuarantineEntry]:
    """The newest quarantined events first; page with ``before_id`` = the last id seen."""
    query = select(QuarantineRow).order_by(QuarantineRow.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(QuarantineRow.id < before_id)
    return [
        QuarantineEntry(row.id, row.room_id, row.event_id, row.sender, row.reason, row.detail,
                        row.at)
        for row in await session.scalars(query)
    ]


async def count_quarantined(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(QuarantineRow)) or 0)


async def count_by_reason(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(QuarantineRow.reason, func.count()).group_by(QuarantineRow.reason)
    )
    return {reason: int(count) for reason, count in rows}
