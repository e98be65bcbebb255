"""Opening a node: config, passphrase, store, organisation keys, Matrix login.

Everything that runs "as the node" (``minga run``, ``minga status``, ``minga coalition ...``,
``minga token create``) starts from :func:`open_node`, so unlocking works the same way everywhere:
the passphrase comes from the configured key file, else ``MINGA_PASSPHRASE``, else a prompt on a
terminal, and a wrong one is a clear error.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import URL, make_url

from federation.identity import OrgKeys, export_private, import_private
from federation.secretbox import Argon2Params, WrongPassphrase
from federation.transport import MatrixLogin, MatrixTransport
from node.core.config import NodeConfig, StoreSection, load_config
from node.core.store import (
    DataKey,
    MigrationSet,
    OwnOrg,
    Store,
    StoreHalfMoved,
    StoreUnavailable,
    open_store,
    passphrase_from,
    unlock_data_key,
)
from node.core.store.coalitions import (
    SINGLE_COALITION_SETTING,
    Coalition,
    adopt_single_coalition,
)
from node.core.store.errors import StoreLocked
from node.core.store.unlock import CREDENTIALS_DIRECTORY_ENV
from sync.migrations import SYNC_METADATA, SYNC_SCRIPT_LOCATION, SYNC_VERSION_TABLE
from sync.outbox import Outbox

CONFIG_FILE_NAME = "node.toml"
DEFAULT_CONFIG = Path("minga-data") / CONFIG_FILE_NAME
# The org keys are locked with a 256-bit subkey of the data key, not with the passphrase, so a
# passphrase change only rewraps the data key. Key stretching adds nothing to a random 256-bit
# secret, hence the minimal Argon2id cost.
_KEY_BLOB_PURPOSE = b"minga/org-keys/v1"
_KEY_BLOB_PARAMS = Argon2Params(iterations=1, lanes=1, memory_kib=8)
MATRIX_LOGIN_SETTING = "matrix_login"
COALITION_SETTING = SINGLE_COALITION_SETTING
WIPED_MARKER_NAME = "WIPED.txt"
# The sync layer's tables live in the node's database, migrated with their own version table.
SYNC_MIGRATIONS = MigrationSet("sync", SYNC_SCRIPT_LOCATION, SYNC_VERSION_TABLE, SYNC_METADATA)
STORE_PASSWORD_VARIABLE = "MINGA_STORE_PASSWORD"
STORE_PASSWORD_CREDENTIAL = "store-password"


P = TypeVar("P")


class NodeNotReady(Exception):
    """The node cannot be opened as asked; the message says what to do."""


class CoalitionNotChosen(NodeNotReady):
    """The coalition to act in is unknown to this node, or must be named because the node is
    in several (or in none); the message says which (decision 0032)."""


@dataclass
class Node:
    """An unlocked node: its configuration, open store and private keys."""

    config: NodeConfig
    store: Store
    keys: OrgKeys
    own: OwnOrg
    # Called after something was queued for sending; `minga run` points it at the sync engine
    # so a share leaves at once instead of at the outbox's next poll.
    wake_sync: Callable[[], None] = field(default=lambda: None, repr=False)
    # The running sync engine's outbox (`minga run`): urgent records are sealed in the
    # transaction that queues them and posted the moment it commits.
    outbox: Outbox | None = field(default=None, repr=False)
    # The unlocked data key, to re-lock the organisation keys after a change (rotation, export
    # of the revocation key). None once the node is locked (``node.core.lock``).
    data_key: DataKey | None = field(default=None, repr=False)
    # Asks `minga run` to stop serving (set by the server); locking the node calls it.
    request_stop: Callable[[], None] = field(default=lambda: None, repr=False)
    locked: bool = field(default=False, init=False)
    _coalitions: list[Coalition] | None = field(default=None, init=False, repr=False)
    _parts: dict[type[Any], Any] = field(default_factory=dict, init=False, repr=False)

    def part(self, kind: type[P]) -> P:
        """This node's instance of ``kind``, made with ``kind()`` on first use.

        Where features keep per-node state (an alert bus, a search index, locks): it lives as
        long as the node and is never shared with another node in the same process.
        """
        held = self._parts.get(kind)
        if held is None:
            held = self._parts[kind] = kind()
        return cast(P, held)

    @property
    def org_id(self) -> str:
        return self.keys.org_id

    async def matrix_login(self) -> MatrixLogin:
        async with self.store.read() as tx:
            saved = await tx.settings.get(MATRIX_LOGIN_SETTING)
        if not isinstance(saved, dict):
            raise NodeNotReady("this node has no Matrix login; run `minga init` again")
        return MatrixLogin(
            homeserver_url=str(self.config.homeserver.url).rstrip("/"),
            user_id=saved["user_id"],
            device_id=saved["device_id"],
            access_token=saved["access_token"],
        )

    @asynccontextmanager
    async def transport(self) -> AsyncIterator[MatrixTransport]:
        transport = MatrixTransport(await self.matrix_login())
        try:
            yield transport
        finally:
            await transport.close()

    async def coalitions(self) -> list[Coalition]:
        """The coalitions this node is in, oldest first (decision 0032)."""
        # Asked on every sync batch and by every duty; they change only when this node
        # creates, joins, leaves or follows a move (forget_coalitions), so they are cached.
        # A local: another task may forget them while this one awaits the read.
        found = self._coalitions
        if found is None:
            async with self.store.read() as tx:
                found = await tx.coalitions.all()
            self._coalitions = found
        return list(found)

    async def coalition(self, coalition_id: str) -> Coalition:
        """The coalition ``coalition_id`` this node is in; :class:`NodeNotReady` if none."""
        for coalition in await self.coalitions():
            if coalition.coalition_id == coalition_id:
                return coalition
        raise CoalitionNotChosen(f"coalition: this node is in no coalition {coalition_id!r}")

    async def chosen_coalition(self, coalition_id: str | None) -> Coalition:
        """The coalition named, or the node's only one when none is named."""
        if coalition_id is not None:
            return await self.coalition(coalition_id)
        coalitions = await self.coalitions()
        if not coalitions:
            raise CoalitionNotChosen("coalition: this node is in no coalition yet"
                                     " (`minga coalition create|join`)")
        if len(coalitions) > 1:
            raise CoalitionNotChosen("coalition: this node is in several coalitions; name one"
                                     " of " + ", ".join(c.coalition_id for c in coalitions))
        return coalitions[0]

    async def coalition_of_room(self, room_id: str) -> Coalition | None:
        """The coalition whose room ``room_id`` is, if this node is in it."""
        return next((c for c in await self.coalitions() if c.room_id == room_id), None)

    async def coalition_room(self) -> str | None:
        """The room of this node's first coalition (None when it is in none)."""
        coalitions = await self.coalitions()
        return coalitions[0].room_id if coalitions else None

    def forget_coalitions(self) -> None:
        """The coalitions changed (created, joined, left, moved): read them again."""
        self._coalitions = None

    forget_coalition_room = forget_coalitions


