"""``minga run``: the node's HTTP server (API and web UI) and its federation loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from aiohttp import web

from node.core.api.app import mount_api
from node.core.doctor_probe import homeserver_findings
from node.core.federation_loop import run_federation
from node.core.lock import LOCK_SIGNAL, lock_node, write_pid_file
from node.core.monitoring import NodeMetrics
from node.core.monitoring.health import mount_health
from node.core.monitoring.metrics import latency_middleware, metrics_app
from node.core.registry import Registry
from node.core.runtime import Node, NodeNotReady, open_node
from node.core.web.app import mount_web
from node.core.web.proxy import mount_proxy

log = logging.getLogger("minga.node")
STARTUP_CHECK_SECONDS = 60.0


def build_app(node: Node, registry: Registry) -> web.Application:
    app = web.Application(client_max_size=2 * 1024 * 1024)
    # First: the later middleware sees the client as the trusted proxy reported it.
    mount_proxy(app, node.config.http)
    app.middlewares.append(latency_middleware(node.part(NodeMetrics)))
    mount_api(app, node, registry.endpoints)
    mount_web(app, node, registry.web)
    mount_health(app, node)
    return app


async def serve(node: Node, registry: Registry, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set, then shut down the server and the loop cleanly."""
    node.request_stop = stop.set
    runner = web.AppRunner(build_app(node, registry), access_log=None)
    await runner.setup()
    http = node.config.http
    await web.TCPSite(runner, http.host, http.port).start()
    log.info("node %s serving on http://%s:%d/", node.org_id, http.host, http.port)
    try:
        metrics_runner = await _serve_metrics(node, registry)
    except NodeNotReady:
        await runner.cleanup()
        raise
    async with node.transport() as transport:
        tasks = [asyncio.create_task(run_federation(node, transport, registry)),
                 *(asyncio.create_task(task(node)) for task in registry.server_tasks)]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for hook in registry.shutdown_hooks:  # e.g. ends open streams: the server stops now
                hook(node)
            await runner.cleanup()
            if metrics_runner is not None:
                await metrics_runner.cleanup()
    log.info("node %s %s", node.org_id, "locked and stopped" if node.locked else "stopped")


async def _serve_metrics(node: Node, registry: Registry) -> web.AppRunner | None:
    """Prometheus metrics on ``[metrics] listen``, apart from the proxied web port."""
    address = node.config.metrics.address
    if address is None:
        return None
    runner = web.AppRunner(metrics_app(node, registry.metrics), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, *address).start()
    except OSError as error:
        await runner.cleanup()
        raise NodeNotReady(f"[metrics] listen: cannot listen on {node.config.metrics.listen}"
                           f" ({error.strerror})") from None
    log.info("metrics on http://%s:%d/metrics", *address)
    return runner


async def run_node(config: str | Path | None, registry: Registry) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_node(config) as node:
        pid_file = write_pid_file(node.config.node.data_dir)
        loop.add_signal_handler(LOCK_SIGNAL, _lock_on_signal, node)
        logging.basicConfig(
            level=node.config.node.log_level.value.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        # matrix-nio logs event contents at debug level; Minga's own logs never carry content.
        logging.getLogger("nio").setLevel(logging.WARNING)
        check = asyncio.create_task(_explain_homeserver_problems(node))
        try:
            await serve(node, registry, stop)
        finally:
            check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await check
            loop.remove_signal_handler(LOCK_SIGNAL)
            pid_file.unlink(missing_ok=True)


async def _explain_homeserver_problems(node: Node) -> None:
    """Rate limiting, an unsupported room version, closed federation...: said once at start,
    with the fix (``minga doctor`` checks the same and more). Never stops the node."""
    try:
        findings = await asyncio.wait_for(homeserver_findings(node), STARTUP_CHECK_SECONDS)
    except (TimeoutError, NodeNotReady):
        log.warning("could not check the homeserver at start; run `minga doctor`")
        return
    for finding in findings:
        log.warning("%s", finding.line())


def _lock_on_signal(node: Node) -> None:
    """``minga lock`` from another process: lock (audit, sessions, keys), then stop."""
    task = asyncio.ensure_future(lock_node(node, actor="minga lock"))
    _LOCKS.add(task)

    def done(finished: asyncio.Future[int]) -> None:
        _LOCKS.discard(finished)
        if finished.cancelled() or finished.exception() is not None:
            log.error("locking failed; stopping the node anyway")
            node.data_key, node.locked = None, True
            node.request_stop()

    task.add_done_callback(done)


_LOCKS: set[asyncio.Future[int]] = set()
