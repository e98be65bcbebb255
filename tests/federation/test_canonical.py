"""Canonical wire forms: RFC 8785 JSON for Minga's value types, and strict base64url."""

from __future__ import annotations

import base64
import json
import re
from enum import IntEnum, StrEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.canonical import (
    MAX_SAFE_INTEGER,
    CanonicalJSONError,
    _general_canonical_json,
    canonical_json,
)
from federation.encoding import EncodingError, b64u_decode, b64u_encode, b64u_length


def test_rfc8785_sorting_example_orders_keys_by_utf16_code_units() -> None:
    # RFC 8785 §3.2.3: the emoji (surrogates D83D DE00) sorts before U+FB33, although its code
    # point is higher; a code-point sort would put it last.
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    ordered = list(json.loads(canonical_json(value)).values())
    assert ordered == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]


def test_astral_key_sorts_before_high_bmp_key() -> None:
    assert canonical_json({"\uffff": 1, "\U00010000": 2}) == '{"\U00010000":2,"\uffff":1}'.encode()


def test_rfc8785_string_escaping_example() -> None:
    # RFC 8785 §3.2.2.2 (the "string" and "literals" members of its example).
    parsed = json.loads(
        r'{"string": "\u20ac$\u000F\u000aA' + "'" + r'\u0042\u0022\u005c\\\"\/",'
        r' "literals": [null, true, false]}'
    )
    expected = r'{"literals":[null,true,false],"string":"€$\u000f\nA' + "'" + r'B\"\\\\\"/"}'
    assert canonical_json(parsed) == expected.encode("utf-8")


@pytest.mark.parametrize(
    ("char", "written"),
    [
        ("\b", r"\b"),
        ("\t", r"\t"),
        ("\n", r"\n"),
        ("\f", r"\f"),
        ("\r", r"\r"),
        ("\x00", r"\u0000"),
        ("\x1f", r"\u001f"),
        ("\x7f", "\x7f"),
        ("/", "/"),
        ("é", "é"),
        ("\u2028", "\u2028"),
    ],
)
def test_minimal_escaping(char: str, written: str) -> None:
    assert canonical_json(char) == f'"{written}"'.encode()


def test_no_whitespace_and_nested_sorting() -> None:
    value = {"b": [1, {"z": None, "a": True}], "a": "x"}
    assert canonical_json(value) == b'{"a":"x","b":[1,{"a":true,"z":null}]}'


@pytest.mark.parametrize("value", [1.0, 0.5, float("nan"), {"a": [1, 2.5]}])
def test_floats_are_refused(value: Any) -> None:
    with pytest.raises(CanonicalJSONError, match="float"):
        canonical_json(value)


@pytest.mark.parametrize("number", [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 10**30])
def test_integers_beyond_the_safe_range_are_refused(number: int) -> None:
    with pytest.raises(CanonicalJSONError, match="outside"):
        canonical_json({"n": number})


@pytest.mark.parametrize("number", [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 0, -1])
def test_safe_integers_are_written_plainly(number: int) -> None:
    assert canonical_json([number]) == f"[{number}]".encode()


def test_error_names_the_path() -> None:
    with pytest.raises(CanonicalJSONError, match=r"\$\.outer\[1\]\.inner"):
        canonical_json({"outer": [0, {"inner": 1.5}]})


@pytest.mark.parametrize("value", [{1: "a"}, {"a": b"bytes"}, {"a": {1, 2}}])
def test_non_json_values_are_refused(value: Any) -> None:
    with pytest.raises(CanonicalJSONError):
        canonical_json(value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=15,
)


@settings(max_examples=150)
@given(json_values)
def test_round_trips_through_a_json_parser(value: Any) -> None:
    assert json.loads(canonical_json(value)) == value


@settings(max_examples=150)
@given(st.dictionaries(st.text(max_size=6), st.integers(0, 9), max_size=8), st.randoms())
def test_independent_of_insertion_order(value: dict[str, int], random: Any) -> None:
    items = list(value.items())
    random.shuffle(items)
    assert canonical_json(dict(items)) == canonical_json(value)


@settings(max_examples=150)
@given(st.dictionaries(st.text(max_size=6), st.integers(0, 9), min_size=2, max_size=8))
def test_keys_appear_in_utf16_order(value: dict[str, int]) -> None:
    keys = list(json.loads(canonical_json(value)))
    assert keys == sorted(keys, key=lambda key: key.encode("utf-16-be"))


