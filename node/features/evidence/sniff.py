"""What a file is, from its first bytes, never from its name.

``filetype`` (pure Python, no dependencies) matches magic numbers in the first
:data:`SNIFF_BYTES` bytes, including the office formats inside a ZIP. It was chosen over libmagic
(``python-magic``) so that recognising a hostile file never runs a C parser inside the node
process, and so that nothing beyond a Python package is needed to install it
(docs/decisions/0019-evidence-files.md). A file it does not know is plain text when its first
bytes are UTF-8 without control characters, else ``application/octet-stream``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import filetype  # type: ignore[import-untyped]

SNIFF_BYTES: Final = 8192
UNKNOWN: Final = "application/octet-stream"
_TEXT_CONTROLS: Final = frozenset(range(32)) - {9, 10, 12, 13}


@dataclass(frozen=True)
class FileType:
    media_type: str
    extension: str  # without the dot; what a tool that goes by names (mat2) needs

    @property
    def is_image(self) -> bool:
        return self.media_type in {"image/jpeg", "image/png", "image/gif", "image/webp"}


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        # a multi-byte character cut by the end of the sample is still text
        if error.start < len(head) - 3:
            return False
        text = head[: error.start].decode("utf-8")
    return not any(ord(char) in _TEXT_CONTROLS for char in text)


def sniff(head: bytes) -> FileType:
    """The type of a file whose first bytes are ``head`` (up to :data:`SNIFF_BYTES`)."""
    found = filetype.guess(head[:SNIFF_BYTES])
    if found is not None:
        return FileType(found.mime, found.extension)
    if _looks_like_text(head[:SNIFF_BYTES]):
        return FileType("text/plain", "txt")
    return FileType(UNKNOWN, "bin")
