"""Partial dates and date ranges, as documenters know them: "2024", "2024-05", "2024-05-17".

On the wire a date span is one string: a partial date, or two partial dates joined by "/"
("2024-05/2024-07", the interval form of ISO 8601 / EDTF level 0). Every given part must be a
real calendar date, and a range must not end before it starts: the earliest day of the start
must not be later than the last day of the end ("2024-05/2024" is accepted, "2024-06/2024-05" is
not). Open-ended ranges are not supported; a range whose end is unknown is the start alone.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, StrictStr, WithJsonSchema

_PARTIAL = r"[0-9]{4}(?:-[0-9]{2}(?:-[0-9]{2})?)?"
PARTIAL_DATE_PATTERN = f"^{_PARTIAL}$"
DATE_SPAN_PATTERN = f"^{_PARTIAL}(?:/{_PARTIAL})?$"
_PARTIAL_RE = re.compile(r"^([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?$")


class PartialDateError(ValueError):
    """Not a partial date or date range; the message says why without repeating the value."""


@dataclass(frozen=True)
class PartialDate:
    """A year, a month of a year, or a day."""

    year: int
    month: int | None = None
    day: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.year <= 9999:
            raise PartialDateError("year must be between 0001 and 9999")
        if self.month is None:
            if self.day is not None:
                raise PartialDateError("a day needs a month")
            return
        if not 1 <= self.month <= 12:
            raise PartialDateError("month must be between 01 and 12")
        if self.day is not None and not 1 <= self.day <= self._days_in_month():
            raise PartialDateError("that day does not exist in that month")

    @classmethod
    def parse(cls, text: str) -> PartialDate:
        match = _PARTIAL_RE.match(text)
        if match is None:
            raise PartialDateError("must be YYYY, YYYY-MM or YYYY-MM-DD")
        year, month, day = match.groups()
        return cls(int(year), _int_or_none(month), _int_or_none(day))

    @property
    def precision(self) -> str:
        if self.month is None:
            return "year"
        return "month" if self.day is None else "day"

    def earliest(self) -> date:
        return date(self.year, self.month or 1, self.day or 1)

    def latest(self) -> date:
        if self.month is None:
            return date(self.year, 12, 31)
        return date(self.year, self.month, self.day or self._days_in_month())

    def _days_in_month(self) -> int:
        assert self.month is not None
        return calendar.monthrange(self.year, self.month)[1]

    def __str__(self) -> str:
        text = f"{self.year:04d}"
        if self.month is not None:
            text += f"-{self.month:02d}"
        if self.day is not None:
            text += f"-{self.day:02d}"
        return text


@dataclass(frozen=True)
class DateSpan:
    """A partial date (``end is None``) or a range of two partial dates."""

    start: PartialDate
    end: PartialDate | None = None

    def __post_init__(self) -> None:
        if self.end is not None and self.start.earliest() > self.end.latest():
            raise PartialDateError("the range ends before it starts")

    @classmethod
    def parse(cls, text: str) -> DateSpan:
        start, separator, end = text.partition("/")
        if separator and not end:
            raise PartialDateError("a range needs an end after '/'")
        return cls(PartialDate.parse(start), PartialDate.parse(end) if separator else None)

    def earliest(self) -> date:
        return self.start.earliest()

    def latest(self) -> date:
        return (self.end or self.start).latest()

    def overlaps(self, other: DateSpan) -> bool:
        return self.earliest() <= other.latest() and other.earliest() <= self.latest()

    def __str__(self) -> str:
        return str(self.start) if self.end is None else f"{self.start}/{self.end}"


def _int_or_none(digits: str | None) -> int | None:
    return None if digits is None else int(digits)


def _check_partial_date(value: str) -> str:
    PartialDate.parse(value)
    return value


def _check_date_span(value: str) -> str:
    DateSpan.parse(value)
    return value


PartialDateText = Annotated[
    StrictStr,
    AfterValidator(_check_partial_date),
    WithJsonSchema({"type": "string", "pattern": PARTIAL_DATE_PATTERN}),
]
"""A model field holding one partial date as text."""

DateSpanText = Annotated[
    StrictStr,
    AfterValidator(_check_date_span),
    WithJsonSchema({"type": "string", "pattern": DATE_SPAN_PATTERN}),
]
"""A model field holding a partial date or a range of two, as text."""
