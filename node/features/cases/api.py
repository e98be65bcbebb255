"""``/api/v1/cases``: the organisation's own cases over HTTP.

Handlers only translate between HTTP and :mod:`node.features.cases.casebook` / the store.
Conventions:

- ``POST /cases`` takes a ``minga.case/1`` payload; ``PATCH /cases/{id}`` takes a JSON merge
  patch (RFC 7396) over the current payload. Both answer with the stored record.
- ``consent_coalitions`` (decision 0032): the coalitions the consent covers. Omitted on a new
  case, it is the node's only coalition; a node in several must name them for a consent that
  shares with a coalition (422 naming the field), and only coalitions it is in. A ``PATCH``
  keeps it (and writes the first coalition on a case from before the field existed).
- Lost updates are avoided with the ``expected_version`` query parameter of ``PATCH``: when
  given and not the current version, the answer is 409 and nothing is written.
- Unknown, malformed and deleted record ids are all 404 (codes ``not_found`` / ``deleted``).
- ``date_from`` / ``date_to`` filters accept partial dates: ``date_from=2023`` means from
  2023-01-01, ``date_to=2023-05`` up to 2023-05-31; a case matches if its incident period
  overlaps the requested one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    field_serializer,
    model_validator,
)

from node.core.api.framework import (
    ApiError,
    Call,
    Endpoint,
    FieldProblem,
    Link,
    NoBody,
    NoQuery,
    invalid,
)
from node.core.api.times import Time
from node.core.runtime import Node
from node.core.store import (
    CaseFilter,
    InvalidCursor,
    InvalidRecordId,
    RecordDeleted,
    RecordNotFound,
    Role,
    StoredCase,
    VersionConflict,
)
from node.core.store.cases import MAX_PAGE as STORE_MAX_PAGE
from node.features.cases.casebook import add_case, amend_case, delete_case, stored_record
from schemas.case import Case
from schemas.codes import VictimGroupCode, ViolationCode
from schemas.countries import CountryCode
from schemas.dates import PartialDate, PartialDateText
from schemas.errors import RecordValidationError

MAX_PAGE = min(100, STORE_MAX_PAGE)
TAGS = ("cases",)
CASE_ID = {"record_id": "record_id"}


class CaseView(BaseModel):
    """A case as stored: the record header, store times, and the ``minga.case/1`` payload."""

    record_id: str
    issuer: str
    version: int
    issued_at: Time = Field(description="when this version was issued")
    created_at: datetime
    updated_at: datetime
    payload: Case = Field(description="absent optional fields are left out, never null")

    @field_serializer("payload")
    def _without_nulls(self, payload: Case) -> dict[str, Any]:
        return payload.model_dump(mode="json", exclude_none=True)


class CaseList(BaseModel):
    items: list[CaseView]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


class CaseVersionView(BaseModel):
    version: int
    created_at: datetime
    author: str


class CaseHistory(BaseModel):
    record_id: str
    versions: list[CaseVersionView] = Field(description="oldest first")


class CasePatch(RootModel[dict[str, Any]]):
    """A JSON merge patch (RFC 7396) over the case payload: ``null`` removes a field."""


class CaseListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(default=None, max_length=512)
    country: CountryCode | None = None
    violation: ViolationCode | None = None
    victim_group: VictimGroupCode | None = None
    date_from: PartialDateText | None = None
    date_to: PartialDateText | None = None

    @model_validator(mode="after")
    def _period_in_order(self) -> Self:
        if self.date_from and self.date_to and _first_day(self.date_from) > _last_day(
            self.date_to
        ):
            raise ValueError("date_to: must not be before date_from")
        return self

    def case_filter(self) -> CaseFilter:
        return CaseFilter(
            country=self.country,
            violation=self.violation,
            victim_group=self.victim_group,
            date_from=_first_day(self.date_from) if self.date_from else None,
            date_to=_last_day(self.date_to) if self.date_to else None,
        )


class UpdateQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expected_version: int | None = Field(
        default=None, ge=1, description="refuse with 409 unless this is the current version"
    )


def _first_day(partial: str) -> str:
    return PartialDate.parse(partial).earliest().isoformat()


def _last_day(partial: str) -> str:
    return PartialDate.parse(partial).latest().isoformat()


def case_view(stored: StoredCase) -> CaseView:
    record = stored_record(stored)
    return CaseView(
        record_id=stored.record_id,
        issuer=record.issuer,
        version=stored.version,
        issued_at=record.issued_at,
        created_at=stored.created_at,
        updated_at=stored.updated_at,
        payload=record.payload,
    )


@contextmanager
def store_answers() -> Iterator[None]:
    """Store and schema errors as API errors; messages carry no input values."""
    try:
        yield
    except RecordDeleted:
        raise ApiError(404, "deleted", "this case was deleted") from None
    except (RecordNotFound, InvalidRecordId):
        raise ApiError(404, "not_found", "no case with this id") from None
    except VersionConflict as error:
        raise ApiError(409, "version_conflict", str(error)) from None
    except RecordValidationError as error:
        raise invalid([_body_problem(p.path, p.problem) for p in error.problems]) from None
    except InvalidCursor:
        problem = FieldProblem(field="query.cursor", problem="not a cursor from this node")
        raise invalid([problem]) from None


def _body_problem(path: str, problem: str) -> FieldProblem:
    return FieldProblem(field="body" if path == "$" else f"body.{path}", problem=problem)


class CaseEndpoints:
    """The handlers, closed over one node and a clock giving Unix seconds."""

    def __init__(self, node: Node, now: Callable[[], int]) -> None:
        self._node = node
        self._now = now

    async def create_case(self, call: Call[Case, NoQuery]) -> CaseView:
        with store_answers():
            async with self._node.store.transaction() as tx:
                stored = await add_case(tx, issuer=self._node.org_id, case=call.body,
                                        author=call.principal.user, issued_at=self._now())
        return case_view(stored)

    async def list_cases(self, call: Call[NoBody, CaseListQuery]) -> CaseList:
        with store_answers():
            async with self._node.store.read() as tx:
                page = await tx.cases.list(call.query.case_filter(), limit=call.query.limit,
                                           cursor=call.query.cursor)
        return CaseList(items=[case_view(item) for item in page.items],
                        next_cursor=page.next_cursor)

    async def get_case(self, call: Call[NoBody, NoQuery]) -> CaseView:
        with store_answers():
            async with self._node.store.read() as tx:
                stored = await tx.cases.get(call.path["record_id"])
        return case_view(stored)

    async def update_case(self, call: Call[CasePatch, UpdateQuery]) -> CaseView:
        with store_answers():
            async with self._node.store.transaction() as tx:
                stored = await amend_case(
                    tx, call.path["record_id"], call.body.root, author=call.principal.user,
                    issued_at=self._now(), expected_version=call.query.expected_version,
                )
        return case_view(stored)

    async def delete_case(self, call: Call[NoBody, NoQuery]) -> None:
        with store_answers():
            async with self._node.store.transaction() as tx:
                await delete_case(tx, call.path["record_id"], author=call.principal.user)

    async def list_case_versions(self, call: Call[NoBody, NoQuery]) -> CaseHistory:
        with store_answers():
            async with self._node.store.read() as tx:
                versions = await tx.cases.versions(call.path["record_id"])
        return CaseHistory(
            record_id=versions[0].record_id,
            versions=[CaseVersionView(version=v.version, created_at=v.created_at,
                                      author=v.author) for v in versions],
        )

    def endpoints(self) -> list[Endpoint]:
        one = "/cases/{record_id}"
        return [
            Endpoint("POST", "/cases", self.create_case, "Document a new case", Role.editor,
                     body=Case, response=CaseView, status=201, tags=TAGS, links=(
                         Link("GetCase", "GET", one, CASE_ID),
                         Link("AmendCase", "PATCH", one, CASE_ID),
                         Link("CaseVersions", "GET", one + "/versions", CASE_ID),
                         Link("DeleteCase", "DELETE", one, CASE_ID))),
            Endpoint("GET", "/cases", self.list_cases, "List cases, newest change first",
                     query=CaseListQuery, response=CaseList, tags=TAGS),
            Endpoint("GET", one, self.get_case, "Get the current version of a case",
                     response=CaseView, errors=(404,), tags=TAGS),
            Endpoint("PATCH", one, self.update_case,
                     "Change a case with a JSON merge patch; stores a new version",
                     Role.editor, body=CasePatch, query=UpdateQuery, response=CaseView,
                     errors=(404, 409), tags=TAGS),
            Endpoint("DELETE", one, self.delete_case,
                     "Delete a case: every version's content is wiped", Role.editor,
                     errors=(404,), tags=TAGS),
            Endpoint("GET", one + "/versions", self.list_case_versions,
                     "Version history of a case", response=CaseHistory, errors=(404,),
                     tags=TAGS),
        ]
