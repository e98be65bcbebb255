"""Cases from spreadsheets (CSV, XLSX): a column mapping, a dry run, an all-or-nothing commit.

    sheet = read_spreadsheet(path, mapping)       # or identity mapping for Minga's own CSV
    plan = plan_import(sheet, mapping, today=day)  # every row's problems, by row and column
    review = await review_import(tx, plan)        # each row: new, updated (which fields), ...
    if review.problems: show them; nothing is written
    else: await commit_import(tx, plan, ...)      # new cases, new versions, one audit entry

Importing again is idempotent (docs/decisions/0016-idempotent-import.md). A row is recognised
by its ``record_id`` (Minga's own export), else by the value of the mapping's ``key_column``,
else only by its whole content. A row imported before updates the case it became, through the
casebook's amend (a new version), or is reported unchanged; a case deleted or retracted since
is reported and left alone. The node keeps only keyed hashes of rows' identities and contents
(``imported_rows``).

The mapping file (JSON, or TOML when the name ends in ``.toml``; docs/import.md has the whole
format and a worked example) says which column holds which case field, and how to translate its
values::

    sheet = "Casos"            # XLSX only; the first sheet by default
    header_row = 1             # the row with the column names
    list_separator = ";"       # splits cells that hold several values (violations, groups...)
    date_format = "%d/%m/%Y"   # for dates not written YYYY, YYYY-MM or YYYY-MM-DD
    key_column = "Código"      # names each row across imports (not a case field)
    key_source = "Casos"       # whose keys these are; default: the key column's name

    [columns]
    "Fecha" = "incident_date"
    "Tipo de agresión" = "violations"
    "Nombre" = "victims[0].name"          # "victims.name" means the first victim too
    "Grupo" = "victims[0].groups"
    "País" = { field = "country", values = { "Colombia" = "CO", "Perú" = "PE" } }

    [defaults]                 # for fields no column gives (or an empty cell)
    consent_level = "none"
    risk_level = "high"
    "victims.kind" = "individual"          # applies to every victim

Field paths are those of ``minga.case/1``; list elements are addressed ``victims[N].field``,
``perpetrators[N].field`` and ``sources[N]``; ``record_id`` keeps a record id from the file.
Several columns may feed one list (``violations`` from "Violation 1" and "Violation 2").
Values of typology fields are matched, after the column's ``values`` map, against each term's
code, English and Spanish labels and synonyms, ignoring case and accents.

``consent_coalitions`` (the coalitions the consent covers, decision 0032) is filled in as for a
case made by hand: the node's only coalition; a node in several needs it from a column or from
``[defaults]`` (``consent_coalitions = ["!room:example.org"]``) for rows whose consent shares
with a coalition.

Problems never quote cell contents (they may name people), only short codes.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, cast

from openpyxl import load_workbook  # type: ignore[import-untyped]  # no stubs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from node.core.store import (
    ImportedRow,
    NewCase,
    RecordDeleted,
    RecordNotFound,
    StoreTransaction,
)
from node.core.store.shares import ShareRepository
from node.features.cases.casebook import (
    amend_case,
    case_index,
    merge_patch,
    scoped_consent,
    stored_record,
)
from schemas.case import Case
from schemas.errors import RecordValidationError, describe_validation_error, quote_if_safe
from schemas.ids import is_uuid7, new_record_id
from schemas.records import RecordKind, build_record, parse_payload, record_to_wire
from schemas.strict import incident_date_problem
from schemas.typology import Vocabulary, match_term

CASES_IMPORTED = "case.import"
RECORD_ID = "record_id"

_SCALAR_FIELDS = frozenset({
    "title", "incident_date", "country", "place", "narrative", "impunity_status",
    "verification_status", "independent_sources", "consent_level", "risk_level",
    "impact_story",
})
_LIST_FIELDS = frozenset({"violations", "consent_partners", "consent_coalitions", "sources"})
_ELEMENT_FIELDS: Mapping[str, frozenset[str]] = {
    "victims": frozenset({"kind", "name", "native_name", "romanised_name", "groups", "gender",
                          "description"}),
    "perpetrators": frozenset({"category", "name", "description"}),
}
_LIST_ELEMENT_KEYS = frozenset({"victims.groups"})
_VOCABULARIES: Mapping[str, Vocabulary] = {
    "violations": Vocabulary.VIOLATION,
    "impunity_status": Vocabulary.IMPUNITY_STATUS,
    "verification_status": Vocabulary.VERIFICATION_STATUS,
    "consent_level": Vocabulary.CONSENT_LEVEL,
    "risk_level": Vocabulary.RISK_LEVEL,
    "victims.kind": Vocabulary.VICTIM_KIND,
    "victims.groups": Vocabulary.VICTIM_GROUP,
    "victims.gender": Vocabulary.GENDER,
    "perpetrators.category": Vocabulary.PERPETRATOR_CATEGORY,
}
_INDEXED = re.compile(r"^(victims|perpetrators|sources)\[(\d{1,3})\](?:\.([a-z_]+))?$")
_PARTIAL_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?(/\d{4}(-\d{2}(-\d{2})?)?)?$")
_MAX_LIST_INDEX = 99


class MappingError(ValueError):
    """The mapping file is unreadable or wrong; the message names the key or column."""


class SpreadsheetError(ValueError):
    """The spreadsheet cannot be read; the message says why, never quoting its contents."""


class ImportRejected(ValueError):
    """Commit refused: the plan has problems (nothing was written)."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__(f"{len(self.problems)} problem(s) in the spreadsheet; nothing imported")


