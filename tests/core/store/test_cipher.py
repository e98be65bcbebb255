"""Column encryption: ChaCha20-Poly1305 bound to table, column and row."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.core.store import CiphertextRejected, DataKey
from node.core.store.cipher import Cell, ColumnCipher

KEY = DataKey(bytes(range(32)))
CELL = Cell("case_versions", "document", ("0190a5c4-0000-7000-8000-000000000001", "1"))


@given(st.binary(max_size=300))
@settings(max_examples=50)
def test_round_trip(plaintext: bytes) -> None:
    cipher = ColumnCipher(KEY)
    assert cipher.decrypt(cipher.encrypt(plaintext, CELL), CELL) == plaintext


def test_json_round_trip_keeps_every_script() -> None:
    cipher = ColumnCipher(KEY)
    value = {"name": "Nasrin ناصری", "place": "Nairobi", "story": "Ананд 安南 ✊"}
    assert cipher.decrypt_json(cipher.encrypt_json(value, CELL), CELL) == value


def test_same_value_encrypts_differently_each_time() -> None:
    cipher = ColumnCipher(KEY)
    assert cipher.encrypt(b"same", CELL) != cipher.encrypt(b"same", CELL)


def test_lengths_are_padded_to_64_bytes() -> None:
    cipher = ColumnCipher(KEY)
    short = cipher.encrypt_text("Ana", CELL)
    longer = cipher.encrypt_text("Ana María Quispe Mamani de la Cruz", CELL)
    assert len(short) == len(longer)
    assert len(cipher.encrypt(b"x" * 64, CELL)) > len(short)


@pytest.mark.parametrize(
    "elsewhere",
    [
        Cell("case_versions", "document", ("0190a5c4-0000-7000-8000-000000000002", "1")),
        Cell("case_versions", "document", ("0190a5c4-0000-7000-8000-000000000001", "2")),
        Cell("case_versions", "author", CELL.row),
        Cell("campaigns", "document", CELL.row),
    ],
)
def test_value_moved_to_another_cell_is_rejected(elsewhere: Cell) -> None:
    cipher = ColumnCipher(KEY)
    stored = cipher.encrypt(b"a narrative", CELL)
    with pytest.raises(CiphertextRejected, match="moved from another row"):
        cipher.decrypt(stored, elsewhere)


@given(st.data())
@settings(max_examples=50)
def test_any_flipped_byte_is_rejected(data: st.DataObject) -> None:
    cipher = ColumnCipher(KEY)
    stored = bytearray(cipher.encrypt(b"a narrative", CELL))
    position = data.draw(st.integers(0, len(stored) - 1))
    stored[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(CiphertextRejected):
        cipher.decrypt(bytes(stored), CELL)


def test_another_key_cannot_decrypt() -> None:
    stored = ColumnCipher(KEY).encrypt(b"a narrative", CELL)
    with pytest.raises(CiphertextRejected, match="another data key"):
        ColumnCipher(DataKey.generate()).decrypt(stored, CELL)


def test_error_names_the_cell_but_not_the_content() -> None:
    cipher = ColumnCipher(KEY)
    stored = cipher.encrypt(b"Maria Quispe", CELL)
    with pytest.raises(CiphertextRejected) as raised:
        cipher.decrypt(stored, Cell("case_versions", "document", ("other", "1")))
    assert "case_versions.document" in str(raised.value)
    assert "Maria" not in str(raised.value)


def test_truncated_value_is_rejected() -> None:
    with pytest.raises(CiphertextRejected, match="not an encrypted value"):
        ColumnCipher(KEY).decrypt(b"\x01short", CELL)


def test_lookup_tags_are_stable_per_key_and_purpose_and_hide_the_value() -> None:
    cipher = ColumnCipher(KEY)
    tag = cipher.lookup_tag("import-key", ["Casos", "BOG-001"])
    assert tag == ColumnCipher(KEY).lookup_tag("import-key", ["Casos", "BOG-001"])
    assert len(tag) == 32 and b"BOG-001" not in tag
    assert tag != cipher.lookup_tag("import-key", ["Casos", "BOG-002"])
    assert tag != cipher.lookup_tag("import-row", ["Casos", "BOG-001"])
    assert tag != ColumnCipher(DataKey.generate()).lookup_tag("import-key", ["Casos", "BOG-001"])
