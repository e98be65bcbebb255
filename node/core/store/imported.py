"""Spreadsheet rows imported before, found again by keyed hash (see ``imported_rows``).

The importer computes both hashes with ``ColumnCipher.lookup_tag``; this repository only keeps
them, so nothing here ever sees a key value or a cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from node.core.store.ids import Clock, normalise_record_id
from node.core.store.tables import ImportedRowRow
from sync.tables import PerDialect, table


def _remember(insert: Any) -> Executable:
    upsert = insert(table(ImportedRowRow))
    return upsert.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=[ImportedRowRow.identity],
        set_={"record_id": upsert.excluded.record_id, "content": upsert.excluded.content,
              "imported_at": upsert.excluded.imported_at},
    )


_REMEMBER = PerDialect(_remember)
_PER_QUERY = 500  # well under every database's limit on bound parameters


@dataclass(frozen=True)
class ImportedRow:
    identity: bytes
    record_id: str
    content: bytes


class ImportedRowRepository:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    async def find(self, identities: Sequence[bytes]) -> dict[bytes, ImportedRow]:
        """The rows imported before among ``identities``, by identity."""
        wanted = sorted(set(identities))
        found: dict[bytes, ImportedRow] = {}
        for start in range(0, len(wanted), _PER_QUERY):
            rows = await self._session.scalars(select(ImportedRowRow).where(
                ImportedRowRow.identity.in_(wanted[start:start + _PER_QUERY])))
            found.update((row.identity, ImportedRow(row.identity, row.record_id, row.content))
                         for row in rows)
        return found

    async def remember(self, rows: Sequence[ImportedRow]) -> None:
        """Record (or move) each identity to its case and content, in one statement."""
        if not rows:
            return
        now = self._clock()
        await self._session.execute(_REMEMBER.on(self._session), [
            {"identity": row.identity, "record_id": normalise_record_id(row.record_id),
             "content": row.content, "imported_at": now} for row in rows])
