"""Canonical wire forms: RFC 8785 JSON for Minga's value types, and strict base64url."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.canonical import MAX_SAFE_INTEGER, CanonicalJSONError, canonical_json
from federation.encoding import EncodingError, b64u_decode, b64u_encode


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
