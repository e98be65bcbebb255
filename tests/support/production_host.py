"""One member's server set up as docs/deploy.md says, on a host of tests/support/topology.py.

Each host runs, as its systemd units would (started directly in its namespace, no systemd):
PostgreSQL holding the ``minga`` and ``synapse`` databases; Synapse from
``deploy/production/homeserver.yaml`` under its real server name ``hs-<xx>.test``; Caddy from
``deploy/production/Caddyfile``; and the node, made by ``minga init`` on PostgreSQL, with the
guide's ``trusted_proxies`` line and ``[metrics]``, its account exempted from rate limits by
``exempt_from_rate_limits.py``, and run with its passphrase as the unit's credential.

What differs from a real server, and why:

* paths: ``/etc``, ``/var/lib``, ``/var/run`` and ``/var/log`` move into the test's
  directories (as tests/deploy/production/test_synapse.py does), and the programs run as root
  with PostgreSQL letting local socket connections in without peer checks ("trust"), since the
  test does not create the system users ``minga`` and ``matrix-synapse``;
* TLS: Caddy's certificates come from the throwaway test CA instead of Let's Encrypt (one
  ``tls`` line per site), and Synapse trusts that CA for federation
  (``federation_custom_ca_list``) in a ``conf.d`` file, as Debian's package reads them;
* the same ``conf.d`` file lets Synapse federate with the test's private network
  (``ip_range_whitelist``: Synapse refuses private addresses by default, and real servers have
  public ones) and shortens its retry intervals after an outage (the test waits minutes, not the
  hours of a real one).
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deploy.tls import ThrowawayCA
from tests.support import REPO
from tests.support.postgres import postgres_bin_dir
from tests.support.topology import Host

PRODUCTION = REPO / "deploy" / "production"
PASSPHRASE = "topology test: a passphrase nobody guesses"
ADMIN_PASSWORD = "topology test: the homeserver admin's password"
ORGANISATIONS = {"co": ("Colectivo Sur", "CO"), "ke": ("Haki Kenya", "KE"),
                 "ph": ("Karapatan Watch", "PH")}
SYNAPSE_SECRETS = ("registration_shared_secret", "macaroon_secret_key", "form_secret")


def minga_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "node.cli", *arguments]


def _wait(what: str, check: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s")


@dataclass
class ProductionHost:
    host: Host
    directory: Path  # this host's /etc, /var/lib and /var/log, private to root
    database_dir: Path  # PostgreSQL's data and socket, readable by the postgres user
    org_id: str = ""
    matrix_user_id: str = ""
    config: Path = Path()

    # ----- the processes, as their units start them ------------------------------------

    @property
    def socket_dir(self) -> Path:
        return self.database_dir

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **extra}

    def minga(self, *arguments: str, check: bool = True, timeout: float = 300
              ) -> subprocess.CompletedProcess[str]:
        """``minga --config node.toml ARGUMENTS`` on this host, as the guide's alias runs it
        (the passphrase from the environment instead of a prompt)."""
        return self.host.run(minga_command("--config", str(self.config), *arguments),
                             check=check, timeout=timeout,
                             env=self.env(MINGA_PASSPHRASE=PASSPHRASE))

    def curl(self, url: str, *options: str) -> subprocess.CompletedProcess[str]:
        return self.host.run(["curl", "-sS", "--max-time", "10", *options, url], check=False,
                             timeout=60)

    # ----- section 3: PostgreSQL ------------------------------------------------------------

    def start_postgres(self) -> None:
        bin_dir = postgres_bin_dir()
        account = pwd.getpwnam("postgres")
        os.chown(self.database_dir, account.pw_uid, account.pw_gid)
        as_postgres = ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
                       "--clear-groups"]
        subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D",
                        str(self.database_dir / "data"), "-U", "postgres",
                        "--auth-local=trust", "--auth-host=reject", "-E", "UTF8",
                        "--locale=C.UTF-8", "--no-sync"],
                       check=True, capture_output=True, stdin=subprocess.DEVNULL)
        self.host.popen([*as_postgres, "--pdeathsig=INT", str(bin_dir / "postgres"),
                         "-D", str(self.database_dir / "data"), "-c", "listen_addresses=",
                         "-c", f"unix_socket_directories={self.socket_dir}",
                         "-c", "fsync=off", "-c", "synchronous_commit=off",
                         "-c", "full_page_writes=off"],
                        self.directory / "log" / "postgresql.log")

        def ready() -> bool:
            return subprocess.run([str(bin_dir / "pg_isready"), "-q", "-h",
                                   str(self.socket_dir)], check=False).returncode == 0

        _wait(f"PostgreSQL on {self.host.short}", ready, 60)
        # The guide's createuser/createdb, as the postgres user.
        for command in (["createuser", "minga"], ["createdb", "--owner=minga", "minga"],
                        ["createuser", "matrix-synapse"],
                        ["createdb", "--encoding=UTF8", "--locale=C", "--template=template0",
                         "--owner=matrix-synapse", "synapse"]):
            subprocess.run([*as_postgres, str(bin_dir / command[0]), "-h", str(self.socket_dir),
                            *command[1:]], check=True, capture_output=True,
                           stdin=subprocess.DEVNULL)

    # ----- section 4: Synapse ---------------------------------------------------------------

    @property
    def synapse_dir(self) -> Path:
        return self.directory / "etc" / "matrix-synapse"

    def start_synapse(self, ca: ThrowawayCA, network: str) -> None:
        etc = self.synapse_dir
        (etc / "conf.d").mkdir(parents=True, exist_ok=True)
        var_lib = self.directory / "var" / "lib" / "matrix-synapse"
        var_lib.mkdir(parents=True, exist_ok=True)
        for secret in SYNAPSE_SECRETS:  # head -c 32 /dev/urandom | base64
            (etc / secret).write_text(_random_base64() + "\n")
            (etc / secret).chmod(0o640)
        text = (PRODUCTION / "homeserver.yaml").read_text()
        text = text.replace("@@SERVER_NAME@@", self.host.homeserver_name)  # the guide's sed
        text = text.replace("/var/run/postgresql", str(self.socket_dir))
        text = text.replace("/etc/matrix-synapse/", f"{etc}/")
        text = text.replace("/var/lib/matrix-synapse/", f"{var_lib}/")
        text = text.replace("/var/run/", f"{var_lib}/")
        (etc / "homeserver.yaml").write_text(text)
        (etc / "log.yaml").write_text(json.dumps({
            "version": 1,
            "formatters": {"precise": {"format": "%(asctime)s %(name)s %(levelname)s"
                                                 " %(request)s %(message)s"}},
            "filters": {"context": {"()": "synapse.logging.context.LoggingContextFilter"}},
            "handlers": {"file": {"class": "logging.FileHandler", "formatter": "precise",
                                  "filters": ["context"],
                                  "filename": str(self.directory / "log" / "synapse.log")}},
            "root": {"level": "INFO", "handlers": ["file"]},
            "disable_existing_loggers": False}))
        (etc / "conf.d" / "test-network.yaml").write_text(json.dumps({
            "federation_custom_ca_list": [str(ca.certificate_path)],
            "ip_range_whitelist": [network],
            "federation": {"destination_min_retry_interval": "2s",
                           "destination_retry_multiplier": 1.5,
                           "destination_max_retry_interval": "10s",
                           "max_short_retry_delay": "1s", "max_long_retry_delay": "2s"},
        }))
        config = ["--config-path", str(etc / "homeserver.yaml"), "--config-path",
                  str(etc / "conf.d")]
        subprocess.run([sys.executable, "-m", "synapse.app.homeserver", *config,
                        "--generate-keys"], check=True, capture_output=True,
                       stdin=subprocess.DEVNULL)
        self.host.popen([sys.executable, "-m", "synapse.app.homeserver", *config],
                        self.directory / "log" / "synapse.out", env=self.env())
        _wait(f"Synapse on {self.host.short}",
              lambda: self.curl("http://127.0.0.1:8008/health", "-f").stdout == "OK", 180)
        # register_new_matrix_user -c homeserver.yaml --admin -u admin http://127.0.0.1:8008
        self.host.run([sys.executable, "-m", "synapse._scripts.register_new_matrix_user",
                       "-c", str(etc / "homeserver.yaml"), "--admin", "-u", "admin",
                       "-p", ADMIN_PASSWORD, "http://127.0.0.1:8008"], env=self.env())

    # ----- section 5: Caddy -----------------------------------------------------------------

    def start_caddy(self, ca: ThrowawayCA) -> None:
        binary = shutil.which("caddy")
        assert binary, "Caddy is missing: deploy/bootstrap.sh installs Debian's caddy package"
        home = self.directory / "caddy"
        tls = ca.issue_server_certificate(home / "tls", [self.host.homeserver_name,
                                                         self.host.web_name])
        text = (PRODUCTION / "Caddyfile").read_text()
        # The guide's sed: the two names and the e-mail address.
        text = text.replace("minga.example.org", self.host.web_name)
        text = text.replace("matrix.example.org", self.host.homeserver_name)
        text = text.replace("admin@example.org", f"admin@{self.host.homeserver_name}")
        # The test's own: certificates of the test CA, logs in the test's directory.
        line = f"\ttls {tls.certificate} {tls.private_key}\n"
        for site in (f"{self.host.web_name} {{\n",
                     f"{self.host.homeserver_name}, {self.host.homeserver_name}:8448 {{\n"):
            assert site in text, site
            text = text.replace(site, site + line)
        text = text.replace("/var/log/caddy/", f"{self.directory / 'log'}/")
        caddyfile = home / "Caddyfile"
        caddyfile.write_text(text)
        env = self.env(HOME=str(home), XDG_DATA_HOME=str(home / "data"),
                       XDG_CONFIG_HOME=str(home / "config"))
        self.host.run([binary, "validate", "--config", str(caddyfile), "--adapter",
                       "caddyfile"], env=env)
        self.host.popen([binary, "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
                        self.directory / "log" / "caddy.out", env=env)
        _wait(f"Caddy on {self.host.short}", lambda: self.curl(
            f"https://{self.host.homeserver_name}:8448/_matrix/federation/v1/version",
            "-f", "--cacert", str(ca.certificate_path)).returncode == 0, 60)

    # ----- section 6: the node --------------------------------------------------------------

    def init_node(self) -> None:
        name, country = ORGANISATIONS[self.host.short]
        lib = self.directory / "var" / "lib" / "minga"
        lib.mkdir(parents=True, exist_ok=True)
        secret = lib / "registration-secret"
        shutil.copy(self.synapse_dir / "registration_shared_secret", secret)
        secret.chmod(0o400)
        made = self.host.run(minga_command(
            "init", "--org-name", name, "--country", country,
            "--homeserver", "http://127.0.0.1:8008",
            "--registration-secret-file", str(secret), "--data-dir", str(lib / "node"),
            "--store-url", f"postgresql://minga@/minga?host={self.socket_dir}", "--json"),
            env=self.env(MINGA_PASSPHRASE=PASSPHRASE))
        secret.unlink()
        result = json.loads(made.stdout.strip().splitlines()[-1])
        self.org_id, self.matrix_user_id = result["org_id"], result["matrix_user_id"]
        self.config = Path(result["config_file"])
        # Behind Caddy: the guide's sed line, then [metrics] as "Monitoring" appends it.
        text = self.config.read_text()
        assert "\n[http]\n" in text
        text = text.replace("\n[http]\n", '\n[http]\ntrusted_proxies = ["127.0.0.1", "::1"]\n',
                            1)
        text += '\n[metrics]\nlisten = "127.0.0.1:9464"\n'
        self.config.write_text(text)
        checked = self.host.run(minga_command("config", "check", str(self.config)),
                                env=self.env())
        assert "valid" in checked.stdout, checked.stdout
        # Lift the rate limit for the node's account.
        password = self.directory / "admin-password"
        password.write_text(ADMIN_PASSWORD + "\n")
        self.host.run([sys.executable, str(PRODUCTION / "exempt_from_rate_limits.py"),
                       "--admin-user", "admin", "--admin-password-file", str(password),
                       self.matrix_user_id], env=self.env())
        password.unlink()

    def start_node(self) -> None:
        """``ExecStart=minga --config node.toml run`` with the passphrase as its credential."""
        credentials = self.directory / "credentials"
        credentials.mkdir(mode=0o700, exist_ok=True)
        (credentials / "passphrase").write_text(PASSPHRASE)
        self.host.popen(minga_command("--config", str(self.config), "run"),
                        self.directory / "log" / "node.log",
                        env=self.env(CREDENTIALS_DIRECTORY=str(credentials)))
        _wait(f"the node on {self.host.short}", lambda: self.curl(
            "http://127.0.0.1:8470/health").stdout.startswith("{"), 120)


def _random_base64() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def database_directory() -> Path:
    """A directory the ``postgres`` user can reach (pytest's are private to root)."""
    return Path(tempfile.mkdtemp(prefix="minga-topology-pg-"))
