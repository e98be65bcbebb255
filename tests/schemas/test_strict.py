"""Unknown fields in what users send: found at any depth, named without echoing content."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, RootModel

from schemas.case import Case
from schemas.strict import dropped_fields, unknown_fields

CASE: dict[str, Any] = {
    "title": "Amenazas contra lideresa",
    "narrative": "Panfletos la declararon objetivo militar.",
    "incident_date": "2024-03-02",
    "country": "CO",
    "violations": ["death_threat"],
    "consent_level": "coalition",
    "risk_level": "high",
    "victims": [{"kind": "individual", "name": "Ana Pérez", "groups": ["woman_hrd"]}],
}


def _case(**changes: Any) -> Case:
    return Case.model_validate({**CASE, **changes})


def test_a_case_with_only_known_fields_has_none() -> None:
    assert unknown_fields(_case()) == []


def test_a_misspelt_field_is_named_at_the_top_and_inside_a_victim() -> None:
    victims = [{"kind": "individual", "name": "Ana Pérez"},
               {"kind": "individual", "name": "Luis Mora", "gendre": "man"}]
    case = _case(impunity_statu="conviction", victims=victims)
    assert unknown_fields(case) == ["impunity_statu", "victims[1].gendre"]
    assert unknown_fields(case, "body") == ["body.impunity_statu", "body.victims[1].gendre"]


def test_a_key_that_may_be_content_is_not_echoed() -> None:
    case = _case(**{"Ana Pérez lives at Calle 5": "x"})
    assert unknown_fields(case) == ["(a field with another name)"]


class _Settings(BaseModel):
    every_days: int = 0


class _Forbidding(BaseModel):
    model_config = ConfigDict(extra="forbid")
    every_days: int = 0


class _Patch(RootModel[dict[str, Any]]):
    pass


def test_keys_a_model_would_ignore_are_named() -> None:
    assert dropped_fields(_Settings, {"every_days": 3}) == []
    assert dropped_fields(_Settings, {"every_day": 3}, "body") == ["body.every_day"]
    # Models that keep or forbid unknown fields, and free-form patches, are not its business.
    assert dropped_fields(_Forbidding, {"every_day": 3}) == []
    assert dropped_fields(Case, {"impunity_statu": "x"}) == []
    assert dropped_fields(_Patch, {"anything": 1}) == []
