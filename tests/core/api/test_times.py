"""ISO 8601 times at the API boundary."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from node.core.api.times import OptionalTime, Time, TimeInput, iso_time, unix_seconds


class Shown(BaseModel):
    at: Time
    maybe: OptionalTime = None


class Given(BaseModel):
    at: TimeInput


def test_times_are_shown_as_iso_8601_utc() -> None:
    assert Shown(at=1_767_204_000).model_dump(mode="json") == {
        "at": "2025-12-31T18:00:00Z", "maybe": None}
    assert Shown(at=0, maybe=86_400).model_dump(mode="json")["maybe"] == "1970-01-02T00:00:00Z"


@pytest.mark.parametrize("text", ["2025-12-31T18:00:00Z", "2025-12-31T18:00:00+00:00",
                                  "2025-12-31T13:00:00-05:00", " 2025-12-31T18:00:00Z "])
def test_times_with_an_offset_are_accepted(text: str) -> None:
    assert Given.model_validate({"at": text}).at == 1_767_204_000
    assert iso_time(unix_seconds(text)) == "2025-12-31T18:00:00Z"


@pytest.mark.parametrize(("value", "problem"), [
    ("2025-12-31T18:00:00", "needs a time zone"),
    (1_767_204_000, "must be an ISO 8601 time"),
    ("next friday", "must be an ISO 8601 time"),
    ("0003-09-05T00:00:00Z", "must be between 1970 and 9999"),
    ("0001-01-01T00:00:00+05:00", "must be between 1970 and 9999"),
    ("1969-12-31T23:59:59Z", "must be between 1970 and 9999"),
    (None, "must be an ISO 8601 time"),
])
def test_other_times_are_refused_with_the_reason(value: object, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Given.model_validate({"at": value})
    assert problem in str(caught.value)


def test_the_extremes_of_the_range_are_accepted() -> None:
    assert Given.model_validate({"at": "1970-01-01T00:00:00Z"}).at == 0
    assert Given.model_validate({"at": "9999-12-31T23:59:59Z"}).at == 253_402_300_799


def test_the_openapi_schema_says_date_time() -> None:
    assert Given.model_json_schema()["properties"]["at"]["format"] == "date-time"
    assert Shown.model_json_schema()["properties"]["at"]["format"] == "date-time"
