"""Encryption of sensitive columns: ChaCha20-Poly1305 under a subkey of the data key.

Every value is encrypted with a fresh random 96-bit nonce. The associated data names the table,
the column and the row's identity (:class:`Cell`), so a ciphertext copied into another row or
column does not decrypt. Plaintexts are padded to a multiple of 64 bytes so that stored sizes say
little about the length of names or narratives.

Stored form: ``0x01 || nonce (12) || ciphertext+tag``. The leading byte is the format version.

Encrypted values cannot be looked up. Where a value must be found again (a spreadsheet row
imported before), :meth:`ColumnCipher.lookup_tag` gives a keyed hash of it instead: HMAC-SHA256
under another subkey of the data key, so the database alone cannot confirm a guess.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from federation.canonical import canonical_json
from node.core.store.errors import CiphertextRejected
from node.core.store.unlock import DataKey

_FORMAT = b"\x01"
_NONCE_BYTES = 12
_PAD_TO = 64
_PAD_MARK = b"\x80"
_SUBKEY_PURPOSE = b"minga/store/columns/v1"
_LOOKUP_PURPOSE = b"minga/store/lookup/v1"


@dataclass(frozen=True)
class Cell:
    """Where an encrypted value lives: table, column and the row's identifying values."""

    table: str
    column: str
    row: tuple[str, ...]

    def associated_data(self) -> bytes:
        return canonical_json(["minga/store/v1", self.table, self.column, list(self.row)])

    def describe(self) -> str:
        return f"{self.table}.{self.column} of row ({', '.join(self.row)})"


def _pad(data: bytes) -> bytes:
    padded = data + _PAD_MARK
    return padded + b"\x00" * (-len(padded) % _PAD_TO)


def _unpad(data: bytes) -> bytes:
    end = data.rstrip(b"\x00")
    if not end.endswith(_PAD_MARK):
        raise ValueError("bad padding")
    return end[: -len(_PAD_MARK)]


class ColumnCipher:
    """Encrypts and decrypts column values for one store."""

    def __init__(self, key: DataKey) -> None:
        self._aead = ChaCha20Poly1305(key.derive(_SUBKEY_PURPOSE))
        self._lookup_key = key.derive(_LOOKUP_PURPOSE)

    def lookup_tag(self, purpose: str, value: Any) -> bytes:
        """A 32-byte keyed hash of ``value`` (canonical JSON) for finding it again: equal for
        equal values and purposes under one data key, unrelated under another."""
        message = canonical_json(["minga/store/lookup/v1", purpose, value])
        return hmac.new(self._lookup_key, message, hashlib.sha256).digest()

    def encrypt(self, plaintext: bytes, cell: Cell) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, _pad(plaintext), cell.associated_data())
        return _FORMAT + nonce + sealed

    def decrypt(self, stored: bytes, cell: Cell) -> bytes:
        if not stored.startswith(_FORMAT) or len(stored) < 1 + _NONCE_BYTES + 16:
            raise CiphertextRejected(f"{cell.describe()} is not an encrypted value")
        nonce, sealed = stored[1 : 1 + _NONCE_BYTES], stored[1 + _NONCE_BYTES :]
        try:
            return _unpad(self._aead.decrypt(nonce, sealed, cell.associated_data()))
        except (InvalidTag, ValueError):
            raise CiphertextRejected(
                f"{cell.describe()} does not decrypt: it was altered, moved from another row,"
                " or written with another data key"
            ) from None

    def encrypt_text(self, text: str, cell: Cell) -> bytes:
        return self.encrypt(text.encode("utf-8"), cell)

    def decrypt_text(self, stored: bytes, cell: Cell) -> str:
        return self.decrypt(stored, cell).decode("utf-8")

    def encrypt_json(self, value: Any, cell: Cell) -> bytes:
        return self.encrypt(canonical_json(value), cell)

    def decrypt_json(self, stored: bytes, cell: Cell) -> Any:
        return json.loads(self.decrypt(stored, cell))
