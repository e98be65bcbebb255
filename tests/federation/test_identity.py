"""Organisation identity: ids, safety codes, key files, member entries, rotation and revocation."""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.canonical import CanonicalJSONError
from federation.encoding import b64u_encode
from federation.identity import (
    ORG_ID_PATTERN,
    BadStatementSignature,
    IdentityError,
    KeyRing,
    MalformedStatement,
    OrgKeys,
    OrgPublicKeys,
    RevocationKey,
    StatementRejected,
    cosign_revocation,
    export_private,
    export_revocation_key,
    import_private,
    import_revocation_key,
    org_id_for,
    pairwise_safety_code,
    read_member_entry,
    revocation_request,
    rotate_keys,
    safety_code,
    sign_member_entry,
    sign_revocation,
    signing_kid,
    verify_member_entry,
    verify_rotation,
)
from federation.keys import KeyNotTrusted, SigningKeyResolver
from federation.secretbox import FAST_TEST_PARAMS, WrongPassphrase

PROFILE = {"name": "Colectivo Tierra", "country": "CO", "capabilities": ["legal aid"]}


def ring_with(*orgs: OrgKeys, quorum: int = 2) -> KeyRing:
    ring = KeyRing(revocation_quorum=quorum)
    for keys in orgs:
        ring.add_member_entry(sign_member_entry(keys, PROFILE))
    return ring


def valid_at(ring: KeyRing, keys: OrgKeys, kid: str, issued_at: int) -> bool:
    try:
        key = ring.signing_key_for(keys.org_id, kid, issued_at)
    except KeyNotTrusted:
        return False
    assert isinstance(key, Ed25519PublicKey)
    return signing_kid(key) == kid


def revoke_by_own_key(keys: OrgKeys, kids: list[str], revoked_at: int) -> dict[str, Any]:
    request = revocation_request(keys.org_id, kids, revoked_at, issued_at=revoked_at + 5)
    return sign_revocation(request, keys.revocation_key())


def other_public_key() -> str:
    return OrgKeys.generate().public().signing_key


# --- ids and safety codes -----------------------------------------------------------------------


def test_org_id_is_the_documented_fingerprint_of_the_first_signing_key() -> None:
    keys = OrgKeys.generate()
    raw = keys.signing.public_key().public_bytes_raw()
    digest = hashlib.sha256(b"minga/org-id/v1" + raw).digest()[:15]
    assert keys.org_id == "o" + base64.b32encode(digest).decode().lower()
    assert re.fullmatch(ORG_ID_PATTERN, keys.org_id)
    assert len(keys.org_id) == 25


def test_org_id_is_stable_and_distinct() -> None:
    keys, other = OrgKeys.generate(), OrgKeys.generate()
    assert org_id_for(keys.signing.public_key()) == keys.org_id == keys.public().org_id
    assert keys.org_id != other.org_id


def test_rotation_keeps_the_org_id_and_changes_the_kids() -> None:
    keys = OrgKeys.generate()
    rotated, _ = rotate_keys(keys, effective_at=100)
    assert rotated.org_id == keys.org_id
    assert rotated.signing_kid != keys.signing_kid
    assert rotated.encryption_kid != keys.encryption_kid


def test_safety_code_format_and_stability() -> None:
    keys = OrgKeys.generate()
    code = safety_code(keys.public())
    assert re.fullmatch(r"\d{5}( \d{5}){5}", code)
    assert keys.public().safety_code() == code
    copied = OrgPublicKeys.model_validate(keys.public().model_dump())
    assert safety_code(copied) == code


@pytest.mark.parametrize("field", ["signing_key", "encryption_key", "revocation_key"])
def test_safety_code_changes_when_any_key_changes(field: str) -> None:
    public = OrgKeys.generate().public()
    changed = public.model_copy(update={field: other_public_key()})
    assert safety_code(changed) != safety_code(public)


def test_safety_code_changes_after_rotation() -> None:
    keys = OrgKeys.generate()
    rotated, _ = rotate_keys(keys, effective_at=10)
    assert safety_code(rotated.public()) != safety_code(keys.public())


