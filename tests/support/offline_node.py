"""A complete node on disk without a homeserver: what ``minga init`` leaves, minus Matrix.

For tests of commands that only need the node's own data (import, export, reports, backups).
The passphrase is the API harness's, so ``tests.support.api_harness.serve_node`` can serve it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from sqlalchemy import make_url

from federation.identity import OrgKeys
from federation.secretbox import FAST_TEST_PARAMS
from node.core.runtime import CONFIG_FILE_NAME, MATRIX_LOGIN_SETTING, lock_org_keys
from node.core.store import create_data_key, open_store
from tests.support.api_harness import PASSPHRASE, SAMPLE_CASES, RunningApi, serve_node

CONFIG_TEXT = """\
[node]
data_dir = "."

[homeserver]
url = "http://127.0.0.1:9"
user_id = "@minga-offline:localhost"
"""


async def make_offline_node(directory: Path, name: str = "Colectivo Offline",
                            country: str = "CO", *, store_at: Path | str | None = None) -> Path:
    """Create a node in ``directory``; returns its node.toml. Its store is the SQLite file
    there, or the PostgreSQL database whose URL (with its password) ``store_at`` is: the
    ``store_location`` fixture's value can be given as it is."""
    data_key = create_data_key(directory, PASSPHRASE, FAST_TEST_PARAMS)
    keys = OrgKeys.generate()
    config_text = CONFIG_TEXT
    location: Path | str = directory
    if isinstance(store_at, str):
        url = make_url(store_at)
        (directory / "store-password").write_text(url.password or "")
        config_text += (f'\n[store]\nurl = "{url._replace(password=None).render_as_string()}"\n'
                        'password_file = "store-password"\n')
        location = store_at
    store = await open_store(location, data_key)
    try:
        async with store.transaction() as tx:
            await tx.orgs.save_own(keys.org_id, name, country, lock_org_keys(keys, data_key),
                                   keys.public().model_dump(mode="json"))
            await tx.settings.set(MATRIX_LOGIN_SETTING, {
                "user_id": "@minga-offline:localhost", "device_id": "OFFLINE",
                "access_token": "not-a-real-token",
            })
    finally:
        await store.close()
    config = directory / CONFIG_FILE_NAME
    config.write_text(config_text, encoding="utf-8")
    return config


@contextmanager
def passphrase_in_environment(passphrase: str = PASSPHRASE) -> Iterator[None]:
    before = os.environ.get("MINGA_PASSPHRASE")
    os.environ["MINGA_PASSPHRASE"] = passphrase
    try:
        yield
    finally:
        if before is None:
            del os.environ["MINGA_PASSPHRASE"]
        else:
            os.environ["MINGA_PASSPHRASE"] = before


@asynccontextmanager
async def serving_sample_cases(directory: Path, *, store_at: Path | str | None = None
                               ) -> AsyncIterator[RunningApi]:
    """An offline node served over HTTP, holding every case of ``SAMPLE_CASES``."""
    config = await make_offline_node(directory, store_at=store_at)
    async with serve_node(config) as running:
        for case in SAMPLE_CASES.values():
            await running.json("POST", "/cases", json=case, expect=201)
        yield running
