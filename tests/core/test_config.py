"""node.toml loading: the example is valid, and every mistake is an error naming its key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import URL

from node.cli import main
from node.core.config import ConfigError, LogLevel, load_config, parse_config
from node.core.runtime import NodeNotReady, store_location
from schemas.records import RecordKind
from tests.support import REPO

MINIMAL = '[homeserver]\nurl = "http://127.0.0.1:8008"\nuser_id = "@org:localhost:8008"\n'


def test_example_config_is_valid_and_documents_every_setting() -> None:
    config = load_config(REPO / "node.example.toml")
    assert config.http.host == "127.0.0.1"
    assert config.node.data_dir == REPO / "minga-data"
    example = (REPO / "node.example.toml").read_text()
    sections = {"node": config.node, "homeserver": config.homeserver, "http": config.http,
                "metrics": config.metrics}
    for section_name, section in sections.items():
        assert f"[{section_name}]" in example
        for key in type(section).model_fields:
            assert f"{key} =" in example, f"{section_name}.{key} is not documented"


def test_defaults_bind_to_loopback() -> None:
    config = parse_config(MINIMAL)
    assert config.http.host == "127.0.0.1"
    assert config.node.log_level is LogLevel.info


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ('[http]\nprot = 8000\n', "http.prot: unknown field"),
        ('colour = "red"\n', "colour: unknown field"),
        ('[http]\nport = 70000\n', "http.port:"),
        ('[http]\nhost = "localhost"\n', "http.host: must be an IP address"),
        ('[node]\nlog_level = "loud"\n', "node.log_level:"),
        ('[store]\nurl = "mysql://db/minga"\n', "store.url: must be empty"),
        ('[store]\nurl = "postgresql://minga:hunter2@db/minga"\n',
         "store.url: must not hold the password"),
        ('[store]\nurl = "postgresql://minga@db"\n', "store.url: must name the"),
        ('[store]\nurl = "postgresql://minga@db:port/x"\n', "store.url: is not a"),
        ('[store]\npassword = "hunter2"\n', "store.password: unknown field"),
    ],
)
def test_bad_settings_are_named(extra: str, named: str) -> None:
    text = extra + MINIMAL if not extra.startswith("[") else MINIMAL + extra
    with pytest.raises(ConfigError) as raised:
        parse_config(text)
    assert named in str(raised.value)


def test_missing_required_settings_are_named() -> None:
    with pytest.raises(ConfigError, match=r"homeserver: Field required"):
        parse_config("[node]\n")
    with pytest.raises(ConfigError, match=r"homeserver.user_id:"):
        parse_config('[homeserver]\nurl = "http://x"\nuser_id = "not a matrix id"\n')


def test_broken_toml_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_config("[homeserver\n")


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(MINIMAL + '[node]\ndata_dir = "data"\npassphrase_file = "secret"\n')
    config = load_config(path)
    assert config.node.data_dir == tmp_path / "data"
    assert config.node.passphrase_file == tmp_path / "secret"


def test_cli_reports_config_errors_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "node.toml"
    path.write_text(MINIMAL + "[http]\nport = 0\n")
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "http.port:" in err and "Traceback" not in err
    assert main(["config", "check", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_cli_exports_a_json_schema_per_record_kind(tmp_path: Path) -> None:
    assert main(["schemas", "export", str(tmp_path / "out")]) == 0
    written = {path.name for path in (tmp_path / "out").iterdir()}
    assert written == {f"{kind.value}.schema.json" for kind in RecordKind}
    case_schema = json.loads((tmp_path / "out" / "case.schema.json").read_text())
    assert "payload" in case_schema["properties"]


def test_store_password_comes_from_its_file_or_the_environment(tmp_path: Path) -> None:
    (tmp_path / "db-password").write_text("s3cret\n")
    text = MINIMAL + '[store]\nurl = "postgresql://minga@db.example.org/minga"\n'
    config = parse_config(text + 'password_file = "db-password"\n').resolve(tmp_path)
    location = store_location(config.store, tmp_path, {"MINGA_STORE_PASSWORD": "not used"})
    assert isinstance(location, URL) and location.password == "s3cret"
    from_environment = store_location(parse_config(text).store, tmp_path,
                                      {"MINGA_STORE_PASSWORD": "env"})
    assert isinstance(from_environment, URL) and from_environment.password == "env"
    assert store_location(parse_config(MINIMAL).store, tmp_path, {}) == tmp_path  # SQLite
    missing = parse_config(text + 'password_file = "nowhere"\n').resolve(tmp_path)
    with pytest.raises(NodeNotReady, match=r"\[store\] password_file: cannot read"):
        store_location(missing.store, tmp_path, {})


def test_store_password_comes_from_the_systemd_credential(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "store-password").write_text("from-credential\n")
    text = MINIMAL + '[store]\nurl = "postgresql://minga@db.example.org/minga"\n'
    environ = {"CREDENTIALS_DIRECTORY": str(credentials), "MINGA_STORE_PASSWORD": "env"}
    location = store_location(parse_config(text).store, tmp_path, environ)
    assert isinstance(location, URL) and location.password == "from-credential"
    # a credential directory without that credential falls through to the environment
    (credentials / "store-password").unlink()
    location = store_location(parse_config(text).store, tmp_path, environ)
    assert isinstance(location, URL) and location.password == "env"
