"""The namespace hosts of the topology test (tests/support/topology.py): they reach each other
by name, a pulled cable cuts a host off until it is plugged back, and nothing is left behind,
even when the test fails."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import is_running
from tests.support.topology import NETNS_ETC, Host, links, namespaces, topology


def fetch(host: Host, url: str) -> subprocess.CompletedProcess[str]:
    return host.run(["curl", "-fsS", "--max-time", "3", url], check=False, timeout=30)


def eventually_fetched(host: Host, url: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = fetch(host, url)
        if done.returncode == 0:
            return done.stdout
        time.sleep(0.2)
    raise AssertionError(f"{host.short} could not fetch {url}: {done.stderr}")


def test_hosts_reach_each_other_by_name_and_a_pulled_cable_cuts_one_off(tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello.txt").write_text("hello from ke\n")
    with topology() as net:
        ke = net["ke"]
        server = ke.popen([sys.executable, "-m", "http.server", "8000", "--bind", ke.address,
                           "--directory", str(tmp_path / "www")], tmp_path / "http.log")
        url = "http://hs-ke.test:8000/hello.txt"
        assert eventually_fetched(net["co"], url) == "hello from ke\n"
        assert eventually_fetched(net["ph"], "http://minga-ke.test:8000/hello.txt")
        # Names from the hosts file and from the test network's DNS server agree; other names
        # are refused at once.
        assert net["co"].run(["getent", "hosts", "hs-ph.test"]).stdout.split()[0] == \
            net["ph"].address
        assert net["co"].run(["getent", "ahosts", "minga-ke.test"]).stdout.split()[0] == \
            ke.address
        assert net["co"].run(["getent", "hosts", "nowhere.test"], check=False).returncode != 0
        ke.link(up=False)
        assert fetch(net["co"], url).returncode != 0
        ke.link(up=True)
        assert eventually_fetched(net["co"], url) == "hello from ke\n"
        names = {host.namespace for host in net.hosts.values()}
        assert names <= namespaces()
        assert net.bridge in links()
    assert server.poll() is not None and not is_running(server.pid)
    assert not names & namespaces()
    assert net.bridge not in links()
    assert not [name for name in names if (NETNS_ETC / name).exists()]


def test_everything_goes_when_the_test_fails_inside(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="the test failed"), topology(("aa", "bb")) as net:
        sleeper = net["aa"].popen(["sleep", "600"], tmp_path / "sleep.log")
        raise RuntimeError("the test failed")
    assert not is_running(sleeper.pid)
    assert not {host.namespace for host in net.hosts.values()} & namespaces()
    assert not {host.veth for host in net.hosts.values()} & links()
    assert net.bridge not in links()