# --- the mapping -------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """Where a column's values go: ``victims[0].name`` -> ("victims", 0, "name")."""

    field: str
    index: int | None = None
    key: str | None = None

    @property
    def vocabulary_key(self) -> str:
        return f"{self.field}.{self.key}" if self.key else self.field

    @property
    def is_list(self) -> bool:
        if self.key is not None:
            return self.vocabulary_key in _LIST_ELEMENT_KEYS
        return self.field in _LIST_FIELDS and self.index is None

    def path(self, index: int | None = None) -> str:
        position = self.index if index is None else index
        text = self.field if position is None else f"{self.field}[{position}]"
        return f"{text}.{self.key}" if self.key else text


def parse_target(path: str) -> Target:
    """A mapping's field path as a :class:`Target`; ``ValueError`` naming the problem."""
    if path == RECORD_ID or path in _SCALAR_FIELDS or path in _LIST_FIELDS:
        return Target(path)
    if "[" not in path and "." in path:
        field_name, _, key = path.partition(".")
        if key in _ELEMENT_FIELDS.get(field_name, ()):
            return Target(field_name, 0, key)
    match = _INDEXED.match(path)
    if match is not None:
        field_name, index, key = match.group(1), int(match.group(2)), match.group(3)
        valid_key = key in _ELEMENT_FIELDS[field_name] if field_name != "sources" else key is None
        if valid_key and index <= _MAX_LIST_INDEX:
            return Target(field_name, index, key)
    raise ValueError(f"{path!r} is not a case field this import can fill")


class ColumnRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    values: dict[str, str] = Field(default_factory=dict,
                                   description="cell text -> value, applied before matching")
    separator: str | None = Field(default=None, min_length=1,
                                  description="splits a cell into several values")

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        parse_target(value)
        return value


class ImportMapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: dict[str, str | ColumnRule] = Field(min_length=1)
    defaults: dict[str, Any] = Field(default_factory=dict)
    sheet: str | None = None
    header_row: int = Field(default=1, ge=1, le=1000)
    list_separator: str = Field(default=";", min_length=1)
    delimiter: str | None = Field(default=None, min_length=1, max_length=1,
                                  description="CSV only; guessed when not given")
    date_format: str | None = None
    key_column: str | None = Field(
        default=None, min_length=1,
        description="the column whose value names each row across imports (an ID or code)")
    key_source: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="whose keys these are, when two spreadsheets use the same codes"
                    " (default: the key column's name)")

    @model_validator(mode="after")
    def _source_needs_a_key(self) -> ImportMapping:
        if self.key_source is not None and self.key_column is None:
            raise ValueError("key_source is given but key_column is not")
        return self

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, columns: dict[str, str | ColumnRule]) -> dict[str, str | ColumnRule]:
        for column, rule in columns.items():
            if isinstance(rule, str):
                try:
                    parse_target(rule)
                except ValueError as error:
                    raise ValueError(f"column {column!r}: {error}") from None
        return columns

    @field_validator("defaults")
    @classmethod
    def _known_defaults(cls, defaults: dict[str, Any]) -> dict[str, Any]:
        for path in defaults:
            target = parse_target(path)
            if target.field == RECORD_ID:
                raise ValueError("record_id cannot have a default")
        return defaults

    def rule(self, column: str) -> ColumnRule:
        rule = self.columns[column]
        return ColumnRule(field=rule) if isinstance(rule, str) else rule

    def filled_fields(self) -> frozenset[str]:
        """The case's top-level fields this mapping fills (from a column or a default): what a
        re-import may change in a case it updates."""
        paths = [self.rule(column).field for column in self.columns] + list(self.defaults)
        return frozenset(parse_target(path).field for path in paths) - {RECORD_ID}


