"""``minga backup create`` and ``minga backup restore`` (issue M9); ``--keep`` (M12)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from node.core.cli_support import CommandFailed, friendly, unix_now
from node.core.config import ConfigError, load_config
from node.core.lock import refuse_while_running
from node.core.runtime import NodeNotReady, config_path, open_node, read_passphrase
from node.core.setup import MatrixAccountChoice, matrix_login_for
from node.features.backup.new_account import NewAccount, adopt_new_account
from node.features.backup.retention import backup_file_name, backups_to_delete
from node.features.backup.service import BackupError, create_backup, restore_backup

_friendly = friendly(BackupError, NodeNotReady)


# --- backup ------------------------------------------------------------------------------

@_friendly
def cmd_backup_create(args: argparse.Namespace) -> int:
    config_file = config_path(args.config)
    target = Path(args.file)
    into_directory = target.is_dir()
    if args.keep is not None and not into_directory:
        raise CommandFailed(f"--keep: {target} is not a directory; --keep deletes older"
                            " backups in the directory the new one is written into")
    if args.keep is not None and args.keep < 1:
        raise CommandFailed("--keep: must be at least 1")
    passphrase = read_passphrase(_passphrase_file(config_file))
    created_at = unix_now()
    destination = target / backup_file_name(created_at) if into_directory else target
    summary = create_backup(config_file, destination, passphrase, created_at=created_at)
    print(f"wrote {summary.path}: {len(summary.files)} file(s), encrypted with the node"
          " passphrase")
    for name in summary.excluded:
        print(f"  not included: {name} (the passphrase file)")
    if args.keep is not None:
        for name in backups_to_delete((p.name for p in target.iterdir()), args.keep):
            (target / name).unlink()
            print(f"  deleted the older backup {target / name} (--keep {args.keep})")
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


def _secret(path: str | None, option: str) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise CommandFailed(f"{option}: cannot read {path} ({error.strerror})") from None


@_friendly
def cmd_new_account(args: argparse.Namespace) -> int:
    config_file = config_path(args.config)
    try:
        data_dir = load_config(config_file).node.data_dir
    except ConfigError as error:
        raise CommandFailed(str(error)) from None
    refuse_while_running(data_dir, "move the node to a new account")
    account = MatrixAccountChoice(
        user_id=args.matrix_user,
        password=_secret(args.matrix_password_file, "--matrix-password-file"),
        registration_secret=_secret(args.registration_secret_file,
                                    "--registration-secret-file"),
        access_token=_secret(args.matrix_access_token_file, "--matrix-access-token-file"))

    async def adopt() -> NewAccount:
        async with open_node(config_file) as node:
            login = await matrix_login_for(args.homeserver.rstrip("/"), node.own.name, account)
            return await adopt_new_account(node, config_file, login, unix_now)

    done = asyncio.run(adopt())
    print(f"this node now uses the Matrix account {done.user_id}"
          + (f" (instead of {done.previous_user_id})" if done.previous_user_id else ""))
    print(f"  keys rotated; new safety code: {done.safety_code}")
    print(f"  {done.held_rooms} room(s) held until the node is back in them (rooms the old"
          " account made are replaced by new ones once it is back in the coalition)")
    several = len(done.coalition_rooms) > 1
    print("Next: a member compares the new safety code with you out of band and runs"
          + (" (a member of each of your coalitions)" if several else ""))
    print(f"  minga coalition invite {done.user_id}")
    if done.coalition_rooms:
        print("then here" + (", for each coalition:" if several else ":"))
    for room in done.coalition_rooms:
        print(f"  minga --config {config_file} coalition join {room}")
    print(f"and: minga --config {config_file} run")
    return 0


def add_commands(commands: Any) -> None:
    """Add ``backup`` to ``minga``'s sub-command parsers."""
    backup = commands.add_parser("backup", help="encrypted backups of the whole node")
    backup_actions = backup.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = backup_actions.add_parser("create", help="write the whole node to one file")
    create.add_argument("file", help="the backup file to create, or a directory to write"
                                     " minga-<UTC time>.backup into")
    create.add_argument("--keep", type=int, metavar="N",
                        help="with a directory: then delete all but the N newest"
                             " minga-<UTC time>.backup files in it")
    create.set_defaults(handler=cmd_backup_create)
    restore = backup_actions.add_parser("restore", help="restore a backup on this machine")
    restore.add_argument("file", help="the backup file")
    restore.add_argument("--data-dir", required=True,
                         help="new or empty directory for the restored node")
    restore.set_defaults(handler=cmd_backup_restore)
    moved = backup_actions.add_parser(
        "new-account", help="after restoring elsewhere: a new Matrix account and new keys")
    moved.add_argument("--homeserver", required=True, help="the new account's homeserver URL")
    moved.add_argument("--matrix-user", help="an existing account to log into")
    moved.add_argument("--matrix-password-file", help="file holding that account's password")
    moved.add_argument("--registration-secret-file",
                       help="file holding the homeserver's registration shared secret"
                            " (to create the account)")
    moved.add_argument("--matrix-access-token-file",
                       help="file holding an access token issued for the new account"
                            " (homeservers behind Matrix Authentication Service or SSO)")
    moved.set_defaults(handler=cmd_new_account)
