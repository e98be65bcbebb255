"""Which members a node makes a pair room with after they answered it in a shared room
(node/core/pair_room_wishes.py)."""

from __future__ import annotations

from node.core.pair_room_wishes import PairRoomWishes, answered_in_a_shared_room

OWN, B, C = "o" + "a" * 26, "o" + "b" * 26, "o" + "c" * 26
COALITION_ROOM, PAIR_ROOM = "!coalition:test", "!pair:test"


def test_a_record_to_this_node_alone_outside_its_pair_rooms_was_answered_in_a_shared_room(
) -> None:
    assert answered_in_a_shared_room({"aud": OWN}, COALITION_ROOM, OWN, {PAIR_ROOM})


def test_a_record_in_a_pair_room_or_to_many_or_to_another_is_not() -> None:
    assert not answered_in_a_shared_room({"aud": OWN}, PAIR_ROOM, OWN, {PAIR_ROOM})
    assert not answered_in_a_shared_room({"aud": [OWN, C]}, COALITION_ROOM, OWN, set())
    assert not answered_in_a_shared_room({"aud": [OWN]}, COALITION_ROOM, OWN, set())
    assert not answered_in_a_shared_room({"aud": C}, COALITION_ROOM, OWN, set())
    assert not answered_in_a_shared_room({}, COALITION_ROOM, OWN, set())


def test_members_noted_are_taken_once_each() -> None:
    wishes = PairRoomWishes()
    assert wishes.take(0.0) == []
    for member in (C, B, C):
        wishes.note(member)
    assert wishes.take(0.0) == [B, C]
    assert wishes.take(1.0) == []  # taken: being made
    wishes.note(B)  # answered in a shared room again (its room not joined yet)
    assert wishes.take(2.0) == [B]


def test_a_room_that_could_not_be_made_waits_before_it_is_tried_again() -> None:
    wishes = PairRoomWishes(again_after=600.0)
    wishes.note(B)
    assert wishes.take(100.0) == [B]
    wishes.failed(B, 100.0)
    wishes.note(B)
    assert wishes.take(699.0) == []
    assert wishes.take(700.0) == [B]
    wishes.failed(B, 700.0)
    wishes.made(B)  # made on a later try: no wait any more
    wishes.note(B)
    assert wishes.take(701.0) == [B]
