"""Prometheus metrics of one node, in a ``CollectorRegistry`` the node holds (a node part).

Numbers are read from the store when Prometheus scrapes (so they are right after a restart and
cost nothing between scrapes): the outbox backlog, quarantined events, records shared and
received, seconds since the last sync; features add theirs through the registry as
:class:`Reading` sources (the alerts feature: unacknowledged alerts). HTTP latency is a
histogram observed by :func:`latency_middleware`, labelled only by method and the route's
*template* (``/cases/{record_id}``, never the path asked for), so no label can carry a case id.
Readings have no labels at all.

The metrics are served by :func:`metrics_app` on their own address (``[metrics] listen``),
never on the web interface's port that the reverse proxy exposes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from node.core.monitoring.sync_watch import RunningSync
from node.core.runtime import Node
from node.core.store.tables import ReceivedRecordRow, ShareRow
from node.core.web.routes import Handler
from sync.engine import read_status

_NAME: Final = re.compile(r"^minga_[a-z][a-z0-9_]*$")
METRICS_PATH: Final = "/metrics"
OTHER_ROUTE: Final = "other"
"""The route label of a request that matched no route (a 404): never the path itself."""


@dataclass(frozen=True)
class Reading:
    """One number at scrape time: a gauge, or a counter (``name`` without ``_total``)."""

    name: str
    help: str
    value: float
    counter: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or self.name.endswith("_total"):
            raise ValueError(f"metric name {self.name!r} must match minga_[a-z0-9_]+ and not"
                             " end in _total")


MetricSource = Callable[[Node], Awaitable[Sequence[Reading]]]
"""What a feature registers (``Registry.metrics``) to add its numbers to a scrape."""


class _Readings(Collector):
    def __init__(self) -> None:
        self.readings: tuple[Reading, ...] = ()

    def collect(self) -> Iterator[Metric]:
        for reading in self.readings:
            family = CounterMetricFamily if reading.counter else GaugeMetricFamily
            yield family(reading.name, reading.help, value=reading.value)


class NodeMetrics:
    """The node's metric registry (``node.part(NodeMetrics)``): never the global default."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_latency = Histogram(
            "minga_http_request_duration_seconds",
            "Time to answer an HTTP request of the web interface or API, by route template.",
            ["method", "route"], registry=self.registry)
        self._readings = _Readings()
        self.registry.register(self._readings)

    async def scrape(self, node: Node, sources: Sequence[MetricSource]) -> bytes:
        readings = list(await core_readings(node))
        for source in sources:
            readings.extend(await source(node))
        self._readings.readings = tuple(readings)
        return generate_latest(self.registry)


async def core_readings(node: Node, *, now: Callable[[], float] = time.time) -> list[Reading]:
    async with node.store.read() as tx:
        status = await read_status(tx.session)
        shared = await tx.session.scalar(select(func.count()).select_from(ShareRow))
        received = await tx.session.scalar(select(func.count()).select_from(ReceivedRecordRow))
    readings = [
        Reading("minga_outbox_queued_records", "Records queued in the outbox, not yet sealed.",
                status.queued_items),
        Reading("minga_outbox_unsent_events", "Sealed events waiting to be posted.",
                status.unsent_frames),
        Reading("minga_quarantined_events", "Events kept in quarantine (failed a check).",
                status.quarantined),
        Reading("minga_records_shared", "Record versions sent to a member (one per recipient).",
                int(shared or 0), counter=True),
        Reading("minga_records_received", "Record versions received from members.",
                int(received or 0), counter=True),
    ]
    last_sync_ms = node.part(RunningSync).last_sync_ms()
    if last_sync_ms is not None:
        readings.append(Reading("minga_seconds_since_last_sync",
                                "Seconds since the inbox last finished a sync with the"
                                " homeserver.", max(0.0, now() - last_sync_ms / 1000)))
    return readings


def route_label(request: web.Request) -> str:
    """The matched route's template (``/cases/{record_id}``), or ``other``."""
    info = request.match_info
    if info.http_exception is not None:
        return OTHER_ROUTE
    resource = info.route.resource
    return resource.canonical if resource is not None else OTHER_ROUTE


def latency_middleware(metrics: NodeMetrics) -> Middleware:
    @web.middleware
    async def timed(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            method = request.method if request.method in _METHODS else "other"
            metrics.http_latency.labels(method, route_label(request)).observe(
                time.perf_counter() - started)

    return timed


_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def metrics_app(node: Node, sources: Sequence[MetricSource]) -> web.Application:
    """The application served on ``[metrics] listen``: ``GET /metrics`` and nothing else."""
    metrics = node.part(NodeMetrics)

    async def serve(request: web.Request) -> web.Response:
        body = await metrics.scrape(node, sources)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get(METRICS_PATH, serve)
    return app
