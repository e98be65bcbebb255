"""The embedded homeserver: a real Synapse started as a subprocess, on loopback only.

Used by the demo and the tests, and by ``minga homeserver start``. One class, :class:`Homeserver`,
owns one Synapse in one directory: it writes the configuration, starts the process in its own
process group, waits until the server answers *as itself*, registers accounts through the
shared-secret admin API, and stops it. :func:`start_federation` starts two or more of them that
federate with each other over TLS with certificate checks on.

No Synapse is left behind: the process runs in its own process group, a pid file in the directory
lets the next start reap a server whose launcher crashed, and on Linux the server is told to die
with the thread that started it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deploy.processes import die_with_parent, process_alive, runs_command, terminate_group
from deploy.tls import CertificateFiles, ThrowawayCA

LOOPBACK = "127.0.0.1"
STATE_FILE = "minga-homeserver.json"
PID_FILE = "homeserver.pid"
CONFIG_FILE = "homeserver.yaml"
LOG_FILE = "homeserver.log"
STDOUT_FILE = "homeserver.stdout"

_NO_LIMIT = {"per_second": 10_000, "burst_count": 10_000}


class HomeserverError(RuntimeError):
    """The homeserver could not be started, reached or used; the message says why."""


class PortInUseError(HomeserverError):
    """Another process holds one of the homeserver's ports."""


@dataclass(frozen=True)
class Account:
    """A Matrix account on a homeserver, with a logged-in device."""

    user_id: str
    access_token: str
    device_id: str
    password: str
    homeserver_url: str


