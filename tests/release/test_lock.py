"""The lock files in ``requirements/`` agree with ``pyproject.toml`` (decision 0027).

Every dependency the project declares, and each extra that a lock file is made for, is pinned
there at a version inside its declared range, and every pin carries hashes (``pip install
--require-hashes`` refuses anything else). The three lock files pin shared packages alike, and
the environment running these tests was installed from ``dev.lock``. ``make lock`` fixes what
these tests find.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "requirements"
# Each lock file and the extras of pyproject.toml it is compiled with (Makefile, `lock`).
LOCKS: dict[str, tuple[str, ...]] = {
    "runtime.lock": (),
    "homeserver.lock": ("homeserver",),
    "dev.lock": ("homeserver", "dev", "bench"),
}
_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;]+)\s*(;(?P<marker>.*))?$")


@dataclass(frozen=True)
class Pin:
    name: NormalizedName
    version: Version
    marker: Marker | None
    hashes: tuple[str, ...]


def parse_lock(text: str) -> list[Pin]:
    """The pins of a hashed requirements file as ``uv pip compile`` writes it. Anything but
    ``name==version [; marker]`` followed by ``--hash`` options is an error."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current.strip(), "the file ends with a continued line"
    pins = []
    for entry in logical:
        head, *options = re.split(r"\s+(?=--)", entry.strip())
        match = _PIN.match(head.strip())
        assert match, f"not an exact pin: {head!r}"
        hashes = []
        for option in options:
            key, _, value = option.partition("=")
            assert key == "--hash", f"unexpected option {option!r} in {head!r}"
            hashes.append(value.strip())
        marker = match["marker"]
        pins.append(Pin(canonicalize_name(match["name"]), Version(match["version"]),
                        Marker(marker.strip()) if marker else None, tuple(hashes)))
    return pins


def _pyproject() -> dict[str, object]:
    with (REPO / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def _declared(extras: tuple[str, ...]) -> list[Requirement]:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    declared = [Requirement(text) for text in project["dependencies"]]
    for extra in extras:
        declared += [Requirement(text) for text in project["optional-dependencies"][extra]]
    return declared


def _build_requirements() -> list[Requirement]:
    """What dev.lock holds besides the project: its build system and requirements/build.in."""
    build_system = _pyproject()["build-system"]
    assert isinstance(build_system, dict)
    lines = (REQUIREMENTS / "build.in").read_text().splitlines()
    return [Requirement(text) for text in build_system["requires"]] + [
        Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def _lock(name: str) -> list[Pin]:
    return parse_lock((REQUIREMENTS / name).read_text(encoding="utf-8"))


def _unmet(declared: list[Requirement], pins: list[Pin]) -> list[str]:
    by_name: dict[NormalizedName, list[Pin]] = {}
    for pin in pins:
        by_name.setdefault(pin.name, []).append(pin)
    problems = []
    for requirement in declared:
        found = by_name.get(canonicalize_name(requirement.name), [])
        if not found:
            problems.append(f"{requirement} is not pinned")
        problems += [f"{requirement} is pinned at {pin.version}" for pin in found
                     if not requirement.specifier.contains(pin.version, prereleases=True)]
    return problems


@pytest.mark.parametrize("lock_name", sorted(LOCKS))
def test_every_declared_dependency_is_pinned_inside_its_range(lock_name: str) -> None:
    declared = _declared(LOCKS[lock_name])
    if lock_name == "dev.lock":
        declared += _build_requirements()
    problems = _unmet(declared, _lock(lock_name))
    assert not problems, f"requirements/{lock_name} (run `make lock`): {problems}"


@pytest.mark.parametrize("lock_name", sorted(LOCKS))
def test_every_pin_carries_hashes(lock_name: str) -> None:
    pins = _lock(lock_name)
    assert pins
    unhashed = [pin.name for pin in pins if not pin.hashes]
    assert not unhashed, f"requirements/{lock_name}: pins without a hash: {unhashed}"
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for pin in pins for h in pin.hashes)


def test_the_lock_files_pin_shared_packages_alike() -> None:
    """The same versions (their markers may differ: dev.lock needs some packages on more
    platforms than the others do)."""
    def versions(name: str) -> dict[NormalizedName, set[Version]]:
        found: dict[NormalizedName, set[Version]] = {}
        for pin in _lock(name):
            found.setdefault(pin.name, set()).add(pin.version)
        return found

    dev = versions("dev.lock")
    for lock_name in ("runtime.lock", "homeserver.lock"):
        differ = {name: (sorted(found), sorted(dev.get(name, ())))
                  for name, found in versions(lock_name).items() if found != dev.get(name)}
        assert not differ, f"requirements/{lock_name} and dev.lock differ: {differ}"


def test_the_parser_refuses_what_pip_would_not_check() -> None:
    good = parse_lock("# header\nfoo==1.0 ; python_version < '4' \\\n"
                      f"    --hash=sha256:{'a' * 64}\n    # via bar\n")
    assert good == [Pin(canonicalize_name("foo"), Version("1.0"), Marker("python_version < '4'"),
                        (f"sha256:{'a' * 64}",))]
    for bad in ("foo>=1.0\n", "foo @ https://example.org/foo.whl\n", "-e .\n"):
        with pytest.raises(AssertionError):
            parse_lock(bad)
    assert _unmet([Requirement("foo>=2")], good) == ["foo>=2 is pinned at 1.0"]
    assert _unmet([Requirement("baz")], good) == ["baz is not pinned"]


def test_this_environment_was_installed_from_the_dev_lock() -> None:
    """What `make test` runs with is what every other machine gets (deploy/bootstrap.sh)."""
    differ: dict[str, tuple[Version, Version | None]] = {}
    for pin in _lock("dev.lock"):
        if pin.marker is not None and not pin.marker.evaluate():
            continue
        try:
            installed = Version(importlib.metadata.version(pin.name))
        except importlib.metadata.PackageNotFoundError:
            differ[pin.name] = (pin.version, None)
            continue
        if installed != pin.version:
            differ[pin.name] = (pin.version, installed)
    assert not differ, f"locked and installed versions differ (run make setup): {differ}"
