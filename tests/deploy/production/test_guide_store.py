"""The store as docs/deploy.md sets it up: PostgreSQL over the local socket, no password
anywhere; backed up by the timer's command and restored the way the guide says."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from node.cli import main
from node.features.backup.retention import is_scheduled_backup
from tests.support.offline_node import make_offline_node, passphrase_in_environment
from tests.support.postgres import PostgresServer


def socket_url(postgres: PostgresServer) -> str:
    """A new database as the guide's URL names it: the role, the socket directory, no password
    (the test server trusts its socket, as Debian's peer authentication trusts the user)."""
    name = postgres.new_database(with_password=False).rsplit("/", 1)[1]
    return f"postgresql://minga@/{name}?host={postgres.directory}&port={postgres.port}"


def test_backup_and_restore_of_a_node_on_the_local_socket(
        postgres: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = asyncio.run(make_offline_node(tmp_path / "node"))
    first, second = socket_url(postgres), socket_url(postgres)
    backups = tmp_path / "backups"
    backups.mkdir()
    with passphrase_in_environment():
        assert main(["--config", str(config), "store", "move", "--to", first]) == 0
        assert "password" not in config.read_text()
        assert main(["--config", str(config), "backup", "create", str(backups),
                     "--keep", "14"]) == 0
        [archive] = backups.iterdir()
        assert is_scheduled_backup(archive.name)
        restored = tmp_path / "restored"
        assert main(["backup", "restore", str(archive), "--data-dir", str(restored)]) == 0
        restored_config = restored / "node.toml"
        assert main(["--config", str(restored_config), "store", "move", "--to", second]) == 0
        capsys.readouterr()
        assert main(["--config", str(restored_config), "status", "--json"]) == 0
    assert '"org_id"' in capsys.readouterr().out
    assert second.split("?")[0] in restored_config.read_text()
