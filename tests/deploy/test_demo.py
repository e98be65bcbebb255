"""The demo network: sample data, `minga demo --dir D` end to end, restart, and clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from deploy.demo import DEMO_ORGS, DemoLayout, move_incomplete_aside, run_demo
from schemas.case import Case
from tests.support import REPO
from tests.support.processes import interruptible, is_running, wait_until_gone

READY_LINE = "Press Ctrl-C to stop the demo."
# `minga demo --dir D` runs deploy.demo.run_demo; until node.cli wires it, call the module itself.
DEMO_COMMAND = [sys.executable, "-m", "node.cli", "demo"]
ORG_KEYS = {"name", "org_id", "api", "token", "web", "homeserver"}
HOMESERVER_KEYS = {"url", "server_name", "data_dir"}


def _sample_cases(key: str) -> list[dict[str, Any]]:
    org = next(org for org in DEMO_ORGS if org.key == key)
    cases: list[dict[str, Any]] = json.loads(org.sample_cases.read_text(encoding="utf-8"))
    return cases


# ----- sample data ----------------------------------------------------------------------------


def test_sample_cases_are_valid_cases_from_each_orgs_country() -> None:
    for org in DEMO_ORGS:
        cases = [Case.model_validate(raw) for raw in _sample_cases(org.key)]
        assert len(cases) >= 3, org.key
        assert {case.country for case in cases} == {org.country}


def test_sample_cases_vary_consent_risk_and_script() -> None:
    cases = [Case.model_validate(raw) for org in DEMO_ORGS for raw in _sample_cases(org.key)]
    assert len({case.consent_level for case in cases}) >= 4
    assert len({case.risk_level for case in cases}) >= 3
    native_names = [v.native_name for case in cases for v in case.victims if v.native_name]
    assert any(not name.isascii() and not _is_latin(name) for name in native_names)
    assert any(v.kind == "collective" for case in cases for v in case.victims)
    assert any("/" in case.incident_date for case in cases)  # a date range
    assert any(len(case.incident_date) == 4 for case in cases)  # a year only


def _is_latin(text: str) -> bool:
    return all(ord(char) < 0x0250 for char in text)


# ----- the directory --------------------------------------------------------------------------


def test_a_directory_holding_other_files_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert run_demo(tmp_path) == 1
    assert "notes.txt" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_an_interrupted_setup_is_moved_aside_whole(tmp_path: Path) -> None:
    layout = DemoLayout(tmp_path)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "setup.log").write_text("$ minga init ...\n")
    (tmp_path / "passphrase").write_text("secret\n")
    (tmp_path / "demo.lock").touch()
    assert not layout.is_complete()
    first = move_incomplete_aside(layout)
    assert first is not None and first.parent == tmp_path / "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.lock", "old"]
    assert (first / "logs" / "setup.log").read_text() == "$ minga init ...\n"
    (tmp_path / "passphrase").write_text("again\n")
    second = move_incomplete_aside(layout)
    assert second is not None and second != first
    assert (second / "passphrase").read_text() == "again\n"
    assert move_incomplete_aside(layout) is None


# ----- end to end -----------------------------------------------------------------------------


def _api_get(org: dict[str, str], path: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(org["api"] + path)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None


def _wait_for_line(process: subprocess.Popen[bytes], output: Path, line: str,
                   timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = output.read_text(encoding="utf-8", errors="replace")
        if line in text:
            return text
        if process.poll() is not None:
            raise AssertionError(f"the demo exited with {process.returncode}:\n{text}")
        time.sleep(0.5)
    raise AssertionError(f"the demo did not print {line!r} within {timeout} s:\n"
                         f"{output.read_text(errors='replace')}")


@contextmanager
def _demo(directory: Path, output: Path) -> Iterator[subprocess.Popen[bytes]]:
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [*DEMO_COMMAND, "--dir", str(directory)],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=interruptible,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _stop(process: subprocess.Popen[bytes], output: Path, stop_signal: int) -> None:
    process.send_signal(stop_signal)
    assert process.wait(timeout=120) == 0, output.read_text(errors="replace")


def _started_pids(directory: Path) -> list[int]:
    pid_files = [*directory.glob("homeservers/hs*/homeserver.pid"), *directory.glob("logs/*.pid")]
    return [int(path.read_text()) for path in pid_files]


def _processes_mentioning(directory: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(directory).encode() in cmdline and is_running(int(entry.name)):
            found.append(int(entry.name))
    return found


def _assert_nothing_left(directory: Path, pids: list[int]) -> None:
    assert all(wait_until_gone(pid) for pid in pids), "a homeserver or node outlived the demo"
    assert _processes_mentioning(directory) == []


def _check_shape(info: dict[str, Any]) -> None:
    assert set(info) == {"orgs", "homeservers"}
    assert len(info["orgs"]) == 3 and len(info["homeservers"]) == 2
    assert all(set(server) == HOMESERVER_KEYS for server in info["homeservers"])
    assert all(Path(server["data_dir"]).is_dir() for server in info["homeservers"])
    urls = [server["url"] for server in info["homeservers"]]
    for org, spec in zip(info["orgs"], DEMO_ORGS, strict=True):
        assert set(org) == ORG_KEYS
        assert org["name"] == spec.name
        assert org["api"].startswith("http://127.0.0.1:") and org["api"].endswith("/api/v1")
        assert org["web"] + "api/v1" == org["api"]
        assert org["homeserver"] in urls
    used = sorted(sum(org["homeserver"] == url for org in info["orgs"]) for url in urls)
    assert used == [1, 2]


def _check_status(info: dict[str, Any]) -> None:
    for org in info["orgs"]:
        assert _api_get(org, "/status")[0] == 401
        status, body = _api_get(org, "/status", org["token"])
        assert status == 200
        assert body["org_id"] == org["org_id"] and body["org_name"] == org["name"]


def _check_members(info: dict[str, Any], timeout: float = 60) -> None:
    """Every org lists the other two as verified members (the roster syncs in the background)."""
    every_id = {org["org_id"] for org in info["orgs"]}
    deadline = time.monotonic() + timeout
    for org in info["orgs"]:
        wanted = every_id - {org["org_id"]}
        verified: set[str] = set()
        while not wanted <= verified and time.monotonic() < deadline:
            body = _api_get(org, "/members", org["token"])[1]
            verified = {m["org_id"] for m in body["members"] if m["verified"]}
            time.sleep(0.5)
        assert wanted <= verified, f"{org['name']} sees {verified}, not all of {wanted}"


def _check_cases(info: dict[str, Any]) -> None:
    for org, spec in zip(info["orgs"], DEMO_ORGS, strict=True):
        status, body = _api_get(org, "/cases?limit=100", org["token"])
        assert status == 200
        titles = sorted(item["payload"]["title"] for item in body["items"])
        assert titles == sorted(case["title"] for case in _sample_cases(spec.key))


def _check_shared(info: dict[str, Any]) -> None:
    """Each org shared two sample cases with the other two: each receives four, verified."""
    deadline = time.monotonic() + 120
    for org in info["orgs"]:
        others = {o["org_id"] for o in info["orgs"]} - {org["org_id"]}
        while True:
            status, body = _api_get(org, "/received?kind=case", org["token"])
            assert status == 200
            items = body["items"]
            if len(items) >= 4 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert len(items) == 4, f"{org['name']} received {len(items)} shared cases"
        assert {item["issuer"] for item in items} == others
        assert all(item["verification"] == "verified" for item in items)


def _check_figures(info: dict[str, Any]) -> None:
    """Every member published its figures: each node's coalition figures count all three."""
    deadline = time.monotonic() + 120
    every_id = {org["org_id"] for org in info["orgs"]}
    for org in info["orgs"]:
        while True:
            status, body = _api_get(org, "/coalition/aggregates", org["token"])
            assert status == 200
            contributors = {c["org_id"] for c in body["contributors"]}
            if contributors == every_id or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert contributors == every_id, f"{org['name']} has figures from {contributors}"
        assert body["figures"], f"{org['name']} shows no figures"


