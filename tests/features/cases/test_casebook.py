"""The casebook: merge patches (RFC 7396's own examples), and what it refuses from users while
keeping what a newer Minga wrote."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from node.core.store import DataKey, Store, open_store
from node.features.cases.casebook import (
    add_case,
    amend_case,
    case_index,
    consent_scope,
    merge_patch,
)
from schemas.case import Case
from schemas.errors import RecordValidationError
from schemas.records import build_record, record_to_wire
from tests.support.api_harness import SAMPLE_CASES

ORG = "o" + "q" * 26
NOW = 1_717_000_000  # 2024-05-29

# RFC 7396, Appendix A: target, patch, result.
RFC_7396_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_7396_EXAMPLES)
def test_merge_patch_gives_the_rfc_7396_results(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


@pytest.fixture
async def store(store_location: Path | str) -> AsyncIterator[Store]:
    opened = await open_store(store_location, DataKey.generate())
    yield opened
    await opened.close()


async def test_a_case_from_a_newer_minga_keeps_its_fields_when_amended(store: Store) -> None:
    """Own cases written by a newer version (a backup restored on an older node) still amend;
    the fields this version does not know are kept, nested objects merged."""
    newer = Case.model_validate({**SAMPLE_CASES["nairobi"],
                                 "field_notes": {"interviewer": "A.", "language": "sw"}})
    record = build_record(ORG, newer, record_id="0190a5c4-0000-7000-8000-0000000000aa",
                          issued_at=NOW)
    async with store.transaction() as tx:
        await tx.cases.add(record.record_id, record_to_wire(record), case_index(newer), "a")
        patch = {"risk_level": "critical", "field_notes": {"language": None, "follow_up": "x"}}
        amended = await amend_case(tx, record.record_id, patch, author="a", issued_at=NOW + 1)
    payload = amended.document["payload"]
    assert payload["risk_level"] == "critical"
    assert payload["field_notes"] == {"interviewer": "A.", "follow_up": "x"}


async def test_a_patch_cannot_add_a_field_no_model_knows(store: Store) -> None:
    async with store.transaction() as tx:
        stored = await add_case(tx, issuer=ORG, author="a", issued_at=NOW,
                                case=Case.model_validate(SAMPLE_CASES["nairobi"]))
    with pytest.raises(RecordValidationError) as refused:
        async with store.transaction() as tx:
            await amend_case(tx, stored.record_id, {"impunity_statu": "conviction"},
                             author="a", issued_at=NOW + 1)
    assert [p.path for p in refused.value.problems] == ["impunity_statu"]


@pytest.mark.parametrize(("incident_date", "refused"), [
    ("2024-05-29", False), ("2024-05-30", False),  # a day ahead of UTC is today somewhere
    ("2024-05", False), ("2024", False),
    ("2024-05-31", True), ("2024-06", True), ("2025", True),
])
async def test_an_incident_date_after_today_is_refused(
    store: Store, incident_date: str, refused: bool
) -> None:
    case = Case.model_validate({**SAMPLE_CASES["nairobi"], "incident_date": incident_date})
    async with store.transaction() as tx:
        if refused:
            with pytest.raises(RecordValidationError, match="incident_date: is in the future"):
                await add_case(tx, issuer=ORG, case=case, author="a", issued_at=NOW)
        else:
            await add_case(tx, issuer=ORG, case=case, author="a", issued_at=NOW)


# --- the coalitions consent covers (decision 0032) --------------------------------------------

A, B = "!a:test", "!b:test"


def _case(**changes: Any) -> Case:
    return Case.model_validate({**SAMPLE_CASES["nairobi"], **changes})


def test_a_new_case_gets_the_only_coalition_or_must_name_one_of_several() -> None:
    assert consent_scope(_case(), [A]).consent_coalitions == [A]
    with pytest.raises(RecordValidationError) as several:
        consent_scope(_case(), [A, B])
    assert [p.path for p in several.value.problems] == ["consent_coalitions"]
    for level in ("none", "public"):  # these share with no coalition in particular
        assert consent_scope(_case(consent_level=level), [A, B]).consent_coalitions == []
    # a node in no coalition yet: the case means its first, like a case from before 0032
    assert consent_scope(_case(), []).consent_coalitions is None
    assert consent_scope(_case(consent_coalitions=[B]), [A, B]).consent_coalitions == [B]
    with pytest.raises(RecordValidationError, match="!c:test"):
        consent_scope(_case(consent_coalitions=["!c:test"]), [A, B])


def test_an_edit_keeps_the_coalitions_or_writes_the_first_on_an_old_case() -> None:
    before = _case(consent_coalitions=[B])
    assert consent_scope(_case(), [A, B], before=before, first=A).consent_coalitions == [B]
    old = _case()
    assert consent_scope(_case(), [A, B], before=old, first=A).consent_coalitions == [A]
    # a coalition this node left may stay named, not be named anew
    assert consent_scope(_case(consent_coalitions=[B, A]), [A], before=before,
                         first=A).consent_coalitions == [B, A]
    with pytest.raises(RecordValidationError):
        consent_scope(_case(consent_coalitions=[B]), [A], before=old, first=A)
