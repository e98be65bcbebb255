"""``minga store move``: a node moved SQLite → PostgreSQL → SQLite keeps working, node.toml
follows it, and mistakes are one line naming the option."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from node.cli import main
from node.core.config import StoreSection, load_config
from node.core.runtime import open_node
from node.core.store import CaseIndex
from node.core.store_move import with_store_section
from schemas.ids import new_record_id
from tests.support.offline_node import make_offline_node, passphrase_in_environment
from tests.support.postgres import PostgresServer, free_port

RECORD_ID = new_record_id()


async def _add_case(config: Path) -> None:
    async with open_node(config) as node, node.store.transaction() as tx:
        await tx.cases.add(RECORD_ID, {"narrative": "kept"}, CaseIndex(country="CO"), "ana")


async def _narrative(config: Path) -> object:
    async with open_node(config) as node, node.store.read() as tx:
        return (await tx.cases.get(RECORD_ID)).document["narrative"]


def test_a_node_moves_to_postgresql_and_back(
        tmp_path: Path, postgres: PostgresServer, capsys: pytest.CaptureFixture[str]) -> None:
    config = asyncio.run(make_offline_node(tmp_path / "node"))
    password_file = tmp_path / "db-password"
    password_file.write_text(postgres.password + "\n")
    url = postgres.new_database(with_password=False)
    with passphrase_in_environment():
        asyncio.run(_add_case(config))
        assert main(["--config", str(config), "store", "move", "--to", url,
                     "--password-file", str(password_file)]) == 0
        printed = capsys.readouterr().out
        assert "  cases " in printed and "1 rows" in printed and "every table checked" in printed
        assert load_config(config).store.url == url
        assert postgres.password not in config.read_text()
        assert asyncio.run(_narrative(config)) == "kept"

        assert main(["--config", str(config), "store", "move", "--to", "sqlite"]) == 0
        assert load_config(config).store.url == ""
        assert asyncio.run(_narrative(config)) == "kept"


@pytest.mark.parametrize(("to", "message"), [
    ("postgresql://minga:hunter2@db/minga", "--to: url: must not hold the password"),
    ("mysql://db/minga", "--to: url: must be empty"),
    (f"postgresql://minga@127.0.0.1:{free_port()}/minga", "--to: cannot use the database"),
])
def test_a_bad_target_is_one_line_naming_the_option(
        tmp_path: Path, to: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    config = asyncio.run(make_offline_node(tmp_path / "node"))
    with passphrase_in_environment():
        assert main(["--config", str(config), "store", "move", "--to", to]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert load_config(config).store.url == ""  # the node stays where it was


def test_the_store_section_is_rewritten_in_place_or_added() -> None:
    target = StoreSection(url="postgresql://m@db/m", password_file=Path("/run/pw"))
    text = '[node]\ndata_dir = "."\n\n[store]\n# where\nurl = ""\n\n[http]\nport = 1\n'
    assert with_store_section(text, target) == (
        '[node]\ndata_dir = "."\n\n[store]\nurl = "postgresql://m@db/m"\n'
        'password_file = "/run/pw"\n# where\n\n[http]\nport = 1\n')
    assert with_store_section('[node]\ndata_dir = "."\n', StoreSection()) == (
        '[node]\ndata_dir = "."\n\n[store]\nurl = ""\n')


def test_a_node_pointed_back_at_the_store_it_moved_from_refuses_to_start(
        tmp_path: Path, postgres: PostgresServer, capsys: pytest.CaptureFixture[str]) -> None:
    config = asyncio.run(make_offline_node(tmp_path / "node"))
    original = config.read_text()
    with passphrase_in_environment():
        assert main(["--config", str(config), "store", "move", "--to",
                     postgres.new_database()]) == 2  # a URL with its password is refused
        assert "must not hold the password" in capsys.readouterr().err
        (tmp_path / "pw").write_text(postgres.password)
        assert main(["--config", str(config), "store", "move", "--to",
                     postgres.new_database(with_password=False),
                     "--password-file", str(tmp_path / "pw")]) == 0
        config.write_text(original)  # [store] url empty again: the SQLite file moved from
        capsys.readouterr()
        assert main(["--config", str(config), "status"]) == 2
    error = capsys.readouterr().err
    assert "[store] url: the store was moved away from this database to postgresql" in error
    assert "Traceback" not in error and postgres.password not in error
