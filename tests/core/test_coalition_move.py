"""Judging a move statement on a node (node.core.coalition_move.judge): who posted it and
where, on top of the statement's own checks (tests/federation/test_coalition_move.py)."""

from __future__ import annotations

import pytest

from federation.coalition_move import CREATOR_REVOKED, MoveRefused, build_move
from federation.identity import KeyRing, OrgKeys, sign_member_entry
from node.core.coalition_move import RoomView, judge

OLD, NEW = "!old-room", "!new-room"


def _view() -> tuple[RoomView, OrgKeys, OrgKeys]:
    creator, *others = (OrgKeys.generate() for _ in range(3))
    mover, other = sorted(others, key=lambda k: k.org_id)
    ring = KeyRing()
    for keys in (creator, mover, other):
        ring.add_member_entry(sign_member_entry(keys, {"name": "m"}))
    view = RoomView(OLD, "@creator:h", creator.org_id, [mover.org_id, other.org_id],
                    {mover.org_id: "@mover:h", other.org_id: "@other:h"}, CREATOR_REVOKED,
                    ring, [])
    return view, creator, mover


def test_a_statement_by_the_movers_account_in_either_room_is_followed() -> None:
    view, creator, mover = _view()
    content = build_move(mover, OLD, NEW, creator.org_id, CREATOR_REVOKED, 1_900_000_000)
    for room in (OLD, NEW):
        assert judge(view, content, "@mover:h", room).new_room == NEW


def test_a_statement_posted_by_another_account_or_in_another_room_is_refused() -> None:
    view, creator, mover = _view()
    content = build_move(mover, OLD, NEW, creator.org_id, CREATOR_REVOKED, 1_900_000_000)
    with pytest.raises(MoveRefused, match="another account"):
        judge(view, content, "@other:h", OLD)  # a copy someone else posted
    with pytest.raises(MoveRefused, match="another account"):
        judge(view, content, "@creator:h", OLD)
    with pytest.raises(MoveRefused, match="does not name"):
        judge(view, content, "@mover:h", "!a-third-room")
