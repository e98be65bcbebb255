"""What `minga status` and the status API report about a node (never case content)."""

from __future__ import annotations

from typing import Any

from node.core.coalition import roster_rejections
from node.core.runtime import Node
from sync.engine import read_status
from sync.quarantine import count_by_reason
from sync.resume import held_rooms


async def node_status(node: Node) -> dict[str, Any]:
    login = await node.matrix_login()
    async with node.store.read() as tx:
        coalitions = await tx.coalitions.all(with_left=True)
        memberships = await tx.coalitions.memberships()
        members = await tx.orgs.members()
        cases = await tx.cases.count()
        received = await tx.received.count()
        sync = await read_status(tx.session)
        quarantine_reasons = await count_by_reason(tx.session)
        held = sorted(await held_rooms(tx.session))
    return {
        "org_id": node.org_id,
        "name": node.own.name,
        "country": node.own.country,
        "safety_code": node.keys.public().safety_code(),
        "holds_revocation_key": node.keys.revocation is not None,
        "homeserver": login.homeserver_url,
        "matrix_user_id": login.user_id,
        "coalition": next(({"coalition_id": c.coalition_id, "room_id": c.room_id,
                             "name": c.name} for c in coalitions if c.active), None),
        "coalitions": [{"coalition_id": c.coalition_id, "room_id": c.room_id, "name": c.name,
                        "joined_at": c.joined_at.isoformat(),
                        "left_at": None if c.left_at is None else c.left_at.isoformat(),
                        "members": len(memberships.get(c.coalition_id, ()))}
                       for c in coalitions],
        "members": [
            {
                "org_id": m.org_id,
                "name": m.entry.get("profile", {}).get("name"),
                "country": m.entry.get("profile", {}).get("country"),
                "safety_code": m.safety_code,
                "verified": m.verified,
                "matrix_user_id": m.matrix_user_id,
            }
            for m in members
        ],
        "rejected_roster_entries": await roster_rejections(node),
        "cases": cases,
        "received_records": received,
        "sync": {
            "outbox_queued": sync.queued_items,
            "outbox_unsent_frames": sync.unsent_frames,
            "outbox_sent_frames": sync.sent_frames,
            "outbox_pending_resends": sync.pending_resends,
            "outbox_error": sync.outbox_error,
            "quarantined": sync.quarantined,
            "quarantine_by_reason": quarantine_reasons,
            "held_rooms": held,
        },
    }


def render_status(status: dict[str, Any]) -> str:
    sync = status["sync"]
    lines = [
        f"Organisation   {status['name']} ({status['country']})",
        f"  id           {status['org_id']}",
        f"  safety code  {status['safety_code']}",
        "  revocation   " + ("THIS NODE HOLDS THE REVOCATION KEY: export it and keep it offline"
                             " (minga keys export-revocation)" if status["holds_revocation_key"]
                             else "key kept offline (not on this node)"),
        f"Homeserver     {status['homeserver']} as {status['matrix_user_id']}",
        *_coalition_lines(status["coalitions"]),
        f"Cases          {status['cases']}",
        f"Received       {status['received_records']}",
        f"Outbox         {sync['outbox_queued']} queued, {sync['outbox_unsent_frames']} events"
        f" to send, {sync['outbox_sent_frames']} sent, {sync['outbox_pending_resends']} resends"
        + (f" (last error: {sync['outbox_error']})" if sync["outbox_error"] else ""),
        f"Quarantined    {sync['quarantined']} events"
        + "".join(f", {reason}: {count}"
                  for reason, count in sorted(sync["quarantine_by_reason"].items())),
        f"Members        {len(status['members'])}",
    ]
    if sync["held_rooms"]:
        lines.insert(-1, f"Held rooms     {len(sync['held_rooms'])} (restored elsewhere: waiting"
                         " to be let back in, or for a room the old account made to be"
                         " replaced; nothing is sent there until then)")
    for member in status["members"]:
        mark = "verified" if member["verified"] else "NOT VERIFIED"
        lines.append(f"  {member['name']} ({member['country']}) {member['org_id']}")
        lines.append(f"    safety code {member['safety_code']}  {mark}")
    for rejected in status["rejected_roster_entries"]:
        lines.append(f"  ignored entry {rejected['state_key']} from {rejected['sender']}:"
                     f" {rejected['reason']}")
    return "\n".join(lines)


def _coalition_lines(coalitions: list[dict[str, Any]]) -> list[str]:
    if not coalitions:
        return ["Coalitions     none yet (minga coalition create|join)"]
    lines = []
    for number, coalition in enumerate(coalitions):
        head = "Coalitions     " if number == 0 else "               "
        state = (f"left {coalition['left_at'][:10]}" if coalition["left_at"]
                 else f"{coalition['members']} members")
        lines.append(f"{head}{coalition['name'] or '(unnamed)'} ({state})"
                     f" id {coalition['coalition_id']} room {coalition['room_id']}")
    return lines
