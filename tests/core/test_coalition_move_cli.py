"""``minga coalition move``: what it refuses (the move itself runs against real homeservers in
test_coalition_move_federated.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from node.cli import main
from tests.support.offline_node import make_offline_node, passphrase_in_environment


async def test_the_move_command_needs_the_seizure_said_and_a_coalition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = await make_offline_node(tmp_path / "node")
    with passphrase_in_environment():
        assert main(["--config", str(config), "coalition", "move"]) != 0
    assert "--creator-seized" in capsys.readouterr().err
    with passphrase_in_environment():
        assert await asyncio.to_thread(
            main, ["--config", str(config), "coalition", "move", "--creator-seized"]) != 0
    assert "in no coalition yet" in capsys.readouterr().err