# --- canonical base64url (federation.encoding) ----------------------------------------------------


@settings(max_examples=150)
@given(st.binary(max_size=70))
def test_base64url_round_trip_without_padding(data: bytes) -> None:
    text = b64u_encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64u_decode(text) == data


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("AQ==", "characters"),  # padding
        ("A+8", "characters"),  # standard alphabet
        ("AQ\n", "characters"),
        ("AQIDB", "length"),
        ("AR", "canonical"),  # 0x01 is "AQ"; "AR" sets an unused bit
    ],
)
def test_base64url_decoding_is_strict(text: str, problem: str) -> None:
    with pytest.raises(EncodingError, match=problem):
        b64u_decode(text)


def test_base64url_refuses_non_text() -> None:
    with pytest.raises(EncodingError, match="bytes"):
        b64u_decode(b"AQ")  # type: ignore[arg-type]


# --- the plain-value fast path gives the general path's bytes -------------------------------------


class _Label(StrEnum):
    A = "a"


class _Number(IntEnum):
    ONE = 1


class _Text(str):
    __slots__ = ()


keys = st.text(max_size=6) | st.sampled_from(["a", "b", "\uffff", "\U00010000", "\ufb33", "é"])
any_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.sampled_from([MAX_SAFE_INTEGER, MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1])
    | st.text(max_size=12)
    | st.floats(allow_nan=True)
    | st.sampled_from([_Label.A, _Number.ONE, _Text("x"), b"bytes", {1, 2}]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(keys, children, max_size=4)
        | st.dictionaries(st.integers(0, 3) | st.none(), children, max_size=2)
    ),
    max_leaves=15,
)


def _outcome(function: Any, value: Any) -> tuple[str, Any]:
    try:
        return "bytes", function(value)
    except CanonicalJSONError as problem:
        return "refused", str(problem)


@settings(max_examples=400)
@given(any_values)
def test_fast_path_matches_the_general_path(value: Any) -> None:
    assert _outcome(canonical_json, value) == _outcome(_general_canonical_json, value)


@settings(max_examples=150)
@given(json_values)
def test_plain_values_take_the_fast_path_and_match(value: Any) -> None:
    assert canonical_json(value) == _general_canonical_json(value)


@pytest.mark.parametrize(
    "value",
    [
        {"\U0001f600": 1, "\ufb33": 2},  # non-ASCII keys sort by UTF-16 code unit
        {"k": _Label.A, "n": _Number.ONE, "t": _Text("x")},
        ({"b": 1, "a": (2, 3)},),
        {"a": [MAX_SAFE_INTEGER + 1]},
        {"a": True, "b": None, "c": -MAX_SAFE_INTEGER},
    ],
)
def test_fast_path_edge_cases_match(value: Any) -> None:
    assert _outcome(canonical_json, value) == _outcome(_general_canonical_json, value)


# --- the fast base64url decoder against the straightforward definition ---------------------------


def _reference_b64u_decode(text: str) -> bytes:
    """Decode the slow, obvious way: pad, decode, and insist that re-encoding gives ``text``."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        raise EncodingError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != text:
        raise EncodingError("not canonical")
    return data


def _decoded(function: Any, text: str) -> bytes | None:
    try:
        decoded: bytes = function(text)
    except EncodingError:
        return None
    return decoded


base64ish = st.text(
    alphabet=st.sampled_from("ABCDQRSTUVWXgw09-_+/=é \n\x00") | st.characters(), max_size=12
)


@settings(max_examples=400)
@given(base64ish | st.binary(max_size=20).map(b64u_encode))
def test_fast_base64url_decoder_agrees_with_the_reference(text: str) -> None:
    assert _decoded(b64u_decode, text) == _decoded(_reference_b64u_decode, text)


@settings(max_examples=150)
@given(st.binary(min_size=1, max_size=20), st.integers(0, 63))
def test_no_other_last_character_decodes_to_the_same_bytes(data: bytes, index: int) -> None:
    text = b64u_encode(data)
    changed = text[:-1] + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[index]
    if changed != text:
        assert _decoded(b64u_decode, changed) != data


@settings(max_examples=300)
@given(base64ish | st.binary(max_size=40).map(b64u_encode))
def test_length_check_agrees_with_decoding(text: str) -> None:
    decoded = _decoded(b64u_decode, text)
    try:
        length: int | None = b64u_length(text)
    except EncodingError:
        length = None
    assert length == (None if decoded is None else len(decoded))