@dataclass
class HomeserverState:
    """What must survive a restart of the same homeserver directory."""

    server_name: str
    client_port: int
    federation_port: int | None = None
    federation_whitelist: list[str] = field(default_factory=list)
    ca_certificate: str | None = None
    registration_shared_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    macaroon_secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    form_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    fast_password_hashing: bool = True


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago (the caller retries on a clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _signing_key_line() -> str:
    """A Synapse signing key file line: ``ed25519 <key id> <unpadded base64 seed>``."""
    seed = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    encoded = base64.b64encode(seed).decode().rstrip("=")
    return f"ed25519 a_{secrets.token_hex(2)} {encoded}\n"


class Homeserver:
    """One Synapse homeserver in one directory, reachable on loopback."""

    def __init__(self, directory: Path, state: HomeserverState) -> None:
        self.directory = directory.resolve()
        self.state = state
        self._process: subprocess.Popen[bytes] | None = None

    # ----- construction -------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path) -> Homeserver:
        """The homeserver previously set up in ``directory``."""
        state_path = directory / STATE_FILE
        try:
            raw = json.loads(state_path.read_text())
        except FileNotFoundError:
            raise HomeserverError(f"{directory} holds no embedded homeserver") from None
        return cls(directory, HomeserverState(**raw))

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        client_port: int | None = None,
        fast_password_hashing: bool = True,
    ) -> Homeserver:
        """Set up a stand-alone homeserver (no federation) in ``directory``."""
        port = client_port or free_port()
        state = HomeserverState(
            server_name=f"localhost:{port}",
            client_port=port,
            fast_password_hashing=fast_password_hashing,
        )
        server = cls(directory, state)
        server.write_config()
        return server

    @classmethod
    def open_or_create(cls, directory: Path, *, client_port: int | None = None) -> Homeserver:
        if (directory / STATE_FILE).exists():
            server = cls.open(directory)
            if client_port is not None and client_port != server.state.client_port:
                raise HomeserverError(
                    f"{directory} already holds a homeserver on port {server.state.client_port};"
                    f" use that port or another directory"
                )
            server.write_config()
            return server
        return cls.create(directory, client_port=client_port, fast_password_hashing=False)

    # ----- properties ---------------------------------------------------------------------

    @property
    def server_name(self) -> str:
        return self.state.server_name

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.state.client_port}"

    @property
    def config_path(self) -> Path:
        return self.directory / CONFIG_FILE

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_FILE

    @property
    def database_path(self) -> Path:
        return self.directory / "homeserver.db"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # ----- configuration ------------------------------------------------------------------

    def write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / STATE_FILE).write_text(json.dumps(asdict(self.state), indent=2))
        signing_key = self.directory / "signing.key"
        if not signing_key.exists():
            signing_key.write_text(_signing_key_line())
            signing_key.chmod(0o600)
        log_config = self.directory / "log.config"
        log_config.write_text(json.dumps(self._log_config(), indent=2))
        self.config_path.write_text(json.dumps(self._synapse_config(), indent=2))

    def _log_config(self) -> dict[str, Any]:
        return {
            "version": 1,
            "formatters": {
                "precise": {
                    "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s"
                    " - %(request)s - %(message)s"
                }
            },
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "precise",
                    "filename": str(self.log_path),
                    "filters": ["context"],
                    "encoding": "utf8",
                }
            },
            "filters": {"context": {"()": "synapse.logging.context.LoggingContextFilter"}},
            "loggers": {"synapse.storage.SQL": {"level": "WARNING"}},
            "root": {"level": "INFO", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }

    def _synapse_config(self) -> dict[str, Any]:
        state = self.state
        client_resources = [{"names": ["client", "keys"], "compress": False}]
        listeners: list[dict[str, Any]] = [
            {
                "port": state.client_port,
                "bind_addresses": [LOOPBACK],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": client_resources,
            }
        ]
        config: dict[str, Any] = {
            "server_name": state.server_name,
            "public_baseurl": self.url + "/",
            "listeners": listeners,
            "database": {"name": "sqlite3", "args": {"database": str(self.database_path)}},
            "log_config": str(self.directory / "log.config"),
            "media_store_path": str(self.directory / "media_store"),
            "signing_key_path": str(self.directory / "signing.key"),
            "registration_shared_secret": state.registration_shared_secret,
            "macaroon_secret_key": state.macaroon_secret_key,
            "form_secret": state.form_secret,
            "report_stats": False,
            "enable_registration": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "presence": {"enabled": False},
            "url_preview_enabled": False,
            "enable_metrics": False,
            "serve_server_wellknown": False,
            "default_room_version": "12",
            "max_upload_size": "50M",
            "rc_message": _NO_LIMIT,
            "rc_login": {
                "address": _NO_LIMIT,
                "account": _NO_LIMIT,
                "failed_attempts": _NO_LIMIT,
            },
            "rc_registration": _NO_LIMIT,
            "rc_joins": {"local": _NO_LIMIT, "remote": _NO_LIMIT},
            "rc_joins_per_room": _NO_LIMIT,
            "rc_invites": {"per_room": _NO_LIMIT, "per_user": _NO_LIMIT, "per_issuer": _NO_LIMIT},
            "rc_admin_redaction": _NO_LIMIT,
            "rc_room_creation": _NO_LIMIT,
            "rc_federation": {
                "window_size": 1000,
                "sleep_limit": 10_000,
                "sleep_delay": 1,
                "reject_limit": 10_000,
                "concurrent": 100,
            },
            "federation_domain_whitelist": list(state.federation_whitelist),
        }
        if state.fast_password_hashing:
            config["bcrypt_rounds"] = 4
        if state.federation_port is not None:
            tls = self._certificate_files()
            listeners.append(
                {
                    "port": state.federation_port,
                    "bind_addresses": [LOOPBACK],
                    "type": "http",
                    "tls": True,
                    "x_forwarded": False,
                    "resources": [{"names": ["federation", "keys"], "compress": False}],
                }
            )
            config |= {
                "tls_certificate_path": str(tls.certificate),
                "tls_private_key_path": str(tls.private_key),
                "federation_verify_certificates": True,
                "federation_custom_ca_list": [state.ca_certificate],
                "ip_range_whitelist": ["127.0.0.1/32", "::1/128"],
                "federation": {
                    "max_long_retries": 60,
                    "max_long_retry_delay": "1s",
                    "max_short_retry_delay": "1s",
                    "destination_min_retry_interval": "1s",
                    "destination_retry_multiplier": 1.5,
                    "destination_max_retry_interval": "10s",
                },
            }
        return config

    def _certificate_files(self) -> CertificateFiles:
        return CertificateFiles(self.directory / "tls.crt", self.directory / "tls.key")

    # ----- lifecycle ----------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> None:
        """Start Synapse and return once it answers as this server; raise if it cannot."""
        self.spawn()
        self.wait_ready(timeout)

    def spawn(self) -> None:
        """Start the Synapse process without waiting for it (see :meth:`wait_ready`)."""
        if self.running:
            return
        self.reap_stale()
        self._check_synapse_installed()
        with (self.directory / STDOUT_FILE).open("ab") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        (self.directory / PID_FILE).write_text(f"{self._process.pid}\n")

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                self._raise_startup_failure()
            if self._answers_as_self():
                return
            time.sleep(0.1)
        self.stop()
        raise HomeserverError(
            f"homeserver {self.server_name} did not answer within {timeout:.0f} s;"
            f" see {self.log_path}"
        )

    def _answers_as_self(self) -> bool:
        try:
            self.request("GET", "/_matrix/client/versions", timeout=2)
            keys = self.request("GET", "/_matrix/key/v2/server", timeout=2)
        except (HomeserverError, OSError):
            return False
        return bool(keys.get("server_name") == self.server_name)

    def _raise_startup_failure(self) -> None:
        output = ""
        for name in (STDOUT_FILE, LOG_FILE):
            with contextlib.suppress(OSError):
                output += (self.directory / name).read_text(errors="replace")
        self._process = None
        (self.directory / PID_FILE).unlink(missing_ok=True)
        if "Address already in use" in output or "Couldn't listen on" in output:
            raise PortInUseError(f"a port of homeserver {self.server_name} is taken")
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise HomeserverError(f"homeserver {self.server_name} exited during startup:\n{tail}")

    @staticmethod
    def _check_synapse_installed() -> None:
        probe = subprocess.run(
            [sys.executable, "-c", "import synapse.app.homeserver"],
            capture_output=True,
            check=False,
        )
        if probe.returncode != 0:
            raise HomeserverError(
                "the embedded homeserver needs Synapse: pip install 'minga[homeserver]'"
            )

    def reap_stale(self) -> None:
        """Stop a Synapse left running from this directory by a launcher that crashed."""
        pid_file = self.directory / PID_FILE
        try:
            pid = int(pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return
        ours = runs_command(pid, "synapse.app.homeserver", str(self.config_path))
        if process_alive(pid) and ours:
            terminate_group(pid, timeout=15)
        pid_file.unlink(missing_ok=True)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop Synapse (SIGTERM to its process group, SIGKILL after ``timeout``)."""
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        (self.directory / PID_FILE).unlink(missing_ok=True)

    def kill(self) -> None:
        """Kill Synapse at once, as a crash or a power cut would."""
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        (self.directory / PID_FILE).unlink(missing_ok=True)

    # ----- HTTP ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        access_token: str | None = None,
        timeout: float = 30,
    ) -> dict[str, Any]:
        return http_json(self.url, method, path, body, access_token=access_token,
                         timeout=timeout)

    def register(
        self, localpart: str, password: str | None = None, *, admin: bool = False
    ) -> Account:
        """Create an account through the shared-secret admin API and return its login."""
        return register_account(
            self.url, self.state.registration_shared_secret, localpart, password, admin=admin
        )

    def create_account(self, prefix: str = "user", *, admin: bool = False) -> Account:
        """Register an account with a fresh, unique local part starting with ``prefix``."""
        return self.register(f"{prefix}-{secrets.token_hex(4)}", admin=admin)


def http_json(
    base_url: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    access_token: str | None = None,
    timeout: float = 30,
) -> dict[str, Any]:
    """One JSON request to a homeserver; an HTTP error becomes a :class:`HomeserverError`."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base_url.rstrip("/") + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if access_token:
        request.add_header("Authorization", f"Bearer {access_token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            result: dict[str, Any] = json.loads(response.read() or b"{}")
            return result
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")[:500]
        raise HomeserverError(f"{method} {path} -> {error.code}: {detail}") from None


def register_account(
    homeserver_url: str,
    shared_secret: str,
    localpart: str,
    password: str | None = None,
    *,
    admin: bool = False,
) -> Account:
    """Create an account on a Synapse through its shared-secret admin registration API."""
    password = password or secrets.token_urlsafe(24)
    nonce = http_json(homeserver_url, "GET", "/_synapse/admin/v1/register")["nonce"]
    mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
    mac.update(b"\x00".join(
        part.encode() for part in (nonce, localpart, password, "admin" if admin else "notadmin")
    ))
    answer = http_json(
        homeserver_url,
        "POST",
        "/_synapse/admin/v1/register",
        {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        },
    )
    return Account(
        user_id=answer["user_id"],
        access_token=answer["access_token"],
        device_id=answer["device_id"],
        password=password,
        homeserver_url=homeserver_url.rstrip("/"),
    )


class Federation:
    """Two or three homeservers federating with each other over TLS on loopback."""

    def __init__(self, directory: Path, servers: Sequence[Homeserver], ca: ThrowawayCA) -> None:
        self.directory = directory
        self.servers = list(servers)
        self.ca = ca

    def __getitem__(self, index: int) -> Homeserver:
        return self.servers[index]

    def __iter__(self) -> Iterator[Homeserver]:
        return iter(self.servers)

    def __len__(self) -> int:
        return len(self.servers)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def start_federation(directory: Path, count: int = 2, *, attempts: int = 3,
                     ready_timeout: float = 90.0) -> Federation:
    """Start ``count`` (at least 2; the tests use 2 or 3, bench/coalition_scale.py 5)
    homeservers that federate only with each other, each ready within ``ready_timeout``."""
    if count < 2:
        raise ValueError("a federation has at least two homeservers")
    for attempt in range(attempts):
        servers = _configure_federation(directory, count)
        try:
            for server in servers:
                server.spawn()
            for server in servers:
                server.wait_ready(timeout=ready_timeout)
        except PortInUseError:
            for server in servers:
                server.stop()
            if attempt == attempts - 1:
                raise
            shutil.rmtree(directory, ignore_errors=True)
            continue
        except BaseException:
            for server in servers:
                server.stop()
            raise
        return Federation(directory, servers, ThrowawayCA(directory / "ca"))
    raise AssertionError("unreachable")


def _configure_federation(directory: Path, count: int) -> list[Homeserver]:
    ca = ThrowawayCA(directory / "ca")
    ports = [(free_port(), free_port()) for _ in range(count)]
    names = [f"localhost:{federation_port}" for _, federation_port in ports]
    servers = []
    for index, ((client_port, federation_port), name) in enumerate(
        zip(ports, names, strict=True)
    ):
        server_dir = directory / f"hs{index + 1}"
        ca.issue_server_certificate(server_dir)
        state = HomeserverState(
            server_name=name,
            client_port=client_port,
            federation_port=federation_port,
            federation_whitelist=names,
            ca_certificate=str(ca.certificate_path.resolve()),
        )
        server = Homeserver(server_dir, state)
        server.write_config()
        servers.append(server)
    return servers


def start_homeserver(directory: Path, *, attempts: int = 3) -> Homeserver:
    """Start a stand-alone homeserver on free ports, retrying if a port is taken meanwhile."""
    for attempt in range(attempts):
        server = Homeserver.create(directory / f"try{attempt}" if attempt else directory)
        try:
            server.start()
        except PortInUseError:
            if attempt == attempts - 1:
                raise
            continue
        return server
    raise AssertionError("unreachable")
