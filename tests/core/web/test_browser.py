"""The staff pages in a real browser (Debian's chromium, headless, driven by Playwright) against
two real member nodes on a real homeserver, with their sync loops running.

One organisation's admin logs in with a TOTP code, documents a case through the form (first
with a bad field, seeing the error next to it), shares two fields with the other organisation
after previewing what it will receive; an editor of the other organisation finds the record,
verified, on the received page. Every main page is saved as a screenshot at 360 px and at
desktop width under ``tests/artifacts/`` and checked for horizontal overflow at 360 px and for
inputs without a label.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, async_playwright, expect

from deploy.homeserver import Homeserver
from federation.secretbox import FAST_TEST_PARAMS
from node.assembly import node_registry
from node.core.api.app import mount_api
from node.core.federation_loop import run_federation
from node.core.runtime import Node, open_node
from node.core.store import Role
from node.core.web.app import mount_web
from node.core.web.context import WebSettings
from node.features.accounts.totp import totp
from tests.support import ARTIFACTS
from tests.support.sharing import FAST, eventually, form_coalition, new_member, passphrase_env
from tests.support.web import PASSWORD, add_staff

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
NARRATIVE = "Hombres armados rodearon la casa comunal durante la asamblea de la guardia."


@dataclass
class Site:
    node: Node
    url: str
    totp_secret: bytes | None


@contextlib.asynccontextmanager
async def serving(config: Path, stack: AsyncExitStack, *, admin_totp: bool) -> AsyncIterator[Site]:
    node = await stack.enter_async_context(open_node(config))
    secret = await add_staff(node, "amaru", Role.admin, totp=True) if admin_totp else None
    await add_staff(node, "beatriz", Role.editor)
    await add_staff(node, "chidi", Role.viewer)
    app = web.Application()
    mount_api(app, node, node_registry().endpoints)
    mount_web(app, node, node_registry().web,
              settings=WebSettings(password_params=FAST_TEST_PARAMS))
    server = await stack.enter_async_context(TestServer(app))
    transport = await stack.enter_async_context(node.transport())
    loop = asyncio.create_task(run_federation(node, transport, node_registry(), FAST))
    try:
        yield Site(node, str(server.make_url("")).rstrip("/"), secret)
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


@pytest.fixture
async def two_orgs(homeserver: Homeserver, tmp_path: Path) -> AsyncIterator[tuple[Site, Site]]:
    first = await new_member(homeserver, tmp_path / "a", "Corporación Tierra Viva", "CO")
    second = await new_member(homeserver, tmp_path / "b", "Haki Ardhi Trust", "KE")
    await form_coalition([first, second])
    with passphrase_env():
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(serving(first, stack, admin_totp=True))
            b = await stack.enter_async_context(serving(second, stack, admin_totp=False))
            yield a, b


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def check_page(page: Page, name: str) -> None:
    """Screenshots at 360 px and desktop width; no sideways scrolling on a phone; every visible
    form control has a label."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=str(ARTIFACTS / f"{name}-360.png"), full_page=True)
    overflow = await page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= PHONE["width"], f"{name}: {overflow} px wide at 360 px"
    unlabelled = await page.evaluate("""
        [...document.querySelectorAll('input, select, textarea')]
          .filter(e => e.type !== 'hidden' && e.labels.length === 0)
          .map(e => e.name)
    """)
    assert unlabelled == [], f"{name}: inputs without a label: {unlabelled}"
    await page.set_viewport_size(DESKTOP)
    await page.screenshot(path=str(ARTIFACTS / f"{name}-desktop.png"), full_page=True)
    await page.set_viewport_size(PHONE)


async def log_in(page: Page, site: Site, username: str, code: str = "") -> None:
    await page.goto(site.url + "/login")
    await page.get_by_label("User name").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    if code:
        await page.get_by_label("6-digit code").fill(code)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


