"""A node on an existing homeserver (an access token issued for its account) and ``minga
doctor`` against real Synapse homeservers."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from deploy.homeserver import Account, Homeserver, start_homeserver
from node.cli import main
from node.core.runtime import NodeNotReady, open_node
from node.core.server import _explain_homeserver_problems
from node.core.setup import MatrixAccountChoice
from node.features.backup.service import create_backup

PASSPHRASE = "doctor test passphrase"


def _issue_token(homeserver: Homeserver, account: Account) -> str:
    """What an admin of a MAS or SSO server hands over: a token for the account's own device
    (here from a password login, standing in for `mas-cli manage issue-compatibility-token`)."""
    answer = homeserver.request("POST", "/_matrix/client/v3/login", {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": account.user_id},
        "password": account.password, "initial_device_display_name": "Minga node"})
    return str(answer["access_token"])


def _init_with_token(homeserver: Homeserver, tmp_path: Path, token: str,
                     capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    token_file = tmp_path / "matrix-token"
    token_file.write_text(token + "\n")
    code = main(["init", "--org-name", "Red Andina", "--country", "pe", "--homeserver",
                 homeserver.url, "--data-dir", str(tmp_path / "node"),
                 "--matrix-access-token-file", str(token_file), "--json"])
    captured = capsys.readouterr()
    return code, captured.out if code == 0 else captured.err


def _doctor(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, str]]]:
    code = main(["--config", str(config), "doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] == (code == 0)
    return code, report["findings"]


@pytest.fixture
def token_node(homeserver: Homeserver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               capsys: pytest.CaptureFixture[str]) -> tuple[Path, Account]:
    monkeypatch.setenv("MINGA_PASSPHRASE", PASSPHRASE)
    account = homeserver.create_account("existing-node")
    code, out = _init_with_token(homeserver, tmp_path, _issue_token(homeserver, account), capsys)
    assert code == 0, out
    assert json.loads(out)["matrix_user_id"] == account.user_id
    return tmp_path / "node" / "node.toml", account


def test_a_node_inits_from_an_issued_token_and_works(
    token_node: tuple[Path, Account], capsys: pytest.CaptureFixture[str]
) -> None:
    config, account = token_node
    text = config.read_text()
    assert account.user_id in text and "token" not in text.lower()
    assert main(["--config", str(config), "coalition", "create", "Red de prueba",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["room_id"].startswith("!")


def test_a_bad_token_is_one_line_naming_the_option(
    homeserver: Homeserver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MINGA_PASSPHRASE", PASSPHRASE)
    code, err = _init_with_token(homeserver, tmp_path, "syt_not_a_real_token", capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "--matrix-access-token-file" in err and "M_UNKNOWN_TOKEN" in err
    assert "syt_not_a_real_token" not in err
    assert not (tmp_path / "node" / "store.key").exists()
    code, err = _init_with_token(homeserver, tmp_path, "", capsys)
    assert code == 2 and "--matrix-access-token-file: the file is empty" in err
    nobody = Homeserver.create(tmp_path / "never-started")  # nothing listens on its port
    code, err = _init_with_token(nobody, tmp_path, "syt_a_token", capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"--matrix-access-token-file: could not check the token at {nobody.url}" in err


def test_doctor_is_all_clear_on_a_healthy_node(
    token_node: tuple[Path, Account], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = token_node
    assert main(["--config", str(config), "coalition", "create", "Red", "--json"]) == 0
    capsys.readouterr()
    code, findings = _doctor(config, capsys)
    assert code == 0
    # what a node without admin rights cannot verify, and no backup yet: warnings only
    assert {f["check"] for f in findings} == {"rate limit", "backup"}
    assert {f["level"] for f in findings} == {"warning"}
    assert main(["--config", str(config), "doctor"]) == 0
    assert "no problem found" in capsys.readouterr().out


def _set_admin(homeserver: Homeserver, user_id: str) -> None:
    admin = homeserver.create_account("doctor-admin", admin=True)
    homeserver.request("PUT", f"/_synapse/admin/v2/users/{quote(user_id)}", {"admin": True},
                       access_token=admin.access_token)


def test_doctor_names_rate_limiting_and_the_call_that_lifts_it(
    homeserver: Homeserver, token_node: tuple[Path, Account],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, account = token_node
    _set_admin(homeserver, account.user_id)  # now the node can read its own override
    code, findings = _doctor(config, capsys)
    assert code == 1
    [limited] = [f for f in findings if f["check"] == "rate limit"]
    assert limited["level"] == "problem" and account.user_id in limited["message"]
    assert f"/_synapse/admin/v1/users/{account.user_id}/override_ratelimit" in limited["fix"]
    homeserver.request(
        "POST", f"/_synapse/admin/v1/users/{quote(account.user_id)}/override_ratelimit",
        {"messages_per_second": 0, "burst_count": 0}, access_token=account.access_token)
    code, findings = _doctor(config, capsys)
    assert [f["check"] for f in findings] == ["backup"] and code == 0


def test_doctor_names_a_stale_backup(
    token_node: tuple[Path, Account], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, _ = token_node
    three_days_ago = int(time.time()) - 3 * 24 * 3600
    create_backup(config, tmp_path / "old.minga-backup", PASSPHRASE, created_at=three_days_ago)
    code, findings = _doctor(config, capsys)
    assert code == 1
    [backup] = [f for f in findings if f["check"] == "backup"]
    assert backup["level"] == "problem" and "72 hours old" in backup["message"]
    create_backup(config, tmp_path / "new.minga-backup", PASSPHRASE,
                  created_at=int(time.time()))
    assert "backup" not in {f["check"] for f in _doctor(config, capsys)[1]}


@pytest.fixture
def own_homeserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homeserver]:
    server = start_homeserver(tmp_path_factory.mktemp("doctor-homeserver"))
    try:
        yield server
    finally:
        server.stop()


def test_doctor_names_a_homeserver_that_is_down(
    own_homeserver: Homeserver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MINGA_PASSPHRASE", PASSPHRASE)
    account = own_homeserver.create_account("node")
    code, out = _init_with_token(own_homeserver, tmp_path,
                                 _issue_token(own_homeserver, account), capsys)
    assert code == 0, out
    config = tmp_path / "node" / "node.toml"
    own_homeserver.stop()
    code = main(["--config", str(config), "doctor"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    [down] = [line for line in lines if line.startswith("problem: homeserver:")]
    assert own_homeserver.url in down and "start the homeserver" in down
    assert not any(line.startswith("problem: login") for line in lines)


def test_a_revoked_token_is_named_and_replaced_with_minga_matrix_token(
    homeserver: Homeserver, token_node: tuple[Path, Account], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, account = token_node
    stored = (tmp_path / "matrix-token").read_text().strip()
    homeserver.request("POST", "/_matrix/client/v3/logout", {}, access_token=stored)
    code, findings = _doctor(config, capsys)
    [login] = [f for f in findings if f["check"] == "login"]
    assert code == 1 and "M_UNKNOWN_TOKEN" in login["message"]
    assert "minga matrix-token" in login["fix"] and account.user_id in login["fix"]

    other = tmp_path / "other-token"
    other.write_text(_issue_token(homeserver, homeserver.create_account("someone-else")))
    assert main(["--config", str(config), "matrix-token", "--file", str(other)]) == 2
    err = capsys.readouterr().err
    assert "--file: the token belongs to @someone-else" in err and err.count("\n") == 1

    fresh = tmp_path / "fresh-token"
    fresh.write_text(_issue_token(homeserver, account))
    assert main(["--config", str(config), "matrix-token", "--file", str(fresh)]) == 0
    assert account.user_id in capsys.readouterr().out
    code, findings = _doctor(config, capsys)
    assert code == 0 and "login" not in {f["check"] for f in findings}


async def test_the_node_explains_homeserver_problems_when_it_starts(
    homeserver: Homeserver, token_node: tuple[Path, Account], caplog: pytest.LogCaptureFixture,
) -> None:
    config, account = token_node
    _set_admin(homeserver, account.user_id)
    with caplog.at_level(logging.WARNING, logger="minga.node"):
        async with open_node(config) as node:
            await _explain_homeserver_problems(node)
    [line] = [r.getMessage() for r in caplog.records if "rate limit" in r.getMessage()]
    assert line.startswith("problem: rate limit:") and "override_ratelimit" in line
    assert "syt_" not in caplog.text  # never the token


@pytest.mark.parametrize("choice", [
    {},
    {"registration_secret": "s", "access_token": "t"},
    {"user_id": "@a:b", "password": "p", "access_token": "t"},
])
def test_init_takes_exactly_one_way_to_the_account(choice: dict[str, str]) -> None:
    with pytest.raises(NodeNotReady, match="--matrix-access-token-file"):
        MatrixAccountChoice(**choice)


def test_doctor_names_a_bad_config_and_a_store_it_cannot_open(
    token_node: tuple[Path, Account], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, _ = token_node
    code, findings = _doctor(tmp_path / "missing.toml", capsys)
    assert code == 1 and [f["check"] for f in findings] == ["config"]
    monkeypatch.setenv("MINGA_PASSPHRASE", "not the passphrase")
    code, findings = _doctor(config, capsys)
    assert code == 1
    [store] = [f for f in findings if f["check"] == "store"]
    assert "wrong passphrase" in store["message"]
    assert "homeserver" not in {f["check"] for f in findings}  # still reached, without login
