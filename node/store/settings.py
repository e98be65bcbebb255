"""Small named node settings (Matrix login, coalition room...), encrypted like any content.

They live in the ``store_meta`` table under a ``setting.`` prefix, each value a JSON document
encrypted with the data key and bound to its name.
"""

from __future__ import annotations

from typing import Any

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

    async def set(self, key: str, value: Any) -> None:
        name = _PREFIX + key
        row = await self._session.get(StoreMeta, name) or StoreMeta(name=name)
        row.value = self._cipher.encrypt_json(value, _cell(name))
        self._session.add(row)
        await self._session.flush()
