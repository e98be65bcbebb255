"""How a restored node's chain in a room continues from what the room holds (M13 item 5)."""

from __future__ import annotations

import pytest

from sync.resume import ChainDoesNotContinue, LocalFrame, PostedEnvelope, plan_resume


def posted(seq: int, hash_: str, prev: str) -> PostedEnvelope:
    return PostedEnvelope(seq, hash_, prev, {"envelope": {"n": seq}}, f"$e{seq}{hash_}")


def sent(frame_id: int, seq: int, hash_: str) -> LocalFrame:
    return LocalFrame(frame_id, seq, hash_, sent=True)


def unsent(frame_id: int, seq: int, hash_: str) -> LocalFrame:
    return LocalFrame(frame_id, seq, hash_, sent=False)


def test_envelopes_posted_after_the_backup_are_adopted_in_order() -> None:
    local = [sent(1, 1, "h1"), sent(2, 2, "h2")]
    room = [posted(1, "h1", ""), posted(2, "h2", "h1"), posted(3, "h3", "h2"),
            posted(4, "h4", "h3")]
    plan = plan_resume(local, room)
    assert [e.seq for e in plan.adopt] == [3, 4]
    assert plan.mark_sent == [] and plan.superseded == []


def test_nothing_posted_after_the_backup_changes_nothing() -> None:
    plan = plan_resume([sent(1, 1, "h1")], [posted(1, "h1", "")])
    assert plan.adopt == [] and plan.mark_sent == [] and plan.superseded == []


def test_an_unsent_frame_the_room_already_holds_is_marked_sent() -> None:
    plan = plan_resume([sent(1, 1, "h1"), unsent(2, 2, "h2")],
                       [posted(1, "h1", ""), posted(2, "h2", "h1"), posted(3, "h3", "h2")])
    assert plan.mark_sent == [(2, "$e2h2")]
    assert [e.seq for e in plan.adopt] == [3]


def test_unsent_frames_whose_place_was_taken_are_superseded_with_those_after_them() -> None:
    local = [sent(1, 1, "h1"), unsent(2, 2, "mine2"), unsent(3, 3, "mine3")]
    room = [posted(1, "h1", ""), posted(2, "h2", "h1")]
    plan = plan_resume(local, room)
    assert plan.superseded == [2, 3]
    assert [e.seq for e in plan.adopt] == [2]


def test_unsent_frames_beyond_what_the_room_holds_stay() -> None:
    plan = plan_resume([sent(1, 1, "h1"), unsent(2, 2, "h2")], [posted(1, "h1", "")])
    assert plan == plan_resume([sent(1, 1, "h1"), unsent(2, 2, "h2")], [])
    assert plan.superseded == [] and plan.adopt == []


def test_the_first_envelope_at_a_seq_wins_over_a_refused_second_one() -> None:
    room = [posted(1, "h1", ""), posted(2, "h2", "h1"), posted(2, "other", "h1")]
    plan = plan_resume([sent(1, 1, "h1")], room)
    assert [(e.seq, e.hash) for e in plan.adopt] == [(2, "h2")]


def test_a_room_that_contradicts_a_sent_frame_is_refused() -> None:
    with pytest.raises(ChainDoesNotContinue):
        plan_resume([sent(1, 1, "h1")], [posted(1, "other", "")])
    with pytest.raises(ChainDoesNotContinue):
        plan_resume([sent(1, 1, "h1")], [posted(2, "h2", "not-h1")])
