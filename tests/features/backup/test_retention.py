"""Scheduled backups: timestamped names in a directory, and ``--keep N`` keeps the N newest."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.cli import main
from node.features.backup.retention import (
    backup_file_name,
    backups_to_delete,
    is_scheduled_backup,
)
from tests.support.offline_node import make_offline_node, passphrase_in_environment


def test_names_sort_by_time_and_are_recognised() -> None:
    first, second = backup_file_name(1_700_000_000), backup_file_name(1_800_000_000)
    assert first == "minga-20231114T221320Z.backup"
    assert first < second and is_scheduled_backup(first)
    assert not is_scheduled_backup("minga-20231114T221320Z.backup.part")
    assert not is_scheduled_backup("notes.txt")


def test_keep_n_deletes_all_but_the_n_newest_and_nothing_else() -> None:
    names = [backup_file_name(t) for t in (300, 100, 500, 200, 400)] + ["by-hand.backup"]
    assert backups_to_delete(names, 2) == [backup_file_name(t) for t in (100, 200, 300)]
    assert backups_to_delete(names, 5) == []
    assert backups_to_delete(names, 9) == []
    with pytest.raises(ValueError, match="keep"):
        backups_to_delete(names, 0)


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    path = asyncio.run(make_offline_node(tmp_path / "node"))
    with passphrase_in_environment():
        yield path


def test_create_into_a_directory_keeps_the_newest(config: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    old = [backup_file_name(t) for t in (1_600_000_000, 1_600_086_400, 1_600_172_800)]
    for name in old:
        (backups / name).write_bytes(b"an older backup")
    (backups / "by-hand.backup").write_bytes(b"made by a person")

    assert main(["--config", str(config), "backup", "create", str(backups), "--keep", "2"]) == 0

    left = sorted(path.name for path in backups.iterdir())
    new = [name for name in left if name not in old and name != "by-hand.backup"]
    assert len(new) == 1 and is_scheduled_backup(new[0])
    assert (backups / new[0]).read_bytes().startswith(b"MINGABK1")
    assert left == sorted([old[-1], new[0], "by-hand.backup"])
    assert "deleted the older backup" in capsys.readouterr().out


def test_keep_needs_a_directory(config: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "one.backup"
    assert main(["--config", str(config), "backup", "create", str(target), "--keep", "3"]) == 2
    assert "--keep" in capsys.readouterr().err
    assert not target.exists()
