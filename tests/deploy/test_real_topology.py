"""The test of the real topology (issue M12): three member servers, each a network namespace
set up only as docs/deploy.md says (tests/support/production_host.py), form a coalition over
federation with TLS from a test CA and work as a real deployment would, through a pulled cable.

Run with ``-s`` to see the wall time and each host's memory at rest, for the issue's note.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.tls import ThrowawayCA
from tests.support.production_host import ProductionHost, database_directory
from tests.support.topology import Topology, topology

STARTED = time.monotonic()


@dataclass
class Coalition:
    net: Topology
    hosts: dict[str, ProductionHost]
    ca: ThrowawayCA
    directory: Path

    def __getitem__(self, short: str) -> ProductionHost:
        return self.hosts[short]


@pytest.fixture(scope="module")
def coalition(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coalition]:
    directory = tmp_path_factory.mktemp("topology")
    ca = ThrowawayCA(directory / "ca")
    databases: list[Path] = []
    try:
        with topology() as net:
            network = net.client_addresses[0].rsplit(".", 1)[0] + ".0/24"
            hosts = {}
            for short, host in net.hosts.items():
                databases.append(database_directory())
                hosts[short] = ProductionHost(host, directory / short, databases[-1])
            for server in hosts.values():
                server.start_postgres()
                server.start_synapse(ca, network)
                server.start_caddy(ca)
                server.init_node()
                server.start_node()
            yield Coalition(net, hosts, ca, directory)
    finally:
        for database in databases:
            shutil.rmtree(database, ignore_errors=True)


def test_every_host_serves_its_node_through_caddy(coalition: Coalition) -> None:
    for server in coalition.hosts.values():
        answer = server.curl(f"https://{server.host.web_name}/health", "--cacert",
                             str(coalition.ca.certificate_path))
        assert answer.returncode == 0, answer.stderr
        assert '"status"' in answer.stdout
