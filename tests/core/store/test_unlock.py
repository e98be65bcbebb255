"""The store's data key: creation, unlocking, passphrase sources."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from federation.secretbox import FAST_TEST_PARAMS
from node.core.store import (
    DataKey,
    DataKeyExists,
    StoreLocked,
    WrongDataKey,
    WrongPassphrase,
    change_passphrase,
    create_data_key,
    open_store,
    passphrase_from,
    unlock_data_key,
)
from node.core.store.unlock import KEY_FILE_NAME


def test_unlock_returns_the_created_key(tmp_path: Path) -> None:
    created = create_data_key(tmp_path, "correct horse", FAST_TEST_PARAMS)
    assert unlock_data_key(tmp_path, "correct horse") == created


def test_keys_are_random(tmp_path: Path) -> None:
    first = create_data_key(tmp_path / "a", "same", FAST_TEST_PARAMS)
    second = create_data_key(tmp_path / "b", "same", FAST_TEST_PARAMS)
    assert first != second


def test_wrong_passphrase_is_a_clear_typed_error(tmp_path: Path) -> None:
    create_data_key(tmp_path, "correct horse", FAST_TEST_PARAMS)
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        unlock_data_key(tmp_path, "correct horse ")


def test_key_file_is_private_and_holds_no_plain_key(tmp_path: Path) -> None:
    key = create_data_key(tmp_path, "pass", FAST_TEST_PARAMS)
    path = tmp_path / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key._secret not in path.read_bytes()


def test_existing_key_is_never_replaced(tmp_path: Path) -> None:
    original = create_data_key(tmp_path, "first", FAST_TEST_PARAMS)
    with pytest.raises(DataKeyExists, match="refusing"):
        create_data_key(tmp_path, "second", FAST_TEST_PARAMS)
    assert unlock_data_key(tmp_path, "first") == original


def test_missing_key_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(StoreLocked, match=KEY_FILE_NAME):
        unlock_data_key(tmp_path, "anything")


def test_damaged_key_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE_NAME).write_bytes(b"not a box at all, just some bytes here")
    with pytest.raises(StoreLocked, match="damaged"):
        unlock_data_key(tmp_path, "anything")


def test_change_passphrase_keeps_the_key(tmp_path: Path) -> None:
    key = create_data_key(tmp_path, "old", FAST_TEST_PARAMS)
    change_passphrase(tmp_path, "old", "new", FAST_TEST_PARAMS)
    assert unlock_data_key(tmp_path, "new") == key
    with pytest.raises(WrongPassphrase):
        unlock_data_key(tmp_path, "old")


def test_change_passphrase_needs_the_old_one(tmp_path: Path) -> None:
    create_data_key(tmp_path, "old", FAST_TEST_PARAMS)
    with pytest.raises(WrongPassphrase):
        change_passphrase(tmp_path, "guess", "new", FAST_TEST_PARAMS)
    unlock_data_key(tmp_path, "old")


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreLocked, match="empty"):
        create_data_key(tmp_path, "", FAST_TEST_PARAMS)


def test_repr_does_not_show_the_secret() -> None:
    key = DataKey(bytes(range(32)))
    assert bytes(range(32)).hex() not in repr(key)
    assert "secret" in repr(key)


async def test_store_refuses_another_data_key(tmp_path: Path) -> None:
    key = create_data_key(tmp_path, "pass", FAST_TEST_PARAMS)
    store = await open_store(tmp_path, key)
    await store.close()
    with pytest.raises(WrongDataKey, match="another data key"):
        await open_store(tmp_path, DataKey.generate())


# passphrase sources: configured file, then MINGA_PASSPHRASE, then an interactive prompt


def _no_prompt() -> str:
    raise AssertionError("the prompt must not be used")


def test_passphrase_file_comes_first(tmp_path: Path) -> None:
    path = tmp_path / "passphrase"
    path.write_text("from file\n", encoding="utf-8")
    env = {"MINGA_PASSPHRASE": "from env"}
    assert passphrase_from(path, env, _no_prompt) == "from file"


def test_passphrase_file_keeps_inner_spaces_and_unicode(tmp_path: Path) -> None:
    path = tmp_path / "passphrase"
    path.write_text(" contraseña  segura ñ \r\n", encoding="utf-8")
    assert passphrase_from(path, {}, None) == " contraseña  segura ñ "


def test_missing_passphrase_file_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    path = tmp_path / "absent"
    with pytest.raises(StoreLocked, match="passphrase_file"):
        passphrase_from(path, {"MINGA_PASSPHRASE": "from env"}, _no_prompt)


def test_empty_passphrase_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "passphrase"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(StoreLocked, match="empty"):
        passphrase_from(path, {}, None)


def test_systemd_credential_when_no_file(tmp_path: Path) -> None:
    (tmp_path / "passphrase").write_text("from credential\n", encoding="utf-8")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "MINGA_PASSPHRASE": "from env"}
    assert passphrase_from(None, env, _no_prompt) == "from credential"
    configured = tmp_path / "configured"
    configured.write_text("from file\n", encoding="utf-8")
    assert passphrase_from(configured, env, _no_prompt) == "from file"


def test_credential_directory_without_the_passphrase_falls_through(tmp_path: Path) -> None:
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "MINGA_PASSPHRASE": "from env"}
    assert passphrase_from(None, env, _no_prompt) == "from env"


def test_empty_credential_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "passphrase").write_text("\n", encoding="utf-8")
    with pytest.raises(StoreLocked, match=r"systemd credential 'passphrase'.* is empty"):
        passphrase_from(None, {"CREDENTIALS_DIRECTORY": str(tmp_path)}, None)


def test_environment_when_no_file() -> None:
    assert passphrase_from(None, {"MINGA_PASSPHRASE": "from env"}, _no_prompt) == "from env"


def test_prompt_when_no_file_and_no_environment() -> None:
    assert passphrase_from(None, {"MINGA_PASSPHRASE": ""}, lambda: "typed") == "typed"


def test_nothing_typed_is_an_error() -> None:
    with pytest.raises(StoreLocked, match="no passphrase was typed"):
        passphrase_from(None, {}, lambda: "")


def test_no_source_says_how_to_unlock() -> None:
    with pytest.raises(StoreLocked, match="MINGA_PASSPHRASE") as raised:
        passphrase_from(None, {}, None)
    assert "passphrase_file" in str(raised.value)
    assert "LoadCredential" in str(raised.value)
