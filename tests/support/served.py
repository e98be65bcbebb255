"""A node served for real as ``minga run`` serves it (``node.core.server.serve``: web, API,
``/health``, metrics, federation loop) in this process, and Caddy in front of it with TLS from
the throwaway test CA. For the reverse-proxy, health and metrics tests (decision 0028)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from deploy.homeserver import free_port
from deploy.processes import die_with_parent
from deploy.tls import ThrowawayCA
from node.assembly import node_registry
from node.core.runtime import Node, open_node
from node.core.server import serve
from tests.support.sharing import eventually, passphrase_env


def configure(config: Path, *, trusted_proxies: Sequence[str] = (),
              metrics_port: int | None = None) -> None:
    """Add the proxy and metrics settings to the ``node.toml`` that ``minga init`` wrote."""
    text = config.read_text(encoding="utf-8")
    proxies = ", ".join(f'"{address}"' for address in trusted_proxies)
    text = text.replace("[http]\n", f"[http]\ntrusted_proxies = [{proxies}]\n", 1)
    if metrics_port is not None:
        text += f'\n[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n'
    config.write_text(text, encoding="utf-8")


@dataclass
class Served:
    node: Node
    base: str  # the node's own web port, straight (no proxy)
    metrics: str | None  # http://127.0.0.1:PORT/metrics


@asynccontextmanager
async def served(config: Path) -> AsyncIterator[Served]:
    """Open the node in ``config`` and serve it as ``minga run`` does until the block ends."""
    with passphrase_env():
        async with open_node(config) as node:
            stop = asyncio.Event()
            task = asyncio.create_task(serve(node, node_registry(), stop))
            http, metrics = node.config.http, node.config.metrics.address
            running = Served(node, f"http://{http.host}:{http.port}",
                             f"http://{metrics[0]}:{metrics[1]}/metrics" if metrics else None)
            try:
                await eventually(lambda: _answers(running.base + "/health"), timeout=60,
                                 what="the node serving")
                yield running
            finally:
                stop.set()
                await task


async def _answers(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as answer:
            return answer.status in (200, 503)
    except aiohttp.ClientError:
        return False


@dataclass
class Caddy:
    url: str
    ca_certificate: Path

    def client_ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_certificate))


@contextlib.contextmanager
def caddy_in_front(directory: Path, upstream_port: int) -> Iterator[Caddy]:
    """Debian's Caddy serving https://127.0.0.1:PORT with a certificate of the throwaway CA,
    forwarding to the node on ``upstream_port`` (Caddy writes X-Forwarded-For/-Proto)."""
    binary = shutil.which("caddy")
    assert binary, "Caddy is missing: deploy/bootstrap.sh installs Debian's caddy package"
    directory.mkdir(parents=True, exist_ok=True)
    ca = ThrowawayCA(directory / "ca")
    certificate = ca.issue_server_certificate(directory / "tls")
    port = free_port()
    caddyfile = directory / "Caddyfile"
    caddyfile.write_text(
        "{\n\tadmin off\n\tauto_https disable_redirects\n"
        f"\tstorage file_system {directory / 'data'}\n}}\n"
        f"https://127.0.0.1:{port} {{\n"
        f"\ttls {certificate.certificate} {certificate.private_key}\n"
        f"\treverse_proxy 127.0.0.1:{upstream_port}\n}}\n", encoding="utf-8")
    env = {**os.environ, "HOME": str(directory), "XDG_DATA_HOME": str(directory / "data"),
           "XDG_CONFIG_HOME": str(directory / "config")}
    with (directory / "caddy.log").open("ab") as log:
        process = subprocess.Popen(
            [binary, "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
            env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    try:
        _wait_for_port(port, process, directory / "caddy.log")
        yield Caddy(f"https://127.0.0.1:{port}", ca.certificate_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"Caddy stopped: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise AssertionError("Caddy did not listen within 30 s")


def client_from(address: str, ssl_context: ssl.SSLContext | None = None
                ) -> aiohttp.ClientSession:
    """A browser whose connections come from ``address`` (127.0.0.2, 127.0.0.3, ...)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0),
                                     ssl=ssl_context if ssl_context is not None else False)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True))
