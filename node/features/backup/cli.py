"""``minga backup create`` and ``minga backup restore`` (issue M9)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from node.core.cli_support import CommandFailed, friendly, unix_now
from node.core.config import ConfigError, load_config
from node.core.runtime import config_path, read_passphrase
from node.features.backup.service import BackupError, create_backup, restore_backup

_friendly = friendly(BackupError)


# --- backup ------------------------------------------------------------------------------

@_friendly
def cmd_backup_create(args: argparse.Namespace) -> int:
    config_file = config_path(args.config)
    passphrase = read_passphrase(_passphrase_file(config_file))
    summary = create_backup(config_file, Path(args.file), passphrase, created_at=unix_now())
    print(f"wrote {summary.path}: {len(summary.files)} file(s), encrypted with the node"
          " passphrase")
    for name in summary.excluded:
        print(f"  not included: {name} (the passphrase file)")
    return 0


def _passphrase_file(config_file: Path) -> Path | None:
    try:
        return load_config(config_file).node.passphrase_file
    except ConfigError as error:
        raise CommandFailed(str(error)) from None


@_friendly
def cmd_backup_restore(args: argparse.Namespace) -> int:
    passphrase = read_passphrase(None)
    summary = asyncio.run(restore_backup(Path(args.file), Path(args.data_dir), passphrase))
    print(f"restored the node of organisation {summary.org_id} into {summary.data_dir}")
    if summary.config_file is not None:
        print(f"  start it with: minga --config {summary.config_file} run")
    for warning in summary.warnings:
        print(f"  warning: {warning}")
    return 0


def add_commands(commands: Any) -> None:
    """Add ``backup`` to ``minga``'s sub-command parsers."""
    backup = commands.add_parser("backup", help="encrypted backups of the whole node")
    backup_actions = backup.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = backup_actions.add_parser("create", help="write the whole node to one file")
    create.add_argument("file", help="the backup file to create")
    create.set_defaults(handler=cmd_backup_create)
    restore = backup_actions.add_parser("restore", help="restore a backup on this machine")
    restore.add_argument("file", help="the backup file")
    restore.add_argument("--data-dir", required=True,
                         help="new or empty directory for the restored node")
    restore.set_defaults(handler=cmd_backup_restore)
