"""``minga user add|reset|disable|enable|list`` and ``minga token create|list|revoke`` against a
real node on a real homeserver."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from deploy.homeserver import Homeserver
from node.cli import main
from node.core.runtime import open_node
from node.core.store import StaffUser, staff_users
from node.features.accounts.passwords import verify_password
from node.features.accounts.totp import secret_from_text
from tests.support.api_harness import PASSPHRASE, create_node


@pytest.fixture(scope="module")
def config(homeserver: Homeserver, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("user-cli")
    return asyncio.run(create_node(homeserver, directory / "node", "Red de Guardianas", "GT"))


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINGA_PASSPHRASE", PASSPHRASE)


def minga_json(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main(["--config", str(config), "user", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


async def _audit_actions(config: Path) -> list[str]:
    async with open_node(config) as node, node.store.read() as tx:
        return [event.action for event in await tx.audit.recent(limit=50)]


def _stored(config: Path, name: str) -> StaffUser:
    async def read() -> StaffUser | None:
        async with open_node(config) as node, node.store.read() as tx:
            return await staff_users(tx).by_username(name)

    user = asyncio.run(read())
    assert user is not None
    return user


def test_an_admin_gets_a_generated_password_and_a_totp_secret(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    facts = minga_json(config, capsys, "add", "Ixchel", "--role", "admin", "--language", "es")
    assert facts["role"] == "admin" and facts["must_change_password"] is True
    user = _stored(config, "ixchel")
    assert verify_password(facts["password"], user.password)
    assert user.totp_secret == secret_from_text(facts["totp_secret"])
    assert user.language == "es"
    assert facts["otpauth_uri"].startswith("otpauth://totp/Minga%3AIxchel?")
    assert "user.create" in asyncio.run(_audit_actions(config))


def test_a_password_file_sets_the_password_without_forcing_a_change(
    config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    secret_file = tmp_path / "password"
    secret_file.write_text("un mot de passe assez long\n", encoding="utf-8")
    facts = minga_json(config, capsys, "add", "tomas", "--role", "editor",
                       "--password-file", str(secret_file))
    assert (facts["password"], facts["totp_secret"], facts["must_change_password"]) == (
        None, None, False)
    user = _stored(config, "tomas")
    assert verify_password("un mot de passe assez long", user.password)


def test_reset_disable_enable_and_list(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    minga_json(config, capsys, "add", "lucia", "--role", "viewer")
    facts = minga_json(config, capsys, "reset", "LUCIA", "--new-totp")
    assert facts["password"] and facts["totp_secret"]
    assert main(["--config", str(config), "user", "disable", "lucia"]) == 0
    assert "Disabled lucia" in capsys.readouterr().out
    listed = minga_json(config, capsys, "list")
    assert {"username": "lucia", "role": "viewer", "totp": True, "disabled": True,
            "language": "en"} in listed
    assert main(["--config", str(config), "user", "enable", "lucia"]) == 0
    capsys.readouterr()
    actions = asyncio.run(_audit_actions(config))
    assert {"user.password_reset", "user.disable", "user.enable"} <= set(actions)


def test_refusals_are_one_line_and_exit_2(
    config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["--config", str(config), "user", "disable", "nobody-here"]) == 2
    assert "no user named 'nobody-here'" in capsys.readouterr().err
    minga_json(config, capsys, "add", "dup", "--role", "viewer")
    assert main(["--config", str(config), "user", "add", "DUP", "--role", "viewer"]) == 2
    assert "exists already" in capsys.readouterr().err
    short = tmp_path / "short"
    short.write_text("short", encoding="utf-8")
    assert main(["--config", str(config), "user", "add", "weak", "--role", "viewer",
                 "--password-file", str(short)]) == 2
    assert "at least 10 characters" in capsys.readouterr().err


def test_the_last_admin_cannot_be_disabled(tmp_path: Path, homeserver: Homeserver,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = asyncio.run(create_node(homeserver, tmp_path / "solo", "Solo", "PE"))
    minga_json(config, capsys, "add", "only-admin", "--role", "admin")
    assert main(["--config", str(config), "user", "disable", "only-admin"]) == 2
    assert "last active admin" in capsys.readouterr().err


def test_tokens_are_created_listed_and_revoked_from_the_command_line(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "token", "create", "--user", "Tablero de datos",
                 "--role", "viewer"]) == 0
    token = capsys.readouterr().out.strip()
    assert main(["--config", str(config), "token", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    mine = [t for t in listed if t["user"] == "Tablero de datos"]
    assert len(mine) == 1 and mine[0]["role"] == "viewer" and mine[0]["revoked"] is False
    assert token not in json.dumps(listed)  # the token itself is shown once, never listed

    assert main(["--config", str(config), "token", "revoke", mine[0]["token_id"]]) == 0
    assert "Revoked" in capsys.readouterr().out
    assert main(["--config", str(config), "token", "list"]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if "Tablero de datos" in row)
    assert line.startswith(mine[0]["token_id"]) and "REVOKED" in line

    async def verify() -> object:
        async with open_node(config) as node, node.store.lookup() as tx:
            return await tx.tokens.verify(token)

    assert asyncio.run(verify()) is None
    assert {"token.create", "token.revoke"} <= set(asyncio.run(_audit_actions(config)))

    assert main(["--config", str(config), "token", "revoke", "notatoken"]) == 2
    assert "minga token: no token notatoken" in capsys.readouterr().err
