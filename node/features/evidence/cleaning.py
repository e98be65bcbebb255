"""Working copies without identifying metadata, made by mat2 (decision 0019).

mat2 is run as a command (Debian package ``mat2``): its library needs GObject introspection
bindings (Poppler, GdkPixbuf, GExiv2) that exist as Debian packages for the system Python, not as
wheels for the node's virtual environment. It picks its parser by file name, so the plaintext is
written under the extension sniffed from the content. What it would remove is read first with
``mat2 --show``; only the *names* of those fields are kept (``GPSLatitude``, ``author``), never
their values.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

MAT2: Final = "mat2"
TIMEOUT_SECONDS: Final = 600
_MEMBER: Final = re.compile(r"^\s*\[\+\+\] Metadata for (.+):\s*$")
_FIELD: Final = re.compile(r"^\s+([^\s\[].*?):\s")  # up to the first ": " (names hold ":")
# Fields mat2 lists that say nothing about who made the file or where (the format's version);
# archive members' timestamps are kept, as they do say when.
_NOT_IDENTIFYING: Final = frozenset({"ExifByteOrder", "format"})


@dataclass(frozen=True)
class Cleaned:
    """mat2's result: the cleaned file (None when it could not clean this kind of file) and the
    names of the metadata fields it removed; ``reason`` says why there is no file."""

    path: Path | None
    removed: tuple[str, ...]
    reason: str = ""


def removed_fields(show_output: str) -> tuple[str, ...]:
    """The field names in ``mat2 --show`` output; a field of a file inside an archive (an
    office document's parts) is named ``part: field``."""
    names: list[str] = []
    member = ""
    for line in show_output.splitlines():
        if found := _MEMBER.match(line):
            member = found.group(1)
            continue
        if (field := _FIELD.match(line)) and not line.lstrip().startswith("[+]"):
            name = field.group(1).strip()
            if name in _NOT_IDENTIFYING:
                continue
            named = f"{member}: {name}" if member else name
            if named not in names:
                names.append(named)
    return tuple(names)


def mat2_available() -> bool:
    return shutil.which(MAT2) is not None


async def _run(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        MAT2, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        return -1, ""
    return process.returncode or 0, output.decode("utf-8", "replace")


async def clean_with_mat2(plain: Path) -> Cleaned:
    """Clean ``plain`` (named with its real extension) into ``<stem>.cleaned.<ext>`` beside it.
    The original file is left as it was."""
    if not mat2_available():
        return Cleaned(None, (), "unavailable")
    status, shown = await _run("--show", str(plain))
    if status != 0:
        return Cleaned(None, (), "unsupported")
    removed = removed_fields(shown)
    status, _ = await _run(str(plain))
    cleaned = plain.with_name(f"{plain.stem}.cleaned{plain.suffix}")
    if status != 0 or not cleaned.exists():
        return Cleaned(None, removed, "failed")
    return Cleaned(cleaned, removed)
