"""Sharing and received records: the share dialog, what other members shared with this node,
and the members' directory. The sharing path itself (consent gate, sealing) is the core's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from node.core.api.framework import Endpoint
from node.core.registry import Registry
from node.core.runtime import Node
from node.features.sharing import directory, pages
from node.features.sharing.api import SharingEndpoints

__all__ = ["SharingFeature"]


def _endpoints(node: Node, now: Callable[[], int]) -> Sequence[Endpoint]:
    return SharingEndpoints(node, now).endpoints()


class SharingFeature:
    name = "sharing"

    def register(self, registry: Registry) -> None:
        registry.endpoints.append(_endpoints)
        registry.add_pages([*pages.ROUTES, *directory.ROUTES],
                           templates=Path(__file__).parent / "templates")
