"""Making the pair room with a member that had to answer this node in a shared room.

A record sent to many members at once (an alert, a de-duplication query) is answered to its
sender alone, in the pair room between the two when the answering node has one
(:func:`node.core.rooms.answer_room`, decision 0033), else in the room it came in, where every
other member's homeserver and node receive and examine the answer too. At 50 members the 49
answers to one query took 43 s that way and 5.9 s through pair rooms. The answering node makes
no pair room for its answer (making one takes longer than an answer may wait), so the sender
makes it afterwards, for the next time: whenever a record addressed to this node alone arrives
in a room that is not a pair room, its issuer is noted, and the sync host makes the rooms noted
in the background (:func:`node.core.rooms.rooms_of`); the member joins on its next sync and
answers there from then on. A room that could not be made is tried again after
:data:`AGAIN_AFTER_SECONDS`, when the member answers in a shared room again.

Pure bookkeeping: the sync host (:mod:`node.core.sync_host`) notes what arrives and makes what
is due.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

AGAIN_AFTER_SECONDS: Final = 600.0


def answered_in_a_shared_room(claims: Mapping[str, Any], room_id: str, own_org_id: str,
                              pair_rooms: Collection[str]) -> bool:
    """Whether a record with ``claims`` that arrived in ``room_id`` was addressed to this node
    alone outside its pair rooms (an ``aud`` that is a list went to many, where it belongs)."""
    return claims.get("aud") == own_org_id and room_id not in pair_rooms


@dataclass
class PairRoomWishes:
    """The members this node should make a pair room with, and when."""

    again_after: float = AGAIN_AFTER_SECONDS
    _wished: set[str] = field(default_factory=set)
    _failed_at: dict[str, float] = field(default_factory=dict)

    def note(self, org_id: str) -> None:
        """``org_id`` answered this node in a shared room."""
        self._wished.add(org_id)

    def take(self, now: float) -> list[str]:
        """The members to make a pair room with now (no longer wished once taken: a member
        that answers in a shared room again is noted again); one whose room could not be made
        waits :attr:`again_after` seconds."""
        due = sorted(org for org in self._wished
                     if now - self._failed_at.get(org, now - self.again_after) >= self.again_after)
        self._wished -= set(due)
        return due

    def failed(self, org_id: str, now: float) -> None:
        """The pair room with ``org_id`` could not be made at ``now``."""
        self._failed_at[org_id] = now

    def made(self, org_id: str) -> None:
        self._failed_at.pop(org_id, None)
