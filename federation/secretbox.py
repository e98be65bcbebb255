"""Secrets locked with a passphrase: Argon2id key derivation + ChaCha20-Poly1305.

The one way Minga protects something with a passphrase: organisation keys exported by
``federation.identity`` and the data key of a node's store both use it. The Argon2id parameters
travel in the box, so they can be raised later without breaking old boxes.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

_MAGIC = b"MSB1"
_HEADER = struct.Struct(">4sIII16s12s")  # magic, iterations, lanes, memory KiB, salt, nonce


class WrongPassphrase(ValueError):
    """The passphrase does not open this box (or the box was altered)."""

    def __init__(self) -> None:
        super().__init__("wrong passphrase, or the protected data was altered")


class MalformedBox(ValueError):
    """The bytes are not a Minga secret box."""


# The cost travels in the box, so an altered box could demand hours of work or gigabytes of
# memory before the tag check fails. Anything beyond these bounds is refused unread.
_MAX_ITERATIONS = 16
_MAX_LANES = 16
_MAX_MEMORY_KIB = 1024 * 1024


@dataclass(frozen=True)
class Argon2Params:
    iterations: int = 3
    lanes: int = 4
    memory_kib: int = 64 * 1024  # RFC 9106 second recommended option

    def derive(self, passphrase: str, salt: bytes, associated: bytes) -> bytes:
        kdf = Argon2id(
            salt=salt,
            length=32,
            iterations=self.iterations,
            lanes=self.lanes,
            memory_cost=self.memory_kib,
            ad=associated or None,
        )
        return kdf.derive(passphrase.encode("utf-8"))


DEFAULT_PARAMS = Argon2Params()
# For tests only: the same construction, cheap enough to run thousands of times.
FAST_TEST_PARAMS = Argon2Params(iterations=1, lanes=1, memory_kib=8)


def lock(
    secret: bytes,
    passphrase: str,
    *,
    purpose: bytes,
    params: Argon2Params = DEFAULT_PARAMS,
) -> bytes:
    """Encrypt ``secret`` under ``passphrase``. ``purpose`` binds the box to its use."""
    salt, nonce = os.urandom(16), os.urandom(12)
    header = _HEADER.pack(_MAGIC, params.iterations, params.lanes, params.memory_kib, salt, nonce)
    key = params.derive(passphrase, salt, purpose)
    return header + ChaCha20Poly1305(key).encrypt(nonce, secret, header + purpose)


def unlock(box: bytes, passphrase: str, *, purpose: bytes) -> bytes:
    """Decrypt a box made by :func:`lock`; raise :class:`WrongPassphrase` if it does not open."""
    if len(box) < _HEADER.size + 16:
        raise MalformedBox("too short to be a secret box")
    magic, iterations, lanes, memory_kib, salt, nonce = _HEADER.unpack_from(box)
    if magic != _MAGIC:
        raise MalformedBox("not a Minga secret box")
    if not (
        1 <= iterations <= _MAX_ITERATIONS
        and 1 <= lanes <= _MAX_LANES
        and 8 * lanes <= memory_kib <= _MAX_MEMORY_KIB
    ):
        raise MalformedBox("the box asks for an Argon2id cost outside the accepted bounds")
    params = Argon2Params(iterations, lanes, memory_kib)
    key = params.derive(passphrase, salt, purpose)
    header = box[: _HEADER.size]
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, box[_HEADER.size :], header + purpose)
    except InvalidTag:
        raise WrongPassphrase() from None
