"""Hosts made of network namespaces, for the test of the real topology (issue M12).

:func:`topology` builds one Linux bridge in this (the test's) namespace and, for each host, a
network namespace joined to the bridge by a veth pair, with an address of its own and an
``/etc/hosts`` that names every host (``ip netns exec`` bind-mounts ``/etc/netns/<ns>/hosts``
over ``/etc/hosts``) and a DNS server for the ``test.`` zone on the bridge (``resolv.conf``
likewise), which answers the hosts' names and "no such name" for anything else, promptly, as
real DNS does (Synapse looks up ``_matrix-fed._tcp`` SRV records before it falls back to port
8448; with no server at all every lookup would wait for a timeout). The bridge has addresses
of its own too: the test process is "the Internet", a client of every host.

Everything is removed on the way out, even when the test fails: the processes started in the
hosts (:meth:`Host.popen`), the namespaces, the bridge and ``/etc/netns/<ns>``. Names carry a
random tag, so two runs on one machine do not clash.

It needs root and iproute2's ``ip``; without them :func:`require_root_networking` fails with
the reason (the test is not skipped: ``make test`` runs as root).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deploy.processes import die_with_parent

NETNS_ETC = Path("/etc/netns")


class TopologyUnavailable(AssertionError):
    """This machine cannot build namespaces (not root, or no ``ip``)."""


def require_root_networking() -> None:
    if os.geteuid() != 0:
        raise TopologyUnavailable(
            "the topology test builds network namespaces and must run as root (make test as"
            " root, as CI does)")
    if shutil.which("ip") is None:
        raise TopologyUnavailable("the topology test needs iproute2's `ip`: apt-get install"
                                  " iproute2")


def ip(*arguments: str) -> None:
    done = subprocess.run(["ip", *arguments], capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise AssertionError(f"ip {' '.join(arguments)}: {done.stderr.strip()}")


@dataclass
class Host:
    """One machine: a namespace with one interface, ``eth0``, at ``address``."""

    short: str  # co, ke, ph
    namespace: str
    address: str
    veth: str  # the end in the test's namespace, on the bridge: down = cable pulled
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def homeserver_name(self) -> str:
        return f"hs-{self.short}.test"

    @property
    def web_name(self) -> str:
        return f"minga-{self.short}.test"

    def command(self, command: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *command]

    def run(self, command: Sequence[str], *, check: bool = True, timeout: float = 300,
            env: dict[str, str] | None = None, input: str | None = None
            ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` on this host and wait for it; its output as text."""
        done = subprocess.run(self.command(command), capture_output=True, text=True,
                              check=False, timeout=timeout, env=env, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise AssertionError(f"on {self.short}: {' '.join(command)} -> {done.returncode}:"
                                 f" {done.stdout[-2000:]} {done.stderr[-2000:]}")
        return done

    def popen(self, command: Sequence[str], log: Path, *,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start a long-running ``command`` on this host (as a unit's ExecStart would), its
        output into ``log``; it is stopped when the topology goes, or dies with this process."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            process = subprocess.Popen(
                self.command(command), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, env=env, start_new_session=True,
                preexec_fn=die_with_parent)
        self.processes.append(process)
        return process

    def stop_processes(self, timeout: float = 30) -> None:
        """SIGTERM every process started here (their groups), newest first; SIGKILL after
        ``timeout``."""
        for process in reversed(self.processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=timeout)
        self.processes.clear()

    def link(self, up: bool) -> None:
        """Plug (``up``) or pull this host's network cable."""
        ip("link", "set", self.veth, "up" if up else "down")


@dataclass
class Topology:
    hosts: dict[str, Host]
    bridge: str
    client_addresses: tuple[str, ...]  # the test's own addresses on the bridge
    dns_address: str

    def __getitem__(self, short: str) -> Host:
        return self.hosts[short]

    def hosts_file(self) -> str:
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        lines += [f"{host.address}\t{host.homeserver_name} {host.web_name}"
                  for host in self.hosts.values()]
        return "\n".join(lines) + "\n"

    def zone(self) -> str:
        """The ``test.`` zone for Twisted's DNS server (a Python zone file)."""
        records = [f"A({name!r}, {host.address!r})" for host in self.hosts.values()
                   for name in (host.homeserver_name, host.web_name)]
        return ("zone = [\n    SOA('test', mname='ns.test', rname='root.test', serial=1,"
                " refresh=60, retry=60, expire=60, minimum=1),\n    "
                + ",\n    ".join(records) + ",\n]\n")


@contextlib.contextmanager
def _dns_server(net: Topology, directory: Path) -> Iterator[None]:
    zone = directory / "test.zone.py"
    zone.write_text(net.zone())
    log = (directory / "dns.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "twisted", "dns", "--pyzone", str(zone), "--interface",
         net.dns_address, "--port", "53"], stdin=subprocess.DEVNULL, stdout=log,
        stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    log.close()
    try:
        deadline = time.monotonic() + 30
        while not _answers_dns(net.dns_address, next(iter(net.hosts.values())).homeserver_name):
            assert process.poll() is None and time.monotonic() < deadline, \
                f"the test DNS server did not start: {(directory / 'dns.log').read_text()}"
            time.sleep(0.2)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers_dns(server: str, name: str) -> bool:
    done = subprocess.run([sys.executable, "-c", (
        "import sys\n"
        "from twisted.names import client\n"
        "from twisted.internet import task\n"
        "def main(reactor):\n"
        f"    return client.createResolver(servers=[({server!r}, 53)]).lookupAddress({name!r})\n"
        "task.react(main)\n")], capture_output=True, timeout=30, check=False)
    return done.returncode == 0


@contextlib.contextmanager
def topology(shorts: Sequence[str] = ("co", "ke", "ph"), *, clients: int = 2
             ) -> Iterator[Topology]:
    """The hosts ``hs-<short>.test`` on one bridge; the test's namespace holds ``clients``
    addresses on it (10.X.Y.201, .202, ...) and the DNS server's (10.X.Y.253)."""
    require_root_networking()
    tag = secrets.token_hex(2)
    subnet = f"10.{secrets.randbelow(200) + 20}.{secrets.randbelow(250) + 1}"
    bridge = f"mgbr{tag}"
    hosts = {short: Host(short, f"minga-{tag}-{short}", f"{subnet}.{index + 1}",
                         f"mgv{tag}{short}")
             for index, short in enumerate(shorts)}
    built = Topology(hosts, bridge, tuple(f"{subnet}.{201 + n}" for n in range(clients)),
                     f"{subnet}.253")
    directory = Path(tempfile.mkdtemp(prefix="minga-topology-"))
    try:
        ip("link", "add", bridge, "type", "bridge")
        for address in (*built.client_addresses, built.dns_address):
            ip("addr", "add", f"{address}/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        for host in hosts.values():
            etc = NETNS_ETC / host.namespace
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(built.hosts_file())
            (etc / "resolv.conf").write_text(f"nameserver {built.dns_address}\n"
                                             "options timeout:1 attempts:2\n")
            ip("netns", "add", host.namespace)
            ip("link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns",
               host.namespace)
            ip("link", "set", host.veth, "master", bridge)
            ip("link", "set", host.veth, "up")
            ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
            ip("-n", host.namespace, "link", "set", "eth0", "up")
            ip("-n", host.namespace, "link", "set", "lo", "up")
        with _dns_server(built, directory):
            yield built
    finally:
        for host in hosts.values():
            with contextlib.suppress(Exception):
                host.stop_processes()
        for host in hosts.values():
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True,
                           check=False)  # takes its eth0 and so the veth pair with it
            subprocess.run(["ip", "link", "del", host.veth], capture_output=True, check=False)
            shutil.rmtree(NETNS_ETC / host.namespace, ignore_errors=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
        shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            NETNS_ETC.rmdir()  # only if no other namespace has files there


def namespaces() -> set[str]:
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in done.stdout.splitlines() if line.strip()}


def links() -> set[str]:
    done = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                          check=True)
    return {line.split(":")[1].strip().split("@")[0] for line in done.stdout.splitlines()}
