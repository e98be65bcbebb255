"""Unpadded base64url (RFC 4648 §5), the one text encoding of bytes on Minga's wire.

Decoding is strict: only the base64url alphabet, no padding, no whitespace, and the text must be
the canonical encoding of its bytes (unused trailing bits are zero). So two different strings
never decode to the same bytes, and changing any character of a signed value changes its bytes.
"""

from __future__ import annotations

import base64
import binascii
import re

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")


class EncodingError(ValueError):
    """Text is not canonical unpadded base64url."""


def b64u_encode(data: bytes) -> str:
    """``data`` as unpadded base64url text."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """The bytes of canonical unpadded base64url ``text``; :class:`EncodingError` otherwise."""
    if not isinstance(text, str):
        raise EncodingError(f"expected base64url text, got {type(text).__name__}")
    if not _ALPHABET.fullmatch(text):
        raise EncodingError("not base64url: characters outside A-Z a-z 0-9 - _ (or padding)")
    if len(text) % 4 == 1:
        raise EncodingError("not base64url: impossible length")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as error:
        raise EncodingError("not base64url") from error
    if b64u_encode(data) != text:
        raise EncodingError("not canonical base64url: unused trailing bits are set")
    return data
