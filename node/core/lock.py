"""Locking and wiping a node, for when a raid is under way (issue M13).

- **Lock** (``minga lock``, the admin's "Lock now", ``POST /api/v1/node/lock``): audited first,
  then every staff session ends, the data key and the organisation keys are dropped from the
  node and ``minga run`` stops serving, so the process that held them in memory ends. A restart
  needs the passphrase (unless ``node.passphrase_file`` is set: then the command says so).
  ``minga lock`` reaches a running node through its pid file (``DATA_DIR/node.pid``) with
  ``SIGUSR1``; with no node running it ends the sessions in the store itself.
- **Wipe** (``minga wipe``): audited, then the wrapped data key (``store.key``) is overwritten
  and deleted, so even the right passphrase no longer opens the store; only a backup restores
  the node. What stays on disk is listed (:func:`what_remains`). A marker file says when the
  node was wiped, so opening it gives that reason rather than "no node".
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from node.core.runtime import WIPED_MARKER_NAME, Node, NodeNotReady
from node.core.store import staff_users
from node.core.store.database import DATABASE_FILE_NAME
from node.core.store.unlock import KEY_FILE_NAME

PID_FILE_NAME = "node.pid"
LOCK_SIGNAL = signal.SIGUSR1


# --- the pid file of `minga run` ---------------------------------------------------------------


def write_pid_file(data_dir: Path) -> Path:
    path = data_dir / PID_FILE_NAME
    path.write_text(f"{os.getpid()}\n", encoding="ascii")
    return path


def running_pid(data_dir: Path) -> int | None:
    """The pid of the ``minga run`` serving ``data_dir``, if one is running."""
    try:
        pid = int((data_dir / PID_FILE_NAME).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    if pid == os.getpid():
        return None
    try:
        return None if _ended(pid) else pid
    except PermissionError:
        return pid


def _ended(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a process that ended but was not yet reaped by its parent (Linux) holds no memory
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def wait_until_stopped(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _ended(pid):
            return True
        time.sleep(0.1)
    return False


def refuse_while_running(data_dir: Path, what: str) -> None:
    """Commands that change the keys on disk must not race a running node holding old ones."""
    pid = running_pid(data_dir)
    if pid is not None:
        raise NodeNotReady(f"the node is running (pid {pid}); {what} from its admin page or API,"
                           " or stop it first")


# --- lock ------------------------------------------------------------------------------------


async def lock_node(node: Node, *, actor: str) -> int:
    """Audit, end every staff session, drop the keys, ask the server to stop. Returns how many
    sessions ended."""
    if node.locked:
        return 0
    async with node.store.transaction() as tx:
        await tx.audit.append(actor, "node.lock", target=node.org_id)
        ended = await staff_users(tx).end_all_sessions()
    node.locked = True
    node.data_key = None
    node.request_stop()
    return ended


def passphrase_warning(node_passphrase_file: Path | None) -> str | None:
    if node_passphrase_file is None:
        return None
    return (f"node.passphrase_file is set ({node_passphrase_file}): a restart does not need"
            " anyone to type the passphrase. Remove that file and setting to make the lock hold.")


# --- wipe ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Remains:
    path: Path
    size: int
    what: str


_DESCRIPTIONS = {
    DATABASE_FILE_NAME: "the database: its encrypted columns (cases, names, keys, Matrix login,"
    " audit details) no longer open; in clear it keeps ids, times, counts and sync metadata",
    "node.toml": "the configuration: homeserver address and the node's Matrix account id",
    WIPED_MARKER_NAME: "this note: when the node was wiped",
    PID_FILE_NAME: "the pid of the last `minga run`",
}


def _describe(path: Path, passphrase_file: Path | None) -> str:
    if passphrase_file is not None and path.resolve() == passphrase_file.resolve():
        return "THE PASSPHRASE FILE: delete it (the passphrase opens your backups)"
    base = path.name.removesuffix("-wal").removesuffix("-shm").removesuffix("-journal")
    if base == DATABASE_FILE_NAME and base != path.name:
        return "the database's side file (same content rules as the database)"
    return _DESCRIPTIONS.get(path.name, "a file Minga did not write, left as it was")


def what_remains(data_dir: Path, passphrase_file: Path | None = None) -> list[Remains]:
    return [Remains(path, path.stat().st_size, _describe(path, passphrase_file))
            for path in sorted(data_dir.rglob("*")) if path.is_file()]


def _overwrite_and_delete(path: Path) -> None:
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.write(secrets.token_bytes(max(size, 1)))
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()


async def audit_wipe(node: Node, *, actor: str) -> None:
    async with node.store.transaction() as tx:
        await tx.audit.append(actor, "node.wipe", target=node.org_id)
        await staff_users(tx).end_all_sessions()


def destroy_data_key(data_dir: Path, wiped_at: str) -> None:
    """Overwrite and delete ``store.key`` (and a half-written copy), leave the marker."""
    for name in (KEY_FILE_NAME, KEY_FILE_NAME + ".tmp"):
        path = data_dir / name
        if path.exists():
            _overwrite_and_delete(path)
    directory = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    (data_dir / WIPED_MARKER_NAME).write_text(
        f"This Minga node was wiped at {wiped_at}: its data key was destroyed, so the"
        " passphrase no longer opens it. Only a backup restores it (minga backup restore).\n",
        encoding="utf-8")
