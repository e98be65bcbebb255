"""The SDG 16.10.1 report through the API, ``minga report sdg`` and the web page, this node's and
the coalition's, on an offline node whose own published figures are its coalition's."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from node.cli import main
from node.core.runtime import open_node
from node.core.store import Role
from node.features.cases.casebook import add_case
from node.features.figures.aggregates import build_aggregate
from node.features.figures.publishing import PUBLISHED_SETTING
from schemas.case import Case
from tests.support.api_harness import RunningApi, serve_node
from tests.support.coalitions import in_coalition
from tests.support.offline_node import make_offline_node, passphrase_in_environment
from tests.support.web import WebNode, serve_web

PUBLISHED_AT = 1_717_000_000


def case(gender: str, sources: int = 2) -> Case:
    return Case.model_validate({
        "incident_date": "2023-04", "country": "CO", "narrative": "Relato reservado",
        "violations": ["killing"], "consent_level": "coalition", "risk_level": "high",
        "independent_sources": sources,
        "victims": [{"kind": "individual", "name": "Nombre Reservado", "gender": gender,
                     "groups": ["journalist"]}],
    })


# 8 women and 2 men, all verified killings: the 2 is "<5", the 8 beside it withheld.
CASES = [case("woman")] * 8 + [case("man")] * 2


@pytest.fixture
async def config(tmp_path: Path) -> AsyncIterator[Path]:
    path = await make_offline_node(tmp_path / "node")
    with passphrase_in_environment():
        async with open_node(path) as node, node.store.transaction() as tx:
            for index, held in enumerate(CASES):
                await add_case(tx, issuer=node.org_id, case=held, author="beatriz",
                               issued_at=PUBLISHED_AT + index)
            aggregate = build_aggregate(CASES, as_of=PUBLISHED_AT)
            # Published before decision 0032: to the node's first (here only) coalition.
            await in_coalition(tx)
            await tx.settings.set(PUBLISHED_SETTING, aggregate.model_dump(mode="json"))
        yield path


@pytest.fixture
async def api(config: Path) -> AsyncIterator[RunningApi]:
    async with serve_node(config) as running:
        yield running


# --- API ---------------------------------------------------------------------------------

async def test_the_api_report_suppresses_small_cells_and_says_why(api: RunningApi) -> None:
    report = await api.json("GET", "/reports/sdg?country=CO&from=2023&to=2023", Role.viewer)
    killing = report["verified"]["by_category"]["killing"]
    assert (report["cases"], killing["cases"]) == (10, 10)
    assert killing["victims_by_sex"]["man"] == "<5"
    assert killing["victims_by_sex"]["woman"] == "withheld"
    assert report["not_verified"]["cases"] == 0
    reasons = {s["figure"]: s["reason"] for s in report["suppressed"]}
    assert reasons == {"verified.by_category.killing.victims_by_sex.man": "under_threshold",
                       "verified.by_category.killing.victims_by_sex.woman": "complementary"}
    assert report["small_limit"] == 5
    reversed_period = await api.json("GET", "/reports/sdg?country=CO&from=2024&to=2023",
                                     Role.viewer, expect=422)
    assert reversed_period["error"]["fields"][0]["field"] == "query.to"


async def test_the_coalition_report_comes_from_published_figures_with_names_and_iso_times(
    api: RunningApi,
) -> None:
    report = await api.json("GET", "/coalition/reports/sdg?country=CO", Role.viewer)
    assert report["contributors"] == [{
        "org_id": api.node.org_id, "as_of": "2024-05-29T16:26:40Z", "period": "2023"}]
    assert report["organisations"] == {api.node.org_id: "Colectivo Offline"}
    assert report["cases"] == {"low": 10, "high": 10, "shown": "10"}
    man = report["verified"]["by_category"]["killing"]["victims_by_sex"]["man"]
    assert man == {"low": None, "high": None, "shown": "<5"}
    woman = report["verified"]["by_category"]["killing"]["victims_by_sex"]["woman"]
    assert (woman["low"], woman["high"], woman["shown"]) == (6, 9, "6–9")
    assert report["overlap_unknown"] == [api.node.org_id]
    elsewhere = await api.json("GET", "/coalition/reports/sdg?country=PE", Role.viewer)
    assert elsewhere["cases"]["shown"] == "0"
    refused = await api.json("GET", "/coalition/reports/sdg?country=CO&from=2023",
                             Role.viewer, expect=422)
    assert [f["field"] for f in refused["error"]["fields"]] == ["query.from"]
    await api.json("GET", "/coalition/reports/sdg", Role.viewer, expect=422)
    document = await api.json("GET", "/openapi.json", None)
    assert "/api/v1/coalition/reports/sdg" in document["paths"]


async def test_figures_endpoints_show_iso_times_and_names(api: RunningApi) -> None:
    aggregate = await api.json("GET", "/aggregates", Role.viewer)
    assert aggregate["as_of"].endswith("Z") and aggregate["as_of"].startswith("2024-05-29T")
    figures = await api.json("GET", "/coalition/aggregates", Role.viewer)
    assert figures["contributors"] == [{
        "org_id": api.node.org_id, "as_of": "2024-05-29T16:26:40Z", "period": "2023"}]
    assert figures["distinct_cases"]["unknown"] == [api.node.org_id]
    assert figures["organisations"] == {api.node.org_id: "Colectivo Offline"}


# --- CLI ---------------------------------------------------------------------------------

def run(config: Path, *arguments: str) -> int:
    with passphrase_in_environment():
        return main(["--config", str(config), "report", "sdg", *arguments])


def test_the_command_writes_suppressed_figures_and_lists_them(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "sdg.csv"
    assert run(config, "--country", "co", "--from", "2023", "--to", "2023", "--format", "csv",
               "--out", str(out)) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    killing = next(r for r in rows if r["section"] == "verified"
                   and r["sdg_category"] == "killing")
    assert (killing["victims_sex_man"], killing["victims_sex_woman"]) == ("<5", "withheld")
    errors = capsys.readouterr().err
    assert "2 figure(s) suppressed" in errors
    assert "verified.by_category.killing.victims_by_sex.man: a count from 1 to 4" in errors


def test_the_command_makes_the_coalition_report(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "sdg.html"
    assert run(config, "--scope", "coalition", "--country", "CO", "--language", "es",
               "--out", str(out)) == 0
    page = out.read_text(encoding="utf-8")
    assert "Indicador ODS 16.10.1 — coalición" in page and "Colectivo Offline" in page
    assert "6–9" in page and "Nombre Reservado" not in page
    assert "Se desconocen los casos compartidos" in capsys.readouterr().err


@pytest.mark.parametrize(("arguments", "message"), [
    (("--scope", "coalition", "--country", "CO", "--from", "2023"), "--from/--to"),
    (("--country", "CO"), "--from and --to"),
    (("--country", "XX", "--from", "2023", "--to", "2023"), "--country"),
])
def test_the_command_refuses_what_it_cannot_do(config: Path, capsys: pytest.CaptureFixture[str],
                                                arguments: tuple[str, ...], message: str) -> None:
    assert run(config, *arguments) == 2
    assert message in capsys.readouterr().err


# --- the web page ------------------------------------------------------------------------

@pytest.fixture
async def site(config: Path) -> AsyncIterator[WebNode]:
    async with serve_web(config) as running:
        yield running


async def test_the_page_shows_both_reports_in_english_and_spanish(site: WebNode) -> None:
    browser = await site.logged_in("chidi")
    figures = await browser.get("/coalition/figures")
    assert ('href="/coalition/figures/sdg?scope=coalition&amp;coalition=%21coalition%3Atest"'
            in figures.text)
    empty = await browser.get("/coalition/figures/sdg?scope=coalition")
    assert empty.status == 200 and "Show the report" in empty.text
    own = await browser.get("/coalition/figures/sdg?scope=own&country=CO&from=2023&to=2023")
    assert own.status == 200 and "No count under 5 is shown" in own.text
    assert "&lt;5" in own.text and "withheld" in own.text
    assert "Nombre Reservado" not in own.text
    wrong = await browser.get("/coalition/figures/sdg?scope=own&country=CO&from=2024&to=2023")
    assert "Years: give the first and the last year" in wrong.text
    await browser.post("/language", {"language": "es", "next": "/coalition/figures"})
    coalition = await browser.get("/coalition/figures/sdg?scope=coalition&country=CO")
    assert "Indicador ODS 16.10.1 — coalición" in coalition.text
    assert "Colectivo Offline" in coalition.text and "6–9" in coalition.text
    assert "Todos los miembros, según las cifras que publicaron" in coalition.text
    download: Any = await browser.get("/coalition/figures/sdg.csv?scope=coalition&country=CO")
    assert download.status == 200 and "Asesinato" in download.text
    printed = await browser.get("/coalition/figures/sdg.html?scope=own&country=CO&from=2023"
                                "&to=2023")
    assert printed.status == 200 and "@page" in printed.text
