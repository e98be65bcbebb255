"""Fields a user sent that no model knows: refused on the way in, kept on the way through.

Wire models keep unknown fields (``extra="allow"``, :class:`schemas.common.WireModel`): a record
from a newer peer must not lose what this node cannot read yet. What a person or an import sends
to its own node is another matter: there an unknown field is a typo (``impunity_statu``, a
victim's ``gendre``), and keeping it silently loses the value meant for the real field. So
everything that takes input from people checks :func:`unknown_fields` of the validated model and
refuses the input when it names any. An incident date in the future is refused the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, Final

from pydantic import BaseModel, RootModel

from schemas.case import Case
from schemas.dates import DateSpan
from schemas.errors import FieldProblem

UNKNOWN_FIELD: Final = "unknown field; check its spelling (nothing was stored)"
# A key that is not a plain identifier may be content typed into the wrong place: never echoed.
_NAMEABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


def unknown_fields(model: BaseModel, prefix: str = "") -> list[str]:
    """The paths (``victims[0].gendre``) of every field in ``model``, nested models included,
    that its model does not define."""
    paths = [_join(prefix, _name(key)) for key in (model.model_extra or {})]
    for name, info in type(model).model_fields.items():
        paths += _inside(getattr(model, name), _join(prefix, info.alias or name))
    return paths


def dropped_fields(model: type[BaseModel], data: object, prefix: str = "") -> list[str]:
    """The keys of ``data`` that validating it as ``model`` would silently drop: pydantic's
    default for unknown fields is to ignore them (models that keep or forbid them say so)."""
    ignoring = model.model_config.get("extra", "ignore") == "ignore"
    if not ignoring or issubclass(model, RootModel) or not isinstance(data, Mapping):
        return []
    known = {name for name in model.model_fields} | {
        info.alias for info in model.model_fields.values() if info.alias}
    return [_join(prefix, _name(key)) for key in data if key not in known]


def _inside(value: Any, path: str) -> list[str]:
    if isinstance(value, BaseModel):
        return unknown_fields(value, path)
    if isinstance(value, list | tuple):
        return [found for index, item in enumerate(value)
                for found in _inside(item, f"{path}[{index}]")]
    if isinstance(value, Mapping):
        return [found for key, item in value.items()
                for found in _inside(item, _join(path, _name(key)))]
    return []


def _name(key: object) -> str:
    return key if isinstance(key, str) and _NAMEABLE.match(key) else "(a field with another name)"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


FUTURE_INCIDENT: Final = "is in the future; an incident date says when it happened"
# A day ahead of UTC is still today somewhere (UTC+14): only later than that is refused.
_SLACK: Final = timedelta(days=1)


def incident_date_problem(incident_date: str, today: date) -> str | None:
    """Why ``incident_date`` (a date span) cannot be an incident's date on ``today`` (UTC)."""
    return FUTURE_INCIDENT if DateSpan.parse(incident_date).earliest() > today + _SLACK else None


def own_case_problems(case: Case, today: date, *, known_before: Case | None = None
                      ) -> list[FieldProblem]:
    """What refuses a case a user or an import gives its own node: unknown fields (except those
    ``known_before`` already carried: a newer Minga's fields are kept) and a future incident."""
    kept = set(unknown_fields(known_before)) if known_before is not None else set()
    problems = [FieldProblem(path, UNKNOWN_FIELD) for path in unknown_fields(case)
                if path not in kept]
    future = incident_date_problem(case.incident_date, today)
    if future is not None:
        problems.append(FieldProblem("incident_date", future))
    return problems
