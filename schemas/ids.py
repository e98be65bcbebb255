"""Record ids: UUIDv7 (RFC 9562 §5.7), written in the canonical lowercase hyphenated form.

Layout (128 bits): 48-bit Unix time in milliseconds, 4-bit version (7), 12 random bits
(``rand_a``), 2-bit variant (``10``), 62 random bits (``rand_b``). Ids sort by creation time,
which keeps store indexes compact; the random part makes them unguessable enough to be unique
across nodes without coordination.
"""

from __future__ import annotations

import os
import re
import time
from typing import Annotated

from pydantic import AfterValidator, StrictStr, WithJsonSchema

RANDOM_BYTES = 10  # 80 bits drawn, 74 used
MAX_UNIX_MS = 2**48 - 1

UUID7_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
_UUID7 = re.compile(UUID7_PATTERN)


class RecordIdError(ValueError):
    """Bad input for building a record id."""


def new_record_id(unix_ms: int | None = None, random_bytes: bytes | None = None) -> str:
    """A fresh UUIDv7. Reads the clock / ``os.urandom`` only for the arguments not given."""
    if unix_ms is None:
        unix_ms = time.time_ns() // 1_000_000
    if random_bytes is None:
        random_bytes = os.urandom(RANDOM_BYTES)
    if not 0 <= unix_ms <= MAX_UNIX_MS:
        raise RecordIdError("unix_ms must fit in 48 bits")
    if len(random_bytes) != RANDOM_BYTES:
        raise RecordIdError(f"random_bytes must be exactly {RANDOM_BYTES} bytes")
    rand = int.from_bytes(random_bytes, "big")
    rand_a = rand >> 68  # top 12 bits
    rand_b = rand & (2**62 - 1)  # low 62 bits
    value = (unix_ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    hex_digits = f"{value:032x}"
    return "-".join(
        (hex_digits[:8], hex_digits[8:12], hex_digits[12:16], hex_digits[16:20], hex_digits[20:])
    )


def is_uuid7(value: object) -> bool:
    """True for a UUIDv7 in canonical lowercase hyphenated form (the only form Minga writes)."""
    return isinstance(value, str) and _UUID7.match(value) is not None


def uuid7_unix_ms(record_id: str) -> int:
    """The creation time embedded in a UUIDv7, in Unix milliseconds."""
    if not is_uuid7(record_id):
        raise RecordIdError("not a canonical UUIDv7")
    return int(record_id.replace("-", "")[:12], 16)


def _check_uuid7(value: str) -> str:
    if not is_uuid7(value):
        raise ValueError("must be a UUIDv7 in lowercase hyphenated form")
    return value


RecordId = Annotated[
    StrictStr,
    AfterValidator(_check_uuid7),
    WithJsonSchema({"type": "string", "pattern": UUID7_PATTERN}),
]