def load_mapping(path: Path) -> ImportMapping:
    """Read a mapping from JSON, or TOML when the file name ends in ``.toml``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise MappingError(f"{path}: cannot read ({reason})") from None
    return parse_mapping(text, toml=path.suffix.lower() == ".toml", source=str(path))


def parse_mapping(text: str, *, toml: bool = False, source: str = "mapping") -> ImportMapping:
    try:
        raw = tomllib.loads(text) if toml else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise MappingError(f"{source}: not valid {'TOML' if toml else 'JSON'} ({error})") from None
    return mapping_from_data(raw, source=source)


def mapping_from_data(raw: object, *, source: str = "mapping") -> ImportMapping:
    try:
        return ImportMapping.model_validate(raw)
    except ValidationError as error:
        raise MappingError(f"{source}: {describe_validation_error(error)}") from None


def identity_mapping(headers: Iterable[str]) -> ImportMapping:
    """The mapping of a file whose column names are field paths (Minga's own CSV export)."""
    columns: dict[str, str | ColumnRule] = {}
    for header in headers:
        try:
            parse_target(header)
        except ValueError:
            continue
        columns[header] = header
    if not columns:
        raise MappingError("no column is named after a case field; give a mapping file")
    return ImportMapping(columns=columns)


# --- reading spreadsheets ----------------------------------------------------------------

Cell = str | int | float | bool | date | datetime | None


@dataclass(frozen=True)
class Sheet:
    headers: tuple[str, ...]
    header_row: int
    rows: tuple[tuple[int, tuple[Cell, ...]], ...]
    """(row number as the spreadsheet shows it, cells) for every non-empty data row."""


def read_spreadsheet(path: Path, mapping: ImportMapping | None = None) -> Sheet:
    """Read a ``.csv`` or ``.xlsx`` file (by its name)."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return read_xlsx(path.read_bytes(), mapping)
    if suffix in (".csv", ".txt", ".tsv"):
        return read_csv(path.read_bytes(), mapping)
    raise SpreadsheetError(f"{path.name}: only .csv and .xlsx spreadsheets can be imported")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheet programs set to Spanish or Portuguese often save CSV as Windows-1252.
        return data.decode("cp1252", errors="replace")


def _delimiter(text: str, mapping: ImportMapping | None) -> str:
    """The mapping's, else the most frequent of , ; and tab in the header line:
    column names rarely contain one, whereas case text often does."""
    if mapping is not None and mapping.delimiter is not None:
        return mapping.delimiter
    lines = text.split("\n", mapping.header_row if mapping else 1)
    header = lines[min(len(lines), mapping.header_row if mapping else 1) - 1]
    return max(",;\t", key=lambda candidate: (header.count(candidate), candidate == ","))


def read_csv(data: bytes, mapping: ImportMapping | None = None) -> Sheet:
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text, mapping))
    try:
        records: list[tuple[Cell, ...]] = [tuple(record) for record in reader]
    except csv.Error as error:
        raise SpreadsheetError(f"not a readable CSV file (line {reader.line_num}: {error})") \
            from None
    return _sheet(records, mapping)


def read_xlsx(data: bytes, mapping: ImportMapping | None = None) -> Sheet:
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many types for a damaged or foreign file
        raise SpreadsheetError(f"not a readable XLSX file ({type(error).__name__})") from None
    try:
        name = mapping.sheet if mapping is not None else None
        if name is not None and name not in workbook.sheetnames:
            raise SpreadsheetError(f"sheet {quote_if_safe(name)} is not in the workbook")
        worksheet = workbook[name] if name is not None else workbook.worksheets[0]
        records = [tuple(cast(Cell, value) for value in row)
                   for row in worksheet.iter_rows(values_only=True)]
    finally:
        workbook.close()
    return _sheet(records, mapping)


def _is_empty(cell: Cell) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _is_hxl_row(cells: Sequence[Cell]) -> bool:
    filled = [cell for cell in cells if not _is_empty(cell)]
    return bool(filled) and all(isinstance(c, str) and c.strip().startswith("#") for c in filled)


def _sheet(records: Sequence[tuple[Cell, ...]], mapping: ImportMapping | None) -> Sheet:
    header_row = mapping.header_row if mapping is not None else 1
    if len(records) < header_row:
        raise SpreadsheetError(f"row {header_row} (the header row) is missing")
    headers = tuple("" if _is_empty(c) else str(c).strip() for c in records[header_row - 1])
    rows = []
    for number, cells in enumerate(records[header_row:], start=header_row + 1):
        if all(_is_empty(cell) for cell in cells):
            continue
        if number == header_row + 1 and _is_hxl_row(cells):
            continue
        rows.append((number, tuple(cells) + (None,) * (len(headers) - len(cells))))
    return Sheet(headers, header_row, tuple(rows))


# --- planning: rows to cases, with every problem -----------------------------------------

@dataclass(frozen=True)
class RowProblem:
    row: int
    column: str | None
    field: str
    problem: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column!r}" if self.column else "")
        return f"{where}: {self.field}: {self.problem}"


class RowIdentity(StrEnum):
    """How a row is recognised when the same spreadsheet is imported again."""

    RECORD_ID = "record_id"  # the row names its case (Minga's own export)
    KEY = "key_column"  # the mapping's key column
    CONTENT = "row_content"  # nothing but the whole row: an edited row is a new case


NO_KEY_WARNING: Final = (
    "rows without a record id or key are recognised on a later import only when they are"
    " exactly the same, so a row edited since becomes a new case: name the column that"
    " identifies each row as key_column in the mapping (docs/import.md)"
)
KEY_PROBLEM_FIELD: Final = "key_column"


@dataclass(frozen=True)
class PlannedCase:
    row: int
    case: Case = field(repr=False)
    record_id: str | None = None
    key: str | None = field(default=None, repr=False)

    @property
    def identity(self) -> RowIdentity:
        if self.record_id is not None:
            return RowIdentity.RECORD_ID
        return RowIdentity.CONTENT if self.key is None else RowIdentity.KEY

    def content(self) -> dict[str, Any]:
        """The case the row gives, as JSON, the way the casebook compares versions."""
        return self.case.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True)
class ImportPlan:
    rows: int
    cases: tuple[PlannedCase, ...]
    problems: tuple[RowProblem, ...]
    ignored_columns: tuple[str, ...] = ()
    header_row: int = 1
    key_source: str | None = None
    filled_fields: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the user should know before importing, though nothing is wrong."""
        by_content = any(p.identity is RowIdentity.CONTENT for p in self.cases)
        return (NO_KEY_WARNING,) if by_content else ()

    def rows_with_problems(self, problems: Iterable[RowProblem] | None = None) -> set[int]:
        """Data rows with a problem (problems of the header row concern the whole file)."""
        chosen = self.problems if problems is None else problems
        return {problem.row for problem in chosen if problem.row != self.header_row}


class _CellProblem(ValueError):
    pass


def plan_import(sheet: Sheet, mapping: ImportMapping, *, today: date) -> ImportPlan:
    """Turn every row into a case, or into problems naming the row and the column; ``today``
    (UTC) is the latest incident date a row may give."""
    problems = _header_problems(sheet, mapping)
    columns = [(k, header) for k, header in enumerate(sheet.headers) if header in mapping.columns]
    key_at = _key_position(sheet, mapping)
    planned: list[PlannedCase] = []
    seen: dict[tuple[RowIdentity, str], int] = {}
    for number, cells in sheet.rows:
        row = _RowBuilder(number, mapping, today)
        for k, header in columns:
            row.take(header, cells[k] if k < len(cells) else None)
        result = row.finish()
        problems.extend(row.problems)
        key = None if key_at is None or key_at >= len(cells) else cells[key_at]
        if mapping.key_column is not None and key_at is not None and _is_empty(key):
            problems.append(RowProblem(number, mapping.key_column, KEY_PROBLEM_FIELD,
                                       "the key column is empty in this row"))
            continue
        if result is None:
            continue
        result = replace(result, key=None if _is_empty(key) else _text(key).strip())
        repeated = _repeated_row(result, seen, row.origin.get(RECORD_ID), mapping.key_column)
        if repeated is not None:
            problems.append(repeated)
            continue
        planned.append(result)
    ignored = tuple(h for h in sheet.headers
                    if h and h not in mapping.columns and h != mapping.key_column)
    key_source = mapping.key_source or mapping.key_column
    return ImportPlan(len(sheet.rows), tuple(planned), tuple(problems), ignored,
                      sheet.header_row, key_source, mapping.filled_fields())


def _key_position(sheet: Sheet, mapping: ImportMapping) -> int | None:
    if mapping.key_column is None or sheet.headers.count(mapping.key_column) != 1:
        return None
    return sheet.headers.index(mapping.key_column)


def _repeated_row(
    planned: PlannedCase, seen: dict[tuple[RowIdentity, str], int], record_id_column: str | None,
    key_column: str | None,
) -> RowProblem | None:
    """A problem when an earlier row of the file has the same identity: two rows would be
    one case."""
    identity = planned.identity
    value = {RowIdentity.RECORD_ID: planned.record_id, RowIdentity.KEY: planned.key}.get(
        identity) or json.dumps(planned.content(), sort_keys=True)
    first = seen.setdefault((identity, value), planned.row)
    if first == planned.row:
        return None
    if identity is RowIdentity.RECORD_ID:
        return RowProblem(planned.row, record_id_column, RECORD_ID,
                          f"the same record id as row {first}")
    if identity is RowIdentity.KEY:
        return RowProblem(planned.row, key_column, KEY_PROBLEM_FIELD,
                          f"the same key as row {first}")
    return RowProblem(planned.row, None, "row",
                      f"the same case as row {first}; to import both, give the mapping a"
                      " key_column that tells them apart")


def _header_problems(sheet: Sheet, mapping: ImportMapping) -> list[RowProblem]:
    wanted = [(column, mapping.rule(column).field) for column in mapping.columns]
    if mapping.key_column is not None and mapping.key_column not in mapping.columns:
        wanted.append((mapping.key_column, KEY_PROBLEM_FIELD))
    problems = []
    for column, field_path in wanted:
        count = sheet.headers.count(column)
        if count != 1:
            problem = "not in the spreadsheet" if count == 0 else "appears more than once"
            problems.append(RowProblem(sheet.header_row, column, field_path,
                                       f"this column is {problem}"))
    return problems


class _RowBuilder:
    """Collects one row's values by target, then validates the case."""

    def __init__(self, number: int, mapping: ImportMapping, today: date) -> None:
        self.number = number
        self.mapping = mapping
        self.today = today
        self.problems: list[RowProblem] = []
        self.values: dict[Target, list[Any]] = {}
        self.origin: dict[str, str] = {}

    def take(self, column: str, cell: Cell) -> None:
        rule = self.mapping.rule(column)
        target = parse_target(rule.field)
        if _is_empty(cell):
            return
        try:
            values = _convert(cell, target, rule, self.mapping)
        except _CellProblem as problem:
            self.problems.append(RowProblem(self.number, column, target.path(), str(problem)))
            return
        if not target.is_list and target in self.values:
            self.problems.append(RowProblem(self.number, column, target.path(),
                                            "another column already gives this field"))
            return
        self.values.setdefault(target, []).extend(values)
        self.origin.setdefault(target.path(), column)

    def finish(self) -> PlannedCase | None:
        """The row's case, or None with every problem of the row recorded."""
        record_id = self._record_id()
        payload, origins = _payload(self.values, self.origin, self.mapping.defaults)
        try:
            case = cast(Case, parse_payload(RecordKind.CASE, payload))
        except RecordValidationError as error:
            # A cell that could not be read already has its problem; the field it left
            # missing is not a second one.
            failed = {problem.field for problem in self.problems}
            for item in error.problems:
                if _column_for(item.path, dict.fromkeys(failed, "")) is not None:
                    continue
                column = _column_for(item.path, origins) or _column_for(item.path, self._mapped())
                self.problems.append(RowProblem(self.number, column, item.path, item.problem))
            return None
        future = incident_date_problem(case.incident_date, self.today)
        if future is not None:
            column = _column_for("incident_date", origins) or _column_for("incident_date",
                                                                         self._mapped())
            self.problems.append(RowProblem(self.number, column, "incident_date", future))
        return None if self.problems else PlannedCase(self.number, case, record_id)

    def _mapped(self) -> dict[str, str]:
        """Field path -> the first column mapped to it (for problems with empty cells)."""
        mapped: dict[str, str] = {}
        for column in self.mapping.columns:
            mapped.setdefault(parse_target(self.mapping.rule(column).field).path(), column)
        return mapped

    def _record_id(self) -> str | None:
        values = self.values.pop(Target(RECORD_ID), None)
        if not values:
            return None
        record_id = str(values[0]).strip().lower()
        if not is_uuid7(record_id):
            self.problems.append(RowProblem(self.number, self.origin.get(RECORD_ID), RECORD_ID,
                                            "must be a UUIDv7 record id"))
            return None
        return record_id


def _convert(cell: Cell, target: Target, rule: ColumnRule, mapping: ImportMapping) -> list[Any]:
    if target.field == "incident_date":
        return [_date_text(cell, mapping.date_format)]
    if target.field == "independent_sources":
        return [_whole_number(cell)]
    if target.is_list:
        separator = rule.separator or mapping.list_separator
        parts = [part.strip() for part in _text(cell).split(separator)]
        return [_translate(part, target, rule) for part in parts if part]
    return [_translate(_text(cell), target, rule)]


def _text(cell: Cell) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime):
        return cell.date().isoformat() if cell.time() == datetime.min.time() else cell.isoformat()
    if isinstance(cell, date):
        return cell.isoformat()
    return str(cell)


