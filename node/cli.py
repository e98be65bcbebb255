"""The ``minga`` command line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from deploy.demo import run_demo
from deploy.homeserver import Homeserver, HomeserverError
from federation.expulsion import ExpulsionError
from federation.identity import RevocationSummary
from federation.transport import TransportError
from node.assembly import node_registry
from node.core.api.times import iso_time, unix_seconds
from node.core.coalition import create_coalition, invite_member, leave_coalition
from node.core.coalition_move import declare_seizure, join_coalition_room
from node.core.config import ConfigError, StoreSection, load_config
from node.core.doctor import exit_status, render
from node.core.doctor_probe import run_doctor
from node.core.expulsion import (
    PendingExpulsion,
    approve_expulsion,
    pending_expulsions,
    propose_expulsion,
)
from node.core.keys import REVOCATION_PASSPHRASE_ENV, RevocationRefused, publish_revocation
from node.core.registry import add_command_groups
from node.core.runtime import NodeNotReady, open_node, read_passphrase
from node.core.server import run_node
from node.core.setup import MatrixAccountChoice, init_node, replace_matrix_token
from node.core.status import node_status, render_status
from node.core.store.coalitions import Coalition
from node.core.store_move import SQLITE_TARGET, move_store
from schemas.errors import describe_validation_error
from schemas.export import export_json_schemas

Handler = Callable[[argparse.Namespace], int]

COALITION_HELP = ("the coalition's id (`minga coalition list`); needed when this node is in"
                  " several")


def minga_version() -> str:
    """The installed release's version, from the package metadata (pyproject.toml is its one
    source); a checkout run without installing it has none."""
    try:
        return version("minga")
    except PackageNotFoundError:
        return "unknown (not installed: run deploy/bootstrap.sh)"


class UserError(Exception):
    """A problem the user can fix; printed as one line, never as a traceback."""


def _wait_for_stop_signal() -> None:
    """Block until Ctrl-C or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve_homeserver(directory: Path, port: int | None) -> int:
    server = Homeserver.open_or_create(directory, client_port=port)
    try:
        server.start()
        print(f"Homeserver {server.server_name} is running at {server.url}", flush=True)
        print(f"  data and logs: {server.directory}", flush=True)
        print("Press Ctrl-C to stop it.", flush=True)
        _wait_for_stop_signal()
    finally:
        server.stop()
    print("Homeserver stopped.", flush=True)
    return 0


def cmd_homeserver_start(args: argparse.Namespace) -> int:
    return _serve_homeserver(Path(args.dir), args.port)


