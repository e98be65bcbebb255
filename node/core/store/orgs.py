"""This node's own organisation and the coalition roster as this node knows it.

The own organisation's name and private-key blob are encrypted. A member's roster entry (profile,
public keys, self-signature) is public within the coalition but names organisations that may be at
risk, so it is encrypted too; org id, verification flag, safety code and Matrix user id stay plain
because the sync loop looks members up by them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, true
from sqlalchemy.ext.asyncio import AsyncSession

from node.core.store.cipher import Cell, ColumnCipher
from node.core.store.errors import RecordNotFound
from node.core.store.ids import Clock
from node.core.store.tables import CoalitionMemberRow, KeyRevocationRow, MemberRow, OwnOrgRow

# Built once: the verified members are read for every alert sent.
_MEMBERS = select(MemberRow).order_by(MemberRow.org_id)
_VERIFIED_WITH_REVOKED = _MEMBERS.where(MemberRow.verified == true())
_VERIFIED_MEMBERS = _VERIFIED_WITH_REVOKED.where(MemberRow.revoked_at.is_(None))


def _in_coalition(coalition_id: str) -> Any:
    return select(CoalitionMemberRow.org_id).where(
        CoalitionMemberRow.coalition_id == coalition_id)


@dataclass(frozen=True)
class OwnOrg:
    org_id: str
    name: str = field(repr=False)
    country: str
    private_keys: bytes = field(repr=False)
    public_keys: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Member:
    org_id: str
    entry: dict[str, Any] = field(repr=False)
    verified: bool
    safety_code: str
    matrix_user_id: str | None
    updated_at: datetime
    revoked_at: int | None = None
    """Unix seconds from which the member's keys are revoked (seized node), or None."""

    @property
    def name(self) -> str:
        """The name the member's roster profile gives, or its org id when it gives none."""
        profile = self.entry.get("profile")
        name = profile.get("name") if isinstance(profile, dict) else None
        return name.strip() if isinstance(name, str) and name.strip() else self.org_id


@dataclass(frozen=True)
class KeyRevocation:
    statement_hash: str
    org_id: str
    revoked_at: int
    statement: dict[str, Any] = field(repr=False)
    applied_at: datetime
    reason: str | None = field(default=None, repr=False)
    """Why members expelled the organisation (a quorum revocation); None for its own."""


def _revocation_cell(statement_hash: str) -> Cell:
    return Cell("key_revocations", "reason", (statement_hash,))


def _own_cell(org_id: str, column: str) -> Cell:
    return Cell("own_org", column, (org_id,))


def _member_cell(org_id: str) -> Cell:
    return Cell("members", "entry", (org_id,))


