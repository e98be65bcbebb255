"""Encrypted backups of a whole node, and the M9 commands on a real node directory."""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, LargeBinary, MetaData, insert, inspect, text

from federation.secretbox import FAST_TEST_PARAMS
from node.cli import main
from node.core.config import load_config
from node.core.runtime import Node, open_node
from node.core.store import Role
from node.core.store.database import DATABASE_FILE_NAME
from node.core.store_move import move_store
from node.features.backup.service import (
    CHUNK_BYTES,
    BackupError,
    create_backup,
    restore_backup,
)
from node.features.cases.casebook import add_case
from node.features.cases.exporting import own_case_records
from schemas.case import Case
from tests.support import DATA
from tests.support.api_harness import PASSPHRASE, SAMPLE_CASES
from tests.support.coalitions import in_coalition
from tests.support.offline_node import make_offline_node, passphrase_in_environment
from tests.support.postgres import PostgresServer

MEMBER = "o" + "m" * 26
CREATED_AT = 1_717_171_717


@pytest.fixture
async def config(tmp_path: Path) -> AsyncIterator[Path]:
    """A node holding cases, a roster entry, settings, a token and a queued outbox item."""
    path = await make_offline_node(tmp_path / "node")
    with passphrase_in_environment():
        async with open_node(path) as node:
            await _fill(node)
        yield path


async def _fill(node: Node) -> None:
    async with node.store.transaction() as tx:
        for index, case in enumerate(SAMPLE_CASES.values()):
            await add_case(tx, issuer=node.org_id, case=Case.model_validate(case),
                           author="beatriz", issued_at=1_717_000_000 + index)
        await tx.orgs.save_member(MEMBER, {"name": "Red Andina"}, verified=True,
                                  safety_code="12345 67890", matrix_user_id="@red:example.org")
        await in_coalition(tx, MEMBER, coalition_id="!coalition:example.org")
        await tx.tokens.create("amaru", Role.admin)
        await _queue_something(tx.session)


async def _queue_something(session: Any) -> None:
    """A row in the sync outbox, whatever its columns are today (it shares the database)."""
    def table(connection: Any) -> Any:
        metadata = MetaData()
        metadata.reflect(connection, only=["sync_outbox_items"])
        return metadata.tables["sync_outbox_items"]

    outbox = await session.run_sync(lambda s: table(s.connection()))
    values = {
        column.name: 1 if isinstance(column.type, Integer)
        else b"sealed" if isinstance(column.type, LargeBinary) else "!room:example.org"
        for column in outbox.columns
        if not column.nullable and not column.primary_key
    }
    await session.execute(insert(outbox).values(**values))


