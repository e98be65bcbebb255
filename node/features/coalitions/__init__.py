"""Managing this node's coalitions from the web and the API (decision 0032): create one, join
one this node was invited to, invite another node's account, leave one, and see each with its
verified members. The same core functions as ``minga coalition create|join|invite|leave``,
with the features' ``coalition_created`` and ``coalition_left`` hooks of the one registry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from node.core.api.framework import Endpoint
from node.core.registry import Registry
from node.core.runtime import Node
from node.features.coalitions import api, pages

__all__ = ["CoalitionsFeature"]


class CoalitionsFeature:
    name = "coalitions"

    def register(self, registry: Registry) -> None:
        # The hooks are those of the registry being built: the one the server serves.
        def endpoints(node: Node, now: Callable[[], int]) -> Sequence[Endpoint]:
            return api.CoalitionEndpoints(node, registry).endpoints()

        registry.endpoints.append(endpoints)
        registry.add_pages(pages.routes(registry), templates=Path(__file__).parent / "templates")
