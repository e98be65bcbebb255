"""``minga run``: the node's HTTP server (API and web UI) and its federation loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from aiohttp import web

from node.core.api.app import mount_api
from node.core.federation_loop import run_federation
from node.core.runtime import Node, open_node
from node.core.web.app import mount_web
from node.features.alerts.service import bus_of, run_escalation

log = logging.getLogger("minga.node")


def build_app(node: Node) -> web.Application:
    app = web.Application(client_max_size=2 * 1024 * 1024)
    mount_api(app, node)
    mount_web(app, node)
    return app


async def serve(node: Node, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set, then shut down the server and the loop cleanly."""
    runner = web.AppRunner(build_app(node), access_log=None)
    await runner.setup()
    http = node.config.http
    await web.TCPSite(runner, http.host, http.port).start()
    log.info("node %s serving on http://%s:%d/", node.org_id, http.host, http.port)
    async with node.transport() as transport:
        loop_task = asyncio.create_task(run_federation(node, transport))
        escalation = asyncio.create_task(run_escalation(node))
        try:
            await stop.wait()
        finally:
            for task in (loop_task, escalation):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            bus_of(node).close()  # ends open alert streams, so the server stops at once
            await runner.cleanup()
    log.info("node %s stopped", node.org_id)


async def run_node(config: str | Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_node(config) as node:
        logging.basicConfig(
            level=node.config.node.log_level.value.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        # matrix-nio logs event contents at debug level; Minga's own logs never carry content.
        logging.getLogger("nio").setLevel(logging.WARNING)
        await serve(node, stop)