def test_pairwise_safety_code_is_the_same_on_both_sides() -> None:
    a, b = OrgKeys.generate().public(), OrgKeys.generate().public()
    assert pairwise_safety_code(a, b) == pairwise_safety_code(b, a)
    assert len(pairwise_safety_code(a, b).split()) == 12


def test_public_keys_reject_bad_key_text() -> None:
    public = OrgKeys.generate().public().model_dump()
    with pytest.raises(ValueError, match="signing_key"):
        OrgPublicKeys.model_validate({**public, "signing_key": "A" * 42 + "B"})


# --- key files ----------------------------------------------------------------------------------


def test_private_keys_round_trip_through_a_passphrase_box() -> None:
    keys = OrgKeys.generate()
    restored = import_private(
        export_private(keys, "correct horse", params=FAST_TEST_PARAMS), "correct horse"
    )
    assert restored.public() == keys.public()
    assert restored.revocation is not None
    keys.signing.public_key().verify(restored.signing.sign(b"m"), b"m")


def test_rotated_keys_round_trip_with_their_history() -> None:
    keys, _ = rotate_keys(OrgKeys.generate(), effective_at=50)
    keys, _ = rotate_keys(keys, effective_at=60)
    restored = import_private(export_private(keys, "pw", params=FAST_TEST_PARAMS), "pw")
    assert restored.public() == keys.public()
    assert restored.rotations == keys.rotations
    assert restored.decryption_keys().keys() == keys.decryption_keys().keys()
    assert len(restored.decryption_keys()) == 3


def test_wrong_passphrase_is_refused() -> None:
    blob = export_private(OrgKeys.generate(), "right", params=FAST_TEST_PARAMS)
    with pytest.raises(WrongPassphrase):
        import_private(blob, "wrong")


def test_the_box_does_not_contain_the_raw_private_key() -> None:
    keys = OrgKeys.generate()
    blob = export_private(keys, "pw", params=FAST_TEST_PARAMS)
    assert keys.signing.private_bytes_raw() not in blob
    assert b64u_encode(keys.signing.private_bytes_raw()).encode() not in blob


def test_revocation_key_exported_alone_and_removed_from_the_node() -> None:
    keys = OrgKeys.generate()
    offline = export_revocation_key(keys, "paper", params=FAST_TEST_PARAMS)
    node_keys = keys.without_revocation_key()
    stored = import_private(export_private(node_keys, "pw", params=FAST_TEST_PARAMS), "pw")
    assert stored.revocation is None
    assert stored.public() == keys.public()
    with pytest.raises(ValueError, match="offline"):
        stored.revocation_key()
    restored = import_revocation_key(offline, "paper")
    assert restored.org_id == keys.org_id
    assert restored.kid == keys.revocation_key().kid
    with pytest.raises(WrongPassphrase):
        import_revocation_key(offline, "wrong")


def test_key_file_and_revocation_file_are_not_interchangeable() -> None:
    keys = OrgKeys.generate()
    with pytest.raises(WrongPassphrase):
        import_revocation_key(export_private(keys, "pw", params=FAST_TEST_PARAMS), "pw")
    with pytest.raises(WrongPassphrase):
        import_private(export_revocation_key(keys, "pw", params=FAST_TEST_PARAMS), "pw")


# --- member entries -----------------------------------------------------------------------------


def test_member_entry_verifies_and_returns_the_public_keys() -> None:
    keys = OrgKeys.generate()
    entry = sign_member_entry(keys, PROFILE)
    assert verify_member_entry(entry) == keys.public()
    assert read_member_entry(entry).profile == PROFILE


def _leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _leaf_paths(item, (*path, key))]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _leaf_paths(item, (*path, index))]
    return [path]


