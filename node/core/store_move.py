"""``minga store move --to URL``: move a node's store between SQLite and PostgreSQL.

The data is copied by :func:`node.core.store.move.copy_database` (every table, row counts
checked, the target refused by a node until the copy is complete, the source refused after it);
then node.toml's ``[store]`` section is rewritten to point at the new place. Run it with the
node stopped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import ValidationError

from node.core.config import StoreSection, load_config, parse_config
from node.core.runtime import (
    SYNC_MIGRATIONS,
    NodeNotReady,
    config_path,
    open_configured_store,
    read_passphrase,
    store_location,
)
from node.core.store import STORE_MIGRATIONS, StoreError, WrongPassphrase, unlock_data_key
from node.core.store.move import TableCount, copy_database
from schemas.errors import describe_validation_error

SQLITE_TARGET = "sqlite"
_SECTION = re.compile(r"^\s*\[\s*store\s*\]\s*(#.*)?$")
_ANY_SECTION = re.compile(r"^\s*\[")
_OUR_KEYS = re.compile(r"^\s*(url|password_file)\s*=")


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def with_store_section(config_text: str, store: StoreSection) -> str:
    """``config_text`` with ``[store] url`` and ``password_file`` set as in ``store`` (other
    lines, comments included, are kept as they were)."""
    settings = [f"url = {_toml_string(store.url)}"]
    if store.password_file is not None:
        settings.append(f"password_file = {_toml_string(str(store.password_file))}")
    lines = config_text.splitlines()
    start = next((n for n, line in enumerate(lines) if _SECTION.match(line)), None)
    if start is None:
        return config_text.rstrip("\n") + "\n\n[store]\n" + "\n".join(settings) + "\n"
    end = next((n for n in range(start + 1, len(lines)) if _ANY_SECTION.match(lines[n])),
               len(lines))
    kept = [line for line in lines[start + 1:end] if not _OUR_KEYS.match(line)]
    return "\n".join([*lines[:start + 1], *settings, *kept, *lines[end:]]) + "\n"


def _target_section(to: str, password_file: str | None) -> StoreSection:
    if to == SQLITE_TARGET:
        return StoreSection()
    try:
        return StoreSection(url=to, password_file=Path(password_file).resolve()
                            if password_file else None)
    except ValidationError as error:
        raise NodeNotReady(f"--to: {describe_validation_error(error)}") from None


async def move_store(config: str | Path | None, to: str,
                     password_file: str | None = None) -> list[TableCount]:
    """Move the configured node's store to ``to`` (a postgresql:// URL, or ``sqlite`` for the
    file in the data directory) and point node.toml at it; the per-table row counts."""
    config_file = config_path(config)
    settings = load_config(config_file)
    target = _target_section(to, password_file)
    data_dir = settings.node.data_dir
    try:
        data_key = unlock_data_key(data_dir, read_passphrase(settings.node.passphrase_file))
    except WrongPassphrase:
        raise NodeNotReady("wrong passphrase for this node") from None
    except StoreError as error:
        raise NodeNotReady(str(error)) from None
    store = await open_configured_store(settings, data_key, [SYNC_MIGRATIONS])  # key, state
    await store.close()
    try:
        counts = await copy_database(
            store_location(settings.store, data_dir), store_location(target, data_dir),
            [STORE_MIGRATIONS, SYNC_MIGRATIONS])
    except StoreError as error:
        raise NodeNotReady(f"--to: {error}") from None
    text = with_store_section(config_file.read_text(encoding="utf-8"), target)
    parse_config(text, source=str(config_file))  # never write a config the node would refuse
    staged = config_file.with_name(config_file.name + ".moving")
    staged.write_text(text, encoding="utf-8")
    os.chmod(staged, config_file.stat().st_mode & 0o777)
    staged.replace(config_file)
    return counts
