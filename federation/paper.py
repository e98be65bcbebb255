"""Paper forms: a small secret as text a person can print, keep offline and type back.

Used for the organisation's revocation key (already locked with a passphrase; the form adds no
protection, only a way to survive on paper). The bytes are written in base32 (letters and the
digits 2-7, so no 0/O or 1/I to confuse), in numbered lines of six groups of five characters;
each line ends with two check characters over its number and content, so a typing mistake is
reported with its line. A last ``SUM`` line gives the length and a checksum of the whole.
Reading forgives case, spaces, and the look-alikes 0, 1 and 8 (read as O, I and B). Lines that
start with ``#`` and the title line are notes for people and are ignored. Pure code.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence

TITLE = "MINGA PAPER FORM 1"
_GROUP = 5
_GROUPS_PER_LINE = 6
_LINE_CHARS = _GROUP * _GROUPS_PER_LINE
_LOOK_ALIKES = str.maketrans({"0": "O", "1": "I", "8": "B"})
_DATA_LINE = re.compile(r"^(\d{1,3})\s+([A-Z2-7 ]+?)\s+([A-Z2-7]{2})$")
_CHECKSUM = re.compile(r"^[A-Z2-7]{8}$")


class PaperFormError(ValueError):
    """The text is not a complete, unaltered paper form; the message says where."""


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


def _line_check(number: int, chars: str) -> str:
    return _b32(hashlib.sha256(b"minga/paper/line/v1|%d|" % number + chars.encode()).digest())[:2]


def _sum(data: bytes) -> str:
    return _b32(hashlib.sha256(b"minga/paper/sum/v1|" + data).digest())[:8]


def to_paper(data: bytes, notes: Sequence[str] = ()) -> str:
    """``data`` as a paper form, with ``notes`` (one line each) written above it."""
    if not data:
        raise ValueError("nothing to write on a paper form")
    text = _b32(data)
    lines = [TITLE, *(f"# {note}" for note in notes)]
    for index, start in enumerate(range(0, len(text), _LINE_CHARS), 1):
        chars = text[start : start + _LINE_CHARS]
        groups = " ".join(chars[i : i + _GROUP] for i in range(0, len(chars), _GROUP))
        lines.append(f"{index:02d}  {groups}  {_line_check(index, chars)}")
    checksum = _sum(data)
    lines.append(f"SUM {len(data)} {checksum[:4]}-{checksum[4:]}")
    return "\n".join(lines) + "\n"


def is_paper_form(text: str) -> bool:
    return TITLE in text


def from_paper(text: str) -> bytes:
    """The bytes on a paper form (as printed, or typed back); :class:`PaperFormError` if not."""
    chars: list[str] = []
    expected_number = 1
    total: tuple[int, str] | None = None
    for raw in text.splitlines():
        line = " ".join(raw.strip().upper().split())
        if not line or line.startswith("#") or _is_title(line):
            continue
        if total is not None:
            raise PaperFormError("there is text after the SUM line")
        if line.startswith("SUM"):
            total = _read_sum(line)
            continue
        number_text, _, rest = line.partition(" ")
        data = _DATA_LINE.match(f"{number_text} {rest.translate(_LOOK_ALIKES)}")
        if data is None:
            raise PaperFormError(f"line {expected_number:02d}: not a line of the form")
        number = int(data.group(1))
        if number != expected_number:
            raise PaperFormError(f"line {expected_number:02d} is missing (found {number:02d})")
        content = data.group(2).replace(" ", "")
        if _line_check(number, content) != data.group(3):
            raise PaperFormError(f"line {number:02d}: a character is wrong (check does not match)")
        chars.append(content)
        expected_number += 1
    if total is None:
        raise PaperFormError("the SUM line at the end is missing")
    joined = "".join(chars)
    try:
        decoded = base64.b32decode(joined + "=" * (-len(joined) % 8))
    except ValueError:
        raise PaperFormError("the lines do not make whole bytes; is a line missing?") from None
    if len(decoded) != total[0] or _sum(decoded) != total[1]:
        raise PaperFormError("the whole form does not match its SUM line; is a line missing?")
    return decoded


def _read_sum(line: str) -> tuple[int, str]:
    _, length, checksum = [*line.split(" ", 2), "", ""][:3]
    checksum = checksum.replace("-", "").replace(" ", "").translate(_LOOK_ALIKES)
    if not length.isdigit() or not _CHECKSUM.match(checksum):
        raise PaperFormError("the SUM line should read: SUM <length> XXXX-XXXX")
    return int(length), checksum


def _is_title(line: str) -> bool:
    return line.translate(_LOOK_ALIKES) == TITLE.translate(_LOOK_ALIKES)
