"""Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP), HMAC-SHA1, 30 s, 6 digits.

These are the parameters every authenticator app understands. Pure functions: the time is a
parameter. A code is accepted one step early or late (clock drift), and never twice: the caller
keeps the last accepted step and passes it back, so a code seen over someone's shoulder cannot
be replayed within its validity window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

STEP_SECONDS = 30
DIGITS = 6
SECRET_BYTES = 20  # 160 bits, the HMAC-SHA1 block recommendation of RFC 4226
DRIFT_STEPS = 1
ISSUER = "Minga"
"""The issuer name authenticator apps show next to the account."""


class InvalidTotpSecret(ValueError):
    """The text is not a base32 TOTP secret."""


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def secret_to_text(secret: bytes) -> str:
    """Base32 without padding, as authenticator apps expect it."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def secret_from_text(text: str) -> bytes:
    cleaned = "".join(text.split()).upper()
    try:
        secret = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (ValueError, TypeError):
        raise InvalidTotpSecret("a TOTP secret is base32 text (A-Z and 2-7)") from None
    if len(secret) < 10:
        raise InvalidTotpSecret("a TOTP secret must be at least 80 bits")
    return secret


def grouped(text: str, size: int = 4) -> str:
    """``ABCDEFGH`` -> ``ABCD EFGH``: easier to type from a screen."""
    return " ".join(text[i : i + size] for i in range(0, len(text), size))


def hotp(secret: bytes, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226 section 5.3: dynamic truncation of HMAC-SHA1(secret, counter)."""
    mac = hmac.new(secret, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


def time_step(unix_time: int) -> int:
    return unix_time // STEP_SECONDS


def totp(secret: bytes, unix_time: int, digits: int = DIGITS) -> str:
    return hotp(secret, time_step(unix_time), digits)


def accepted_step(
    secret: bytes, code: str, unix_time: int, last_used_step: int | None = None
) -> int | None:
    """The time step ``code`` belongs to, if it is valid now and newer than ``last_used_step``.

    ``None`` means refused (wrong, expired, or already used).
    """
    code = "".join(code.split())
    if len(code) != DIGITS or not code.isdigit():
        return None
    now = time_step(unix_time)
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if last_used_step is not None and step <= last_used_step:
            continue
        if hmac.compare_digest(hotp(secret, step), code):
            return step
    return None


def otpauth_uri(secret: bytes, account: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app imports (Key Uri Format)."""
    label = quote(f"{issuer}:{account}", safe="")
    query = urlencode({"secret": secret_to_text(secret), "issuer": issuer, "algorithm": "SHA1",
                       "digits": DIGITS, "period": STEP_SECONDS})
    return f"otpauth://totp/{label}?{query}"
