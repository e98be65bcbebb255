"""Files on their way out: sealed part by part, each part uploaded as soon as it is sealed, the
last few to addresses reserved first, so that the signed record can travel while they upload
(docs/decisions/0026-evidence-share-speed.md).

A share's copies are sealed one after the other, in a thread, under a fresh key each; a part
starts uploading as soon as it is sealed, :data:`UPLOADS_AT_ONCE` at a time (memory holds only
those and the one being sealed). The record can be signed once every part is sealed (its hash
known) and has an address: the parts uploaded already, and the last :data:`RESERVE_AT_MOST` of
the share, whose addresses were reserved before sealing began (asynchronous uploads, Matrix
1.7; a homeserver that does not offer them, or refuses more reservations, gets every part
before the record). As many parts upload at once as are reserved, so when the last part is
sealed the parts still uploading are the reserved ones. The record goes before they are in only
if, at the upload speed seen so far, they will be within :data:`ANNOUNCE_WITHIN_SECONDS`: a
receiver's homeserver waits for a reserved address for a while (``timeout_ms``) and then counts
the sender's server as failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import IO, Final

from federation.encoding import b64u_encode
from federation.transport import MatrixTransport, TransportError
from node.core.runtime import Node
from node.features.evidence.attachments import Attachment
from node.features.evidence.chunks import (
    CHUNK_SIZE,
    TAG_SIZE,
    ChunkCipher,
    ChunkRejected,
    chunk_count,
    new_file_key,
    sealed_size,
)
from node.features.evidence.custody import Copy
from node.features.evidence.service import EvidenceError, associated_data, copy_path
from node.features.evidence.transfer import TRANSFER_AD, SharedFile, part_bytes

log = logging.getLogger("minga.evidence")

UPLOADS_AT_ONCE: Final = 4
"""Parts uploading at once (each held in memory while it uploads); as many as are reserved."""
UPLOAD_ATTEMPTS: Final = 3
RESERVE_AT_MOST: Final = 4
"""Addresses reserved per share: Synapse lets an account hold five not yet uploaded."""
ANNOUNCE_WITHIN_SECONDS: Final = 5.0
"""The record goes before its last parts are uploaded only if they will be within this time."""
_FILLER: Final = b"\0"
"""Put at a reserved address that will not get its part, so that it is not left pending (a
receiver then finds a part of the wrong size and quarantines the file at once)."""


class EvidenceDamaged(EvidenceError):
    """A stored copy no longer opens or matches its hash: it is not shared."""


@dataclass
class OutgoingPart:
    size: int
    sha256: str
    url: str | None = None
    reserved: bool = False
    uploaded: bool = False


@dataclass
class OutgoingCopy:
    """One copy of one file for one recipient, sealed under its own key."""

    attachment: Attachment
    copy: Copy
    key: bytes = b""
    sha256: str = ""
    size: int = 0
    parts: list[OutgoingPart] = field(default_factory=list)

    def description(self) -> SharedFile:
        """What the recipient's signed record says of it (every part has its address)."""
        attachment = self.attachment
        name = attachment.name if self.copy is Copy.ORIGINAL else f"cleaned-{attachment.name}"
        return SharedFile.model_validate({
            "name": name, "media_type": attachment.media_type, "size": self.size,
            "sha256": self.sha256, "copy": self.copy.value,
            "original_sha256": attachment.sha256, "key": b64u_encode(self.key),
            "parts": [{"url": part.url, "size": part.size, "sha256": part.sha256}
                      for part in self.parts]})


def copy_size(attachment: Attachment, copy: Copy) -> int:
    working = attachment.working if copy is Copy.WORKING else None
    return working.size if working is not None else attachment.size


