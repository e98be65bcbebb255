"""The speed-ups of the trust core changed no byte: records made before them still verify, and
the fast paths produce exactly what the general code does."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.canonical import canonical_json
from federation.disclosure import issue, verify
from federation.identity import KeyRing, OrgKeys, org_id_for, sign_member_entry
from federation.sealing import BadSignature, NotARecipient, _signed_content, open_envelope, seal
from tests.support import VECTORS

VECTOR = json.loads(
    (VECTORS / "minga_m2_compat.json").read_text(encoding="utf-8")
)


def _keys(number: int) -> OrgKeys:
    """The vector's fixed test keys: every private key is one byte repeated."""
    signing = Ed25519PrivateKey.from_private_bytes(bytes([number]) * 32)
    revocation = Ed25519PrivateKey.from_private_bytes(bytes([number + 100]) * 32)
    return OrgKeys(
        org_id=org_id_for(signing.public_key()),
        signing=signing,
        encryption=X25519PrivateKey.from_private_bytes(bytes([number + 50]) * 32),
        revocation_public=revocation.public_key(),
        revocation=revocation,
    )


SENDER, ME, STRANGER = _keys(1), _keys(2), _keys(3)
RING = KeyRing()
for _org in (SENDER, ME, STRANGER):
    RING.add_member_entry(sign_member_entry(_org, {"name": "vector", "country": "CO"}))


class _Stream:
    """Deterministic bytes read in order, however they are asked for."""

    def __init__(self, seed: bytes) -> None:
        self._bytes, self._position = hashlib.shake_256(seed).digest(1 << 16), 0

    def __call__(self, size: int) -> bytes:
        start, self._position = self._position, self._position + size
        return self._bytes[start : self._position]


def test_an_envelope_sealed_before_opens_and_its_record_verifies() -> None:
    share = VECTOR["share"]
    opened = open_envelope(share["envelope"], ME, RING)
    assert opened.sender == SENDER.org_id
    assert opened.context == {"room": "!r:example.org", "seq": 7}
    assert opened.payload.decode("ascii") == share["token"]
    assert verify(share["token"], RING, expected_audience=ME.org_id).claims == share["claims"]


def test_the_old_envelope_still_refuses_others_and_tampering() -> None:
    envelope = VECTOR["share"]["envelope"]
    with pytest.raises(NotARecipient):
        open_envelope(envelope, STRANGER, RING)
    altered = {**envelope, "ciphertext": envelope["ciphertext"][:-2] + "AA"}
    with pytest.raises(BadSignature):
        open_envelope(altered, ME, RING)


def test_issuance_is_byte_identical_to_before_given_the_same_randomness() -> None:
    case = VECTOR["issue"]
    token = issue(
        case["claims"],
        issuer=case["issuer"],
        kid=case["kid"],
        signing_key=Ed25519PrivateKey.from_private_bytes(bytes([case["signing_key_byte"]]) * 32),
        issued_at=case["issued_at"],
        withholdable=case["withholdable"],
        sd_sizes=case["sd_sizes"],
        audience=case["audience"],
        random_bytes=_Stream(b"minga compat"),
    )
    assert token == case["token"]


def test_a_new_envelope_opens() -> None:
    token = VECTOR["share"]["token"].encode("ascii")
    envelope = seal(token, SENDER, [RING.encryption_key_for(ME.org_id)], 1_760_086_400)
    assert open_envelope(json.loads(json.dumps(envelope.to_wire())), ME, RING).payload == token


# --- the envelope's signed content, with and without the ciphertext shortcut ----------------------


def _general(fields: dict[str, Any]) -> bytes:
    return canonical_json({name: value for name, value in fields.items() if name != "signature"})


@settings(max_examples=30, deadline=None)
@given(
    st.binary(max_size=2000),
    st.dictionaries(
        st.text("abcz_\u00e9", max_size=5), st.text(max_size=8) | st.integers(0, 99), max_size=4
    ),
)
def test_signed_content_equals_canonical_json_of_the_fields(
    payload: bytes, context: dict[str, Any]
) -> None:
    envelope = seal(payload, SENDER, [RING.encryption_key_for(ME.org_id)], 5, context=context)
    fields = envelope.to_wire()
    assert _signed_content(fields) == _general(fields)


@given(st.text(max_size=30), st.sampled_from(["ciphertext", "a", "zz", "\u00e9"]))
def test_signed_content_falls_back_for_anything_unusual(ciphertext: str, other: str) -> None:
    fields = {"ciphertext": ciphertext, other: "x", "type": "t", "signature": "s"}
    assert _signed_content(fields) == _general(fields)
