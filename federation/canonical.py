"""Canonical JSON (RFC 8785 behaviour for Minga's value types) for everything signed outside SD-JWT.

Values are limited to what travels on Matrix: objects, arrays, strings, integers, booleans and null.
Floats are refused (Matrix rejects them in event content) and so are integers outside the range
that every JSON implementation represents exactly (|n| < 2**53). Object keys are sorted by their
UTF-16 code units, as RFC 8785 requires; strings are written with the minimal escaping of RFC 8785
(which is what ``json.dumps(ensure_ascii=False)`` produces).

Most values are plain: built-in dicts with ASCII keys, lists, strings, safe integers, booleans
and null. For those, one read-only check and ``json.dumps(sort_keys=True)`` give the same bytes
as the general path (ASCII keys sort the same by code point as by UTF-16 code unit) without
copying the value; anything else (other key characters, subclasses, tuples, errors) takes the
general path, which also names the path of a refused value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalJSONError(ValueError):
    """A value cannot be written as canonical JSON; the message gives its path."""


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be")


def _normalise(value: Any, path: str) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalJSONError(f"{path}: integer {value} is outside ±(2**53 - 1)")
        return value
    if isinstance(value, float):
        raise CanonicalJSONError(f"{path}: floats are not allowed; use an integer or a string")
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise CanonicalJSONError(f"{path}: object key {key!r} is not a string")
        return {
            key: _normalise(value[key], f"{path}.{key}") for key in sorted(value, key=_utf16_key)
        }
    if isinstance(value, list | tuple):
        return [_normalise(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise CanonicalJSONError(f"{path}: {type(value).__name__} is not a JSON value")


def _general_canonical_json(value: Any) -> bytes:
    return json.dumps(
        _normalise(value, "$"), ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


_PLAIN_SCALARS: Final = frozenset({str, bool, type(None)})


def is_plain(value: Any) -> bool:
    """Whether ``value`` holds only exact built-in JSON types, safe integers and ASCII keys."""
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return True
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                return False
            if type(item) is not str and not is_plain(item):  # strings, the usual case, inline
                return False
        return True
    if kind is list:
        return all(type(item) is str or is_plain(item) for item in value)
    return False


_PLAIN_ENCODER: Final = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=True
)


def _plain_encoder() -> Callable[[Any], str]:
    """``_PLAIN_ENCODER.encode`` without building a new C encoder on every call."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without the C accelerator
        return _PLAIN_ENCODER.encode
    string = json.encoder.encode_basestring
    # markers, default, string encoder, indent, separators, sort_keys, skipkeys, allow_nan.
    # No circular-reference markers: is_plain() has walked the value and would have recursed
    # without end first.
    encoder = make(None, _PLAIN_ENCODER.default, string, None, ":", ",", True, False, False)

    def encode(value: Any) -> str:
        return "".join(encoder(value, 0))

    return encode


_encode_plain: Final = _plain_encoder()


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 bytes of ``value``."""
    if is_plain(value):
        return _encode_plain(value).encode("utf-8")
    return _general_canonical_json(value)
