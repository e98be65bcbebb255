"""``minga keys ...``: the organisation's keys after (or before) a raid."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from federation.transport import TransportError
from node.core.api.times import iso_time, unix_seconds
from node.core.cli_support import CommandFailed, friendly, unix_now
from node.core.config import ConfigError, load_config
from node.core.keys import (
    REVOCATION_PASSPHRASE_ENV,
    RevocationKeyFileError,
    RevocationRefused,
    RotationDone,
    export_revocation,
    make_revocation,
    read_revocation_key,
    rotate_own_keys,
)
from node.core.lock import (
    LOCK_SIGNAL,
    audit_wipe,
    destroy_data_key,
    lock_node,
    passphrase_warning,
    refuse_while_running,
    running_pid,
    wait_until_stopped,
    what_remains,
)
from node.core.runtime import NodeNotReady, config_path, open_node

_friendly = friendly(RevocationKeyFileError, RevocationRefused, NodeNotReady)
CLI_ACTOR = "minga keys"
LOCK_ACTOR = "minga lock"
WIPE_ACTOR = "minga wipe"


def revocation_passphrase(path: str | None, *, confirm: bool) -> str:
    """The revocation key's passphrase: from ``path``, else MINGA_REVOCATION_PASSPHRASE, else
    asked at a terminal."""
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as error:
            raise CommandFailed(f"--revocation-passphrase-file: cannot read {path}"
                                f" ({error.strerror})") from None
        if not text:
            raise CommandFailed("--revocation-passphrase-file: the file is empty")
        return text
    from_env = os.environ.get(REVOCATION_PASSPHRASE_ENV)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise CommandFailed("the revocation key's passphrase is needed: give"
                            f" --revocation-passphrase-file or set {REVOCATION_PASSPHRASE_ENV}")
    first = getpass.getpass("Revocation key passphrase: ")
    if confirm and getpass.getpass("Repeat it: ") != first:
        raise CommandFailed("the two passphrases differ")
    if not first:
        raise CommandFailed("no passphrase was typed")
    return first


@_friendly
def cmd_export_revocation(args: argparse.Namespace) -> int:
    refuse_while_running(_data_dir(args.config)[0], "export the revocation key")
    passphrase = revocation_passphrase(args.revocation_passphrase_file, confirm=True)
    out = Path(args.out)

    async def export() -> None:
        async with open_node(args.config) as node:
            await export_revocation(node, out, passphrase, actor=CLI_ACTOR)

    asyncio.run(export())
    print(out.read_text(encoding="ascii"))
    print(f"wrote the revocation key to {out} and removed it from this node.")
    print("Print it or copy it to a USB stick, keep it away from this machine, then delete"
          f" {out} here.")
    return 0


@_friendly
def cmd_rotate(args: argparse.Namespace) -> int:
    refuse_while_running(_data_dir(args.config)[0], "rotate the keys")

    async def rotate() -> RotationDone:
        async with open_node(args.config) as node:
            return await rotate_own_keys(node, unix_now, actor=CLI_ACTOR)

    try:
        done = asyncio.run(rotate())
    except TransportError as error:
        raise CommandFailed(f"the keys were rotated but the roster entry could not be"
                            f" published ({error}); `minga run` publishes it") from None
    print(f"rotated: signing key {done.previous_kid} -> {done.kid} from"
          f" {iso_time(done.effective_at)}")
    print(f"  new safety code: {done.safety_code}")
    print("  announced in the coalition room" if done.published
          else "  not in a coalition yet: nothing to announce")
    print("Ask the other members to compare the new safety code with you out of band.")
    return 0


@_friendly
def cmd_revoke(args: argparse.Namespace) -> int:
    try:
        since = unix_seconds(args.since)
    except ValueError as error:
        raise CommandFailed(f"--since: {error}") from None
    try:
        form = Path(args.revocation_key).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CommandFailed(f"--revocation-key: cannot read {args.revocation_key}"
                            f" ({getattr(error, 'strerror', None) or 'not text'})") from None
    passphrase = revocation_passphrase(args.revocation_passphrase_file, confirm=False)
    key = read_revocation_key(form, passphrase)
    statement = make_revocation(key, since, unix_now(), args.kid or ())
    text = json.dumps(statement, indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        out = Path(args.out)
        if out.exists():
            raise CommandFailed(f"--out: {out} already exists; choose a new file name")
        out.write_text(text, encoding="ascii")
        print(f"wrote the revocation of {key.org_id}'s keys from {iso_time(since)} to {out}",
              file=sys.stderr)
    print("Any member can publish it: minga coalition publish-revocation FILE, or the"
          " members page of its node.", file=sys.stderr)
    return 0


# --- lock and wipe -------------------------------------------------------------------------------


def _data_dir(config: str | None) -> tuple[Path, Path | None]:
    try:
        loaded = load_config(config_path(config))
    except ConfigError as error:
        raise CommandFailed(str(error)) from None
    return loaded.node.data_dir, loaded.node.passphrase_file


def _lock_running(data_dir: Path, wait: float) -> bool:
    """Signal a running node to lock; True if one was running (and has stopped)."""
    pid = running_pid(data_dir)
    if pid is None:
        return False
    os.kill(pid, LOCK_SIGNAL)
    if not wait_until_stopped(pid, wait):
        raise CommandFailed(f"the node (pid {pid}) did not stop within {wait:g} s; stop it"
                            " with `kill` (its keys stay in memory until it does)")
    return True


@_friendly
def cmd_lock(args: argparse.Namespace) -> int:
    data_dir, passphrase_file = _data_dir(args.config)
    if _lock_running(data_dir, args.wait):
        print("Locked: the node stopped serving, every session ended and its keys are gone"
              " from memory. Starting it again needs the passphrase.")
    else:
        async def lock_stopped() -> int:
            async with open_node(args.config) as node:
                return await lock_node(node, actor=LOCK_ACTOR)

        ended = asyncio.run(lock_stopped())
        print(f"No node was running; {ended} session(s) ended. Starting it needs the passphrase.")
    warning = passphrase_warning(passphrase_file)
    if warning:
        print(f"warning: {warning}")
    return 0


@_friendly
def cmd_wipe(args: argparse.Namespace) -> int:
    if not args.yes:
        raise CommandFailed("wipe destroys the node's data key: not even the passphrase will"
                            " open it again, only a backup. Add --yes to go ahead.")
    data_dir, passphrase_file = _data_dir(args.config)
    if _lock_running(data_dir, args.wait):
        print("the running node was locked and stopped")

    async def audit() -> None:
        async with open_node(args.config) as node:
            await audit_wipe(node, actor=WIPE_ACTOR)

    asyncio.run(audit())
    destroy_data_key(data_dir, iso_time(unix_now()))
    print("Wiped: the data key was overwritten and deleted; the passphrase no longer opens"
          " this node. Only a backup restores it.")
    print(f"What remains in {data_dir}:")
    for left in what_remains(data_dir, passphrase_file):
        print(f"  {left.path.relative_to(data_dir)} ({left.size} bytes): {left.what}")
    if passphrase_file is not None and not passphrase_file.resolve().is_relative_to(
            data_dir.resolve()):
        print(f"  also {passphrase_file}: THE PASSPHRASE FILE; delete it (it opens backups)")
    print("Backups made earlier still open with the passphrase. On SSDs and journaling file"
          " systems an overwritten file may survive in free blocks; full-disk encryption"
          " covers that.")
    return 0


def add_commands(commands: Any) -> None:
    keys = commands.add_parser("keys", help="the organisation's keys: export, rotate, revoke")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export-revocation",
        help="move the revocation key off this node into a passphrase-protected file")
    export.add_argument("--out", required=True,
                        help="the file to write (outside the data directory)")
    export.add_argument("--revocation-passphrase-file",
                        help=f"file holding its passphrase (default: ${REVOCATION_PASSPHRASE_ENV}"
                             " or a prompt)")
    export.set_defaults(handler=cmd_export_revocation)

    revoke = actions.add_parser(
        "revoke", help="after a seizure: sign the revocation of this organisation's keys with"
                       " its offline revocation key (no node needed)")
    revoke.add_argument("--revocation-key", required=True, metavar="FILE",
                        help="the revocation key file (or its paper form typed back)")
    revoke.add_argument("--since", required=True, metavar="TIME",
                        help="ISO 8601 time from which the keys are revoked, e.g. when the"
                             " node was seized (2026-12-31T18:00:00Z)")
    revoke.add_argument("--kid", action="append",
                        help="a signing key id to revoke (default: the first one, which"
                             " revokes every key rotated from it)")
    revoke.add_argument("--out", help="write the statement to this new file (default: stdout)")
    revoke.add_argument("--revocation-passphrase-file",
                        help=f"file holding its passphrase (default: ${REVOCATION_PASSPHRASE_ENV}"
                             " or a prompt)")
    revoke.set_defaults(handler=cmd_revoke)
    rotate = actions.add_parser(
        "rotate", help="new signing and encryption keys, announced in the roster")
    rotate.set_defaults(handler=cmd_rotate)

    lock = commands.add_parser(
        "lock", help="stop serving, end every session, drop the keys from memory")
    lock.add_argument("--wait", type=float, default=30.0,
                      help="seconds to wait for a running node to stop (default 30)")
    lock.set_defaults(handler=cmd_lock)
    wipe = commands.add_parser(
        "wipe", help="destroy the data key: the passphrase no longer opens the node")
    wipe.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    wipe.add_argument("--wait", type=float, default=30.0,
                      help="seconds to wait for a running node to stop (default 30)")
    wipe.set_defaults(handler=cmd_wipe)
