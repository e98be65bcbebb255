"""The coalition actions staff take from the page or the API, over the core's functions
(``node.core.coalition``, ``node.core.coalition_move``), with the registry's hooks; and the
overview both show. Refusals are :class:`CoalitionRefused` with a reason staff can act on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import aiohttp

from federation.transport import RATE_LIMITED, TransportError
from node.core.coalition import create_coalition, invite_member, leave_coalition
from node.core.coalition_move import join_coalition_room
from node.core.registry import Registry
from node.core.runtime import Node, NodeNotReady
from node.core.store.coalitions import Coalition


class Refusal(Enum):
    UNKNOWN = "unknown"
    """No coalition with this id that this node is in (never was, or left it)."""
    NOT_INVITED = "not_invited"
    """The room could not be joined: no invite arrived (or it is no coalition room)."""
    REFUSED = "refused"
    """The homeserver answered with a refusal."""
    UNAVAILABLE = "unavailable"
    """The homeserver could not be reached."""


class CoalitionRefused(Exception):
    def __init__(self, refusal: Refusal, detail: str) -> None:
        super().__init__(detail)
        self.refusal = refusal
        self.detail = detail


# The transport raises TransportError when the homeserver answered with an error, but lets
# a connection that fails (after its retries) through as aiohttp's or asyncio's own error.
UNREACHABLE = (TransportError, TimeoutError, aiohttp.ClientError)


def _homeserver(error: Exception) -> CoalitionRefused:
    # A status is the homeserver's own error code: it answered. None: no answer at all.
    if not isinstance(error, TransportError) or error.status is None \
            or error.status == RATE_LIMITED:
        return CoalitionRefused(Refusal.UNAVAILABLE, f"the homeserver is unavailable: {error}")
    return CoalitionRefused(Refusal.REFUSED, f"the homeserver refused: {error}")


@dataclass(frozen=True)
class CoalitionView:
    coalition: Coalition
    members: list[str]
    """Org ids of its verified members (this organisation included), by name."""


async def overview(node: Node) -> tuple[list[CoalitionView], dict[str, str]]:
    """Every coalition this node is or was in (the ones it is in first, each group oldest
    first) with its verified members, and the names of the organisations (org id -> name)."""
    async with node.store.read() as tx:
        coalitions = await tx.coalitions.all(with_left=True)
        memberships = await tx.coalitions.memberships()
        names = await tx.orgs.names()
    ordered = [c for c in coalitions if c.active] + [c for c in coalitions if not c.active]
    views = [CoalitionView(c, sorted(memberships.get(c.coalition_id, ()),
                                     key=lambda org_id: (names.get(org_id, org_id), org_id)))
             for c in ordered]
    return views, names


async def own_matrix_account(node: Node) -> str | None:
    """The Matrix account other members invite to bring this node into their coalition."""
    try:
        return (await node.matrix_login()).user_id
    except NodeNotReady:
        return None


async def create(node: Node, registry: Registry, name: str) -> Coalition:
    try:
        return await create_coalition(node, name, registry.after_coalition_created)
    except UNREACHABLE as error:
        raise _homeserver(error) from None


async def invite(node: Node, coalition_id: str, matrix_user_id: str) -> None:
    await _active(node, coalition_id)
    try:
        await invite_member(node, matrix_user_id, coalition_id)
    except UNREACHABLE as error:
        raise _homeserver(error) from None


async def join(node: Node, room_id: str, *, wait_seconds: float) -> Coalition:
    """Join the coalition whose room ``room_id`` is, waiting up to ``wait_seconds`` for the
    invite to arrive."""
    try:
        await join_coalition_room(node, room_id, wait_seconds=wait_seconds)
    except NodeNotReady as error:
        raise CoalitionRefused(Refusal.NOT_INVITED, str(error)) from None
    except UNREACHABLE as error:
        raise _homeserver(error) from None
    coalition = await node.coalition_of_room(room_id)
    if coalition is None:  # not expected: the join remembers it
        raise CoalitionRefused(Refusal.NOT_INVITED, f"{room_id} is no coalition room")
    return coalition


async def leave(node: Node, registry: Registry, coalition_id: str) -> Coalition:
    await _active(node, coalition_id)
    try:
        return await leave_coalition(node, coalition_id, registry.after_coalition_left)
    except UNREACHABLE as error:
        raise _homeserver(error) from None


async def _active(node: Node, coalition_id: str) -> Coalition:
    try:
        return await node.coalition(coalition_id)
    except NodeNotReady:
        raise CoalitionRefused(Refusal.UNKNOWN, f"this node is in no coalition {coalition_id}"
                               ) from None
