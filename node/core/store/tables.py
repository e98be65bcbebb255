"""The store's tables. Columns holding ``bytes`` are encrypted by :mod:`node.core.store.cipher`.

Plaintext columns are only what filtering, ordering and joining need: ids, versions, timestamps,
country, incident date bounds, typology codes, statuses and flags. Names, narratives, places,
stories, documents, keys, staff user names and audit details are encrypted.

Every change here needs a new Alembic revision in ``node/core/store/migrations/versions``; a test
compares these models with the migrated database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RECORD_ID = 36  # canonical UUID text
ORG_ID = 64
CODE = 64
ISO_DATE = 10


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes stored as naive UTC, the same way on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps given to the store must be timezone-aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StoreMeta(Base):
    """Small named values about the store itself (e.g. the data-key check)."""

    __tablename__ = "store_meta"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)


class OwnOrgRow(Base):
    """This node's own organisation (one row)."""

    __tablename__ = "own_org"

    org_id: Mapped[str] = mapped_column(String(ORG_ID), primary_key=True)
    name: Mapped[bytes] = mapped_column(LargeBinary)
    country: Mapped[str] = mapped_column(String(2))
    private_keys: Mapped[bytes] = mapped_column(LargeBinary)
    public_keys: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MemberRow(Base):
    """A member organisation of the coalition, from its roster entry."""

    __tablename__ = "members"

    org_id: Mapped[str] = mapped_column(String(ORG_ID), primary_key=True)
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    verified: Mapped[bool] = mapped_column(Boolean)
    safety_code: Mapped[str] = mapped_column(String(128))
    matrix_user_id: Mapped[str | None] = mapped_column(String(255), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Unix seconds from which the member's keys are revoked (a seized node, M13); None if not.
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class CoalitionRow(Base):
    """A coalition this node belongs to or belonged to (decision 0032). ``coalition_id`` is
    the id the coalition marker names (the same on every member's node); the name is encrypted:
    it says which coalitions the organisation is in."""

    __tablename__ = "coalitions"

    coalition_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When this node left the coalition; None while it is a member.
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CoalitionMemberRow(Base):
    """A verified member of one coalition, from that coalition room's roster."""

    __tablename__ = "coalition_members"

    coalition_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(ORG_ID), primary_key=True, index=True)


