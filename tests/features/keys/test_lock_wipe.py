"""Lock and wipe do what they say (issue M13): `minga lock` on a running node, "Lock now",
`POST /api/v1/node/lock`, and `minga wipe`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from deploy.homeserver import free_port
from node.cli import main
from node.core.lock import PID_FILE_NAME
from node.core.runtime import NodeNotReady, open_node
from node.core.store import Role, staff_users
from node.core.store.unlock import KEY_FILE_NAME
from node.core.store.users import StaffSessionRow
from tests.support.api_harness import serve_node
from tests.support.offline_node import make_offline_node, passphrase_in_environment
from tests.support.sharing import NodeProcess
from tests.support.web import add_staff, serve_web


async def _audit_actions(config: Path) -> list[tuple[str, str]]:
    async with open_node(config) as node, node.store.read() as tx:
        return [(event.actor, event.action) for event in await tx.audit.recent(limit=20)]


async def _session_count(config: Path) -> int:
    async with open_node(config) as node, node.store.read() as tx:
        return int(await tx.session.scalar(select(func.count()).select_from(StaffSessionRow))
                   or 0)


async def _start_session(config: Path) -> str:
    async with open_node(config) as node:
        await add_staff(node, "amaru", Role.admin)
        async with node.store.transaction() as tx:
            user = await staff_users(tx).by_username("amaru")
            assert user is not None
            await tx.tokens.create("amaru", Role.admin)
            token = await tx.tokens.create("ana", Role.viewer)
            await staff_users(tx).start_session(user.user_id)
    return token


async def test_lock_now_ends_every_session_and_stops_the_node(tmp_path: Path) -> None:
    config = await make_offline_node(tmp_path / "node")
    async with serve_web(config) as web_node:
        stopped: list[bool] = []
        web_node.node.request_stop = lambda: stopped.append(True)
        editor = await web_node.logged_in("beatriz")
        refused = await editor.get("/admin/keys")
        assert refused.status == 403
        admin = await web_node.logged_in("amaru")
        page = await admin.get("/admin/keys")
        assert page.status == 200 and "Lock now" in page.text
        locked = await admin.post("/admin/keys/lock", {})
        assert locked.status == 200 and "The node is locked" in locked.text
        assert stopped == [True] and web_node.node.locked and web_node.node.data_key is None
        after = await editor.get("/cases")
        assert after.path == "/login"  # the editor's session ended too
        async with web_node.node.store.read() as tx:
            events = [(e.actor, e.action) for e in await tx.audit.recent(limit=5)]
            assert ("amaru", "node.lock") in events
            sessions = await tx.session.scalar(select(func.count()).select_from(StaffSessionRow))
            assert sessions == 0


async def test_the_api_locks_the_node_and_then_lets_nobody_in(tmp_path: Path) -> None:
    config = await make_offline_node(tmp_path / "node")
    async with serve_node(config) as api:
        stopped: list[bool] = []
        api.node.request_stop = lambda: stopped.append(True)
        await api.json("POST", "/node/lock", Role.editor, expect=403)
        answer = await api.json("POST", "/node/lock", Role.admin)
        assert answer["locked"] is True and stopped == [True]
        await api.json("GET", "/status", Role.admin, expect=401)


def _served_offline_node(directory: Path) -> Path:
    config = asyncio.run(make_offline_node(directory))
    config.write_text(config.read_text() + f"\n[http]\nport = {free_port()}\n")
    return config


def test_minga_lock_stops_a_running_node_and_a_restart_needs_the_passphrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config = _served_offline_node(tmp_path / "node")
    with passphrase_in_environment():
        token = asyncio.run(_start_session(config))
    port = int(config.read_text().rsplit("port = ", 1)[1])
    process = NodeProcess(config, f"http://127.0.0.1:{port}/api/v1", tmp_path / "run.log")
    process.start()
    try:
        asyncio.run(process.ready(token))
        assert (tmp_path / "node" / PID_FILE_NAME).exists()
        assert main(["--config", str(config), "lock"]) == 0
        assert "Locked: the node stopped serving" in capsys.readouterr().out
        assert process.process is not None and process.process.wait(timeout=30) == 0
    finally:
        process.stop()
    assert not (tmp_path / "node" / PID_FILE_NAME).exists()
    with passphrase_in_environment():
        assert ("minga lock", "node.lock") in asyncio.run(_audit_actions(config))
        assert asyncio.run(_session_count(config)) == 0
    env = {k: v for k, v in os.environ.items() if k != "MINGA_PASSPHRASE"}
    restart = subprocess.run([sys.executable, "-m", "node.cli", "--config", str(config), "run"],
                             env=env, stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=60, check=False)
    assert restart.returncode == 2 and b"no passphrase is available" in restart.stderr


def test_wipe_leaves_a_store_the_passphrase_cannot_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    data_dir = tmp_path / "node"
    config = asyncio.run(make_offline_node(data_dir))
    key_before = (data_dir / KEY_FILE_NAME).read_bytes()
    with passphrase_in_environment():
        assert main(["--config", str(config), "wipe"]) == 2
        assert "--yes" in capsys.readouterr().err
        assert main(["--config", str(config), "wipe", "--yes"]) == 0
        printed = capsys.readouterr().out
        assert "the passphrase no longer opens" in printed
        assert "store.db" in printed and "node.toml" in printed
        assert not (data_dir / KEY_FILE_NAME).exists()
        with pytest.raises(NodeNotReady, match="was wiped"):
            asyncio.run(_audit_actions(config))
        assert main(["--config", str(config), "status"]) == 2
        assert "only a backup restores it" in capsys.readouterr().err.lower()
        # The audit entry was written before the key was destroyed: with a copy of the old key
        # (which nobody should have) it reads back.
        (data_dir / KEY_FILE_NAME).write_bytes(key_before)
        assert ("minga wipe", "node.wipe") in asyncio.run(_audit_actions(config))



