"""The pure parts of urgent alerts: ordering, ask matching, disclosure choices, the notice."""

from __future__ import annotations

import pytest

from federation.transport import TimelineEvent
from node.core.coalition import MEMBER_POWER, SEALED_EVENT_TYPE
from node.features.alerts.room import (
    alert_power_levels,
    alert_room_maker,
    alert_room_state,
    notice_content,
)
from node.features.alerts.service import (
    ALWAYS_DISCLOSED,
    AlertError,
    AlertState,
    RecipientState,
    _fields,
    arrival_order,
    capability_matches,
    member_capabilities,
    ordered,
    state_key,
)

ISSUER = "oabcdefghijklmnopqrstuvwxy"
COALITION = "!coalition:hs1"


def _state(record_id: str, issued_at: int, *, own: bool, statuses: tuple[str, ...] = (),
           answer: str | None = "delivered", status: str = "active") -> AlertState:
    return AlertState(
        issuer=ISSUER, record_id=record_id, version=1, own=own,
        claims={"alert_type": "arrest", "text": "x", "status": status}, issued_at=issued_at,
        arrived_at=issued_at, room_id="!r:example.org", updated_at=issued_at,
        recipients=[RecipientState(org_id=f"o{i}", status=s, last_sent_at=issued_at)
                    for i, s in enumerate(statuses)],
        answer=None if own else answer)


def test_unacknowledged_alerts_come_first_then_newest() -> None:
    answered_old = _state("a", 100, own=True, statuses=("delivered", "seen"))
    silent_old = _state("b", 200, own=True, statuses=("delivered", "sent"))
    received_unanswered = _state("c", 150, own=False, answer="delivered")
    received_seen = _state("d", 400, own=False, answer="seen")
    closed_silent = _state("e", 500, own=True, statuses=("sent",), status="closed")
    listed = ordered([answered_old, silent_old, received_unanswered, received_seen,
                      closed_silent])
    assert [s.record_id for s in listed] == ["b", "c", "e", "d", "a"]
    assert [s.unacknowledged for s in listed] == [True, True, False, False, False]


def test_arrival_order_is_issue_order() -> None:
    states = [_state("z", 300, own=False), _state("y", 100, own=False),
              _state("x", 100, own=False)]
    assert [s.record_id for s in arrival_order(states)] == ["x", "y", "z"]


@pytest.mark.parametrize(("asks", "capabilities", "matches"), [
    (["legal_support"], ["legal_support", "media"], True),
    (["relocation", "funds"], ["funds"], True),
    (["relocation"], ["legal_support"], False),
    ([], ["legal_support"], False),
])
def test_members_whose_capabilities_meet_an_ask_are_flagged(
    asks: list[str], capabilities: list[str], matches: bool
) -> None:
    assert capability_matches(asks, capabilities) is matches


def test_capabilities_are_read_from_the_signed_profile() -> None:
    entry = {"org_id": ISSUER, "profile": {"name": "X", "capabilities": ["medical", 3]}}
    assert member_capabilities(entry) == ["medical"]
    assert member_capabilities({"profile": "nonsense"}) == []


def test_only_country_place_and_case_can_be_withheld() -> None:
    assert _fields(["place"]) == sorted({*ALWAYS_DISCLOSED, "case", "country"})
    assert _fields([]) == sorted({*ALWAYS_DISCLOSED, "case", "country", "place"})
    with pytest.raises(AlertError, match="cannot withhold text"):
        _fields(["text"])


def test_state_keys_fit_the_settings_table_and_separate_issuers() -> None:
    record_id = "0190a5c4-0000-7000-8000-0000000000aa"
    key = state_key(ISSUER, record_id)
    assert len("setting." + key) <= 64
    assert key != state_key("o" + "b" * 25, record_id)
    assert record_id not in key


def test_the_notice_names_the_org_and_nothing_else() -> None:
    content = notice_content("Haki Ardhi Trust")
    assert content == {"msgtype": "m.notice",
                       "body": "Urgent alert from Haki Ardhi Trust — open Minga"}


def test_member_nodes_may_post_sealed_events_in_the_alert_room() -> None:
    levels = alert_power_levels(["@b:two.example", "@c:one.example"])
    assert levels["users"] == {"@b:two.example": MEMBER_POWER, "@c:one.example": MEMBER_POWER}
    assert levels["events"][SEALED_EVENT_TYPE] == MEMBER_POWER
    assert levels["users_default"] < MEMBER_POWER
    state = {e["type"]: e["content"] for e in alert_room_state(ISSUER, COALITION)}
    assert state["org.minga.alerts"] == {"issuer": ISSUER, "coalition": COALITION}
    assert state["m.room.join_rules"] == {"join_rule": "invite"}
    assert state["m.room.history_visibility"] == {"history_visibility": "shared"}


def _room_state(events: list[dict[str, object]]) -> list[TimelineEvent]:
    return [TimelineEvent.from_source("!room", {"state_key": "", **event}) for event in events]


def test_an_alert_room_is_known_by_its_marker_its_creator_and_its_coalition() -> None:
    create: dict[str, object] = {"type": "m.room.create", "sender": "@node-a:hs1",
                                 "content": {}}
    state = _room_state([create, *alert_room_state("oissuer", COALITION)])
    assert alert_room_maker(state) == ("oissuer", "@node-a:hs1", COALITION)
    assert alert_room_maker(_room_state([create])) is None  # not an alert room
    assert alert_room_maker(_room_state(alert_room_state("oissuer", COALITION))) is None
    odd: dict[str, object] = {"type": "org.minga.alerts", "sender": "@x:hs",
                              "content": {"issuer": 7}}
    assert alert_room_maker(_room_state([create, odd])) is None
    # A room made before a node could be in several coalitions names none (the first's).
    older: dict[str, object] = {"type": "org.minga.alerts", "sender": "@x:hs",
                                "content": {"issuer": "oissuer"}}
    assert alert_room_maker(_room_state([create, older])) == ("oissuer", "@node-a:hs1", None)
    strange: dict[str, object] = {
        "type": "org.minga.alerts", "sender": "@x:hs",
        "content": {"issuer": "oissuer", "coalition": ["!a", "!b"]}}
    assert alert_room_maker(_room_state([create, strange])) is None


def test_member_nodes_may_invite_their_watchers_into_an_alert_room() -> None:
    levels = alert_power_levels(["@node-b:hs2"])
    assert levels["invite"] == MEMBER_POWER == levels["users"]["@node-b:hs2"]
    assert levels["users_default"] < MEMBER_POWER <= levels["events_default"]