def _translate(text: str, target: Target, rule: ColumnRule) -> str:
    """Apply the column's value map, then match typology terms; free text stays as written."""
    mapped = rule.values.get(text.strip(), rule.values.get(text, text))
    vocabulary = _VOCABULARIES.get(target.vocabulary_key)
    if vocabulary is not None:
        term = match_term(mapped, vocabulary)
        if term is None:
            name = vocabulary.value.replace("_", " ")
            raise _CellProblem(
                f"{quote_if_safe(mapped.strip())} is not a known {name} in English or Spanish"
                " (add it to the column's values map)"
            )
        return term.code
    if target.field in ("country", "consent_partners"):
        return mapped.strip().upper() if target.field == "country" else mapped.strip()
    return mapped


def _date_text(cell: Cell, date_format: str | None) -> str:
    if isinstance(cell, datetime):
        return cell.date().isoformat()
    if isinstance(cell, date):
        return cell.isoformat()
    text = _text(cell).strip()
    if _PARTIAL_DATE.match(text) or date_format is None:
        return text
    try:
        return datetime.strptime(text, date_format).date().isoformat()
    except ValueError:
        raise _CellProblem("not a date in the mapping's date_format, nor YYYY[-MM[-DD]]") \
            from None


def _whole_number(cell: Cell) -> int:
    if isinstance(cell, bool):
        raise _CellProblem("must be a whole number")
    if isinstance(cell, int):
        return cell
    if isinstance(cell, float) and cell.is_integer():
        return int(cell)
    text = _text(cell).strip()
    if text.isdigit():
        return int(text)
    raise _CellProblem("must be a whole number")


