"""Record models: ids, dates, every kind through JSON and JSON Schema, errors, disclosure paths.

People, organisations and places in the examples are invented.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.case import Case, Victim
from schemas.common import wire_value_problem
from schemas.countries import COUNTRY_CODES, is_country_code
from schemas.dates import DateSpan, PartialDate, PartialDateError
from schemas.errors import RecordValidationError
from schemas.export import export_json_schemas, json_schemas
from schemas.fields import (
    CASE_FIELD_GROUPS,
    CASE_INTERNAL_FIELDS,
    DISCLOSABLE_PATHS,
    FieldGroup,
    disclosable_paths,
    internal_fields,
    split_path,
)
from schemas.ids import RecordIdError, is_uuid7, new_record_id, uuid7_unix_ms
from schemas.payloads import Retraction
from schemas.records import (
    PAYLOAD_CLASSES,
    RECORD_CLASSES,
    CaseRecord,
    RecordKind,
    build_record,
    parse_payload,
    parse_record,
    record_to_wire,
    schema_id,
)
from schemas.typology import ConsentLevel, RiskLevel

ORG_CO = "ofundaciontierraydignidad2"
ORG_KE = "okxq7m2hakimashinanitrust3"
ORG_PH = "osamahangtanggolkarapatan7"
ORG_JO = "ozm4w7ba2c3d4e5f6g7h2jklmn"
T0 = 1_716_000_000  # May 2024
T0_MS = T0 * 1000


def rid(n: int) -> str:
    return new_record_id(T0_MS + n, n.to_bytes(10, "big"))


def header(kind: RecordKind, issuer: str, n: int, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "record_id": rid(n),
        "version": 1,
        "kind": kind.value,
        "schema": schema_id(kind),
        "issued_at": T0 + n,
        "payload": payload,
    }


def colombian_case() -> dict[str, Any]:
    return {
        "title": "Amenazas a lideresa de la vereda El Porvenir",
        "incident_date": "2024-03/2024-05-17",
        "country": "CO",
        "place": "Vereda El Porvenir, municipio de San Aurelio, Nariño",
        "narrative": (
            "María Fernanda Quiñones Ibargüen recibió tres panfletos firmados por un grupo "
            "armado y luego fue detenida sin orden judicial durante 36 horas."
        ),
        "violations": ["death_threat", "arbitrary_detention", "stigmatisation"],
        "victims": [
            {
                "kind": "individual",
                "name": "María Fernanda Quiñones Ibargüen",
                "groups": ["land_environmental_defender", "woman_hrd"],
                "gender": "woman",
                "description": "Lideresa del consejo comunitario, 41 años.",
            },
            {
                "kind": "collective",
                "name": "Consejo Comunitario Río Añil",
                "groups": ["community"],
            },
        ],
        "perpetrators": [
            {"category": "armed_group", "description": "Panfletos firmados"},
            {"category": "police", "name": "Estación de Policía San Aurelio"},
        ],
        "impunity_status": "reported_no_action",
        "verification_status": "verified",
        "independent_sources": 2,
        "sources": ["Testimonio directo", "Acta de la Defensoría del Pueblo regional"],
        "consent_level": "named_partners",
        "consent_partners": [ORG_KE, ORG_PH],
        "risk_level": "critical",
        "impact_story": (
            "Tras la detención, la comunidad suspendió las reuniones sobre la restitución de "
            "tierras durante dos meses."
        ),
    }


def jordanian_case() -> dict[str, Any]:
    return {
        "incident_date": "2023-11-02",
        "country": "JO",
        "narrative": "Smear campaign on social media followed by a travel ban at the airport.",
        "violations": ["stigmatisation", "travel_ban", "digital_attack"],
        "victims": [
            {
                "kind": "individual",
                "name": "Layla Haddad",
                "native_name": "ليلى حداد",
                "romanised_name": "Layla Haddad",
                "groups": ["journalist", "woman_hrd"],
                "gender": "woman",
            }
        ],
        "perpetrators": [{"category": "unknown"}, {"category": "public_officials"}],
        "consent_level": "anonymised",
        "risk_level": "high",
    }


def examples() -> dict[RecordKind, dict[str, Any]]:
    """One realistic wire record per kind."""
    case_ref = {"issuer": ORG_CO, "record_id": rid(1)}
    proposal_ref = {"issuer": ORG_PH, "record_id": rid(3)}
    alert_ref = {"issuer": ORG_KE, "record_id": rid(6)}
    query_ref = {"issuer": ORG_CO, "record_id": rid(8)}
    kinds = RecordKind
    return {
        kinds.CASE: header(kinds.CASE, ORG_CO, 1, colombian_case()),
        kinds.CAMPAIGN: header(kinds.CAMPAIGN, ORG_PH, 2, {
            "title": "Stop the Malinis dam: consult the Lumad communities first",
            "goal": "Suspend the dam's permit until free, prior and informed consent is obtained.",
            "targets": [
                {"name": "Bukidnon Hydro Power Corp.", "target_type": "company", "country": "PH"},
                {"name": "National Commission on Indigenous Peoples",
                 "target_type": "institution", "country": "PH"},
            ],
            "countries": ["PH"],
            "themes": ["indigenous land", "FPIC"],
            "period": "2024-06/2024-12",
            "status": "active",
            "proposal": proposal_ref,
            "participants": [ORG_PH, ORG_CO],
        }),
        kinds.PROPOSAL: header(kinds.PROPOSAL, ORG_PH, 3, {
            "title": "Magkaisa para sa Barangay Malinis",
            "goal": "Joint letter and UN urgent appeal for Ligaya Dimaculangan.",
            "targets": [{"name": "Department of Justice", "target_type": "government"}],
            "countries": ["PH"],
            "themes": ["criminalisation"],
            "timeframe": "2024-06",
            "asks": ["legal", "advocacy", "media"],
            "min_organisations": 2,
            "deadline": T0 + 14 * 86_400,
        }),
        kinds.ENDORSEMENT: header(kinds.ENDORSEMENT, ORG_KE, 4, {
            "proposal": proposal_ref,
            "response": "join",
            "roles": ["legal"],
            "contacts": ["@wanjiru:haki.example.org"],
        }),
        kinds.SIGN_ON: header(kinds.SIGN_ON, ORG_CO, 5, {
            "letter": proposal_ref,
            "letter_version": 2,
            "letter_sha256": "9f" * 32,
            "signatory_name": "Óscar Ñañez Ruiz",
            "signatory_role": "Director ejecutivo",
        }),
        kinds.ALERT: header(kinds.ALERT, ORG_KE, 6, {
            "alert_type": "arrest",
            "urgency": "critical",
            "country": "KE",
            "place": "Kijiji cha Mto Safi, Kaunti ya Kilifi",
            "asks": ["legal_support", "public_statement"],
            "text": "Wanjiru Mwangi amekamatwa na polisi saa nne asubuhi; hajulikani aliko.",
            "status": "active",
        }),
        kinds.ALERT_ACK: header(kinds.ALERT_ACK, ORG_CO, 7, {
            "alert": alert_ref,
            "status": "helping",
            "offers": ["legal_support", "un_advocacy"],
            "note": "Podemos activar la relatoría especial hoy mismo.",
        }),
        kinds.DEDUP_QUERY: header(kinds.DEDUP_QUERY, ORG_CO, 8, {
            "scheme": "clk-hmac-sha256-bigram-v1",
            "linkage_key_id": "lk-2024-05",
            "encodings": {"name": "q83v_x-A1", "place": "Zm9vYmFy", "date": "AAECAw"},
        }),
        kinds.DEDUP_ANSWER: header(kinds.DEDUP_ANSWER, ORG_PH, 9, {
            "query": query_ref,
            "possible_match": True,
            "score_band": "high",
            "handle": "h-5f2c9a",
            "contact": "Samahang Tanggol Karapatan, documentation desk",
        }),
        kinds.AGGREGATE: header(kinds.AGGREGATE, ORG_KE, 10, {
            "typology_version": "1",
            "period": "2023",
            "as_of": T0,
            "cells": [
                {"dimensions": {"country": "KE", "violation": "arbitrary_detention"},
                 "count": 12},
                {"dimensions": {"country": "KE", "violation": "killing"}, "count": "<5"},
            ],
        }),
        kinds.RETRACTION: header(kinds.RETRACTION, ORG_CO, 11, {
            "target": case_ref,
            "reason": "consent_withdrawn",
        }),
        kinds.MEMBER_PROFILE: header(kinds.MEMBER_PROFILE, ORG_KE, 12, {
            "name": "Haki Mashinani Trust",
            "country": "KE",
            "countries_of_work": ["KE", "TZ", "UG"],
            "capabilities": ["legal_support", "relocation", "psychosocial_support"],
            "description": "Msaada wa kisheria kwa watetezi wa haki za ardhi.",
            "languages": ["sw", "en"],
            "contact": "dawati@haki.example.org",
            "website": "https://haki.example.org",
        }),
        kinds.RESOURCE: header(kinds.RESOURCE, ORG_PH, 13, {
            "title": "Gabay sa ligtas na dokumentasyon",
            "resource_type": "guide",
            "description": "Step-by-step guide to documenting raids safely, in Tagalog.",
            "countries": ["PH"],
            "languages": ["tl"],
            "url": "https://tanggol.example.org/gabay.pdf",
        }),
        kinds.CAMPAIGN_POST: header(kinds.CAMPAIGN_POST, ORG_KE, 14, {
            "campaign": proposal_ref,
            "post_type": "task",
            "title": "Radicar la acción de tutela",
            "owner": ORG_CO,
            "due": "2024-07-15",
            "targets": ["Department of Justice"],
        }),
        kinds.LETTER: header(kinds.LETTER, ORG_PH, 15, {
            "title": "Carta abierta: liberen a Ligaya Dimaculangan",
            "text": "Las organizaciones firmantes exigimos su liberación inmediata.",
            "deadline": T0 + 7 * 86_400,
            "campaign": proposal_ref,
        }),
        kinds.COUNTERSIGN_REQUEST: header(kinds.COUNTERSIGN_REQUEST, ORG_CO, 16, {
            "commitment": "3a" * 32,
        }),
        kinds.COUNTERSIGNATURE: header(kinds.COUNTERSIGNATURE, ORG_KE, 17, {
            "request": {"issuer": ORG_CO, "record_id": rid(16)},
            "commitment": "3a" * 32,
            "attested_at": T0 + 60,
            "kid": "k7mZpQ2vX9",
            "signature": "S" * 86,
        }),
    }


def problems_of(error: RecordValidationError) -> dict[str, str]:
    return {problem.path: problem.problem for problem in error.problems}


def parse_error(data: object) -> RecordValidationError:
    with pytest.raises(RecordValidationError) as caught:
        parse_record(data)
    return caught.value


def with_payload(kind: RecordKind, **changes: Any) -> dict[str, Any]:
    record = examples()[kind]
    record["payload"].update(changes)
    return record


def assert_includes(wire: object, given: object) -> None:
    """Every value given is in the wire form unchanged (which also holds defaults and nulls)."""
    if isinstance(given, dict):
        assert isinstance(wire, dict)
        for key, value in given.items():
            assert key in wire, key
            assert_includes(wire[key], value)
    elif isinstance(given, list):
        assert isinstance(wire, list) and len(wire) == len(given)
        for wire_item, given_item in zip(wire, given, strict=True):
            assert_includes(wire_item, given_item)
    else:
        assert wire == given and type(wire) is type(given)


def floats_in(value: object) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for item in value.values() for f in floats_in(item)]
    if isinstance(value, list):
        return [f for item in value for f in floats_in(item)]
    return []


# --- ids -----------------------------------------------------------------------------------------


def test_uuid7_matches_the_rfc_9562_example() -> None:
    # RFC 9562 Appendix A.6: 2022-02-22 19:22:22 UTC, rand_a 0xCC3, rand_b 0x18C4DC0C0C07398F.
    random = (0xCC3 << 68) | 0x18C4DC0C0C07398F
    made = new_record_id(0x017F22E279B0, random.to_bytes(10, "big"))
    assert made == "017f22e2-79b0-7cc3-98c4-dc0c0c07398f"
    assert uuid7_unix_ms(made) == 0x017F22E279B0


def test_uuid7_reads_clock_and_randomness_only_when_not_given() -> None:
    assert new_record_id(5, bytes(10)) == new_record_id(5, bytes(10))
    first, second = new_record_id(), new_record_id()
    assert is_uuid7(first) and is_uuid7(second) and first != second


ten_bytes = st.binary(min_size=10, max_size=10)


@given(st.integers(0, 2**48 - 2), ten_bytes, ten_bytes)
@settings(max_examples=200)
def test_uuid7_is_valid_and_sorts_by_time(ms: int, random_a: bytes, random_b: bytes) -> None:
    earlier, later = new_record_id(ms, random_a), new_record_id(ms + 1, random_b)
    assert is_uuid7(earlier) and is_uuid7(later)
    assert earlier < later
    assert uuid7_unix_ms(earlier) == ms


@pytest.mark.parametrize(
    "text",
    [
        "017F22E2-79B0-7CC3-98C4-DC0C0C07398F",  # uppercase is not the canonical form
        "017f22e2-79b0-4cc3-98c4-dc0c0c07398f",  # version 4
        "017f22e2-79b0-7cc3-c8c4-dc0c0c07398f",  # wrong variant
        "017f22e279b07cc398c4dc0c0c07398f",
        "",
    ],
)
def test_is_uuid7_rejects_other_forms(text: str) -> None:
    assert not is_uuid7(text)


def test_new_record_id_checks_its_inputs() -> None:
    with pytest.raises(RecordIdError):
        new_record_id(2**48, bytes(10))
    with pytest.raises(RecordIdError):
        new_record_id(-1, bytes(10))
    with pytest.raises(RecordIdError):
        new_record_id(0, bytes(9))


# --- partial dates -------------------------------------------------------------------------------

days = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
precisions = st.sampled_from(["year", "month", "day"])


def partial_of(day: date, precision: str) -> PartialDate:
    if precision == "year":
        return PartialDate(day.year)
    if precision == "month":
        return PartialDate(day.year, day.month)
    return PartialDate(day.year, day.month, day.day)


@given(days, precisions)
@settings(max_examples=300)
def test_partial_dates_round_trip_and_contain_their_day(day: date, precision: str) -> None:
    partial = partial_of(day, precision)
    assert PartialDate.parse(str(partial)) == partial
    assert partial.precision == precision
    assert partial.earliest() <= day <= partial.latest()


@given(st.integers(1, 9999), st.integers(0, 99), st.integers(0, 99))
@settings(max_examples=300)
def test_a_full_date_parses_exactly_when_it_is_on_the_calendar(
    year: int, month: int, day: int
) -> None:
    text = f"{year:04d}-{month:02d}-{day:02d}"
    try:
        expected: date | None = date(year, month, day)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(PartialDateError):
            PartialDate.parse(text)
    else:
        assert PartialDate.parse(text).earliest() == expected


@given(days, precisions, days, precisions)
@settings(max_examples=300)
def test_a_range_is_valid_exactly_when_it_does_not_end_before_it_starts(
    day_a: date, precision_a: str, day_b: date, precision_b: str
) -> None:
    start, end = partial_of(day_a, precision_a), partial_of(day_b, precision_b)
    text = f"{start}/{end}"
    if start.earliest() <= end.latest():
        span = DateSpan.parse(text)
        assert str(span) == text
        assert span.earliest() == start.earliest() and span.latest() == end.latest()
        assert span.overlaps(DateSpan(start)) and span.overlaps(DateSpan(end))
    else:
        with pytest.raises(PartialDateError, match="ends before it starts"):
            DateSpan.parse(text)


@pytest.mark.parametrize(
    "text",
    ["24", "2024-5", "2024-05-7", "2024-13", "2024-00", "0000", "2024-02-30", "2023-02-29",
     "2024/", "/2024", "2024/2025/2026", "2024-05-17T10:00", " 2024", "２０２４"],
)
def test_bad_partial_dates_are_refused(text: str) -> None:
    with pytest.raises(PartialDateError):
        DateSpan.parse(text)


def test_leap_day_and_month_ends() -> None:
    assert PartialDate.parse("2024-02").latest() == date(2024, 2, 29)
    assert PartialDate.parse("2024-02-29").earliest() == date(2024, 2, 29)
    assert DateSpan.parse("2024-05/2024").latest() == date(2024, 12, 31)


# --- countries -----------------------------------------------------------------------------------


def test_country_list_is_the_official_assigned_set() -> None:
    assert len(COUNTRY_CODES) == 249
    for code in ("CO", "KE", "PH", "JO", "SS", "PS", "TW", "BQ", "SX"):
        assert is_country_code(code)
    for code in ("XK", "UK", "EU", "co", "ZZ", "", "COL"):
        assert not is_country_code(code)


# --- every kind through JSON and JSON Schema -----------------------------------------------------


def test_examples_cover_every_kind() -> None:
    assert set(examples()) == set(RecordKind)


@pytest.mark.parametrize("kind", list(RecordKind), ids=str)
def test_every_kind_round_trips_through_json(kind: RecordKind) -> None:
    record = parse_record(examples()[kind])
    assert isinstance(record, RECORD_CLASSES[kind])
    assert isinstance(record.payload, PAYLOAD_CLASSES[kind])
    assert record.record_kind is kind
    wire = record_to_wire(record)
    text = json.dumps(wire, ensure_ascii=False)
    again = parse_record(json.loads(text))
    assert again == record
    assert record_to_wire(again) == wire
    assert floats_in(wire) == []
    assert_includes(wire, examples()[kind])


@pytest.mark.parametrize("kind", list(RecordKind), ids=str)
def test_every_example_validates_against_the_exported_schema(kind: RecordKind) -> None:
    schema = json_schemas()[kind.value]
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    wire = record_to_wire(parse_record(examples()[kind]))
    validator.validate(wire)
    validator.validate(examples()[kind])


@pytest.mark.parametrize("kind", list(RecordKind), ids=str)
def test_the_exported_schema_is_not_vacuous(kind: RecordKind) -> None:
    validator = jsonschema.Draft202012Validator(json_schemas()[kind.value])
    wrong_schema = dict(examples()[kind], schema="minga.other/1")
    assert not validator.is_valid(wrong_schema)
    no_payload = {key: value for key, value in examples()[kind].items() if key != "payload"}
    assert not validator.is_valid(no_payload)
    bad_issuer = dict(examples()[kind], issuer="Org-With-Capitals")
    assert not validator.is_valid(bad_issuer)


def test_schema_rejects_what_the_models_reject() -> None:
    validator = jsonschema.Draft202012Validator(json_schemas()["case"])
    assert not validator.is_valid(with_payload(RecordKind.CASE, country="XK"))
    assert not validator.is_valid(with_payload(RecordKind.CASE, violations=["kiling"]))
    assert not validator.is_valid(with_payload(RecordKind.CASE, violations=[]))
    assert not validator.is_valid(with_payload(RecordKind.CASE, incident_date="17/05/2024"))


def test_export_writes_one_schema_file_per_kind(tmp_path: Path) -> None:
    written = export_json_schemas(tmp_path / "out")
    assert sorted(path.name for path in written) == sorted(
        f"{kind.value}.schema.json" for kind in RecordKind
    )
    schemas = json_schemas()
    for path in written:
        kind = path.name.removesuffix(".schema.json")
        assert json.loads(path.read_text(encoding="utf-8")) == schemas[kind]
        assert schemas[kind]["title"] == f"minga.{kind}/1"


def test_a_second_case_in_arabic_script_round_trips() -> None:
    record = parse_record(header(RecordKind.CASE, ORG_JO, 20, jordanian_case()))
    assert isinstance(record, CaseRecord)
    assert record.payload.victims[0].native_name == "ليلى حداد"
    assert parse_record(json.loads(json.dumps(record_to_wire(record)))) == record


# --- unknown fields from a newer peer ------------------------------------------------------------


def test_unknown_fields_survive_a_round_trip_at_every_level() -> None:
    wire = examples()[RecordKind.CASE]
    wire["room_hint"] = "kept"
    wire["payload"]["displacement_count"] = 14
    wire["payload"]["geo"] = {"admin2": "San Aurelio", "confidence": "high", "codes": [1, 2]}
    wire["payload"]["victims"][0]["pronouns"] = "ella"
    wire["payload"]["perpetrators"][1]["unit_id"] = None
    record = parse_record(copy.deepcopy(wire))
    out = record_to_wire(record)
    assert out["room_hint"] == "kept"
    assert out["payload"]["displacement_count"] == 14
    assert out["payload"]["geo"] == wire["payload"]["geo"]
    assert out["payload"]["victims"][0]["pronouns"] == "ella"
    assert "unit_id" in out["payload"]["perpetrators"][1]
    assert parse_record(json.loads(json.dumps(out))) == record


def test_unknown_fields_in_a_reference_survive() -> None:
    wire = examples()[RecordKind.RETRACTION]
    wire["payload"]["target"]["version_hint"] = 3
    out = record_to_wire(parse_record(wire))
    assert out["payload"]["target"]["version_hint"] == 3


@pytest.mark.parametrize(
    "value", [1.5, [1, 2.0], {"x": {"y": 0.1}}, 2**53, -(2**60)], ids=repr
)
def test_unknown_fields_that_matrix_would_refuse_are_refused(value: object) -> None:
    wire = examples()[RecordKind.ALERT]
    wire["payload"]["score"] = value
    error = parse_error(wire)
    assert any("'score'" in problem and path == "payload" for path, problem in
               problems_of(error).items())


def test_wire_value_problem() -> None:
    assert wire_value_problem({"a": [1, "b", None, True, {"c": -3}]}) is None
    assert wire_value_problem(0.0) is not None
    assert wire_value_problem({1: "a"}) is not None
    assert wire_value_problem(b"bytes") is not None


# --- errors name the field -----------------------------------------------------------------------


def test_bad_country_names_the_field() -> None:
    error = parse_error(with_payload(RecordKind.CASE, country="XX"))
    assert "ISO 3166-1" in problems_of(error)["payload.country"]


@pytest.mark.parametrize("value", ["2023-02-29", "2024-04-31", "2024-13"])
def test_impossible_date_names_the_field(value: str) -> None:
    error = parse_error(with_payload(RecordKind.CASE, incident_date=value))
    assert "payload.incident_date" in problems_of(error)


def test_range_ending_before_it_starts_names_the_field() -> None:
    error = parse_error(with_payload(RecordKind.CASE, incident_date="2024-06/2024-05"))
    assert problems_of(error)["payload.incident_date"] == "the range ends before it starts"


def test_unknown_violation_code_names_the_field_and_the_code() -> None:
    error = parse_error(with_payload(RecordKind.CASE, violations=["killing", "kiling"]))
    assert problems_of(error)["payload.violations[1]"] == "'kiling' is not a violation code"


def test_unknown_code_in_a_victim_names_the_nested_field() -> None:
    victims = colombian_case()["victims"]
    victims[1]["groups"] = ["community", "farmers"]
    error = parse_error(with_payload(RecordKind.CASE, victims=victims))
    assert "payload.victims[1].groups[1]" in problems_of(error)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"version": 1.0}, "version"),
        ({"issued_at": 1716000000.5}, "issued_at"),
        ({"version": True}, "version"),
        ({"issued_at": "1716000000"}, "issued_at"),
        ({"version": 0}, "version"),
    ],
)
def test_non_integers_where_integers_belong_are_refused(change: dict[str, Any], path: str) -> None:
    error = parse_error({**examples()[RecordKind.CASE], **change})
    assert path in problems_of(error)


def test_float_source_count_is_refused() -> None:
    error = parse_error(with_payload(RecordKind.CASE, independent_sources=2.0))
    assert "payload.independent_sources" in problems_of(error)
    error = parse_error(with_payload(RecordKind.AGGREGATE, cells=[
        {"dimensions": {"country": "KE"}, "count": 3.0}
    ]))
    assert set(problems_of(error)) == {"payload.cells[0].count"}


def test_every_problem_is_reported_at_once() -> None:
    error = parse_error(
        with_payload(RecordKind.CASE, country="XX", incident_date="2024-02-30", violations=[])
    )
    assert {"payload.country", "payload.incident_date", "payload.violations"} <= set(
        problems_of(error)
    )
    assert str(error).count(":") >= 3


def test_errors_never_echo_free_text() -> None:
    name = "Wanjiru Mwangi Kamau"
    error = parse_error(with_payload(RecordKind.CASE, violations=[name], country=name,
                                     incident_date=name, narrative=17))
    assert "Wanjiru" not in str(error)
    assert "Wanjiru" not in repr(error.problems)


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({}, "kind"),
        ({"kind": "gossip"}, "kind"),
        ({"kind": "case"}, "schema"),
        ({"kind": "case", "schema": "minga.case/2"}, "schema"),
        ({"kind": "case", "schema": "minga.alert/1"}, "schema"),
    ],
)
def test_kind_and_schema_are_checked_first(data: dict[str, Any], path: str) -> None:
    assert set(problems_of(parse_error(data))) == {path}


def test_a_non_object_is_refused() -> None:
    assert "$" in problems_of(parse_error(["case"]))


def test_missing_required_fields_are_named() -> None:
    wire = examples()[RecordKind.CASE]
    del wire["payload"]["narrative"]
    del wire["issuer"]
    problems = problems_of(parse_error(wire))
    assert problems["payload.narrative"] == "Field required"
    assert problems["issuer"] == "Field required"


def test_blank_text_is_refused() -> None:
    error = parse_error(with_payload(RecordKind.CASE, narrative="   "))
    assert problems_of(error)["payload.narrative"] == "must not be blank"


def test_duplicate_codes_are_refused() -> None:
    error = parse_error(with_payload(RecordKind.CASE, violations=["torture", "torture"]))
    assert "payload.violations" in problems_of(error)


def test_named_partner_consent_needs_partners_and_only_then() -> None:
    error = parse_error(with_payload(RecordKind.CASE, consent_partners=[]))
    assert "payload.consent_partners" in problems_of(error)
    error = parse_error(with_payload(RecordKind.CASE, consent_level="coalition"))
    assert "payload.consent_partners" in problems_of(error)
    parse_record(with_payload(RecordKind.CASE, consent_level="coalition", consent_partners=[]))


def test_bad_partner_org_id_is_refused() -> None:
    error = parse_error(with_payload(RecordKind.CASE, consent_partners=["ORG-KE"]))
    assert "payload.consent_partners[0]" in problems_of(error)


def test_a_collective_has_no_gender() -> None:
    victims = [{"kind": "collective", "name": "Sindicato Unido", "gender": "man"}]
    error = parse_error(with_payload(RecordKind.CASE, victims=victims))
    assert "payload.victims[0].gender" in problems_of(error)


def test_only_the_issuer_may_retract_its_records() -> None:
    wire = examples()[RecordKind.RETRACTION]
    wire["payload"]["target"]["issuer"] = ORG_KE
    assert "payload.target.issuer" in problems_of(parse_error(wire))


def test_dedup_answer_band_must_agree_with_match() -> None:
    error = parse_error(with_payload(RecordKind.DEDUP_ANSWER, possible_match=False))
    assert "payload.score_band" in problems_of(error)
    error = parse_error(with_payload(RecordKind.DEDUP_ANSWER, handle=None))
    assert "payload.handle" in problems_of(error)
    parse_record(with_payload(RecordKind.DEDUP_ANSWER, possible_match=False, score_band="none",
                              handle=None))


def test_only_joining_organisations_take_roles() -> None:
    error = parse_error(with_payload(RecordKind.ENDORSEMENT, response="decline"))
    assert "payload.roles" in problems_of(error)


def test_parse_payload_paths_have_no_prefix() -> None:
    with pytest.raises(RecordValidationError) as caught:
        parse_payload(RecordKind.CASE, {**colombian_case(), "country": "XX"})
    assert set(problems_of(caught.value)) == {"country"}
    case = parse_payload(RecordKind.CASE, colombian_case())
    assert isinstance(case, Case)
    assert case.consent_level is ConsentLevel.NAMED_PARTNERS
    assert case.risk_level is RiskLevel.CRITICAL


# --- building records ----------------------------------------------------------------------------


def test_build_record_derives_kind_and_schema_from_the_payload() -> None:
    payload = Retraction(target={"issuer": ORG_CO, "record_id": rid(1)}, reason="error")
    record = build_record(ORG_CO, payload, record_id=rid(30), issued_at=T0, version=2)
    wire = record_to_wire(record)
    assert wire["kind"] == "retraction" and wire["schema"] == "minga.retraction/1"
    assert wire["version"] == 2
    assert parse_record(wire) == record


def test_build_record_validates_the_header() -> None:
    case = parse_payload(RecordKind.CASE, colombian_case())
    with pytest.raises(RecordValidationError) as caught:
        build_record("not-an-org", case, record_id="123", issued_at=-1)
    assert {"issuer", "record_id", "issued_at"} <= set(problems_of(caught.value))


def test_records_are_immutable() -> None:
    record = parse_record(examples()[RecordKind.CASE])
    with pytest.raises(ValidationError):
        record.version = 2  # type: ignore[misc]


def test_victim_defaults() -> None:
    victim = Victim(kind="individual")
    assert victim.groups == [] and victim.name is None


# --- disclosure paths ----------------------------------------------------------------------------


def test_case_field_groups_cover_exactly_the_disclosable_case_paths() -> None:
    assert set(CASE_FIELD_GROUPS) == set(disclosable_paths(RecordKind.CASE))
    assert len(disclosable_paths(RecordKind.CASE)) == len(set(disclosable_paths(RecordKind.CASE)))


def test_consent_fields_are_internal_and_never_disclosable() -> None:
    assert {"consent_level", "consent_partners", "consent_coalitions",
            "risk_level"} == CASE_INTERNAL_FIELDS
    assert internal_fields(RecordKind.CASE) == CASE_INTERNAL_FIELDS
    for path in disclosable_paths(RecordKind.CASE):
        assert split_path(path)[0] not in CASE_INTERNAL_FIELDS
    every_case_field = set(Case.model_fields)
    disclosable_roots = {split_path(path)[0] for path in disclosable_paths(RecordKind.CASE)}
    assert every_case_field == disclosable_roots | CASE_INTERNAL_FIELDS


def test_names_are_identity_and_place_is_location() -> None:
    for path, group in CASE_FIELD_GROUPS.items():
        if split_path(path)[-1] in {"name", "native_name", "romanised_name"}:
            assert group is FieldGroup.IDENTITY, path
    assert CASE_FIELD_GROUPS["place"] is FieldGroup.LOCATION
    for path in ("narrative", "impact_story", "victims.description", "title", "sources"):
        assert CASE_FIELD_GROUPS[path] is FieldGroup.NARRATIVE
    for path in ("country", "incident_date", "violations", "victims.groups",
                 "perpetrators.category"):
        assert CASE_FIELD_GROUPS[path] is FieldGroup.CONTEXT


@pytest.mark.parametrize("kind", list(RecordKind), ids=str)
def test_every_path_names_a_value_in_the_wire_payload(kind: RecordKind) -> None:
    payload = record_to_wire(parse_record(examples()[kind]))["payload"]
    assert DISCLOSABLE_PATHS[kind]
    for path in DISCLOSABLE_PATHS[kind]:
        field, key = split_path(path)
        assert field in payload, path
        if key is not None:
            assert isinstance(payload[field], list)
            assert all(key in element for element in payload[field]), path


def test_split_path() -> None:
    assert split_path("victims.native_name") == ("victims", "native_name")
    assert split_path("country") == ("country", None)
