"""Expelling a member by quorum (M13, :mod:`federation.expulsion`): propose, approve, see what
is pending. Applying happens wherever the roster is read (:func:`node.core.coalition.
refresh_roster`): at the threshold every node revokes the member's keys from the stated time,
stops sealing anything to it and removes its node account from the rooms it may remove it
from; the de-duplication key is then reissued without it (its duty follows the verified
roster). Re-admission is an ordinary invite with new keys and a fresh safety-code comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from federation.expulsion import ExpulsionError, approve, propose, request_hash
from node.core.coalition import (
    EXPULSION_APPROVAL_EVENT_TYPE,
    EXPULSION_EVENT_TYPE,
    EXPULSIONS_SETTING,
    refresh_roster,
)
from node.core.runtime import Node
from node.core.sync_host import roster_trust


@dataclass(frozen=True)
class PendingExpulsion:
    key: str
    """``<target org id>/<request hash prefix>``: what an approval names."""
    target: str
    reason: str
    proposer: str
    signers: list[str]
    threshold: int
    revoked_at: int
    room_id: str = ""
    """The coalition room the proposal is in."""


def pending_by_room(saved: object, first_room: str | None) -> dict[str, list[dict[str, Any]]]:
    """The saved pending proposals per coalition room (a list, from before decision 0032, is
    the first coalition's)."""
    if isinstance(saved, list):
        return {first_room: saved} if first_room else {}
    return {room: list(items) for room, items in saved.items()} if isinstance(saved, dict) else {}


async def propose_expulsion(node: Node, target: str, reason: str, since: int, now: int, *,
                            actor: str, coalition_id: str | None = None
                            ) -> PendingExpulsion | None:
    """Propose to expel ``target`` (keys revoked from ``since``), signed by this node."""
    if target == node.org_id:
        raise ExpulsionError("org_id: an organisation cannot propose to expel itself")
    if since > now:
        raise ExpulsionError("since: must not be in the future")
    keyring = (await roster_trust(node)).keyring
    if target not in keyring or keyring.is_revoked(target):
        raise ExpulsionError("org_id: not a member whose keys are in use")
    content = propose(target, keyring.first_signing_kid(target), since, now, node.keys, reason)
    coalition = await node.chosen_coalition(coalition_id)
    async with node.store.read() as tx:
        in_coalition = target in await tx.coalitions.member_ids(coalition.coalition_id)
    if not in_coalition:  # its members there would not count the proposal (decision 0032)
        raise ExpulsionError(f"org_id: not a member of coalition {coalition.coalition_id}")
    key = f"{target}/{request_hash(content['statement'])[:16]}"
    room_id = coalition.room_id
    async with node.transport() as transport:
        await transport.put_state(room_id, EXPULSION_EVENT_TYPE, key, content)
        async with node.store.transaction() as tx:
            await tx.audit.append(actor, "keys.expulsion-proposed", target=target,
                                  details={"proposal": key})
        await refresh_roster(node, transport, room_id)
    return await _pending(node, key)


async def approve_expulsion(node: Node, key: str, *, actor: str) -> PendingExpulsion | None:
    """Sign a pending proposal; the proposal, or None once it reached its threshold."""
    pending = await _pending(node, key)
    if pending is None:
        raise ExpulsionError("proposal: no pending expulsion proposal by that name")
    room_id = pending.room_id
    async with node.transport() as transport:
        state = await transport.room_state(room_id)
        proposal = next((e.content for e in state
                         if e.type == EXPULSION_EVENT_TYPE and e.state_key == key), None)
        if proposal is None or key not in {p.key for p in await pending_expulsions(node)}:
            raise ExpulsionError("proposal: no pending expulsion proposal by that name")
        if key.split("/", 1)[0] == node.org_id:
            raise ExpulsionError("proposal: an organisation does not approve its own expulsion")
        approval = approve(proposal, node.keys)
        await transport.put_state(room_id, EXPULSION_APPROVAL_EVENT_TYPE,
                                  f"{key}/{node.org_id}", approval)
        async with node.store.transaction() as tx:
            await tx.audit.append(actor, "keys.expulsion-approved", target=key.split("/")[0],
                                  details={"proposal": key})
        await refresh_roster(node, transport, room_id)
    return await _pending(node, key)


async def pending_expulsions(node: Node) -> list[PendingExpulsion]:
    """The proposals below their threshold, as the roster was last read."""
    async with node.store.read() as tx:
        saved = await tx.settings.get(EXPULSIONS_SETTING)
        known = await tx.coalitions.all(with_left=True)  # a list saved before 0032: the first's
    rooms = {c.room_id for c in await node.coalitions()}
    by_room = pending_by_room(saved, known[0].room_id if known else None)
    return [PendingExpulsion(i["key"], i["target"], i["reason"], i["proposer"],
                             list(i["signers"]), i["threshold"], i["revoked_at"], room_id)
            for room_id, items in sorted(by_room.items()) if room_id in rooms for i in items]


async def _pending(node: Node, key: str) -> PendingExpulsion | None:
    return next((p for p in await pending_expulsions(node) if p.key == key), None)
