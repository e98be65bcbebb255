"""Figures for advocacy: aggregates with small-cell suppression, the overlap estimate,
publishing them to each coalition (decision 0032), the coalition view and its charts, the SDG
16.10.1 report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from federation.transport import MatrixTransport
from node.core.api.framework import Endpoint
from node.core.registry import Registry
from node.core.runtime import Node
from node.features.figures import cli, pages
from node.features.figures.api import AdvocacyEndpoints
from node.features.figures.coalition_api import CoalitionViewEndpoints
from node.features.figures.publishing import run_publication_duties, stop_publishing

__all__ = ["FiguresFeature"]


def _endpoints(node: Node, now: Callable[[], int]) -> Sequence[Endpoint]:
    return [*AdvocacyEndpoints(node, now).endpoints(),
            *CoalitionViewEndpoints(node, now).endpoints()]


async def _duties(node: Node, transport: MatrixTransport) -> None:
    await run_publication_duties(node)


class FiguresFeature:
    name = "figures"

    def register(self, registry: Registry) -> None:
        registry.duties.append(_duties)
        registry.coalition_left.append(stop_publishing)
        registry.endpoints.append(_endpoints)
        registry.add_pages(pages.ROUTES, templates=Path(__file__).parent / "templates")
        registry.commands.append(cli.add_commands)
