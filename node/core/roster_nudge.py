"""Nudging a coalition room so that every homeserver holds every member's roster entry.

A homeserver sends a new event only to the servers it knows are in the room. When a member's
node publishes its entry while another server is joining the room through a third one, neither
knows of the other yet: the joining server's state has no such entry, and nothing brings it
there until some later event in the room names it among its ancestors. A coalition room is
quiet once formed, so "later" can be never: `bench/coalition_scale.py` with 4 members on 3
homeservers left two members unable to verify each other for good.

So a member's node sends one content-free event (:data:`NUDGE_EVENT_TYPE`) into a coalition room
whenever a server it had not seen there joins, and once when it first reads the room after it
starts. That event descends from everything the node's homeserver holds, its own entry
included, and every server in the room receives it and fetches what it misses. At most one
nudge per room every :data:`NUDGE_INTERVAL_SECONDS`; a server that joins in between gets the
next one.

Pure bookkeeping: the sync host (:mod:`node.core.sync_host`) feeds it what it reads and sends
what it says is due.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from federation.transport import TimelineEvent

NUDGE_EVENT_TYPE: Final = "org.minga.nudge"
NUDGE_INTERVAL_SECONDS: Final = 10.0


def server_of(user_id: str) -> str:
    """``@name:server`` -> ``server`` (the port included)."""
    return user_id.partition(":")[2]


def joined_users(events: Iterable[TimelineEvent]) -> frozenset[str]:
    """The accounts whose membership events in ``events`` say joined."""
    return frozenset(e.state_key for e in events
                     if e.type == "m.room.member" and e.state_key
                     and e.content.get("membership") == "join")


def joined_servers(events: Iterable[TimelineEvent]) -> set[str]:
    """The servers of the accounts whose membership events in ``events`` say joined."""
    return {server_of(user) for user in joined_users(events)}


@dataclass
class _Room:
    servers: set[str]
    due: bool
    last_sent: float | None = None


@dataclass
class RoomNudges:
    """Which coalition rooms this node should nudge, and when; ``own_server`` is its
    homeserver (its own joins need no nudge)."""

    own_server: str
    interval: float = NUDGE_INTERVAL_SECONDS
    _rooms: dict[str, _Room] = field(default_factory=dict)

    def saw(self, room_id: str, events: Iterable[TimelineEvent]) -> None:
        """A sync batch's events of a room read before: a join from a server not seen there
        makes a nudge due."""
        room = self._rooms.get(room_id)
        if room is None:
            return
        new = joined_servers(events) - room.servers - {self.own_server}
        if new:
            room.servers |= new
            room.due = True

    def read(self, room_id: str, joined_users: Iterable[str]) -> None:
        """The room's members as its state says; the first read of a room makes a nudge due
        when other servers are in it."""
        servers = {server_of(user) for user in joined_users}
        room = self._rooms.get(room_id)
        if room is None:
            self._rooms[room_id] = _Room(servers, due=bool(servers - {self.own_server}))
        else:
            room.servers |= servers

    def due(self, now: float) -> list[str]:
        """Rooms to nudge now (each then counts as nudged at ``now``)."""
        rooms = [room_id for room_id, room in self._rooms.items() if room.due and (
            room.last_sent is None or now - room.last_sent >= self.interval)]
        for room_id in rooms:
            self._rooms[room_id].due = False
            self._rooms[room_id].last_sent = now
        return rooms

    def failed(self, room_id: str) -> None:
        """The nudge could not be sent: due again after the interval."""
        if room_id in self._rooms:
            self._rooms[room_id].due = True

    def keep_only(self, room_ids: Iterable[str]) -> None:
        """The coalition rooms this node is in now: the others (a coalition it left, a room
        its coalition moved from) are never nudged again."""
        keep = set(room_ids)
        for room_id in [r for r in self._rooms if r not in keep]:
            del self._rooms[room_id]
