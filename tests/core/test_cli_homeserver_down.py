"""A command that needs the homeserver, when it does not answer, says so and exits 2: no
traceback, and not "not invited" (the transport turns "no answer" into a TransportError)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from node.cli import main
from tests.support.offline_node import make_offline_node
from tests.support.sharing import passphrase_env


async def test_joining_with_the_homeserver_down_names_the_homeserver(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = await make_offline_node(tmp_path / "node")
    with passphrase_env():
        code = await _run(["--config", str(config), "coalition", "join", "!room:localhost",
                           "--wait", "0"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("minga: the homeserver: join failed: no answer")
    assert "Traceback" not in err and "invited" not in err


async def _run(argv: list[str]) -> int:
    """``main`` runs its own event loop: off this test's loop, in a thread."""
    return await asyncio.to_thread(main, argv)
