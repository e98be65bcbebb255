"""De-duplication: "is a member already working on this defender?" without revealing
records: the coalition's linkage key, encoded queries and answers, contact handshakes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from federation.transport import MatrixTransport
from node.core.api.framework import Endpoint
from node.core.registry import Registry
from node.core.runtime import Node
from node.core.store.coalitions import Coalition
from node.features.dedup import pages
from node.features.dedup.api import DedupEndpoints
from node.features.dedup.service import (
    CheckState,
    DedupError,
    drop_coalition,
    key_state,
    load_checks,
    matchable_cases,
    on_dedup_answer,
    on_dedup_query,
    run_dedup_duties,
    start_linkage_key,
    start_overlap_checks,
)

__all__ = [
    "CheckState",
    "DedupError",
    "DedupFeature",
    "key_state",
    "load_checks",
    "matchable_cases",
    "start_overlap_checks",
]


def _endpoints(node: Node, now: Callable[[], int]) -> Sequence[Endpoint]:
    return DedupEndpoints(node).endpoints()


async def _duties(node: Node, transport: MatrixTransport) -> None:
    await run_dedup_duties(node)


async def _first_linkage_key(node: Node, coalition: Coalition, now: int) -> None:
    """The coalition's creator makes its first linkage key."""
    await start_linkage_key(node, now, coalition.coalition_id)


async def _coalition_left(node: Node, transport: MatrixTransport, coalition: Coalition) -> None:
    """This node left ``coalition``: its linkage key and index go; nothing is asked or
    answered there any more."""
    await drop_coalition(node, coalition.coalition_id)


class DedupFeature:
    name = "dedup"

    def register(self, registry: Registry) -> None:
        registry.handle_kinds(["dedup-query"], on_dedup_query)
        registry.handle_kinds(["dedup-answer"], on_dedup_answer)
        registry.duties.append(_duties)
        registry.coalition_created.append(_first_linkage_key)
        registry.coalition_left.append(_coalition_left)
        registry.endpoints.append(_endpoints)
        registry.add_pages(pages.ROUTES, templates=Path(__file__).parent / "templates")
