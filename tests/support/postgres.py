"""A real PostgreSQL server for tests, from Debian's ``postgresql`` package.

:func:`start_postgres` runs ``initdb`` in a new temporary directory and starts the server on a
free loopback port, its unix socket in that directory. The test superuser ``minga`` logs in
over TCP with a random password (SCRAM, as a real server would ask) and over the unix socket
without one (how the harness itself runs ``psql``). PostgreSQL refuses to run as root, so as
root the server runs as the unprivileged ``postgres`` system user the package creates (through
``runuser``); the directory is then made in ``/tmp`` and handed to that user, because pytest's
own temporary directories are private to root. :meth:`PostgresServer.stop` stops it and
removes the directory; if the test run dies first, even killed, Linux stops the server with it.

The server is started once per test session (``tests/conftest.py``); each test gets a database
of its own from :meth:`PostgresServer.new_database`.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "minga"
_RUN_AS = "postgres"  # the system user Debian's postgresql-common creates
_PACKAGE = "postgresql"
_PR_SET_PDEATHSIG = 1
_PREFIX = "minga-postgres-"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed and cannot be installed here."""


def _bin_dir() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda path: int(path.parent.parent.name))
    return versions[-1].parent if versions else None


def postgres_bin_dir() -> Path:
    """Debian's PostgreSQL programs, installing the package first when root and missing."""
    found = _bin_dir()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=environment,
                       stdin=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", _PACKAGE],
                       check=True, env=environment, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL)
        found = _bin_dir()
    if found is None:
        raise PostgresUnavailable(
            f"PostgreSQL is not installed: run `apt-get install {_PACKAGE}` (or `make setup` as "
            "root, which runs deploy/bootstrap.sh)")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", _RUN_AS, "--", *command] if os.geteuid() == 0 else command


def _die_with_this_process() -> None:
    """In the server's process before exec (after it became the server user, which would
    clear the setting): Linux stops it (fast shutdown) when the test run dies, even killed."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGINT)


@dataclass
class PostgresServer:
    directory: Path
    port: int
    bin_dir: Path
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    process: subprocess.Popen[bytes] | None = None
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def url(self, database: str = "postgres", user: str = SUPERUSER,
            password: str | None = None) -> str:
        """A URL for ``user`` (the superuser's password unless another is given; an empty
        one is left out)."""
        secret = self.password if password is None else password
        login = f"{user}:{secret}" if secret else user
        return f"postgresql://{login}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser; its output (unaligned, tuples only)."""
        done = subprocess.run(
            [str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", str(self.directory), "-p", str(self.port), "-U", SUPERUSER, "-d", database,
             "-c", sql],
            check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        return done.stdout.strip()

    def new_database(self, prefix: str = "test", *, with_password: bool = True) -> str:
        """A new, empty database, owned by the superuser; its URL (without the password, as
        node.toml would hold it, if ``with_password`` is false)."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name, password=None if with_password else "")

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (one of :meth:`new_database`), connections and all."""
        name = url.rsplit("/", 1)[1]
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def ready(self) -> bool:
        done = subprocess.run([str(self.bin_dir / "pg_isready"), "-q", "-h", str(self.directory),
                               "-p", str(self.port)], check=False, stdin=subprocess.DEVNULL)
        return done.returncode == 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def _remove_dead_servers(older_than_seconds: float = 600) -> None:
    """Directories left by runs that were killed (their servers died with them)."""
    for directory in Path(tempfile.gettempdir()).glob(_PREFIX + "*"):
        pid_file = directory / "data" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError):
            if time.time() - directory.stat().st_mtime < older_than_seconds:
                continue  # perhaps a server still being set up by another run
            if pid_file.exists() and Path(f"/proc/{int(pid_file.read_text().split()[0])}").exists():
                continue
            shutil.rmtree(directory, ignore_errors=True)


def start_postgres(*, max_connections: int = 300, durable: bool = False) -> PostgresServer:
    """Initialise and start a throw-away server; stop it with :meth:`PostgresServer.stop`.
    ``durable`` keeps PostgreSQL's own durability settings (for benchmarks: as SQLite's
    ``synchronous=FULL``, every commit reaches the disk)."""
    bin_dir = postgres_bin_dir()
    _remove_dead_servers()
    directory = Path(tempfile.mkdtemp(prefix=_PREFIX))
    as_root = os.geteuid() == 0
    if as_root:
        account = pwd.getpwnam(_RUN_AS)
        os.chown(directory, account.pw_uid, account.pw_gid)
    server = PostgresServer(directory, free_port(), bin_dir)
    password_file = directory / "superuser-password"
    password_file.write_text(server.password)
    if as_root:
        os.chown(password_file, account.pw_uid, account.pw_gid)
    try:
        subprocess.run(_as_server_user([
            str(bin_dir / "initdb"), "-D", str(server.data_dir), "-U", SUPERUSER,
            f"--pwfile={password_file}", "--auth-local=trust", "--auth-host=scram-sha-256",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]),
            check=True, capture_output=True, stdin=subprocess.DEVNULL)
    except subprocess.CalledProcessError as error:
        server.stop()
        raise PostgresUnavailable(f"initdb failed: {error.stderr.decode(errors='replace')}") \
            from None
    password_file.unlink()
    settings = {"port": str(server.port), "unix_socket_directories": str(directory),
                "listen_addresses": "127.0.0.1", "max_connections": str(max_connections)}
    if not durable:  # a test server's data is thrown away: the store's settings are tested
        settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    command = [str(bin_dir / "postgres"), "-D", str(server.data_dir)]
    command += [part for name, value in settings.items() for part in ("-c", f"{name}={value}")]
    log = (directory / "server.log").open("wb")
    # Run directly, not through pg_ctl (which detaches it): it dies with this process.
    server.process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        user=_RUN_AS if as_root else None, group=_RUN_AS if as_root else None,
        extra_groups=[] if as_root else None, preexec_fn=_die_with_this_process)
    log.close()
    deadline = time.monotonic() + 60
    while not server.ready():
        if server.process.poll() is not None or time.monotonic() > deadline:
            details = (directory / "server.log").read_text(errors="replace")
            server.stop()
            raise PostgresUnavailable(f"PostgreSQL did not start: {details}")
        time.sleep(0.1)
    return server