def part_count(plain_size: int) -> int:
    return -(-sealed_size(plain_size) // part_bytes(plain_size))


class _Sealing:
    """In a thread: opens a stored copy and seals it under a fresh key, one part at a time,
    chunk by chunk (their count is known from the copy's size: a stored copy cut short or
    extended does not open)."""

    def __init__(self, node: Node, outgoing: OutgoingCopy) -> None:
        attachment, copy = outgoing.attachment, outgoing.copy
        key = attachment.key
        if copy is Copy.WORKING and attachment.working is not None:
            key = attachment.working.key
        self._opener = ChunkCipher(key, associated_data(attachment.attachment_id, copy))
        self.key = new_file_key()
        self._sealer = ChunkCipher(self.key, TRANSFER_AD)
        size = copy_size(attachment, copy)
        self._chunks = chunk_count(size)
        self._per_part = part_bytes(size) // (CHUNK_SIZE + TAG_SIZE)
        self._next = 0
        self.digest, self.size = hashlib.sha256(), 0
        self._source: IO[bytes] = copy_path(node, attachment.attachment_id, copy).open("rb")

    def next_part(self) -> tuple[OutgoingPart, bytes] | None:
        """The next part and its bytes; ``None`` at the end (``ChunkRejected`` if the stored
        copy was altered)."""
        if self._next >= self._chunks:
            if self._source.read(1):
                raise ChunkRejected("the stored copy is longer than it was")
            return None
        sealed: list[bytes] = []
        for index in range(self._next, min(self._next + self._per_part, self._chunks)):
            final = index == self._chunks - 1
            plain = self._opener.open(index, self._source.read(CHUNK_SIZE + TAG_SIZE),
                                      final=final)
            self.digest.update(plain)
            self.size += len(plain)
            sealed.append(self._sealer.seal(index, plain, final=final))
            self._next = index + 1
        part = b"".join(sealed)
        return OutgoingPart(len(part), hashlib.sha256(part).hexdigest()), part

    def close(self) -> None:
        self._source.close()


class Uploads:
    """The copies of one share on their way to the homeserver (see the module docstring).

    Use as: :meth:`reserve`, :meth:`add` each copy, :meth:`ready_to_announce`, share the
    record, :meth:`finish`; :meth:`close` always (it stops what is left)."""

    def __init__(self, node: Node, transport: MatrixTransport) -> None:
        self._node, self._transport = node, transport
        self._slots = asyncio.Semaphore(UPLOADS_AT_ONCE)
        self._uploading: list[tuple[OutgoingPart, asyncio.Task[None]]] = []
        self._copies: list[OutgoingCopy] = []
        self._reserved: list[str] = []
        self._first_upload_at: float | None = None
        self._uploaded_bytes = 0

    async def reserve(self, count: int) -> int:
        """Reserve up to ``count`` addresses; how many were (none where the homeserver does
        not offer asynchronous uploads or holds too many reservations of this account)."""
        for _ in range(count):
            try:
                self._reserved.append(await self._transport.create_media())
            except TransportError as error:
                log.info("media addresses reserved: %d (%s)", len(self._reserved),
                         error.status or error.operation)
                break
        return len(self._reserved)

    async def add(self, attachment: Attachment, copy: Copy, *,
                  reserved_parts: int = 0) -> OutgoingCopy:
        """Seal one copy, each part's upload started as it is sealed (sealing waits while
        :data:`UPLOADS_AT_ONCE` are uploading); its last ``reserved_parts`` parts go to
        addresses :meth:`reserve` got."""
        outgoing = OutgoingCopy(attachment, copy)
        self._copies.append(outgoing)
        count = part_count(copy_size(attachment, copy))
        sealing = _Sealing(self._node, outgoing)
        try:
            while (sealed := await asyncio.to_thread(sealing.next_part)) is not None:
                part, data = sealed
                if len(outgoing.parts) >= count - reserved_parts and self._reserved:
                    part.url, part.reserved = self._reserved.pop(0), True
                outgoing.parts.append(part)
                await self._slots.acquire()  # released when the upload ends
                self._uploading.append((part, asyncio.create_task(self._upload(part, data))))
        except ChunkRejected:
            raise EvidenceDamaged("a stored copy was altered on this node's disk; it is not"
                                  " shared (check the evidence package of the original)") from None
        finally:
            sealing.close()
        outgoing.key, outgoing.sha256, outgoing.size = (
            sealing.key, sealing.digest.hexdigest(), sealing.size)
        if (outgoing.sha256, outgoing.size) != _expected(attachment, copy):
            raise EvidenceDamaged("a stored copy does not match its hash; it is not shared")
        return outgoing

    async def _upload(self, part: OutgoingPart, data: bytes) -> None:
        try:
            if self._first_upload_at is None:
                self._first_upload_at = time.monotonic()
            for attempt in range(UPLOAD_ATTEMPTS):
                try:
                    if part.reserved:
                        assert part.url is not None
                        await self._transport.upload_to(part.url, data)
                    else:
                        part.url = await self._transport.upload(data)
                    break
                except TransportError as error:
                    if part.reserved and error.status == "M_CANNOT_OVERWRITE_MEDIA":
                        break  # an attempt before this one arrived; its answer did not
                    if attempt == UPLOAD_ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(2**attempt)
            part.uploaded = True
            self._uploaded_bytes += part.size
        finally:
            self._slots.release()

    async def ready_to_announce(self) -> None:
        """Wait until the record may go: every part not at a reserved address uploaded, and
        the rest due within :data:`ANNOUNCE_WITHIN_SECONDS` at the speed seen so far (or
        uploaded too). Raises the first upload's ``TransportError``."""
        await asyncio.gather(*[task for part, task in self._uploading if not part.reserved])
        while True:
            left = [(part, task) for part, task in self._uploading if not part.uploaded]
            for _, task in left:
                if task.done():
                    task.result()  # failed before the record went: nothing is sent
            if not left:
                return
            if self._first_upload_at is not None and self._uploaded_bytes:
                rate = self._uploaded_bytes / max(time.monotonic() - self._first_upload_at,
                                                  1e-3)
                if sum(part.size for part, _ in left) / rate <= ANNOUNCE_WITHIN_SECONDS:
                    return
            done, _ = await asyncio.wait([task for _, task in left],
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()

    async def finish(self) -> list[OutgoingCopy]:
        """After the record went: wait for the parts still uploading. A part the homeserver
        will not take gets a one-byte filler at its reserved address (the recipient then
        quarantines the file instead of waiting for it); the copies that failed."""
        results = await asyncio.gather(*[task for _, task in self._uploading],
                                       return_exceptions=True)
        failed = [(part, result) for (part, _), result in zip(self._uploading, results,
                                                               strict=True)
                  if isinstance(result, BaseException)]
        for part, result in failed:
            log.warning("a part of a shared file did not upload after the record went: %s",
                        result)
            await self._fill(part)
        return [copy for copy in self._copies
                if any(part in copy.parts for part, _ in failed)]

    async def _fill(self, part: OutgoingPart) -> None:
        if part.reserved and not part.uploaded and part.url is not None:
            with contextlib.suppress(TransportError):
                await self._transport.upload_to(part.url, _FILLER)
                part.uploaded = True

    async def close(self) -> None:
        """Stop the uploads left (a failed share) and free the reserved addresses not used."""
        for _, task in self._uploading:
            task.cancel()
        await asyncio.gather(*[task for _, task in self._uploading], return_exceptions=True)
        for part, _ in self._uploading:
            await self._fill(part)
        for url in self._reserved:
            await self._fill(OutgoingPart(0, "", url=url, reserved=True))
        self._reserved.clear()


def _expected(attachment: Attachment, copy: Copy) -> tuple[str, int]:
    working = attachment.working if copy is Copy.WORKING else None
    if working is not None:
        return working.sha256, working.size
    return attachment.sha256, attachment.size


def reservations(counts: list[int], available: int) -> list[int]:
    """Of ``available`` reserved addresses, how many go to the last parts of each copy (in
    the order sealed), the share's last parts first."""
    given = [0] * len(counts)
    for index in reversed(range(len(counts))):
        given[index] = min(counts[index], available)
        available -= given[index]
    return given
