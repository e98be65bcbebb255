"""The case form: form fields <-> a ``minga.case/1`` payload, with errors per schema field path.

Works without JavaScript: victims and perpetrators are rows; "add another" and "remove" are
submit buttons that send the whole form back (:meth:`CaseForm.apply`). Blank rows are ignored.
Partial dates are a year, an optional month and an optional day, for the start and optionally
the end of a range. Errors are keyed by the schema's paths (``incident_date``,
``victims[1].name``, ``consent_partners``) — with the row numbers of the form, not of the
payload, so each message sits next to the row it is about — and worded in the user's language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final

from multidict import MultiMapping
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from node.core.web.i18n import N_, Formatter
from node.core.web.labels import CASE_FIELD_NAMES, ELEMENT_FIELD_NAMES
from schemas.case import Case
from schemas.dates import DateSpan, PartialDateError
from schemas.errors import validation_problems

MAX_ROWS: Final = 50
NO_MONTH: Final = ""


@dataclass
class DateParts:
    year: str = ""
    month: str = ""
    day: str = ""

    @property
    def empty(self) -> bool:
        return not (self.year or self.month or self.day)


@dataclass
class VictimRow:
    kind: str = ""
    name: str = ""
    native_name: str = ""
    romanised_name: str = ""
    groups: list[str] = field(default_factory=list)
    gender: str = ""
    description: str = ""

    @property
    def blank(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))


@dataclass
class PerpetratorRow:
    category: str = ""
    name: str = ""
    description: str = ""

    @property
    def blank(self) -> bool:
        return not (self.category or self.name or self.description)


TEXT_FIELDS: Final = ("title", "place", "narrative", "impact_story")


@dataclass
class CaseForm:
    title: str = ""
    start: DateParts = field(default_factory=DateParts)
    end: DateParts = field(default_factory=DateParts)
    country: str = ""
    place: str = ""
    narrative: str = ""
    violations: list[str] = field(default_factory=list)
    victims: list[VictimRow] = field(default_factory=lambda: [VictimRow()])
    perpetrators: list[PerpetratorRow] = field(default_factory=lambda: [PerpetratorRow()])
    impunity_status: str = "unknown"
    verification_status: str = "unverified"
    independent_sources: str = "0"
    sources: str = ""
    consent_level: str = ""
    consent_partners: list[str] = field(default_factory=list)
    consent_coalitions: list[str] = field(default_factory=list)
    risk_level: str = ""
    impact_story: str = ""
    expected_version: int | None = None

    # --- from a stored case ----------------------------------------------------------------

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], version: int | None = None) -> CaseForm:
        start, _, end = str(payload.get("incident_date", "")).partition("/")
        victims = [VictimRow(**{f.name: _row_value(v, f.name) for f in fields(VictimRow)})
                   for v in payload.get("victims", []) if isinstance(v, Mapping)]
        perpetrators = [
            PerpetratorRow(**{f.name: _row_value(p, f.name) for f in fields(PerpetratorRow)})
            for p in payload.get("perpetrators", []) if isinstance(p, Mapping)
        ]
        return cls(
            **{name: str(payload.get(name) or "") for name in TEXT_FIELDS},
            start=_date_parts(start), end=_date_parts(end),
            country=str(payload.get("country", "")),
            violations=list(payload.get("violations", [])),
            victims=victims or [VictimRow()],
            perpetrators=[*perpetrators, PerpetratorRow()],
            impunity_status=str(payload.get("impunity_status", "unknown")),
            verification_status=str(payload.get("verification_status", "unverified")),
            independent_sources=str(payload.get("independent_sources", 0)),
            sources="\n".join(str(s) for s in payload.get("sources", [])),
            consent_level=str(payload.get("consent_level", "")),
            consent_partners=list(payload.get("consent_partners", [])),
            consent_coalitions=list(payload.get("consent_coalitions") or []),
            risk_level=str(payload.get("risk_level", "")),
            expected_version=version,
        )

    # --- from a posted form ----------------------------------------------------------------

    @classmethod
    def from_post(cls, form: MultiMapping[str]) -> CaseForm:
        def text(name: str) -> str:
            return str(form.get(name, "")).strip()

        def many(name: str) -> list[str]:
            return [value.strip() for value in form.getall(name, []) if value.strip()]

        victims = [
            VictimRow(
                kind=text(f"victims[{i}].kind"), name=text(f"victims[{i}].name"),
                native_name=text(f"victims[{i}].native_name"),
                romanised_name=text(f"victims[{i}].romanised_name"),
                groups=many(f"victims[{i}].groups"), gender=text(f"victims[{i}].gender"),
                description=text(f"victims[{i}].description"),
            )
            for i in range(_row_count(text("victim_rows")))
        ]
        perpetrators = [
            PerpetratorRow(category=text(f"perpetrators[{i}].category"),
                           name=text(f"perpetrators[{i}].name"),
                           description=text(f"perpetrators[{i}].description"))
            for i in range(_row_count(text("perpetrator_rows")))
        ]
        version = text("expected_version")
        return cls(
            **{name: text(name) for name in TEXT_FIELDS},
            start=DateParts(text("incident_date.start.year"), text("incident_date.start.month"),
                            text("incident_date.start.day")),
            end=DateParts(text("incident_date.end.year"), text("incident_date.end.month"),
                          text("incident_date.end.day")),
            country=text("country"), violations=many("violations"),
            victims=victims or [VictimRow()], perpetrators=perpetrators or [PerpetratorRow()],
            impunity_status=text("impunity_status"),
            verification_status=text("verification_status"),
            independent_sources=text("independent_sources"), sources=text("sources"),
            consent_level=text("consent_level"), consent_partners=many("consent_partners"),
            consent_coalitions=many("consent_coalitions"),
            risk_level=text("risk_level"),
            expected_version=int(version) if version.isdigit() else None,
        )

    def apply(self, action: str) -> bool:
        """Add or remove a row for an "add another"/"remove" button; False for other actions."""
        if action == "add_victim" and len(self.victims) < MAX_ROWS:
            self.victims.append(VictimRow())
        elif action == "add_perpetrator" and len(self.perpetrators) < MAX_ROWS:
            self.perpetrators.append(PerpetratorRow())
        elif action.startswith("remove_victim:"):
            _remove(self.victims, action, VictimRow)
        elif action.startswith("remove_perpetrator:"):
            _remove(self.perpetrators, action, PerpetratorRow)
        else:
            return False
        return True

    # --- to a payload ----------------------------------------------------------------------

    def to_payload(self, fmt: Formatter) -> tuple[dict[str, Any] | None, dict[str, str]]:
        """The payload and no errors, or None and the errors by field path."""
        errors: dict[str, str] = {}
        incident_date = self._incident_date(fmt, errors)
        victim_rows = [i for i, row in enumerate(self.victims) if not row.blank]
        perpetrator_rows = [i for i, row in enumerate(self.perpetrators) if not row.blank]
        payload = _without_empty({
            **{name: getattr(self, name) for name in TEXT_FIELDS},
            "incident_date": incident_date or "0000",
            "country": self.country,
            "violations": self.violations,
            "victims": [_victim(self.victims[i]) for i in victim_rows],
            "perpetrators": [_without_empty(vars(self.perpetrators[i]).copy())
                             for i in perpetrator_rows],
            "impunity_status": self.impunity_status,
            "verification_status": self.verification_status,
            "independent_sources": _number(self.independent_sources),
            "sources": [line.strip() for line in self.sources.splitlines() if line.strip()],
            "consent_level": self.consent_level,
            "consent_partners": self.consent_partners,
            "consent_coalitions": self.consent_coalitions,
            "risk_level": self.risk_level,
        })
        try:
            Case.model_validate(payload)
        except ValidationError as error:
            rows = {"victims": victim_rows, "perpetrators": perpetrator_rows}
            for path, message in _field_errors(error, rows, fmt):
                if not (path == "incident_date" and incident_date is None):
                    errors.setdefault(path, message)
        if errors:
            return None, errors
        return payload, {}

    def _incident_date(self, fmt: Formatter, errors: dict[str, str]) -> str | None:
        start = _partial(self.start, fmt, errors, end=False)
        end = None if self.end.empty else _partial(self.end, fmt, errors, end=True)
        if start is None or (end is None and not self.end.empty):
            return None
        text = start if end is None else f"{start}/{end}"
        try:
            DateSpan.parse(text)
        except PartialDateError as error:
            errors["incident_date"] = fmt.gettext(DATE_MESSAGES[_date_problem(str(error))])
            return None
        return text


def _row_value(row: Mapping[str, Any], name: str) -> Any:
    value = row.get(name)
    if name == "groups":
        return list(value or [])
    return "" if value is None else str(value)


def _date_parts(text: str) -> DateParts:
    year, _, rest = text.partition("-")
    month, _, day = rest.partition("-")
    return DateParts(year, str(int(month)) if month else "", str(int(day)) if day else "")


def _row_count(text: str) -> int:
    return min(int(text), MAX_ROWS) if text.isdigit() else 1


def _remove(rows: list[Any], action: str, blank: type) -> None:
    index = action.partition(":")[2]
    if index.isdigit() and int(index) < len(rows):
        del rows[int(index)]
    if not rows:
        rows.append(blank())


def _victim(row: VictimRow) -> dict[str, Any]:
    return _without_empty(replace(row, groups=list(row.groups)).__dict__.copy())


def _without_empty(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value not in ("", None, [])}


def _number(text: str) -> int | str:
    return int(text) if text.isdigit() else text


DATE_MESSAGES: Final[Mapping[str, str]] = {
    "no_year": N_("Give at least the year it happened, like 2024."),
    "no_end_year": N_("Give the year of the end of the period, or leave the end empty."),
    "bad_year": N_("The year must be four digits, like 2024."),
    "bad_day": N_("The day must be a number from 1 to 31."),
    "day_needs_month": N_("A day needs a month."),
    "no_such_day": N_("That day does not exist in that month."),
    "ends_before": N_("The period ends before it starts."),
}


def _partial(parts: DateParts, fmt: Formatter, errors: dict[str, str], *,
             end: bool) -> str | None:
    problem = None
    if not parts.year:
        problem = "no_end_year" if end else "no_year"
    elif not (parts.year.isdigit() and len(parts.year) == 4 and int(parts.year) >= 1):
        problem = "bad_year"
    elif parts.day and not parts.month:
        problem = "day_needs_month"
    elif parts.day and not (parts.day.isdigit() and 1 <= int(parts.day) <= 31):
        problem = "bad_day"
    if problem is not None:
        errors["incident_date"] = fmt.gettext(DATE_MESSAGES[problem])
        return None
    text = parts.year
    if parts.month and parts.month.isdigit() and 1 <= int(parts.month) <= 12:
        text += f"-{int(parts.month):02d}"
        if parts.day:
            text += f"-{int(parts.day):02d}"
    return text


def _date_problem(problem: str) -> str:
    """The key of :data:`DATE_MESSAGES` for a ``PartialDateError`` message."""
    if "does not exist" in problem:
        return "no_such_day"
    if "ends before" in problem:
        return "ends_before"
    return "bad_year"


FIELD_MESSAGES: Final[Mapping[str, str]] = {
    "required": N_("This is required."),
    "choose": N_("Choose one from the list."),
    "choose_some": N_("Choose at least one."),
    "add_victim": N_("Add at least one person or collective (a name is not required)."),
    "too_long": N_("This is too long (at most %(max)s characters)."),
    "whole_number": N_("Enter a whole number, 0 or more."),
    "duplicate": N_("The same entry is given twice."),
    "partners_needed": N_("Choose at least one partner organisation for this consent."),
    "partners_not_allowed": N_(
        "Partners can only be named with the consent \u201cNamed partners only\u201d."),
    "gender_person": N_("Only a person has a gender here."),
}


def _message(detail: ErrorDetails, problem: str, path: str) -> tuple[str, dict[str, Any]]:
    kind = detail["type"]
    context = detail.get("ctx", {})
    if kind in ("missing", "string_too_short") or "must not be blank" in problem:
        return "required", {}
    if kind == "too_short":
        return ("add_victim" if path == "victims" else "choose_some"), {}
    if kind == "string_too_long":
        return "too_long", {"max": context.get("max_length", "?")}
    if kind.startswith(("int_", "greater_than")) or kind in ("less_than_equal",):
        return "whole_number", {}
    if "same entry twice" in problem:
        return "duplicate", {}
    if "needs at least one partner" in problem:
        return "partners_needed", {}
    if "only allowed with named_partners" in problem:
        return "partners_not_allowed", {}
    if "has a gender" in problem:
        return "gender_person", {}
    if " is not a " in problem or "not an officially assigned" in problem or kind == "enum":
        return "choose", {}
    return "", {}


def _form_path(path: str, rows: Mapping[str, Sequence[int]]) -> str:
    """``victims[0].name`` of the payload -> the same field in the form's row numbering."""
    for name, form_rows in rows.items():
        prefix = f"{name}["
        if path.startswith(prefix):
            index, _, rest = path[len(prefix):].partition("]")
            if index.isdigit() and int(index) < len(form_rows):
                return f"{name}[{form_rows[int(index)]}]{rest}"
    return path


