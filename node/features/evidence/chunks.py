"""Chunked authenticated encryption of a file under its own key (the STREAM construction).

A file is cut into chunks of :data:`CHUNK_SIZE` plaintext bytes; each is sealed with
ChaCha20-Poly1305 (``cryptography``) under the file's random 256-bit key. The nonce is the chunk's
index (11 bytes, big-endian) and a final flag (1 byte, 1 on the last chunk only), as in Hoang,
Reyhanitabar, Rogaway and Vizár's STREAM: a key is used for one file only, so nonces never
repeat; chunks cannot be reordered (the index), dropped from the end or followed by more (the
final flag). The associated data (the attachment id and which copy) binds the ciphertext to its
place, so a file moved to another attachment does not decrypt.

A file of ``n`` bytes has ``max(1, ceil(n / CHUNK_SIZE))`` chunks (an empty file is one empty
final chunk), each :data:`TAG_SIZE` bytes longer than its plaintext. Only one chunk is ever held
in memory: :class:`ChunkSealer` and :class:`ChunkOpener` take bytes as they come and give back
whole chunks, keeping back the last one until :meth:`finish` says it is final.
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

CHUNK_SIZE: Final = 1024 * 1024
TAG_SIZE: Final = 16
KEY_SIZE: Final = 32
_INDEX_BYTES: Final = 11
_MAX_CHUNKS: Final = 2 ** (8 * _INDEX_BYTES)


class ChunkRejected(ValueError):
    """A stored or received file does not decrypt: altered, truncated, extended or moved."""


def new_file_key() -> bytes:
    return os.urandom(KEY_SIZE)


def chunk_nonce(index: int, *, final: bool) -> bytes:
    if not 0 <= index < _MAX_CHUNKS:
        raise ValueError("chunk index out of range")
    return index.to_bytes(_INDEX_BYTES, "big") + (b"\x01" if final else b"\x00")


def sealed_size(plain_size: int) -> int:
    """The size of the sealed form of a file of ``plain_size`` bytes."""
    chunks = max(1, -(-plain_size // CHUNK_SIZE))
    return plain_size + chunks * TAG_SIZE


class _Chunker:
    def __init__(self, key: bytes, associated_data: bytes, block: int) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError("a file key is 32 bytes")
        self._aead = ChaCha20Poly1305(key)
        self._ad = associated_data
        self._block = block
        self._buffer = bytearray()
        self._index = 0
        self._done = False

    def update(self, data: bytes | bytearray) -> bytes:
        """Whole chunks made from ``data`` and what came before (the last one is held back:
        a chunk is only known not to be the final one once a byte after it has arrived)."""
        if self._done:
            raise ValueError("finish() was already called")
        view = memoryview(data)
        out: list[bytes] = []
        if self._buffer:
            need = self._block - len(self._buffer)
            if len(view) <= need:
                self._buffer += view
                return b""
            self._buffer += view[:need]
            view = view[need:]
            out.append(self._apply(self._buffer, final=False))
            self._buffer = bytearray()
        while len(view) > self._block:  # whole chunks straight from the caller's bytes
            out.append(self._apply(view[: self._block], final=False))
            view = view[self._block:]
        self._buffer += view
        return b"".join(out)

    def finish(self) -> bytes:
        """The final chunk."""
        if self._done:
            raise ValueError("finish() was already called")
        self._done = True
        last, self._buffer = bytes(self._buffer), bytearray()
        return self._apply(last, final=True)

    def _apply(self, chunk: bytes | bytearray | memoryview, *, final: bool) -> bytes:
        nonce = chunk_nonce(self._index, final=final)
        self._index += 1
        return self._transform(nonce, chunk)

    def _transform(self, nonce: bytes, chunk: bytes | bytearray | memoryview) -> bytes:
        raise NotImplementedError


class ChunkSealer(_Chunker):
    """Seals a file as it streams in: ``update`` with each piece, then ``finish``."""

    def __init__(self, key: bytes, associated_data: bytes) -> None:
        super().__init__(key, associated_data, CHUNK_SIZE)

    def _transform(self, nonce: bytes, chunk: bytes | bytearray | memoryview) -> bytes:
        return self._aead.encrypt(nonce, chunk, self._ad)


class ChunkOpener(_Chunker):
    """Opens a sealed file as it streams in; raises :class:`ChunkRejected` on any change."""

    def __init__(self, key: bytes, associated_data: bytes) -> None:
        super().__init__(key, associated_data, CHUNK_SIZE + TAG_SIZE)

    def _transform(self, nonce: bytes, chunk: bytes | bytearray | memoryview) -> bytes:
        try:
            return self._aead.decrypt(nonce, chunk, self._ad)
        except InvalidTag:
            raise ChunkRejected(
                f"chunk {int.from_bytes(nonce[:_INDEX_BYTES], 'big')} does not decrypt: the"
                " file was altered, truncated, extended, or belongs to another attachment"
            ) from None


def chunk_count(plain_size: int) -> int:
    """How many chunks a file of ``plain_size`` bytes has."""
    return max(1, -(-plain_size // CHUNK_SIZE))


class ChunkCipher:
    """Chunks of a file whose chunk count is known, one at a time by index, with no buffering:
    for moving a file from one key to another quickly. ``open`` raises :class:`ChunkRejected`
    on any change (a chunk altered, moved, or the final flag where it is not the last)."""

    def __init__(self, key: bytes, associated_data: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError("a file key is 32 bytes")
        self._aead = ChaCha20Poly1305(key)
        self._ad = associated_data

    def seal(self, index: int, chunk: bytes, *, final: bool) -> bytes:
        return self._aead.encrypt(chunk_nonce(index, final=final), chunk, self._ad)

    def open(self, index: int, sealed: bytes | memoryview, *, final: bool) -> bytes:
        try:
            return self._aead.decrypt(chunk_nonce(index, final=final), sealed, self._ad)
        except InvalidTag:
            raise ChunkRejected(
                f"chunk {index} does not decrypt: the file was altered, truncated, extended,"
                " or belongs to another attachment") from None


def seal_bytes(key: bytes, associated_data: bytes, data: bytes) -> bytes:
    sealer = ChunkSealer(key, associated_data)
    return sealer.update(data) + sealer.finish()


def open_bytes(key: bytes, associated_data: bytes, sealed: bytes) -> bytes:
    opener = ChunkOpener(key, associated_data)
    return opener.update(sealed) + opener.finish()
