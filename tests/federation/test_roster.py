"""Roster entries: verified members in, forged or misplaced entries out with a reason."""

from __future__ import annotations

import copy

import pytest

from federation.identity import OrgKeys, rotate_keys
from federation.roster import MemberStateEvent, RejectedEntry, Roster, member_entry
from schemas.payloads import OrgProfile

PROFILE = OrgProfile(name="Corporación Tierra Viva", country="CO",
                     capabilities=["legal_support"], countries_of_work=["CO", "EC"])


def _event(keys: OrgKeys, user: str = "@tierra:hs1", profile: OrgProfile = PROFILE
           ) -> MemberStateEvent:
    return MemberStateEvent(keys.org_id, user, member_entry(keys, profile, user))


@pytest.fixture(scope="module")
def keys() -> OrgKeys:
    return OrgKeys.generate()


def test_valid_entry_becomes_a_member_with_a_safety_code(keys: OrgKeys) -> None:
    roster = Roster()
    member = roster.consider(_event(keys))
    assert not isinstance(member, RejectedEntry)
    assert member.profile.name == PROFILE.name
    assert member.node_user_id == "@tierra:hs1"
    assert member.safety_code == keys.public().safety_code()
    assert roster.keyring.signing_key_for(keys.org_id, keys.signing_kid, 1_700_000_000)


def _rejected(roster: Roster, event: MemberStateEvent) -> str:
    """Consider ``event``, expect a rejection, and check nothing new entered the roster."""
    members_before = dict(roster.members)
    verdict = roster.consider(event)
    assert isinstance(verdict, RejectedEntry), verdict
    assert roster.rejected[-1] == verdict
    assert roster.members == members_before
    return verdict.reason


def test_entry_with_a_bad_signature_is_rejected_and_reported(keys: OrgKeys) -> None:
    event = _event(keys)
    content = copy.deepcopy(dict(event.content))
    content["profile"]["name"] = "Someone Else"
    reason = _rejected(Roster(), MemberStateEvent(event.state_key, event.sender, content))
    assert "signature" in reason


def test_entry_filed_under_another_org_id_is_rejected(keys: OrgKeys) -> None:
    other = OrgKeys.generate()
    event = _event(keys)
    reason = _rejected(Roster(), MemberStateEvent(other.org_id, event.sender, event.content))
    assert "state key" in reason


def test_entry_posted_by_another_account_is_rejected(keys: OrgKeys) -> None:
    event = _event(keys)
    reason = _rejected(Roster(), MemberStateEvent(event.state_key, "@intruder:hs2",
                                                  event.content))
    assert "node account" in reason


def test_entry_with_an_invalid_profile_is_rejected(keys: OrgKeys) -> None:
    event = _event(keys)
    content = copy.deepcopy(dict(event.content))
    content["profile"]["country"] = "XX"
    reason = _rejected(Roster(), MemberStateEvent(event.state_key, event.sender, content))
    assert "profile" in reason and "country" in reason


def test_rotated_keys_replace_the_entry_and_old_entries_are_refused() -> None:
    keys = OrgKeys.generate()
    roster = Roster()
    old_event = _event(keys)
    roster.consider(old_event)
    rotated, _statement = rotate_keys(keys, effective_at=2_000_000_000)
    member = roster.consider(_event(rotated))
    assert not isinstance(member, RejectedEntry)
    assert member.keys.signing_key != keys.public().signing_key
    assert "stale" in _rejected(roster, old_event)
    assert roster.members[keys.org_id].keys == rotated.public()


def test_a_good_entry_clears_an_earlier_rejection(keys: OrgKeys) -> None:
    roster = Roster()
    event = _event(keys)
    roster.consider(MemberStateEvent(event.state_key, "@intruder:hs2", event.content))
    roster.consider(event)
    assert roster.rejected == [] and keys.org_id in roster.members
