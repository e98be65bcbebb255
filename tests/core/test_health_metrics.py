"""``GET /health`` and the Prometheus metrics of nodes served for real on a real homeserver
(decision 0028)."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy.homeserver import Homeserver, free_port, start_homeserver
from node.assembly import node_registry
from node.core.runtime import NodeNotReady, open_node
from node.core.server import serve
from node.core.store import Role
from tests.support.api_harness import SAMPLE_CASES
from tests.support.served import Served, configure, served
from tests.support.sharing import ORGS, eventually, form_coalition, new_member, passphrase_env

SERIES = ("minga_outbox_queued_records", "minga_outbox_unsent_events",
          "minga_quarantined_events", "minga_records_shared_total",
          "minga_records_received_total", "minga_seconds_since_last_sync",
          "minga_alerts_unacknowledged", "minga_http_request_duration_seconds_bucket")
ALERT = {"alert_type": "arrest", "country": "CO", "text": "Sntl detenida en Suba",
         "asks": ["legal_support"]}
LABELS = frozenset({"method", "route", "le"})
_ROUTE = re.compile(r"^(other|/[a-z0-9/_.{}-]*)$")


async def _health(node: Served) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, \
            session.get(node.base + "/health") as answer:
        return answer.status, await answer.json()


async def _healthy(node: Served) -> dict[str, Any]:
    async def ok() -> dict[str, Any] | None:
        status, body = await _health(node)
        return body if status == 200 else None

    return await eventually(ok, timeout=60, what="a green /health")


async def _failing(node: Served, problem: str) -> dict[str, Any]:
    async def failing() -> dict[str, Any] | None:
        status, body = await _health(node)
        return body if status == 503 and problem in body.get("problems", []) else None

    return await eventually(failing, timeout=60, what=f"/health saying {problem!r}")


async def test_health_is_green_on_a_running_node_and_says_nothing_secret(
        homeserver: Homeserver, tmp_path: Path) -> None:
    config = await new_member(homeserver, tmp_path / "node", *ORGS[0])
    async with served(config) as node:
        body = await _healthy(node)
        assert body["status"] == "ok"
        assert isinstance(body["seconds_since_last_sync"], int)
        text = str(body)
        login = await node.node.matrix_login()
        for secret in (node.node.org_id, homeserver.url, login.user_id, login.access_token,
                       ORGS[0][0]):
            assert secret not in text


async def test_health_fails_naming_the_store_when_it_is_closed(
        homeserver: Homeserver, tmp_path: Path) -> None:
    config = await new_member(homeserver, tmp_path / "node", *ORGS[0])
    async with served(config) as node:
        await _healthy(node)
        await node.node.store.close()
        body = await _failing(node, "store: closed or not answering")
        assert body["status"] == "failing"


@pytest.fixture
def own_homeserver(tmp_path: Path) -> Iterator[Homeserver]:
    server = start_homeserver(tmp_path / "homeserver")
    try:
        yield server
    finally:
        server.stop()


async def test_health_fails_naming_the_homeserver_when_it_is_down(
        own_homeserver: Homeserver, tmp_path: Path) -> None:
    config = await new_member(own_homeserver, tmp_path / "node", *ORGS[0])
    async with served(config) as node:
        await _healthy(node)
        own_homeserver.stop()
        body = await _failing(node, "homeserver: not answering")
        assert own_homeserver.url not in str(body)


async def _scrape(node: Served) -> dict[str, float]:
    """Every sample of a scrape as ``name`` or ``name{method,route}``; checks that the only
    labels are an HTTP method, a route template and histogram buckets."""
    assert node.metrics is not None
    async with aiohttp.ClientSession() as session, session.get(node.metrics) as answer:
        assert answer.status == 200
        text = await answer.text()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert set(sample.labels) <= LABELS, sample
            assert _ROUTE.match(sample.labels.get("route", "/")), sample
            key = sample.name
            if "route" in sample.labels and "le" not in sample.labels:
                key += f"{{{sample.labels['method']} {sample.labels['route']}}}"
            samples[key] = sample.value
    return samples


def _value(samples: dict[str, float], name: str) -> float:
    return samples[name]


async def test_metrics_move_after_a_share_and_carry_no_case_or_name(
        homeserver: Homeserver, tmp_path: Path) -> None:
    configs = [await new_member(homeserver, tmp_path / f"org{i}", *ORGS[i]) for i in range(2)]
    await form_coalition(configs)
    for config in configs:
        configure(config, metrics_port=free_port())
    async with served(configs[0]) as a, served(configs[1]) as b:
        for node in (a, b):  # a sync finished: every series is there
            await _healthy(node)
        before_a, before_b = await _scrape(a), await _scrape(b)
        for name in SERIES:
            assert any(key.startswith(name) for key in before_a), f"{name} is missing"
        async with a.node.store.transaction() as tx:
            token = await tx.tokens.create("metrics-test", Role.editor)
        headers = {"Authorization": f"Bearer {token}"}
        case = SAMPLE_CASES["cauca"]
        async with aiohttp.ClientSession(headers=headers) as api:
            async with api.post(a.base + "/api/v1/cases", json=case) as made:
                assert made.status == 201, await made.text()
                record_id = (await made.json())["record_id"]
            share = {"recipients": [b.node.org_id], "fields": ["country", "narrative"]}
            async with api.post(a.base + f"/api/v1/cases/{record_id}/share", json=share) as done:
                assert done.status == 200, await done.text()
            async with api.post(a.base + "/api/v1/alerts", json=ALERT) as alert:
                assert alert.status == 201, await alert.text()

        after_a = await _scrape(a)
        assert (_value(after_a, "minga_records_shared_total")
                > _value(before_a, "minga_records_shared_total"))

        async def received() -> dict[str, float] | None:
            samples = await _scrape(b)
            moved = (_value(samples, "minga_records_received_total")
                     > _value(before_b, "minga_records_received_total"))
            return samples if moved else None

        await eventually(received, what="the recipient's received counter moving")

        async def alert_waiting() -> bool:  # a feature's number, through the registry
            return _value(await _scrape(b), "minga_alerts_unacknowledged") == 1

        assert _value(before_b, "minga_alerts_unacknowledged") == 0
        await eventually(alert_waiting, what="the received alert counted as waiting")
        shared_route = ("minga_http_request_duration_seconds_count"
                        "{POST /api/v1/cases/{record_id}/share}")
        assert _value(after_a, shared_route) >= 1

        async with aiohttp.ClientSession() as session:
            async with session.get(a.metrics or "") as answer:
                text = await answer.text()
            async with session.get(a.base + "/metrics") as web_port:
                assert web_port.status == 404  # not on the port the proxy exposes
        names = [case["title"], case["place"], case["victims"][0]["name"], ORGS[0][0], ORGS[1][0],
                 ALERT["text"]]
        for needle in [record_id, a.node.org_id, b.node.org_id, *names]:
            assert needle not in text


async def test_a_taken_metrics_address_stops_the_node_naming_the_setting(
        homeserver: Homeserver, tmp_path: Path) -> None:
    config = await new_member(homeserver, tmp_path / "node", *ORGS[0])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        configure(config, metrics_port=taken.getsockname()[1])
        with passphrase_env():
            async with open_node(config) as node:
                with pytest.raises(NodeNotReady, match=r"\[metrics\] listen: cannot listen"):
                    await serve(node, node_registry(), asyncio.Event())
                async with aiohttp.ClientSession() as session:  # the web port was closed again
                    with pytest.raises(aiohttp.ClientConnectionError):
                        await session.get(f"http://127.0.0.1:{node.config.http.port}/health")
