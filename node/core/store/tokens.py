"""API bearer tokens. Only the SHA-256 of a token is stored; the token is shown once.

Tokens are 256-bit random values, so an unsalted SHA-256 is enough: there is nothing to guess.
The user name is encrypted like every other name in the store.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from node.core.store.cipher import Cell, ColumnCipher
from node.core.store.errors import RecordNotFound
from node.core.store.ids import Clock
from node.core.store.tables import ApiTokenRow

# Built once: every API call is authenticated with it.
_VALID = select(ApiTokenRow.user, ApiTokenRow.role).where(
    ApiTokenRow.token_hash == bindparam("token_hash"), ApiTokenRow.revoked == false())

TOKEN_PREFIX = "minga_"
_TOKEN_ID_CHARS = 16


class Role(StrEnum):
    """Staff roles; a higher role may do everything a lower one may."""

    admin = "admin"
    editor = "editor"
    viewer = "viewer"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANKS = {Role.viewer: 1, Role.editor: 2, Role.admin: 3}


@dataclass(frozen=True)
class TokenOwner:
    user: str = field(repr=False)
    role: Role


@dataclass(frozen=True)
class TokenInfo:
    """What an admin may see about a token: never the token itself."""

    token_id: str
    user: str = field(repr=False)
    role: Role
    created_at: datetime
    revoked: bool


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _user_cell(hashed: str) -> Cell:
    return Cell("api_tokens", "user", (hashed,))


class TokenRepository:
    def __init__(self, session: AsyncSession, cipher: ColumnCipher, clock: Clock) -> None:
        self._session = session
        self._cipher = cipher
        self._clock = clock

    async def create(self, user: str, role: Role) -> str:
        """A new token for ``user``; the returned plaintext is not stored anywhere."""
        if not user:
            raise ValueError("a token needs a user name")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        hashed = token_hash(token)
        self._session.add(
            ApiTokenRow(
                token_hash=hashed,
                user=self._cipher.encrypt_text(user, _user_cell(hashed)),
                role=Role(role).value,
                created_at=self._clock(),
                revoked=False,
            )
        )
        await self._session.flush()
        return token

    async def verify(self, token: str) -> TokenOwner | None:
        """The owner of a valid, unrevoked token, else None."""
        hashed = token_hash(token)
        row = (await self._session.execute(_VALID, {"token_hash": hashed})).first()
        if row is None:
            return None
        user, role = row
        return TokenOwner(self._user(user, hashed), Role(role))

    async def list(self) -> list[TokenInfo]:
        rows = await self._session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.created_at))
        return [
            TokenInfo(
                row.token_hash[:_TOKEN_ID_CHARS],
                self._user(row.user, row.token_hash),
                Role(row.role),
                row.created_at,
                row.revoked,
            )
            for row in rows
        ]

    async def revoke(self, token_id: str) -> None:
        """Revoke by the ``token_id`` shown in :meth:`list` (a prefix of the token's hash)."""
        if len(token_id) != _TOKEN_ID_CHARS:
            raise RecordNotFound(f"no token {token_id}")
        row = await self._session.scalar(
            select(ApiTokenRow).where(ApiTokenRow.token_hash.startswith(token_id, autoescape=True))
        )
        if row is None:
            raise RecordNotFound(f"no token {token_id}")
        row.revoked = True
        await self._session.flush()

    def _user(self, encrypted: bytes, hashed: str) -> str:
        return self._cipher.decrypt_text(encrypted, _user_cell(hashed))
