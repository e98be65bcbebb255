"""The state event by which a restored node's new room replaces one its old account made
(decision 0024): what it says, and what is refused."""

from __future__ import annotations

from typing import Any

from federation.transport import TimelineEvent
from node.core.rooms import REPLACES_EVENT_TYPE, Replaces, read_replaces, replaces_state


def _state(content: dict[str, Any], state_key: str = "") -> list[TimelineEvent]:
    return [TimelineEvent(event_id="$r", room_id="!new:test", type=REPLACES_EVENT_TYPE,
                          sender="@a-new:test", content=content, origin_server_ts=1,
                          state_key=state_key)]


def test_the_old_room_and_what_its_maker_holds_round_trip() -> None:
    event = replaces_state("!old:test", {"org-b": 3, "org-c": 0})
    assert event["type"] == REPLACES_EVENT_TYPE and event["state_key"] == ""
    assert read_replaces(_state(event["content"])) == \
        Replaces("!old:test", {"org-b": 3, "org-c": 0})


def test_a_room_without_the_event_replaces_nothing() -> None:
    assert read_replaces([]) is None
    assert read_replaces(_state({"room": "!old:test"}, state_key="other")) is None


def test_a_malformed_event_replaces_nothing_and_bad_seqs_are_dropped() -> None:
    assert read_replaces(_state({"room": "old-room"})) is None
    assert read_replaces(_state({"room": 5})) is None
    assert read_replaces(_state({"room": "!old:test", "after": []})) is None
    found = read_replaces(_state({"room": "!old:test",
                                  "after": {"org-b": -1, "org-c": True, "org-d": "2", "e": 4}}))
    assert found == Replaces("!old:test", {"e": 4})