def _payload(
    values: Mapping[Target, list[Any]], origin: Mapping[str, str], defaults: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The case payload and, for each of its paths, the column it came from."""
    payload: dict[str, Any] = {}
    origins: dict[str, str] = {}
    elements: dict[str, dict[int, dict[str, Any]]] = {}
    element_origin: dict[tuple[str, int], dict[str, str]] = {}
    for target, found in values.items():
        column = origin[target.path()]
        if target.field in _ELEMENT_FIELDS:
            assert target.index is not None and target.key is not None
            value: Any = _dedupe(found) if target.is_list else found[0]
            elements.setdefault(target.field, {}).setdefault(target.index, {})[target.key] = value
            element_origin.setdefault((target.field, target.index), {})[target.key] = column
        elif target.field == "sources" and target.index is not None:
            elements.setdefault("sources", {})[target.index] = {"": found[0]}
            element_origin[("sources", target.index)] = {"": column}
        elif target.is_list:
            payload.setdefault(target.field, []).extend(found)
            payload[target.field] = _dedupe(payload[target.field])
            origins.setdefault(target.field, column)
        else:
            payload[target.field] = found[0]
            origins[target.field] = column
    _place_elements(payload, origins, elements, element_origin)
    _apply_defaults(payload, defaults)
    return payload, origins


def _place_elements(
    payload: dict[str, Any],
    origins: dict[str, str],
    elements: Mapping[str, Mapping[int, dict[str, Any]]],
    element_origin: Mapping[tuple[str, int], Mapping[str, str]],
) -> None:
    for name, by_index in elements.items():
        placed = payload.setdefault(name, [])
        for index in sorted(by_index):
            position = len(placed)
            element = by_index[index]
            if name == "sources":
                placed.append(element[""])
                origins[f"sources[{position}]"] = element_origin[(name, index)][""]
                continue
            placed.append(element)
            for key, column in element_origin[(name, index)].items():
                origins[f"{name}[{position}].{key}"] = column


def _apply_defaults(payload: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    """``field``: when absent; ``victims.kind``: in every victim; ``victims[0].kind``: in that
    victim, which it creates when the row has none."""
    for path, value in defaults.items():
        target = parse_target(path)
        if target.key is None:
            payload.setdefault(target.field, value)
            continue
        assert target.index is not None
        elements = payload.setdefault(target.field, [])
        if "[" in path and target.index == len(elements):
            elements.append({})
        chosen = elements if "[" not in path else elements[target.index : target.index + 1]
        for element in chosen:
            element.setdefault(target.key, value)
        if not elements:
            del payload[target.field]


def _dedupe(values: Iterable[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def _column_for(path: str, origins: Mapping[str, str]) -> str | None:
    """The column a problem's field path came from: the path itself or its nearest parent."""
    candidate = path
    while candidate:
        if candidate in origins:
            return origins[candidate]
        trimmed = re.sub(r"(\[\d+\]|\.[a-z_]+)$", "", candidate)
        if trimmed == candidate:
            break
        candidate = trimmed
    return None


# --- re-importing: is this row new, an update, or unchanged? ----------------------------

class RowStatus(StrEnum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"  # its case was deleted since: reported, not brought back
    RETRACTED = "retracted"  # its case was retracted since: reported, left as it is


WRITTEN: Final = frozenset({RowStatus.NEW, RowStatus.UPDATED})
SKIPPED: Final = frozenset({RowStatus.DELETED, RowStatus.RETRACTED})


@dataclass(frozen=True)
class HeldCase:
    """The case this node holds for a row: the one it names, or the one it was imported as."""

    record_id: str
    payload: Mapping[str, Any] | None = field(default=None, repr=False)  # None: deleted
    retracted: bool = False
    as_last_imported: bool = False  # the row is exactly what was imported into it last time


@dataclass(frozen=True)
class RowDecision:
    row: int
    status: RowStatus
    record_id: str | None = None
    changed: tuple[str, ...] = ()
    """The top-level fields an update changes."""
    patch: Mapping[str, Any] = field(default_factory=dict, repr=False)


def decide_row(
    planned: PlannedCase, held: HeldCase | None, filled_fields: frozenset[str]
) -> RowDecision | RowProblem:
    """What importing ``planned`` does to the case the node ``held`` for it (None: none).

    The spreadsheet speaks for the fields its mapping fills: each takes the row's value, or is
    removed when the row leaves it empty; lists (victims...) are replaced whole. Other fields
    keep what the case has. A row exactly as imported last time changes nothing, so an edit
    made in Minga since is not undone by importing the same file again.
    """
    if held is None:
        return RowDecision(planned.row, RowStatus.NEW, planned.record_id)
    if held.payload is None:
        return RowDecision(planned.row, RowStatus.DELETED, held.record_id)
    if held.retracted:
        return RowDecision(planned.row, RowStatus.RETRACTED, held.record_id)
    if held.as_last_imported:
        return RowDecision(planned.row, RowStatus.UNCHANGED, held.record_id)
    content = planned.content()
    patch = {name: content.get(name) for name in sorted(filled_fields)}
    try:
        merged = parse_payload(RecordKind.CASE, merge_patch(held.payload, patch))
    except RecordValidationError as error:
        first = error.problems[0]
        return RowProblem(planned.row, None, first.path,
                          f"the case this row updates would not be valid: {first.problem}")
    after = merged.model_dump(mode="json", exclude_none=True)
    changed = tuple(name for name in sorted(set(after) | set(held.payload))
                    if after.get(name) != held.payload.get(name))
    if not changed:
        return RowDecision(planned.row, RowStatus.UNCHANGED, held.record_id)
    return RowDecision(planned.row, RowStatus.UPDATED, held.record_id, changed, patch)


@dataclass(frozen=True)
class RowTags:
    """Keyed hashes (``ColumnCipher.lookup_tag``) of a row's identity and of its content."""

    identity: bytes
    content: bytes


def row_tags(tag: Callable[[str, Any], bytes], plan: ImportPlan, planned: PlannedCase) -> RowTags:
    content = tag("import-row", planned.content())
    identity = planned.identity
    if identity is RowIdentity.RECORD_ID:
        return RowTags(tag("import-record", planned.record_id), content)
    if identity is RowIdentity.KEY:
        return RowTags(tag("import-key", [plan.key_source, planned.key]), content)
    return RowTags(content, content)


@dataclass(frozen=True)
class ImportReview:
    """Every row's fate, and every problem (of the file, or found against the store)."""

    plan: ImportPlan
    decisions: tuple[RowDecision, ...]
    problems: tuple[RowProblem, ...]
    tags: tuple[RowTags, ...] = field(default=(), repr=False)

    def count(self, *statuses: RowStatus) -> int:
        return sum(1 for decision in self.decisions if decision.status in statuses)

    def counts(self) -> dict[str, int]:
        """new, updated, unchanged, and skipped (deleted or retracted since)."""
        return {"new": self.count(RowStatus.NEW), "updated": self.count(RowStatus.UPDATED),
                "unchanged": self.count(RowStatus.UNCHANGED),
                "skipped": self.count(*SKIPPED)}

    def rows_with_problems(self) -> int:
        return len(self.plan.rows_with_problems(self.problems))


async def review_import(tx: StoreTransaction, plan: ImportPlan) -> ImportReview:
    """Say, without writing, what importing ``plan`` would do to each row."""
    tags = tuple(row_tags(tx.cipher.lookup_tag, plan, planned) for planned in plan.cases)
    known = await tx.imported_rows.find([t for pair in tags for t in (pair.identity, pair.content)])
    targets = [_target(planned, pair, known) for planned, pair in zip(plan.cases, tags,
                                                                        strict=True)]
    held = await _held_cases(tx, {record_id for record_id, _ in targets if record_id})
    problems = list(plan.problems)
    decisions: list[RowDecision] = []
    claimed: dict[str, int] = {}
    for planned, (record_id, as_last_imported) in zip(plan.cases, targets, strict=True):
        holding = held.get(record_id) if record_id else None
        if holding is not None:
            first = claimed.setdefault(holding.record_id, planned.row)
            if first != planned.row:
                problems.append(RowProblem(planned.row, None, "row",
                                           f"imported before as the same case as row {first}"))
                continue
            holding = replace(holding, as_last_imported=as_last_imported)
        decided = decide_row(planned, holding, plan.filled_fields)
        if isinstance(decided, RowProblem):
            problems.append(decided)
        else:
            decisions.append(decided)
    return ImportReview(plan, tuple(decisions), tuple(problems), tags)


def _target(
    planned: PlannedCase, tags: RowTags, known: Mapping[bytes, ImportedRow]
) -> tuple[str | None, bool]:
    """The record id this row is about (None: a new case), and whether the row is exactly as
    imported into it last time."""
    earlier = known.get(tags.identity)
    if planned.record_id is not None:
        return planned.record_id, earlier is not None and earlier.content == tags.content
    if earlier is not None:
        return earlier.record_id, earlier.content == tags.content
    # A key column added to the mapping since: the same row imported without one is this case.
    same = known.get(tags.content) if planned.identity is RowIdentity.KEY else None
    return (same.record_id, True) if same is not None else (None, False)


async def _held_cases(tx: StoreTransaction, record_ids: set[str]) -> dict[str, HeldCase]:
    retracted = await ShareRepository(tx.session, tx.cipher).retracted_among(sorted(record_ids))
    held: dict[str, HeldCase] = {}
    for record_id in record_ids:
        try:
            stored = await tx.cases.get(record_id)
        except RecordDeleted:
            held[record_id] = HeldCase(record_id)
            continue
        except RecordNotFound:
            continue
        payload = stored_record(stored).payload.model_dump(mode="json", exclude_none=True)
        held[record_id] = HeldCase(stored.record_id, payload, stored.record_id in retracted)
    return held


# --- committing --------------------------------------------------------------------------

async def commit_import(
    tx: StoreTransaction, plan: ImportPlan, *, issuer: str, author: str, issued_at: int
) -> ImportReview:
    """Store every new case and every update, or nothing (:class:`ImportRejected`; raised out of
    the transaction, it rolls back whatever was written). Returns what was done, row by row."""
    review = await review_import(tx, plan)
    if review.problems:
        raise ImportRejected(review.problems)
    planned_by_row = {planned.row: planned for planned in plan.cases}
    done = await _add_new_cases(tx, review.decisions, planned_by_row, issuer, author, issued_at)
    for decision in done:
        if decision.status is RowStatus.UPDATED:
            assert decision.record_id is not None
            try:
                await amend_case(tx, decision.record_id, decision.patch, author=author,
                                 issued_at=issued_at)
            except RecordValidationError as error:
                raise ImportRejected([RowProblem(decision.row, None, p.path, p.problem)
                                      for p in error.problems]) from None
    tags_by_row = dict(zip((planned.row for planned in plan.cases), review.tags, strict=True))
    await tx.imported_rows.remember([
        ImportedRow(tags_by_row[d.row].identity, d.record_id, tags_by_row[d.row].content)
        for d in done if d.record_id is not None and d.status not in SKIPPED])
    finished = replace(review, decisions=tuple(done))
    await tx.audit.append(author, CASES_IMPORTED, details=finished.counts())
    return finished


async def _add_new_cases(
    tx: StoreTransaction,
    decisions: Sequence[RowDecision],
    planned_by_row: Mapping[int, PlannedCase],
    issuer: str,
    author: str,
    issued_at: int,
) -> list[RowDecision]:
    """Store the new rows' cases in one batch; the decisions, with the new cases' ids."""
    done, batch = [], []
    for decision in decisions:
        if decision.status is RowStatus.NEW:
            planned = planned_by_row[decision.row]
            try:  # the coalitions its consent covers, as for a case made by hand
                case = await scoped_consent(tx, planned.case)
            except RecordValidationError as error:
                raise ImportRejected([RowProblem(decision.row, None, p.path, p.problem)
                                      for p in error.problems]) from None
            record = build_record(issuer, case, issued_at=issued_at,
                                  record_id=planned.record_id or new_record_id())
            batch.append(NewCase(record.record_id, record_to_wire(record),
                                 case_index(case), author))
            decision = replace(decision, record_id=record.record_id)
        done.append(decision)
    await tx.cases.add_many(batch)
    return done
