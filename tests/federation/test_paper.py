"""Paper forms: what is printed types back to the same bytes, and a mistake names its line."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.paper import PaperFormError, from_paper, to_paper


@given(st.binary(min_size=1, max_size=600))
def test_a_form_reads_back_to_its_bytes(data: bytes) -> None:
    assert from_paper(to_paper(data, ["a note"])) == data


def test_typing_back_forgives_case_spacing_and_look_alikes() -> None:
    data = os.urandom(190)
    typed = to_paper(data).lower().replace("o", "0").replace("i", "1").replace("  ", "   ")
    assert from_paper(typed) == data


def _lines(data: bytes) -> list[str]:
    return to_paper(data).splitlines()


def test_a_wrong_character_is_reported_with_its_line() -> None:
    lines = _lines(os.urandom(190))
    line = lines[3]
    wrong = "A" if line[4] != "A" else "B"
    lines[3] = line[:4] + wrong + line[5:]
    with pytest.raises(PaperFormError, match="line 03: a character is wrong"):
        from_paper("\n".join(lines))


def test_a_missing_line_or_sum_is_reported() -> None:
    lines = _lines(os.urandom(190))
    with pytest.raises(PaperFormError, match="line 02 is missing"):
        from_paper("\n".join(lines[:2] + lines[3:]))
    with pytest.raises(PaperFormError, match="SUM line at the end is missing"):
        from_paper("\n".join(lines[:-1]))
    last_data_line = lines[-2]
    with pytest.raises(PaperFormError, match="does not match its SUM line"):
        from_paper("\n".join([*lines[:-2], lines[-1]]) if last_data_line else "")


def test_text_that_is_no_form_is_refused() -> None:
    with pytest.raises(PaperFormError):
        from_paper("hello\nworld")
