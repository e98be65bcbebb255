"""Cases from spreadsheets (CSV, XLSX): a column mapping, a dry run, an all-or-nothing commit.

    sheet = read_spreadsheet(path, mapping)       # or identity mapping for Minga's own CSV
    plan = plan_import(sheet, mapping, today=day)  # every row's problems, by row and column
    if plan.problems: show them; nothing is written
    else: await commit_import(tx, plan, ...)      # one batch insert, one audit entry

The mapping file (JSON, or TOML when the name ends in ``.toml``; docs/import.md has the whole
format and a worked example) says which column holds which case field, and how to translate its
values::

    sheet = "Casos"            # XLSX only; the first sheet by default
    header_row = 1             # the row with the column names
    list_separator = ";"       # splits cells that hold several values (violations, groups...)
    date_format = "%d/%m/%Y"   # for dates not written YYYY, YYYY-MM or YYYY-MM-DD

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

Problems never quote cell contents (they may name people), only short codes.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

from openpyxl import load_workbook  # type: ignore[import-untyped]  # no stubs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from node.core.store import NewCase, RecordDeleted, RecordNotFound, StoredCase, StoreTransaction
from node.features.cases.casebook import case_index
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
_LIST_FIELDS = frozenset({"violations", "consent_partners", "sources"})
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


@dataclass(frozen=True)
class PlannedCase:
    row: int
    case: Case = field(repr=False)
    record_id: str | None = None


@dataclass(frozen=True)
class ImportPlan:
    rows: int
    cases: tuple[PlannedCase, ...]
    problems: tuple[RowProblem, ...]
    ignored_columns: tuple[str, ...] = ()
    header_row: int = 1

    @property
    def ok(self) -> bool:
        return not self.problems

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
    planned: list[PlannedCase] = []
    seen_ids: dict[str, int] = {}
    for number, cells in sheet.rows:
        row = _RowBuilder(number, mapping, today)
        for k, header in columns:
            row.take(header, cells[k] if k < len(cells) else None)
        result = row.finish()
        problems.extend(row.problems)
        if result is None:
            continue
        if result.record_id is not None:
            first = seen_ids.setdefault(result.record_id, number)
            if first != number:
                problems.append(RowProblem(number, row.origin.get(RECORD_ID), RECORD_ID,
                                           f"the same record id as row {first}"))
                continue
        planned.append(result)
    ignored = tuple(h for h in sheet.headers if h and h not in mapping.columns)
    return ImportPlan(len(sheet.rows), tuple(planned), tuple(problems), ignored,
                      sheet.header_row)


def _header_problems(sheet: Sheet, mapping: ImportMapping) -> list[RowProblem]:
    problems = []
    for column in mapping.columns:
        count = sheet.headers.count(column)
        if count != 1:
            problem = "not in the spreadsheet" if count == 0 else "appears more than once"
            problems.append(RowProblem(sheet.header_row, column, mapping.rule(column).field,
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


# --- committing --------------------------------------------------------------------------

async def existing_record_problems(tx: StoreTransaction, plan: ImportPlan) -> list[RowProblem]:
    """Rows whose record id this node already holds (only when the file gives record ids)."""
    problems = []
    for planned in plan.cases:
        if planned.record_id is None:
            continue
        try:
            await tx.cases.get(planned.record_id)
        except RecordNotFound:
            continue
        except RecordDeleted:
            pass
        problems.append(RowProblem(planned.row, None, RECORD_ID,
                                   "this node already holds (or held) a case with this id"))
    return problems


async def commit_import(
    tx: StoreTransaction, plan: ImportPlan, *, issuer: str, author: str, issued_at: int
) -> list[StoredCase]:
    """Store every planned case in one batch, or nothing (:class:`ImportRejected`)."""
    problems = [*plan.problems, *await existing_record_problems(tx, plan)]
    if problems:
        raise ImportRejected(problems)
    batch = []
    for planned in plan.cases:
        record = build_record(issuer, planned.case, issued_at=issued_at,
                              record_id=planned.record_id or new_record_id())
        batch.append(NewCase(record.record_id, record_to_wire(record), case_index(planned.case),
                             author))
    stored = await tx.cases.add_many(batch)
    await tx.audit.append(author, CASES_IMPORTED, details={"count": len(stored)})
    return stored

