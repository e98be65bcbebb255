"""deploy/production's systemd units pass ``systemd-analyze verify`` and keep their hardening."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from node.core.runtime import STORE_PASSWORD_CREDENTIAL
from node.core.store.unlock import PASSPHRASE_CREDENTIAL
from tests.support import REPO

PRODUCTION = REPO / "deploy" / "production"
UNITS = ("minga-node.service", "minga-backup.service", "minga-backup.timer")
SYSTEM_UNITS = Path("/usr/lib/systemd/system")

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None
                                or not SYSTEM_UNITS.is_dir(),
                                reason="needs systemd-analyze and systemd's own units")


def unit_settings(name: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit's [Service] (or [Timer]) section, repeated keys kept."""
    section, settings = "", dict[str, list[str]]()
    for raw in (PRODUCTION / name).read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif line and not line.startswith("#") and section in ("[Service]", "[Timer]"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def executables(unit: Path) -> list[Path]:
    """The programs a unit's Exec*= lines start (first word, any prefix such as - stripped)."""
    found = []
    for raw in unit.read_text().splitlines():
        key, _, value = raw.partition("=")
        if key.startswith("Exec") and value:
            found.append(Path(value.split()[0].lstrip("-@:+!")))
    return found


def verify(units: dict[str, str], root: Path) -> str:
    """Run ``systemd-analyze verify`` on ``units`` (name: text) installed in a fresh root with
    systemd's own units and a stand-in for every program they start; its complaints, if any."""
    (root / "usr" / "lib" / "systemd").mkdir(parents=True)
    shutil.copytree(SYSTEM_UNITS, root / "usr" / "lib" / "systemd" / "system", symlinks=True)
    installed = root / "etc" / "systemd" / "system"
    installed.mkdir(parents=True)
    for name, text in units.items():
        (installed / name).write_text(text)
        for program in executables(installed / name):
            stand_in = root / program.relative_to("/")
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text("#!/bin/sh\n")
            stand_in.chmod(0o755)
    done = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}",
         *(f"/etc/systemd/system/{name}" for name in units)],
        capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"})
    complaints = (done.stdout + done.stderr).strip()
    if done.returncode != 0 and not complaints:
        complaints = f"exit status {done.returncode}"
    return complaints


def shipped() -> dict[str, str]:
    return {name: (PRODUCTION / name).read_text() for name in UNITS}


def test_the_units_verify_cleanly(tmp_path: Path) -> None:
    assert verify(shipped(), tmp_path) == ""


@pytest.mark.parametrize(("name", "good", "bad"), [
    ("minga-node.service", "ProtectSystem=strict", "ProtectSytem=strict"),
    ("minga-node.service", "SystemCallFilter=@system-service", "SystemCallFilter=@system-servce"),
    ("minga-backup.timer", "OnCalendar=*-*-* 03:15:00", "OnCalendar=every night"),
    ("minga-backup.service", "Type=oneshot", "Type=once"),
])
def test_verification_catches_a_broken_unit(tmp_path: Path, name: str, good: str,
                                            bad: str) -> None:
    units = shipped()
    assert good in units[name]
    units[name] = units[name].replace(good, bad)
    assert verify(units, tmp_path) != ""


def test_the_node_service_is_exposed_little(tmp_path: Path) -> None:
    """``systemd-analyze security`` rates the sandbox; 2.0 of 10 or less is "OK"."""
    verify(shipped(), tmp_path)
    for name in ("minga-node.service", "minga-backup.service"):
        done = subprocess.run(
            ["systemd-analyze", "security", "--offline=yes", f"--root={tmp_path}",
             "--threshold=20", "--no-pager", name],
            capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stdout[-600:] + done.stderr


@pytest.mark.parametrize("name", ["minga-node.service", "minga-backup.service"])
def test_the_services_run_sandboxed_as_minga(name: str) -> None:
    settings = unit_settings(name)
    expected = {
        "User": ["minga"], "ProtectSystem": ["strict"], "NoNewPrivileges": ["yes"],
        "PrivateTmp": ["yes"], "ProtectHome": ["yes"], "CapabilityBoundingSet": [""],
        "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6"],
    }
    for key, value in expected.items():
        assert settings.get(key) == value, key
    assert "@system-service" in settings["SystemCallFilter"]
    assert any("/var/lib/minga" in paths.split() for paths in settings["ReadWritePaths"])


@pytest.mark.parametrize("name", ["minga-node.service", "minga-backup.service"])
def test_secrets_come_as_credentials_never_in_the_unit_or_environment(name: str) -> None:
    settings = unit_settings(name)
    credentials = {value.split(":", 1)[0] for value in settings["LoadCredentialEncrypted"]}
    assert credentials == {PASSPHRASE_CREDENTIAL}
    assert "Environment" not in settings and "EnvironmentFile" not in settings
    text = (PRODUCTION / name).read_text()
    assert "MINGA_PASSPHRASE" not in text and "MINGA_STORE_PASSWORD" not in text


def test_the_node_unit_says_how_to_hand_over_a_remote_stores_password() -> None:
    text = (PRODUCTION / "minga-node.service").read_text()
    assert f"#   LoadCredentialEncrypted={STORE_PASSWORD_CREDENTIAL}:" in text


def test_the_node_restarts_on_failure_and_backups_keep_a_window() -> None:
    assert unit_settings("minga-node.service")["Restart"] == ["on-failure"]
    backup = unit_settings("minga-backup.service")
    command = backup["ExecStart"][0].split()
    assert command[command.index("backup"):][:2] == ["backup", "create"]
    assert "--keep" in command and int(command[command.index("--keep") + 1]) >= 7
    assert backup["ExecStartPost"][0].split()[0].endswith("/minga-offsite-copy")
    assert unit_settings("minga-backup.timer")["Persistent"] == ["true"]
