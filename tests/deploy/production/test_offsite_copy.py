"""The backup service's off-site hook hands the newest backup to the operator's command."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from node.features.backup.retention import backup_file_name
from tests.support import REPO

HOOK = REPO / "deploy" / "production" / "minga-offsite-copy"


def run_hook(directory: Path, command: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HOOK), str(directory)], capture_output=True, text=True,
                          check=False, stdin=subprocess.DEVNULL,
                          env={**os.environ, "MINGA_OFFSITE_COPY": str(command)})


def test_the_newest_backup_goes_to_the_operators_command(tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    for when in (1_700_000_000, 1_700_172_800, 1_700_086_400):
        (backups / backup_file_name(when)).write_bytes(b"sealed")
    (backups / "zz-not-a-scheduled-backup.backup").write_bytes(b"by hand")
    copied = tmp_path / "copied"
    command = tmp_path / "offsite-copy"
    command.write_text(f'#!/bin/sh\nprintf "%s" "$*" > {copied}\n')
    command.chmod(0o755)
    done = run_hook(backups, command)
    assert done.returncode == 0, done.stderr
    assert copied.read_text() == str(backups / backup_file_name(1_700_172_800))


def test_a_failed_copy_fails_the_hook(tmp_path: Path) -> None:
    (tmp_path / backup_file_name(1_700_000_000)).write_bytes(b"sealed")
    command = tmp_path / "offsite-copy"
    command.write_text("#!/bin/sh\nexit 3\n")
    command.chmod(0o755)
    assert run_hook(tmp_path, command).returncode == 3


def test_without_a_command_it_says_so_and_succeeds(tmp_path: Path) -> None:
    (tmp_path / backup_file_name(1_700_000_000)).write_bytes(b"sealed")
    done = run_hook(tmp_path, tmp_path / "absent")
    assert done.returncode == 0 and "no off-site copy configured" in done.stdout


def test_no_backup_to_copy_is_a_failure(tmp_path: Path) -> None:
    done = run_hook(tmp_path, tmp_path / "absent")
    assert done.returncode == 1 and "no backup" in done.stderr
