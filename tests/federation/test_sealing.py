"""Sealed envelopes: only listed recipients open them, any alteration fails, senders are checked."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.canonical import canonical_json
from federation.encoding import b64u_decode, b64u_encode
from federation.identity import (
    KeyRing,
    OrgKeys,
    revocation_request,
    rotate_keys,
    sign_member_entry,
    sign_revocation,
)
from federation.keys import VerificationKey
from federation.sealing import (
    MIN_PADDED_LENGTH,
    BadSignature,
    EnvelopeMalformed,
    NotARecipient,
    SealingError,
    SenderNotTrusted,
    Tampered,
    open_envelope,
    open_verified,
    padded_length,
    parse_envelope,
    seal,
    verify_envelope,
)

POOL = [OrgKeys.generate() for _ in range(21)]
SENDER, MEMBERS = POOL[0], POOL[1:]
PAYLOAD = b'{"sd_jwt": "eyJhbGciOiJFZERTQSJ9.secret-case-narrative~"}'
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def ring_of(*orgs: OrgKeys) -> KeyRing:
    ring = KeyRing()
    for keys in orgs:
        ring.add_member_entry(sign_member_entry(keys, {"name": "member"}))
    return ring


RING = ring_of(*POOL)


def sealed_for(recipients: list[OrgKeys], payload: bytes = PAYLOAD, **kw: Any) -> dict[str, Any]:
    keys = [RING.encryption_key_for(org.org_id) for org in recipients]
    return seal(
        payload, SENDER, keys, created_at=kw.pop("created_at", 1_700_000_000), **kw
    ).to_wire()


def resigned(envelope: dict[str, Any], sender: OrgKeys = SENDER) -> dict[str, Any]:
    """The envelope signed again, as a sender (honest or not) who altered it would do."""
    unsigned = {name: value for name, value in envelope.items() if name != "signature"}
    return {**unsigned, "signature": b64u_encode(sender.signing.sign(canonical_json(unsigned)))}


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in leaf_paths(item, (*path, key))]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in leaf_paths(item, (*path, index))]
    return [path]


def with_leaf(document: dict[str, Any], path: tuple[Any, ...], change: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    target: Any = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = change(target[path[-1]])
    return changed


# --- opening ------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 5, 20])
def test_every_listed_recipient_opens_it(count: int) -> None:
    recipients = MEMBERS[:count]
    envelope = sealed_for(recipients)
    assert len(envelope["recipients"]) == count
    for org in recipients:
        opened = open_envelope(envelope, org, RING)
        assert opened.payload == PAYLOAD
        assert opened.sender == SENDER.org_id
        assert opened.sender_kid == SENDER.signing_kid
        assert opened.created_at == 1_700_000_000
        assert opened.envelope_id == envelope["id"]


@settings(max_examples=25, deadline=None)
@given(st.sets(st.integers(0, len(MEMBERS) - 1), min_size=1, max_size=6), st.binary(max_size=300))
def test_opens_only_for_listed_recipients(chosen: set[int], payload: bytes) -> None:
    envelope = sealed_for([MEMBERS[i] for i in sorted(chosen)], payload)
    for index, org in enumerate(MEMBERS):
        if index in chosen:
            assert open_envelope(envelope, org, RING).payload == payload
        else:
            with pytest.raises(NotARecipient):
                open_envelope(envelope, org, RING)


def test_a_verified_envelope_opens_without_a_second_signature_check() -> None:
    envelope = sealed_for(MEMBERS[:2])
    verified = verify_envelope(envelope, RING)
    assert open_verified(verified, MEMBERS[1]) == open_envelope(envelope, MEMBERS[1], RING)
    with pytest.raises(NotARecipient):
        open_verified(verified, MEMBERS[2])
    # Its own checks stay: a payload altered after the signature check does not decrypt.
    altered = verified.model_copy(update={"ciphertext": _flipped(verified.ciphertext)})
    with pytest.raises(Tampered):
        open_verified(altered, MEMBERS[0])


def _flipped(text: str) -> str:
    raw = bytearray(b64u_decode(text))
    raw[0] ^= 1
    return b64u_encode(bytes(raw))


def test_a_non_member_cannot_open_it() -> None:
    outsider = OrgKeys.generate()
    with pytest.raises(NotARecipient):
        open_envelope(sealed_for(MEMBERS[:3]), outsider, RING)


def test_nothing_of_the_payload_or_recipient_orgs_travels_in_clear() -> None:
    recipients = MEMBERS[:3]
    text = json.dumps(sealed_for(recipients))
    assert b"secret-case-narrative" not in text.encode()
    assert b64u_encode(PAYLOAD)[:20] not in text
    assert all(org.org_id not in text for org in recipients)
    assert all(org.encryption_kid in text for org in recipients)


def test_envelope_is_strings_and_integers_only() -> None:
    envelope = sealed_for(MEMBERS[:2])
    for path in leaf_paths(envelope):
        leaf: Any = envelope
        for part in path:
            leaf = leaf[part]
        assert type(leaf) in (str, int)
    assert json.loads(canonical_json(envelope)) == envelope


def test_payload_length_is_hidden_by_padding() -> None:
    short, longer = sealed_for(MEMBERS[:1], b"x"), sealed_for(MEMBERS[:1], b"x" * 200)
    assert len(short["ciphertext"]) == len(longer["ciphertext"])
    assert open_envelope(sealed_for(MEMBERS[:1], b""), MEMBERS[0], RING).payload == b""


def test_large_payload_round_trips() -> None:
    payload = bytes(range(256)) * 200
    assert open_envelope(sealed_for(MEMBERS[:2], payload), MEMBERS[1], RING).payload == payload


@settings(max_examples=200)
@given(st.integers(0, 200_000))
def test_padded_length_bounds(length: int) -> None:
    padded = padded_length(length)
    assert padded >= max(length, MIN_PADDED_LENGTH)
    assert padded <= max(MIN_PADDED_LENGTH, length * 112 // 100 + 1)
    assert padded_length(length + 1) >= padded


def test_envelope_sealed_to_a_retired_encryption_key_still_opens() -> None:
    recipient = MEMBERS[0]
    envelope = sealed_for([recipient])
    rotated, _ = rotate_keys(recipient, effective_at=1_800_000_000)
    assert open_envelope(envelope, rotated, RING).payload == PAYLOAD


# --- alteration ---------------------------------------------------------------------------------


def _other_char(char: str, offset: int) -> str:
    return B64_ALPHABET[(B64_ALPHABET.index(char) + offset) % 64] if char in B64_ALPHABET else "A"


def _altered(value: Any) -> Any:
    if isinstance(value, int):
        return value + 1
    return value[:-1] + _other_char(value[-1], 1)


def test_altering_any_field_makes_opening_fail() -> None:
    envelope = sealed_for(MEMBERS[:3])
    paths = leaf_paths(envelope)
    assert len(paths) == 8 + 3 * 3
    for path in paths:
        with pytest.raises(SealingError):
            open_envelope(with_leaf(envelope, path, _altered), MEMBERS[1], RING)


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_changing_any_character_of_any_field_makes_opening_fail(data: st.DataObject) -> None:
    envelope = sealed_for(MEMBERS[:2])
    path = data.draw(st.sampled_from(leaf_paths(envelope)))
    offset = data.draw(st.integers(1, 63))

    def change(value: Any) -> Any:
        if isinstance(value, int):
            return value + offset
        position = data.draw(st.integers(0, len(value) - 1))
        return value[:position] + _other_char(value[position], offset) + value[position + 1 :]

    with pytest.raises(SealingError):
        open_envelope(with_leaf(envelope, path, change), MEMBERS[0], RING)


def test_altered_signature_is_a_bad_signature() -> None:
    envelope = sealed_for(MEMBERS[:1])
    raw = bytearray(b64u_decode(envelope["signature"]))
    raw[10] ^= 1
    with pytest.raises(BadSignature):
        open_envelope({**envelope, "signature": b64u_encode(bytes(raw))}, MEMBERS[0], RING)


def test_altered_ciphertext_under_a_valid_signature_is_tampered() -> None:
    envelope = sealed_for(MEMBERS[:1])
    raw = bytearray(b64u_decode(envelope["ciphertext"]))
    raw[0] ^= 1
    altered = resigned({**envelope, "ciphertext": b64u_encode(bytes(raw))})
    with pytest.raises(Tampered):
        open_envelope(altered, MEMBERS[0], RING)


def test_ciphertext_cannot_be_moved_under_another_header() -> None:
    first, second = sealed_for(MEMBERS[:2]), sealed_for(MEMBERS[:2])
    moved = resigned({**second, "ciphertext": first["ciphertext"], "nonce": first["nonce"]})
    with pytest.raises(Tampered):
        open_envelope(moved, MEMBERS[0], RING)
    moved_keys = resigned({**second, "recipients": first["recipients"]})
    with pytest.raises(Tampered):
        open_envelope(moved_keys, MEMBERS[0], RING)


def test_wrapped_key_is_bound_to_its_recipient() -> None:
    envelope = sealed_for(MEMBERS[:2])
    slots = envelope["recipients"]
    swapped = [
        {**slots[0], "enc": slots[1]["enc"], "key": slots[1]["key"]},
        {**slots[1], "enc": slots[0]["enc"], "key": slots[0]["key"]},
    ]
    with pytest.raises(Tampered):
        open_envelope(resigned({**envelope, "recipients": swapped}), MEMBERS[0], RING)


def test_recipient_list_cannot_be_trimmed() -> None:
    envelope = sealed_for(MEMBERS[:2])
    trimmed = resigned({**envelope, "recipients": envelope["recipients"][:1]})
    with pytest.raises(Tampered):
        open_envelope(trimmed, MEMBERS[0], RING)


# --- senders ------------------------------------------------------------------------------------


def test_forged_sender_signed_with_another_key_is_rejected() -> None:
    intruder = MEMBERS[5]
    envelope = sealed_for(MEMBERS[:1])
    forged = resigned(envelope, sender=intruder)  # claims SENDER's id and kid
    with pytest.raises(BadSignature):
        open_envelope(forged, MEMBERS[0], RING)


def test_sender_claiming_another_orgs_id_with_its_own_kid_is_not_trusted() -> None:
    intruder = MEMBERS[5]
    envelope = sealed_for(MEMBERS[:1])
    claimed = resigned({**envelope, "sender_kid": intruder.signing_kid}, sender=intruder)
    with pytest.raises(SenderNotTrusted, match="key id"):
        open_envelope(claimed, MEMBERS[0], RING)


def test_unknown_sender_is_not_trusted() -> None:
    stranger = OrgKeys.generate()
    envelope = seal(PAYLOAD, stranger, [MEMBERS[0].recipient_key()], created_at=10).to_wire()
    with pytest.raises(SenderNotTrusted, match="unknown organisation"):
        open_envelope(envelope, MEMBERS[0], RING)


def test_sender_revoked_before_creation_is_not_trusted() -> None:
    sender, recipient = OrgKeys.generate(), OrgKeys.generate()
    ring = ring_of(sender, recipient)
    request = revocation_request(sender.org_id, [sender.signing_kid], 1000, 1000)
    ring.apply_revocation(sign_revocation(request, sender.revocation_key()))
    before = seal(PAYLOAD, sender, [recipient.recipient_key()], created_at=999)
    at = seal(PAYLOAD, sender, [recipient.recipient_key()], created_at=1000)
    assert open_envelope(before, recipient, ring).payload == PAYLOAD
    with pytest.raises(SenderNotTrusted, match="revoked"):
        open_envelope(at, recipient, ring)


def test_non_ed25519_sender_key_is_not_trusted() -> None:
    class EcResolver:
        def signing_key_for(self, issuer: str, kid: str, issued_at: int) -> VerificationKey:
            return ec.generate_private_key(ec.SECP256R1()).public_key()

    envelope = sealed_for(MEMBERS[:1])
    with pytest.raises(SenderNotTrusted, match="Ed25519"):
        open_envelope(envelope, MEMBERS[0], EcResolver())


# --- shape --------------------------------------------------------------------------------------


def test_parse_round_trip() -> None:
    envelope = sealed_for(MEMBERS[:2])
    assert parse_envelope(envelope).to_wire() == envelope


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda e: {k: v for k, v in e.items() if k != "nonce"}, "nonce"),
        (lambda e: {**e, "created_at": "1700000000"}, "created_at"),
        (lambda e: {**e, "created_at": True}, "created_at"),
        (lambda e: {**e, "created_at": -1}, "created_at"),
        (lambda e: {**e, "nonce": e["nonce"] + "=="}, "nonce"),
        (lambda e: {**e, "nonce": e["nonce"][:-2]}, "nonce"),
        (lambda e: {**e, "ciphertext": "AAAA"}, "ciphertext"),
        (lambda e: {**e, "recipients": []}, "recipients"),
        (lambda e: {**e, "recipients": e["recipients"] * 2}, "recipients"),
        (lambda e: {**e, "type": "minga.envelope/2"}, "type"),
        (lambda e: {**e, "sender": "not-an-org"}, "sender"),
        (lambda e: {**e, "extra": "x"}, "extra"),
    ],
)
def test_malformed_envelopes_name_the_field(change: Any, named: str) -> None:
    envelope = sealed_for(MEMBERS[:1])
    with pytest.raises(EnvelopeMalformed, match=named):
        parse_envelope(change(envelope))
    with pytest.raises(EnvelopeMalformed):
        open_envelope(change(envelope), MEMBERS[0], RING)


def test_non_object_is_malformed() -> None:
    with pytest.raises(EnvelopeMalformed, match="JSON object"):
        parse_envelope(["not", "an", "envelope"])


def test_non_canonical_base64_is_malformed() -> None:
    # 64 signature bytes take 86 characters; the last one carries 4 unused bits, all zero.
    envelope = sealed_for(MEMBERS[:1])
    signature = envelope["signature"]
    spare_bit_set = signature[:-1] + B64_ALPHABET[B64_ALPHABET.index(signature[-1]) | 1]
    with pytest.raises(EnvelopeMalformed, match=r"signature: .*canonical"):
        parse_envelope({**envelope, "signature": spare_bit_set})


def test_seal_refuses_bad_recipient_lists() -> None:
    with pytest.raises(ValueError, match="recipients"):
        seal(PAYLOAD, SENDER, [], created_at=1)
    twice = [MEMBERS[0].recipient_key(), MEMBERS[0].recipient_key()]
    with pytest.raises(ValueError, match="twice"):
        seal(PAYLOAD, SENDER, twice, created_at=1)


def test_caller_chosen_envelope_id_is_used_and_checked() -> None:
    chosen = b64u_encode(bytes(range(16)))
    assert sealed_for(MEMBERS[:1], envelope_id=chosen)["id"] == chosen
    with pytest.raises(ValueError, match="envelope_id"):
        sealed_for(MEMBERS[:1], envelope_id="too-short")


# --- context ------------------------------------------------------------------------------------

CONTEXT = {"room": "!coalition", "seq": 7, "prev": "abc"}


def test_context_travels_signed_and_opens_with_the_payload() -> None:
    envelope = sealed_for(MEMBERS[:2], context=CONTEXT)
    opened = open_envelope(envelope, MEMBERS[0], RING)
    assert opened.context == CONTEXT and opened.payload == PAYLOAD
    assert verify_envelope(envelope, RING).context == CONTEXT


def test_non_recipient_can_verify_but_not_open() -> None:
    envelope = sealed_for(MEMBERS[:1], context=CONTEXT)
    assert verify_envelope(envelope, RING).sender == SENDER.org_id
    with pytest.raises(NotARecipient):
        open_envelope(envelope, MEMBERS[5], RING)


def test_altered_context_fails_even_when_signed_again() -> None:
    envelope = sealed_for(MEMBERS[:1], context=CONTEXT)
    moved = {**envelope, "context": {**CONTEXT, "seq": 8}}
    with pytest.raises(BadSignature):
        verify_envelope(moved, RING)
    with pytest.raises(Tampered):
        open_envelope(resigned(moved), MEMBERS[0], RING)


@pytest.mark.parametrize(
    "context",
    [{"seq": 1.5}, {"seq": -1}, {"flag": True}, {"room": "x" * 256},
     {f"k{i}": i for i in range(17)}],
)
def test_bad_context_is_refused(context: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        sealed_for(MEMBERS[:1], context=context)
