"""The node started the way minga-node.service starts it: the passphrase only in a credential
file (``$CREDENTIALS_DIRECTORY/passphrase``), never in its environment."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from deploy.homeserver import free_port
from node.core.runtime import open_node
from node.core.store import Role
from tests.support.api_harness import PASSPHRASE
from tests.support.offline_node import make_offline_node, passphrase_in_environment
from tests.support.sharing import eventually


async def _node_with_token(directory: Path) -> tuple[Path, int, str]:
    config = await make_offline_node(directory)
    port = free_port()
    config.write_text(config.read_text() + f"\n[http]\nport = {port}\n")
    with passphrase_in_environment():
        async with open_node(config) as node, node.store.transaction() as tx:
            token = await tx.tokens.create("amaru", Role.admin)
    return config, port, token


def _environment_without_secrets(credentials: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("MINGA_PASSPHRASE", "MINGA_STORE_PASSWORD")}
    return {**env, "CREDENTIALS_DIRECTORY": str(credentials), "PYTHONUNBUFFERED": "1"}


async def test_the_node_unlocks_from_the_credential_alone(tmp_path: Path) -> None:
    config, port, token = await _node_with_token(tmp_path / "node")
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o700)
    (credentials / "passphrase").write_text(PASSPHRASE)
    with (tmp_path / "node.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "node.cli", "--config", str(config), "run"],
            env=_environment_without_secrets(credentials), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        async def unlocked() -> bool:
            assert process.poll() is None, (tmp_path / "node.log").read_text()
            try:
                async with aiohttp.ClientSession() as session, session.get(
                        f"http://127.0.0.1:{port}/api/v1/status",
                        headers={"Authorization": f"Bearer {token}"}) as answer:
                    return answer.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(unlocked, timeout=60, what="the node, unlocked by its credential")
        environment = Path(f"/proc/{process.pid}/environ").read_bytes()
        assert PASSPHRASE.encode() not in environment
        assert b"MINGA_PASSPHRASE" not in environment
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        await asyncio.to_thread(process.wait, 30)


async def test_without_the_credential_the_node_says_how_to_give_it(tmp_path: Path) -> None:
    config, _, _ = await _node_with_token(tmp_path / "node")
    empty = tmp_path / "credentials"
    empty.mkdir()
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "node.cli", "--config", str(config), "run"],
        env=_environment_without_secrets(empty), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert "LoadCredential" in done.stderr and "Traceback" not in done.stderr
