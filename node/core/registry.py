"""The registry: how features plug into the node core.

The core never imports a feature. Each feature is an object with a ``name`` and a
``register(registry)`` method that adds what it brings: handlers for the record kinds it owns,
duties that run beside the sync engine, rooms it recognises among invites, rooms a restored node
replaces (those its old account made, decision 0024), hooks, CLI commands, API endpoint groups,
web pages, templates, static files, metric readings and doctor checks. ``node.assembly`` lists
the features a node runs and builds the one registry the server, the sync host and the ``minga``
command use.

Per-node state belongs to the node, not to a module: a feature keeps it in a part of the node
(:meth:`node.core.runtime.Node.part`).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from federation.transport import MatrixTransport, TimelineEvent
from node.core.api.app import EndpointGroup
from node.core.doctor_probe import DoctorCheck
from node.core.monitoring import MetricSource
from node.core.runtime import Node
from node.core.store.coalitions import Coalition
from node.core.sync_host import RecordHandler, RoomOwnerCheck, RoomRecogniser, RoomReplacer
from node.core.web.routes import PageRoute, WebExtensions

Duty = Callable[[Node, MatrixTransport], Coroutine[Any, Any, None]]
"""Runs beside the sync engine while the federation loop runs, until cancelled."""

ServerTask = Callable[[Node], Coroutine[Any, Any, None]]
"""Runs while ``minga run`` serves, until cancelled."""

ShutdownHook = Callable[[Node], None]
"""Called when ``minga run`` stops, before the HTTP server closes (ends open streams)."""

CoalitionCreated = Callable[[Node, Coalition, int], Awaitable[None]]
"""Called after this node created a coalition, with the time in Unix seconds."""

CoalitionLeft = Callable[[Node, MatrixTransport, Coalition], Awaitable[None]]
"""Called after this node left a coalition: stop everything for it (decision 0032)."""

CommandGroup = Callable[[Any], None]
"""Adds a feature's commands to the ``minga`` parser's subcommands."""


class Feature(Protocol):
    name: str

    def register(self, registry: Registry) -> None: ...


@dataclass
class Registry:
    """Everything the features of one node brought; filled once, before the node runs."""

    features: list[str] = field(default_factory=list)
    record_handlers: dict[str, RecordHandler] = field(default_factory=dict)
    duties: list[Duty] = field(default_factory=list)
    server_tasks: list[ServerTask] = field(default_factory=list)
    shutdown_hooks: list[ShutdownHook] = field(default_factory=list)
    room_recognisers: list[RoomRecogniser] = field(default_factory=list)
    room_replacers: list[RoomReplacer] = field(default_factory=list)
    room_owners: list[RoomOwnerCheck] = field(default_factory=list)
    coalition_created: list[CoalitionCreated] = field(default_factory=list)
    coalition_left: list[CoalitionLeft] = field(default_factory=list)
    commands: list[CommandGroup] = field(default_factory=list)
    endpoints: list[EndpointGroup] = field(default_factory=list)
    doctor_checks: list[DoctorCheck] = field(default_factory=list)
    web: WebExtensions = field(default_factory=WebExtensions)
    # Numbers a feature adds to the node's Prometheus metrics, read at each scrape.
    metrics: list[MetricSource] = field(default_factory=list)

    def handle_kinds(self, kinds: Iterable[str], handler: RecordHandler) -> None:
        for kind in kinds:
            if kind in self.record_handlers:
                raise ValueError(f"two features handle records of kind {kind!r}")
            self.record_handlers[kind] = handler

    def add_pages(self, routes: Iterable[PageRoute], *, templates: Path | None = None) -> None:
        self.web.pages.extend(routes)
        if templates is not None:
            self.web.template_dirs.append(templates)

    async def recognise_room(self, node: Node, state: Sequence[TimelineEvent]) -> str | None:
        for recognise in self.room_recognisers:
            org_id = await recognise(node, state)
            if org_id is not None:
                return org_id
        return None

    async def replace_held_rooms(self, node: Node, transport: MatrixTransport,
                                 held: frozenset[str]) -> set[str]:
        replaced: set[str] = set()
        for replace in self.room_replacers:
            replaced |= await replace(node, transport, held - replaced)
        return replaced

    async def owns_room(self, node: Node, org_id: str, room_id: str) -> bool:
        for owns in self.room_owners:
            if await owns(node, org_id, room_id):
                return True
        return False

    async def after_coalition_created(self, node: Node, coalition: Coalition, now: int) -> None:
        for hook in self.coalition_created:
            await hook(node, coalition, now)

    async def after_coalition_left(self, node: Node, transport: MatrixTransport,
                                   coalition: Coalition) -> None:
        for hook in self.coalition_left:
            await hook(node, transport, coalition)


def build_registry(features: Sequence[Feature]) -> Registry:
    registry = Registry()
    for feature in features:
        if feature.name in registry.features:
            raise ValueError(f"feature {feature.name!r} is listed twice")
        registry.features.append(feature.name)
        feature.register(registry)
    return registry


def add_command_groups(commands: argparse._SubParsersAction[Any],
                       registry: Registry) -> None:
    for add in registry.commands:
        add(commands)
