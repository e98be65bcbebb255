"""``minga keys ...``: the organisation's keys after (or before) a raid."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from node.core.cli_support import CommandFailed, friendly
from node.core.keys import REVOCATION_PASSPHRASE_ENV, RevocationKeyFileError, export_revocation
from node.core.runtime import NodeNotReady, open_node

_friendly = friendly(RevocationKeyFileError, NodeNotReady)
CLI_ACTOR = "minga keys"


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
