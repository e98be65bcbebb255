"""The evidence page's upload progress in a real browser (Debian's chromium, headless, driven by
Playwright), against a node serving its pages.

With JavaScript the attach form is sent by the page's script: a labelled ``<progress>`` shows
how much has gone, up to 100 %, and the browser ends on the case's files with the new one
listed; the progress box fits a 360 px screen. Without JavaScript the same form posts as it
always did and ends on the same page; in Spanish the progress label is translated.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from node.core.store import Role
from node.features.evidence import case_attachments
from tests.core.web.test_browser import CHROMIUM, CHROMIUM_ARGS, PHONE
from tests.support.api_harness import SAMPLE_CASES
from tests.support.offline_node import make_offline_node
from tests.support.web import PASSWORD, WebNode, serve_web

SIZE = 6 * 2**20
SLOW_UPLOAD = 2 * 2**20
"""Bytes per second the browser uploads at in the progress test (Chromium's network
emulation): on loopback a file would otherwise be sent before a progress event is due."""


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[WebNode]:
    async with serve_web(await make_offline_node(tmp_path / "node")) as web_node:
        yield web_node


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def _case(site: WebNode) -> str:
    async with site.node.store.transaction() as tx:
        token = await tx.tokens.create("beatriz", Role.editor)
    web = await site.browser()
    async with web.session.post(site.base + "/api/v1/cases", json=SAMPLE_CASES["cauca"],
                                headers={"Authorization": f"Bearer {token}"}) as answer:
        assert answer.status == 201, await answer.text()
        made: dict[str, Any] = await answer.json()
    return str(made["record_id"])


async def _log_in(page: Page, site: WebNode) -> None:
    await page.goto(site.base + "/login")
    await page.locator("input[name=username]").fill("beatriz")
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("input[name=password]").press("Enter")
    await page.wait_for_url(site.base + "/")


def _file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(os.urandom(SIZE))
    return path


async def test_a_file_uploads_with_progress_shown_and_ends_on_the_case_files(
    site: WebNode, browser: Browser, tmp_path: Path
) -> None:
    record_id = await _case(site)
    context = await browser.new_context(viewport=PHONE)
    page = await context.new_page()
    await _log_in(page, site)
    evidence = f"{site.base}/cases/{record_id}/evidence"
    await page.goto(evidence)
    progress = page.get_by_label("Upload progress")
    assert await progress.evaluate("bar => bar.tagName") == "PROGRESS"
    await expect(progress).to_be_hidden()

    # shown, it fits a phone's width
    await page.evaluate("document.getElementById('upload-progress').hidden = false")
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await page.evaluate("document.getElementById('upload-progress').hidden = true")

    seen: list[float] = []

    def progress_seen(value: float) -> None:
        seen.append(value)

    await page.expose_function("progressSeen", progress_seen)
    await page.evaluate("""() => {
        const bar = document.getElementById('upload-bar');
        new MutationObserver(() => window.progressSeen(bar.value)).observe(
            document.getElementById('upload-status'), {childList: true, subtree: true});
    }""")
    network = await context.new_cdp_session(page)
    await network.send("Network.enable")
    await network.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1,
        "uploadThroughput": SLOW_UPLOAD})
    await page.locator("#f-files").set_input_files(str(_file(tmp_path, "grabacion.bin")))
    await page.get_by_role("button", name="Attach").click()
    await page.wait_for_url(evidence + "#files")
    await expect(page.get_by_text("grabacion.bin")).to_be_visible()
    assert seen, "the progress never changed"
    assert seen == sorted(seen) and seen[-1] == 100
    assert any(0 < value < 100 for value in seen), seen
    (kept,) = await case_attachments(site.node, record_id)
    assert (kept.name, kept.size) == ("grabacion.bin", SIZE)
    await context.close()


async def test_without_javascript_the_form_posts_and_the_label_is_in_spanish(
    site: WebNode, browser: Browser, tmp_path: Path
) -> None:
    record_id = await _case(site)
    context = await browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = await context.new_page()
    await _log_in(page, site)
    await page.get_by_label("Language").select_option("es")  # the account's own is English
    await page.get_by_role("button", name="Change language").click()
    await expect(page.get_by_role("heading", name="Panel")).to_be_visible()
    evidence = f"{site.base}/cases/{record_id}/evidence"
    await page.goto(evidence)
    assert await page.get_by_label("Progreso de la subida").count() == 1
    await expect(page.locator("#upload-progress")).to_be_hidden()
    await page.locator("#f-files").set_input_files(str(_file(tmp_path, "acta.bin")))
    await page.get_by_role("button", name="Adjuntar").click()
    await page.wait_for_url(evidence + "#files")
    await expect(page.get_by_text("acta.bin")).to_be_visible()
    (kept,) = await case_attachments(site.node, record_id)
    assert (kept.name, kept.size) == ("acta.bin", SIZE)
    await context.close()