def _altered(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    text = str(value)
    replacement = "B" if text[-1:] != "B" else "C"
    return text[:-1] + replacement


def _with_leaf_altered(document: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    target: Any = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = _altered(target[path[-1]])
    return changed


def test_altering_any_field_of_a_member_entry_is_detected() -> None:
    keys, _ = rotate_keys(OrgKeys.generate(), effective_at=100)
    entry = sign_member_entry(keys, PROFILE)
    paths = _leaf_paths(entry)
    assert len(paths) > 15
    for path in paths:
        with pytest.raises(IdentityError):
            verify_member_entry(_with_leaf_altered(entry, path))


def test_member_entry_with_an_added_field_is_refused() -> None:
    entry = sign_member_entry(OrgKeys.generate(), PROFILE)
    with pytest.raises(MalformedStatement, match="extra"):
        verify_member_entry({**entry, "extra": "x"})


def test_member_entry_signed_by_another_key_is_refused() -> None:
    keys, intruder = OrgKeys.generate(), OrgKeys.generate()
    forged = sign_member_entry(intruder, PROFILE)
    forged["keys"] = sign_member_entry(keys, PROFILE)["keys"]
    forged["org_id"] = keys.org_id
    with pytest.raises(BadStatementSignature):
        verify_member_entry(forged)


def test_member_entry_claiming_another_org_id_is_refused() -> None:
    keys, victim = OrgKeys.generate(), OrgKeys.generate()
    impostor = OrgKeys(
        org_id=victim.org_id,
        signing=keys.signing,
        encryption=keys.encryption,
        revocation_public=keys.revocation_public,
    )
    with pytest.raises(StatementRejected, match="fingerprint"):
        verify_member_entry(sign_member_entry(impostor, PROFILE))


def test_profile_must_be_canonical_json() -> None:
    with pytest.raises(CanonicalJSONError):
        sign_member_entry(OrgKeys.generate(), {"score": 0.5})


def test_malformed_entry_errors_name_the_field_but_not_the_profile() -> None:
    entry = sign_member_entry(OrgKeys.generate(), {"name": "Ana María Quispe"})
    entry["keys"]["signing"] = 12
    with pytest.raises(MalformedStatement) as caught:
        verify_member_entry(entry)
    assert "keys.signing" in str(caught.value)
    assert "Quispe" not in str(caught.value)


# --- rotation -----------------------------------------------------------------------------------


def test_key_ring_is_a_signing_key_resolver() -> None:
    resolver: SigningKeyResolver = KeyRing()
    with pytest.raises(KeyNotTrusted, match="unknown organisation"):
        resolver.signing_key_for("o" + "a" * 24, "AAAAAAAAAAAAAAAA", 0)


def test_first_key_is_valid_from_the_beginning_until_rotated_away() -> None:
    keys = OrgKeys.generate()
    ring = ring_with(keys)
    rotated, statement = rotate_keys(keys, effective_at=1000)
    assert valid_at(ring, keys, keys.signing_kid, 0)
    assert valid_at(ring, keys, keys.signing_kid, 5000)
    ring.apply_rotation(statement)
    assert valid_at(ring, keys, keys.signing_kid, 999)
    assert not valid_at(ring, keys, keys.signing_kid, 1000)
    assert not valid_at(ring, keys, rotated.signing_kid, 999)
    assert valid_at(ring, keys, rotated.signing_kid, 1000)
    assert ring.current_signing_kid(keys.org_id) == rotated.signing_kid
    assert ring.current_keys(keys.org_id) == rotated.public()
    assert ring.encryption_key_for(keys.org_id).kid == rotated.encryption_kid


def test_resolver_returns_the_key_that_verifies_the_issuers_signatures() -> None:
    keys = OrgKeys.generate()
    ring = ring_with(keys)
    key = ring.signing_key_for(keys.org_id, keys.signing_kid, 10)
    key.verify(keys.signing.sign(b"record"), b"record")


def test_applying_a_rotation_twice_changes_nothing() -> None:
    keys = OrgKeys.generate()
    ring = ring_with(keys)
    _, statement = rotate_keys(keys, effective_at=10)
    ring.apply_rotation(statement)
    before = ring.current_keys(keys.org_id)
    ring.apply_rotation(statement)
    assert ring.current_keys(keys.org_id) == before


def test_rotation_not_signed_by_the_current_key_is_refused() -> None:
    keys = OrgKeys.generate()
    ring = ring_with(keys)
    middle, _ = rotate_keys(keys, effective_at=10)
    _, skipping = rotate_keys(middle, effective_at=20)  # signed by `middle`, unknown to the ring
    with pytest.raises(StatementRejected, match="current key"):
        ring.apply_rotation(skipping)


def test_rotation_forged_with_another_key_is_refused() -> None:
    keys, intruder = OrgKeys.generate(), OrgKeys.generate()
    _, forged = rotate_keys(intruder, effective_at=10)
    forged["org_id"] = keys.org_id
    forged["previous_signing_key"] = keys.public().signing_key
    with pytest.raises(BadStatementSignature, match="previous key"):
        verify_rotation(forged)


def test_rotation_without_proof_of_the_new_key_is_refused() -> None:
    keys, bystander = OrgKeys.generate(), OrgKeys.generate()
    _, statement = rotate_keys(keys, effective_at=10)
    statement["signatures"]["new"] = rotate_keys(bystander, 10)[1]["signatures"]["new"]
    with pytest.raises(BadStatementSignature, match="new key"):
        verify_rotation(statement)


def test_rotation_must_take_effect_after_the_current_key_started() -> None:
    keys = OrgKeys.generate()
    ring = ring_with(keys)
    rotated, first = rotate_keys(keys, effective_at=100)
    ring.apply_rotation(first)
    rotated_again = OrgKeys(
        org_id=rotated.org_id,
        signing=rotated.signing,
        encryption=rotated.encryption,
        revocation_public=rotated.revocation_public,
    )
    _, backdated = rotate_keys(rotated_again, effective_at=50)
    with pytest.raises(StatementRejected, match="after"):
        ring.apply_rotation(backdated)


def test_rotation_for_an_unknown_org_is_refused() -> None:
    keys = OrgKeys.generate()
    _, statement = rotate_keys(keys, effective_at=10)
    with pytest.raises(StatementRejected, match="unknown"):
        KeyRing().apply_rotation(statement)


def test_member_entry_carries_the_rotation_chain_to_a_new_ring() -> None:
    keys = OrgKeys.generate()
    rotated, _ = rotate_keys(keys, effective_at=100)
    rotated, _ = rotate_keys(rotated, effective_at=200)
    ring = ring_with(rotated)
    assert ring.current_keys(keys.org_id) == rotated.public()
    assert valid_at(ring, keys, keys.signing_kid, 99)
    assert not valid_at(ring, keys, keys.signing_kid, 100)
    assert valid_at(ring, keys, rotated.signing_kid, 200)


def test_newer_member_entry_extends_the_known_history() -> None:
    keys = OrgKeys.generate()
    ring = ring_with(keys)
    rotated, _ = rotate_keys(keys, effective_at=100)
    ring.add_member_entry(sign_member_entry(rotated, {**PROFILE, "name": "Renamed"}))
    assert ring.current_keys(keys.org_id) == rotated.public()
    assert ring.profile(keys.org_id)["name"] == "Renamed"


def test_stale_member_entry_is_refused() -> None:
    keys = OrgKeys.generate()
    old_entry = sign_member_entry(keys, PROFILE)
    rotated, _ = rotate_keys(keys, effective_at=100)
    ring = ring_with(rotated)
    with pytest.raises(StatementRejected, match="stale"):
        ring.add_member_entry(old_entry)


def test_forked_history_is_refused() -> None:
    keys = OrgKeys.generate()
    one, _ = rotate_keys(keys, effective_at=100)
    other, _ = rotate_keys(keys, effective_at=100)
    ring = ring_with(one)
    with pytest.raises(StatementRejected, match="conflicts"):
        ring.add_member_entry(sign_member_entry(other, PROFILE))


def test_revocation_key_of_a_known_member_cannot_change() -> None:
    keys = OrgKeys.generate()
    ring = ring_with(keys)
    swapped = OrgKeys(
        org_id=keys.org_id,
        signing=keys.signing,
        encryption=keys.encryption,
        revocation_public=OrgKeys.generate().revocation_public,
    )
    with pytest.raises(StatementRejected, match="revocation key"):
        ring.add_member_entry(sign_member_entry(swapped, PROFILE))


# --- revocation ---------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(revoked_at=st.integers(0, 1000), issued_at=st.integers(0, 1000))
def test_a_key_is_trusted_exactly_before_its_revocation(revoked_at: int, issued_at: int) -> None:
    keys = OrgKeys.generate()
    ring = ring_with(keys)
    ring.apply_revocation(revoke_by_own_key(keys, [keys.signing_kid], revoked_at))
    message = b"record issued at %d" % issued_at
    signature = keys.signing.sign(message)
    if issued_at < revoked_at:
        ring.signing_key_for(keys.org_id, keys.signing_kid, issued_at).verify(signature, message)
    else:
        with pytest.raises(KeyNotTrusted, match="revoked"):
            ring.signing_key_for(keys.org_id, keys.signing_kid, issued_at)


@settings(max_examples=60, deadline=None)
@given(
    rotation_at=st.integers(1, 1000),
    revoked_at=st.integers(0, 1000),
    issued_at=st.integers(0, 1000),
)
def test_revocation_also_covers_keys_that_succeeded_the_revoked_one(
    rotation_at: int, revoked_at: int, issued_at: int
) -> None:
    keys = OrgKeys.generate()
    rotated, statement = rotate_keys(keys, effective_at=rotation_at)
    ring = ring_with(keys)
    ring.apply_rotation(statement)
    ring.apply_revocation(revoke_by_own_key(keys, [keys.signing_kid], revoked_at))
    old_ok = issued_at < min(rotation_at, revoked_at)
    new_ok = rotation_at <= issued_at < revoked_at
    assert valid_at(ring, keys, keys.signing_kid, issued_at) == old_ok
    assert valid_at(ring, keys, rotated.signing_kid, issued_at) == new_ok


def test_revoking_the_new_key_leaves_the_old_keys_history_alone() -> None:
    keys = OrgKeys.generate()
    rotated, statement = rotate_keys(keys, effective_at=100)
    ring = ring_with(keys)
    ring.apply_rotation(statement)
    ring.apply_revocation(revoke_by_own_key(keys, [rotated.signing_kid], 150))
    assert valid_at(ring, keys, keys.signing_kid, 99)
    assert valid_at(ring, keys, rotated.signing_kid, 149)
    assert not valid_at(ring, keys, rotated.signing_kid, 150)


def test_revoked_org_gets_no_more_envelopes_and_cannot_rotate_or_republish() -> None:
    keys = OrgKeys.generate()
    ring = ring_with(keys)
    ring.apply_revocation(revoke_by_own_key(keys, [keys.signing_kid], 100))
    assert ring.is_revoked(keys.org_id)
    with pytest.raises(KeyNotTrusted, match="revoked"):
        ring.encryption_key_for(keys.org_id)
    rotated, statement = rotate_keys(keys, effective_at=50)
    with pytest.raises(StatementRejected, match="revoked"):
        ring.apply_rotation(statement)
    with pytest.raises(StatementRejected, match="revoked"):
        ring.add_member_entry(sign_member_entry(keys, {"name": "seized"}))
    with pytest.raises(StatementRejected, match="revoked"):
        ring.add_member_entry(sign_member_entry(rotated, {"name": "seized"}))


def test_revocation_signed_by_another_revocation_key_is_refused() -> None:
    keys, intruder = OrgKeys.generate(), OrgKeys.generate()
    ring = ring_with(keys, intruder)
    request = revocation_request(keys.org_id, [keys.signing_kid], 100, 100)
    stolen_identity = RevocationKey(keys.org_id, intruder.revocation_key().private)
    with pytest.raises(StatementRejected, match="only with its revocation key"):
        ring.apply_revocation(sign_revocation(request, stolen_identity))
    forged = sign_revocation(request, stolen_identity)
    forged["signatures"][0]["kid"] = keys.revocation_key().kid
    with pytest.raises(BadStatementSignature, match="revocation key"):
        ring.apply_revocation(forged)
    assert not ring.is_revoked(keys.org_id)


def test_altered_revocation_does_not_verify() -> None:
    keys = OrgKeys.generate()
    ring = ring_with(keys)
    statement = revoke_by_own_key(keys, [keys.signing_kid], 100)
    with pytest.raises(BadStatementSignature):
        ring.apply_revocation({**statement, "revoked_at": 50})
    assert not ring.is_revoked(keys.org_id)


def test_revocation_of_an_unknown_kid_is_refused() -> None:
    keys = OrgKeys.generate()
    ring = ring_with(keys)
    with pytest.raises(StatementRejected, match="never used"):
        ring.apply_revocation(revoke_by_own_key(keys, [OrgKeys.generate().signing_kid], 100))


def test_quorum_of_distinct_other_members_revokes() -> None:
    seized, a, b, c = (OrgKeys.generate() for _ in range(4))
    ring = ring_with(seized, a, b, c, quorum=3)
    request = revocation_request(seized.org_id, [seized.signing_kid], 100, issued_at=120)
    signed = cosign_revocation(cosign_revocation(request, a), b)
    with pytest.raises(StatementRejected, match="3 other members; got 2"):
        ring.apply_revocation(signed)
    with pytest.raises(StatementRejected, match="got 2"):
        ring.apply_revocation(cosign_revocation(signed, a))  # a second signature by a counts once
    assert not ring.is_revoked(seized.org_id)
    ring.apply_revocation(cosign_revocation(signed, c))
    assert ring.is_revoked(seized.org_id)
    assert valid_at(ring, seized, seized.signing_kid, 99)
    assert not valid_at(ring, seized, seized.signing_kid, 100)


def test_quorum_signature_must_verify() -> None:
    seized, a, b = (OrgKeys.generate() for _ in range(3))
    ring = ring_with(seized, a, b, quorum=2)
    request = revocation_request(seized.org_id, [seized.signing_kid], 100, issued_at=120)
    signed = cosign_revocation(cosign_revocation(request, a), b)
    signed["signatures"][1]["sig"] = signed["signatures"][0]["sig"]
    with pytest.raises(BadStatementSignature, match="co-signer"):
        ring.apply_revocation(signed)


def test_quorum_needs_cosigners_trusted_at_issue_time() -> None:
    seized, a, b = (OrgKeys.generate() for _ in range(3))
    ring = ring_with(seized, a, b, quorum=2)
    ring.apply_revocation(revoke_by_own_key(b, [b.signing_kid], 50))
    request = revocation_request(seized.org_id, [seized.signing_kid], 100, issued_at=120)
    with pytest.raises(StatementRejected, match="co-signer not trusted"):
        ring.apply_revocation(cosign_revocation(cosign_revocation(request, a), b))
    stranger = OrgKeys.generate()
    with pytest.raises(StatementRejected, match="co-signer not trusted"):
        ring.apply_revocation(cosign_revocation(cosign_revocation(request, a), stranger))
    assert not ring.is_revoked(seized.org_id)


def test_the_revoked_org_cannot_cosign_with_its_signing_key() -> None:
    seized, a = OrgKeys.generate(), OrgKeys.generate()
    ring = ring_with(seized, a, quorum=1)
    request = revocation_request(seized.org_id, [seized.signing_kid], 100, issued_at=120)
    with pytest.raises(ValueError, match="revocation key"):
        cosign_revocation(request, seized)
    self_signed = dict(request)
    sig = b64u_encode(seized.signing.sign(b"x"))
    self_signed["signatures"] = [{"signer": seized.org_id, "kid": seized.signing_kid, "sig": sig}]
    with pytest.raises(StatementRejected, match="only with its revocation key"):
        ring.apply_revocation(self_signed)


def test_unsigned_revocation_is_refused() -> None:
    keys = OrgKeys.generate()
    ring = ring_with(keys, quorum=1)
    with pytest.raises(StatementRejected, match="got 0"):
        ring.apply_revocation(revocation_request(keys.org_id, [keys.signing_kid], 1, 1))


def test_revocation_with_a_boolean_time_is_malformed() -> None:
    keys = OrgKeys.generate()
    statement = revoke_by_own_key(keys, [keys.signing_kid], 100)
    with pytest.raises(MalformedStatement, match="revoked_at"):
        ring_with(keys).apply_revocation({**statement, "revoked_at": True})
