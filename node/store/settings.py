"""Small named node settings (Matrix login, coalition room...), encrypted like any content.

They live in the ``store_meta`` table under a ``setting.`` prefix, each value a JSON document
encrypted with the data key and bound to its name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from node.store.cipher import Cell, ColumnCipher
from node.store.tables import StoreMeta

_PREFIX = "setting."


def _cell(name: str) -> Cell:
    return Cell("store_meta", "value", (name,))


class SettingsRepository:
    def __init__(self, session: AsyncSession, cipher: ColumnCipher) -> None:
        self._session = session
        self._cipher = cipher

    async def get(self, key: str) -> Any | None:
        name = _PREFIX + key
        row = await self._session.get(StoreMeta, name)
        return None if row is None else self._cipher.decrypt_json(row.value, _cell(name))

    async def get_many(self, *keys: str) -> list[Any | None]:
        """:meth:`get` for several keys in one query, in the order given."""
        names = [_PREFIX + key for key in keys]
        rows = {row.name: row for row in await self._session.scalars(
            select(StoreMeta).where(StoreMeta.name.in_(names)))}
        return [None if name not in rows else
                self._cipher.decrypt_json(rows[name].value, _cell(name)) for name in names]

    async def set(self, key: str, value: Any) -> None:
        """Create or replace; one statement (a row already loaded in this session is updated in
        place, any other is upserted without being read first)."""
        name = _PREFIX + key
        encrypted = self._cipher.encrypt_json(value, _cell(name))
        held = self._session.identity_map.get(inspect(StoreMeta).identity_key_from_primary_key(
            (name,)))
        if isinstance(held, StoreMeta):
            held.value = encrypted
            await self._session.flush()
            return
        await self._session.execute(
            sqlite_insert(StoreMeta).values(name=name, value=encrypted)
            .on_conflict_do_update(index_elements=[StoreMeta.name], set_={"value": encrypted})
        )
