"""Backups on a schedule: the name of each file in a backup directory, and which to delete.

Pure rules, no I/O. ``minga backup create DIR --keep N`` (the backup timer of
``deploy/production/``) names each new file after its UTC time, so names sort by age, and then
deletes all but the ``N`` newest of the files named that way. Other files in the directory are
never touched.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Final

BACKUP_SUFFIX: Final = ".backup"
_NAME: Final = re.compile(r"^minga-(\d{8}T\d{6}Z)" + re.escape(BACKUP_SUFFIX) + "$")


def backup_file_name(created_at: int) -> str:
    """``minga-20261206T031500Z.backup`` for a backup made at that second (UTC)."""
    return "minga-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(created_at)) + BACKUP_SUFFIX


def is_scheduled_backup(name: str) -> bool:
    return _NAME.match(name) is not None


def backups_to_delete(names: Iterable[str], keep: int) -> list[str]:
    """The scheduled backups among ``names`` beyond the ``keep`` newest, oldest first."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    ours = sorted((name for name in names if is_scheduled_backup(name)), reverse=True)
    return sorted(ours[keep:])
