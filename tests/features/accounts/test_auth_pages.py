"""Staff accounts on the pages: login (with TOTP for admins), throttling, sessions, CSRF,
roles, first-login password change and TOTP enrolment, logging out everywhere."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from deploy.homeserver import Homeserver
from federation.secretbox import FAST_TEST_PARAMS
from node.core.store import Role, staff_users
from node.core.web.context import WebSettings
from node.features.accounts.totp import secret_from_text, totp
from tests.support.web import PASSWORD, Browser, WebNode, running_web


@pytest.fixture
async def site(homeserver: Homeserver, tmp_path: Path) -> AsyncIterator[WebNode]:
    async with running_web(homeserver, tmp_path / "node") as web_node:
        yield web_node


async def login(browser: Browser, username: str, password: str, code: str = "") -> int:
    await browser.get("/login")
    page = await browser.post("/login", {"username": username, "password": password,
                                         "code": code, "next": "/"})
    return page.status


async def audit_actions(site: WebNode) -> list[tuple[str, str]]:
    async with site.node.store.read() as tx:
        return [(e.actor, e.action) for e in await tx.audit.recent(limit=100)]


async def test_pages_need_a_login_and_come_back_after_it(site: WebNode) -> None:
    browser = await site.browser()
    page = await browser.get("/cases?country=CO")
    assert page.path == "/login"
    assert 'name="next" value="/cases?country=CO"' in page.text
    page = await browser.post("/login", {"username": "beatriz", "password": PASSWORD,
                                         "next": "/cases?country=CO"})
    assert page.path == "/cases" and "Search and filter" in page.text


async def test_the_session_cookie_is_httponly_and_samesite_strict(site: WebNode) -> None:
    browser = await site.browser()
    await browser.get("/login")
    async with browser.session.post(site.base + "/login", allow_redirects=False, data={
            "username": "beatriz", "password": PASSWORD, "csrf": _csrf(browser)}) as answer:
        cookie = answer.headers.getall("Set-Cookie")
        assert answer.status == 303
    session = next(c for c in cookie if c.startswith("minga_session="))
    assert "HttpOnly" in session and "SameSite=Strict" in session and "Path=/" in session
    assert "Secure" not in session  # plain http in this test: Secure only over TLS


def _csrf(browser: Browser) -> str:
    assert browser.last is not None
    found = re.search(r'name="csrf" value="([^"]+)"', browser.last.text)
    assert found
    return found.group(1)


async def test_an_editor_logs_in_and_out(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    page = await browser.get("/")
    assert "Dashboard" in page.text and "beatriz" in page.text
    page = await browser.post("/logout", {})
    assert page.path == "/login" and "You are logged out." in page.text
    assert (await browser.get("/")).path == "/login"
    actions = await audit_actions(site)
    assert ("beatriz", "user.login") in actions and ("beatriz", "user.logout") in actions


async def test_an_admin_needs_the_code_and_a_code_works_once(site: WebNode) -> None:
    browser = await site.browser()
    assert await login(browser, "amaru", PASSWORD) == 401
    assert "code is not right" in browser.last.text  # type: ignore[union-attr]
    code = site.code("amaru")
    assert await login(browser, "amaru", PASSWORD, code) == 200
    other = await site.browser()
    assert await login(other, "amaru", PASSWORD, code) == 401  # no replay
    assert ("amaru", "user.login_failed") in await audit_actions(site)


async def test_wrong_passwords_are_refused_without_saying_which_part(site: WebNode) -> None:
    browser = await site.browser()
    assert await login(browser, "beatriz", "not the password") == 401
    wrong_password = browser.last.text  # type: ignore[union-attr]
    assert await login(browser, "nobody-of-that-name", "not the password") == 401
    assert "The user name, password or code is not right." in wrong_password
    assert "The user name, password or code is not right." in browser.last.text  # type: ignore[union-attr]


async def test_logins_are_throttled_per_account(site: WebNode) -> None:
    attacker = await site.browser()
    for _ in range(5):
        assert await login(attacker, "chidi", "guess guess guess") == 401
    assert await login(attacker, "chidi", PASSWORD) == 429
    assert "Too many failed attempts" in attacker.last.text  # type: ignore[union-attr]
    assert await login(attacker, "beatriz", PASSWORD) == 200  # other accounts still work


async def test_logins_are_throttled_per_address(site: WebNode) -> None:
    browser = await site.browser()
    for number in range(20):
        assert await login(browser, f"someone-{number}", "guess guess guess") == 401
    assert await login(browser, "beatriz", PASSWORD) == 429


async def test_a_form_post_without_the_csrf_token_is_refused(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    await browser.get("/cases/new")
    page = await browser.post("/cases/new", {"title": "x", "action": "save"}, csrf=False)
    assert page.status == 403 and "The form has expired" in page.text
    page = await browser.post("/logout", {"csrf": "0" * 64}, csrf=False)
    assert page.status == 403
    assert (await browser.get("/")).path == "/"  # still logged in
    stranger = await site.browser()
    page = await stranger.post("/login", {"username": "beatriz", "password": PASSWORD},
                               csrf=False)
    assert page.status == 403


async def test_a_viewer_cannot_reach_write_pages(site: WebNode) -> None:
    browser = await site.logged_in("chidi")
    for path in ("/cases/new", "/admin", "/admin/users", "/admin/tokens", "/admin/audit"):
        page = await browser.get(path)
        assert page.status == 403, path
    await browser.get("/cases")
    page = await browser.post("/cases/new", {"action": "save"})
    assert page.status == 403
    assert "Document a new case" not in (await browser.get("/cases")).text


async def test_an_editor_cannot_reach_admin_pages(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    assert (await browser.get("/admin/users")).status == 403


async def test_log_out_everywhere_ends_every_session(site: WebNode) -> None:
    phone = await site.logged_in("beatriz")
    laptop = await site.logged_in("beatriz")
    await laptop.get("/account")
    page = await laptop.post("/account/sessions", {})
    assert page.path == "/login" and "every device" in page.text
    assert (await phone.get("/")).path == "/login"


async def test_a_new_account_chooses_a_password_then_an_admin_enrols_totp(
    site: WebNode,
) -> None:
    admin = await site.logged_in("amaru")
    await admin.get("/admin/users")
    page = await admin.post("/admin/users", {"username": "Dalia", "role": "admin",
                                             "language": "en"})
    temporary = re.search(r'id="temporary-password">([^<]+)<', page.text)
    assert temporary
    assert ("amaru", "user.create") in await audit_actions(site)

    dalia = await site.browser()
    assert await login(dalia, "dalia", temporary.group(1)) == 200
    assert dalia.last.path == "/account/password"  # type: ignore[union-attr]
    assert (await dalia.get("/cases")).path == "/account/password"
    page = await dalia.post("/account/password", {"current": temporary.group(1),
                                                  "new": "short", "repeat": "short"})
    assert page.status == 422 and "at least 10 characters" in page.text
    page = await dalia.post("/account/password", {"current": temporary.group(1),
                                                  "new": "mi nueva clave larga",
                                                  "repeat": "mi nueva clave larga"})
    assert page.path == "/account/two-step"  # an admin must enrol a second factor now
    secret = re.search(r'name="secret" value="([A-Z2-7]+)"', page.text)
    assert secret
    page = await dalia.post("/account/two-step", {"secret": secret.group(1), "code": "000000"})
    assert page.status == 422
    code = totp(secret_from_text(secret.group(1)), int(time.time()))
    page = await dalia.post("/account/two-step", {"secret": secret.group(1), "code": code})
    assert page.path == "/account" and "Two-step login is on." in page.text
    assert (await dalia.get("/admin/users")).status == 200
    async with site.node.store.read() as tx:
        stored = await staff_users(tx).by_username("dalia")
    assert stored is not None and stored.has_totp and not stored.must_change_password


async def test_admin_blocks_resets_and_changes_roles(site: WebNode) -> None:
    chidi = await site.logged_in("chidi")
    admin = await site.logged_in("amaru")
    async with site.node.store.read() as tx:
        user = await staff_users(tx).by_username("chidi")
    assert user is not None
    await admin.get(f"/admin/users/{user.user_id}")
    await admin.post(f"/admin/users/{user.user_id}/role", {"role": "editor"})
    await admin.post(f"/admin/users/{user.user_id}/disable", {})
    assert (await chidi.get("/")).path == "/login"
    assert await login(chidi, "chidi", PASSWORD) == 401
    await admin.get(f"/admin/users/{user.user_id}")
    await admin.post(f"/admin/users/{user.user_id}/enable", {})
    page = await admin.post(f"/admin/users/{user.user_id}/reset", {})
    temporary = re.search(r'id="temporary-password">([^<]+)<', page.text)
    assert temporary
    assert await login(chidi, "chidi", temporary.group(1)) == 200
    async with site.node.store.read() as tx:
        changed = await staff_users(tx).get(user.user_id)
    assert changed.role == Role.editor and not changed.disabled
    actions = await audit_actions(site)
    for action in ("user.role", "user.disable", "user.enable", "user.password_reset"):
        assert ("amaru", action) in actions


async def test_the_last_admin_cannot_be_blocked(site: WebNode) -> None:
    admin = await site.logged_in("amaru")
    async with site.node.store.read() as tx:
        user = await staff_users(tx).by_username("amaru")
    assert user is not None
    await admin.get(f"/admin/users/{user.user_id}")
    page = await admin.post(f"/admin/users/{user.user_id}/disable", {})
    assert page.status == 409 and "last active admin" in page.text


async def test_api_tokens_are_shown_once_and_revoked(site: WebNode) -> None:
    admin = await site.logged_in("amaru")
    await admin.get("/admin/tokens")
    page = await admin.post("/admin/tokens", {"user": "reporting script", "role": "viewer"})
    token = re.search(r'id="new-token">(minga_[^<]+)<', page.text)
    assert token
    assert await _api_status(site, token.group(1)) == 200
    token_id = re.search(r'/admin/tokens/([0-9a-f]{16})/revoke', page.text)
    assert token_id
    await admin.post(f"/admin/tokens/{token_id.group(1)}/revoke", {})
    assert await _api_status(site, token.group(1)) == 401
    actions = await audit_actions(site)
    assert ("amaru", "token.create") in actions and ("amaru", "token.revoke") in actions


async def _api_status(site: WebNode, token: str) -> int:
    browser = await site.browser()
    async with browser.session.get(site.base + "/api/v1/status",
                                   headers={"Authorization": f"Bearer {token}"}) as answer:
        return answer.status


async def test_every_post_form_carries_a_csrf_token(site: WebNode) -> None:
    admin = await site.logged_in("amaru")
    async with site.node.store.read() as tx:
        user = await staff_users(tx).by_username("chidi")
    assert user is not None
    anonymous = await site.browser()
    pages = [await anonymous.get("/login")]
    for path in ("/", "/cases", "/cases/new", "/members", "/received", "/account",
                 "/account/password", "/account/two-step", "/admin/users",
                 f"/admin/users/{user.user_id}", "/admin/tokens"):
        pages.append(await admin.get(path))
    for page in pages:
        forms = page.text.count('<form method="post"')
        tokens = len(re.findall(r'name="csrf" value="[0-9a-f]{64}"', page.text))
        assert forms and forms == tokens, page.url


async def test_an_idle_session_ends(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    site.ctx.settings = WebSettings(password_params=FAST_TEST_PARAMS,
                                    session_idle=timedelta(seconds=0))
    assert (await browser.get("/")).path == "/login"
    async with site.node.store.read() as tx:
        user = await staff_users(tx).by_username("beatriz")
        assert user is not None and await staff_users(tx).end_sessions(user.user_id) == 0


async def test_pages_load_nothing_from_other_hosts_and_are_not_cached(site: WebNode) -> None:
    browser = await site.logged_in("beatriz")
    async with browser.session.get(site.base + "/cases") as answer:
        headers = answer.headers
        html = await answer.text()
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert not re.search(r'(src|href|action)="(https?:)?//', html)
    assert "<script" not in html
    async with browser.session.get(site.base + "/static/minga.css") as answer:
        assert answer.status == 200 and answer.content_type == "text/css"
        assert "url(" not in await answer.text()  # no fonts or images fetched by the style