def cmd_homeserver_register(args: argparse.Namespace) -> int:
    server = Homeserver.open(Path(args.dir))
    account = server.register(args.user, admin=args.admin)
    print(f"registered {account.user_id} (device {account.device_id})")
    print(f"password: {account.password}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return run_demo(Path(args.dir))


def _read_secret_file(path: str | None, option: str) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise UserError(f"{option}: cannot read {path} ({error.strerror})") from None


def _store_section(args: argparse.Namespace) -> StoreSection:
    password_file = (None if args.store_password_file is None
                     else Path(args.store_password_file).resolve())
    try:
        return StoreSection(url=args.store_url or "", password_file=password_file)
    except ValidationError as error:
        raise UserError(f"--store-url: {describe_validation_error(error)}") from None


def cmd_init(args: argparse.Namespace) -> int:
    account = MatrixAccountChoice(
        user_id=args.matrix_user,
        password=_read_secret_file(args.matrix_password_file, "--matrix-password-file"),
        registration_secret=_read_secret_file(
            args.registration_secret_file, "--registration-secret-file"
        ),
        access_token=_read_secret_file(args.matrix_access_token_file,
                                       "--matrix-access-token-file"),
    )
    passphrase = read_passphrase(None, confirm=True)
    data_dir = Path(args.data_dir)
    revocation_out = Path(args.revocation_key_out or f"{data_dir.resolve()}-revocation-key.txt")
    revocation_passphrase = _revocation_passphrase(args.revocation_passphrase_file)
    result = asyncio.run(
        init_node(
            data_dir=Path(args.data_dir),
            org_name=args.org_name,
            country=args.country.upper(),
            homeserver_url=args.homeserver,
            passphrase=passphrase,
            account=account,
            http_port=args.http_port,
            revocation_passphrase=revocation_passphrase,
            revocation_key_file=revocation_out,
            store=_store_section(args),
        )
    )
    if args.json:
        print(json.dumps({
            "org_id": result.org_id,
            "safety_code": result.safety_code,
            "matrix_user_id": result.matrix_user_id,
            "config_file": str(result.config_file),
            "revocation_key_file": str(revocation_out),
        }))
        return 0
    print(result.revocation_key_form)
    print(f"The revocation key above was written to {revocation_out}, locked with"
          + (" its own passphrase." if revocation_passphrase else " the node passphrase."))
    print("Print it or copy the file to a USB stick, keep it away from this machine, then"
          " delete the file here: this node no longer holds the key.")
    print(f"Created the node of {args.org_name}")
    print(f"  organisation id: {result.org_id}")
    print(f"  safety code:     {result.safety_code}")
    print(f"  Matrix account:  {result.matrix_user_id}")
    print(f"  configuration:   {result.config_file}")
    print("Compare the safety code with other members out of band before trusting them.")
    return 0


def _revocation_passphrase(path: str | None) -> str | None:
    """The revocation key's own passphrase: from the file given, else
    MINGA_REVOCATION_PASSPHRASE, else asked at a terminal; None means the node passphrase."""
    from_file = _read_secret_file(path, "--revocation-passphrase-file")
    if from_file is not None:
        if not from_file:
            raise UserError("--revocation-passphrase-file: the file is empty")
        return from_file
    from_env = os.environ.get(REVOCATION_PASSPHRASE_ENV)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass("Passphrase for the offline revocation key (Enter: the node's): ")
    if first and getpass.getpass("Repeat it: ") != first:
        raise UserError("the two passphrases differ")
    return first or None


def cmd_run(args: argparse.Namespace) -> int:
    asyncio.run(run_node(args.config, node_registry()))
    return 0


async def _status(config: str | None) -> dict[str, object]:
    async with open_node(config) as node:
        return await node_status(node)


def cmd_status(args: argparse.Namespace) -> int:
    status = asyncio.run(_status(args.config))
    print(json.dumps(status, indent=2, ensure_ascii=False) if args.json else render_status(status))
    return 0


async def _coalition_create(config: str | None, name: str) -> Coalition:
    async with open_node(config) as node:
        return await create_coalition(node, name, node_registry().after_coalition_created)


async def _coalition_invite(config: str | None, user: str, coalition_id: str | None) -> None:
    async with open_node(config) as node:
        await invite_member(node, user, coalition_id)


async def _coalition_leave(config: str | None, coalition_id: str) -> Coalition:
    async with open_node(config) as node:
        return await leave_coalition(node, coalition_id, node_registry().after_coalition_left)


async def _coalition_list(config: str | None) -> list[Coalition]:
    async with open_node(config) as node, node.store.read() as tx:
        return await tx.coalitions.all(with_left=True)


async def _coalition_join(config: str | None, room_id: str, wait: float) -> None:
    async with open_node(config) as node:
        await join_coalition_room(node, room_id, wait_seconds=wait)


async def _coalition_move(config: str | None, coalition_id: str | None) -> str:
    async with open_node(config) as node:
        return await declare_seizure(node, coalition_id)


def cmd_coalition_create(args: argparse.Namespace) -> int:
    coalition = asyncio.run(_coalition_create(args.config, args.name))
    print(json.dumps({"coalition_id": coalition.coalition_id, "room_id": coalition.room_id})
          if args.json else f"coalition {coalition.coalition_id} (room {coalition.room_id})")
    return 0


def cmd_coalition_invite(args: argparse.Namespace) -> int:
    if not args.user.startswith("@") or ":" not in args.user:
        raise UserError(f"ORG_MATRIX_ID: {args.user!r} is not a Matrix user id like @node:server")
    asyncio.run(_coalition_invite(args.config, args.user, args.coalition))
    print(f"invited {args.user}; it can now run `minga coalition join ROOM`")
    return 0


def cmd_coalition_leave(args: argparse.Namespace) -> int:
    coalition = asyncio.run(_coalition_leave(args.config, args.coalition_id))
    print(f"left coalition {coalition.label}; what was received through it is kept")
    return 0


def cmd_coalition_list(args: argparse.Namespace) -> int:
    coalitions = asyncio.run(_coalition_list(args.config))
    if args.json:
        print(json.dumps([{"coalition_id": c.coalition_id, "room_id": c.room_id,
                           "name": c.name, "joined_at": c.joined_at.isoformat(),
                           "left_at": c.left_at.isoformat() if c.left_at else None}
                          for c in coalitions]))
        return 0
    for coalition in coalitions:
        state = f"left {coalition.left_at:%Y-%m-%d}" if coalition.left_at else "member"
        print(f"{coalition.coalition_id}  {coalition.name or '(unnamed)'}  {state}")
    if not coalitions:
        print("this node is in no coalition yet: `minga coalition create|join`")
    return 0


def cmd_coalition_join(args: argparse.Namespace) -> int:
    asyncio.run(_coalition_join(args.config, args.room, args.wait))
    print(f"joined coalition room {args.room} and published this organisation's entry")
    return 0


def cmd_coalition_move(args: argparse.Namespace) -> int:
    if not args.creator_seized:
        raise UserError("--creator-seized: say that the coalition room's creator was seized"
                        " (the coalition moves by itself when it was expelled or revoked)")
    room_id = asyncio.run(_coalition_move(args.config, args.coalition))
    print(f"the coalition moved to {room_id}; every member's node follows it")
    return 0


def cmd_coalition_publish_revocation(args: argparse.Namespace) -> int:
    try:
        statement = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UserError(f"FILE: cannot read a revocation from {args.file}"
                        f" ({getattr(error, 'strerror', None) or 'not JSON'})") from None
    if not isinstance(statement, dict):
        raise UserError(f"FILE: {args.file} is not a revocation made by minga keys revoke")

    async def publish() -> RevocationSummary:
        async with open_node(args.config) as node:
            return await publish_revocation(node, statement, actor="minga coalition")

    try:
        summary = asyncio.run(publish())
    except (RevocationRefused, TransportError) as error:
        raise UserError(f"the revocation was not published: {error}") from None
    print(f"published the revocation of {summary.org_id}'s keys from"
          f" {iso_time(summary.revoked_at)}; every member applies it when it reaches them")
    return 0


def _pending_lines(pending: PendingExpulsion) -> str:
    return (f"{pending.key}: expel {pending.target} from {iso_time(pending.revoked_at)};"
            f" {len(pending.signers)} of {pending.threshold} approvals"
            f" ({', '.join(pending.signers)})\n  reason: {pending.reason}")


def cmd_coalition_propose_expulsion(args: argparse.Namespace) -> int:
    now = int(time.time())
    try:
        since = now if args.since is None else unix_seconds(args.since)
    except ValueError as error:
        raise UserError(f"--since: {error}") from None

    async def propose() -> PendingExpulsion | None:
        async with open_node(args.config) as node:
            return await propose_expulsion(node, args.org_id, args.reason, since, now,
                                           actor="minga coalition",
                                           coalition_id=args.coalition)

    try:
        pending = asyncio.run(propose())
    except (ExpulsionError, TransportError) as error:
        raise UserError(f"the expulsion was not proposed: {error}") from None
    print(_pending_lines(pending) if pending else "proposed and applied at once")
    return 0


def cmd_coalition_approve_expulsion(args: argparse.Namespace) -> int:
    async def approve() -> PendingExpulsion | None:
        async with open_node(args.config) as node:
            return await approve_expulsion(node, args.proposal, actor="minga coalition")

    try:
        pending = asyncio.run(approve())
    except (ExpulsionError, TransportError) as error:
        raise UserError(f"the approval was not published: {error}") from None
    print(_pending_lines(pending) if pending
          else "approved: the threshold is reached and the member is expelled")
    return 0


def cmd_coalition_expulsions(args: argparse.Namespace) -> int:
    async def listed() -> list[PendingExpulsion]:
        async with open_node(args.config) as node:
            return await pending_expulsions(node)

    pending = asyncio.run(listed())
    print("\n".join(_pending_lines(p) for p in pending) if pending
          else "no expulsion proposal is waiting")
    return 0


def cmd_store_move(args: argparse.Namespace) -> int:
    counts = asyncio.run(move_store(args.config, args.to, args.password_file))
    width = max(len(count.table) for count in counts)
    for count in counts:
        print(f"  {count.table:<{width}}  {count.target} rows")
    where = "the SQLite file in the data directory" if args.to == SQLITE_TARGET else args.to
    print(f"moved the store to {where} ({sum(c.target for c in counts)} rows, every table"
          " checked); node.toml now points there")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    findings = asyncio.run(run_doctor(args.config, node_registry().doctor_checks))
    if args.json:
        print(json.dumps({"ok": exit_status(findings) == 0,
                          "findings": [f.as_json() for f in findings]}, indent=2))
    else:
        print(render(findings))
    return exit_status(findings)


def cmd_matrix_token(args: argparse.Namespace) -> int:
    token = _read_secret_file(args.file, "--file") or ""

    async def replace() -> str:
        async with open_node(args.config) as node:
            return (await replace_matrix_token(node, token)).user_id

    user = asyncio.run(replace())
    print(f"the node now uses the new access token of {user}; restart `minga run` if it runs")
    return 0


def cmd_schemas_export(args: argparse.Namespace) -> int:
    written = export_json_schemas(Path(args.dir))
    print(f"wrote {len(written)} JSON Schema files to {args.dir}")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    config = load_config(Path(args.file))
    print(f"{args.file}: valid; homeserver {config.homeserver.url},"
          f" web and API on http://{config.http.host}:{config.http.port}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minga", description="Minga node for coalitions")
    parser.add_argument("--config", help="the node's node.toml (default: $MINGA_CONFIG or"
                                         " minga-data/node.toml)")
    parser.add_argument("--version", action="version", version=f"minga {minga_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    homeserver = commands.add_parser("homeserver", help="the embedded Matrix homeserver")
    hs_commands = homeserver.add_subparsers(dest="action", required=True, metavar="ACTION")
    start = hs_commands.add_parser("start", help="run a loopback-only homeserver until Ctrl-C")
    start.add_argument("--dir", required=True, help="directory for its data (created if new)")
    start.add_argument("--port", type=int, help="client API port (default: a free port)")
    start.set_defaults(handler=cmd_homeserver_start)
    register = hs_commands.add_parser("register", help="create an account on it")
    register.add_argument("--dir", required=True, help="the homeserver's directory")
    register.add_argument("user", help="local part of the new account")
    register.add_argument("--admin", action="store_true", help="make it a server admin")
    register.set_defaults(handler=cmd_homeserver_register)

    init = commands.add_parser("init", help="create this organisation's node")
    init.add_argument("--org-name", required=True, help="the organisation's name")
    init.add_argument("--country", required=True, help="ISO 3166 code of its home country")
    init.add_argument("--homeserver", required=True, help="URL of the node's Matrix homeserver")
    init.add_argument("--data-dir", default="minga-data", help="where the node keeps its data")
    init.add_argument("--http-port", type=int, default=8470, help="port of the web UI and API")
    init.add_argument("--matrix-user", help="an existing Matrix account for the node")
    init.add_argument("--matrix-password-file", help="file holding that account's password")
    init.add_argument("--registration-secret-file",
                      help="file holding the homeserver's registration shared secret,"
                           " to create the node's account")
    init.add_argument("--matrix-access-token-file",
                      help="file holding an access token issued for the node's account (for"
                           " homeservers behind Matrix Authentication Service or SSO)")
    init.add_argument("--revocation-key-out",
                      help="where to write the offline revocation key (outside the data"
                           " directory; default: next to it, DATA_DIR-revocation-key.txt)")
    init.add_argument("--revocation-passphrase-file",
                      help="file holding the revocation key's own passphrase (default:"
                           f" ${REVOCATION_PASSPHRASE_ENV}, a prompt, or the node passphrase)")
    init.add_argument("--store-url", help="a postgresql:// URL to keep the store on PostgreSQL"
                      " (default: an SQLite file in the data directory)")
    init.add_argument("--store-password-file",
                      help="file holding the PostgreSQL password (else MINGA_STORE_PASSWORD)")
    init.add_argument("--json", action="store_true", help="print the result as JSON")
    init.set_defaults(handler=cmd_init)

    run = commands.add_parser("run", help="run the node: web UI, API and federation")
    run.set_defaults(handler=cmd_run)

    status = commands.add_parser("status", help="show this node's state")
    status.add_argument("--json", action="store_true", help="print it as JSON")
    status.set_defaults(handler=cmd_status)

    coalition = commands.add_parser("coalition", help="the coalitions this node belongs to")
    co_commands = coalition.add_subparsers(dest="action", required=True, metavar="ACTION")
    co_create = co_commands.add_parser("create", help="create a coalition room")
    co_create.add_argument("name", help="the coalition's name")
    co_create.add_argument("--json", action="store_true", help="print the room id as JSON")
    co_create.set_defaults(handler=cmd_coalition_create)
    co_invite = co_commands.add_parser("invite", help="invite another member's node")
    co_invite.add_argument("user", metavar="ORG_MATRIX_ID", help="the node's Matrix account")
    co_invite.add_argument("--coalition", metavar="ID", help=COALITION_HELP)
    co_invite.set_defaults(handler=cmd_coalition_invite)
    co_leave = co_commands.add_parser(
        "leave", help="leave a coalition: its rooms are left, what was received is kept")
    co_leave.add_argument("coalition_id", metavar="ID", help="the coalition's id (coalition list)")
    co_leave.set_defaults(handler=cmd_coalition_leave)
    co_list = co_commands.add_parser("list", help="the coalitions this node is or was in")
    co_list.add_argument("--json", action="store_true", help="print them as JSON")
    co_list.set_defaults(handler=cmd_coalition_list)
    co_join = co_commands.add_parser("join", help="join a coalition this node was invited to")
    co_join.add_argument("room", metavar="ROOM", help="the coalition room id")
    co_join.add_argument("--wait", type=float, default=60.0,
                         help="seconds to wait for the invite to arrive (default 60)")
    co_join.set_defaults(handler=cmd_coalition_join)
    co_move = co_commands.add_parser(
        "move", help="move the coalition to a new room (the room's creator was seized)")
    co_move.add_argument("--creator-seized", action="store_true",
                         help="the organisation whose node made the coalition room was seized;"
                              " only the member designated to move it may (decision 0025)")
    co_move.add_argument("--coalition", metavar="ID", help=COALITION_HELP)
    co_move.set_defaults(handler=cmd_coalition_move)
    co_revoke = co_commands.add_parser(
        "publish-revocation", help="publish a member's signed key revocation for the coalition")
    co_revoke.add_argument("file", metavar="FILE", help="the statement `minga keys revoke` wrote")
    co_revoke.set_defaults(handler=cmd_coalition_publish_revocation)
    co_expel = co_commands.add_parser(
        "propose-expulsion", help="propose that the members revoke a member's keys (quorum)")
    co_expel.add_argument("org_id", metavar="ORG_ID", help="the member to expel")
    co_expel.add_argument("--reason", required=True, help="why, for the other members")
    co_expel.add_argument("--since", metavar="TIME",
                          help="ISO 8601 time from which its keys are refused (default: now)")
    co_expel.add_argument("--coalition", metavar="ID", help=COALITION_HELP)
    co_expel.set_defaults(handler=cmd_coalition_propose_expulsion)
    co_approve = co_commands.add_parser("approve-expulsion", help="approve a pending proposal")
    co_approve.add_argument("proposal", metavar="PROPOSAL",
                            help="the proposal's key (minga coalition expulsions lists them)")
    co_approve.set_defaults(handler=cmd_coalition_approve_expulsion)
    co_list = co_commands.add_parser("expulsions", help="list pending expulsion proposals")
    co_list.set_defaults(handler=cmd_coalition_expulsions)

    doctor = commands.add_parser(
        "doctor", help="check the deployment end to end and say what to fix")
    doctor.add_argument("--json", action="store_true", help="print the findings as JSON")
    doctor.set_defaults(handler=cmd_doctor)

    matrix_token = commands.add_parser(
        "matrix-token", help="give the node a new access token for its Matrix account")
    matrix_token.add_argument("--file", required=True,
                              help="file holding the token (issued as for init's"
                                   " --matrix-access-token-file)")
    matrix_token.set_defaults(handler=cmd_matrix_token)

    demo = commands.add_parser("demo", help="run the demo network until Ctrl-C")
    demo.add_argument("--dir", default="demo-data", help="directory for all demo data")
    demo.set_defaults(handler=cmd_demo)

    store = commands.add_parser("store", help="the node's database")
    store_commands = store.add_subparsers(dest="action", required=True, metavar="ACTION")
    move = store_commands.add_parser(
        "move", help="move the store to PostgreSQL or back to SQLite (stop the node first)")
    move.add_argument("--to", required=True, metavar="URL",
                      help="a postgresql://user@host:port/database URL, or 'sqlite' for the"
                           " file in the data directory")
    move.add_argument("--password-file",
                      help="file holding the PostgreSQL password (else MINGA_STORE_PASSWORD)")
    move.set_defaults(handler=cmd_store_move)

    schemas = commands.add_parser("schemas", help="record schemas")
    schema_commands = schemas.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = schema_commands.add_parser("export", help="write JSON Schema for every record kind")
    export.add_argument("dir", help="directory to write <kind>.schema.json files into")
    export.set_defaults(handler=cmd_schemas_export)

    config = commands.add_parser("config", help="configuration files")
    config_commands = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = config_commands.add_parser("check", help="validate a node.toml")
    check.add_argument("file", help="path of the file")
    check.set_defaults(handler=cmd_config_check)

    add_command_groups(commands, node_registry())  # every feature's commands
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (UserError, ConfigError, HomeserverError, NodeNotReady) as error:
        print(f"minga: {error}", file=sys.stderr)
        return 2
    except TransportError as error:  # the homeserver refused or did not answer
        print(f"minga: the homeserver: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
