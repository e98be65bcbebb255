"""The node's cached list of coalitions survives being forgotten while it is read (the sync
host forgets it on every batch; a duty reading it at that moment got a TypeError)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.api_harness import serve_node
from tests.support.offline_node import make_offline_node


async def test_coalitions_forgotten_during_the_read_are_still_returned(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = await make_offline_node(tmp_path / "node")
    async with serve_node(config) as api:
        node = api.node
        real_read = node.store.read

        @asynccontextmanager
        async def read_then_forget() -> AsyncIterator[Any]:
            async with real_read() as tx:
                yield tx
            node.forget_coalitions()  # another task, as the read ends

        monkeypatch.setattr(node.store, "read", read_then_forget)
        node.forget_coalitions()
        assert await node.coalitions() == []
