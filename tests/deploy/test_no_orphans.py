"""Stopping a test run or a launcher in any way leaves no Synapse or PostgreSQL process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.homeserver import Homeserver
from tests.support import REPO
from tests.support.processes import interruptible, is_running, wait_for_file, wait_until_gone


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
@pytest.mark.parametrize("server", ["homeserver", "postgres"])
def test_interrupted_test_run_leaves_no_server(
        tmp_path: Path, stop_signal: int, server: str) -> None:
    """Neither Synapse nor the PostgreSQL of tests/support/postgres.py outlives a test run."""
    pid_file = tmp_path / "server.pid"
    run = subprocess.Popen(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "--basetemp", str(tmp_path / "run"), f"tests/support/probes/hold_{server}.py",
        ],
        cwd=REPO,
        env=os.environ | {"MINGA_PROBE_PID_FILE": str(pid_file)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True, preexec_fn=interruptible,
    )
    try:
        server_pid = int(wait_for_file(pid_file))
        assert is_running(server_pid)
        run.send_signal(stop_signal)
        run.wait(timeout=60)
        assert wait_until_gone(server_pid), f"the {server} outlived the interrupted test run"
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


def test_next_start_reaps_a_homeserver_whose_launcher_vanished(tmp_path: Path) -> None:
    # A launcher that dies without its death signal reaching Synapse (e.g. the start thread
    # outlives it) leaves a pid file; the next start from the same directory cleans up.
    server = Homeserver.create(tmp_path / "hs")
    server.start()
    first_pid = server.pid
    assert first_pid is not None
    server._process = None  # forget it, as a crashed launcher would
    again = Homeserver.open(tmp_path / "hs")
    again.start()
    try:
        assert wait_until_gone(first_pid), "the stale Synapse was not reaped"
        assert again.pid != first_pid and again.running
    finally:
        again.stop()


def test_cli_homeserver_start_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-m", "node.cli", "homeserver", "start", "--dir", str(tmp_path / "hs")],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=interruptible,
    )
    try:
        assert launcher.stdout is not None
        first_line = launcher.stdout.readline()
        assert "is running at http://127.0.0.1:" in first_line, first_line
        server = Homeserver.open(tmp_path / "hs")
        synapse_pid = int((tmp_path / "hs" / "homeserver.pid").read_text())
        assert server.request("GET", "/_matrix/client/versions")["versions"]
        launcher.send_signal(signal.SIGINT)
        output = launcher.communicate(timeout=60)[0]
        assert launcher.returncode == 0
        assert "Homeserver stopped." in output
        assert wait_until_gone(synapse_pid)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
