"""``minga backup new-account`` run through the CLI entry point on a restored node, against a
real homeserver (M13 item 5, decision 0023): what it saves and what it prints."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import pytest

from deploy.homeserver import Homeserver
from node.cli import main
from node.core.cli_support import unix_now
from node.core.runtime import MATRIX_LOGIN_SETTING, open_node
from node.features.backup.service import create_backup, restore_backup
from sync.resume import held_rooms
from tests.support.api_harness import PASSPHRASE
from tests.support.sharing import ORGS, form_coalition, new_member, passphrase_env


async def test_new_account_on_a_restored_node_saves_the_login_rotates_and_says_what_next(
    homeserver: Homeserver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = await new_member(homeserver, tmp_path / "old-machine", *ORGS[0])
    room = await form_coalition([config])
    with passphrase_env():
        async with open_node(config) as node:
            old_user = (await node.matrix_login()).user_id
            old_code = node.keys.public().safety_code()
            org_id = node.org_id
    backup = tmp_path / "a.mingabackup"
    create_backup(config, backup, PASSPHRASE, created_at=unix_now())
    restored = await restore_backup(backup, tmp_path / "new-machine" / "node", PASSPHRASE)
    assert restored.config_file is not None
    secret = tmp_path / "registration-secret"
    secret.write_text(homeserver.state.registration_shared_secret + "\n", encoding="utf-8")
    capsys.readouterr()

    with passphrase_env():
        code = await asyncio.to_thread(main, [
            "--config", str(restored.config_file), "backup", "new-account",
            "--homeserver", homeserver.url + "/", "--registration-secret-file", str(secret)])
    printed = capsys.readouterr().out
    assert code == 0, printed

    saved = tomllib.loads(restored.config_file.read_text(encoding="utf-8"))["homeserver"]
    new_user = saved["user_id"]
    assert saved["url"] == homeserver.url and new_user != old_user
    with passphrase_env():
        async with open_node(restored.config_file) as node:
            assert node.org_id == org_id  # the same organisation, with rotated keys
            new_code = node.keys.public().safety_code()
            login = await node.matrix_login()
            async with node.store.read() as tx:
                stored = await tx.settings.get(MATRIX_LOGIN_SETTING)
                moved = [e for e in await tx.audit.recent() if e.action == "restore.new-account"]
                rotated = [e for e in await tx.audit.recent() if e.action == "keys.rotate"]
                held = await held_rooms(tx.session)
            async with node.transport() as transport:
                assert await transport.whoami() == new_user  # the saved token works
    assert new_code != old_code
    assert login.user_id == new_user and isinstance(stored, dict)
    assert stored["user_id"] == new_user
    assert [(e.target, e.details["previous_user_id"]) for e in moved] == [(new_user, old_user)]
    assert len(rotated) == 1
    assert held == set()  # it never sent anything, so no room is held

    assert f"now uses the Matrix account {new_user} (instead of {old_user})" in printed
    assert f"new safety code: {new_code}" in printed
    assert "0 room(s) held" in printed
    assert f"minga coalition invite {new_user}" in printed
    assert f"coalition join {room}" in printed
