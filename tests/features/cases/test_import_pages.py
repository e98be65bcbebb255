"""Importing a spreadsheet from the web: the preview says of every row whether it is new,
updated (and which fields) or unchanged, and importing the same file again duplicates nothing
(M16)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support import DATA
from tests.support.offline_node import make_offline_node
from tests.support.web import Browser, Page, WebNode, csrf_of, serve_web

CASOS = (DATA / "casos.csv").read_bytes()
MAPPING = (DATA / "import_mapping.toml").read_bytes()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[WebNode]:
    async with serve_web(await make_offline_node(tmp_path / "node")) as web_node:
        yield web_node


async def upload(browser: Browser, action: str, spreadsheet: bytes | None,
                 mapping: bytes | None = MAPPING, kept: dict[str, str] | None = None) -> Page:
    """Post the import form as a browser does: multipart, with the CSRF token of the last page."""
    assert browser.last is not None
    form = aiohttp.FormData()
    form.add_field("csrf", csrf_of(browser.last.text))
    form.add_field("action", action)
    if spreadsheet is not None:
        form.add_field("spreadsheet", spreadsheet, filename="casos.csv", content_type="text/csv")
    if mapping is not None:
        form.add_field("mapping", mapping, filename="mapping.toml",
                       content_type="application/toml")
    for name, value in (kept or {}).items():
        form.add_field(name, value)
    async with browser.session.post(browser.base + "/cases/import", data=form) as answer:
        browser.last = Page(answer.status, str(answer.url), await answer.text())
    return browser.last


def kept_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'name="((?:spreadsheet|mapping)_(?:name|kept))" value="([^"]*)"',
                           html))


def row_statuses(html: str) -> list[str]:
    return re.findall(r'<li class="status-([a-z]+)">', html)


async def case_count(site: WebNode) -> int:
    async with site.node.store.read() as tx:
        return await tx.cases.count()


async def test_check_then_import_then_the_same_file_again_is_all_unchanged(
    site: WebNode,
) -> None:
    browser = await site.logged_in("beatriz")
    assert 'href="/cases/import"' in (await browser.get("/cases")).text
    await browser.get("/cases/import")
    preview = await upload(browser, "check", CASOS)
    assert preview.status == 200, preview.text[:2000]
    assert row_statuses(preview.text) == ["new", "new", "new"]
    assert "3 rows read: 3 new, 0 updated, 0 unchanged, 0 left alone." in preview.text
    assert await case_count(site) == 0
    done = await upload(browser, "import", None, None, kept_fields(preview.text))
    assert done.status == 200 and "Imported" in done.text
    assert await case_count(site) == 3
    await browser.get("/cases/import")
    again = await upload(browser, "check", CASOS)
    assert row_statuses(again.text) == ["unchanged", "unchanged", "unchanged"]
    assert "0 new, 0 updated, 3 unchanged" in again.text
    await upload(browser, "import", None, None, kept_fields(again.text))
    assert await case_count(site) == 3


async def test_the_preview_names_the_fields_an_edited_row_changes(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    await browser.get("/cases/import")
    await upload(browser, "import", CASOS)
    edited = CASOS.replace(b"durante una protesta", b"durante una protesta en Puno")
    preview = await upload(browser, "check", edited)
    assert row_statuses(preview.text) == ["unchanged", "updated", "unchanged"]
    assert "Fields that change: What happened" in preview.text
    assert "Puno" not in preview.text.split('<ul class="cards"')[1]


async def test_problems_and_the_missing_key_warning_are_shown_in_spanish(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    await browser.get("/cases/import")
    await browser.post("/language", {"language": "es", "next": "/cases/import"})
    await browser.get("/cases/import")
    unkeyed = b"\n".join(line for line in MAPPING.splitlines()
                         if not line.startswith(b"key_column"))
    preview = await upload(browser, "check", CASOS, unkeyed)
    assert "no nombra ninguna columna clave" in preview.text
    bad = await upload(browser, "check", (DATA / "casos_con_errores.csv").read_bytes())
    assert bad.status == 422 and "No se importó nada" in bad.text
    assert "spreadsheet_kept" not in bad.text
    missing = await upload(browser, "check", None)
    assert missing.status == 422 and "Elija la hoja de cálculo" in missing.text


async def test_viewers_cannot_import(site: WebNode) -> None:
    browser = await site.logged_in("chidi")
    assert (await browser.get("/cases/import")).status == 403