class OrgRepository:
    def __init__(self, session: AsyncSession, cipher: ColumnCipher, clock: Clock) -> None:
        self._session = session
        self._cipher = cipher
        self._clock = clock

    async def save_own(
        self,
        org_id: str,
        name: str,
        country: str,
        private_keys: bytes,
        public_keys: dict[str, Any],
    ) -> OwnOrg:
        """Create or replace this node's organisation (there is only ever one)."""
        now = self._clock()
        existing = await self._session.scalar(select(OwnOrgRow))
        if existing is not None and existing.org_id != org_id:
            await self._session.delete(existing)
            await self._session.flush()
            existing = None
        row = existing or OwnOrgRow(org_id=org_id, created_at=now)
        row.name = self._cipher.encrypt_text(name, _own_cell(org_id, "name"))
        row.country = country
        row.private_keys = self._cipher.encrypt(private_keys, _own_cell(org_id, "private_keys"))
        row.public_keys = public_keys
        row.updated_at = now
        self._session.add(row)
        await self._session.flush()
        return self._own(row)

    async def own(self) -> OwnOrg | None:
        row = await self._session.scalar(select(OwnOrgRow))
        return None if row is None else self._own(row)

    async def save_member(
        self,
        org_id: str,
        entry: dict[str, Any],
        *,
        verified: bool,
        safety_code: str,
        matrix_user_id: str | None,
    ) -> Member:
        """Create or replace a member's roster entry."""
        row = await self._session.get(MemberRow, org_id) or MemberRow(org_id=org_id)
        row.entry = self._cipher.encrypt_json(entry, _member_cell(org_id))
        row.verified = verified
        row.safety_code = safety_code
        row.matrix_user_id = matrix_user_id
        row.updated_at = self._clock()
        self._session.add(row)
        await self._session.flush()
        return self._member(row)

    async def member(self, org_id: str) -> Member:
        row = await self._session.get(MemberRow, org_id)
        if row is None:
            raise RecordNotFound(f"no member organisation {org_id}")
        return self._member(row)

    async def member_by_matrix_user(self, matrix_user_id: str) -> Member | None:
        row = await self._session.scalar(
            select(MemberRow).where(MemberRow.matrix_user_id == matrix_user_id)
        )
        return None if row is None else self._member(row)

    async def members(self, *, verified_only: bool = False, with_revoked: bool = False,
                      coalition_id: str | None = None) -> list[Member]:
        """Every member, or only the verified ones; those whose keys are revoked are left out
        of the verified ones (nothing is sent to them) unless ``with_revoked`` (key rings).
        With ``coalition_id``, only those verified in that coalition's roster."""
        query = (_MEMBERS if not verified_only
                 else _VERIFIED_WITH_REVOKED if with_revoked else _VERIFIED_MEMBERS)
        if coalition_id is not None:
            query = query.where(MemberRow.org_id.in_(_in_coalition(coalition_id)))
        return [self._member(row) for row in await self._session.scalars(query)]

    async def names(self) -> dict[str, str]:
        """Every organisation this node knows, own included: org id to name."""
        names = {member.org_id: member.name for member in await self.members()}
        own = await self.own()
        if own is not None:
            names[own.org_id] = own.name
        return names

    async def verified_ids(self, coalition_id: str | None = None) -> frozenset[str]:
        """The org ids of the verified members, of one coalition with ``coalition_id``
        (nothing decrypted)."""
        query = select(MemberRow.org_id).where(MemberRow.verified == true(),
                                               MemberRow.revoked_at.is_(None))
        if coalition_id is not None:
            query = query.where(MemberRow.org_id.in_(_in_coalition(coalition_id)))
        return frozenset(await self._session.scalars(query))

    async def mark_revoked(self, org_id: str, revoked_at: int) -> bool:
        """Note that ``org_id``'s keys are revoked from ``revoked_at`` (the earliest time
        wins); False if that was known already. Changes the member's ``updated_at``, so
        whoever caches the roster rebuilds it."""
        row = await self._session.get(MemberRow, org_id)
        if row is None:
            raise RecordNotFound(f"no member organisation {org_id}")
        if row.revoked_at is not None and row.revoked_at <= revoked_at:
            return False
        row.revoked_at = revoked_at
        row.updated_at = self._clock()
        await self._session.flush()
        return True

    async def add_revocation(self, statement_hash: str, org_id: str, revoked_at: int,
                             statement: dict[str, Any], reason: str | None = None) -> bool:
        """Keep an applied revocation statement; False if it was kept before."""
        if await self._session.get(KeyRevocationRow, statement_hash) is not None:
            return False
        self._session.add(KeyRevocationRow(
            statement_hash=statement_hash, org_id=org_id, revoked_at=revoked_at,
            statement=statement, applied_at=self._clock(),
            reason=None if reason is None
            else self._cipher.encrypt_text(reason, _revocation_cell(statement_hash))))
        await self._session.flush()
        return True

    async def revocations(self) -> list[KeyRevocation]:
        rows = await self._session.scalars(
            select(KeyRevocationRow).order_by(KeyRevocationRow.applied_at))
        return [KeyRevocation(r.statement_hash, r.org_id, r.revoked_at, dict(r.statement),
                              r.applied_at, None if r.reason is None else
                              self._cipher.decrypt_text(r.reason,
                                                        _revocation_cell(r.statement_hash)))
                for r in rows]

    async def remove_member(self, org_id: str) -> None:
        row = await self._session.get(MemberRow, org_id)
        if row is None:
            raise RecordNotFound(f"no member organisation {org_id}")
        await self._session.delete(row)
        await self._session.flush()

    def _own(self, row: OwnOrgRow) -> OwnOrg:
        return OwnOrg(
            org_id=row.org_id,
            name=self._cipher.decrypt_text(row.name, _own_cell(row.org_id, "name")),
            country=row.country,
            private_keys=self._cipher.decrypt(
                row.private_keys, _own_cell(row.org_id, "private_keys")
            ),
            public_keys=row.public_keys,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def _member(self, row: MemberRow) -> Member:
        return Member(
            org_id=row.org_id,
            entry=self._cipher.decrypt_json(row.entry, _member_cell(row.org_id)),
            verified=row.verified,
            safety_code=row.safety_code,
            matrix_user_id=row.matrix_user_id,
            updated_at=row.updated_at,
            revoked_at=row.revoked_at,
        )
