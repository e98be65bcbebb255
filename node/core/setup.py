"""``minga init``: create a node's data directory, keys, store, config and Matrix account."""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from deploy.homeserver import HomeserverError, register_account
from federation.identity import OrgKeys
from federation.transport import MatrixLogin, MatrixTransport, TransportError
from node.core.config import StoreSection, parse_config
from node.core.keys import check_outside, revocation_key_form, write_revocation_form
from node.core.runtime import (
    CONFIG_FILE_NAME,
    MATRIX_LOGIN_SETTING,
    Node,
    NodeNotReady,
    lock_org_keys,
    open_configured_store,
    store_location,
)
from node.core.store import DatabaseInUse, StoreUnavailable, check_new_store, create_data_key
from node.core.store.unlock import KEY_FILE_NAME
from schemas.countries import is_country_code


@dataclass(frozen=True)
class MatrixAccountChoice:
    """Log into an existing account (password), use an access token issued for it (servers
    behind Matrix Authentication Service or SSO), or register one with a shared secret."""

    user_id: str | None = None
    password: str | None = field(default=None, repr=False)
    registration_secret: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        logging_in = self.user_id is not None and self.password is not None
        ways = [logging_in, self.registration_secret is not None, self.access_token is not None]
        if sum(ways) != 1:
            raise NodeNotReady(
                "give either --matrix-user with --matrix-password-file (an existing account),"
                " --matrix-access-token-file (a token issued for it, e.g. by Matrix"
                " Authentication Service) or --registration-secret-file (to create the node's"
                " account)"
            )
        if self.access_token is not None and not self.access_token:
            raise NodeNotReady("--matrix-access-token-file: the file is empty")


@dataclass(frozen=True)
class InitResult:
    org_id: str
    safety_code: str
    matrix_user_id: str
    config_file: Path
    revocation_key_form: str = field(repr=False)
    """The revocation key, passphrase-locked, as a paper form; the node keeps no copy."""
    revocation_key_file: Path | None = None


