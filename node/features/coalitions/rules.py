"""What a coalition's name, a room id and a node's Matrix account must look like: the same
checks for the API and the page (pure)."""

from __future__ import annotations

import re
from typing import Final

from schemas.common import MATRIX_USER_ID_PATTERN

MAX_NAME: Final = 200
MAX_MATRIX_ID: Final = 255
ROOM_ID_PATTERN: Final = r"^![!-~]{1,254}$"


def clean_name(value: str) -> str:
    """The name as kept: surrounding spaces dropped."""
    return value.strip()


def name_ok(value: str) -> bool:
    return 0 < len(clean_name(value)) <= MAX_NAME


def matrix_user_ok(value: str) -> bool:
    """A Matrix user id like ``@node:server`` (what ``minga coalition invite`` accepts)."""
    return len(value) <= MAX_MATRIX_ID and re.fullmatch(MATRIX_USER_ID_PATTERN, value) is not None


def room_id_ok(value: str) -> bool:
    """A Matrix room id like ``!abc:server`` (room version 12 ids have no server part)."""
    return re.fullmatch(ROOM_ID_PATTERN, value) is not None
