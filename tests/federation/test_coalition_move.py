"""The coalition moving to a new room (decision 0025): who moves, the signed statement."""

from __future__ import annotations

from typing import Any

import pytest

from federation.coalition_move import (
    CREATOR_MOVED,
    CREATOR_REVOKED,
    CREATOR_SEIZED,
    MoveRefused,
    build_move,
    designated_mover,
    read_move,
    verify_move,
    why_move,
)
from federation.identity import (
    KeyRing,
    OrgKeys,
    RefuseRevokedKeys,
    revocation_request,
    sign_member_entry,
    sign_revocation,
)

PROFILE = {"name": "Colectivo", "country": "CO"}
OLD, NEW = "!old:a.example", "!M7UWYg3r5qWqA94kigBW_TrHc898cxe-LWZnjFJ1M4g"
AT = 1_900_000_000


def _ring(*orgs: OrgKeys) -> KeyRing:
    ring = KeyRing()
    for keys in orgs:
        ring.add_member_entry(sign_member_entry(keys, PROFILE))
    return ring


def _three() -> tuple[OrgKeys, OrgKeys, OrgKeys]:
    """The creator, then the designated mover (the smaller other org id), then the other."""
    creator, *others = (OrgKeys.generate() for _ in range(3))
    first, second = sorted(others, key=lambda k: k.org_id)
    return creator, first, second


def _verify(content: dict[str, Any], ring: KeyRing, members: list[str], creator: str,
            **overrides: Any) -> Any:
    options: dict[str, Any] = {"room_creator_org": creator, "old_room": OLD,
                               "reason_now": CREATOR_REVOKED, **overrides}
    return verify_move(content, RefuseRevokedKeys(ring), members=members, **options)


def test_the_designated_mover_is_the_smallest_other_member() -> None:
    assert designated_mover(["c", "a", "b"], "a") == "b"
    assert designated_mover(["c", "a", "b"], "z") == "a"
    assert designated_mover(["a"], "a") is None


def test_why_move_names_a_revoked_or_moved_creator_and_nothing_else() -> None:
    accounts = {"org-a": "@a:h", "org-b": "@b:h"}
    assert why_move("org-a", "@a:h", revoked=set(), current_accounts=accounts) is None
    assert why_move("org-a", "@a:h", revoked={"org-a"},
                    current_accounts=accounts) == CREATOR_REVOKED
    assert why_move("org-a", "@old-a:h", revoked=set(),
                    current_accounts=accounts) == CREATOR_MOVED
    assert why_move(None, "@x:h", revoked=set(), current_accounts=accounts) is None


def test_a_move_by_the_designated_member_verifies() -> None:
    creator, mover, other = _three()
    ring = _ring(creator, mover, other)
    members = [mover.org_id, other.org_id]
    content = build_move(mover, OLD, NEW, creator.org_id, CREATOR_REVOKED, AT)
    move = _verify(content, ring, members, creator.org_id)
    assert (move.old_room, move.new_room, move.mover, move.departed, move.reason) == \
        (OLD, NEW, mover.org_id, creator.org_id, CREATOR_REVOKED)
    assert read_move(content).content == content


def test_a_move_by_another_member_or_with_a_bad_signature_is_refused() -> None:
    creator, mover, other = _three()
    ring = _ring(creator, mover, other)
    members = [mover.org_id, other.org_id]
    by_other = build_move(other, OLD, NEW, creator.org_id, CREATOR_REVOKED, AT)
    with pytest.raises(MoveRefused, match="not the one designated"):
        _verify(by_other, ring, members, creator.org_id)
    # The departed creator itself (its keys perhaps in other hands) is never the mover.
    by_creator = build_move(creator, OLD, NEW, mover.org_id, CREATOR_REVOKED, AT)
    with pytest.raises(MoveRefused, match="another organisation than the room's creator"):
        _verify(by_creator, ring, [creator.org_id, *members], creator.org_id)
    content = build_move(mover, OLD, NEW, creator.org_id, CREATOR_REVOKED, AT)
    tampered = {**content, "new_room": "!attacker:evil.example"}
    with pytest.raises(MoveRefused, match="signature does not verify"):
        _verify(tampered, ring, members, creator.org_id)
    unsigned = {k: v for k, v in content.items() if k != "signature"}
    with pytest.raises(MoveRefused, match="malformed move statement: signature"):
        _verify(unsigned, ring, members, creator.org_id)
    # Signed by a key that is not the designated member's (an outsider using its org id).
    outsider = OrgKeys.generate()
    forged = {**build_move(outsider, OLD, NEW, creator.org_id, CREATOR_REVOKED, AT),
              "mover": mover.org_id, "kid": mover.signing_kid}
    with pytest.raises(MoveRefused):
        _verify(forged, ring, members, creator.org_id)


def test_a_move_of_another_room_or_while_the_creator_is_trusted_is_refused() -> None:
    creator, mover, other = _three()
    ring = _ring(creator, mover, other)
    members = [mover.org_id, other.org_id]
    content = build_move(mover, OLD, NEW, creator.org_id, CREATOR_REVOKED, AT)
    with pytest.raises(MoveRefused, match="another room"):
        _verify(content, ring, members, creator.org_id, old_room="!other:a.example")
    with pytest.raises(MoveRefused, match="still a trusted"):
        _verify(content, ring, members, creator.org_id, reason_now=None)
    # A seizure the members know of out of band: the designated member's word is taken.
    seized = build_move(mover, OLD, NEW, creator.org_id, CREATOR_SEIZED, AT)
    assert _verify(seized, ring, members, creator.org_id, reason_now=None).reason == \
        CREATOR_SEIZED


def test_a_move_signed_by_a_revoked_key_is_refused() -> None:
    creator, mover, other = _three()
    ring = _ring(creator, mover, other)
    request = revocation_request(mover.org_id, [mover.signing_kid], AT - 10, AT - 5)
    ring.apply_revocation(sign_revocation(request, mover.revocation_key()))
    content = build_move(mover, OLD, NEW, creator.org_id, CREATOR_REVOKED, AT - 20)
    with pytest.raises(MoveRefused, match="not trusted"):
        _verify(content, ring, [mover.org_id, other.org_id], creator.org_id)


def test_a_statement_cannot_be_built_for_the_mover_itself_or_the_same_room() -> None:
    creator, mover, _ = _three()
    with pytest.raises(ValueError, match="departed"):
        build_move(mover, OLD, NEW, mover.org_id, CREATOR_REVOKED, AT)
    with pytest.raises(ValueError, match="new_room"):
        build_move(mover, OLD, OLD, creator.org_id, CREATOR_REVOKED, AT)
