"""Shared fixtures: real Synapse homeservers on loopback, started once per test session.

``homeserver`` is one stand-alone server; ``federation`` two servers and ``federation3`` three
servers federating over TLS with certificate checks on. Each has ``create_account(prefix)``.
Ports are chosen at run time and data lives under pytest's per-run temporary directory, so two
runs on one machine do not clash. Tests that stop or restart servers start their own through
``deploy.homeserver`` instead of using these shared ones.

``postgres`` is one PostgreSQL server for the session; ``store_location`` runs a test once on
SQLite and once on a fresh PostgreSQL database of that server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.homeserver import Federation, Homeserver, start_federation, start_homeserver
from tests.support.postgres import PostgresServer, start_postgres


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


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (tests/support/postgres.py)."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | str]:
    """Where a test's store lives, once per backend: the SQLite file in ``tmp_path`` (the data
    directory, as a node without ``[store] url``), or a new database on the session's
    PostgreSQL server (dropped afterwards). The data key file stays in ``tmp_path`` either
    way."""
    if request.param == "sqlite":
        yield tmp_path
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.new_database()
    yield url
    server.drop_database(url)
