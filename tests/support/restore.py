"""A member restored elsewhere after a raid (decision 0023), for federated tests: its backup
restored on a "new machine" and given a new account on a homeserver."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.homeserver import Homeserver
from node.core.cli_support import unix_now
from node.core.runtime import open_node
from node.core.setup import MatrixAccountChoice, matrix_login_for
from node.core.status import node_status
from node.features.backup.new_account import NewAccount, adopt_new_account
from node.features.backup.service import restore_backup
from tests.support.api_harness import PASSPHRASE
from tests.support.sharing import passphrase_env


@dataclass(frozen=True)
class Restored:
    config_file: Path
    moved: NewAccount
    status: dict[str, Any]
    """The restored node's status right after the new account (its held rooms)."""


async def restore_on_new_account(backup: Path, machine: Path, homeserver: Homeserver
                                 ) -> Restored:
    """Restore ``backup`` under ``machine`` and give it a new account on ``homeserver`` (with
    rotated keys), as `minga backup restore` then `minga backup new-account` do."""
    restored = await restore_backup(backup, machine / "node", PASSPHRASE)
    assert restored.config_file is not None
    with passphrase_env():
        async with open_node(restored.config_file) as node:
            login = await matrix_login_for(homeserver.url, node.own.name, MatrixAccountChoice(
                registration_secret=homeserver.state.registration_shared_secret))
            moved = await adopt_new_account(node, restored.config_file, login, unix_now)
            status = await node_status(node)
    return Restored(restored.config_file, moved, status)
