"""The revocation key leaves the node: `minga init` and `minga keys export-revocation`."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest

from deploy.homeserver import Homeserver
from federation.encoding import b64u_encode
from federation.identity import KeyRing, OrgKeys, read_revocation, sign_member_entry
from federation.secretbox import FAST_TEST_PARAMS
from node.cli import main
from node.core.keys import read_revocation_key, revocation_key_form
from node.core.runtime import open_node
from tests.support.offline_node import make_offline_node, passphrase_in_environment

NODE_PASSPHRASE = "correct horse battery staple"
REVOCATION_PASSPHRASE = "a different one for the drawer"


def _needles(raw: bytes) -> list[bytes]:
    return [raw, raw.hex().encode(), b64u_encode(raw).encode(), base64.b64encode(raw)]


def _files(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


async def _node_view(config: Path) -> tuple[bool, str, str]:
    async with open_node(config) as node:
        return (node.keys.revocation is not None, node.org_id,
                node.keys.public().revocation_key)


def test_init_writes_the_revocation_key_away_from_the_node(
    homeserver: Homeserver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MINGA_PASSPHRASE", NODE_PASSPHRASE)
    monkeypatch.setenv("MINGA_REVOCATION_PASSPHRASE", REVOCATION_PASSPHRASE)
    secret = tmp_path / "registration-secret"
    secret.write_text(homeserver.state.registration_shared_secret)
    data_dir = tmp_path / "node"
    assert main(["init", "--org-name", "Colectivo Raíz", "--country", "GT", "--homeserver",
                 homeserver.url, "--data-dir", str(data_dir),
                 "--registration-secret-file", str(secret)]) == 0
    printed = capsys.readouterr().out
    form_file = tmp_path / "node-revocation-key.txt"
    form = form_file.read_text(encoding="ascii")
    assert form in printed  # the paper form is printed as well as written
    revocation = read_revocation_key(form, REVOCATION_PASSPHRASE)
    raw = revocation.private.private_bytes_raw()

    holds, org_id, public = asyncio.run(_node_view(data_dir / "node.toml"))
    assert not holds and revocation.org_id == org_id
    assert b64u_encode(revocation.private.public_key().public_bytes_raw()) == public
    hits = [(path.name, needle) for path in _files(data_dir) for needle in _needles(raw)
            if needle in path.read_bytes()]
    assert hits == []

    assert main(["--config", str(data_dir / "node.toml"), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["holds_revocation_key"] is False


def test_export_revocation_moves_the_key_of_an_older_node_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    config = asyncio.run(make_offline_node(tmp_path / "node"))
    monkeypatch.setenv("MINGA_REVOCATION_PASSPHRASE", REVOCATION_PASSPHRASE)
    with passphrase_in_environment():
        assert asyncio.run(_node_view(config))[0] is True
        inside = tmp_path / "node" / "revocation.txt"
        assert main(["--config", str(config), "keys", "export-revocation",
                     "--out", str(inside)]) == 2
        assert "inside the node's data directory" in capsys.readouterr().err
        out = tmp_path / "usb" / "revocation.txt"
        assert main(["--config", str(config), "keys", "export-revocation",
                     "--out", str(out)]) == 0
        assert "removed it from this node" in capsys.readouterr().out
        holds, org_id, _ = asyncio.run(_node_view(config))
        assert not holds
        assert read_revocation_key(out.read_text(), REVOCATION_PASSPHRASE).org_id == org_id
        assert out.stat().st_mode & 0o077 == 0
        again = tmp_path / "usb" / "again.txt"
        assert main(["--config", str(config), "keys", "export-revocation",
                     "--out", str(again)]) == 2
        assert "no longer holds" in capsys.readouterr().err and not again.exists()


def test_keys_revoke_signs_with_the_offline_key_and_refuses_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    keys = OrgKeys.generate()
    form_file = tmp_path / "drawer.txt"
    form_file.write_text(revocation_key_form(keys, REVOCATION_PASSPHRASE,
                                             params=FAST_TEST_PARAMS))
    monkeypatch.setenv("MINGA_REVOCATION_PASSPHRASE", REVOCATION_PASSPHRASE)
    base = ["keys", "revoke", "--revocation-key", str(form_file)]
    assert main([*base, "--since", "yesterday"]) == 2
    assert "--since: must be an ISO 8601 time" in capsys.readouterr().err
    assert main([*base, "--since", "2999-01-01T00:00:00Z"]) == 2
    assert "must not be in the future" in capsys.readouterr().err
    out = tmp_path / "revocation.json"
    assert main([*base, "--since", "2026-12-01T08:00:00Z", "--out", str(out)]) == 0
    statement = json.loads(out.read_text())
    summary = read_revocation(statement)
    assert summary.org_id == keys.org_id and summary.revoked_kids == (keys.signing_kid,)
    assert summary.revoked_at == 1_796_112_000
    ring = KeyRing()
    ring.add_member_entry(sign_member_entry(keys, {"name": "X", "country": "CO"}))
    ring.apply_revocation(statement)  # signed by the organisation's own revocation key
    assert ring.is_revoked(keys.org_id)
    monkeypatch.setenv("MINGA_REVOCATION_PASSPHRASE", "not it")
    assert main([*base, "--since", "2026-12-01T08:00:00Z"]) == 2
    assert "wrong passphrase" in capsys.readouterr().err
    broken = tmp_path / "typed.txt"
    broken.write_text(form_file.read_text().replace("\n02 ", "\n03 ", 1))
    assert main(["keys", "revoke", "--revocation-key", str(broken), "--since",
                 "2026-12-01T08:00:00Z"]) == 2
    assert "line 02 is missing" in capsys.readouterr().err
