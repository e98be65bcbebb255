"""The release wheel: built from this checkout, installed on its own, it runs a whole node.

The wheel is installed with ``pip install --target`` into a temporary directory and run from
another directory, by an interpreter started with ``-S`` whose ``PYTHONPATH`` holds only that
directory and this environment's third-party packages: not the checkout, and not the editable
install of it that ``deploy/bootstrap.sh`` makes. What the wheel leaves out is therefore missing.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from deploy.homeserver import Homeserver
from tests.support.postgres import free_port

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("node", "federation", "schemas", "sync", "deploy")
# Files of the packages that a node never uses: the checkout's own set-up script.
NOT_SHIPPED = frozenset({"deploy/bootstrap.sh"})
PASSPHRASE = "a release test passphrase nobody guesses"


def _version() -> str:
    with (REPO / "pyproject.toml").open("rb") as handle:
        version: str = tomllib.load(handle)["project"]["version"]
    return version


def _source_files(root: Path) -> set[str]:
    return {
        path.relative_to(root).as_posix()
        for package in PACKAGES
        for path in (root / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


@dataclass(frozen=True)
class Release:
    wheel: Path
    target: Path
    sources: set[str]

    def env(self) -> dict[str, str]:
        """The environment of a ``minga`` that sees the wheel's files and third-party packages
        only: the site directories are on PYTHONPATH, but ``-S`` keeps their .pth files (the
        editable install's among them) from running."""
        paths = [str(self.target)]
        for key in ("purelib", "platlib"):
            site = sysconfig.get_paths()[key]
            if site not in paths:
                paths.append(site)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["MINGA_PASSPHRASE"] = PASSPHRASE
        return env

    def minga(self, *args: str) -> list[str]:
        return [sys.executable, "-S", str(self.target / "bin" / "minga"), *args]


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    """The wheel built from a copy of the checkout (so the build leaves nothing in it),
    installed without its dependencies into a directory of its own."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for package in PACKAGES:
        shutil.copytree(REPO / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp_path_factory.mktemp("wheels")
    # No build isolation: setuptools comes from the lock file (requirements/build.in), so the
    # build needs no network and uses the same setuptools on every machine.
    (requirement,) = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"][
        "requires"]
    assert Requirement(requirement).specifier.contains(
        importlib.metadata.version("setuptools")), "this environment predates the lock: make setup"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(wheels), str(source)],
                   check=True, cwd=source)
    (wheel,) = wheels.glob("minga-*.whl")
    target = tmp_path_factory.mktemp("installed")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--target", str(target), str(wheel)], check=True)
    return Release(wheel, target, _source_files(source))


def test_the_wheel_holds_every_file_of_the_packages(release: Release) -> None:
    names = set(zipfile.ZipFile(release.wheel).namelist())
    missing = sorted(release.sources - NOT_SHIPPED - names)
    assert not missing, f"left out of the wheel: {missing}"
    assert release.wheel.name == f"minga-{_version()}-py3-none-any.whl"


def test_the_installed_minga_prints_its_version_outside_the_checkout(
    release: Release, tmp_path: Path,
) -> None:
    where = subprocess.run(
        [sys.executable, "-S", "-c",
         "import node, sys; print(node.__file__); print(*sys.path, sep='\\n')"],
        env=release.env(), cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    assert where[0].startswith(str(release.target / "node")), where
    # The checkout itself is not on the path (the venv may live inside it: that is allowed).
    assert str(REPO) not in where[1:], where
    shown = subprocess.run(release.minga("--version"), env=release.env(), cwd=tmp_path,
                           capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == f"minga {_version()}"


def _get(url: str, language: str = "es") -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Accept-Language": language})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def running_release(release: Release, homeserver: Homeserver, tmp_path: Path
                    ) -> Iterator[str]:
    """A node created by the installed ``minga init`` (its store made by the wheel's
    migrations) and served by the installed ``minga run``; yields its base URL."""
    secret = tmp_path / "registration-secret"
    secret.write_text(homeserver.state.registration_shared_secret)
    port = free_port()
    subprocess.run(
        release.minga("init", "--org-name", "Colectivo del Paquete", "--country", "co",
                      "--homeserver", homeserver.url, "--data-dir", "node",
                      "--http-port", str(port), "--registration-secret-file", str(secret)),
        env=release.env(), cwd=tmp_path, check=True, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    assert (tmp_path / "node" / "node.toml").is_file()
    status = subprocess.run(release.minga("--config", "node/node.toml", "status"),
                            env=release.env(), cwd=tmp_path, capture_output=True, text=True)
    assert status.returncode == 0, status.stderr
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(release.minga("--config", "node/node.toml", "run"),
                               env=release.env(), cwd=tmp_path, stdin=subprocess.DEVNULL,
                               stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _get(base + "/login")
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "run.log").read_text()
                assert time.monotonic() < deadline, "the node did not start serving"
                time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_the_installed_node_serves_its_pages_in_spanish(running_release: str) -> None:
    status, page = _get(running_release + "/login")
    assert status == 200, page
    # The login page's template (a feature's), its base (the core's) and the Spanish catalogue.
    assert "Iniciar sesión" in page and 'name="password"' in page
    assert 'href="/static/minga.css"' in page
    # The core's static files and a feature's.
    status, stylesheet = _get(running_release + "/static/minga.css")
    assert status == 200 and "{" in stylesheet
    status, script = _get(running_release + "/static/alerts/alerts.js")
    assert status == 200 and "function" in script
