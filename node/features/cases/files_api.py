"""Cases to and from files over HTTP (issue M9).

- ``GET /export?format=csv|json|jsonschema`` — the file itself, with its media type and a
  download name (admin only, audited: it is every case in plain text). With ``hxl=true`` (CSV) it
  is a publication instead: only what the cases' consent lets anyone see, and the
  ``Minga-Withheld`` header says what was left out.
- ``POST /imports?commit=false`` — check (default) or import a spreadsheet sent as base64 with
  its column mapping; the answer lists every problem by row and column and says of every row
  whether it is new, updates a case (which fields) or is unchanged, and a commit writes all rows
  or none. Importing the same file again duplicates nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from node.core.api.framework import (
    ApiError,
    Call,
    Endpoint,
    FieldProblem,
    FileAnswer,
    NoBody,
    invalid,
)
from node.core.runtime import Node
from node.core.store import Role
from node.features.cases.casebook import utc_day
from node.features.cases.exporting import (
    CASES_EXPORTED,
    MEDIA_TYPES,
    ExportFormat,
    Withheld,
    export_text,
    own_case_records,
)
from node.features.cases.importing import (
    ImportMapping,
    ImportPlan,
    ImportRejected,
    ImportReview,
    MappingError,
    RowProblem,
    RowStatus,
    SpreadsheetError,
    commit_import,
    identity_mapping,
    mapping_from_data,
    plan_import,
    read_csv,
    read_xlsx,
    review_import,
)

TAGS = ("advocacy",)
MAX_IMPORT_BYTES = 20 * 1024 * 1024


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: ExportFormat = ExportFormat.CSV
    hxl: bool = False


WITHHELD_HEADER = "Minga-Withheld"
"""On a publication (``hxl=true``): what it left out, as JSON ``{"cases": n, "fields":
{path: n}}`` (counts only, never which case or what value)."""
_FILE_NAMES = {ExportFormat.CSV: "minga-cases.csv", ExportFormat.JSON: "minga-cases.json",
               ExportFormat.JSON_SCHEMA: "minga-cases.schema.json"}


class ImportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    commit: bool = Field(default=False, description="false: only check; true: import")


class ImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_type: Literal["csv", "xlsx"]
    content_base64: str = Field(max_length=MAX_IMPORT_BYTES * 4 // 3 + 4)
    mapping: dict[str, Any] | None = Field(
        default=None, description="the column mapping; none for Minga's own CSV export")


class ImportProblemView(BaseModel):
    row: int
    column: str | None
    field: str
    problem: str


class ImportRowView(BaseModel):
    row: int = Field(description="the row number as the spreadsheet shows it")
    status: RowStatus = Field(
        description="new: a new case; updated: a new version of the case it was imported as"
                    " (or that its record_id names); unchanged: nothing to write; deleted or"
                    " retracted: its case was deleted or retracted since, and is left alone")
    record_id: str | None = Field(description="the case the row is (none for a new row that is"
                                              " only checked)")
    changed_fields: list[str] = Field(description="updated: the fields that change")


class ImportResult(BaseModel):
    rows: int
    rows_with_problems: int
    committed: bool = Field(description="true when the import was done")
    imported: int = Field(description="cases written: new ones and new versions (0 unless"
                                      " committed)")
    new: int
    updated: int
    unchanged: int
    skipped: int = Field(description="rows whose case was deleted or retracted since")
    outcomes: list[ImportRowView] = Field(description="every row without problems, in order")
    warnings: list[str]
    problems: list[ImportProblemView]
    ignored_columns: list[str]


def _problem_views(problems: Sequence[RowProblem]) -> list[ImportProblemView]:
    return [ImportProblemView(row=p.row, column=p.column, field=p.field, problem=p.problem)
            for p in problems]


def _import_result(review: ImportReview, *, committed: bool) -> ImportResult:
    counts = review.counts()
    return ImportResult(
        rows=review.plan.rows, rows_with_problems=review.rows_with_problems(),
        committed=committed, imported=counts["new"] + counts["updated"] if committed else 0,
        new=counts["new"], updated=counts["updated"], unchanged=counts["unchanged"],
        skipped=counts["skipped"],
        outcomes=[ImportRowView(row=d.row, status=d.status, record_id=d.record_id,
                                changed_fields=list(d.changed)) for d in review.decisions],
        warnings=list(review.plan.warnings), problems=_problem_views(review.problems),
        ignored_columns=list(review.plan.ignored_columns))


def _withheld_header(withheld: Withheld | None) -> dict[str, str]:
    if withheld is None:
        return {}
    counts = {"cases": withheld.cases, "fields": dict(sorted(withheld.fields.items()))}
    return {WITHHELD_HEADER: json.dumps(counts, separators=(",", ":"))}


class CaseFileEndpoints:
    def __init__(self, node: Node, now: Callable[[], int]) -> None:
        self._node = node
        self._now = now

    async def export_cases(self, call: Call[NoBody, ExportQuery]) -> FileAnswer:
        export_format, hxl = call.query.format, call.query.hxl
        if hxl and export_format is not ExportFormat.CSV:
            raise invalid([FieldProblem(field="query.hxl",
                                        problem="only a CSV export has a hashtag row")])
        records = []
        if export_format is not ExportFormat.JSON_SCHEMA:
            async with self._node.store.transaction() as tx:
                records = await own_case_records(tx)
                await tx.audit.append(call.principal.user, CASES_EXPORTED,
                                      details={"format": export_format.value,
                                               "count": len(records)})
        exported = export_text(records, export_format, hxl=hxl)
        name = "minga-cases-hxl.csv" if hxl else _FILE_NAMES[export_format]
        return FileAnswer(exported.text.encode(), MEDIA_TYPES[export_format], name,
                          headers=_withheld_header(exported.withheld))

    async def import_cases(self, call: Call[ImportRequest, ImportQuery]) -> ImportResult:
        request: ImportRequest = call.body
        try:
            data = base64.b64decode(request.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise invalid([FieldProblem(field="body.content_base64",
                                        problem="not base64")]) from None
        try:
            mapping = (mapping_from_data(request.mapping, source="body.mapping")
                       if request.mapping is not None else None)
            sheet = (read_xlsx if request.file_type == "xlsx" else read_csv)(data, mapping)
            chosen: ImportMapping = mapping or identity_mapping(sheet.headers)
        except (MappingError, SpreadsheetError) as error:
            raise ApiError(422, "unreadable", str(error)) from None
        plan = plan_import(sheet, chosen, today=utc_day(self._now()))
        if not call.query.commit:
            return _import_result(await self._review(plan), committed=False)
        try:
            async with self._node.store.transaction() as tx:
                done = await commit_import(tx, plan, issuer=self._node.org_id,
                                           author=call.principal.user, issued_at=self._now())
        except ImportRejected as rejected:  # raised out of the transaction: nothing written
            review = replace(await self._review(plan), problems=rejected.problems)
            return _import_result(review, committed=False)
        return _import_result(done, committed=True)

    async def _review(self, plan: ImportPlan) -> ImportReview:
        async with self._node.store.read() as tx:
            return await review_import(tx, plan)

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/export", self.export_cases,
                     "Export every case (plain text; audited), or with hxl a publication",
                     Role.admin,
                     query=ExportQuery, files=tuple(MEDIA_TYPES.values()),
                     file_headers=(WITHHELD_HEADER,), tags=TAGS),
            Endpoint("POST", "/imports", self.import_cases,
                     "Check or import a CSV/XLSX spreadsheet with a column mapping",
                     Role.editor, body=ImportRequest, query=ImportQuery,
                     response=ImportResult, tags=TAGS),
        ]
