"""Staff accounts of the web interface and their server-side sessions.

A staff user has a role (the API token roles: admin, editor, viewer), a language, an Argon2id
password hash and optionally a TOTP secret (both produced by ``node.core.web``; stored here as
opaque values). The user name, the password hash and the TOTP secret are encrypted; role,
flags and timestamps are not. Looking a user up by name decrypts every name: a node has tens of
staff, not millions, and no plaintext or keyed index of names is kept.

Sessions are stored by the SHA-256 of their random token, so a copied database holds no usable
session; deleting a user's rows logs them out everywhere.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from node.core.store.cipher import Cell, ColumnCipher
from node.core.store.errors import RecordExists, RecordNotFound
from node.core.store.ids import Clock, utc_now
from node.core.store.tables import Base, UTCDateTime
from node.core.store.tokens import Role

if TYPE_CHECKING:
    from node.core.store.store import StoreTransaction

USER_ID = 32
LANGUAGE = 16


class StaffUserRow(Base):
    """A staff account of the web interface."""

    __tablename__ = "staff_users"

    user_id: Mapped[str] = mapped_column(String(USER_ID), primary_key=True)
    username: Mapped[bytes] = mapped_column(LargeBinary)
    role: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(LANGUAGE))
    password: Mapped[bytes] = mapped_column(LargeBinary)
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    must_change_password: Mapped[bool] = mapped_column(Boolean)
    disabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StaffSessionRow(Base):
    """A logged-in browser: only the SHA-256 of its cookie is kept."""

    __tablename__ = "staff_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(USER_ID), ForeignKey("staff_users.user_id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class StaffUser:
    user_id: str
    username: str
    role: Role
    language: str
    password: dict[str, Any] = field(repr=False)
    totp_secret: bytes | None = field(repr=False)
    totp_last_step: int | None
    must_change_password: bool
    disabled: bool
    created_at: datetime
    updated_at: datetime

    @property
    def has_totp(self) -> bool:
        return self.totp_secret is not None


@dataclass(frozen=True)
class StaffSession:
    user: StaffUser
    token_hash: str
    created_at: datetime
    last_seen_at: datetime


def normalise_username(username: str) -> str:
    """User names compare case-insensitively and after Unicode normalisation."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


def session_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _cell(user_id: str, column: str) -> Cell:
    return Cell("staff_users", column, (user_id,))


class UsernameTaken(RecordExists):
    """Another account already has this user name."""