async def document_case(page: Page, site: Site) -> str:
    await page.goto(site.url + "/cases/new")
    await check_page(page, "case-form")
    await page.locator("#f-title").fill("Cerco a la guardia indígena")
    await page.locator("#f-date-start-year").fill("2024")
    await page.locator("#f-date-start-month").select_option(label="March")
    await page.locator("#f-country").select_option(label="Colombia")
    await page.locator("#f-place").fill("Resguardo Las Delicias, Buenos Aires, Cauca")
    await page.locator("#f-narrative").fill(NARRATIVE)
    await page.get_by_label("Death threat").check()
    await page.get_by_label("Threat / intimidation").check()
    await page.locator("#f-victims-0-kind").select_option(label="Collective or community")
    await page.locator("#f-victims-0-name").fill("Guardia Indígena Nasa Kiwe")
    await page.locator("#f-perpetrators-0-category").select_option(label="Armed group")
    await page.locator("#f-independent_sources").fill("dos")  # not a number
    await page.get_by_label("Within the coalition").check()
    await page.get_by_label("High").check()
    await page.get_by_role("button", name="Save the case").first.click()

    error = page.locator("#f-independent_sources-error")
    await expect(error).to_have_text("Enter a whole number, 0 or more.")
    await expect(page.locator("#f-independent_sources")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#f-narrative")).to_have_value(NARRATIVE)
    await check_page(page, "case-form-error")

    await page.locator("#f-independent_sources").fill("2")
    await page.get_by_role("button", name="Save the case").first.click()
    await expect(page.get_by_text("The case was saved.")).to_be_visible()
    await check_page(page, "case-detail")
    return urlsplit(page.url).path.rsplit("/", 1)[1]


async def share_two_fields(page: Page, site: Site, record_id: str, recipient: str) -> None:
    await page.goto(f"{site.url}/cases/{record_id}/share")
    await page.locator(f'input[name="recipients"][value="{recipient}"]').check()
    await page.locator('input[name="fields"][value="country"]').check()
    await page.locator('input[name="fields"][value="violations"]').check()
    await page.get_by_role("button", name="Preview what each one receives").click()
    preview = page.locator("section.preview")
    await expect(preview).to_contain_text("Colombia")
    await expect(preview).to_contain_text("Death threat")
    await expect(preview).not_to_contain_text(NARRATIVE)
    await check_page(page, "share-preview")
    await page.get_by_role("button", name="Send to 1 organisation").click()
    await expect(page.get_by_text("The case is queued for sending")).to_be_visible()
    await expect(page.locator("#sharing + ul")).to_contain_text("Haki Ardhi Trust")


async def find_received(page: Page, site: Site) -> None:
    async def arrived() -> bool:
        await page.goto(site.url + "/received")
        return await page.get_by_text("Cerco a la guardia").count() == 0 and (
            await page.locator("ul.cards li").count() > 0)

    await eventually(arrived, timeout=90, what="the shared case at the second organisation")
    card = page.locator("ul.cards li").first
    await expect(card).to_contain_text("Verified")
    await expect(card).to_contain_text("Corporación Tierra Viva")
    await check_page(page, "received-list")
    await card.get_by_role("link").click()
    await expect(page.locator("dl.facts").last).to_contain_text("Colombia")
    await expect(page.locator("dl.facts").last).to_contain_text("Death threat")
    await expect(page.locator("main")).not_to_contain_text(NARRATIVE)
    await expect(page.locator("main")).not_to_contain_text("Nasa Kiwe")
    await check_page(page, "received-detail")


async def visit_main_pages(page: Page, site: Site) -> None:
    for path, name in (("/", "dashboard"), ("/cases", "case-list"), ("/members", "members"),
                       ("/admin", "admin"), ("/admin/users", "admin-users"),
                       ("/admin/tokens", "admin-tokens"), ("/admin/audit", "admin-audit"),
                       ("/admin/status", "admin-status"), ("/account", "account"),
                       ("/cases?q=guardia&country=CO", "case-search")):
        response = await page.goto(site.url + path)
        assert response is not None and response.status == 200, path
        await check_page(page, name)


async def test_document_share_and_receive_in_a_browser(
    two_orgs: tuple[Site, Site], browser: Browser
) -> None:
    a, b = two_orgs
    context = await browser.new_context(viewport=PHONE, locale="en-GB")
    page = await context.new_page()
    await page.goto(a.url + "/login")
    await check_page(page, "login")
    assert a.totp_secret is not None
    await log_in(page, a, "amaru", totp(a.totp_secret, int(time.time())))
    record_id = await document_case(page, a)
    await share_two_fields(page, a, record_id, b.node.org_id)
    await visit_main_pages(page, a)

    other = await (await browser.new_context(viewport=PHONE, locale="es-CO")).new_page()
    await other.goto(b.url + "/login")
    await expect(other.locator("html")).to_have_attribute("lang", "es")  # from the browser
    await other.get_by_label("Idioma").select_option("en")
    await other.get_by_role("button", name="Cambiar idioma").click()
    await log_in(other, b, "beatriz")
    await find_received(other, b)


async def test_spanish_pages_in_a_browser(two_orgs: tuple[Site, Site], browser: Browser) -> None:
    a, _ = two_orgs
    page = await (await browser.new_context(viewport=PHONE, locale="es-CO")).new_page()
    await page.goto(a.url + "/login")
    await page.get_by_label("Nombre de usuario").fill("beatriz")
    await page.get_by_label("Contraseña").fill(PASSWORD)
    await page.get_by_role("button", name="Iniciar sesión").click()
    # The account's own language (English) wins over the browser's; the switcher changes it.
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    await page.get_by_label("Language").select_option("es")
    await page.get_by_role("button", name="Change language").click()
    await expect(page.get_by_role("heading", name="Panel")).to_be_visible()
    await check_page(page, "es-dashboard")
    await page.goto(a.url + "/cases/new")
    await page.get_by_role("button", name="Guardar el caso").first.click()
    await expect(page.get_by_role("alert")).to_contain_text("No se guardó el caso")
    await expect(page.locator("#f-narrative-error")).to_have_text("Esto es obligatorio.")
    await check_page(page, "es-case-form-error")
    await page.goto(a.url + "/members")
    await check_page(page, "es-members")
