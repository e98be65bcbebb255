"""TOTP (RFC 6238) and staff password hashing: pure, fast."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.secretbox import FAST_TEST_PARAMS, Argon2Params
from node.features.accounts import passwords, totp, totp_now

RFC_SECRET = b"12345678901234567890"
# RFC 6238 Appendix B, SHA-1 column (8 digits).
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("unix_time", "code"), RFC_VECTORS)
def test_rfc_6238_test_vectors(unix_time: int, code: str) -> None:
    assert totp.totp(RFC_SECRET, unix_time, digits=8) == code


def test_rfc_4226_hotp_vectors() -> None:
    expected = ["755224", "287082", "359152", "969429", "338314",
                "254676", "287922", "162583", "399871", "520489"]
    assert [totp.hotp(RFC_SECRET, counter) for counter in range(10)] == expected


def test_a_code_is_accepted_within_one_step_of_drift_and_only_once() -> None:
    secret = totp.new_secret()
    now = 1_700_000_015
    code = totp.totp(secret, now)
    step = totp.accepted_step(secret, code, now)
    assert step == totp.time_step(now)
    assert totp.accepted_step(secret, code, now + 30) == step  # one step late
    assert totp.accepted_step(secret, code, now + 90) is None  # expired
    assert totp.accepted_step(secret, code, now, last_used_step=step) is None  # replay


def test_malformed_codes_are_refused() -> None:
    secret = totp.new_secret()
    for code in ("", "12345", "1234567", "abcdef", "12 34 5x"):
        assert totp.accepted_step(secret, code, 1_700_000_000) is None


def test_spaces_in_a_code_are_ignored() -> None:
    secret = totp.new_secret()
    code = totp.totp(secret, 1_700_000_000)
    assert totp.accepted_step(secret, f"{code[:3]} {code[3:]}", 1_700_000_000) is not None


@given(st.binary(min_size=10, max_size=40))
def test_secret_text_round_trip(secret: bytes) -> None:
    text = totp.secret_to_text(secret)
    assert totp.secret_from_text(totp.grouped(text).lower()) == secret


def test_bad_secret_text_is_refused() -> None:
    with pytest.raises(totp.InvalidTotpSecret):
        totp.secret_from_text("not base32!")
    with pytest.raises(totp.InvalidTotpSecret):
        totp.secret_from_text("ABCD")


def test_otpauth_uri_names_issuer_account_and_secret() -> None:
    uri = totp.otpauth_uri(RFC_SECRET, "ana@Comité", "Minga")
    assert uri.startswith("otpauth://totp/Minga%3Aana%40Comit%C3%A9?")
    assert f"secret={totp.secret_to_text(RFC_SECRET)}" in uri
    assert "issuer=Minga" in uri and "digits=6" in uri and "period=30" in uri


def test_password_hash_verifies_only_the_password() -> None:
    stored = passwords.hash_password("correct horse battery", FAST_TEST_PARAMS)
    assert stored["scheme"] == passwords.SCHEME
    assert passwords.verify_password("correct horse battery", stored)
    assert not passwords.verify_password("correct horse batterY", stored)
    assert "correct" not in repr(stored)


def test_equal_passwords_get_different_salts() -> None:
    first = passwords.hash_password("same password here", FAST_TEST_PARAMS)
    second = passwords.hash_password("same password here", FAST_TEST_PARAMS)
    assert first["salt"] != second["salt"] and first["hash"] != second["hash"]


def test_parameters_travel_with_the_hash() -> None:
    stored = passwords.hash_password("a long enough one", FAST_TEST_PARAMS)
    assert not passwords.needs_rehash(stored, FAST_TEST_PARAMS)
    assert passwords.needs_rehash(stored, Argon2Params())


@settings(max_examples=20)
@given(st.sampled_from(["scheme", "iterations", "memory_kib", "salt"]))
def test_damaged_or_costly_hashes_are_refused(key: str) -> None:
    stored = passwords.hash_password("a long enough one", FAST_TEST_PARAMS)
    damaged = {**stored, key: {"scheme": "md5", "iterations": 10_000,
                               "memory_kib": 1, "salt": None}[key]}
    with pytest.raises(passwords.MalformedPasswordHash):
        passwords.verify_password("a long enough one", damaged)


@pytest.mark.parametrize("password", ["short", " " * 12, "x" * 1025])
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(passwords.WeakPassword):
        passwords.check_new_password(password)


def test_totp_now_prints_the_current_code(capsys: pytest.CaptureFixture[str]) -> None:
    secret = totp.new_secret()
    assert totp_now.main([totp.secret_to_text(secret)]) == 0
    printed = capsys.readouterr().out.strip()
    assert totp.accepted_step(secret, printed, int(time.time())) is not None
    assert totp_now.main(["not base32!"]) == 2
    assert totp_now.main([]) == 2
