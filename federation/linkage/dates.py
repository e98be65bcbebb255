"""Incident dates as labels at day, month and year level, with a tolerance window.

Documenters know dates to different precisions: a day ("2024-05-17"), a month ("2024-05"), a
year, or a range. Two dates are compatible when they could be the same day, allowing
:data:`WINDOW_DAYS` either way for a day-precise date. They are compared at the coarser of their
two precisions: two days must lie within the window; a day and a month must share a month once
the day's window is applied (so 1 October matches "September"); a month and a month must be the
same month.

Every level carries ``points`` (the labels the date covers) and ``windows`` (the labels its
tolerance window touches; the same as ``points`` except at day precision). Two dates are
compatible at a level when one's window meets the other's points. The labels are plaintext here;
``encoding`` replaces each with a keyed tag, and the same comparison runs on the tags.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from enum import IntEnum

from schemas.dates import DateSpan

WINDOW_DAYS = 2
MAX_DAY_SPAN_DAYS = 7
MAX_MONTH_SPAN_MONTHS = 12
MAX_YEAR_SPAN_YEARS = 5


class Precision(IntEnum):
    """How precisely a date is known; also the level two dates are compared at."""

    NONE = 0
    YEAR = 1
    MONTH = 2
    DAY = 3


LEVELS: tuple[Precision, ...] = (Precision.DAY, Precision.MONTH, Precision.YEAR)


@dataclass(frozen=True)
class LevelLabels:
    points: tuple[str, ...]
    windows: tuple[str, ...]


@dataclass(frozen=True)
class DateLabels:
    """``levels`` holds one entry per level from the date's precision up to the year."""

    precision: Precision
    levels: dict[Precision, LevelLabels]


def date_labels(
    span: DateSpan | None, window_days: int = WINDOW_DAYS, max_day_span: int = MAX_DAY_SPAN_DAYS
) -> DateLabels:
    """The labels of ``span`` at every level it is precise enough for (the tolerance and the
    longest span still compared by the day are the scheme's: ``tables``)."""
    if span is None:
        return DateLabels(Precision.NONE, {})
    first, last = span.earliest(), span.latest()
    precision = _precision(span, first, last, max_day_span)
    if precision is Precision.NONE:
        return DateLabels(Precision.NONE, {})
    if precision is Precision.DAY:
        window_first, window_last = first - timedelta(window_days), last + timedelta(window_days)
    else:
        window_first, window_last = first, last
    levels = {
        level: LevelLabels(_labels(level, first, last), _labels(level, window_first, window_last))
        for level in LEVELS
        if level <= precision
    }
    return DateLabels(precision, levels)


def _precision(span: DateSpan, first: date, last: date, max_day_span: int) -> Precision:
    given = min(_partial_precision(span.start.precision), _end_precision(span))
    if given is Precision.DAY and (last - first).days < max_day_span:
        return Precision.DAY
    if given >= Precision.MONTH and _months_between(first, last) < MAX_MONTH_SPAN_MONTHS:
        return Precision.MONTH
    if last.year - first.year < MAX_YEAR_SPAN_YEARS:
        return Precision.YEAR
    return Precision.NONE


def _end_precision(span: DateSpan) -> Precision:
    return Precision.DAY if span.end is None else _partial_precision(span.end.precision)


def _partial_precision(name: str) -> Precision:
    return {"day": Precision.DAY, "month": Precision.MONTH}.get(name, Precision.YEAR)


def _months_between(first: date, last: date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month


def _labels(level: Precision, first: date, last: date) -> tuple[str, ...]:
    if level is Precision.DAY:
        return tuple(f"D{day.isoformat()}" for day in _days(first, last))
    if level is Precision.MONTH:
        return tuple(f"M{year:04d}-{month:02d}" for year, month in _months(first, last))
    return tuple(f"Y{year:04d}" for year in range(first.year, last.year + 1))


def _days(first: date, last: date) -> Iterator[date]:
    for offset in range((last - first).days + 1):
        yield first + timedelta(offset)


def _months(first: date, last: date) -> Iterator[tuple[int, int]]:
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        yield year, month
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
