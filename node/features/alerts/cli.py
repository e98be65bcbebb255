"""``minga alert send|list|status|watchers``: urgent alerts without the web interface (M8).

``send`` queues the alert and then delivers what is queued at once (so an alert leaves even
when ``minga run`` is not running); if the homeserver cannot be reached it stays queued and
leaves with the node's next federation loop.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from pydantic import ValidationError

from federation.transport import TransportError
from node.core.cli_support import CommandFailed, friendly, unix_now
from node.core.runtime import Node, open_node
from node.core.sharing import SharingError
from node.core.sync_host import NodeSyncHost
from node.features.alerts.room import AlertRoomError
from node.features.alerts.service import (
    WITHHOLDABLE,
    AlertError,
    AlertState,
    list_alerts,
    notices_posted,
    send_alert,
    update_alert,
)
from node.features.alerts.watchers import AlertWatchers, alert_watchers, set_alert_watchers
from schemas.errors import validation_problems
from schemas.payloads import Alert
from schemas.typology import Vocabulary, codes
from sync.outbox import HomeserverUnavailable, Outbox

CLI_ACTOR = "minga alert"


def add_alert_commands(commands: Any) -> None:
    alert = commands.add_parser("alert", help="urgent alerts to the coalition")
    actions = alert.add_subparsers(dest="action", required=True, metavar="ACTION")
    send = actions.add_parser("send", help="send an urgent alert to every member (or --to)")
    send.add_argument("--type", required=True, choices=sorted(codes(Vocabulary.ALERT_TYPE)),
                      help="what happened")
    send.add_argument("--country", required=True, help="ISO 3166-1 alpha-2 code, e.g. CO")
    send.add_argument("--text", required=True, help="a short text: who, what, what is needed")
    send.add_argument("--urgency", default="critical",
                      choices=sorted(codes(Vocabulary.RISK_LEVEL)))
    send.add_argument("--place", help="where (withheld with --withhold place)")
    send.add_argument("--ask", action="append", default=[],
                      choices=sorted(codes(Vocabulary.ALERT_ASK)), help="help asked (repeat)")
    send.add_argument("--to", action="append", default=None, metavar="ORG_ID",
                      help="only these members (repeat); default every verified member")
    send.add_argument("--withhold", action="append", default=[], choices=WITHHOLDABLE,
                      help="a field members do not get (repeat)")
    send.add_argument("--coalition", metavar="ID",
                      help="the coalition to alert (`minga coalition list`); needed when this"
                           " node is in several")
    send.set_defaults(handler=cmd_alert_send)
    listing = actions.add_parser("list", help="alerts sent and received, unanswered first")
    listing.set_defaults(handler=cmd_alert_list)
    status = actions.add_parser(
        "status", help="update (released), close or reopen one of our alerts")
    status.add_argument("record_id")
    status.add_argument("status", choices=sorted(codes(Vocabulary.ALERT_STATUS)))
    status.add_argument("--text", help="what changed (the alert's own text stays as sent)")
    status.add_argument("--reason", help="why; needed to reopen a closed alert")
    status.set_defaults(handler=cmd_alert_status)
    watchers = actions.add_parser(
        "watchers", help="show or set the staff Matrix accounts invited into alert rooms")
    watchers.add_argument("--set", nargs="*", metavar="MATRIX_ID", dest="users",
                          help="these accounts, e.g. @ana:example.org (none: nobody)")
    watchers.set_defaults(handler=cmd_alert_watchers)


def _fail(message: str) -> int:
    print(f"minga alert: {message}", file=sys.stderr)
    return 2


def cmd_alert_send(args: argparse.Namespace) -> int:
    try:
        alert = Alert.model_validate({
            "alert_type": args.type, "urgency": args.urgency, "country": args.country,
            "place": args.place, "asks": args.ask, "text": args.text})
    except ValidationError as error:
        return _fail("; ".join(f"{p.path}: {p.problem}" for p in validation_problems(error)))
    try:
        state, delivered = asyncio.run(_send(args, alert))
    except (AlertError, AlertRoomError, SharingError) as error:
        return _fail(str(error))
    print(f"alert {state.record_id} to {len(state.recipients)} member(s): "
          + ("sent" if delivered else "queued; it leaves when the homeserver answers"))
    return 0


async def _send(args: argparse.Namespace, alert: Alert) -> tuple[AlertState, bool]:
    async with open_node(args.config) as node:
        state = await send_alert(node, alert, recipients=args.to, withhold=args.withhold,
                                 coalition_id=args.coalition, actor=CLI_ACTOR,
                                 now=int(time.time()))
        delivered = await deliver_queued(node)
        await notices_posted(node)
        return state, delivered


async def deliver_queued(node: Node) -> bool:
    """Seal and post whatever is queued; False if the homeserver could not be reached."""
    try:
        async with node.transport() as transport:
            outbox = Outbox(await NodeSyncHost.for_sending(node, transport), transport)
            await outbox.bundle_queued()
            await outbox.send_due()
    except (HomeserverUnavailable, TransportError):
        return False
    return True


def cmd_alert_list(args: argparse.Namespace) -> int:
    states, active = asyncio.run(_list(args))
    for state in states:
        mark = "!" if state.unacknowledged else " "
        late = " late" if state.late else ""
        who = "ours" if state.own else state.issuer
        answers = ", ".join(f"{r.org_id}={r.status}" for r in state.recipients)
        left = "" if state.coalition_id in active else " (left)"
        print(f"{mark} {state.record_id} {state.claims.get('alert_type', '?')} "
              f"{state.status} from {who}{late} in {state.coalition_id}{left}"
              + (f" [{answers}]" if answers else ""))
    return 0


async def _list(args: argparse.Namespace) -> tuple[list[AlertState], set[str | None]]:
    async with open_node(args.config) as node:
        active: set[str | None] = {c.coalition_id for c in await node.coalitions()}
        return await list_alerts(node), active


@friendly(SharingError)
def cmd_alert_status(args: argparse.Namespace) -> int:
    try:
        asyncio.run(_status(args))
    except AlertError as error:
        option = {"reason": "--reason", "text": "--text"}.get(error.field or "")
        raise CommandFailed(str(error) if option is None
                            else f"{option}: {str(error).partition(': ')[2]}") from None
    except ValidationError as error:
        raise CommandFailed("; ".join(f"--{p.path}: {p.problem}"
                                      for p in validation_problems(error))) from None
    print(f"alert {args.record_id}: {args.status}")
    return 0


async def _status(args: argparse.Namespace) -> None:
    async with open_node(args.config) as node:
        await update_alert(node, args.record_id, status=args.status, text=args.text,
                           reason=args.reason, actor=CLI_ACTOR, now=unix_now())
        await deliver_queued(node)


def cmd_alert_watchers(args: argparse.Namespace) -> int:
    try:
        chosen = None if args.users is None else AlertWatchers(users=args.users)
    except ValidationError as error:
        return _fail("; ".join(f"--set {p.path}: {p.problem}" for p in validation_problems(error)))
    watchers = asyncio.run(_watchers(args.config, chosen))
    if not watchers.users:
        print("no watchers: alert rooms have only member nodes in them")
    for user in watchers.users:
        print(user)
    return 0


async def _watchers(config: str | None, chosen: AlertWatchers | None) -> AlertWatchers:
    async with open_node(config) as node:
        if chosen is None:
            return await alert_watchers(node)
        return await set_alert_watchers(node, chosen, actor=CLI_ACTOR)
