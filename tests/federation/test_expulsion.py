"""Expulsion by quorum: proposals and approvals gathered into one co-signed revocation."""

from __future__ import annotations

import pytest

from federation.expulsion import (
    ExpulsionError,
    approve,
    default_threshold,
    gather,
    propose,
)
from federation.identity import KeyRing, OrgKeys, StatementRejected, sign_member_entry

PROFILE = {"name": "Colectivo", "country": "CO"}


def _ring(*orgs: OrgKeys) -> KeyRing:
    ring = KeyRing()
    for keys in orgs:
        ring.add_member_entry(sign_member_entry(keys, PROFILE))
    return ring


def test_the_default_threshold_is_a_majority_of_the_others_and_at_least_two() -> None:
    assert [default_threshold(n) for n in (1, 2, 3, 4, 5, 6)] == [2, 2, 2, 3, 3, 4]


def test_approvals_gather_into_a_revocation_the_key_ring_accepts_at_the_quorum() -> None:
    target, a, b, c = (OrgKeys.generate() for _ in range(4))
    ring = _ring(target, a, b, c)
    proposal = propose(target.org_id, target.signing_kid, 1_900_000_000, 1_900_000_100, a,
                       "posts our cases to the police")
    alone = gather([(a.org_id, proposal)], [])
    assert [g.signers for g in alone] == [[a.org_id]]
    with pytest.raises(StatementRejected, match="needs the revocation key or 2"):
        ring.apply_revocation(alone[0].signed())
    approval = approve(proposal, b)
    # An approval counts only from the member whose node posted it, never from the target.
    forged = gather([(a.org_id, proposal)], [(c.org_id, approval),
                                             (target.org_id, approve(proposal, c))])
    assert forged[0].signers == [a.org_id]
    gathered = gather([(a.org_id, proposal)], [(b.org_id, approval), (b.org_id, approval)])
    assert gathered[0].signers == sorted([a.org_id, b.org_id])
    ring.apply_revocation(gathered[0].signed())
    assert ring.is_revoked(target.org_id)


def test_a_proposal_needs_a_reason_and_another_target() -> None:
    a = OrgKeys.generate()
    with pytest.raises(ExpulsionError, match="reason"):
        propose("o" + "a" * 24, a.signing_kid, 1, 2, a, "  ")
    with pytest.raises(ExpulsionError, match="itself"):
        propose(a.org_id, a.signing_kid, 1, 2, a, "why")


def test_malformed_proposals_and_approvals_are_left_out() -> None:
    target, a = OrgKeys.generate(), OrgKeys.generate()
    proposal = propose(target.org_id, target.signing_kid, 1, 2, a, "reason")
    assert gather([(a.org_id, {"type": "minga.expulsion/1", "statement": "x", "reason": "r"}),
                   (a.org_id, {**proposal, "type": "other"}),
                   (target.org_id, proposal)], []) == []
    gathered = gather([(a.org_id, proposal)], [(target.org_id, {"type": "x"})])
    assert gathered[0].signers == [a.org_id]
