"""What every ``minga`` command shares: one-line errors, output files, the clock."""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

Handler = Callable[[argparse.Namespace], int]
PLAINTEXT_WARNING = "This file holds case content in plain text: keep it somewhere safe."


class CommandFailed(Exception):
    """A problem the user can fix, printed as one line."""


def friendly(*errors: type[Exception]) -> Callable[[Handler], Handler]:
    """A handler that prints ``CommandFailed`` and ``errors`` as one line and exits with 2."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(args: argparse.Namespace) -> int:
            try:
                return handler(args)
            except Exception as error:
                if not isinstance(error, (CommandFailed, *errors)):
                    raise
                print(f"minga: {error}", file=sys.stderr)
                return 2

        return run

    return wrap


def unix_now() -> int:
    return int(time.time())


def write_output(text: str, out: str | None, *, plaintext: bool, bom: bool = False) -> None:
    """``text`` to standard output, or to the new file ``out`` (never over an existing one)."""
    if out is None:
        sys.stdout.write(text)
        return
    path = Path(out)
    if path.exists():
        raise CommandFailed(f"--out: {out} already exists; choose a new file name")
    path.write_text(text, encoding="utf-8-sig" if bom else "utf-8")
    print(f"wrote {out}", file=sys.stderr)
    if plaintext:
        print(PLAINTEXT_WARNING, file=sys.stderr)
