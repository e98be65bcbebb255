"""The coalition linkage key and the keyed hashing every encoding is built from.

All members hold the same 32-byte linkage key (distributed sealed, rotated with the roster), so
they encode the same features to the same bits and can compare. Nothing is ever hashed under the
key directly: each purpose (name spellings, name skeletons, places, dates, countries) and, apart
from the country itself, each country gets its own subkey. The same surname in two countries, or
a bigram of a name and the same bigram of a place, land on unrelated bits, and an encoding made
under one key says nothing about an encoding made under another.
"""

from __future__ import annotations

import hashlib
import secrets

from federation.encoding import b64u_encode

KEY_BYTES = 32
_PERSONALISATION = b"minga.linkage/1"
_KEY_ID_BYTES = 12


class LinkageKeyError(ValueError):
    """A linkage key of the wrong size."""


class LinkageKey:
    """The coalition's shared secret for de-duplication encodings."""

    __slots__ = ("_secret", "_subkeys", "key_id")

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) != KEY_BYTES:
            raise LinkageKeyError(f"linkage key: must be exactly {KEY_BYTES} bytes")
        self._secret = secret
        self._subkeys: dict[tuple[str, str], bytes] = {}
        self.key_id: str = b64u_encode(_keyed(secret, b"key-id", _KEY_ID_BYTES))
        """Names the key in queries, so a responder can tell which key (epoch) was used."""

    @classmethod
    def generate(cls) -> LinkageKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    def to_bytes(self) -> bytes:
        """The secret itself, to seal to members; never log it."""
        return self._secret

    def subkey(self, purpose: str, country: str = "") -> bytes:
        cached = self._subkeys.get((purpose, country))
        if cached is None:
            label = f"{purpose}\x00{country}".encode()
            cached = self._subkeys[(purpose, country)] = _keyed(self._secret, label, KEY_BYTES)
        return cached

    def __repr__(self) -> str:
        return f"LinkageKey(key_id={self.key_id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LinkageKey) and secrets.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(self.key_id)


def keyed_tag(subkey: bytes, label: str, size: int) -> bytes:
    """A ``size``-byte keyed BLAKE2b digest of ``label``."""
    return _keyed(subkey, label.encode(), size)


def bloom_filter(subkey: bytes, grams: frozenset[str], bits: int, hashes: int) -> int:
    """A ``bits``-long Bloom filter of ``grams`` as an int; ``bits`` a power of two <= 65536.

    Each gram's ``hashes`` positions are cut from its own keyed digest ("random hashing"), not
    derived from two base hashes: double hashing leaves patterns that published attacks exploit.
    """
    value = 0
    for gram in grams:
        digest = _keyed(subkey, gram.encode(), 2 * hashes)
        for index in range(hashes):
            value |= 1 << (int.from_bytes(digest[2 * index : 2 * index + 2], "big") % bits)
    return value


def _keyed(key: bytes, data: bytes, size: int) -> bytes:
    return hashlib.blake2b(data, key=key, digest_size=size, person=_PERSONALISATION).digest()
