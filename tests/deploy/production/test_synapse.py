"""deploy/production/homeserver.yaml loads with Synapse's own parser once filled in, and
exempt_from_rate_limits.py lifts the node account's limits on a real Synapse."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from synapse.config._base import ConfigError
from synapse.config.homeserver import HomeServerConfig

from deploy.homeserver import Homeserver
from tests.support import REPO

PRODUCTION = REPO / "deploy" / "production"
TEMPLATE = PRODUCTION / "homeserver.yaml"
EXEMPT = PRODUCTION / "exempt_from_rate_limits.py"
SECRETS = ("registration_shared_secret", "macaroon_secret_key", "form_secret")


def filled_in(directory: Path, server_name: str = "matrix.example.org") -> Path:
    """The template as an operator fills it in, its /etc and /var paths moved to ``directory``,
    with the secret files the guide has the operator make, and Synapse's own signing key."""
    text = TEMPLATE.read_text().replace("@@SERVER_NAME@@", server_name)
    for system_path in ("/etc/matrix-synapse/", "/var/lib/matrix-synapse/", "/var/run/matrix-"):
        text = text.replace(system_path, f"{directory}/")
    for name in SECRETS:
        (directory / name).write_text(f"{name}-for-the-test\n")
    (directory / "log.yaml").write_text("version: 1\nroot: {level: INFO}\n")
    config = directory / "homeserver.yaml"
    config.write_text(text)
    subprocess.run([sys.executable, "-m", "synapse.app.homeserver", "--config-path",
                    str(config), "--generate-keys"], check=True, capture_output=True,
                   stdin=subprocess.DEVNULL)
    return config


def test_the_template_holds_no_secret_and_names_every_placeholder() -> None:
    text = TEMPLATE.read_text()
    settings = [line for line in text.splitlines() if line and not line.lstrip().startswith("#")]
    for name in SECRETS:
        assert any(line.startswith(f"{name}_path:") for line in settings), name
        assert not any(line.startswith(f"{name}:") for line in settings), name
    assert not any(line.strip().startswith("password:") for line in settings)
    assert set(_placeholders(text)) == {"@@SERVER_NAME@@"}


def _placeholders(text: str) -> list[str]:
    return re.findall(r"@@[A-Z_]+@@", text)


def test_synapse_accepts_the_filled_in_template(tmp_path: Path) -> None:
    config = HomeServerConfig.load_config("check", ["--config-path", str(filled_in(tmp_path))])
    assert config.server.server_name == "matrix.example.org"
    assert config.server.public_baseurl == "https://matrix.example.org/"
    database = config.database.databases[0].config
    assert database["name"] == "psycopg2"
    assert database["args"]["host"] == "/var/run/postgresql"
    assert not config.registration.enable_registration
    listener = config.server.listeners[0]
    assert listener.bind_addresses == ["127.0.0.1", "::1"]  # type: ignore[union-attr]
    names = {name for resource in listener.http_options.resources  # type: ignore[union-attr]
             for name in resource.names}
    assert {"client", "federation"} <= names
    assert config.federation.federation_domain_whitelist is None  # federation is open
    # People keep Synapse's limits; the node's account is exempted by the admin API.
    assert config.ratelimiting.rc_message.per_second == pytest.approx(0.2)
    # This node's own media is never deleted; cached copies of others' are kept long.
    assert config.media.media_retention_local_media_lifetime_ms is None
    assert config.media.media_retention_remote_media_lifetime_ms is not None
    assert config.media.media_retention_remote_media_lifetime_ms >= 180 * 24 * 3600 * 1000
    assert config.media.max_upload_size >= 32 * 1024 * 1024


def test_a_placeholder_left_in_is_refused_by_synapse(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="@@SERVER_NAME@@"):
        HomeServerConfig.load_config(
            "check", ["--config-path", str(filled_in(tmp_path, "@@SERVER_NAME@@"))])


def exempt(homeserver: Homeserver, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXEMPT), "--homeserver", homeserver.url,
                           *arguments], capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)


def test_the_node_account_is_exempted_through_the_admin_api(
        homeserver: Homeserver, tmp_path: Path) -> None:
    admin = homeserver.create_account("admin", admin=True)
    node = homeserver.create_account("minga-node")
    password = tmp_path / "admin-password"
    password.write_text(admin.password + "\n")
    done = exempt(homeserver, "--admin-user", admin.user_id, "--admin-password-file",
                  str(password), node.user_id)
    assert done.returncode == 0, done.stderr
    assert "is exempt" in done.stdout
    path = f"/_synapse/admin/v1/users/{node.user_id}/override_ratelimit"
    assert homeserver.request("GET", path, access_token=admin.access_token) == {
        "messages_per_second": 0, "burst_count": 0}


def test_a_non_admin_is_refused_with_the_reason(homeserver: Homeserver, tmp_path: Path) -> None:
    someone = homeserver.create_account("someone")
    token = tmp_path / "token"
    token.write_text(someone.access_token)
    done = exempt(homeserver, "--admin-token-file", str(token), someone.user_id)
    assert done.returncode == 2
    assert "HTTP 403" in done.stderr and "Traceback" not in done.stderr
