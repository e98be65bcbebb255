"""Process helpers for tests that check nothing is left running."""

from __future__ import annotations

import signal
import time
from pathlib import Path


def interruptible() -> None:
    """``preexec_fn`` for a child a test stops with Ctrl-C (SIGINT): a shell that starts the
    test run in the background, without job control, ignores SIGINT for it, and an ignored
    signal stays ignored across exec, so the child would never see the Ctrl-C under test."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def wait_until_gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(pid):
            return True
        time.sleep(0.1)
    return False


def wait_for_file(path: Path, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.1)
    raise AssertionError(f"{path} did not appear within {timeout} s")
