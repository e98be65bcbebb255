"""How a file travels to another member: the pure part (docs/decisions/0022-evidence-sharing.md).

The sending node seals the chosen copy of a file under a fresh key for each recipient, with the
chunked AEAD of :mod:`.chunks` (so a homeserver holds only ciphertext), cuts the sealed stream
into *parts* of :data:`PART_CHUNKS` whole chunks and puts each part in the homeserver's media
repository. A :class:`SharedFile` describes the file in the case's signed record, sent to that
recipient alone: name, type, size, the SHA-256 of the plaintext, which copy, the key, and each
part's ``mxc://`` address, size and SHA-256. The record is sealed to the recipient, so nobody
else learns the key; the signature covers the hashes, so the receiver can check every part as
it arrives and the whole file at the end.

A receiver fetches the parts in order and keeps each one as soon as it checks, so an interrupted
transfer starts again at the first part it does not have.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from federation.canonical import MAX_SAFE_INTEGER
from node.features.evidence.chunks import CHUNK_SIZE, TAG_SIZE, sealed_size
from node.features.evidence.custody import SHA256_HEX, Copy

PART_CHUNKS: Final = 4
"""Chunks per uploaded part of a small file: 4 MiB of plaintext."""
MAX_PART_CHUNKS: Final = 16
"""Chunks per part at most (16 MiB, well under a homeserver's usual upload limit): a large file
goes in about :data:`PARTS_FOR_LARGE` parts, since every part costs a request on each
homeserver, while a small one still goes in several, so that a transfer cut short loses
little."""
PARTS_FOR_LARGE: Final = 8
PART_BYTES: Final = PART_CHUNKS * (CHUNK_SIZE + TAG_SIZE)
MAX_PART_BYTES: Final = MAX_PART_CHUNKS * (CHUNK_SIZE + TAG_SIZE)
MAX_PARTS: Final = 4096  # 16 GiB: beyond any node's size limit
MAX_FILES: Final = 50
"""Files one record may announce (the sharing API accepts as many per recipient)."""
TRANSFER_AD: Final = b"minga/evidence-transfer/v1"
"""Associated data of a file in transit; the key is fresh per file and recipient."""
MXC: Final = r"^mxc://[A-Za-z0-9.:\-\[\]]{1,255}/[A-Za-z0-9_\-]{1,255}$"
B64U_KEY: Final = r"^[A-Za-z0-9_-]{43}$"


class Status(StrEnum):
    PENDING = "pending"
    STORED = "stored"
    QUARANTINED = "quarantined"
    REMOVED = "removed"


class Reason(StrEnum):
    """Why a received file was quarantined: stable and content-free, like sync's reasons."""

    MALFORMED = "malformed"
    """The record's description of the file does not parse."""
    PART_SIZE = "part-size-mismatch"
    PART_HASH = "part-hash-mismatch"
    DOES_NOT_DECRYPT = "does-not-decrypt"
    SHA256 = "sha256-mismatch"
    SIZE = "size-mismatch"
    TOO_LARGE = "too-large"
    """Larger than this node accepts ([evidence] max_file_mb), or beyond the files a record
    may announce (:data:`MAX_FILES`)."""


class FilePart(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    url: Annotated[str, Field(pattern=MXC)]
    size: Annotated[int, Field(ge=TAG_SIZE, le=MAX_PART_BYTES)]
    sha256: Annotated[str, Field(pattern=SHA256_HEX)]


class SharedFile(BaseModel):
    """One file as its recipient's signed record describes it (``claims["attachments"][i]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: Annotated[str, Field(min_length=1, max_length=200)]
    media_type: Annotated[str, Field(min_length=3, max_length=127, pattern=r"^[\w.+-]+/[\w.+-]+$")]
    size: Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]
    sha256: Annotated[str, Field(pattern=SHA256_HEX)]
    copy_kind: Annotated[Literal["original", "working"], Field(alias="copy")]
    original_sha256: Annotated[str, Field(pattern=SHA256_HEX)]
    key: Annotated[str, Field(pattern=B64U_KEY)]
    parts: Annotated[list[FilePart], Field(min_length=1, max_length=MAX_PARTS)]

    def wire(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True)

    @property
    def sealed_size(self) -> int:
        return sum(part.size for part in self.parts)


def parse_shared_file(value: object) -> SharedFile | None:
    """The description, or ``None`` if it is not one (the file is then quarantined)."""
    try:
        shared = SharedFile.model_validate(value)
    except ValidationError:
        return None
    return shared if shared.sealed_size == sealed_size(shared.size) else None


@dataclass(frozen=True)
class FileChoice:
    """A file staff chose for one recipient, and which copy of it."""

    attachment_id: str
    copy: Copy = Copy.WORKING


def part_bytes(plain_size: int) -> int:
    """The size of the sealed parts of a file of ``plain_size`` bytes (the last may be less)."""
    chunks = -(-plain_size // CHUNK_SIZE)
    per_part = min(MAX_PART_CHUNKS, max(PART_CHUNKS, -(-chunks // PARTS_FOR_LARGE)))
    return per_part * (CHUNK_SIZE + TAG_SIZE)


def cut_parts(buffer: bytearray, *, final: bool, size: int = PART_BYTES) -> Iterable[bytes]:
    """Whole parts of ``size`` bytes taken from the front of ``buffer`` (all that is left when
    ``final``)."""
    while len(buffer) >= size or (final and buffer):
        part = bytes(buffer[:size])
        del buffer[:size]
        yield part


def check_part(expected: FilePart, data: bytes) -> Reason | None:
    if len(data) != expected.size:
        return Reason.PART_SIZE
    if hashlib.sha256(data).hexdigest() != expected.sha256:
        return Reason.PART_HASH
    return None

