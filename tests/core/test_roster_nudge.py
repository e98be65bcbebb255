"""When a node nudges a coalition room (node/core/roster_nudge.py): pure bookkeeping."""

from __future__ import annotations

from federation.transport import TimelineEvent
from node.core.roster_nudge import RoomNudges, joined_servers, server_of

ROOM = "!coalition:hs1.example"


def member(user: str, membership: str = "join") -> TimelineEvent:
    return TimelineEvent(room_id=ROOM, event_id=f"$m-{user}-{membership}", sender=user,
                         type="m.room.member", content={"membership": membership},
                         origin_server_ts=0, state_key=user)


def test_server_of_keeps_the_port() -> None:
    assert server_of("@org:localhost:8448") == "localhost:8448"
    assert server_of("@org:hs.example") == "hs.example"


def test_joined_servers_reads_joins_only() -> None:
    events = [member("@a:one"), member("@b:two", "invite"), member("@c:three", "leave"),
              TimelineEvent(room_id=ROOM, event_id="$x", sender="@d:four",
                            type="org.minga.sealed", content={}, origin_server_ts=0)]
    assert joined_servers(events) == {"one"}


def test_first_read_with_other_servers_is_due_once() -> None:
    nudges = RoomNudges("one", interval=10)
    nudges.read(ROOM, ["@me:one", "@b:two"])
    assert nudges.due(100.0) == [ROOM]
    assert nudges.due(200.0) == []


def test_first_read_alone_on_own_server_is_not_due() -> None:
    nudges = RoomNudges("one", interval=10)
    nudges.read(ROOM, ["@me:one", "@b:one"])
    assert nudges.due(100.0) == []


def test_a_new_server_joining_makes_a_nudge_due() -> None:
    nudges = RoomNudges("one", interval=10)
    nudges.read(ROOM, ["@me:one"])
    nudges.saw(ROOM, [member("@b:two")])
    assert nudges.due(100.0) == [ROOM]


def test_joins_from_known_servers_or_own_server_are_not() -> None:
    nudges = RoomNudges("one", interval=10)
    nudges.read(ROOM, ["@me:one", "@b:two"])
    nudges.due(100.0)
    nudges.saw(ROOM, [member("@c:two"), member("@d:one"), member("@e:three", "invite")])
    assert nudges.due(200.0) == []


def test_a_room_never_read_is_left_to_its_first_read() -> None:
    nudges = RoomNudges("one", interval=10)
    nudges.saw(ROOM, [member("@b:two")])
    assert nudges.due(100.0) == []


def test_at_most_one_nudge_per_interval_and_a_late_join_waits_for_the_next() -> None:
    nudges = RoomNudges("one", interval=10)
    nudges.read(ROOM, ["@me:one", "@b:two"])
    assert nudges.due(100.0) == [ROOM]
    nudges.saw(ROOM, [member("@c:three")])
    assert nudges.due(105.0) == []
    assert nudges.due(110.0) == [ROOM]
    assert nudges.due(130.0) == []


def test_a_failed_nudge_is_due_again_after_the_interval() -> None:
    nudges = RoomNudges("one", interval=10)
    nudges.read(ROOM, ["@me:one", "@b:two"])
    assert nudges.due(100.0) == [ROOM]
    nudges.failed(ROOM)
    assert nudges.due(101.0) == []
    assert nudges.due(111.0) == [ROOM]


def test_a_room_no_longer_kept_is_never_due() -> None:
    """A coalition the node left, or a room its coalition moved from."""
    other = "!other:hs1.example"
    nudges = RoomNudges("one", interval=10)
    nudges.read(ROOM, ["@me:one", "@b:two"])
    nudges.read(other, ["@me:one", "@c:three"])
    nudges.keep_only([other])
    assert nudges.due(100.0) == [other]
    nudges.saw(ROOM, [member("@d:four")])
    assert nudges.due(200.0) == []
