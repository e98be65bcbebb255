"""minga init / token create / unlocking, against a real homeserver."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import URL, make_url

from deploy.homeserver import Homeserver
from node.cli import main
from node.core.runtime import open_node
from node.core.store import DataKey, Role, open_store
from tests.support.postgres import PostgresServer, free_port

PASSPHRASE = "correct horse battery staple"


def _init(homeserver: Homeserver, tmp_path: Path, name: str = "Fundación Ñandutí") -> Path:
    secret = tmp_path / "registration-secret"
    secret.write_text(homeserver.state.registration_shared_secret)
    data_dir = tmp_path / "node"
    code = main([
        "init", "--org-name", name, "--country", "py", "--homeserver", homeserver.url,
        "--data-dir", str(data_dir), "--registration-secret-file", str(secret),
    ])
    assert code == 0
    return data_dir


async def _matrix_user(config: Path) -> str:
    async with open_node(config) as node, node.transport() as transport:
        return await transport.whoami()


def test_init_creates_a_working_node(
    homeserver: Homeserver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MINGA_PASSPHRASE", PASSPHRASE)
    data_dir = _init(homeserver, tmp_path)
    printed = capsys.readouterr().out
    assert "organisation id: o" in printed and "safety code:" in printed
    config = data_dir / "node.toml"
    user_id = asyncio.run(_matrix_user(config))
    assert user_id.startswith("@minga-fundaci-n-and") and user_id in config.read_text()
    raw = b"".join(p.read_bytes() for p in data_dir.iterdir() if p.name.startswith("store.db"))
    assert "Ñandutí".encode() not in raw
    token_code = main(["--config", str(config), "token", "create", "--user", "ana",
                       "--role", "viewer"])
    assert token_code == 0
    token = capsys.readouterr().out.strip()
    assert token and token.encode() not in b"".join(
        p.read_bytes() for p in data_dir.iterdir() if p.name.startswith("store.db"))

    async def owner() -> tuple[str, Role] | None:
        async with open_node(config) as node, node.store.read() as tx:
            found = await tx.tokens.verify(token)
            return None if found is None else (found.user, found.role)

    assert asyncio.run(owner()) == ("ana", Role.viewer)


def test_wrong_passphrase_and_second_init_are_clear_errors(
    homeserver: Homeserver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MINGA_PASSPHRASE", PASSPHRASE)
    data_dir = _init(homeserver, tmp_path, "Colectivo Sur")
    capsys.readouterr()
    monkeypatch.setenv("MINGA_PASSPHRASE", "not the passphrase")
    assert main(["--config", str(data_dir / "node.toml"), "token", "create", "--user", "x",
                 "--role", "admin"]) == 2
    assert "wrong passphrase" in capsys.readouterr().err
    monkeypatch.setenv("MINGA_PASSPHRASE", PASSPHRASE)
    secret = tmp_path / "registration-secret"
    assert main(["init", "--org-name", "Again", "--country", "PY", "--homeserver",
                 homeserver.url, "--data-dir", str(data_dir),
                 "--registration-secret-file", str(secret)]) == 2
    assert "already holds a node" in capsys.readouterr().err


def test_bad_init_arguments_are_named(
    homeserver: Homeserver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MINGA_PASSPHRASE", PASSPHRASE)
    secret = tmp_path / "s"
    secret.write_text(homeserver.state.registration_shared_secret)
    assert main(["init", "--org-name", "X", "--country", "ZZ", "--homeserver", homeserver.url,
                 "--data-dir", str(tmp_path / "n"), "--registration-secret-file",
                 str(secret)]) == 2
    assert "--country" in capsys.readouterr().err
    assert main(["init", "--org-name", "X", "--country", "CO", "--homeserver", homeserver.url,
                 "--data-dir", str(tmp_path / "n")]) == 2
    assert "--registration-secret-file" in capsys.readouterr().err


def _init_on(url: str, tmp_path: Path, *extra: str) -> int:
    secret = tmp_path / "registration-secret"
    secret.write_text("unused: the store is checked before any Matrix account is made")
    return main(["init", "--org-name", "Colectivo PG", "--country", "co", "--homeserver",
                 "http://127.0.0.1:9", "--data-dir", str(tmp_path / "node"),
                 "--registration-secret-file", str(secret), "--store-url", url, *extra])


def test_init_on_an_unusable_postgresql_names_the_option(
    tmp_path: Path, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MINGA_PASSPHRASE", PASSPHRASE)
    assert _init_on(f"postgresql://minga@127.0.0.1:{free_port()}/minga", tmp_path) == 2
    assert "--store-url: cannot use the database" in capsys.readouterr().err
    url = postgres.new_database(with_password=False)
    assert _init_on(url, tmp_path) == 2  # no password given
    assert "password authentication failed" in capsys.readouterr().err
    monkeypatch.setenv("MINGA_STORE_PASSWORD", postgres.password)
    assert _init_on("postgresql://minga:pw@db/minga", tmp_path) == 2
    assert "--store-url: url: must not hold the password" in capsys.readouterr().err
    taken = postgres.new_database(with_password=False)
    asyncio.run(_a_store_in(make_url(taken).set(password=postgres.password)))
    assert _init_on(taken, tmp_path) == 2
    error = capsys.readouterr().err
    assert "already holds a node's store" in error and "Traceback" not in error
    assert not (tmp_path / "node" / "store.key").exists()


async def _a_store_in(url: URL) -> None:
    store = await open_store(url, DataKey.generate())
    await store.close()