def test_demo_runs_restarts_and_stops_without_leaving_processes(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    first_output = tmp_path / "first.out"
    with _demo(directory, first_output) as demo:
        _wait_for_line(demo, first_output, READY_LINE)
        info = json.loads((directory / "demo.json").read_text(encoding="utf-8"))
        _check_shape(info)
        _check_status(info)
        _check_members(info)
        _check_cases(info)
        _check_shared(info)
        _check_figures(info)
        assert (directory / "passphrase").stat().st_mode & 0o077 == 0
        assert (directory / "demo.json").stat().st_mode & 0o077 == 0

        second = subprocess.run(
            [*DEMO_COMMAND, "--dir", str(directory)],
            cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
        )
        assert second.returncode == 1 and "already running" in second.stderr

        pids = _started_pids(directory)
        assert len(pids) == 5  # two homeservers, three nodes
        _stop(demo, first_output, signal.SIGINT)
    _assert_nothing_left(directory, pids)

    again_output = tmp_path / "again.out"
    with _demo(directory, again_output) as demo:
        text = _wait_for_line(demo, again_output, READY_LINE, timeout=120)
        assert "Restarting the demo" in text
        assert json.loads((directory / "demo.json").read_text(encoding="utf-8")) == info
        _check_status(info)
        _check_cases(info)  # the sample cases were not loaded a second time
        pids = _started_pids(directory)
        _stop(demo, again_output, signal.SIGTERM)
    _assert_nothing_left(directory, pids)
