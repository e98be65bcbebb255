"""``minga user add|reset|disable|enable|list``: staff accounts from the command line.

For setting up a node and for recovery (the last admin forgot a password or lost the phone
with the second factor). Needs the node passphrase like every command that opens the node.
Admins always get a TOTP secret at creation; it is printed once, with the generated password.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from node.core.runtime import open_node
from node.core.store import RecordNotFound, Role, StaffUser, UsernameTaken, staff_users
from node.core.web.i18n import available_languages
from node.features.accounts.accounts import (
    AccountError,
    IssuedCredentials,
    create_account,
    reset_password,
    set_disabled,
)
from node.features.accounts.admin_pages import TOKEN_CREATED, TOKEN_REVOKED
from node.features.accounts.passwords import WeakPassword
from node.features.accounts.totp import ISSUER, grouped, otpauth_uri, secret_to_text

CLI_ACTOR = "minga user (command line)"


class UserCommandError(Exception):
    """A refusal printed as one line."""


def _password_from(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\n")
    except OSError as error:
        raise UserCommandError(f"--password-file: cannot read {path} ({error.strerror})") from None


async def _find(tx: Any, username: str) -> StaffUser:
    user = await staff_users(tx).by_username(username)
    if user is None:
        raise UserCommandError(f"no user named {username!r} on this node")
    return user


def _describe(issued: IssuedCredentials) -> dict[str, Any]:
    user = issued.user
    secret = issued.totp_secret
    return {
        "user_id": user.user_id,
        "username": user.username,
        "role": user.role.value,
        "password": issued.password,
        "must_change_password": user.must_change_password,
        "totp_secret": None if secret is None else secret_to_text(secret),
        "otpauth_uri": None if secret is None else otpauth_uri(secret, user.username,
                                                                ISSUER),
    }


def _print_credentials(facts: dict[str, Any], headline: str) -> None:
    print(headline)
    if facts["password"] is not None:
        print(f"  password:    {facts['password']}")
        print("               (a new password must be chosen at the first login)")
    if facts["totp_secret"] is not None:
        print(f"  TOTP secret: {grouped(facts['totp_secret'])}")
        print(f"  otpauth URI: {facts['otpauth_uri']}")
        print("  Add the secret to an authenticator app (FreeOTP, Aegis, ...): the login asks")
        print("  for its 6-digit code.")
    print("Hand these over in person or over a safe channel; they are not shown again.")


async def _add(args: argparse.Namespace) -> dict[str, Any]:
    role = Role(args.role)
    async with open_node(args.config) as node, node.store.transaction() as tx:
        issued = await create_account(
            tx, args.name, role, actor=CLI_ACTOR, password=_password_from(args.password_file),
            language=args.language, with_totp=role == Role.admin or args.totp,
        )
        return _describe(issued)


async def _reset(args: argparse.Namespace) -> dict[str, Any]:
    async with open_node(args.config) as node, node.store.transaction() as tx:
        user = await _find(tx, args.name)
        issued = await reset_password(tx, user, actor=CLI_ACTOR,
                                      password=_password_from(args.password_file),
                                      new_totp=args.new_totp)
        return _describe(issued)


async def _set_disabled(args: argparse.Namespace, disabled: bool) -> None:
    async with open_node(args.config) as node, node.store.transaction() as tx:
        await set_disabled(tx, await _find(tx, args.name), disabled, actor=CLI_ACTOR)


async def _list(args: argparse.Namespace) -> list[dict[str, Any]]:
    async with open_node(args.config) as node, node.store.read() as tx:
        return [{"username": u.username, "role": u.role.value, "totp": u.has_totp,
                 "disabled": u.disabled, "language": u.language}
                for u in await staff_users(tx).all()]


def _run(work: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    try:
        return asyncio.run(work())
    except (AccountError, WeakPassword, UsernameTaken, RecordNotFound) as error:
        raise UserCommandError(str(error)) from None


def _refusing(handler: Callable[[argparse.Namespace], int]) -> Callable[
    [argparse.Namespace], int
]:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except UserCommandError as error:
            print(f"minga {args.command}: {error}", file=sys.stderr, flush=True)
            return 2

    return run


def cmd_user_add(args: argparse.Namespace) -> int:
    facts = _run(lambda: _add(args))
    if args.json:
        print(json.dumps(facts))
    else:
        _print_credentials(facts, f"Created user {facts['username']} ({facts['role']}).")
    return 0


def cmd_user_reset(args: argparse.Namespace) -> int:
    facts = _run(lambda: _reset(args))
    if args.json:
        print(json.dumps(facts))
    else:
        _print_credentials(facts, f"Reset user {facts['username']}; every session of theirs"
                                  " has ended.")
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    _run(lambda: _set_disabled(args, True))
    print(f"Disabled {args.name}; every session of theirs has ended.")
    return 0


def cmd_user_enable(args: argparse.Namespace) -> int:
    _run(lambda: _set_disabled(args, False))
    print(f"Enabled {args.name}.")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    users = _run(lambda: _list(args))
    if args.json:
        print(json.dumps(users, ensure_ascii=False))
        return 0
    for user in users:
        flags = [user["role"], "TOTP" if user["totp"] else "no TOTP"]
        if user["disabled"]:
            flags.append("DISABLED")
        print(f"{user['username']}  ({', '.join(flags)})")
    return 0


def add_user_commands(commands: Any) -> None:
    """Register ``minga user ...`` on the subcommand set of the ``minga`` parser."""
    token = commands.add_parser("token", help="API tokens")
    token_commands = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    token_create = token_commands.add_parser("create", help="create an API token (shown once)")
    token_create.add_argument("--user", required=True, help="who the token is for")
    token_create.add_argument("--role", required=True, choices=[r.value for r in Role])
    token_create.set_defaults(handler=cmd_token_create)
    token_list = token_commands.add_parser("list", help="every API token: id, role, state")
    token_list.add_argument("--json", action="store_true", help="print them as JSON")
    token_list.set_defaults(handler=_refusing(cmd_token_list))
    token_revoke = token_commands.add_parser("revoke", help="revoke an API token by its id")
    token_revoke.add_argument("token_id", metavar="TOKEN_ID", help="the id `token list` shows")
    token_revoke.set_defaults(handler=_refusing(cmd_token_revoke))

    user = commands.add_parser("user", help="staff accounts of the web interface")
    actions = user.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="create a staff account (prints its credentials once)")
    add.add_argument("name", help="the user name to log in with")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--password-file", help="file holding the password (default: generate one,"
                                             " to be changed at the first login)")
    add.add_argument("--language", default="en", choices=available_languages(),
                     help="language of the web interface for this user")
    add.add_argument("--totp", action="store_true",
                     help="enrol a TOTP second factor (always done for admins)")
    add.add_argument("--json", action="store_true", help="print the result as JSON")
    add.set_defaults(handler=_refusing(cmd_user_add))

    reset = actions.add_parser("reset", help="set a new password and end every session")
    reset.add_argument("name")
    reset.add_argument("--password-file", help="file holding the new password (default:"
                                               " generate one)")
    reset.add_argument("--new-totp", action="store_true",
                       help="also replace the TOTP secret (lost phone)")
    reset.add_argument("--json", action="store_true", help="print the result as JSON")
    reset.set_defaults(handler=_refusing(cmd_user_reset))

    disable = actions.add_parser("disable", help="block an account and end its sessions")
    disable.add_argument("name")
    disable.set_defaults(handler=_refusing(cmd_user_disable))

    enable = actions.add_parser("enable", help="unblock a disabled account")
    enable.add_argument("name")
    enable.set_defaults(handler=_refusing(cmd_user_enable))

    listing = actions.add_parser("list", help="list the staff accounts")
    listing.add_argument("--json", action="store_true", help="print them as JSON")
    listing.set_defaults(handler=_refusing(cmd_user_list))


async def _create_token(config: str | None, user: str, role: Role) -> str:
    async with open_node(config) as node, node.store.transaction() as tx:
        token = await tx.tokens.create(user, role)
        await tx.audit.append("minga token create", TOKEN_CREATED, details={"role": role.value})
        return token


def cmd_token_create(args: argparse.Namespace) -> int:
    token = asyncio.run(_create_token(args.config, args.user, Role(args.role)))
    print(token)
    return 0


async def _list_tokens(args: argparse.Namespace) -> list[dict[str, Any]]:
    async with open_node(args.config) as node, node.store.read() as tx:
        return [{"token_id": t.token_id, "user": t.user, "role": t.role.value,
                 "created_at": t.created_at.isoformat(), "revoked": t.revoked}
                for t in await tx.tokens.list()]


def cmd_token_list(args: argparse.Namespace) -> int:
    tokens = _run(lambda: _list_tokens(args))
    if args.json:
        print(json.dumps(tokens, ensure_ascii=False))
        return 0
    for token in tokens:
        state = "REVOKED" if token["revoked"] else "valid"
        print(f"{token['token_id']}  {token['role']:<6}  {state:<7}  {token['created_at']}"
              f"  {token['user']}")
    return 0


async def _revoke_token(args: argparse.Namespace) -> None:
    async with open_node(args.config) as node, node.store.transaction() as tx:
        await tx.tokens.revoke(args.token_id)
        await tx.audit.append("minga token revoke", TOKEN_REVOKED, target=args.token_id)


def cmd_token_revoke(args: argparse.Namespace) -> int:
    _run(lambda: _revoke_token(args))
    print(f"Revoked token {args.token_id}; it no longer opens the API.")
    return 0
