"""The evidence page of a case: the form (no script needed) streams the upload, the page shows
what the working copy lost, downloads are logged, and a forged upload is refused."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from node.core.store import Role
from tests.features.evidence.samples import jpeg_with_gps
from tests.support.api_harness import SAMPLE_CASES
from tests.support.offline_node import make_offline_node
from tests.support.web import Browser, WebNode, serve_web


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[WebNode]:
    async with serve_web(await make_offline_node(tmp_path / "node")) as web_node:
        yield web_node


async def _case(site: WebNode, browser: Browser) -> str:
    async with site.node.store.transaction() as tx:
        token = await tx.tokens.create("beatriz", Role.editor)
    async with browser.session.post(site.base + "/api/v1/cases", json=SAMPLE_CASES["cauca"],
                                    headers={"Authorization": f"Bearer {token}"}) as answer:
        assert answer.status == 201
        return str((await answer.json())["record_id"])


def _form_action(html: str) -> str:
    found = re.search(r'<form id="evidence-upload" method="post" action="([^"]+)"'
                      r' enctype="multipart/form-data">', html)
    assert found
    return found.group(1).replace("&amp;", "&")


async def test_upload_from_the_page_and_see_what_was_removed(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    record_id = await _case(site, browser)
    case_page = await browser.get(f"/cases/{record_id}")
    assert f'href="/cases/{record_id}/evidence"' in case_page.text
    page = await browser.get(f"/cases/{record_id}/evidence")
    assert "No files are attached to this case." in page.text
    form = aiohttp.FormData()
    form.add_field("files", jpeg_with_gps(), filename="foto.jpg", content_type="image/jpeg")
    async with browser.session.post(site.base + _form_action(page.text), data=form) as answer:
        assert answer.status == 200 and answer.url.path == f"/cases/{record_id}/evidence"
        shown = await answer.text()
    assert "foto.jpg" in shown and "image/jpeg" in shown
    assert "GPSLatitude" in shown and "SerialNumber" in shown
    assert "SN-4455667788" not in shown  # names of what was removed, never the values
    link = re.search(r'href="(/evidence/[^"]+/file\?copy=working)"', shown)
    assert link
    async with browser.session.get(site.base + link.group(1)) as answer:
        assert answer.status == 200
        assert b"MingaTestPhone" not in await answer.read()
    again = await browser.get(f"/cases/{record_id}/evidence")
    assert "Custody log (3 entries)" in again.text


async def test_an_upload_without_the_token_is_refused_and_nothing_kept(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    record_id = await _case(site, browser)
    form = aiohttp.FormData()
    form.add_field("files", jpeg_with_gps(), filename="foto.jpg", content_type="image/jpeg")
    async with browser.session.post(site.base + f"/cases/{record_id}/evidence?csrf=forged",
                                    data=form) as answer:
        assert answer.status == 403
    assert not list((site.node.config.node.data_dir / "evidence").glob("*"))


async def test_spanish_page(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    record_id = await _case(site, browser)
    await browser.get("/")
    await browser.post("/language", {"language": "es", "next": "/"})
    page = await browser.get(f"/cases/{record_id}/evidence")
    assert "Archivos de evidencia" in page.text
    assert "No hay archivos adjuntos a este caso." in page.text
