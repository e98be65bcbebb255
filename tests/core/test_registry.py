"""The registry through which features plug into the core, and parts of the node."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from federation.transport import MatrixTransport, TimelineEvent
from node.assembly import FEATURES, node_registry
from node.core.registry import Registry, build_registry
from node.core.runtime import Node
from node.core.store.coalitions import Coalition
from node.features.campaigns.records import CAMPAIGN_KINDS

_COALITION = Coalition("!a:test", "!a:test", "A", datetime(2026, 1, 1, tzinfo=UTC))


def _node() -> Node:
    return Node(config=cast(Any, None), store=cast(Any, None), keys=cast(Any, None),
                own=cast(Any, None))


class _Handles:
    def __init__(self, name: str, kinds: Sequence[str]) -> None:
        self.name, self.kinds = name, kinds

    def register(self, registry: Registry) -> None:
        registry.handle_kinds(self.kinds, _ignore)


async def _ignore(*_: object) -> None:
    return None


def test_the_node_runs_every_feature_once() -> None:
    registry = node_registry()
    assert registry.features == [feature.name for feature in FEATURES]
    assert sorted(registry.features) == ["accounts", "alerts", "backup", "campaigns", "cases",
                                         "coalitions", "dedup", "evidence", "figures", "keys",
                                         "sharing"]


def test_each_record_kind_that_a_feature_acts_on_has_its_handler() -> None:
    handled = set(node_registry().record_handlers)
    assert handled == {"alert", "alert-ack", "dedup-query", "dedup-answer", *CAMPAIGN_KINDS,
                       "case", "retraction",  # evidence: files that come with cases
                       "countersign-request", "countersignature"}
    assert len(CAMPAIGN_KINDS) == 6


def test_features_bring_their_pages_commands_and_duties() -> None:
    registry = node_registry()
    paths = {route.path for route in registry.web.pages}
    assert {"/login", "/cases", "/alerts", "/received", "/members"} <= paths
    assert len(registry.web.template_dirs) == 10  # every feature with pages has its templates
    assert all(directory.is_dir() for directory in registry.web.template_dirs)
    assert sorted(d.parent.name for d in registry.web.static_dirs) == ["alerts", "evidence"]
    assert len(registry.duties) == 6 and len(registry.server_tasks) == 1
    assert len(registry.commands) == 7 and len(registry.coalition_created) == 1


def test_two_features_may_not_handle_one_kind() -> None:
    with pytest.raises(ValueError, match="two features handle records of kind 'alert'"):
        build_registry([_Handles("a", ["alert"]), _Handles("b", ["case", "alert"])])


def test_a_feature_is_listed_once() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        build_registry([_Handles("a", ["x"]), _Handles("a", ["y"])])


async def test_the_first_recogniser_that_knows_a_room_names_its_member() -> None:
    registry = Registry()
    asked: list[str] = []

    async def nobody(node: Node, state: Sequence[TimelineEvent]) -> str | None:
        asked.append("nobody")
        return None

    async def member(node: Node, state: Sequence[TimelineEvent]) -> str | None:
        asked.append("member")
        return "org-b"

    async def never(node: Node, state: Sequence[TimelineEvent]) -> str | None:
        raise AssertionError("asked after the room was recognised")

    registry.room_recognisers.extend([nobody, member, never])
    assert await registry.recognise_room(_node(), []) == "org-b"
    assert asked == ["nobody", "member"]
    assert await Registry().recognise_room(_node(), []) is None


async def test_coalition_created_hooks_run_in_order_with_the_coalition_and_the_time() -> None:
    registry = Registry()
    calls: list[tuple[str, str, int]] = []

    async def first(node: Node, coalition: Coalition, now: int) -> None:
        calls.append(("first", coalition.coalition_id, now))

    async def second(node: Node, coalition: Coalition, now: int) -> None:
        calls.append(("second", coalition.coalition_id, now))

    registry.coalition_created.extend([first, second])
    await registry.after_coalition_created(_node(), _COALITION, 1_700_000_000)
    assert calls == [("first", "!a:test", 1_700_000_000), ("second", "!a:test", 1_700_000_000)]


async def test_coalition_left_hooks_run_in_order_with_the_transport_and_the_coalition() -> None:
    registry = Registry()
    calls: list[tuple[str, object, str]] = []
    transport = cast(MatrixTransport, object())

    async def first(node: Node, given: MatrixTransport, coalition: Coalition) -> None:
        calls.append(("first", given, coalition.coalition_id))

    async def second(node: Node, given: MatrixTransport, coalition: Coalition) -> None:
        calls.append(("second", given, coalition.coalition_id))

    registry.coalition_left.extend([first, second])
    await registry.after_coalition_left(_node(), transport, _COALITION)
    assert calls == [("first", transport, "!a:test"), ("second", transport, "!a:test")]


def test_a_part_is_made_once_per_node_and_never_shared() -> None:
    class Counter:
        def __init__(self) -> None:
            self.count = 0

    one, other = _node(), _node()
    one.part(Counter).count += 1
    one.part(Counter).count += 1
    assert one.part(Counter).count == 2
    assert other.part(Counter).count == 0
    assert one.part(Counter) is one.part(Counter)
    assert one.part(asyncio.Event) is not other.part(asyncio.Event)
