"""Cases through the staff pages: the form (rows, partial dates, errors next to the field),
the list with filters and text search, the detail page with versions, editing and deleting."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from deploy.homeserver import Homeserver
from node.core.store import CaseFilter
from node.features.cases.case_search import search_cases
from tests.support.web import Browser, WebNode, running_web

CASE_FORM = [
    ("title", "Amenazas a la guardia indígena"),
    ("incident_date.start.year", "2023"),
    ("incident_date.start.month", "5"),
    ("country", "CO"),
    ("place", "Vereda La Esperanza, Cauca"),
    ("narrative", "Hombres armados amenazaron a la guardia después de la asamblea."),
    ("violations", "death_threat"),
    ("violations", "stigmatisation"),
    ("victim_rows", "2"),
    ("victims[0].kind", "individual"),
    ("victims[0].name", "Nasa Yuwe Tumbo"),
    ("victims[0].groups", "indigenous_leader"),
    ("victims[0].gender", "woman"),
    ("victims[1].kind", ""),
    ("perpetrator_rows", "1"),
    ("perpetrators[0].category", "armed_group"),
    ("impunity_status", "reported_no_action"),
    ("verification_status", "verified"),
    ("independent_sources", "2"),
    ("sources", "Acta de la asamblea\nTestimonio directo"),
    ("consent_level", "coalition"),
    ("risk_level", "high"),
    ("impact_story", "La guardia suspendió los recorridos."),
]


@pytest.fixture
async def site(homeserver: Homeserver, tmp_path: Path) -> AsyncIterator[WebNode]:
    async with running_web(homeserver, tmp_path / "node") as web_node:
        yield web_node


def with_fields(base: list[tuple[str, str]], **changes: str) -> list[tuple[str, str]]:
    names = {key.replace("__", "."): value for key, value in changes.items()}
    kept = [(k, v) for k, v in base if k not in names]
    return kept + [(k, v) for k, v in names.items() if v is not None]


async def create(browser: Browser, data: list[tuple[str, str]]) -> str:
    form = await browser.get("/cases/new")
    if not any(name == "consent_coalitions" for name, _ in data):
        # as a browser does: the coalitions the new form ticked already
        data = [*data, *(("consent_coalitions", value) for value in re.findall(
            r'name="consent_coalitions" value="([^"]+)" checked', form.text))]
    page = await browser.post("/cases/new", [*data, ("action", "save")])
    assert page.status == 200, page.text[:3000]
    match = re.fullmatch(r"/cases/([0-9a-f-]{36})", page.path)
    assert match, page.path
    return match.group(1)


async def stored_payload(site: WebNode, record_id: str) -> dict[str, Any]:
    async with site.node.store.read() as tx:
        stored = await tx.cases.get(record_id)
    return without_nulls(stored.document["payload"])


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


async def test_the_form_stores_the_case_as_the_api_would(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    record_id = await create(browser, CASE_FORM)
    assert "The case was saved." in browser.last.text  # type: ignore[union-attr]
    payload = await stored_payload(site, record_id)
    assert payload["incident_date"] == "2023-05"
    assert payload["victims"] == [{"kind": "individual", "name": "Nasa Yuwe Tumbo",
                                   "groups": ["indigenous_leader"], "gender": "woman"}]
    assert payload["perpetrators"] == [{"category": "armed_group"}]
    assert payload["sources"] == ["Acta de la asamblea", "Testimonio directo"]
    assert payload["independent_sources"] == 2
    async with site.node.store.read() as tx:
        actions = [(e.actor, e.action) for e in await tx.audit.recent(limit=20)]
    assert ("beatriz", "case.create") in actions


async def test_a_bad_field_shows_its_error_next_to_it_and_keeps_the_input(
    site: WebNode,
) -> None:
    browser = await site.logged_in("beatriz")
    await browser.get("/cases/new")
    bad = with_fields(CASE_FORM, independent_sources="dos", **{"victims[0].kind": ""},
                      **{"victims[0].name": "Nasa Yuwe Tumbo"})
    page = await browser.post("/cases/new", [*bad, ("action", "save")])
    assert page.status == 422
    assert 'id="f-independent_sources-error"' in page.text
    assert "Enter a whole number, 0 or more." in page.text
    assert 'id="f-victims-0-kind-error"' in page.text
    assert 'value="Nasa Yuwe Tumbo"' in page.text  # nothing typed is lost
    async with site.node.store.read() as tx:
        assert await tx.cases.count() == 0


async def test_partial_dates_ranges_and_date_errors(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    ranged = with_fields(CASE_FORM, **{"incident_date.start.month": "11",
                                       "incident_date.end.year": "2024",
                                       "incident_date.end.month": "2",
                                       "incident_date.end.day": "29"})
    record_id = await create(browser, ranged)
    assert (await stored_payload(site, record_id))["incident_date"] == "2023-11/2024-02-29"
    await browser.get("/cases/new")
    backwards = with_fields(CASE_FORM, **{"incident_date.end.year": "2022"})
    page = await browser.post("/cases/new", [*backwards, ("action", "save")])
    assert page.status == 422 and "The period ends before it starts." in page.text
    no_day = with_fields(CASE_FORM, **{"incident_date.start.month": "2",
                                      "incident_date.start.day": "30"})
    page = await browser.post("/cases/new", [*no_day, ("action", "save")])
    assert "That day does not exist in that month." in page.text


async def test_an_incident_date_in_the_future_is_an_error_next_to_it(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")  # the site's clock says 2024-05-29
    await browser.get("/cases/new")
    future = with_fields(CASE_FORM, **{"incident_date.start.year": "2099"})
    page = await browser.post("/cases/new", [*future, ("action", "save")])
    assert page.status == 422
    assert "This date is in the future." in page.text
    assert 'value="Vereda La Esperanza, Cauca"' in page.text  # nothing typed is lost
    async with site.node.store.read() as tx:
        assert await tx.cases.count() == 0
    record_id = await create(browser, CASE_FORM)
    page = await browser.post(f"/cases/{record_id}/edit", [*future, ("action", "save"),
                                                           ("expected_version", "1")])
    assert page.status == 422 and "This date is in the future." in page.text
    await browser.post("/language", {"language": "es", "next": "/cases/new"})
    page = await browser.post("/cases/new", [*future, ("action", "save")])
    assert "Esta fecha está en el futuro." in page.text


async def test_add_another_row_keeps_what_was_typed(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    await browser.get("/cases/new")
    page = await browser.post("/cases/new", [*CASE_FORM, ("action", "add_victim")])
    assert page.status == 200 and 'name="victims[2].kind"' in page.text
    assert 'value="Nasa Yuwe Tumbo"' in page.text
    assert 'id="f-victims-2-kind" name="victims[2].kind" autofocus' in page.text
    async with site.node.store.read() as tx:
        assert await tx.cases.count() == 0


async def test_errors_and_labels_in_spanish(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    await browser.get("/")
    await browser.post("/language", {"language": "es", "next": "/cases/new"})
    page = await browser.post("/cases/new", [*with_fields(CASE_FORM, country=None),
                                             ("action", "save")])
    assert page.status == 422
    assert '<html lang="es">' in page.text
    assert "Amenaza de muerte" in page.text  # typology label in Spanish
    assert "Esto es obligatorio." in page.text


async def test_list_filters_and_text_search(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    first = await create(browser, CASE_FORM)
    kenya = with_fields(CASE_FORM, title="Periodista retenida en Kibera", country="KE",
                        place="Kibera")
    second = await create(browser, kenya)
    page = await browser.get("/cases?country=KE")
    assert second in page.text and first not in page.text
    page = await browser.get("/cases?q=GUARDIA+indigena")  # case and accents ignored
    assert first in page.text and second not in page.text
    page = await browser.get("/cases?violation=death_threat&date_from=2023-05&date_to=2023")
    assert first in page.text and second in page.text
    page = await browser.get("/cases?date_from=2024")
    assert first not in page.text
    page = await browser.get("/cases?country=XX")
    assert "This filter is not valid; it was left out." in page.text


async def test_pagination_follows_the_cursor(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    ids = [await create(browser, with_fields(CASE_FORM, title=f"Caso {n}")) for n in range(21)]
    page = await browser.get("/cases")
    next_link = re.search(r'href="(/cases\?cursor=[^"]+)"', page.text)
    assert next_link and ids[-1] in page.text and ids[0] not in page.text
    page = await browser.get(next_link.group(1).replace("&amp;", "&"))
    assert ids[0] in page.text and ids[-1] not in page.text


async def test_edit_makes_a_new_version_and_history_shows_both(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    record_id = await create(browser, CASE_FORM)
    page = await browser.get(f"/cases/{record_id}/edit")
    assert 'name="expected_version" value="1"' in page.text
    changed = with_fields(CASE_FORM, place="", expected_version="1",
                          title="Amenazas (actualizado)")
    page = await browser.post(f"/cases/{record_id}/edit", [*changed, ("action", "save")])
    assert page.path == f"/cases/{record_id}" and "Amenazas (actualizado)" in page.text
    payload = await stored_payload(site, record_id)
    assert "place" not in payload
    assert "Version 2" in page.text and "Version 1" in page.text
    old = await browser.get(f"/cases/{record_id}?version=1")
    assert "Vereda La Esperanza" in old.text
    stale = await browser.post(f"/cases/{record_id}/edit", [*changed, ("action", "save")])
    assert stale.status == 409 and "Someone saved this case" in stale.text


async def test_delete_wipes_after_confirmation(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    record_id = await create(browser, CASE_FORM)
    page = await browser.get(f"/cases/{record_id}/delete")
    assert "cannot be undone" in page.text
    page = await browser.post(f"/cases/{record_id}/delete", {})
    assert page.path == "/cases" and "was deleted" in page.text
    page = await browser.get(f"/cases/{record_id}")
    assert page.status == 410


async def test_viewing_a_case_is_audited(site: WebNode) -> None:
    editor = await site.logged_in("beatriz")
    record_id = await create(editor, CASE_FORM)
    viewer = await site.logged_in("chidi")
    page = await viewer.get(f"/cases/{record_id}")
    assert "Nasa Yuwe Tumbo" in page.text and "/edit" not in page.text
    async with site.node.store.read() as tx:
        events = await tx.audit.recent(limit=10)
    assert any(e.actor == "chidi" and e.action == "case.view" and e.target == record_id
               for e in events)


async def test_text_search_is_capped_and_says_so(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    for number in range(6):
        await create(browser, with_fields(CASE_FORM, title=f"Caso {number}",
                                          narrative="texto común" if number else "aguja"))
    async with site.node.store.read() as tx:
        capped = await search_cases(tx, CaseFilter(), "aguja", None, page_size=2,
                                    scan_limit=4)
        assert (capped.items, capped.capped, capped.examined) == ([], True, 4)
        rest = await search_cases(tx, CaseFilter(), "aguja", capped.next_cursor, page_size=2,
                                  scan_limit=4)
    assert [item.document["payload"]["title"] for item in rest.items] == ["Caso 0"]
    assert not rest.capped and rest.next_cursor is None


@pytest.mark.parametrize(("consent", "offered"), [
    ("none", False), ("anonymised", True), ("coalition", True), ("public", True)])
async def test_sharing_is_offered_only_where_consent_allows_something(
    site: WebNode, consent: str, offered: bool
) -> None:
    browser = await site.logged_in("beatriz")
    record_id = await create(browser, with_fields(CASE_FORM, consent_level=consent))
    page = await browser.get(f"/cases/{record_id}")
    assert (f'href="/cases/{record_id}/share"' in page.text) is offered
    assert ("consent does not allow sharing this case" in page.text) is not offered


async def test_the_login_page_speaks_the_browsers_language(site: WebNode) -> None:
    browser = await site.browser()
    page = await browser.get("/login", headers={"Accept-Language": "es-419,es;q=0.9,en;q=0.5"})
    assert '<html lang="es">' in page.text
    page = await browser.get("/login", headers={"Accept-Language": "fr-FR,en;q=0.5"})
    assert '<html lang="en">' in page.text
