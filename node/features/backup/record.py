"""When the last backup was made, for ``minga doctor`` (decision 0029).

``minga backup create`` writes ``DATA_DIR/last-backup.json`` (the time and the file's name,
nothing else) once the backup file is complete; the doctor check reads it back and judges its age
with :func:`judge_backup_age`, a pure rule.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from node.core.config import NodeConfig
from node.core.doctor import Finding, problem, warning

LAST_BACKUP_FILE = "last-backup.json"
MAX_BACKUP_AGE_SECONDS = 2 * 24 * 3600
"""A daily backup (deploy/production's timer) that failed twice in a row is a problem."""
_FIX = ("make one now with `minga backup create FILE` and check the backup timer"
        " (systemctl status minga-backup.timer)")


def record_backup(data_dir: Path, created_at: int, file_name: str) -> None:
    path = data_dir / LAST_BACKUP_FILE
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"created_at": created_at, "file": file_name}),
                       encoding="utf-8")
    os.replace(partial, path)


def last_backup_time(data_dir: Path) -> int | None:
    """When the last backup recorded in ``data_dir`` was made; None if none (or unreadable)."""
    try:
        raw = json.loads((data_dir / LAST_BACKUP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    created = raw.get("created_at") if isinstance(raw, dict) else None
    return created if isinstance(created, int) and not isinstance(created, bool) else None


def judge_backup_age(last: int | None, now: float,
                     max_age: int = MAX_BACKUP_AGE_SECONDS) -> list[Finding]:
    if last is None:
        return [warning("backup", "no backup of this node is recorded", _FIX)]
    age = now - last
    if age < -300:
        return [problem("backup", "the last backup is dated in the future (the clock jumped?)",
                        "check the clock, then " + _FIX)]
    if age <= max_age:
        return []
    return [problem("backup", f"the last backup is {age / 3600:.0f} hours old (more than"
                    f" {max_age // 3600} hours)", _FIX)]


async def backup_check(config: NodeConfig, now: float) -> list[Finding]:
    return judge_backup_age(last_backup_time(config.node.data_dir), now)
