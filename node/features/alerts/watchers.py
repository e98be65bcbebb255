"""Staff Matrix accounts that follow urgent alerts in an ordinary Matrix client (M8,
docs/architecture.md §6).

An admin names the organisation's *watchers*: staff Matrix accounts (``@ana:example.org``) that
should get a phone push when an alert arrives. The node invites each watcher into every alert room
it is in, in every coalition it is in: its own (:mod:`node.features.alerts.room`) and those of
the members whose alerts reached it (every
member node may invite into an alert room). There a watcher sees the content-free ``m.notice``
posted with each alert ("Urgent alert from <org> — open Minga"), and the sealed records, which it
cannot read. Watchers sit at power 0: they cannot post anything into the room.

Invitations are sent by :func:`run_alert_watchers` beside the sync engine, so a watcher added
later, or a new alert room, is caught up within a few seconds. Which watcher was invited where is
kept in the store's encrypted settings; Matrix ids are not logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

from federation.transport import MatrixTransport, TransportError
from node.core.duties import repeat
from node.core.runtime import Node
from node.features.alerts.room import own_alert_rooms, usable
from node.features.alerts.service import all_states
from schemas.common import MatrixUserId

log = logging.getLogger("minga.alerts")

WATCHERS_SETTING: Final = "alert_watchers"
INVITED_SETTING: Final = "alert_watchers.invited"
WATCHERS_CHANGED: Final = "alert_watchers.set"
MAX_WATCHERS: Final = 50


class AlertWatchers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    users: Annotated[list[MatrixUserId], Field(max_length=MAX_WATCHERS)] = Field(
        default_factory=list,
        description="staff Matrix accounts invited into every alert room, for push notices")


async def alert_watchers(node: Node) -> AlertWatchers:
    async with node.store.read() as tx:
        return AlertWatchers.model_validate(await tx.settings.get(WATCHERS_SETTING) or {})


async def set_alert_watchers(node: Node, watchers: AlertWatchers, *, actor: str) -> AlertWatchers:
    chosen = AlertWatchers(users=sorted(set(watchers.users)))
    async with node.store.transaction() as tx:
        await tx.settings.set(WATCHERS_SETTING, chosen.model_dump(mode="json"))
        await tx.audit.append(actor, WATCHERS_CHANGED, details={"watchers": len(chosen.users)})
    return chosen


async def alert_rooms(node: Node) -> list[str]:
    """Every alert room this node is in: its own and those alerts arrived in, of the
    coalitions it is in (not those it left)."""
    active = {c.coalition_id for c in await node.coalitions()}
    async with node.store.read() as tx:
        rooms = {state.room_id for state in await all_states(tx)
                 if state.coalition_id in active}
        own = await own_alert_rooms(tx)
    rooms |= {str(saved["room_id"]) for cid, saved in own.items()
              if cid in active and usable(saved) is not None}
    return sorted(rooms)


def to_invite(watchers: Sequence[str], rooms: Sequence[str],
              invited: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The (room, watcher) pairs not invited yet."""
    return [(room, user) for room in rooms for user in sorted(watchers)
            if user not in invited.get(room, [])]


def _already_there(error: TransportError) -> bool:
    return "already in the room" in str(error) or "already joined" in str(error)


async def invite_watchers(node: Node, transport: MatrixTransport) -> int:
    """Invite every watcher into every alert room it has not been invited to; how many now."""
    watchers = (await alert_watchers(node)).users
    if not watchers:
        return 0
    async with node.store.read() as tx:
        invited: dict[str, list[str]] = await tx.settings.get(INVITED_SETTING) or {}
    done = 0
    for room, user in to_invite(watchers, await alert_rooms(node), invited):
        try:
            await transport.invite(room, user)
        except TransportError as error:
            if not _already_there(error):
                log.warning("could not invite a watcher into alert room %s: %s", room,
                            error.status or "error")
                continue
        invited.setdefault(room, []).append(user)
        done += 1
    if done:
        async with node.store.transaction() as tx:
            await tx.settings.set(INVITED_SETTING, invited)
    return done


async def run_alert_watchers(node: Node, transport: MatrixTransport, *,
                             every_seconds: float = 2.0) -> None:
    """Keep watchers invited until cancelled (next to the sync engine)."""
    await repeat(lambda _now: invite_watchers(node, transport), every_seconds=every_seconds,
                 failure="alert watchers not invited", log=log)