def _field_errors(error: ValidationError, rows: Mapping[str, Sequence[int]],
                  fmt: Formatter) -> list[tuple[str, str]]:
    found = []
    for detail, problem in zip(error.errors(include_url=False), validation_problems(error),
                               strict=True):
        path = _form_path(problem.path, rows)
        key, values = _message(detail, problem.problem, problem.path)
        text = fmt.gettext(FIELD_MESSAGES[key]) % values if key else problem.problem
        found.append((_shown_at(path), text))
    return found


def _shown_at(path: str) -> str:
    """Errors inside a list of codes (``violations[2]``) are shown at the list."""
    if path.endswith("]") and "[" in path:
        return path[: path.rindex("[")]
    return path


@dataclass(frozen=True)
class ErrorLink:
    path: str
    label: str
    message: str


ROW_NAMES: Final[Mapping[str, str]] = {
    "victims": N_("Person or collective %(n)s"),
    "perpetrators": N_("Perpetrator %(n)s"),
}


def error_summary(errors: Mapping[str, str], fmt: Formatter) -> list[ErrorLink]:
    """Every error with the name of its field, for the list at the top of the form."""
    links = []
    for path, message in errors.items():
        links.append(ErrorLink(path, _path_label(path, fmt), message))
    return links


def _path_label(path: str, fmt: Formatter) -> str:
    name, bracket, rest = path.partition("[")
    if bracket and name in ROW_NAMES:
        index, _, key = rest.partition("]")
        row = fmt.gettext(ROW_NAMES[name]) % {"n": int(index) + 1 if index.isdigit() else "?"}
        element = ELEMENT_FIELD_NAMES.get(key.lstrip("."))
        return f"{row}: {fmt.gettext(element)}" if element else row
    label = CASE_FIELD_NAMES.get(path)
    return fmt.gettext(label) if label else fmt.gettext(N_("The form"))
