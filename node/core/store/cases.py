"""The organisation's own cases: every version kept, documents encrypted, filterable index.

The caller (the node service) validates a case against ``schemas`` and derives its
:class:`CaseIndex`; the store keeps the whole document encrypted and only the index in plaintext.

Deleting a case is meant for a raid or a withdrawn consent: the documents and authors of every
version are wiped (overwritten with NULL, zeroed in the file by SQLite's secure_delete, and the
write-ahead log is checkpointed after commit), the index is cleared, and only a tombstone with the
record id, version and timestamps remains.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from node.core.store.cipher import Cell, ColumnCipher
from node.core.store.database import mark_wiped
from node.core.store.errors import (
    RecordDeleted,
    RecordExists,
    RecordNotFound,
    StoreError,
    VersionConflict,
)
from node.core.store.ids import Clock, normalise_record_id
from node.core.store.tables import CaseRow, CaseVersionRow, CaseVictimGroupRow, CaseViolationRow

MAX_PAGE = 200
_IDS_PER_QUERY = 500  # well under every database's limit on bound parameters


def _iso_date(value: str) -> str:
    """Only YYYY-MM-DD: the stored strings are compared as text, so one spelling per date."""
    try:
        if date.fromisoformat(value).isoformat() == value:
            return value
    except ValueError:
        pass
    raise ValueError("must be a real date written YYYY-MM-DD")


IsoDate = Annotated[str, AfterValidator(_iso_date)]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S+$")]


class _DateBounds(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    date_from: IsoDate | None = None
    date_to: IsoDate | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _DateBounds:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from is after date_to")
        return self


class CaseIndex(_DateBounds):
    """The plaintext, filterable facts of a case, derived by the caller from the document.

    Dates are the bounds of the incident period (a partial date "2023-05" is 2023-05-01 to
    2023-05-31); a missing ``date_to`` means the period is ongoing.
    """

    country: CountryCode | None = None
    violations: frozenset[Code] = frozenset()
    victim_groups: frozenset[Code] = frozenset()


class CaseFilter(_DateBounds):
    """Filters for :meth:`CaseRepository.list`; the period matches cases that overlap it."""

    country: CountryCode | None = None
    violation: Code | None = None
    victim_group: Code | None = None


@dataclass(frozen=True)
class StoredCase:
    record_id: str
    version: int
    document: dict[str, Any] = field(repr=False)
    index: CaseIndex
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NewCase:
    """One case for :meth:`CaseRepository.add_many`."""

    record_id: str
    document: dict[str, Any] = field(repr=False)
    index: CaseIndex
    author: str = field(repr=False)


@dataclass(frozen=True)
class CaseVersion:
    record_id: str
    version: int
    created_at: datetime
    author: str = field(repr=False)
    document: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class CasePage:
    items: list[StoredCase]
    next_cursor: str | None


class InvalidCursor(StoreError, ValueError):
    """A pagination cursor was not produced by this store."""


def _encode_cursor(row: CaseRow) -> str:
    raw = json.dumps([row.updated_at.isoformat(), row.record_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, record_id = json.loads(raw)
        return datetime.fromisoformat(at), normalise_record_id(record_id)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidCursor("the pagination cursor is not valid") from None


def _document_cell(record_id: str, version: int) -> Cell:
    return Cell("case_versions", "document", (record_id, str(version)))


def _author_cell(record_id: str, version: int) -> Cell:
    return Cell("case_versions", "author", (record_id, str(version)))


_Walked = type[CaseRow] | type[CaseViolationRow] | type[CaseVictimGroupRow]


def _period_overlaps(table: _Walked, wanted: CaseFilter) -> list[ColumnElement[bool]]:
    """A case matches a period if its (possibly open-ended) incident period overlaps it."""
    if wanted.date_from is None and wanted.date_to is None:
        return []
    conditions = [or_(table.date_from.is_not(None), table.date_to.is_not(None))]
    if wanted.date_to is not None:
        conditions.append(or_(table.date_from.is_(None), table.date_from <= wanted.date_to))
    if wanted.date_from is not None:
        conditions.append(or_(table.date_to.is_(None), table.date_to >= wanted.date_from))
    return conditions


def _matching(wanted: CaseFilter) -> tuple[_Walked, list[ColumnElement[bool]]]:
    """The table a filtered listing walks, and the filter as conditions on it.

    With a code filter that is the code's table, which carries the case's listing columns and
    has an index in page order per code (and per code and country): a page reads the index
    entries of the codes until it has enough, instead of every case with the code and sorting
    them. Deleted cases have no codes, so only ``cases`` needs the ``deleted`` condition."""
    table: _Walked = CaseRow
    conditions: list[ColumnElement[bool]] = []
    if wanted.violation is not None:
        table = CaseViolationRow
        conditions.append(CaseViolationRow.code == wanted.violation)
    elif wanted.victim_group is not None:
        table = CaseVictimGroupRow
    else:
        conditions.append(CaseRow.deleted == false())
    if wanted.victim_group is not None:
        if table is CaseVictimGroupRow:
            conditions.append(CaseVictimGroupRow.code == wanted.victim_group)
        else:
            conditions.append(exists().where(
                CaseVictimGroupRow.record_id == table.record_id,
                CaseVictimGroupRow.code == wanted.victim_group,
            ))
    if wanted.country is not None:
        conditions.append(table.country == wanted.country)
    return table, conditions + _period_overlaps(table, wanted)


class CaseRepository:
    def __init__(self, session: AsyncSession, cipher: ColumnCipher, clock: Clock) -> None:
        self._session = session
        self._cipher = cipher
        self._clock = clock

    async def add(
        self, record_id: str, document: dict[str, Any], index: CaseIndex, author: str
    ) -> StoredCase:
        """Store a new case as version 1."""
        (added,) = await self.add_many([NewCase(record_id, document, index, author)])
        return added

    async def add_many(self, cases: Sequence[NewCase]) -> list[StoredCase]:
        """Store several new cases at once (imports); none is stored if any id exists."""
        record_ids = [normalise_record_id(case.record_id) for case in cases]
        await self._refuse_existing(record_ids)
        now = self._clock()
        added = []
        for record_id, case in zip(record_ids, cases, strict=True):
            row = CaseRow(
                record_id=record_id, version=1, created_at=now, updated_at=now, deleted=False
            )
            _set_index(row, case.index)
            self._session.add(row)
            self._session.add(self._version_row(record_id, 1, case.document, case.author, now))
            self._add_links(row, case.index)
            added.append(StoredCase(record_id, 1, case.document, case.index, now, now))
        await self._session.flush()
        return added

    async def update(
        self,
        record_id: str,
        document: dict[str, Any],
        index: CaseIndex,
        author: str,
        *,
        expected_version: int | None = None,
    ) -> StoredCase:
        """Store a new version; older versions are kept. Raises VersionConflict if
        ``expected_version`` is given and is not the current version."""
        row = await self._current(record_id)
        _check_expected(row, expected_version)
        await self._delete_links(row.record_id)
        now = self._clock()
        row.version += 1
        row.updated_at = now
        _set_index(row, index)
        self._session.add(self._version_row(row.record_id, row.version, document, author, now))
        self._add_links(row, index)
        await _flush_checking_version(self._session, row)
        return StoredCase(row.record_id, row.version, document, index, row.created_at, now)

    async def get(self, record_id: str) -> StoredCase:
        row = await self._current(record_id)
        stored = await self._session.get(CaseVersionRow, (row.record_id, row.version))
        if stored is None or stored.document is None:
            raise RecordNotFound(f"case {row.record_id} has no version {row.version}")
        links = await self._links([row.record_id])
        return self._stored_case(row, stored.document, links)

    async def versions(self, record_id: str) -> list[CaseVersion]:
        """Every version of a case, oldest first."""
        row = await self._current(record_id)
        result = await self._session.scalars(
            select(CaseVersionRow)
            .where(CaseVersionRow.record_id == row.record_id)
            .order_by(CaseVersionRow.version)
        )
        return [self._case_version(version) for version in result]

    async def list(
        self, wanted: CaseFilter | None = None, *, limit: int = 50, cursor: str | None = None
    ) -> CasePage:
        """A page of current cases, most recently updated first; pass ``next_cursor`` on."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        table, conditions = _matching(wanted or CaseFilter())
        query = select(table.record_id).where(*conditions)
        if cursor is not None:
            at, last_id = _decode_cursor(cursor)
            query = query.where(tuple_(table.updated_at, table.record_id) < (at, last_id))
        query = query.order_by(table.updated_at.desc(), table.record_id.desc())
        record_ids = list(await self._session.scalars(query.limit(limit + 1)))
        page = await self._page(record_ids[:limit])
        links = await self._links([row.record_id for row, _ in page])
        items = [self._stored_case(row, document, links) for row, document in page]
        next_cursor = _encode_cursor(page[-1][0]) if len(record_ids) > limit else None
        return CasePage(items, next_cursor)

    async def count(self, wanted: CaseFilter | None = None) -> int:
        table, conditions = _matching(wanted or CaseFilter())
        total = await self._session.scalar(
            select(func.count()).select_from(table).where(*conditions)
        )
        return int(total or 0)

    async def delete(self, record_id: str) -> None:
        """Wipe the content of every version and leave a tombstone (see module docstring)."""
        row = await self._current(record_id)
        await self._session.execute(
            update(CaseVersionRow)
            .where(CaseVersionRow.record_id == row.record_id)
            .values(document=None, author=None)
        )
        await self._delete_links(row.record_id)
        row.deleted = True
        row.updated_at = self._clock()
        _set_index(row, CaseIndex())
        mark_wiped(self._session)
        await _flush_checking_version(self._session, row)

    async def _page(
        self, record_ids: Sequence[str]
    ) -> Sequence[tuple[CaseRow, bytes | None]]:
        """The cases and current documents of one page, in the page's order: only these rows
        are read and decrypted, after the index walk chose them."""
        if not record_ids:
            return []
        rows = await self._session.execute(
            select(CaseRow, CaseVersionRow.document)
            .join(
                CaseVersionRow,
                and_(
                    CaseVersionRow.record_id == CaseRow.record_id,
                    CaseVersionRow.version == CaseRow.version,
                ),
            )
            .where(CaseRow.record_id.in_(record_ids))
        )
        found = {row.record_id: (row, document) for row, document in rows}
        return [found[record_id] for record_id in record_ids]

    async def _refuse_existing(self, record_ids: Sequence[str]) -> None:
        counts: Counter[str] = Counter(record_ids)
        repeated = [record_id for record_id, n in counts.items() if n > 1]
        if repeated:
            raise RecordExists(f"case {repeated[0]} is given twice")
        for first in range(0, len(record_ids), _IDS_PER_QUERY):
            chunk = record_ids[first : first + _IDS_PER_QUERY]
            existing = await self._session.scalar(
                select(CaseRow.record_id).where(CaseRow.record_id.in_(chunk)).limit(1)
            )
            if existing is not None:
                raise RecordExists(f"case {existing} already exists")

    async def _current(self, record_id: str) -> CaseRow:
        record_id = normalise_record_id(record_id)
        row = await self._session.get(CaseRow, record_id)
        if row is None:
            raise RecordNotFound(f"no case {record_id}")
        if row.deleted:
            raise RecordDeleted(f"case {record_id} was deleted")
        return row

    def _version_row(
        self, record_id: str, version: int, document: dict[str, Any], author: str, at: datetime
    ) -> CaseVersionRow:
        if not isinstance(document, dict):
            raise TypeError("a case document must be a JSON object")
        return CaseVersionRow(
            record_id=record_id,
            version=version,
            document=self._cipher.encrypt_json(document, _document_cell(record_id, version)),
            author=self._cipher.encrypt_text(author, _author_cell(record_id, version)),
            created_at=at,
        )

    def _add_links(self, row: CaseRow, index: CaseIndex) -> None:
        """The code rows of the case's current version, with its listing columns (after
        ``_set_index`` and ``updated_at`` were set on ``row``)."""
        listing = {
            "record_id": row.record_id, "updated_at": row.updated_at,
            "country": row.country, "date_from": row.date_from, "date_to": row.date_to,
        }
        self._session.add_all(
            [CaseViolationRow(code=code, **listing) for code in index.violations]
            + [CaseVictimGroupRow(code=code, **listing) for code in index.victim_groups]
        )

    async def _delete_links(self, record_id: str) -> None:
        for table in (CaseViolationRow, CaseVictimGroupRow):
            await self._session.execute(delete(table).where(table.record_id == record_id))

    async def _links(self, record_ids: Sequence[str]) -> _Links:
        links = _Links()
        if not record_ids:
            return links
        targets = {"violation": links.violations, "victim_group": links.victim_groups}
        both = union_all(*(
            select(literal(kind).label("kind"), table.record_id, table.code)
            .where(table.record_id.in_(record_ids))
            for kind, table in (("violation", CaseViolationRow),
                                ("victim_group", CaseVictimGroupRow))
        ))
        for kind, record_id, code in await self._session.execute(both):
            targets[kind].setdefault(record_id, set()).add(code)
        return links

    def _stored_case(self, row: CaseRow, document: bytes | None, links: _Links) -> StoredCase:
        if document is None:
            raise RecordNotFound(f"case {row.record_id} version {row.version} has no document")
        index = CaseIndex(
            country=row.country,
            date_from=row.date_from,
            date_to=row.date_to,
            violations=frozenset(links.violations.get(row.record_id, ())),
            victim_groups=frozenset(links.victim_groups.get(row.record_id, ())),
        )
        content = self._cipher.decrypt_json(document, _document_cell(row.record_id, row.version))
        return StoredCase(
            row.record_id, row.version, content, index, row.created_at, row.updated_at
        )

    def _case_version(self, row: CaseVersionRow) -> CaseVersion:
        if row.document is None or row.author is None:
            raise RecordNotFound(f"case {row.record_id} version {row.version} was wiped")
        return CaseVersion(
            record_id=row.record_id,
            version=row.version,
            created_at=row.created_at,
            author=self._cipher.decrypt_text(row.author, _author_cell(row.record_id, row.version)),
            document=self._cipher.decrypt_json(
                row.document, _document_cell(row.record_id, row.version)
            ),
        )


@dataclass
class _Links:
    violations: dict[str, set[str]] = field(default_factory=dict)
    victim_groups: dict[str, set[str]] = field(default_factory=dict)


def _set_index(row: CaseRow, index: CaseIndex) -> None:
    row.country = index.country
    row.date_from = index.date_from
    row.date_to = index.date_to


def _check_expected(row: CaseRow, expected_version: int | None) -> None:
    if expected_version is not None and row.version != expected_version:
        raise VersionConflict(
            f"case {row.record_id} is at version {row.version}, not {expected_version}"
        )


async def _flush_checking_version(session: AsyncSession, row: CaseRow) -> None:
    """The UPDATE of ``cases`` only matches the version read: a concurrent writer loses here."""
    try:
        await session.flush()
    except StaleDataError:
        raise VersionConflict(f"case {row.record_id} was changed by someone else") from None