class KeyRevocationRow(Base):
    """A signed key revocation (``minga.key-revocation/1``) this node verified and applied.

    Kept apart from the roster entries so that a later room state without it (overwritten,
    or a homeserver that forgot it) never un-revokes anyone. Statements carry ids, key ids,
    times and signatures only."""

    __tablename__ = "key_revocations"

    statement_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(ORG_ID), index=True)
    revoked_at: Mapped[int] = mapped_column(BigInteger)
    statement: Mapped[dict[str, Any]] = mapped_column(JSON)
    # An expulsion's stated reason (encrypted: it may say why someone is suspected).
    reason: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CaseRow(Base):
    """The current state of one case; its documents are in ``case_versions``."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_listing", "deleted", "updated_at", "record_id"),
        Index("ix_cases_country_listing", "deleted", "country", "updated_at", "record_id",
              "date_from", "date_to"),
    )

    record_id: Mapped[str] = mapped_column(String(RECORD_ID), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    country: Mapped[str | None] = mapped_column(String(2))
    date_from: Mapped[str | None] = mapped_column(String(ISO_DATE))
    date_to: Mapped[str | None] = mapped_column(String(ISO_DATE))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)

    # The UPDATE statement checks the version it read (optimistic concurrency); the repository
    # sets each new version itself.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}  # noqa: RUF012


class CaseVersionRow(Base):
    """Every version of every case. ``document`` and ``author`` are wiped when deleted."""

    __tablename__ = "case_versions"

    record_id: Mapped[str] = mapped_column(
        String(RECORD_ID), ForeignKey("cases.record_id"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[bytes | None] = mapped_column(LargeBinary)
    author: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ImportedRowRow(Base):
    """A spreadsheet row imported before: keyed hashes (``ColumnCipher.lookup_tag``) of the row's
    identity and of its content when last imported, and the case it became. Kept after the case
    is deleted, so that importing the row again says so instead of bringing the case back."""

    __tablename__ = "imported_rows"

    identity: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    record_id: Mapped[str] = mapped_column(String(RECORD_ID), ForeignKey("cases.record_id"))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)


class _CaseLinkColumns:
    """A code of a case's current version, with a copy of the case's listing columns so that a
    filtered page walks one index in page order (``cases.list``). The rows are rewritten
    whenever the case's index or ``updated_at`` changes (update) and removed on delete."""

    record_id: Mapped[str] = mapped_column(
        String(RECORD_ID), ForeignKey("cases.record_id"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(CODE), primary_key=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    country: Mapped[str | None] = mapped_column(String(2))
    date_from: Mapped[str | None] = mapped_column(String(ISO_DATE))
    date_to: Mapped[str | None] = mapped_column(String(ISO_DATE))


def _link_indexes(table: str) -> tuple[Index, Index]:
    """Page order within one code, and within one code and country; the dates ride along so
    that SQLite checks a period filter in the index."""
    return (
        Index(f"ix_{table}_listing", "code", "updated_at", "record_id", "date_from", "date_to"),
        Index(f"ix_{table}_country_listing", "code", "country", "updated_at", "record_id",
              "date_from", "date_to"),
    )


class CaseViolationRow(_CaseLinkColumns, Base):
    """Violation codes of the current version of a case, for indexed filtering."""

    __tablename__ = "case_violations"
    __table_args__ = _link_indexes("case_violations")


class CaseVictimGroupRow(_CaseLinkColumns, Base):
    """Victim-group codes of the current version of a case, for indexed filtering."""

    __tablename__ = "case_victim_groups"
    __table_args__ = _link_indexes("case_victim_groups")


class ReceivedRecordRow(Base):
    """A record another member shared with us: one row per (issuer, record id, version)."""

    __tablename__ = "received_records"
    __table_args__ = (Index("ix_received_records_received", "received_at"),)

    issuer: Mapped[str] = mapped_column(String(ORG_ID), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(RECORD_ID), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    claims: Mapped[bytes | None] = mapped_column(LargeBinary)
    verification: Mapped[str] = mapped_column(String(32))
    retracted: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The coalition the record came through (the issuer names it; decision 0032).
    coalition_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)


class AuditRow(Base):
    """Append-only audit log. Actor and details are encrypted; the action name is not."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(128))
    actor: Mapped[bytes] = mapped_column(LargeBinary)
    details: Mapped[bytes] = mapped_column(LargeBinary)


class ApiTokenRow(Base):
    """API bearer tokens: only the SHA-256 of the token is kept."""

    __tablename__ = "api_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[bytes] = mapped_column(LargeBinary)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class ShareRow(Base):
    """Sharing history: one row per record version sent (or retraction sent) to one member.

    Field paths and org ids are not content; the staff user who shared is encrypted.
    """

    __tablename__ = "shares"
    __table_args__ = (Index("ix_shares_record", "record_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(String(RECORD_ID))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(ORG_ID))
    fields: Mapped[list[str]] = mapped_column(JSON)
    room_id: Mapped[str] = mapped_column(String(255))
    actor: Mapped[bytes] = mapped_column(LargeBinary)
    shared_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PairRoomRow(Base):
    """A room this node shares with one other member organisation (docs/architecture.md §6).

    Normally one per organisation; two when both sides created one at the same moment.
    """

    __tablename__ = "pair_rooms"

    room_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(ORG_ID), index=True)
    created_by_us: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


CAMPAIGN_KIND_LENGTH: Final = 32
ROOM_ID_LENGTH: Final = 255


class CampaignRecordRow(Base):
    __tablename__ = "campaign_records"

    issuer: Mapped[str] = mapped_column(String(ORG_ID), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(RECORD_ID), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(CAMPAIGN_KIND_LENGTH), index=True)
    thread: Mapped[str] = mapped_column(String(RECORD_ID), index=True)
    issued_at: Mapped[int] = mapped_column(Integer)
    claims: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CampaignRoomRow(Base):
    """The campaign room of a proposal, as far as this node is concerned."""

    __tablename__ = "campaign_rooms"

    proposal_id: Mapped[str] = mapped_column(String(RECORD_ID), primary_key=True)
    proposal_issuer: Mapped[str] = mapped_column(String(ORG_ID))
    room_id: Mapped[str | None] = mapped_column(String(ROOM_ID_LENGTH))
    state: Mapped[str] = mapped_column(String(16))
    created_by_us: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AttachmentRow(Base):
    """A file attached to a case (the ``evidence`` feature). The files themselves are in
    ``DATA_DIR/evidence/``, encrypted under a key per file; ``details`` (encrypted) holds the
    file's name, type, SHA-256, its keys and the working copy's description."""

    __tablename__ = "attachments"

    attachment_id: Mapped[str] = mapped_column(String(RECORD_ID), primary_key=True)
    record_id: Mapped[str] = mapped_column(
        String(RECORD_ID), ForeignKey("cases.record_id"), index=True)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    details: Mapped[bytes] = mapped_column(LargeBinary)


class CustodyEntryRow(Base):
    """An entry of an attachment's custody log: append-only, signed and hash-chained; the entry
    itself (who, what, which copy) is encrypted."""

    __tablename__ = "custody_entries"

    attachment_id: Mapped[str] = mapped_column(
        String(RECORD_ID), ForeignKey("attachments.attachment_id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    entry: Mapped[bytes] = mapped_column(LargeBinary)


class ReceivedFileRow(Base):
    """A file another member shared with a case (the ``evidence`` feature): where it is in its
    transfer (``pending`` with the parts already fetched, ``stored``, ``quarantined`` with a
    content-free reason, ``removed`` by a retraction). ``details`` (encrypted) holds its
    description from the signed record, the key that opens it in transit and, once stored, the
    key of the sealed copy in ``DATA_DIR/evidence/``; it is null once removed."""

    __tablename__ = "received_files"
    __table_args__ = (
        Index("ix_received_files_record", "issuer", "record_id", "version", "position",
              unique=True),
        Index("ix_received_files_status", "status"),
    )

    file_id: Mapped[str] = mapped_column(String(RECORD_ID), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(ORG_ID))
    record_id: Mapped[str] = mapped_column(String(RECORD_ID))
    version: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    parts_done: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    details: Mapped[bytes | None] = mapped_column(LargeBinary)