def database_rows(directory: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, for comparing two nodes byte for byte."""
    connection = sqlite3.connect(directory / DATABASE_FILE_NAME)
    try:
        tables = [name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {name: sorted(connection.execute(f'SELECT * FROM "{name}"'), key=repr)
                for name in tables}
    finally:
        connection.close()


def backup(config: Path, destination: Path, passphrase: str = PASSPHRASE) -> None:
    create_backup(config, destination, passphrase, created_at=CREATED_AT,
                  params=FAST_TEST_PARAMS)


async def test_a_restored_node_is_identical(config: Path, tmp_path: Path) -> None:
    archive = tmp_path / "node.minga-backup"
    backup(config, archive)
    restored = tmp_path / "fresh-machine" / "node"
    summary = await restore_backup(archive, restored, PASSPHRASE)
    assert summary.config_file == restored / "node.toml" and summary.warnings == ()
    assert set(summary.files) == {"store.db", "store.key", "node.toml"}

    original_rows, restored_rows = database_rows(config.parent), database_rows(restored)
    assert restored_rows == original_rows
    assert original_rows["sync_outbox_items"] and original_rows["cases"]
    for name in ("store.key", "node.toml"):
        assert (restored / name).read_bytes() == (config.parent / name).read_bytes()

    async with open_node(config) as before, open_node(summary.config_file) as after:
        assert after.org_id == before.org_id == summary.org_id
        assert after.keys.public() == before.keys.public()
        for private in ("signing", "encryption", "revocation"):
            assert getattr(after.keys, private).private_bytes_raw() == \
                getattr(before.keys, private).private_bytes_raw()
        async with before.store.read() as old, after.store.read() as new:
            assert await own_case_records(new) == await own_case_records(old)
            assert await new.orgs.members() == await old.orgs.members()
            assert await new.coalitions.all() == await old.coalitions.all()
            assert len(await new.coalitions.all()) == 1
            assert await new.coalitions.memberships() == await old.coalitions.memberships()
        assert await after.matrix_login() == await before.matrix_login()


async def test_a_backup_taken_while_the_node_writes_holds_every_commit(
    config: Path, tmp_path: Path
) -> None:
    async with open_node(config) as node:
        async with node.store.transaction() as tx:
            await add_case(tx, issuer=node.org_id, case=Case.model_validate(SAMPLE_CASES["addis"]),
                           author="beatriz", issued_at=1_717_005_000)
        backup(config, tmp_path / "live.backup")  # the store is open, its WAL not folded in
        async with node.store.read() as tx:
            expected = len(await own_case_records(tx))
    await restore_backup(tmp_path / "live.backup", tmp_path / "restored", PASSPHRASE)
    async with open_node(tmp_path / "restored" / "node.toml") as node, node.store.read() as tx:
        assert len(await own_case_records(tx)) == expected == len(SAMPLE_CASES) + 1


async def test_the_backup_reveals_nothing_without_the_passphrase(
    config: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "node.features.backup.service"
    backup(config, archive)
    content = archive.read_bytes()
    for secret in (b"SQLite format", b"homeserver", b"store.key", MEMBER.encode(),
                   "Yatacué".encode()):
        assert secret not in content
    with pytest.raises(BackupError, match="wrong passphrase"):
        await restore_backup(archive, tmp_path / "target", "not the passphrase")
    assert not (tmp_path / "target").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".target")] == []


@pytest.mark.parametrize("damage", ["flip", "truncate", "append"])
async def test_a_damaged_backup_restores_nothing(
    config: Path, tmp_path: Path, damage: str
) -> None:
    archive = tmp_path / "node.features.backup.service"
    backup(config, archive)
    content = bytearray(archive.read_bytes())
    if damage == "flip":
        content[len(content) // 2] ^= 0x01
    elif damage == "truncate":
        del content[-40:]
    else:
        content += b"\x00\x00\x00\x10" + bytes(16)
    archive.write_bytes(bytes(content))
    with pytest.raises(BackupError):
        await restore_backup(archive, tmp_path / "target", PASSPHRASE)
    assert not (tmp_path / "target").exists()


def chunk_ends(content: bytes) -> list[int]:
    """Where each sealed chunk of a backup file ends (after the header and key box)."""
    (box_length,) = struct.unpack(">I", content[8:12])
    position, ends = 12 + box_length, []
    while position < len(content):
        (length,) = struct.unpack(">I", content[position:position + 4])
        position += 4 + length
        ends.append(position)
    return ends


async def test_dropping_whole_chunks_is_detected(config: Path, tmp_path: Path) -> None:
    # A big file in the node gives the archive several chunks; drop the last one, or swap two.
    (config.parent / "attachments").mkdir()
    (config.parent / "attachments" / "scan.bin").write_bytes(bytes(range(256)) * 9000)
    archive = tmp_path / "node.features.backup.service"
    backup(config, archive)
    content = archive.read_bytes()
    ends = chunk_ends(content)
    assert len(ends) >= 3 and ends[-1] == len(content)
    archive.write_bytes(content[:ends[-2]])
    with pytest.raises(BackupError, match="cut short"):
        await restore_backup(archive, tmp_path / "target", PASSPHRASE)
    first, second = content[ends[0] - 4 - CHUNK_BYTES - 16:ends[0]], content[ends[0]:ends[1]]
    archive.write_bytes(content.replace(first + second, second + first))
    with pytest.raises(BackupError, match="altered"):
        await restore_backup(archive, tmp_path / "target", PASSPHRASE)
    assert not (tmp_path / "target").exists()


async def test_a_restore_never_overwrites_a_node(config: Path, tmp_path: Path) -> None:
    archive = tmp_path / "node.features.backup.service"
    backup(config, archive)
    with pytest.raises(BackupError, match="not empty"):
        await restore_backup(archive, config.parent, PASSPHRASE)
    empty = tmp_path / "empty"
    empty.mkdir()
    await restore_backup(archive, empty, PASSPHRASE)
    assert (empty / "store.key").exists()
    with pytest.raises(BackupError, match="already exists"):
        backup(config, archive)


async def test_the_passphrase_file_stays_out_of_the_backup(config: Path, tmp_path: Path) -> None:
    (config.parent / "passphrase.txt").write_text(PASSPHRASE + "\n", encoding="utf-8")
    text = config.read_text(encoding="utf-8").replace(
        'data_dir = "."', 'data_dir = "."\npassphrase_file = "passphrase.txt"')
    config.write_text(text, encoding="utf-8")
    summary = create_backup(config, tmp_path / "b", PASSPHRASE, created_at=CREATED_AT,
                            params=FAST_TEST_PARAMS)
    assert "passphrase.txt" not in summary.files and summary.excluded == ("passphrase.txt",)
    restored = await restore_backup(tmp_path / "b", tmp_path / "r", PASSPHRASE)
    assert any("passphrase_file" in warning for warning in restored.warnings)


async def test_a_wrong_passphrase_makes_no_backup(config: Path, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="wrong passphrase"):
        backup(config, tmp_path / "b", "guess")
    assert not (tmp_path / "b").exists()


# --- the commands ------------------------------------------------------------------------

def run(config: Path | None, *arguments: str) -> int:
    prefix = ["--config", str(config)] if config is not None else []
    return main([*prefix, *arguments])


def test_backup_and_restore_commands(config: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "cli.backup"
    assert run(config, "backup", "create", str(archive)) == 0
    assert run(None, "backup", "restore", str(archive), "--data-dir",
               str(tmp_path / "again")) == 0
    out = capsys.readouterr().out
    assert "restored the node of organisation" in out
    assert run(None, "backup", "restore", str(archive), "--data-dir", str(tmp_path / "again")) == 2
    assert "not empty" in capsys.readouterr().err
    assert database_rows(tmp_path / "again") == database_rows(config.parent)


def test_import_command_checks_then_imports(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = DATA
    mapping = str(data / "import_mapping.toml")
    assert run(config, "import", str(data / "casos_con_errores.csv"), "--mapping", mapping) == 1
    captured = capsys.readouterr()
    assert "row 4, column 'Tipo de agresión': violations" in captured.err
    assert "nothing was imported" in captured.err
    assert run(config, "import", str(data / "casos.csv"), "--mapping", mapping,
               "--dry-run") == 0
    assert "3 row(s) read; 0 with problems" in capsys.readouterr().out
    assert run(config, "import", str(data / "casos.csv"), "--mapping", mapping) == 0
    assert "imported: 3 new, 0 updated, 0 unchanged, 0 skipped" in capsys.readouterr().out


def test_export_and_reimport_commands(config: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    exported = tmp_path / "cases.csv"
    assert run(config, "export", "--format", "csv", "--out", str(exported)) == 0
    assert "plain text" in capsys.readouterr().err
    assert exported.read_bytes().startswith(b"\xef\xbb\xbf")  # so spreadsheet programs see UTF-8
    assert run(config, "import", str(exported), "--dry-run") == 0  # the ids are already here
    assert f"would import: 0 new, 0 updated, {len(SAMPLE_CASES)} unchanged" in (
        capsys.readouterr().out)
    published = tmp_path / "published.csv"
    assert run(config, "export", "--format", "csv", "--hxl", "--out", str(published)) == 0
    said = capsys.readouterr().err
    assert "published only what consent allows anyone to see" in said and "left out" in said
    assert run(config, "export", "--format", "jsonschema") == 0
    assert '"title": "minga.case/1"' in capsys.readouterr().out


def test_report_and_aggregate_commands(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, "report", "sdg", "--country", "co", "--from", "2023", "--to", "2023",
               "--format", "csv") == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("country,period,section,sdg_category")
    assert any(row.startswith("CO,2023,verified,other_harmful_acts,") for row in rows)
    assert run(config, "report", "sdg", "--country", "CO", "--from", "2020", "--to", "2024",
               "--language", "es") == 0
    assert "Casos verificados" in capsys.readouterr().out
    assert run(config, "report", "sdg", "--country", "XX", "--from", "2020", "--to",
               "2024") == 2
    assert run(config, "aggregates", "show", "--json") == 0
    assert '"typology_version": "1"' in capsys.readouterr().out
    assert run(config, "aggregates", "show", "--by", "quarter", "--language", "es") == 0
    assert "Aggregate figures" in capsys.readouterr().out
    assert run(config, "aggregates", "publish") == 0
    assert "for 1 member(s); the node sends it" in capsys.readouterr().out
    assert run(config, "aggregates", "schedule") == 0
    assert "only on demand" in capsys.readouterr().out
    assert run(config, "aggregates", "schedule", "--every-days", "400") == 2
    assert "--every-days: " in capsys.readouterr().err
    assert run(config, "aggregates", "schedule", "--every-days", "3") == 0
    assert run(config, "aggregates", "schedule") == 0
    assert "published every 3 day(s)" in capsys.readouterr().out


async def test_a_configuration_kept_outside_the_data_directory_comes_along(
    config: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "etc" / "minga.toml"
    outside.parent.mkdir()
    outside.write_text(config.read_text(encoding="utf-8").replace(
        'data_dir = "."', f'data_dir = "{config.parent}"'), encoding="utf-8")
    config.unlink()
    summary = create_backup(outside, tmp_path / "b", PASSPHRASE, created_at=CREATED_AT,
                            params=FAST_TEST_PARAMS)
    assert "node.toml" in summary.files
    restored = await restore_backup(tmp_path / "b", tmp_path / "r", PASSPHRASE)
    assert restored.config_file == tmp_path / "r" / "node.toml"
    assert [w for w in restored.warnings if 'data_dir = "."' in w]


async def _row_counts(store: Any) -> dict[str, int]:
    async with store.engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        return {name: int(await connection.scalar(text(f'SELECT count(*) FROM "{name}"')) or 0)
                for name in names if not name.startswith("alembic_version")}


async def test_a_node_on_postgresql_is_backed_up_while_running_and_restored(
        config: Path, tmp_path: Path, postgres: PostgresServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINGA_STORE_PASSWORD", postgres.password)
    await move_store(config, postgres.new_database(with_password=False))
    async with open_node(config) as node:
        async with node.store.transaction() as tx:
            await add_case(tx, issuer=node.org_id, case=Case.model_validate(SAMPLE_CASES["addis"]),
                           author="beatriz", issued_at=1_717_005_000)
        backup(config, tmp_path / "live.backup")  # the node is open on PostgreSQL meanwhile
        async with node.store.read() as tx:
            expected = await own_case_records(tx)
        counts = await _row_counts(node.store)

    summary = await restore_backup(tmp_path / "live.backup", tmp_path / "restored", PASSPHRASE)
    assert summary.config_file is not None and "taken from PostgreSQL" in summary.warnings[0]
    assert load_config(summary.config_file).store.url == ""  # the restored store is SQLite
    async with open_node(summary.config_file) as node:
        async with node.store.read() as tx:
            assert await own_case_records(tx) == expected
        assert await _row_counts(node.store) == counts
    assert counts["cases"] == len(SAMPLE_CASES) + 1 and counts["sync_outbox_items"] == 1

    await move_store(summary.config_file, postgres.new_database(with_password=False))
    async with open_node(summary.config_file) as node, node.store.read() as tx:
        assert await own_case_records(tx) == expected  # and back on PostgreSQL
