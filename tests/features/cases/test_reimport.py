"""Importing the same spreadsheet again: rows imported before update their case or are
reported unchanged, never duplicated (M16); the dry run says which."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from node.core.store import DataKey, Store, open_store
from node.core.store.shares import RETRACT, NewShare, ShareRepository
from node.features.cases.casebook import CASE_UPDATED, amend_case, delete_case
from node.features.cases.exporting import cases_csv, own_case_records
from node.features.cases.importing import (
    CASES_IMPORTED,
    NO_KEY_WARNING,
    HeldCase,
    ImportMapping,
    ImportPlan,
    ImportRejected,
    ImportReview,
    MappingError,
    PlannedCase,
    RowDecision,
    RowIdentity,
    RowProblem,
    RowStatus,
    commit_import,
    decide_row,
    identity_mapping,
    load_mapping,
    parse_mapping,
    plan_import,
    read_csv,
    review_import,
)
from schemas.case import Case
from tests.support import DATA

ORG = "o" + "q" * 26
TODAY = date.today()
CASOS = (DATA / "casos.csv").read_text("utf-8").rstrip("\n") + "\n"
PERU_NARRATIVE = "Detenido sin orden durante una protesta."
NEW_ROW = ("CO-0131;2024-02;Colombia;Suárez, Cauca;Desplazamiento forzado;;José Ramos Dagua;"
           "Líder indígena;Hombre;;Grupo armado;Sin denuncia;1;Familias salieron de la vereda.;"
           "coalition\n")


@pytest.fixture
async def store(store_location: Path | str) -> AsyncIterator[Store]:
    opened = await open_store(store_location, DataKey.generate())
    yield opened
    await opened.close()


def keyed() -> ImportMapping:
    return load_mapping(DATA / "import_mapping.toml")


def unkeyed() -> ImportMapping:
    return keyed().model_copy(update={"key_column": None})


def plan_of(text: str, mapping: ImportMapping | None = None) -> ImportPlan:
    sheet = read_csv(text.encode("utf-8"), mapping)
    return plan_import(sheet, mapping or identity_mapping(sheet.headers), today=TODAY)


async def review(store: Store, plan: ImportPlan) -> ImportReview:
    async with store.read() as tx:
        return await review_import(tx, plan)


async def commit(store: Store, plan: ImportPlan, at: int = 1_750_000_000) -> ImportReview:
    async with store.transaction() as tx:
        return await commit_import(tx, plan, issuer=ORG, author="beatriz", issued_at=at)


async def case_count(store: Store) -> int:
    async with store.read() as tx:
        return await tx.cases.count()


def statuses(done: ImportReview) -> list[tuple[int, RowStatus]]:
    return [(decision.row, decision.status) for decision in done.decisions]


# --- the pure rules ----------------------------------------------------------------------

BASE: dict[str, Any] = {
    "incident_date": "2023", "country": "CO", "narrative": "Amenazas.",
    "violations": ["death_threat"], "victims": [{"kind": "individual", "name": "Ana"}],
    "consent_level": "coalition", "risk_level": "high",
}
FILLED = frozenset({"incident_date", "country", "narrative", "violations", "victims",
                    "consent_level", "risk_level", "place"})
RECORD = "0190a5c4-0000-7000-8000-0000000000aa"


def planned(**changes: Any) -> PlannedCase:
    case = {key: value for key, value in {**BASE, **changes}.items() if value is not None}
    return PlannedCase(5, Case.model_validate(case), key="CO-1")


def held(payload: dict[str, Any] | None = None, **flags: bool) -> HeldCase:
    content = Case.model_validate(payload or BASE).model_dump(mode="json", exclude_none=True)
    return HeldCase(RECORD, content, **flags)


def test_a_row_the_node_never_saw_is_new() -> None:
    assert decide_row(planned(), None, FILLED) == RowDecision(5, RowStatus.NEW)


def test_a_row_whose_case_is_the_same_is_unchanged() -> None:
    assert decide_row(planned(), held(), FILLED) == RowDecision(5, RowStatus.UNCHANGED, RECORD)


def test_an_edited_row_updates_the_fields_it_changes_and_says_which() -> None:
    decided = decide_row(planned(narrative="Amenazas y disparos.", place="Toribío"), held(),
                         FILLED)
    assert isinstance(decided, RowDecision)
    assert (decided.status, decided.record_id, decided.changed) == (
        RowStatus.UPDATED, RECORD, ("narrative", "place"))
    assert decided.patch["narrative"] == "Amenazas y disparos."


def test_an_emptied_cell_removes_its_field_but_unmapped_fields_stay() -> None:
    story = {**BASE, "place": "Toribío", "impact_story": "Se mudó."}  # no column fills stories
    decided = decide_row(planned(), held(story), FILLED)
    assert isinstance(decided, RowDecision)
    assert decided.changed == ("place",) and decided.patch["place"] is None
    assert "impact_story" not in decided.patch


def test_a_row_as_last_imported_is_unchanged_even_if_the_case_was_edited_in_minga() -> None:
    edited_since = {**BASE, "narrative": "Corregido en Minga."}
    decided = decide_row(planned(), held(edited_since, as_last_imported=True), FILLED)
    assert decided == RowDecision(5, RowStatus.UNCHANGED, RECORD)


def test_a_deleted_or_retracted_case_is_reported_not_written() -> None:
    gone = decide_row(planned(narrative="Otra."), HeldCase(RECORD), FILLED)
    retracted = decide_row(planned(narrative="Otra."), held(retracted=True), FILLED)
    assert gone == RowDecision(5, RowStatus.DELETED, RECORD)
    assert retracted == RowDecision(5, RowStatus.RETRACTED, RECORD)


def test_an_update_that_would_make_the_case_invalid_is_a_problem_of_the_row() -> None:
    partners = {**BASE, "consent_level": "named_partners", "consent_partners": [ORG]}
    only_some = frozenset({"consent_partners"})  # the mapping empties partners, keeps the level
    decided = decide_row(planned(consent_partners=None), held(partners), only_some)
    assert isinstance(decided, RowProblem) and decided.row == 5
    assert "would not be valid" in decided.problem


# --- the key column in the plan ----------------------------------------------------------

def test_the_key_column_names_each_row_and_is_not_an_ignored_column() -> None:
    plan = plan_of(CASOS, keyed())
    assert plan.ok and plan.ignored_columns == () and plan.warnings == ()
    assert [(p.identity, p.key) for p in plan.cases] == [
        (RowIdentity.KEY, "CO-0117"), (RowIdentity.KEY, "PE-0042"), (RowIdentity.KEY, "GT-0008")]
    assert plan.key_source == "Código"


def test_an_empty_or_repeated_key_is_a_problem_of_its_row() -> None:
    text = CASOS.replace("PE-0042;", ";").replace("GT-0008;", "CO-0117;")
    plan = plan_of(text, keyed())
    assert [(p.row, p.column, p.field, p.problem) for p in plan.problems] == [
        (3, "Código", "key_column", "the key column is empty in this row"),
        (4, "Código", "key_column", "the same key as row 2"),
    ]


def test_a_key_column_missing_from_the_file_is_a_problem_of_the_header_row() -> None:
    plan = plan_of(CASOS, keyed().model_copy(update={"key_column": "ID"}))
    assert (1, "ID", "key_column") in [(p.row, p.column, p.field) for p in plan.problems]


def test_a_key_source_needs_a_key_column() -> None:
    with pytest.raises(MappingError, match="key_source is given but key_column is not"):
        parse_mapping(json.dumps({"columns": {"Fecha": "incident_date"}, "key_source": "x"}))
    chosen = parse_mapping(json.dumps({"columns": {"Fecha": "incident_date"},
                                       "key_column": "ID", "key_source": "Casos Bogotá"}))
    assert (chosen.key_column, chosen.key_source) == ("ID", "Casos Bogotá")


def test_without_a_key_column_the_plan_warns_and_refuses_two_identical_rows() -> None:
    assert plan_of(CASOS, unkeyed()).warnings == (NO_KEY_WARNING,)
    first_row = CASOS.splitlines(keepends=True)[1:3]
    twice = CASOS + "".join(first_row).replace("CO-0117", "CO-0999")
    (problem,) = plan_of(twice, unkeyed()).problems
    assert problem.row == 5 and "the same case as row 2" in problem.problem
    assert "key_column" in problem.problem


# --- importing again ---------------------------------------------------------------------

async def test_the_same_file_twice_duplicates_nothing(store: Store) -> None:
    first = await commit(store, plan_of(CASOS, keyed()))
    assert statuses(first) == [(2, RowStatus.NEW), (3, RowStatus.NEW), (4, RowStatus.NEW)]
    checked = await review(store, plan_of(CASOS, keyed()))
    assert checked.counts() == {"new": 0, "updated": 0, "unchanged": 3, "skipped": 0}
    assert [d.record_id for d in checked.decisions] == [d.record_id for d in first.decisions]
    again = await commit(store, plan_of(CASOS, keyed()))
    assert again.counts()["unchanged"] == 3 and await case_count(store) == 3
    async with store.read() as tx:
        audit = await tx.audit.recent(limit=1)
    assert (audit[0].action, audit[0].details) == (
        CASES_IMPORTED, {"new": 0, "updated": 0, "unchanged": 3, "skipped": 0})


async def test_an_edited_row_with_a_key_updates_its_case_and_an_appended_row_is_new(
    store: Store,
) -> None:
    first = await commit(store, plan_of(CASOS, keyed()))
    peru = first.decisions[1].record_id
    edited = CASOS.replace(PERU_NARRATIVE, "Detenido sin orden en Puno.") + NEW_ROW
    checked = await review(store, plan_of(edited, keyed()))
    assert checked.problems == ()
    assert [(d.row, d.status, d.changed) for d in checked.decisions] == [
        (2, RowStatus.UNCHANGED, ()), (3, RowStatus.UPDATED, ("narrative",)),
        (4, RowStatus.UNCHANGED, ()), (5, RowStatus.NEW, ())]
    assert checked.decisions[1].record_id == peru
    await commit(store, plan_of(edited, keyed()), at=1_750_000_100)
    assert await case_count(store) == 4
    async with store.read() as tx:
        assert peru is not None
        versions = await tx.cases.versions(peru)
        current = await tx.cases.get(peru)
        audit = [(e.action, e.target) for e in await tx.audit.recent(limit=2)]
    assert [v.version for v in versions] == [1, 2]
    assert current.document["payload"]["narrative"] == "Detenido sin orden en Puno."
    assert current.document["issued_at"] == 1_750_000_100
    assert (CASE_UPDATED, peru) in audit
    assert (await review(store, plan_of(edited, keyed()))).counts()["unchanged"] == 4


async def test_an_edit_made_in_minga_is_not_undone_by_importing_the_same_file(
    store: Store,
) -> None:
    first = await commit(store, plan_of(CASOS, keyed()))
    peru = first.decisions[1].record_id
    assert peru is not None
    async with store.transaction() as tx:
        await amend_case(tx, peru, {"narrative": "Corregido en Minga."}, author="ana",
                         issued_at=1_750_000_050)
    assert (await commit(store, plan_of(CASOS, keyed()))).counts()["unchanged"] == 3
    edited = CASOS.replace(PERU_NARRATIVE, "Detenido sin orden en Puno.")
    checked = await review(store, plan_of(edited, keyed()))
    assert (checked.decisions[1].status, checked.decisions[1].changed) == (
        RowStatus.UPDATED, ("narrative",))


async def test_without_a_key_an_exact_reimport_is_unchanged_and_an_edited_row_is_new(
    store: Store,
) -> None:
    await commit(store, plan_of(CASOS, unkeyed()))
    same = await review(store, plan_of(CASOS, unkeyed()))
    assert same.counts()["unchanged"] == 3 and same.plan.warnings == (NO_KEY_WARNING,)
    edited = CASOS.replace(PERU_NARRATIVE, "Detenido sin orden en Puno.")
    assert statuses(await commit(store, plan_of(edited, unkeyed()))) == [
        (2, RowStatus.UNCHANGED), (3, RowStatus.NEW), (4, RowStatus.UNCHANGED)]
    assert await case_count(store) == 4


async def test_a_key_column_added_later_recognises_the_rows_imported_without_one(
    store: Store,
) -> None:
    await commit(store, plan_of(CASOS, unkeyed()))
    assert (await commit(store, plan_of(CASOS, keyed()))).counts()["unchanged"] == 3
    edited = CASOS.replace(PERU_NARRATIVE, "Detenido sin orden en Puno.")
    assert (await commit(store, plan_of(edited, keyed()))).counts()["updated"] == 1
    assert await case_count(store) == 3


async def test_a_deleted_or_retracted_case_is_reported_and_not_brought_back(
    store: Store,
) -> None:
    first = await commit(store, plan_of(CASOS, keyed()))
    colombia, peru = first.decisions[0].record_id, first.decisions[1].record_id
    assert colombia is not None and peru is not None
    async with store.transaction() as tx:
        await delete_case(tx, colombia, author="ana")
        await ShareRepository(tx.session, tx.cipher).add(NewShare(
            peru, 1, "case", RETRACT, "o" + "r" * 26, (), "!pair:example.org", "ana",
            datetime.now(UTC)))
    edited = CASOS.replace(PERU_NARRATIVE, "Detenido sin orden en Puno.")
    done = await commit(store, plan_of(edited, keyed()))
    assert statuses(done) == [(2, RowStatus.DELETED), (3, RowStatus.RETRACTED),
                              (4, RowStatus.UNCHANGED)]
    assert done.counts() == {"new": 0, "updated": 0, "unchanged": 1, "skipped": 2}
    async with store.read() as tx:
        assert await tx.cases.count() == 2
        assert [v.version for v in await tx.cases.versions(peru)] == [1]


async def test_reimporting_our_own_export_is_unchanged_and_an_edited_export_updates(
    store: Store,
) -> None:
    await commit(store, plan_of(CASOS, keyed()))
    async with store.read() as tx:
        records = await own_case_records(tx)
    exported = cases_csv(records)
    assert (await commit(store, plan_of(exported))).counts() == {
        "new": 0, "updated": 0, "unchanged": 3, "skipped": 0}
    edited = exported.replace(PERU_NARRATIVE, "Detenido sin orden en Puno.")
    done = await commit(store, plan_of(edited))
    assert [(d.status, d.changed) for d in done.decisions if d.status is RowStatus.UPDATED] == [
        (RowStatus.UPDATED, ("narrative",))]
    assert await case_count(store) == 3


async def test_a_file_with_a_problem_writes_not_even_its_clean_updates(store: Store) -> None:
    await commit(store, plan_of(CASOS, keyed()))
    broken = CASOS.replace(PERU_NARRATIVE, "Detenido.") + NEW_ROW.replace("2024-02", "2099-01")
    with pytest.raises(ImportRejected):
        await commit(store, plan_of(broken, keyed()))
    assert await case_count(store) == 3
    assert (await review(store, plan_of(CASOS, keyed()))).counts()["unchanged"] == 3
