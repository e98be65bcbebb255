"""``minga backup new-account``: what it refuses and how it rewrites node.toml (M13 item 5).
The move itself runs against real homeservers in test_restore_elsewhere_federated.py."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from node.cli import main
from node.features.backup.new_account import with_homeserver
from tests.support.offline_node import make_offline_node, passphrase_in_environment

CONFIG = """# comment kept
[node]
data_dir = "."

[homeserver]  # the old one
url = "https://old.example.org"
user_id = "@old:old.example.org"

[http]
port = 8470
"""


def test_the_homeserver_section_is_replaced_and_the_rest_kept() -> None:
    text = with_homeserver(CONFIG, "https://new.example.net", "@new:new.example.net")
    loaded = tomllib.loads(text)
    assert loaded["homeserver"] == {"url": "https://new.example.net",
                                    "user_id": "@new:new.example.net"}
    assert loaded["http"] == {"port": 8470} and "# comment kept" in text
    assert with_homeserver(text, "https://new.example.net", "@new:new.example.net") == text


def test_a_config_without_the_section_gets_one() -> None:
    text = with_homeserver('[node]\ndata_dir = "."\n', "https://h.example", "@n:h.example")
    assert tomllib.loads(text)["homeserver"]["user_id"] == "@n:h.example"


async def test_the_command_needs_one_way_to_get_the_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = await make_offline_node(tmp_path / "node")
    before = config.read_text(encoding="utf-8")
    with passphrase_in_environment():
        code = main(["--config", str(config), "backup", "new-account",
                     "--homeserver", "https://h.example"])
    assert code != 0
    assert "--registration-secret-file" in capsys.readouterr().err
    assert config.read_text(encoding="utf-8") == before
    missing = tmp_path / "no-such-file"
    with passphrase_in_environment():
        code = main(["--config", str(config), "backup", "new-account", "--homeserver",
                     "https://h.example", "--registration-secret-file", str(missing)])
    assert code != 0 and "cannot read" in capsys.readouterr().err
