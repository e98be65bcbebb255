"""Shared fixtures: real Synapse homeservers on loopback, started once per test session.

``homeserver`` is one stand-alone server; ``federation`` two servers and ``federation3`` three
servers federating over TLS with certificate checks on. Each has ``create_account(prefix)``.
Ports are chosen at run time and data lives under pytest's per-run temporary directory, so two
runs on one machine do not clash. Tests that stop or restart servers start their own through
``deploy.homeserver`` instead of using these shared ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deploy.homeserver import Federation, Homeserver, start_federation, start_homeserver


@pytest.fixture(scope="session")
def homeserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homeserver]:
    server = start_homeserver(tmp_path_factory.mktemp("homeserver"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    servers = start_federation(tmp_path_factory.mktemp("federation"), 2)
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="session")
def federation3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    servers = start_federation(tmp_path_factory.mktemp("federation3"), 3)
    try:
        yield servers
    finally:
        servers.stop()