async def adopt_legacy_coalition(store: Store) -> None:
    """The first open of a store from before decision 0032: its coalition setting becomes
    the node's first coalition (see ``adopt_single_coalition``)."""
    async with store.read() as tx:
        single = await tx.settings.get(COALITION_SETTING)
        known = await tx.coalitions.all(with_left=True)
    if single is None or known:
        return
    async with store.transaction() as tx:
        await adopt_single_coalition(tx.coalitions, single, await tx.orgs.verified_ids())


def lock_org_keys(keys: OrgKeys, data_key: DataKey) -> bytes:
    return export_private(keys, data_key.derive(_KEY_BLOB_PURPOSE).hex(), params=_KEY_BLOB_PARAMS)


def unlock_org_keys(blob: bytes, data_key: DataKey) -> OrgKeys:
    return import_private(blob, data_key.derive(_KEY_BLOB_PURPOSE).hex())


def config_path(path: str | Path | None) -> Path:
    """The node.toml to use: the one given, else ``MINGA_CONFIG``, else minga-data/node.toml."""
    return Path(path or os.environ.get("MINGA_CONFIG") or DEFAULT_CONFIG)


def read_passphrase(passphrase_file: Path | None, *, confirm: bool = False) -> str:
    """The node passphrase from the key file, ``MINGA_PASSPHRASE``, or a terminal prompt."""

    def ask() -> str:
        first = getpass.getpass("Node passphrase: ")
        if confirm and getpass.getpass("Repeat the passphrase: ") != first:
            raise NodeNotReady("the two passphrases differ")
        return first

    try:
        return passphrase_from(passphrase_file, os.environ, ask if sys.stdin.isatty() else None)
    except StoreLocked as error:
        raise NodeNotReady(str(error)) from None


