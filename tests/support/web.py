"""A real node (on a real homeserver) serving the API and the staff pages to test browsers.

Each :class:`Browser` has its own cookie jar, so tests can be several people at once. Staff
passwords use the fast Argon2id test parameters.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from deploy.homeserver import Homeserver
from federation.secretbox import FAST_TEST_PARAMS
from node.assembly import node_registry
from node.core.api.app import mount_api
from node.core.runtime import Node, open_node
from node.core.store import Role
from node.core.web.app import mount_web
from node.core.web.context import WebContext, WebSettings
from node.features.accounts.accounts import create_account
from node.features.accounts.totp import totp
from tests.support.api_harness import FakeClock, _passphrase_env, create_node

STAFF = {"amaru": Role.admin, "beatriz": Role.editor, "chidi": Role.viewer}
PASSWORD = "a long test password"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


@dataclass
class Page:
    status: int
    url: str
    text: str

    @property
    def path(self) -> str:
        return aiohttp.client.URL(self.url).path


@dataclass
class Browser:
    """One person's browser: a cookie jar and the pages it fetched."""

    base: str
    session: aiohttp.ClientSession
    last: Page | None = None

    async def get(self, path: str, **kwargs: Any) -> Page:
        async with self.session.get(self.base + path, **kwargs) as answer:
            self.last = Page(answer.status, str(answer.url), await answer.text())
        return self.last

    async def post(self, path: str, data: dict[str, Any] | list[tuple[str, str]],
                   *, csrf: bool = True, **kwargs: Any) -> Page:
        """Post a form; the CSRF token is taken from the last page fetched."""
        fields = list(data.items()) if isinstance(data, dict) else list(data)
        if csrf:
            assert self.last is not None, "fetch a page with a form first"
            fields.append(("csrf", csrf_of(self.last.text)))
        async with self.session.post(self.base + path, data=fields, **kwargs) as answer:
            self.last = Page(answer.status, str(answer.url), await answer.text())
        return self.last

    async def submit(self, form_page: str, action: str, data: dict[str, Any] | list[tuple[
            str, str]]) -> Page:
        await self.get(form_page)
        return await self.post(action, data)


@dataclass
class WebNode:
    node: Node
    server: TestServer
    ctx: WebContext
    clock: FakeClock
    totp_secrets: dict[str, bytes] = field(default_factory=dict)
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def browser(self) -> Browser:
        jar = aiohttp.CookieJar(unsafe=True)
        session = await self._stack.enter_async_context(aiohttp.ClientSession(cookie_jar=jar))
        return Browser(self.base, session)

    def code(self, username: str) -> str:
        return totp(self.totp_secrets[username], int(time.time()))

    async def logged_in(self, username: str) -> Browser:
        browser = await self.browser()
        await browser.get("/login")
        code = self.code(username) if username in self.totp_secrets else ""
        page = await browser.post("/login", {"username": username, "password": PASSWORD,
                                             "code": code, "next": "/"})
        assert page.status == 200 and page.path == "/", page.text[:2000]
        return browser


async def add_staff(node: Node, username: str, role: Role, *, totp: bool = False) -> bytes | None:
    async with node.store.transaction() as tx:
        issued = await create_account(tx, username, role, actor="test", password=PASSWORD,
                                      with_totp=totp, params=FAST_TEST_PARAMS)
    return issued.totp_secret


@asynccontextmanager
async def serve_web(config: Path) -> AsyncIterator[WebNode]:
    with _passphrase_env():
        async with open_node(config) as node:
            secrets = {}
            for username, role in STAFF.items():
                secret = await add_staff(node, username, role, totp=role == Role.admin)
                if secret is not None:
                    secrets[username] = secret
            clock = FakeClock()
            app = web.Application()
            mount_api(app, node, node_registry().endpoints, now=clock)
            ctx = mount_web(app, node, node_registry().web, now=clock,
                            settings=WebSettings(password_params=FAST_TEST_PARAMS))
            async with TestServer(app) as server:
                web_node = WebNode(node, server, ctx, clock, secrets)
                async with web_node._stack:
                    yield web_node


@asynccontextmanager
async def running_web(homeserver: Homeserver, directory: Path,
                      name: str = "Colectivo Tejiendo Memoria",
                      country: str = "CO") -> AsyncIterator[WebNode]:
    config = await create_node(homeserver, directory, name, country)
    async with serve_web(config) as web_node:
        yield web_node
