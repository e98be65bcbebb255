"""Small named node settings (Matrix login, coalition room...), encrypted like any content.

They live in the ``store_meta`` table under a ``setting.`` prefix, each value a JSON document
encrypted with the data key and bound to its name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from node.core.store.cipher import Cell, ColumnCipher
from node.core.store.tables import StoreMeta
from sync.tables import PerDialect, table

_PREFIX = "setting."

# Built once: settings are read and written on every alert sent and received.
_VALUES = select(StoreMeta.name, StoreMeta.value).where(
    StoreMeta.name.in_(bindparam("names", expanding=True)))


def _set(insert: Any) -> Executable:
    upsert = insert(table(StoreMeta))
    return upsert.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=[StoreMeta.name], set_={"value": upsert.excluded.value})


_SET = PerDialect(_set)


def _cell(name: str) -> Cell:
    return Cell("store_meta", "value", (name,))


class SettingsRepository:
    def __init__(self, session: AsyncSession, cipher: ColumnCipher) -> None:
        self._session = session
        self._cipher = cipher

    async def get(self, key: str) -> Any | None:
        [value] = await self.get_many(key)
        return value

    async def get_many(self, *keys: str) -> list[Any | None]:
        """:meth:`get` for several keys in one query, in the order given."""
        names = [_PREFIX + key for key in keys]
        values = {name: value for name, value in
                  await self._session.execute(_VALUES, {"names": names})}
        return [None if name not in values else
                self._cipher.decrypt_json(values[name], _cell(name)) for name in names]

    async def set(self, key: str, value: Any) -> None:
        """Create or replace, in one statement (nothing is read first)."""
        name = _PREFIX + key
        encrypted = self._cipher.encrypt_json(value, _cell(name))
        await self._session.execute(_SET.on(self._session), {"name": name, "value": encrypted})
