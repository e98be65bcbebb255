"""Urgent alerts: sending, answering and escalating them, each member's alert room per
coalition, the staff watchers that get a push, the live alert pages and ``minga alert``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from federation.transport import MatrixTransport
from node.core.api.framework import Endpoint
from node.core.monitoring import Reading
from node.core.registry import Registry
from node.core.runtime import Node
from node.core.web.routes import DashboardPanel
from node.features.alerts import cli, pages
from node.features.alerts.api import AlertEndpoints
from node.features.alerts.room import alert_room_issuer, knows_alert_room, replace_alert_room
from node.features.alerts.service import (
    bus_of,
    list_alerts,
    on_alert,
    on_alert_ack,
    on_coalition_left,
    run_acknowledgements,
    run_escalation,
)
from node.features.alerts.watchers import run_alert_watchers

__all__ = ["AlertsFeature"]


def _endpoints(node: Node, now: Callable[[], int]) -> Sequence[Endpoint]:
    return AlertEndpoints(node).endpoints()


async def _acknowledgements(node: Node, transport: MatrixTransport) -> None:
    await run_acknowledgements(node)


async def _unacknowledged(node: Node) -> Sequence[Reading]:
    waiting = sum(1 for state in await list_alerts(node) if state.unacknowledged)
    return [Reading("minga_alerts_unacknowledged",
                    "Alerts still waiting: ours not acknowledged by a recipient, or received"
                    " and not yet answered by our staff.", waiting)]


def _close_streams(node: Node) -> None:
    bus_of(node).close()


class AlertsFeature:
    name = "alerts"

    def register(self, registry: Registry) -> None:
        registry.handle_kinds(["alert"], on_alert)
        registry.handle_kinds(["alert-ack"], on_alert_ack)
        registry.duties.extend([run_alert_watchers, _acknowledgements])
        registry.server_tasks.append(run_escalation)
        registry.shutdown_hooks.append(_close_streams)
        registry.room_recognisers.append(alert_room_issuer)
        registry.room_replacers.append(replace_alert_room)
        registry.room_owners.append(knows_alert_room)
        registry.coalition_left.append(on_coalition_left)
        registry.endpoints.append(_endpoints)
        registry.add_pages(pages.ROUTES, templates=Path(__file__).parent / "templates")
        registry.web.static_dirs.append(Path(__file__).parent / "static")
        registry.web.dashboard_panels.append(
            DashboardPanel("alerts/_waiting.html", pages.waiting_alerts_panel))
        registry.commands.append(cli.add_alert_commands)
        registry.metrics.append(_unacknowledged)
