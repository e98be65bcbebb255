"""Chunked AEAD of evidence files: a pinned vector, chunk boundaries, and every kind of change
(altered, truncated, extended, reordered, moved) refused."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from node.features.evidence.chunks import (
    CHUNK_SIZE,
    TAG_SIZE,
    ChunkCipher,
    ChunkOpener,
    ChunkRejected,
    ChunkSealer,
    chunk_count,
    chunk_nonce,
    new_file_key,
    open_bytes,
    seal_bytes,
    sealed_size,
)

KEY = bytes(range(32))
AD = b"minga/evidence/v1|a1|original"
SMALL = b"Minga evidence vector\n"


def test_a_small_file_is_one_final_chunk_sealed_with_chacha20_poly1305() -> None:
    sealed = seal_bytes(KEY, AD, SMALL)
    assert sealed.hex() == ("243512be502add0c44151b41d071376475924b2fbcbb8c6542cba7d08143cda0"
                            "0a306b8b4c5e")
    # the same bytes from the primitive itself: chunk 0, final flag set
    assert sealed == ChaCha20Poly1305(KEY).encrypt(bytes(11) + b"\x01", SMALL, AD)
    assert open_bytes(KEY, AD, sealed) == SMALL


def test_a_file_past_one_chunk_is_pinned_and_sized() -> None:
    data = bytes(i % 251 for i in range(CHUNK_SIZE + 5))
    sealed = seal_bytes(KEY, AD, data)
    assert hashlib.sha256(sealed).hexdigest() == (
        "6b70dd2b675d36fb86a049d651872e30948762b2be4d3e06580078c11a23023b")
    assert len(sealed) == sealed_size(len(data)) == len(data) + 2 * TAG_SIZE
    first = ChaCha20Poly1305(KEY).encrypt(chunk_nonce(0, final=False), data[:CHUNK_SIZE], AD)
    assert sealed.startswith(first)


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1,
                                  2 * CHUNK_SIZE])
def test_any_size_fed_in_odd_pieces_round_trips(size: int) -> None:
    data = bytes(i % 253 for i in range(size))
    sealer = ChunkSealer(KEY, AD)
    pieces = [sealer.update(data[start:start + 77_777]) for start in range(0, size, 77_777)]
    sealed = b"".join(pieces) + sealer.finish()
    assert len(sealed) == sealed_size(size)
    opener = ChunkOpener(KEY, AD)
    opened = b"".join(opener.update(sealed[s:s + 99_999]) for s in range(0, len(sealed), 99_999))
    assert opened + opener.finish() == data


@pytest.mark.parametrize("piece", [1000, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1,
                                   3 * CHUNK_SIZE + 5])
def test_the_sealed_form_does_not_depend_on_how_the_file_was_cut(piece: int) -> None:
    data = bytes(i % 251 for i in range(3 * CHUNK_SIZE + CHUNK_SIZE // 2))
    sealer = ChunkSealer(KEY, AD)
    out = [sealer.update(data[start:start + piece]) for start in range(0, len(data), piece)]
    out += [sealer.update(b""), sealer.update(bytearray(b"")), sealer.finish()]
    assert b"".join(out) == seal_bytes(KEY, AD, data)


def _two_chunks() -> bytes:
    return seal_bytes(KEY, AD, bytes(CHUNK_SIZE + 10))


def test_an_altered_byte_is_refused() -> None:
    sealed = bytearray(_two_chunks())
    sealed[100] ^= 1
    with pytest.raises(ChunkRejected):
        open_bytes(KEY, AD, bytes(sealed))


def test_a_file_cut_after_a_whole_chunk_is_refused() -> None:
    with pytest.raises(ChunkRejected):
        open_bytes(KEY, AD, _two_chunks()[: CHUNK_SIZE + TAG_SIZE])


def test_a_file_with_more_after_its_final_chunk_is_refused() -> None:
    small = seal_bytes(KEY, AD, SMALL)
    with pytest.raises(ChunkRejected):
        open_bytes(KEY, AD, small + small)


def test_swapped_chunks_are_refused() -> None:
    data = bytes(2 * CHUNK_SIZE + 1)
    sealed = seal_bytes(KEY, AD, data)
    size = CHUNK_SIZE + TAG_SIZE
    swapped = sealed[size:2 * size] + sealed[:size] + sealed[2 * size:]
    with pytest.raises(ChunkRejected):
        open_bytes(KEY, AD, swapped)


def test_a_file_moved_to_another_attachment_is_refused() -> None:
    with pytest.raises(ChunkRejected):
        open_bytes(KEY, b"minga/evidence/v1|a2|original", seal_bytes(KEY, AD, SMALL))


def test_chunks_by_index_are_the_stream_and_refuse_a_wrong_place() -> None:
    key = new_file_key()
    data = os.urandom(2 * CHUNK_SIZE + 5)
    cipher = ChunkCipher(key, b"ad")
    count = chunk_count(len(data))
    assert count == 3 and chunk_count(0) == 1
    pieces = [data[i * CHUNK_SIZE:(i + 1) * CHUNK_SIZE] for i in range(count)]
    sealed = [cipher.seal(i, piece, final=i == count - 1) for i, piece in enumerate(pieces)]
    assert b"".join(sealed) == seal_bytes(key, b"ad", data)  # the same bytes as streaming
    assert cipher.open(2, sealed[2], final=True) == pieces[2]
    with pytest.raises(ChunkRejected):
        cipher.open(1, sealed[1], final=True)  # the final flag where it is not the last
    with pytest.raises(ChunkRejected):
        cipher.open(0, sealed[1], final=False)  # moved
