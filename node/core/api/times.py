"""Times at the API boundary: ISO 8601 in and out, Unix seconds inside.

The node stores and compares times as integer Unix seconds; every time the API shows or accepts
is an ISO 8601 date-time in UTC (``2026-12-31T18:00:00Z``), so one concept has one shape. A time
given without an offset is refused rather than guessed, and so is a bare number.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

EXAMPLE = "2026-12-31T18:00:00Z"
LATEST = 253_402_300_799
"""9999-12-31T23:59:59Z: the last time ISO 8601's four-digit years can write."""


def iso_time(unix_seconds: int) -> str:
    """Unix seconds as an ISO 8601 UTC time, to the second, with a ``Z``."""
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix_seconds(value: Any) -> int:
    """An ISO 8601 date-time with an offset as Unix seconds; anything else is a ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO 8601 time such as {EXAMPLE}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"must be an ISO 8601 time such as {EXAMPLE}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"needs a time zone, for example {EXAMPLE} (Z is UTC)")
    try:
        seconds = int(parsed.timestamp())
    except (OverflowError, OSError, ValueError):
        seconds = -1
    if not 0 <= seconds <= LATEST:
        raise ValueError(f"must be between 1970 and {iso_time(LATEST)[:4]}")
    return seconds


def _optional_iso(unix: int | None) -> str | None:
    return None if unix is None else iso_time(unix)


_SCHEMA = {"type": "string", "format": "date-time", "examples": [EXAMPLE]}

Time = Annotated[int, PlainSerializer(iso_time, return_type=str), WithJsonSchema(_SCHEMA)]
"""A time the API shows: Unix seconds in Python, ISO 8601 on the wire."""

OptionalTime = Annotated[
    int | None,
    PlainSerializer(_optional_iso, return_type=str | None),
    WithJsonSchema({"anyOf": [_SCHEMA, {"type": "null"}]}),
]
"""A time the API shows that may be absent (``null``)."""

TimeInput = Annotated[int, BeforeValidator(unix_seconds), WithJsonSchema(_SCHEMA)]
"""A time the API accepts: ISO 8601 with an offset on the wire, Unix seconds in Python."""
