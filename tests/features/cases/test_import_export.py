"""Spreadsheet import (mapping, dry run, all-or-nothing commit) and export (CSV, HXL, JSON)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook  # type: ignore[import-untyped]

from node.core.store import DataKey, Store, open_store
from node.features.cases.casebook import add_case
from node.features.cases.exporting import (
    HXL_TAGS,
    Withheld,
    case_json_schema,
    cases_csv,
    cases_json,
    own_case_records,
    publication_csv,
)
from node.features.cases.importing import (
    CASES_IMPORTED,
    ImportMapping,
    ImportRejected,
    MappingError,
    RowProblem,
    SpreadsheetError,
    commit_import,
    identity_mapping,
    load_mapping,
    parse_mapping,
    plan_import,
    read_csv,
    read_spreadsheet,
    read_xlsx,
    review_import,
)
from schemas.case import Case
from schemas.export import json_schema
from schemas.ids import new_record_id
from schemas.records import CaseRecord, RecordKind, build_record, parse_record
from tests.support import DATA
from tests.support.api_harness import SAMPLE_CASES
from tests.support.coalitions import in_coalition

ORG = "o" + "q" * 26
TODAY = date.today()
OTHER_ORG = "o" + "r" * 26
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture
async def store(store_location: Path | str) -> AsyncIterator[Store]:
    opened = await open_store(store_location, DataKey.generate())
    yield opened
    await opened.close()


@pytest.fixture
async def second_store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(tmp_path / "node-b", DataKey.generate())
    yield opened
    await opened.close()


def mapping() -> ImportMapping:
    return load_mapping(DATA / "import_mapping.toml")


async def count(store: Store) -> int:
    async with store.read() as tx:
        return await tx.cases.count()


# --- the dry run -------------------------------------------------------------------------

def test_the_dry_run_lists_every_bad_row_and_column() -> None:
    plan = plan_import(read_spreadsheet(DATA / "casos_con_errores.csv", mapping()), mapping(),
    today=TODAY)
    assert plan.rows == 6
    assert [(p.row, p.column, p.field) for p in plan.problems] == [
        (3, "Fecha", "incident_date"),
        (4, "Tipo de agresión", "violations"),
        (5, "País", "country"),
        (6, "Género", "victims[0].gender"),
        (6, "Fuentes", "independent_sources"),
        (6, "Relato", "narrative"),
        (7, "Situación judicial", "impunity_status"),
        (7, "Consentimiento", "consent_level"),
    ]
    assert plan.rows_with_problems() == {3, 4, 5, 6, 7}
    assert [planned.row for planned in plan.cases] == [2]


def test_problems_name_codes_but_never_repeat_free_text() -> None:
    plan = plan_import(read_spreadsheet(DATA / "casos_con_errores.csv", mapping()), mapping(),
    today=TODAY)
    messages = " ".join(str(problem) for problem in plan.problems)
    assert "'Asesinto' is not a known violation" in messages
    assert "Llamadas" not in messages and "31/02/2023" not in messages


async def test_a_file_with_problems_writes_nothing(store: Store) -> None:
    plan = plan_import(read_spreadsheet(DATA / "casos_con_errores.csv", mapping()), mapping(),
    today=TODAY)
    with pytest.raises(ImportRejected) as rejected:
        async with store.transaction() as tx:
            await commit_import(tx, plan, issuer=ORG, author="beatriz", issued_at=1)
    assert len(rejected.value.problems) == 8
    assert await count(store) == 0


# --- a clean file ------------------------------------------------------------------------

EXPECTED_CLEAN: list[dict[str, Any]] = [
    {
        "incident_date": "2023-03-14", "country": "CO", "place": "Toribío, Cauca",
        "narrative": "Panfletos la declararon objetivo militar.\nVolvieron a circular en abril.",
        "violations": ["death_threat", "stigmatisation"],
        "victims": [{"kind": "individual", "name": "María Fernanda Yatacué",
                     "groups": ["indigenous_leader", "woman_hrd"], "gender": "woman"}],
        "perpetrators": [{"category": "armed_group"}],
        "impunity_status": "not_reported", "independent_sources": 2,
        "consent_level": "coalition", "risk_level": "high",
    },
    {
        "incident_date": "2022-11", "country": "PE",
        "narrative": "Detenido sin orden durante una protesta.",
        "violations": ["arbitrary_detention", "torture"],
        "victims": [{"kind": "individual", "name": "Julio Quispe Mamani",
                     "groups": ["journalist"], "gender": "man"},
                    {"kind": "individual", "name": "Rosa Huamán"}],
        "perpetrators": [{"category": "police"}],
        "impunity_status": "reported_no_action", "independent_sources": 1,
        "consent_level": "coalition", "risk_level": "high",
    },
    {
        "incident_date": "2024", "country": "GT",
        "narrative": "Asesinato de un dirigente sindical, nombre reservado.",
        "violations": ["killing"],
        "victims": [{"kind": "individual", "groups": ["trade_unionist"]}],
        "perpetrators": [{"category": "unknown"}],
        "consent_level": "anonymised", "risk_level": "high",
    },
]


async def test_a_clean_file_imports_exactly(store: Store) -> None:
    plan = plan_import(read_spreadsheet(DATA / "casos.csv", mapping()), mapping(), today=TODAY)
    assert plan.ok and plan.ignored_columns == ()
    async with store.transaction() as tx:
        done = await commit_import(tx, plan, issuer=ORG, author="beatriz", issued_at=7)
    assert done.counts() == {"new": 3, "updated": 0, "unchanged": 0, "skipped": 0}
    async with store.read() as tx:
        records = await own_case_records(tx)
        audit = await tx.audit.recent()
    by_place = sorted(records, key=lambda record: record.payload.incident_date)
    expected = sorted(EXPECTED_CLEAN, key=lambda case: str(case["incident_date"]))
    assert [r.payload for r in by_place] == [Case.model_validate(case) for case in expected]
    assert {(r.issuer, r.version, r.issued_at) for r in records} == {(ORG, 1, 7)}
    assert [(event.action, event.details) for event in audit] == [
        (CASES_IMPORTED, {"new": 3, "updated": 0, "unchanged": 0, "skipped": 0})]


def _xlsx(rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Casos"
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_an_xlsx_workbook_imports_like_the_csv() -> None:
    with (DATA / "casos.csv").open(encoding="utf-8", newline="") as handle:
        rows: list[list[Any]] = list(csv.reader(handle, delimiter=";"))
    rows[1][1] = datetime(2023, 3, 14)  # a date cell, as spreadsheet programs store them
    rows[1][12] = 2  # numbers stay numbers in XLSX
    rows[2][12] = 1.0
    chosen = mapping().model_copy(update={"sheet": "Casos"})
    from_xlsx = plan_import(read_xlsx(_xlsx(rows), chosen), chosen, today=TODAY)
    from_csv = plan_import(read_spreadsheet(DATA / "casos.csv", mapping()), mapping(), today=TODAY)
    assert from_xlsx.ok
    assert [p.case for p in from_xlsx.cases] == [p.case for p in from_csv.cases]


def test_a_missing_sheet_or_a_foreign_file_is_refused_clearly() -> None:
    chosen = mapping().model_copy(update={"sheet": "Hoja9"})
    with pytest.raises(SpreadsheetError, match="'Hoja9' is not in the workbook"):
        read_xlsx(_xlsx([["Fecha"]]), chosen)
    with pytest.raises(SpreadsheetError, match="not a readable XLSX"):
        read_xlsx(b"PK\x03\x04 not really a workbook", mapping())


# --- the mapping -------------------------------------------------------------------------

def test_a_json_mapping_means_the_same_as_toml() -> None:
    toml_mapping = mapping()
    as_json = json.dumps(toml_mapping.model_dump(mode="json"))
    assert parse_mapping(as_json) == toml_mapping


def test_a_mapping_to_an_unknown_field_names_the_column() -> None:
    text = '{"columns": {"Fecha": "incident_date", "Apodo": "victims[0].nickname"}}'
    with pytest.raises(MappingError, match=r"Apodo.*'victims\[0\]\.nickname' is not a case"):
        parse_mapping(text)
    with pytest.raises(MappingError, match="not valid TOML"):
        parse_mapping("columns = {", toml=True)


def test_a_mapped_column_missing_from_the_file_is_a_problem_of_the_header_row() -> None:
    chosen = parse_mapping('{"columns": {"Fecha": "incident_date", "Pais": "country"}}')
    plan = plan_import(read_csv("Fecha,País\n2023,CO\n".encode(), chosen), chosen, today=TODAY)
    assert (1, "Pais", "country") in [(p.row, p.column, p.field) for p in plan.problems]
    assert plan.ignored_columns == ("País",)
    assert plan.rows_with_problems() == {2}


def test_a_row_dated_after_today_is_a_problem_of_its_date_column() -> None:
    sheet = read_spreadsheet(DATA / "casos.csv", mapping())
    later = plan_import(sheet, mapping(), today=date(2000, 1, 1))
    dated = {(p.row, p.field, p.problem) for p in later.problems}
    assert dated and all(field == "incident_date" and "in the future" in problem
                         for _, field, problem in dated)
    assert later.rows_with_problems() == {number for number, _ in sheet.rows}
    assert {p.column for p in later.problems} == {"Fecha"}
    assert plan_import(sheet, mapping(), today=TODAY).problems == ()


def test_several_columns_feed_one_list_and_values_maps_come_first() -> None:
    chosen = parse_mapping(json.dumps({
        "columns": {"A": "violations", "B": {"field": "violations",
                                             "values": {"Balacera": "attempted_killing"}},
                    "N": "narrative", "F": "incident_date", "P": "country"},
        "defaults": {"consent_level": "none", "risk_level": "critical",
                     "victims[0].kind": "collective"},
    }))
    sheet = read_csv(b"A;B;N;F;P\nsecuestro;Balacera;x;2021;co\n", chosen)
    (planned,) = plan_import(sheet, chosen, today=TODAY).cases
    assert planned.case.violations == ["kidnapping", "attempted_killing"]
    assert planned.case.country == "CO"


# --- record ids --------------------------------------------------------------------------

async def test_record_ids_from_the_file_are_kept_and_name_the_case_again(store: Store) -> None:
    first, second = new_record_id(), new_record_id()
    text = (f"record_id,incident_date,country,narrative,violations,victims[0].kind,"
            f"consent_level,risk_level\n{first},2023,CO,a,killing,individual,none,low\n"
            f"{first},2023,CO,b,killing,individual,none,low\n"
            f"{second},2023,CO,c,killing,individual,none,low\n")
    sheet = read_csv(text.encode())
    plan = plan_import(sheet, identity_mapping(sheet.headers), today=TODAY)
    assert [(p.row, p.field, p.problem) for p in plan.problems] == [
        (3, "record_id", "the same record id as row 2")]
    clean = plan_import(read_csv(text.replace(f"{first},2023,CO,b", f"{new_record_id()},2023,CO,b")
                                 .encode()), identity_mapping(sheet.headers), today=TODAY)
    async with store.transaction() as tx:
        await commit_import(tx, clean, issuer=ORG, author="a", issued_at=1)
    async with store.read() as tx:
        again = await review_import(tx, clean)
        assert {r.record_id for r in await own_case_records(tx)} >= {first, second}
    assert again.problems == () and again.counts()["unchanged"] == 3


# --- export and the round trip -----------------------------------------------------------

EXTRA_CASES: list[dict[str, Any]] = [
    {
        "title": "  Espacios al inicio; y punto y coma  ",
        "incident_date": "2019-01-02/2019-03",
        "country": "MX",
        "narrative": "Línea uno;\r\nlínea \"dos\", con comas\n#no es una etiqueta",
        "violations": ["forced_displacement", "property_destruction", "threat_intimidation"],
        "victims": [
            {"kind": "collective", "name": "Ejido La Esperanza", "groups": ["community"],
             "description": "Familias desplazadas"},
            {"kind": "individual", "native_name": "Xóchitl Tlapalli", "gender": "non_binary",
             "groups": ["land_environmental_defender", "lgbtiq_defender"]},
            {"kind": "individual", "romanised_name": "Ana"},
        ],
        "perpetrators": [{"category": "company", "name": "Minera S.A."},
                         {"category": "private_security", "description": "guardias; armados"}],
        "verification_status": "verified",
        "independent_sources": 3,
        "sources": ["Acta; asamblea 3", "Entrevista\ncon testigos", "=HYPERLINK(\"x\")"],
        "consent_level": "named_partners",
        "consent_partners": [OTHER_ORG],
        "risk_level": "high",
        "impact_story": "Se reubicaron.",
    },
]


async def fill(store: Store) -> list[CaseRecord]:
    async with store.transaction() as tx:
        for index, case in enumerate([*SAMPLE_CASES.values(), *EXTRA_CASES]):
            await add_case(tx, issuer=ORG, case=Case.model_validate(case), author="beatriz",
                           issued_at=1_717_000_000 + index)
    async with store.read() as tx:
        return await own_case_records(tx)


async def test_export_then_import_gives_identical_cases(
    store: Store, second_store: Store
) -> None:
    records = await fill(store)
    text = cases_csv(records)
    sheet = read_csv(text.encode("utf-8-sig"))
    plan = plan_import(sheet, identity_mapping(sheet.headers), today=TODAY)
    assert plan.ok, [str(p) for p in plan.problems]
    async with second_store.transaction() as tx:
        await commit_import(tx, plan, issuer=OTHER_ORG, author="import", issued_at=9)
    async with second_store.read() as tx:
        imported = await own_case_records(tx)
    assert [(r.record_id, r.payload) for r in imported] == [
        (r.record_id, r.payload) for r in records]
    assert {r.issuer for r in imported} == {OTHER_ORG}


def _public(case: dict[str, Any], risk: str = "medium") -> Case:
    return Case.model_validate({**case, "consent_level": "public", "consent_partners": [],
                                "risk_level": risk})


def _records(*cases: Case) -> list[CaseRecord]:
    return [cast(CaseRecord, build_record(ORG, case, record_id=new_record_id(), issued_at=1))
            for case in cases]


def test_the_hxl_row_tags_every_column() -> None:
    records = _records(*(_public(case) for case in [*SAMPLE_CASES.values(), *EXTRA_CASES]))
    text, withheld = publication_csv(records)
    header, tags, *rows = csv.reader(io.StringIO(text, newline=""))
    tag_of = dict(zip(header, tags, strict=True))
    assert tag_of["incident_date"] == "#date+occurred"
    assert tag_of["country"] == "#country+code"
    assert tag_of["victims[2].romanised_name"] == "#affected+name+romanised"
    assert tag_of["sources[1]"] == "#meta+source"
    assert set(tags) <= set(HXL_TAGS.values()) and all(tag.startswith("#") for tag in tags)
    assert len(rows) == len(records) and withheld == Withheld(0, {})


async def test_a_publication_holds_only_what_consent_lets_anyone_see(store: Store) -> None:
    records = await fill(store)  # one public case; the others are for the coalition or less
    text, withheld = publication_csv(records)
    header, _, *rows = csv.reader(io.StringIO(text, newline=""))
    public = next(r for r in records if r.payload.consent_level.value == "public")
    assert [row[header.index("record_id")] for row in rows] == [public.record_id]
    assert not {"consent_level", "consent_partners", "risk_level"} & set(header)
    for record in records:
        if record is public:
            continue
        for secret in (record.payload.narrative, record.payload.victims[0].name):
            assert secret is None or secret not in text
    assert withheld.cases == len(records) - 1 and withheld.fields == {}
    assert "case(s) left out" in withheld.describe()


def test_a_public_case_at_critical_risk_is_published_without_any_name() -> None:
    critical, medium = _records(_public(SAMPLE_CASES["nairobi"], "critical"),
                                _public(SAMPLE_CASES["addis"]))
    text, withheld = publication_csv([critical, medium])
    header, _, *rows = csv.reader(io.StringIO(text, newline=""))
    published = {row[header.index("record_id")]: dict(zip(header, row, strict=True))
                 for row in rows}
    assert critical.payload.victims[0].name not in text
    assert critical.payload.narrative not in text
    assert published[critical.record_id]["country"] == "KE"
    assert published[critical.record_id]["victims[0].name"] == ""
    assert published[medium.record_id]["victims[0].romanised_name"] == "Selam Tesfaye"
    assert withheld.cases == 0
    assert withheld.fields["victims.name"] == 1 and withheld.fields["narrative"] == 1


async def test_the_json_export_holds_schema_valid_records(store: Store) -> None:
    records = await fill(store)
    exported = json.loads(cases_json(records))
    assert [parse_record(item) for item in exported] == records
    assert json.loads(case_json_schema()) == json_schema(RecordKind.CASE)


text_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(";,\"\n# "),
    min_size=1, max_size=30,
).filter(lambda text: bool(text.strip()))


@FAST
@given(title=text_values, name=text_values, narrative=text_values,
       sources=st.lists(text_values, max_size=3), place=st.none() | text_values)
def test_any_text_survives_the_csv_round_trip(
    title: str, name: str, narrative: str, sources: list[str], place: str | None
) -> None:
    case = Case.model_validate({
        **SAMPLE_CASES["cauca"], "title": title, "narrative": narrative, "sources": sources,
        "place": place, "victims": [{"kind": "individual", "name": name, "groups": ["lawyer"]}],
    })
    record = cast(CaseRecord, build_record(ORG, case, record_id=new_record_id(), issued_at=1))
    sheet = read_csv(cases_csv([record]).encode())
    (planned,) = plan_import(sheet, identity_mapping(sheet.headers), today=TODAY).cases
    assert planned.case == case and planned.record_id == record.record_id


def test_problems_read_well() -> None:
    problem = RowProblem(4, "Fecha", "incident_date", "must be YYYY, YYYY-MM or YYYY-MM-DD")
    assert str(problem) == ("row 4, column 'Fecha': incident_date:"
                            " must be YYYY, YYYY-MM or YYYY-MM-DD")


async def test_an_import_names_the_coalitions_as_the_form_does(
    store: Store, second_store: Store
) -> None:
    plan = plan_import(read_spreadsheet(DATA / "casos.csv", mapping()), mapping(), today=TODAY)
    async with store.transaction() as tx:
        await in_coalition(tx, coalition_id="!one:test")
        await in_coalition(tx, coalition_id="!two:test")
    with pytest.raises(ImportRejected) as rejected:
        async with store.transaction() as tx:
            await commit_import(tx, plan, issuer=ORG, author="beatriz", issued_at=7)
    assert {p.field for p in rejected.value.problems} == {"consent_coalitions"}
    assert await count(store) == 0

    named = mapping().model_copy(update={"defaults": {
        **mapping().defaults, "consent_coalitions": ["!two:test"]}})
    plan_named = plan_import(read_spreadsheet(DATA / "casos.csv", named), named, today=TODAY)
    assert plan_named.ok, [str(p) for p in plan_named.problems]
    async with store.transaction() as tx:
        await commit_import(tx, plan_named, issuer=ORG, author="beatriz", issued_at=7)
    async with store.read() as tx:
        assert {tuple(r.payload.consent_coalitions or ())
                for r in await own_case_records(tx)} == {("!two:test",)}

    async with second_store.transaction() as tx:  # in one coalition: that one
        await in_coalition(tx, coalition_id="!one:test")
        await commit_import(tx, plan, issuer=ORG, author="beatriz", issued_at=7)
    async with second_store.read() as tx:
        assert {tuple(r.payload.consent_coalitions or ())
                for r in await own_case_records(tx)} == {("!one:test",)}
