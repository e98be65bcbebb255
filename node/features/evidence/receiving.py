"""Files that arrive with shared cases: noted in the inbox's transaction, fetched beside it.

The record handler (:func:`on_record`) runs in the inbox transaction and never waits on the
network: it notes each file a verified case record announces (``pending``), and a retraction
removes the files of its target. The fetch duty (:func:`fetch_duty`) downloads pending files
part by part from the homeserver's media repository (a few parts in flight), checks each
part's size and SHA-256 against the signed record and keeps it, in order, with the count of
parts done, so an interrupted transfer resumes at the part where it stopped. A complete file
is opened with its transit key, its SHA-256 and size checked, and sealed again under a key of
this node (the evidence store). Any mismatch quarantines the file with a stable reason, also
listed with the sync quarantine (``file-<reason>``), and nothing of it is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from federation.consent import ATTACHMENTS
from federation.encoding import EncodingError, b64u_decode
from federation.transport import MatrixTransport, TransportError
from node.core.runtime import Node
from node.core.store.ids import utc_now
from node.core.store.received import ReceivedRepository
from node.features.evidence.chunks import (
    CHUNK_SIZE,
    TAG_SIZE,
    ChunkCipher,
    ChunkOpener,
    ChunkRejected,
    chunk_count,
    new_file_key,
)
from node.features.evidence.received_files import ReceivedFile, ReceivedFiles
from node.features.evidence.service import evidence_dir
from node.features.evidence.transfer import (
    MAX_FILES,
    TRANSFER_AD,
    FilePart,
    Reason,
    SharedFile,
    Status,
    check_part,
    parse_shared_file,
)
from sync.host import Quarantined, VerifiedRecord, after_commit
from sync.quarantine import quarantine

log = logging.getLogger("minga.evidence")

RETRY_SECONDS: Final = 5.0
FETCH_AHEAD: Final = 3
"""Parts downloading at once while the one before them is kept; they are still checked and
kept strictly in order, so a transfer cut short resumes at the first part not kept. Memory
holds at most this many parts and two more (one being kept, one being resealed)."""
IDLE_SECONDS: Final = 30.0
AUDIT_RECEIVED: Final = "evidence.receive"
AUDIT_REMOVED: Final = "evidence.remove"


def received_associated_data(file_id: str) -> bytes:
    return f"minga/evidence/v1|{file_id}|received".encode()


def received_path(node: Node, file_id: str) -> Path:
    return evidence_dir(node) / f"received-{file_id}"


def transfer_path(node: Node, file_id: str) -> Path:
    return evidence_dir(node) / f"transfer-{file_id}"


@dataclass
class FetchSignal:
    """A node part: wakes the fetch duty when a record announced files."""

    event: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        self.event.set()


# --- in the inbox transaction -----------------------------------------------------------------


async def on_record(session: AsyncSession, node: Node, record: VerifiedRecord) -> None:
    if record.kind == "retraction":
        await _on_retraction(session, node, record)
    elif record.kind == "case" and isinstance(record.claims.get(ATTACHMENTS), list):
        await _on_case(session, node, record)


async def _on_case(session: AsyncSession, node: Node, record: VerifiedRecord) -> None:
    received = ReceivedRepository(session, node.store.cipher, utc_now)
    latest = await received.latest(record.issuer, record.record_id)
    if latest is not None and latest.retracted:
        return  # retracted before its files could come: nothing to fetch
    files = ReceivedFiles(session, node.store.cipher)
    now = int(time.time())
    added = False
    limit = node.config.evidence.max_file_bytes
    for position, description in enumerate(record.claims[ATTACHMENTS]):
        shared = parse_shared_file(description)
        refused = _refused(shared, position, limit)
        entry = ReceivedFile(
            file_id=str(uuid.uuid4()), issuer=record.issuer, record_id=record.record_id,
            version=record.version, position=position,
            status=Status.PENDING if refused is None else Status.QUARANTINED,
            reason=None if refused is None else refused.value,
            size=shared.size if shared is not None else 0, parts_done=0, received_at=now,
            shared=shared, room_id=record.room_id, event_id=record.event_id)
        if await files.add(entry, description if refused is None else None):
            added = added or refused is None
            if refused is not None:
                _quarantine_entry(session, entry, refused)
    if added:
        after_commit(session, node.part(FetchSignal).wake)


def _refused(shared: SharedFile | None, position: int, limit: int) -> Reason | None:
    if shared is None:
        return Reason.MALFORMED
    if position >= MAX_FILES or shared.size > limit:
        return Reason.TOO_LARGE
    return None


async def _on_retraction(session: AsyncSession, node: Node, record: VerifiedRecord) -> None:
    target = record.claims.get("target")
    if not isinstance(target, dict) or target.get("issuer") != record.issuer:
        return
    record_id = target.get("record_id")
    if not isinstance(record_id, str):
        return
    files = ReceivedFiles(session, node.store.cipher)
    now = int(time.time())
    gone: list[str] = []
    for received in await files.of_record(record.issuer, record_id):
        if received.status is not Status.REMOVED:
            await files.remove(received.file_id, now)
            gone.append(received.file_id)
    if gone:
        after_commit(session, lambda: _unlink_all(node, gone))


def _unlink_all(node: Node, file_ids: list[str]) -> None:
    for file_id in file_ids:
        for path in (received_path(node, file_id), transfer_path(node, file_id)):
            _unlink(path)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.chmod(0o600)
        path.unlink()


def _quarantine_entry(session: AsyncSession, received: ReceivedFile, reason: Reason) -> None:
    quarantine(session, Quarantined(
        room_id=received.room_id, event_id=received.event_id, sender=received.issuer,
        reason=f"file-{reason.value}",
        detail=f"file {received.position} of record {received.record_id} version"
               f" {received.version}"), int(time.time() * 1000))


# --- the fetch duty ---------------------------------------------------------------------------


class TransferStopped(Exception):
    """The file was quarantined or removed meanwhile: nothing more to do for it."""


async def fetch_duty(node: Node, transport: MatrixTransport) -> None:
    """Fetch pending files until cancelled; a homeserver outage is retried later."""
    signal = node.part(FetchSignal)
    while True:
        signal.event.clear()
        failed = await fetch_pending(node, transport)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signal.event.wait(),
                                   RETRY_SECONDS if failed else IDLE_SECONDS)


async def fetch_pending(node: Node, transport: MatrixTransport) -> int:
    """One round over every pending file; how many could not be finished (to retry)."""
    async with node.store.read() as tx:
        pending = await ReceivedFiles(tx.session, tx.cipher).pending()
    failed = 0
    for file_id in pending:
        try:
            await fetch_file(node, transport, file_id)
        except TransportError as error:
            failed += 1
            log.info("fetching a received file paused: %s", error.operation)
    return failed


async def _current(node: Node, file_id: str) -> ReceivedFile | None:
    async with node.store.read() as tx:
        received = await ReceivedFiles(tx.session, tx.cipher).get(file_id)
    if received is None or received.status is not Status.PENDING or received.shared is None:
        return None
    return received


async def fetch_file(node: Node, transport: MatrixTransport, file_id: str) -> Status:
    """Fetch what is missing of one file, then check and keep it; ``TransportError`` leaves
    it pending with every part already checked and kept.

    Three things overlap: up to :data:`FETCH_AHEAD` parts download while part *k* is checked,
    appended and counted, and while part *k - 1* is opened and sealed again under this node's
    key (in a thread), so the file is ready soon after its last part arrives. Parts are still
    kept and counted strictly in order."""
    received = await _current(node, file_id)
    if received is None:
        return Status.REMOVED
    shared = received.shared
    assert shared is not None
    partial = transfer_path(node, file_id)
    done = _resume_point(partial, shared, received.parts_done)
    fetching: dict[int, asyncio.Task[bytes]] = {}
    resealing: asyncio.Future[None] | None = None

    def fetch_from(first: int) -> None:
        for ahead in range(first, min(first + FETCH_AHEAD, len(shared.parts))):
            if ahead not in fetching:
                part = shared.parts[ahead]
                fetching[ahead] = asyncio.create_task(
                    transport.download(part.url, max_bytes=part.size))

    try:
        with _Resealer.for_file(node, received) as resealer, partial.open("ab") as out:
            try:
                if done:
                    await asyncio.to_thread(resealer.feed_file, partial)
                for index in range(done, len(shared.parts)):
                    fetch_from(index)
                    data = await _fetched(fetching.pop(index))
                    fetch_from(index + 1)  # the window stays full while this part is kept
                    stopped = await _keep_part(node, received, out, index, data)
                    if stopped is not None:
                        return stopped
                    if resealing is not None:
                        await resealing
                    resealing = asyncio.ensure_future(asyncio.to_thread(resealer.feed, data))
                if resealing is not None:
                    await resealing
                return await _settle(node, received, resealer, partial)
            finally:
                if resealing is not None:  # a thread is not cancelled: let it end first
                    await asyncio.gather(resealing, return_exceptions=True)
    except _Rejected as rejected:
        return await _reject(node, received, rejected.reason)
    finally:
        for task in fetching.values():
            task.cancel()
        await asyncio.gather(*fetching.values(), return_exceptions=True)


class _Rejected(Exception):
    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.value)
        self.reason = reason


async def _fetched(task: asyncio.Task[bytes]) -> bytes:
    try:
        return await task
    except TransportError as error:
        if error.status == "M_TOO_LARGE":
            raise _Rejected(Reason.PART_SIZE) from None
        raise  # an outage: the next round resumes at this part


async def _keep_part(node: Node, received: ReceivedFile, out: Any, index: int,
                     data: bytes) -> Status | None:
    """Check one part and keep it, recording that it is here; a status if the transfer ends."""
    assert received.shared is not None
    reason = await asyncio.to_thread(_check_and_append, received.shared.parts[index], out, data)
    if reason is not None:
        raise _Rejected(reason)
    if not await _progress(node, received.file_id, index + 1):
        _unlink(transfer_path(node, received.file_id))
        return Status.REMOVED
    return None


def _resume_point(partial: Path, shared: SharedFile, parts_done: int) -> int:
    """Where to start: after the parts recorded as done, the file cut back to exactly them
    (a part written but not yet recorded is fetched again)."""
    partial.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    length = sum(part.size for part in shared.parts[:parts_done])
    if not partial.exists() or partial.stat().st_size < length:
        partial.write_bytes(b"")
        return 0
    with partial.open("r+b") as handle:
        handle.truncate(length)
    return parts_done


def _check_and_append(expected: FilePart, out: Any, data: bytes) -> Reason | None:
    """In a thread: the part checked against the record, then appended and synced."""
    reason = check_part(expected, data)
    if reason is None:
        _append(out, data)
    return reason


def _append(out: Any, data: bytes) -> None:
    out.write(data)
    out.flush()
    os.fsync(out.fileno())


async def _progress(node: Node, file_id: str, parts_done: int) -> bool:
    async with node.store.transaction() as tx:
        files = ReceivedFiles(tx.session, tx.cipher)
        current = await files.get(file_id)
        if current is None or current.status is not Status.PENDING:
            return False
        await files.progress(file_id, parts_done, int(time.time()))
    return True


async def _reject(node: Node, received: ReceivedFile, reason: Reason) -> Status:
    _unlink(transfer_path(node, received.file_id))
    async with node.store.transaction() as tx:
        files = ReceivedFiles(tx.session, tx.cipher)
        current = await files.get(received.file_id)
        if current is None or current.status is not Status.PENDING:
            return Status.REMOVED
        await files.quarantined(received.file_id, reason.value, int(time.time()))
        _quarantine_entry(tx.session, received, reason)
    log.warning("a received file was quarantined: file-%s", reason.value)
    return Status.QUARANTINED


async def _sealed_pieces(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while piece := await asyncio.to_thread(source.read, 8 * (CHUNK_SIZE + TAG_SIZE)):
            yield piece


class _Resealer:
    """Opens a file with its transit key and seals it under a new key of this node as its
    sealed bytes come, into a new file; the SHA-256 and size of the plaintext at the end."""

    def __init__(self, node: Node, received: ReceivedFile, transit_key: bytes) -> None:
        assert received.shared is not None
        self.key = new_file_key()
        self.path = evidence_dir(node) / f"incoming-{uuid.uuid4().hex}"
        self._opener = ChunkCipher(transit_key, TRANSFER_AD)
        self._sealer = ChunkCipher(self.key, received_associated_data(received.file_id))
        # chunk by chunk: their count and the last one's size follow from the file's size
        self._chunks = chunk_count(received.shared.size)
        self._last = received.shared.size - (self._chunks - 1) * CHUNK_SIZE + TAG_SIZE
        self._index = 0
        self._carry = b""
        self._digest, self.size = hashlib.sha256(), 0
        self._out = self.path.open("xb")
        self.kept = False

    @classmethod
    @contextlib.contextmanager
    def for_file(cls, node: Node, received: ReceivedFile) -> Iterator[_Resealer]:
        """Raises :class:`_Rejected` if the record's key is not one; the new file is removed
        unless :meth:`keep` moved it into place."""
        assert received.shared is not None
        try:
            transit_key = b64u_decode(received.shared.key)
        except EncodingError:
            raise _Rejected(Reason.MALFORMED) from None
        resealer = cls(node, received, transit_key)
        try:
            yield resealer
        except ChunkRejected:
            raise _Rejected(Reason.DOES_NOT_DECRYPT) from None
        finally:
            resealer._out.close()
            if not resealer.kept:
                _unlink(resealer.path)

    def feed(self, sealed: bytes) -> None:
        """Open and seal again the whole chunks in ``sealed`` (and what came before); a chunk
        cut between two calls waits for the rest (``ChunkRejected`` on any change)."""
        data = memoryview(self._carry + sealed if self._carry else sealed)
        resealed: list[bytes] = []
        while self._index < self._chunks:
            final = self._index == self._chunks - 1
            size = self._last if final else CHUNK_SIZE + TAG_SIZE
            if len(data) < size:
                break
            plain = self._opener.open(self._index, data[:size], final=final)
            self._digest.update(plain)
            self.size += len(plain)
            resealed.append(self._sealer.seal(self._index, plain, final=final))
            data = data[size:]
            self._index += 1
        if self._index == self._chunks and len(data):
            raise ChunkRejected("the file is longer than its record says")
        self._carry = bytes(data)
        self._out.writelines(resealed)

    def feed_file(self, path: Path) -> None:
        with path.open("rb") as source:
            while piece := source.read(8 * (CHUNK_SIZE + TAG_SIZE)):
                self.feed(piece)

    def finish(self) -> str:
        if self._index != self._chunks:
            raise ChunkRejected("the file is shorter than its record says")
        self._out.flush()
        os.fsync(self._out.fileno())
        return self._digest.hexdigest()

    def keep(self, final: Path) -> None:
        os.replace(self.path, final)
        final.chmod(0o400)
        self.kept = True


async def _finish(node: Node, received: ReceivedFile, partial: Path) -> Status:
    """Check and keep a file whose parts are all in ``partial``."""
    try:
        with _Resealer.for_file(node, received) as resealer:
            await asyncio.to_thread(resealer.feed_file, partial)
            return await _settle(node, received, resealer, partial)
    except _Rejected as rejected:
        return await _reject(node, received, rejected.reason)


async def _settle(node: Node, received: ReceivedFile, resealer: _Resealer,
                  partial: Path) -> Status:
    """The last checks (size and SHA-256 against the record), then the file is stored."""
    shared = received.shared
    assert shared is not None
    digest = await asyncio.to_thread(resealer.finish)
    if resealer.size != shared.size:
        raise _Rejected(Reason.SIZE)
    if digest != shared.sha256:
        raise _Rejected(Reason.SHA256)
    final = received_path(node, received.file_id)
    resealer.keep(final)
    _unlink(partial)
    async with node.store.transaction() as tx:
        files = ReceivedFiles(tx.session, tx.cipher)
        current = await files.get(received.file_id)
        if current is None or current.status is not Status.PENDING:
            _unlink(final)  # retracted while it was being fetched
            return Status.REMOVED
        await files.stored(received.file_id, resealer.key, int(time.time()))
        await tx.audit.append("node", AUDIT_RECEIVED, target=received.record_id,
                              details={"issuer": received.issuer, "file": received.file_id,
                                       "size": resealer.size})
    return Status.STORED


async def open_received(node: Node, received: ReceivedFile) -> AsyncGenerator[bytes]:
    """The plaintext of a stored received file, chunk by chunk."""
    assert received.local_key is not None
    opener = ChunkOpener(received.local_key, received_associated_data(received.file_id))
    async for piece in _sealed_pieces(received_path(node, received.file_id)):
        plain = opener.update(piece)
        if plain:
            yield plain
    last = opener.finish()
    if last:
        yield last
