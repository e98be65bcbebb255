"""The SDG indicator 16.10.1 report: counting rules, CSV and the print-ready page."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from node.features.figures.sdg_report import (
    CATEGORIES,
    ReportError,
    report_csv,
    report_html,
    sdg_report,
)
from schemas.case import Case


def case(**fields: Any) -> Case:
    base: dict[str, Any] = {
        "incident_date": "2023-04", "country": "CO", "narrative": "Relato reservado",
        "violations": ["killing"], "consent_level": "coalition", "risk_level": "high",
        "victims": [{"kind": "individual", "name": "Nombre Reservado", "gender": "woman",
                     "groups": ["journalist"]}],
    }
    return Case.model_validate({**base, **fields})


CASES = [
    # verified: two sources; killing + torture, two victims
    case(independent_sources=2, violations=["killing", "torture"], victims=[
        {"kind": "individual", "gender": "man", "groups": ["trade_unionist", "defender"]},
        {"kind": "individual", "groups": []}]),
    # verified: other harmful acts twice over, one collective victim
    case(independent_sources=3, violations=["death_threat", "harassment"],
         victims=[{"kind": "collective", "groups": ["community"]}]),
    # not verified: one source
    case(independent_sources=1),
    # outside the report: another country, another year
    case(country="PE", independent_sources=2),
    case(incident_date="2021", independent_sources=2),
]


def test_verified_cases_are_counted_apart_and_by_category() -> None:
    report = sdg_report(CASES, country="CO", from_year=2022, to_year=2023)
    assert (report.verified.cases, report.verified.victims) == (2, 3)
    assert (report.not_verified.cases, report.not_verified.victims) == (1, 1)
    killing = report.verified.by_category["killing"]
    assert (killing.cases, killing.victims) == (1, 2)
    assert killing.victims_by_group["trade_unionist"] == killing.victims_by_group["defender"] == 1
    assert killing.victims_by_group["unspecified"] == 1
    assert (killing.victims_by_sex["man"], killing.victims_by_sex["unknown"]) == (1, 1)
    assert report.verified.by_category["torture"] == killing
    other = report.verified.by_category["other_harmful_acts"]
    assert (other.cases, other.victims, other.victims_by_sex["collective"]) == (1, 1, 1)
    assert report.verified.by_category["enforced_disappearance"].cases == 0
    assert report.not_verified.by_category["killing"].victims_by_group["journalist"] == 1


def test_the_period_must_not_end_before_it_starts() -> None:
    with pytest.raises(ReportError, match="--to"):
        sdg_report(CASES, country="CO", from_year=2024, to_year=2023)


def test_the_csv_has_one_row_per_section_and_category() -> None:
    report = sdg_report(CASES, country="CO", from_year=2022, to_year=2023)
    rows = list(csv.DictReader(io.StringIO(report_csv(report, "es"))))
    assert len(rows) == 2 * (len(CATEGORIES) + 1)
    killing = next(r for r in rows if r["section"] == "verified"
                   and r["sdg_category"] == "killing")
    assert (killing["sdg_category_label"], killing["cases"], killing["victims"]) == (
        "Asesinato", "1", "2")
    assert killing["victims_group_trade_unionist"] == "1"
    everything = next(r for r in rows if r["section"] == "not_verified"
                      and r["sdg_category"] == "all")
    assert (everything["cases"], everything["victims"]) == ("1", "1")


def test_the_page_is_escaped_translated_and_free_of_case_content() -> None:
    report = sdg_report(CASES, country="CO", from_year=2022, to_year=2023)
    page = report_html(report, language="es", organisation="<b>Colectivo & Cía</b>",
                       generated_at=1_717_000_000)
    assert "&lt;b&gt;Colectivo &amp; Cía&lt;/b&gt;" in page
    assert "Casos verificados" in page and "Desaparición forzada" in page
    assert "2024-05-29 16:26 UTC" in page and "@page" in page
    assert "Nombre Reservado" not in page and "Relato reservado" not in page
    english = report_html(report)
    assert "Verified cases" in english and "Generated" not in english
