"""Passphrase secret boxes: round trip, wrong passphrase, tampering, purpose binding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.secretbox import (
    FAST_TEST_PARAMS,
    Argon2Params,
    MalformedBox,
    WrongPassphrase,
    lock,
    unlock,
)

PURPOSE = b"minga/test/v1"


@settings(max_examples=40)
@given(st.binary(max_size=200), st.text(min_size=1, max_size=20))
def test_round_trip(secret: bytes, passphrase: str) -> None:
    box = lock(secret, passphrase, purpose=PURPOSE, params=FAST_TEST_PARAMS)
    assert unlock(box, passphrase, purpose=PURPOSE) == secret


def test_secret_does_not_appear_in_the_box() -> None:
    secret = b"defender name: Ana Maria" * 4
    box = lock(secret, "pass phrase", purpose=PURPOSE, params=FAST_TEST_PARAMS)
    assert b"Ana Maria" not in box


def test_same_secret_locks_differently_each_time() -> None:
    first = lock(b"s", "p", purpose=PURPOSE, params=FAST_TEST_PARAMS)
    second = lock(b"s", "p", purpose=PURPOSE, params=FAST_TEST_PARAMS)
    assert first != second


def test_wrong_passphrase() -> None:
    box = lock(b"secret", "right horse", purpose=PURPOSE, params=FAST_TEST_PARAMS)
    with pytest.raises(WrongPassphrase):
        unlock(box, "wrong horse", purpose=PURPOSE)


def test_other_purpose_does_not_open() -> None:
    box = lock(b"secret", "p", purpose=b"minga/org-keys/v1", params=FAST_TEST_PARAMS)
    with pytest.raises(WrongPassphrase):
        unlock(box, "p", purpose=b"minga/store-key/v1")


# Bytes 4..16 hold the Argon2 parameters; flips there may still ask for up to the accepted
# maximum cost (seconds and a gigabyte each), so this test alters every other byte: magic, salt,
# nonce, body. test_altered_parameters_* cover the parameter bytes.
_PARAMETER_BYTES = range(4, 16)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_flipped_byte_outside_the_parameters_is_detected(data: st.DataObject) -> None:
    box = lock(b"secret value", "p", purpose=PURPOSE, params=FAST_TEST_PARAMS)
    index = data.draw(st.integers(0, len(box) - 1).filter(lambda i: i not in _PARAMETER_BYTES))
    flip = data.draw(st.integers(1, 255))
    tampered = box[:index] + bytes([box[index] ^ flip]) + box[index + 1 :]
    with pytest.raises((WrongPassphrase, MalformedBox)):
        unlock(tampered, "p", purpose=PURPOSE)


def test_altered_parameters_are_detected() -> None:
    box = lock(b"secret", "p", purpose=PURPOSE, params=FAST_TEST_PARAMS)
    more_iterations = box[:7] + bytes([box[7] + 1]) + box[8:]  # iterations 1 -> 2
    with pytest.raises(WrongPassphrase):
        unlock(more_iterations, "p", purpose=PURPOSE)


@pytest.mark.parametrize("field_offset", [4, 8, 12], ids=["iterations", "lanes", "memory"])
def test_absurd_parameters_are_refused_before_any_work(field_offset: int) -> None:
    box = lock(b"secret", "p", purpose=PURPOSE, params=FAST_TEST_PARAMS)
    absurd = box[:field_offset] + b"\xff\xff\xff\xff" + box[field_offset + 4 :]
    with pytest.raises(MalformedBox, match="Argon2id cost"):
        unlock(absurd, "p", purpose=PURPOSE)


def test_truncated_box_is_malformed() -> None:
    box = lock(b"secret", "p", purpose=PURPOSE, params=FAST_TEST_PARAMS)
    with pytest.raises(MalformedBox):
        unlock(box[:20], "p", purpose=PURPOSE)


def test_not_a_box() -> None:
    with pytest.raises(MalformedBox):
        unlock(b"X" * 80, "p", purpose=PURPOSE)


def test_parameters_travel_in_the_box() -> None:
    stronger = Argon2Params(iterations=2, lanes=2, memory_kib=64)
    box = lock(b"secret", "p", purpose=PURPOSE, params=stronger)
    assert unlock(box, "p", purpose=PURPOSE) == b"secret"