def _localpart_for(org_name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", org_name.lower()).strip("-")[:24] or "org"
    return f"minga-{slug}-{secrets.token_hex(3)}"


async def matrix_login_for(
    homeserver_url: str, org_name: str, account: MatrixAccountChoice
) -> MatrixLogin:
    if account.registration_secret is not None:
        try:
            created = await asyncio.to_thread(
                register_account, homeserver_url, account.registration_secret,
                _localpart_for(org_name),
            )
        except (HomeserverError, OSError) as error:
            raise NodeNotReady(f"could not create the node's Matrix account: {error}") from None
        return MatrixLogin(created.homeserver_url, created.user_id, created.device_id,
                           created.access_token)
    if account.access_token is not None:
        return await _token_login(homeserver_url, account.access_token,
                                  "--matrix-access-token-file")
    assert account.user_id is not None and account.password is not None
    try:
        return await MatrixTransport.password_login(
            homeserver_url, account.user_id, account.password, device_name="Minga node"
        )
    except (TransportError, OSError) as error:
        raise NodeNotReady(f"could not log into {account.user_id}: {error}") from None


async def _token_login(homeserver_url: str, token: str, option: str) -> MatrixLogin:
    try:
        return await MatrixTransport.token_login(homeserver_url, token)
    except TransportError as error:
        raise NodeNotReady(f"{option}: the homeserver did not accept the token"
                           f" ({_reason(error)}); ask its admin for a new one") from None
    except OSError as error:
        raise NodeNotReady(f"{option}: could not check the token at {homeserver_url}"
                           f" ({_reason(error)})") from None


def _reason(error: Exception) -> str:
    """One line, never the token: the server's error code, or the kind of network failure."""
    if isinstance(error, TransportError):
        return error.status or str(error)
    return type(error).__name__


SQLITE_STORE = StoreSection()


def _store_text(store: StoreSection) -> str:
    if not store.is_postgresql:
        return ""
    lines = ["\n[store]\n", f'url = "{store.url}"\n']
    if store.password_file is not None:
        lines.append(f'password_file = "{store.password_file}"\n')
    return "".join(lines)


def _config_text(homeserver_url: str, user_id: str, http_port: int,
                 store: StoreSection) -> str:
    return (
        "# Written by `minga init`; every setting is explained in node.example.toml.\n"
        "[node]\n"
        'data_dir = "."\n'
        'log_level = "info"\n\n'
        "[homeserver]\n"
        f'url = "{homeserver_url}"\n'
        f'user_id = "{user_id}"\n\n'
        "[http]\n"
        'host = "127.0.0.1"\n'
        f"port = {http_port}\n"
    ) + _store_text(store)


async def init_node(
    *,
    data_dir: Path,
    org_name: str,
    country: str,
    homeserver_url: str,
    passphrase: str,
    account: MatrixAccountChoice,
    http_port: int = 8470,
    revocation_passphrase: str | None = None,
    revocation_key_file: Path | None = None,
    store: StoreSection = SQLITE_STORE,
) -> InitResult:
    """Create everything a new node needs; refuse to touch an existing one.

    The revocation key leaves as a paper form locked with ``revocation_passphrase`` (default:
    the node passphrase), written to ``revocation_key_file`` when given and returned; the node
    keeps only its public half."""
    if not org_name.strip():
        raise NodeNotReady("--org-name: must not be empty")
    if not is_country_code(country):
        raise NodeNotReady(f"--country: {country!r} is not an ISO 3166-1 alpha-2 code")
    if (data_dir / KEY_FILE_NAME).exists():
        raise NodeNotReady(f"{data_dir} already holds a node; choose another --data-dir")
    if revocation_key_file is not None:
        check_outside(revocation_key_file, data_dir)
    homeserver_url = homeserver_url.rstrip("/")
    if store.is_postgresql:  # before a Matrix account is made for a node that cannot be
        try:
            await check_new_store(store_location(store, data_dir))
        except (StoreUnavailable, DatabaseInUse) as error:
            raise NodeNotReady(f"--store-url: {error}") from None
    login = await matrix_login_for(homeserver_url, org_name, account)
    config_text = _config_text(homeserver_url, login.user_id, http_port, store)
    config = parse_config(config_text)  # never write a config the node would refuse
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    data_key = create_data_key(data_dir, passphrase)
    keys = OrgKeys.generate()
    form = revocation_key_form(keys, revocation_passphrase or passphrase)
    if revocation_key_file is not None:
        write_revocation_form(revocation_key_file, form)
    keys = keys.without_revocation_key()
    here = config.model_copy(update={
        "node": config.node.model_copy(update={"data_dir": data_dir})})
    try:
        opened = await open_configured_store(here, data_key)
    except BaseException:
        (data_dir / KEY_FILE_NAME).unlink()  # no half-made node: init can simply run again
        raise
    try:
        async with opened.transaction() as tx:
            await tx.orgs.save_own(
                keys.org_id, org_name.strip(), country, lock_org_keys(keys, data_key),
                keys.public().model_dump(mode="json"),
            )
            await tx.settings.set(MATRIX_LOGIN_SETTING, {
                "user_id": login.user_id,
                "device_id": login.device_id,
                "access_token": login.access_token,
            })
            await tx.audit.append("minga init", "node.init", target=keys.org_id)
    finally:
        await opened.close()
    config_file = data_dir / CONFIG_FILE_NAME
    config_file.write_text(config_text, encoding="utf-8")
    return InitResult(keys.org_id, keys.public().safety_code(), login.user_id, config_file,
                      form, revocation_key_file)


async def replace_matrix_token(node: Node, access_token: str) -> MatrixLogin:
    """A new access token for the node's own account (the old one expired or was revoked):
    checked with ``whoami``, refused if it belongs to another account."""
    if not access_token:
        raise NodeNotReady("--file: the file is empty")
    login = await _token_login(str(node.config.homeserver.url).rstrip("/"), access_token,
                               "--file")
    if login.user_id != node.config.homeserver.user_id:
        raise NodeNotReady(f"--file: the token belongs to {login.user_id}, not to this node's"
                           f" account {node.config.homeserver.user_id}")
    async with node.store.transaction() as tx:
        await tx.settings.set(MATRIX_LOGIN_SETTING, {
            "user_id": login.user_id, "device_id": login.device_id,
            "access_token": login.access_token})
        await tx.audit.append("minga matrix-token", "node.matrix_token", target=login.user_id)
    return login
