"""Unpadded base64url (RFC 4648 §5), the one text encoding of bytes on Minga's wire.

Decoding is strict: only the base64url alphabet, no padding, no whitespace, and the text must be
the canonical encoding of its bytes (unused trailing bits are zero). So two different strings
never decode to the same bytes, and changing any character of a signed value changes its bytes.

Both directions call ``binascii`` directly: envelopes carry kilobytes of ciphertext and the
SD-JWT code encodes dozens of small values per record, so the layers of ``base64`` and a
re-encoding to check canonical form were a measurable share of sealing and opening.
"""

from __future__ import annotations

import binascii
from typing import Final

_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_URL_TO_STANDARD: Final = bytes.maketrans(b"-_", b"+/")
_STANDARD_TO_URL: Final = bytes.maketrans(b"+/", b"-_")
_PADDING: Final = (b"", b"", b"==", b"=")  # by length % 4 (1 is impossible)
# The low bits of the last character that encode no data, by length % 4: they must be zero.
_UNUSED_BITS: Final = (0, 0, 0b1111, 0b11)
_VALUE: Final = {char: index for index, char in enumerate(_ALPHABET)}


class EncodingError(ValueError):
    """Text is not canonical unpadded base64url."""


def b64u_encode(data: bytes) -> str:
    """``data`` as unpadded base64url text."""
    encoded = binascii.b2a_base64(data, newline=False)
    return encoded.translate(_STANDARD_TO_URL).rstrip(b"=").decode("ascii")


def b64u_length(text: str) -> int:
    """How many bytes canonical unpadded base64url ``text`` holds, checked without decoding it.

    Raises :class:`EncodingError` exactly when :func:`b64u_decode` would.
    """
    if not isinstance(text, str):
        raise EncodingError(f"expected base64url text, got {type(text).__name__}")
    if not text.isascii() or text.encode("ascii").translate(None, _ALPHABET):
        raise EncodingError("not base64url: characters outside A-Z a-z 0-9 - _ (or padding)")
    remainder = len(text) % 4
    if remainder == 1:
        raise EncodingError("not base64url: impossible length")
    if remainder and _VALUE[ord(text[-1])] & _UNUSED_BITS[remainder]:
        raise EncodingError("not canonical base64url: unused trailing bits are set")
    return len(text) // 4 * 3 + (remainder and remainder - 1)


def b64u_decode(text: str) -> bytes:
    """The bytes of canonical unpadded base64url ``text``; :class:`EncodingError` otherwise."""
    b64u_length(text)
    try:
        raw = text.encode("ascii").translate(_URL_TO_STANDARD) + _PADDING[len(text) % 4]
        return binascii.a2b_base64(raw)
    except binascii.Error as error:
        raise EncodingError("not base64url") from error