def store_location(store: StoreSection, data_dir: Path,
                   environ: Mapping[str, str] = os.environ) -> Path | URL:
    """Where the store is: ``data_dir`` (its SQLite file) or the ``[store] url`` with the
    password from ``password_file``, the systemd credential ``store-password`` or
    ``MINGA_STORE_PASSWORD`` (never from node.toml)."""
    if not store.is_postgresql:
        return data_dir
    url = make_url(store.url)
    if store.password_file is not None:
        try:
            password = store.password_file.read_text(encoding="utf-8").strip("\r\n")
        except OSError as error:
            raise NodeNotReady(f"[store] password_file: cannot read {store.password_file}"
                               f" ({error.strerror})") from None
        return url.set(password=password)
    credentials = environ.get(CREDENTIALS_DIRECTORY_ENV)
    credential = Path(credentials) / STORE_PASSWORD_CREDENTIAL if credentials else None
    if credential is not None and credential.exists():
        try:
            return url.set(password=credential.read_text(encoding="utf-8").strip("\r\n"))
        except OSError as error:
            raise NodeNotReady(f"the systemd credential '{STORE_PASSWORD_CREDENTIAL}': cannot"
                               f" read {credential} ({error.strerror})") from None
    if environ.get(STORE_PASSWORD_VARIABLE):
        return url.set(password=environ[STORE_PASSWORD_VARIABLE])
    return url


async def open_configured_store(config: NodeConfig, data_key: DataKey,
                                migrations: Sequence[MigrationSet] = ()) -> Store:
    """:func:`open_store` where node.toml says, its failures as :class:`NodeNotReady` naming
    the ``[store]`` setting."""
    try:
        return await open_store(store_location(config.store, config.node.data_dir), data_key,
                                migrations=migrations)
    except StoreUnavailable as error:
        raise NodeNotReady(f"[store] url: {error}") from None
    except StoreHalfMoved as error:
        raise NodeNotReady(f"[store] url: {error}") from None


@asynccontextmanager
async def open_node(path: str | Path | None = None) -> AsyncIterator[Node]:
    """Unlock and open the node configured in ``path``; close it when the block ends."""
    config = load_config(config_path(path))
    data_dir = config.node.data_dir
    if not (data_dir / "store.key").exists():
        wiped = data_dir / WIPED_MARKER_NAME
        if wiped.exists():
            raise NodeNotReady(wiped.read_text(encoding="utf-8").strip())
        raise NodeNotReady(f"no node in {data_dir}; create one with `minga init`")
    passphrase = read_passphrase(config.node.passphrase_file)
    try:
        data_key = unlock_data_key(data_dir, passphrase)
    except WrongPassphrase:
        raise NodeNotReady("wrong passphrase for this node") from None
    store = await open_configured_store(config, data_key, [SYNC_MIGRATIONS])
    try:
        async with store.read() as tx:
            own = await tx.orgs.own()
        if own is None:
            raise NodeNotReady(f"the store of {data_dir} holds no organisation; re-run init")
        keys = unlock_org_keys(own.private_keys, data_key)
        await adopt_legacy_coalition(store)
        yield Node(config, store, keys, own, data_key=data_key)
    finally:
        await store.close()
