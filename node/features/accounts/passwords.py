"""Staff passwords: Argon2id (RFC 9106) with a random salt; the parameters travel with the hash.

The stored form is a small JSON object ``{"scheme", "salt", "iterations", "lanes",
"memory_kib", "hash"}`` (bytes in base64url), so the cost can be raised later and old hashes
still verify. Comparison is constant-time. The store encrypts this object like any other secret.
"""

from __future__ import annotations

import base64
import hmac
import os
from typing import Any

from federation.secretbox import DEFAULT_PARAMS, Argon2Params

SCHEME = "argon2id/v1"
_PURPOSE = b"minga/staff-password/v1"
_SALT_BYTES = 16
MIN_LENGTH = 10
MAX_LENGTH = 1024
# Refuse stored costs beyond these before deriving: a tampered row must not tie up the node.
_MAX_ITERATIONS = 16
_MAX_LANES = 16
_MAX_MEMORY_KIB = 1024 * 1024


class WeakPassword(ValueError):
    """The new password does not meet the rules; the message says which."""


class MalformedPasswordHash(ValueError):
    """A stored password hash is not one this module wrote."""


def check_new_password(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password may have at most {MAX_LENGTH} characters")
    if not password.strip():
        raise WeakPassword("a password cannot be only spaces")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, params: Argon2Params = DEFAULT_PARAMS) -> dict[str, Any]:
    """The storable hash of a password that passed :func:`check_new_password`."""
    salt = os.urandom(_SALT_BYTES)
    digest = params.derive(password, salt, _PURPOSE)
    return {"scheme": SCHEME, "salt": _b64(salt), "iterations": params.iterations,
            "lanes": params.lanes, "memory_kib": params.memory_kib, "hash": _b64(digest)}


def _stored_params(stored: dict[str, Any]) -> tuple[Argon2Params, bytes, bytes]:
    try:
        if stored["scheme"] != SCHEME:
            raise MalformedPasswordHash(f"unknown password scheme {stored['scheme']!r}")
        params = Argon2Params(int(stored["iterations"]), int(stored["lanes"]),
                              int(stored["memory_kib"]))
        salt, digest = _unb64(stored["salt"]), _unb64(stored["hash"])
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, MalformedPasswordHash):
            raise
        raise MalformedPasswordHash("the stored password hash is damaged") from None
    if not (1 <= params.iterations <= _MAX_ITERATIONS and 1 <= params.lanes <= _MAX_LANES
            and 8 * params.lanes <= params.memory_kib <= _MAX_MEMORY_KIB):
        raise MalformedPasswordHash("the stored password hash asks for an unaccepted cost")
    return params, salt, digest


def verify_password(password: str, stored: dict[str, Any]) -> bool:
    params, salt, digest = _stored_params(stored)
    if len(password) > MAX_LENGTH:
        return False
    return hmac.compare_digest(params.derive(password, salt, _PURPOSE), digest)


def needs_rehash(stored: dict[str, Any], params: Argon2Params = DEFAULT_PARAMS) -> bool:
    """True when the hash was made with other parameters than ``params``."""
    stored_params, _, _ = _stored_params(stored)
    return stored_params != params