class UserRepository:
    """Staff accounts and sessions, inside the caller's store transaction."""

    def __init__(self, session: AsyncSession, cipher: ColumnCipher, clock: Clock) -> None:
        self._session = session
        self._cipher = cipher
        self._clock = clock

    async def add(
        self,
        username: str,
        role: Role,
        password: dict[str, Any],
        *,
        language: str = "en",
        totp_secret: bytes | None = None,
        must_change_password: bool = False,
    ) -> StaffUser:
        name = username.strip()
        if not name:
            raise ValueError("a user needs a name")
        if await self.by_username(name) is not None:
            raise UsernameTaken("a user with this name exists already")
        user_id = secrets.token_hex(USER_ID // 2)
        now = self._clock()
        row = StaffUserRow(
            user_id=user_id, role=Role(role).value, language=language,
            username=self._cipher.encrypt_text(name, _cell(user_id, "username")),
            password=self._cipher.encrypt_json(password, _cell(user_id, "password")),
            totp_secret=self._encrypt_totp(user_id, totp_secret), totp_last_step=None,
            must_change_password=must_change_password, disabled=False,
            created_at=now, updated_at=now,
        )
        self._session.add(row)
        await self._session.flush()
        return self._user(row)

    async def get(self, user_id: str) -> StaffUser:
        return self._user(await self._row(user_id))

    async def by_username(self, username: str) -> StaffUser | None:
        wanted = normalise_username(username)
        for user in await self.all():
            if normalise_username(user.username) == wanted:
                return user
        return None

    async def all(self) -> list[StaffUser]:
        rows = await self._session.scalars(select(StaffUserRow).order_by(StaffUserRow.created_at))
        return sorted((self._user(row) for row in rows), key=lambda u: u.username.casefold())

    async def count_active_admins(self) -> int:
        return sum(1 for u in await self.all() if u.role == Role.admin and not u.disabled)

    async def set_password(
        self, user_id: str, password: dict[str, Any], *, must_change: bool = False
    ) -> None:
        row = await self._row(user_id)
        row.password = self._cipher.encrypt_json(password, _cell(row.user_id, "password"))
        row.must_change_password = must_change
        await self._touch(row)

    async def set_totp(self, user_id: str, secret: bytes | None) -> None:
        """Enrol (or with ``None`` remove) the TOTP second factor."""
        row = await self._row(user_id)
        row.totp_secret = self._encrypt_totp(row.user_id, secret)
        row.totp_last_step = None
        await self._touch(row)

    async def use_totp_step(self, user_id: str, step: int) -> None:
        """Remember the newest accepted TOTP step, so that code cannot be used again."""
        row = await self._row(user_id)
        row.totp_last_step = step
        await self._session.flush()

    async def set_role(self, user_id: str, role: Role) -> None:
        row = await self._row(user_id)
        row.role = Role(role).value
        await self._touch(row)

    async def set_language(self, user_id: str, language: str) -> None:
        row = await self._row(user_id)
        row.language = language
        await self._touch(row)

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        """Disabling also ends every session of the user."""
        row = await self._row(user_id)
        row.disabled = disabled
        if disabled:
            await self.end_sessions(row.user_id)
        await self._touch(row)

    # --- sessions ---------------------------------------------------------------------------

    async def start_session(self, user_id: str) -> str:
        """A new session for ``user_id``; the returned token is the cookie value."""
        row = await self._row(user_id)
        token = secrets.token_urlsafe(32)
        now = self._clock()
        self._session.add(StaffSessionRow(token_hash=session_hash(token), user_id=row.user_id,
                                          created_at=now, last_seen_at=now))
        await self._session.flush()
        return token

    async def session(self, token: str) -> StaffSession | None:
        """The session of this cookie value with its user, or None."""
        found = await self._session.execute(
            select(StaffSessionRow, StaffUserRow)
            .join(StaffUserRow, StaffUserRow.user_id == StaffSessionRow.user_id)
            .where(StaffSessionRow.token_hash == session_hash(token))
        )
        pair = found.first()
        if pair is None:
            return None
        session_row, user_row = pair
        return StaffSession(self._user(user_row), session_row.token_hash,
                            session_row.created_at, session_row.last_seen_at)

    async def touch_session(self, token_hash: str) -> None:
        row = await self._session.get(StaffSessionRow, token_hash)
        if row is not None:
            row.last_seen_at = self._clock()
            await self._session.flush()

    async def end_session(self, token_hash: str) -> None:
        await self._session.execute(
            delete(StaffSessionRow).where(StaffSessionRow.token_hash == token_hash)
        )

    async def end_sessions(self, user_id: str) -> int:
        """Log a user out everywhere; returns how many sessions ended."""
        result = await self._session.execute(
            delete(StaffSessionRow).where(StaffSessionRow.user_id == user_id)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def end_all_sessions(self) -> int:
        """Remove every session of every user (the node is being locked)."""
        result = await self._session.execute(delete(StaffSessionRow))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def end_sessions_before(self, cutoff: datetime) -> int:
        """Remove sessions last seen before ``cutoff`` (expired ones)."""
        result = await self._session.execute(
            delete(StaffSessionRow).where(StaffSessionRow.last_seen_at < cutoff)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    # --- rows -------------------------------------------------------------------------------

    async def _row(self, user_id: str) -> StaffUserRow:
        row = await self._session.get(StaffUserRow, user_id)
        if row is None:
            raise RecordNotFound(f"no staff user {user_id}")
        return row

    async def _touch(self, row: StaffUserRow) -> None:
        row.updated_at = self._clock()
        await self._session.flush()

    def _encrypt_totp(self, user_id: str, secret: bytes | None) -> bytes | None:
        if secret is None:
            return None
        return self._cipher.encrypt(secret, _cell(user_id, "totp_secret"))

    def _user(self, row: StaffUserRow) -> StaffUser:
        totp = (None if row.totp_secret is None
                else self._cipher.decrypt(row.totp_secret, _cell(row.user_id, "totp_secret")))
        return StaffUser(
            user_id=row.user_id,
            username=self._cipher.decrypt_text(row.username, _cell(row.user_id, "username")),
            role=Role(row.role),
            language=row.language,
            password=self._cipher.decrypt_json(row.password, _cell(row.user_id, "password")),
            totp_secret=totp,
            totp_last_step=row.totp_last_step,
            must_change_password=row.must_change_password,
            disabled=row.disabled,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def staff_users(tx: StoreTransaction, clock: Clock = utc_now) -> UserRepository:
    """The staff accounts of the store transaction ``tx``."""
    return UserRepository(tx.session, tx.cipher, clock)
