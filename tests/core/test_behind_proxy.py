"""The node behind real Caddy with TLS from a test CA (decision 0028).

Client addresses are real: browsers bind their sockets to 127.0.0.2, 127.0.0.3, ... and Caddy
reports them in X-Forwarded-For. The node trusts only 127.0.0.1 (where Caddy connects from).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from deploy.homeserver import Homeserver, free_port
from node.core.store import Role
from node.core.web.throttle import ADDRESS_LIMIT
from tests.support.served import Caddy, Served, caddy_in_front, client_from, configure, served
from tests.support.sharing import eventually, new_member
from tests.support.web import PASSWORD, add_staff

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def proxied(homeserver: Homeserver, tmp_path: Path
                  ) -> AsyncIterator[tuple[Served, Caddy]]:
    port = free_port()
    config = await new_member(homeserver, tmp_path / "node", "Colectivo Tejiendo Memoria", "CO",
                              http_port=port)
    configure(config, trusted_proxies=["127.0.0.1"])
    async with served(config) as node:
        await add_staff(node.node, "beatriz", Role.editor)
        with caddy_in_front(tmp_path / "caddy", port) as caddy:
            async def up() -> bool:
                try:
                    async with client_from("127.0.0.1", caddy.client_ssl()) as browser, \
                            browser.get(caddy.url + "/login") as answer:
                        return answer.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(up, timeout=60, what="Caddy forwarding to the node")
            yield node, caddy


async def _login(browser: aiohttp.ClientSession, base: str, username: str, password: str,
                 headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
    async with browser.get(base + "/login", headers=headers) as page:
        found = _CSRF.search(await page.text())
        assert found, "the login page has no CSRF token"
    form = {"username": username, "password": password, "code": "", "next": "/",
            "csrf": found.group(1)}
    async with browser.post(base + "/login", data=form, headers=headers,
                            allow_redirects=False) as answer:
        await answer.read()
        return answer


async def _fail_from(browser: aiohttp.ClientSession, base: str, times: int,
                     headers: dict[str, str] | None = None) -> None:
    for attempt in range(times):  # a different name each time: only the address limit counts
        answer = await _login(browser, base, f"guess{attempt}", "wrong password", headers)
        assert answer.status == 401


def _session_cookie(answer: aiohttp.ClientResponse) -> str:
    cookies = [c for c in answer.headers.getall("Set-Cookie", []) if c.startswith("minga_session=")]
    assert len(cookies) == 1, answer.headers
    return cookies[0]


async def test_failed_logins_through_the_proxy_lock_out_one_client_not_everyone(
        proxied: tuple[Served, Caddy]) -> None:
    _, caddy = proxied
    tls = caddy.client_ssl()
    async with client_from("127.0.0.2", tls) as attacker, client_from("127.0.0.3", tls) as staff:
        # The attacker also claims to be the staff member's address. Caddy replaces
        # X-Forwarded-For but passes Forwarded through untouched: the node reads only the one
        # header its proxy writes ([http] proxy_header).
        await _fail_from(attacker, caddy.url, ADDRESS_LIMIT,
                         headers={"X-Forwarded-For": "127.0.0.3", "Forwarded": "for=127.0.0.3"})
        locked = await _login(attacker, caddy.url, "beatriz", PASSWORD)
        assert locked.status == 429  # the attacker's own address is locked
        answer = await _login(staff, caddy.url, "beatriz", PASSWORD)
        assert answer.status == 303, "a staff member elsewhere was locked out"


async def test_through_https_the_session_cookie_is_secure_and_hsts_is_sent(
        proxied: tuple[Served, Caddy]) -> None:
    _, caddy = proxied
    async with client_from("127.0.0.2", caddy.client_ssl()) as browser:
        answer = await _login(browser, caddy.url, "beatriz", PASSWORD)
        assert answer.status == 303
        assert "Secure" in _session_cookie(answer).split("; ")
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
        async with browser.get(caddy.url + "/") as page:  # a page, and the session works
            assert page.status == 200
            assert "Strict-Transport-Security" in page.headers
        async with browser.get(caddy.url + "/health") as health:
            assert "Strict-Transport-Security" in health.headers


async def test_forwarded_headers_sent_straight_to_the_node_are_ignored(
        proxied: tuple[Served, Caddy]) -> None:
    node, _ = proxied
    forged = {"X-Forwarded-For": "127.0.0.5", "X-Forwarded-Proto": "https",
              "Forwarded": "for=127.0.0.5;proto=https"}
    async with client_from("127.0.0.4") as forger, client_from("127.0.0.5") as staff:
        # Each failure claims to come from 127.0.0.5: if believed, 127.0.0.5 would be locked.
        await _fail_from(forger, node.base, ADDRESS_LIMIT, headers=forged)
        assert (await _login(forger, node.base, "beatriz", PASSWORD, forged)).status == 429
        answer = await _login(staff, node.base, "beatriz", PASSWORD)
        assert answer.status == 303
    async with client_from("127.0.0.6") as claimer:
        # Plain HTTP straight to the node: no HSTS and no Secure cookie, whatever was claimed.
        answer = await _login(claimer, node.base, "beatriz", PASSWORD, forged)
        assert answer.status == 303
        assert "Secure" not in _session_cookie(answer).split("; ")
        assert "Strict-Transport-Security" not in answer.headers
