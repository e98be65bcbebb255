"""When a peer replaces a pair room a moved member's old account made (decision 0024, fallback).

A member restored elsewhere (decision 0023) replaces the pair rooms its old account made, but
only those its backup knew. A pair room its old account made *after* the last backup is unknown
to it; the peer's node, which cannot invite the new account there (room version 12: only the
creator may), would keep posting into a room the member can never enter. So when this node sees
a member's roster entry name a new node account, it notes the move (:func:`noted_moves`, a
setting: org id, the new account, when it was seen; ids and a time only), waits
``SyncConfig.peer_replacement_grace_seconds`` for the member's own replacement, and then
replaces each pair room with that member that the member made under an account that is not its
current one (:func:`replace_as_peer`) itself. Pure rules; the sync host does the work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

MOVED_ACCOUNTS_SETTING: Final = "moved_member_accounts"


@dataclass(frozen=True)
class MovedAccount:
    """A member's node account changed to ``new_user``, first seen at ``seen_at_ms``."""

    org_id: str
    new_user: str
    seen_at_ms: int


def read_moves(stored: Any) -> dict[str, MovedAccount]:
    """The moves in the setting's value (malformed entries are skipped)."""
    moves: dict[str, MovedAccount] = {}
    if not isinstance(stored, dict):
        return moves
    for org_id, entry in stored.items():
        if not isinstance(entry, dict):
            continue
        user, seen = entry.get("new_user"), entry.get("seen_at_ms")
        if isinstance(org_id, str) and isinstance(user, str) and isinstance(seen, int) \
                and not isinstance(seen, bool):
            moves[org_id] = MovedAccount(org_id, user, seen)
    return moves


def write_moves(moves: Mapping[str, MovedAccount]) -> dict[str, Any]:
    return {org: {"new_user": m.new_user, "seen_at_ms": m.seen_at_ms}
            for org, m in sorted(moves.items())}


def noted_moves(known: Mapping[str, MovedAccount], changed: Iterable[tuple[str, str]],
                now_ms: int) -> dict[str, MovedAccount]:
    """``known`` with each ``(org id, new account)`` of ``changed`` added; a move already known
    to the same account keeps its first sighting, a move to yet another account starts anew."""
    moves = dict(known)
    for org_id, new_user in changed:
        if org_id not in moves or moves[org_id].new_user != new_user:
            moves[org_id] = MovedAccount(org_id, new_user, now_ms)
    return moves


def fallback_due(move: MovedAccount, now_ms: int, grace_ms: int) -> bool:
    """Whether the member has had ``grace_ms`` since its move to replace its rooms itself."""
    return now_ms >= move.seen_at_ms + grace_ms


def replace_as_peer(move: MovedAccount, *, created_by_us: bool, creator: str,
                    current_user: str | None) -> bool:
    """Whether this node replaces a pair room with the moved member itself: the member made it
    (not this node) under an account that is not its current one, and the move is still the
    member's current account (a later move is waited for anew)."""
    return (not created_by_us and current_user == move.new_user
            and creator != move.new_user)
