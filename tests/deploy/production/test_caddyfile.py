"""deploy/production/Caddyfile: valid for Caddy, and in front of a node it keeps the node's own
security headers, adds HSTS and defaults, forwards the client's address, and passes the alert
page's live stream through as it is written."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from deploy.homeserver import free_port
from node.core.web.app import SECURITY_HEADERS
from tests.support import REPO
from tests.support.sharing import eventually

CADDYFILE = REPO / "deploy" / "production" / "Caddyfile"
NODE_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'"

pytestmark = pytest.mark.skipif(shutil.which("caddy") is None, reason="needs caddy")


def caddy_env(home: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config")}


def test_the_caddyfile_is_valid_and_formatted(tmp_path: Path) -> None:
    done = subprocess.run(["caddy", "validate", "--config", str(CADDYFILE), "--adapter",
                           "caddyfile"], capture_output=True, text=True, check=False,
                          env=caddy_env(tmp_path), stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "not formatted" not in done.stderr


def test_the_default_policy_is_the_nodes() -> None:
    default = re.search(r'\?Content-Security-Policy "([^"]+)"', CADDYFILE.read_text())
    assert default is not None
    assert default.group(1) == SECURITY_HEADERS["Content-Security-Policy"]


@dataclass
class Backend:
    """Stands in for the node: one page with its own policy, one without, and a live stream
    that sends one event and then waits for the test before it ends."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    forwarded_for: list[str] = field(default_factory=list)
    homeserver_paths: list[str] = field(default_factory=list)

    async def homeserver(self, request: web.Request) -> web.Response:
        """Stands in for Synapse behind the homeserver's site."""
        self.homeserver_paths.append(request.path)
        return web.json_response({})

    async def page(self, request: web.Request) -> web.Response:
        self.forwarded_for.append(request.headers.get("X-Forwarded-For", ""))
        return web.Response(text="page", headers={"Content-Security-Policy": NODE_POLICY})

    async def bare(self, request: web.Request) -> web.Response:
        return web.Response(text="bare")

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-store"})
        await response.prepare(request)
        await response.write(b"event: alerts\ndata: {\"unacknowledged\": 1}\n\n")
        await self.release.wait()
        await response.write(b"event: alerts\ndata: {\"unacknowledged\": 0}\n\n")
        return response


@dataclass(frozen=True)
class Site:
    node: str
    homeserver: str


def caddyfile_for_test(site_port: int, matrix_port: int, node_port: int,
                       synapse_port: int, home: Path) -> str:
    """The production Caddyfile on loopback ports, over plain HTTP, with no admin endpoint."""
    text = CADDYFILE.read_text()
    text = text.replace("email admin@example.org",
                        f"admin off\n\tauto_https off\n\tstorage file_system {home / 'data'}")
    text = text.replace("minga.example.org {", f"http://127.0.0.1:{site_port} {{")
    text = text.replace("matrix.example.org, matrix.example.org:8448 {",
                        f"http://127.0.0.1:{matrix_port} {{")
    text = text.replace("127.0.0.1:8470", f"127.0.0.1:{node_port}")
    text = text.replace("127.0.0.1:8008", f"127.0.0.1:{synapse_port}")
    text = text.replace("/var/log/caddy/", f"{home}/")
    assert not [line for line in text.splitlines()
                if "example.org" in line and not line.lstrip().startswith("#")]
    return text


@pytest.fixture
def backend() -> Backend:
    return Backend()


@pytest.fixture
async def site(backend: Backend, tmp_path: Path) -> AsyncIterator[Site]:
    app = web.Application()
    app.router.add_get("/", backend.page)
    app.router.add_get("/bare", backend.bare)
    app.router.add_get("/alerts/events", backend.events)
    synapse = web.Application()
    synapse.router.add_get("/{path:.*}", backend.homeserver)
    runners = [web.AppRunner(app), web.AppRunner(synapse)]
    ports = {name: free_port() for name in ("site", "matrix", "node", "synapse")}
    for runner, port in zip(runners, (ports["node"], ports["synapse"]), strict=True):
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
    config = tmp_path / "Caddyfile"
    config.write_text(caddyfile_for_test(ports["site"], ports["matrix"], ports["node"],
                                         ports["synapse"], tmp_path))
    with running_caddy(config, tmp_path):
        url = f"http://127.0.0.1:{ports['site']}"

        async def answers() -> bool:
            try:
                async with aiohttp.ClientSession() as session, session.get(url + "/bare") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(answers, timeout=60, what="caddy")
        try:
            yield Site(url, f"http://127.0.0.1:{ports['matrix']}")
        finally:
            backend.release.set()
            for runner in runners:
                await runner.cleanup()


@contextmanager
def running_caddy(config: Path, home: Path) -> Iterator[None]:
    with (home / "caddy.log").open("wb") as log:
        process = subprocess.Popen(
            ["caddy", "run", "--config", str(config), "--adapter", "caddyfile"],
            env=caddy_env(home), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


async def test_the_nodes_own_policy_is_kept_and_hsts_added(site: Site, backend: Backend) -> None:
    async with aiohttp.ClientSession() as session, session.get(site.node + "/") as answer:
        assert answer.status == 200
        assert answer.headers.getall("Content-Security-Policy") == [NODE_POLICY]
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert "Server" not in answer.headers
    assert backend.forwarded_for == ["127.0.0.1"]


async def test_a_response_without_headers_gets_the_defaults(site: Site) -> None:
    async with aiohttp.ClientSession() as session, session.get(site.node + "/bare") as answer:
        assert answer.headers["Content-Security-Policy"] == \
            SECURITY_HEADERS["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert answer.headers["X-Frame-Options"] == "DENY"


async def test_the_live_stream_is_not_buffered(site: Site, backend: Backend) -> None:
    """The first event must arrive while the node still holds the stream open: a buffering
    proxy would hold it back until the end, which only comes after the event was read."""
    async with aiohttp.ClientSession() as session, \
            session.get(site.node + "/alerts/events") as answer:
        assert answer.headers["Content-Type"].startswith("text/event-stream")
        first = await asyncio.wait_for(answer.content.readuntil(b"\n\n"), timeout=60)
        assert b'"unacknowledged": 1' in first
        backend.release.set()
        rest = await asyncio.wait_for(answer.content.read(), timeout=60)
        assert b'"unacknowledged": 0' in rest


async def test_the_homeserver_site_passes_matrix_and_keeps_the_admin_api_in(
        site: Site, backend: Backend) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/_matrix/client/versions", "/_matrix/federation/v1/version",
                     "/_synapse/client/pick_idp", "/_synapse/admin/v1/users/@a:b/admin",
                     "/_synapse/admin/v2/users"):
            async with session.get(site.homeserver + path) as answer:
                assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
    assert backend.homeserver_paths == [
        "/_matrix/client/versions", "/_matrix/federation/v1/version", "/_synapse/client/pick_idp"]
