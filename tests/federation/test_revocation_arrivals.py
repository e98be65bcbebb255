"""After a seizure (M13): the revocation key file names the first signing key, a revocation
naming it cuts off every later key, and what arrives after it is refused whatever its date."""

from __future__ import annotations

import pytest

from federation.identity import (
    KeyRing,
    MalformedStatement,
    OrgKeys,
    RefuseRevokedKeys,
    export_revocation_key,
    import_revocation_key,
    read_revocation,
    revocation_request,
    rotate_keys,
    sign_member_entry,
    sign_revocation,
)
from federation.keys import KeyNotTrusted
from federation.secretbox import FAST_TEST_PARAMS

PROFILE = {"name": "Colectivo Tierra", "country": "CO"}


def test_the_revocation_file_names_the_first_signing_key_even_after_rotations() -> None:
    keys = OrgKeys.generate()
    first = keys.signing_kid
    rotated, _ = rotate_keys(keys, 1_800_000_000)
    blob = export_revocation_key(rotated, "pass", params=FAST_TEST_PARAMS)
    key = import_revocation_key(blob, "pass")
    assert key.first_signing_kid == first and key.org_id == keys.org_id


def _seized() -> tuple[OrgKeys, OrgKeys, KeyRing]:
    keys = OrgKeys.generate()
    rotated, _ = rotate_keys(keys, 1_800_000_000)
    ring = KeyRing()
    ring.add_member_entry(sign_member_entry(rotated, PROFILE))
    return keys, rotated, ring


def test_revoking_the_first_key_from_a_time_revokes_the_current_one_from_then() -> None:
    keys, rotated, ring = _seized()
    request = revocation_request(keys.org_id, [keys.signing_kid], 1_900_000_000, 1_900_000_100)
    ring.apply_revocation(sign_revocation(request, keys.revocation_key()))
    assert ring.is_revoked(keys.org_id)
    assert ring.signing_key_for(keys.org_id, rotated.signing_kid, 1_899_999_999)
    with pytest.raises(KeyNotTrusted, match="revoked"):
        ring.signing_key_for(keys.org_id, rotated.signing_kid, 1_900_000_000)
    assert ring.revoked_from(keys.org_id, rotated.signing_kid) == 1_900_000_000
    assert ring.revoked_from(keys.org_id, "unknownkidunknow") is None


def test_a_back_dated_signature_with_a_revoked_key_is_refused_on_arrival() -> None:
    keys, rotated, ring = _seized()
    arrivals = RefuseRevokedKeys(ring)
    # Before the revocation is known, a back-dated record verifies like any other.
    assert arrivals.signing_key_for(keys.org_id, rotated.signing_kid, 1_850_000_000)
    request = revocation_request(keys.org_id, [keys.signing_kid], 1_900_000_000, 1_900_000_100)
    ring.apply_revocation(sign_revocation(request, keys.revocation_key()))
    with pytest.raises(KeyNotTrusted, match="whatever date it carries"):
        arrivals.signing_key_for(keys.org_id, rotated.signing_kid, 1_850_000_000)
    # The key ring itself still answers for what was checked before (records held).
    assert ring.signing_key_for(keys.org_id, rotated.signing_kid, 1_850_000_000)
    # Keys of an organisation that revoked nothing are untouched.
    other = OrgKeys.generate()
    ring.add_member_entry(sign_member_entry(other, PROFILE))
    assert arrivals.signing_key_for(other.org_id, other.signing_kid, 1_950_000_000)


def test_reading_a_revocation_gives_its_content_and_a_stable_hash() -> None:
    keys = OrgKeys.generate()
    statement = sign_revocation(
        revocation_request(keys.org_id, [keys.signing_kid], 1_900_000_000, 1_900_000_100),
        keys.revocation_key())
    summary = read_revocation(statement)
    assert (summary.org_id, summary.revoked_kids, summary.revoked_at) == (
        keys.org_id, (keys.signing_kid,), 1_900_000_000)
    assert read_revocation(dict(statement)).statement_hash == summary.statement_hash
    with pytest.raises(MalformedStatement, match="revocation"):
        read_revocation({**statement, "revoked_at": "yesterday"})
