"""Hostile JSON request bodies as a hypothesis strategy: valid-looking JSON with one or more
hostile parts spliced in (deep nesting, huge numbers, lone surrogates, duplicate keys, invalid
UTF-8, very long strings, non-JSON constants, truncation)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

SCALARS = (st.none() | st.booleans() | st.integers(-(2**60), 2**60)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
"""Ordinary JSON values: where a hostile part is spliced in."""

Splice = Callable[[str], str]


def _nested(depth: int) -> Splice:
    return lambda _: "[" * depth + "]" * depth


def _huge_number(digits: int, negative: bool, exponent: bool) -> Splice:
    number = ("-" if negative else "") + "9" * digits + ("e999999" if exponent else "")
    return lambda _: number


def _long_string(length: int) -> Splice:
    return lambda _: json.dumps("a" * length)


_CONSTANTS = ("NaN", "Infinity", "-Infinity", "undefined", "'single'", "0x10", "01", "1.",
              ".5", "+1", '"\\ud800"', '"\\udfff\\ud800"', '"\\u0000"', '"\\x41"')

HOSTILE_PARTS: st.SearchStrategy[Splice] = st.one_of(
    st.integers(65, 20_000).map(_nested),
    st.builds(_huge_number, st.integers(20, 20_000), st.booleans(), st.booleans()),
    st.integers(100_000, 3_000_000).map(_long_string),
    st.sampled_from(_CONSTANTS).map(lambda constant: (lambda _: constant)),
)


@st.composite
def hostile_json(draw: st.DrawFn) -> bytes:
    """A request body: a JSON object (often of a known shape) with hostile parts spliced in at
    random places, then possibly duplicated keys, invalid UTF-8 or truncation."""
    base: dict[str, Any] = draw(st.dictionaries(st.text(max_size=20), JSON_VALUES, min_size=1,
                                                max_size=6))
    placeholders = {}
    for index in range(draw(st.integers(1, 3))):
        marker = f"__hostile_{index}__"
        placeholders[marker] = draw(HOSTILE_PARTS)
        base[draw(st.text(max_size=20))] = marker
    text = json.dumps(base)
    for marker, splice in placeholders.items():
        text = text.replace(json.dumps(marker), splice(text), 1)
    if draw(st.booleans()):
        key = json.dumps(draw(st.text(max_size=10)))
        text = "{" + f"{key}: 1, {key}: 2, " + text[1:]
    body = text.encode("utf-8", "surrogatepass")
    mangle = draw(st.sampled_from(["none", "none", "invalid utf-8", "truncate"]))
    if mangle == "invalid utf-8":
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + body[at:]
    elif mangle == "truncate":
        body = body[: draw(st.integers(0, len(body) - 1))]
    return body
