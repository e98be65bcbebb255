"""When a peer replaces a pair room a moved member's old account made (decision 0024, the
peer's fallback): the pure rules."""

from __future__ import annotations

from node.core.peer_replacement import (
    MovedAccount,
    fallback_due,
    noted_moves,
    read_moves,
    replace_as_peer,
    write_moves,
)

MOVE = MovedAccount("org-x", "@x-new:b.test", 1_000)


def test_a_move_is_noted_once_and_a_further_move_starts_anew() -> None:
    moves = noted_moves({}, [("org-x", "@x-new:b.test")], 1_000)
    assert moves == {"org-x": MOVE}
    assert noted_moves(moves, [("org-x", "@x-new:b.test")], 9_000) == {"org-x": MOVE}
    again = noted_moves(moves, [("org-x", "@x-third:c.test"), ("org-y", "@y2:a.test")], 9_000)
    assert again == {"org-x": MovedAccount("org-x", "@x-third:c.test", 9_000),
                     "org-y": MovedAccount("org-y", "@y2:a.test", 9_000)}


def test_moves_round_trip_through_the_setting_and_malformed_entries_are_skipped() -> None:
    moves = {"org-x": MOVE, "org-y": MovedAccount("org-y", "@y2:a.test", 5)}
    assert read_moves(write_moves(moves)) == moves
    assert read_moves(None) == {} and read_moves([1]) == {}
    assert read_moves({"org-x": {"new_user": "@x:b.test", "seen_at_ms": True},
                       "org-y": {"new_user": 3, "seen_at_ms": 1}, "org-z": "text",
                       "org-w": {"new_user": "@w:b.test", "seen_at_ms": 7}}) == \
        {"org-w": MovedAccount("org-w", "@w:b.test", 7)}


def test_the_peer_waits_the_grace_period_for_the_members_own_replacement() -> None:
    assert not fallback_due(MOVE, 1_000, 600_000)
    assert not fallback_due(MOVE, 600_999, 600_000)
    assert fallback_due(MOVE, 601_000, 600_000)


def test_only_rooms_the_member_made_under_another_account_are_replaced_by_the_peer() -> None:
    old, new = "@x-old:a.test", MOVE.new_user
    assert replace_as_peer(MOVE, created_by_us=False, creator=old, current_user=new)
    # this node made it: the member's new account was invited (let_in_moved_account)
    assert not replace_as_peer(MOVE, created_by_us=True, creator="@b:b.test", current_user=new)
    # the member's current account made it (its own replacement, or a new pair room)
    assert not replace_as_peer(MOVE, created_by_us=False, creator=new, current_user=new)
    # the member moved again since: that move is waited for anew
    assert not replace_as_peer(MOVE, created_by_us=False, creator=old,
                               current_user="@x-third:c.test")
    assert not replace_as_peer(MOVE, created_by_us=False, creator=old, current_user=None)
