"""Evidence files on a node: ingest, working copies, reading copies back, custody entries.

The imperative shell around the pure core. Files live in ``DATA_DIR/evidence/``: each copy is
one sealed file (:mod:`.chunks`) named by attachment id and copy, written once under a temporary
name, then renamed and made read-only, never changed afterwards. The rows, the custody entry
and the audit entry of a step commit in one transaction; a file whose transaction fails is
removed. Plaintext touches the disk only while mat2 cleans a copy (and the C2PA library reads its
manifest, or ``gpg`` checks a ProofMode bundle, from the same file), in a directory only the
node's user can read, removed at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from federation.encoding import b64u_encode
from node.core.runtime import Node
from node.core.store import RecordDeleted, RecordNotFound, StoreTransaction
from node.core.store.ids import InvalidRecordId
from node.features.evidence.attachments import Attachment, AttachmentStore, CleanedCopy
from node.features.evidence.c2pa_check import read_credentials, supported_types
from node.features.evidence.chunks import (
    CHUNK_SIZE,
    TAG_SIZE,
    ChunkOpener,
    ChunkSealer,
    new_file_key,
)
from node.features.evidence.cleaning import clean_with_mat2
from node.features.evidence.credentials import Credentials, Verdict
from node.features.evidence.custody import Action, Copy, sign_entry
from node.features.evidence.proofmode_check import check_bundle
from node.features.evidence.provenance import SCAN_BYTES, Manifest, find_manifest
from node.features.evidence.sniff import SNIFF_BYTES, FileType, sniff
from schemas.ids import new_record_id

EVIDENCE_DIR: Final = "evidence"
MAX_NAME: Final = 200
AUDIT_ATTACH: Final = "evidence.attach"
AUDIT_ACCESS: Final = "evidence.access"
_ACTOR_PURPOSE: Final = "evidence/custody-actor"
SEAL_BATCH: Final = CHUNK_SIZE
"""Bytes gathered from the stream before they are hashed and sealed in a worker thread: a thread
hop per network piece (64-256 KB) costs more than the cryptography, and batches larger than a
chunk cost more in allocations than they save (bench/evidence.py)."""


class EvidenceError(Exception):
    """A request about evidence that cannot be done; the message says why (no content)."""


class CaseNotAttachable(EvidenceError):
    pass


class FileTooLarge(EvidenceError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than this node's limit of {limit // 2**20} MB"
                         " ([evidence] max_file_mb in node.toml)")
        self.limit = limit


def associated_data(attachment_id: str, copy: Copy) -> bytes:
    return f"minga/evidence/v1|{attachment_id}|{copy.value}".encode()


def evidence_dir(node: Node) -> Path:
    return node.config.node.data_dir / EVIDENCE_DIR


def copy_path(node: Node, attachment_id: str, copy: Copy) -> Path:
    return evidence_dir(node) / f"{attachment_id}.{copy.value}"


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def clean_name(name: str | None) -> str:
    """A file name to show: its last path part, without control characters, shortened."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    shown = "".join(char for char in base if char.isprintable()).strip()
    return shown[:MAX_NAME] or "file"


@dataclass
class _Writer:
    """Hashes, sniffs and seals a file as its pieces arrive, into an open file."""

    out: IO[bytes]
    sealer: ChunkSealer
    limit: int
    size: int = 0
    head: bytearray = field(default_factory=bytearray)
    digest: Any = field(default_factory=hashlib.sha256)

    def write(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self.size += len(piece)
            if self.size > self.limit:
                raise FileTooLarge(self.limit)
            self.digest.update(piece)
            if len(self.head) < SNIFF_BYTES:
                self.head += piece[: SNIFF_BYTES - len(self.head)]
            self.out.write(self.sealer.update(piece))

    def finish(self) -> None:
        self.out.write(self.sealer.finish())
        self.out.flush()
        os.fsync(self.out.fileno())


@dataclass(frozen=True)
class Sealed:
    path: Path
    size: int
    sha256: str
    key: bytes = field(repr=False)
    file_type: FileType


async def seal_stream(directory: Path, pieces: AsyncIterator[bytes], associated: bytes,
                      limit: int) -> Sealed:
    """Seal what ``pieces`` yields into a new file in ``directory``; only one chunk is ever in
    memory. The file is removed if anything goes wrong, the size limit included."""
    key = new_file_key()
    path = _private_dir(directory) / f"incoming-{uuid.uuid4().hex}"
    try:
        with path.open("xb") as out:
            writer = _Writer(out, ChunkSealer(key, associated), limit)
            batch: list[bytes] = []
            batched = 0
            async for piece in pieces:
                batch.append(piece)
                batched += len(piece)
                if batched >= SEAL_BATCH:
                    await asyncio.to_thread(writer.write, batch)
                    batch, batched = [], 0
            if batch:
                await asyncio.to_thread(writer.write, batch)
            await asyncio.to_thread(writer.finish)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Sealed(path, writer.size, writer.digest.hexdigest(), key, sniff(bytes(writer.head)))


def _keep(sealed: Path, final: Path) -> None:
    os.replace(sealed, final)
    final.chmod(0o400)


async def open_stream(path: Path, key: bytes, associated: bytes) -> AsyncIterator[bytes]:
    """The plaintext of a sealed file, chunk by chunk (``ChunkRejected`` if it was changed)."""
    opener = ChunkOpener(key, associated)
    with path.open("rb") as sealed:
        while True:
            piece = await asyncio.to_thread(sealed.read, CHUNK_SIZE + TAG_SIZE)
            if not piece:
                break
            plain = opener.update(piece)
            if plain:
                yield plain
    last = opener.finish()
    if last:
        yield last


def _actor_tag(tx: StoreTransaction, actor: str) -> str:
    """Who, without naming staff: a keyed hash of the account name that this node can match
    again (a package handed out does not name the staff who touched the file)."""
    return b64u_encode(tx.cipher.lookup_tag(_ACTOR_PURPOSE, actor)[:12])


async def append_custody(node: Node, tx: StoreTransaction, attachment: Attachment,
                         action: Action, *, actor: str, at: int,
                         details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    attachments = AttachmentStore(tx.session, tx.cipher)
    entry = sign_entry(node.keys.signing, node.org_id,
                       await attachments.head(attachment.attachment_id),
                       attachment=attachment.attachment_id, at=at, action=action,
                       sha256=attachment.sha256,
                       details={"by": _actor_tag(tx, actor), **(details or {})})
    await attachments.append_entry(entry)
    return entry


async def _case_must_exist(tx: StoreTransaction, record_id: str) -> None:
    try:
        await tx.cases.get(record_id)
    except (RecordNotFound, RecordDeleted, InvalidRecordId):
        raise CaseNotAttachable(f"there is no case {record_id} to attach files to") from None


async def _check_case(node: Node, record_id: str) -> None:
    async with node.store.read() as tx:
        await _case_must_exist(tx, record_id)


async def attach_file(node: Node, record_id: str, name: str | None,
                      pieces: AsyncIterator[bytes], *, actor: str, now: int) -> Attachment:
    """Stream a file into the node as evidence of a case, then make its working copy."""
    await _check_case(node, record_id)
    attachment_id = new_record_id()
    sealed = await seal_stream(evidence_dir(node), pieces,
                               associated_data(attachment_id, Copy.ORIGINAL),
                               node.config.evidence.max_file_bytes)
    final = copy_path(node, attachment_id, Copy.ORIGINAL)
    attachment = Attachment(attachment_id, record_id, clean_name(name),
                            sealed.file_type.media_type, sealed.size, sealed.sha256, now,
                            sealed.key)
    try:
        _keep(sealed.path, final)
        async with node.store.transaction() as tx:
            await _case_must_exist(tx, record_id)  # deleted meanwhile: nothing is kept
            await AttachmentStore(tx.session, tx.cipher).add(attachment)
            await append_custody(node, tx, attachment, Action.INGEST, actor=actor, at=now,
                                 details={"size": sealed.size,
                                          "media_type": sealed.file_type.media_type})
            await tx.audit.append(actor, AUDIT_ATTACH, target=record_id,
                                  details={"attachment": attachment_id, "size": sealed.size})
    except BaseException:
        sealed.path.unlink(missing_ok=True)
        _remove(final)
        raise
    return await make_working_copy(node, attachment, sealed.file_type, actor=actor, now=now)


def _remove(path: Path) -> None:
    if path.exists():
        path.chmod(0o600)
        path.unlink()


async def make_working_copy(node: Node, attachment: Attachment, file_type: FileType, *,
                            actor: str, now: int) -> Attachment:
    """Decrypt the original into a private directory, let mat2 clean it, seal the result as
    the working copy; the plaintext is removed whatever happens."""
    work = _private_dir(evidence_dir(node) / f"work-{uuid.uuid4().hex}")
    try:
        plain = work / f"file.{file_type.extension}"
        await _decrypt_original(node, attachment, plain)
        manifest, credentials = await _provenance_of(plain, file_type.media_type)
        cleaned = await clean_with_mat2(plain)
        working = CleanedCopy(made=False, removed=cleaned.removed, reason=cleaned.reason)
        if cleaned.path is not None:
            working = await _seal_working(node, attachment, cleaned.path, cleaned.removed)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    async with node.store.transaction() as tx:
        updated = await AttachmentStore(tx.session, tx.cipher).set_working(
            attachment.attachment_id, working, manifest.value, credentials)
        await _record_check(node, tx, updated, credentials, actor=actor, at=now)
        if working.made:
            await append_custody(node, tx, updated, Action.WORKING_COPY, actor=actor, at=now,
                                 details={"working_sha256": working.sha256,
                                          "removed": list(working.removed), "tool": "mat2"})
    return updated


async def _decrypt_original(node: Node, attachment: Attachment, plain: Path) -> None:
    """The original's plaintext into ``plain``, in a private directory the caller removes."""
    with plain.open("xb") as out:
        async for piece in open_stream(copy_path(node, attachment.attachment_id, Copy.ORIGINAL),
                                       attachment.key,
                                       associated_data(attachment.attachment_id, Copy.ORIGINAL)):
            await asyncio.to_thread(out.write, piece)


BUNDLE_TYPE: Final = "application/zip"
"""The kind of file a ProofMode bundle is."""


def checkable(media_type: str) -> bool:
    """Whether this kind of file gets a provenance check: the kinds the C2PA library reads, and
    ZIPs (a ProofMode bundle is one)."""
    return media_type in supported_types() or media_type == BUNDLE_TYPE


async def _provenance_of(plain: Path, media_type: str) -> tuple[Manifest, Credentials | None]:
    """The manifest the original carries and the verdict on it: a ProofMode bundle checked with
    ``gpg``, else what the C2PA library says (None when not checked)."""
    manifest = await asyncio.to_thread(_manifest_of, plain, media_type)
    if manifest is Manifest.PROOFMODE:
        return manifest, await asyncio.to_thread(check_bundle, plain)
    if media_type == BUNDLE_TYPE:
        return manifest, Credentials(Verdict.NONE)  # a ZIP that is no bundle: nothing to check
    credentials = await asyncio.to_thread(read_credentials, plain, media_type,
                                          recognised=manifest is Manifest.C2PA)
    if credentials is not None and credentials.verdict is not Verdict.NONE:
        manifest = Manifest.C2PA  # also where the library reads more than provenance knows
    return manifest, credentials


async def _record_check(node: Node, tx: StoreTransaction, attachment: Attachment,
                        credentials: Credentials | None, *, actor: str, at: int) -> None:
    """A custody entry for a check that found a manifest (valid or not): ``c2pa-check`` or
    ``proofmode-check``."""
    if credentials is not None and credentials.verdict is not Verdict.NONE:
        proofmode = attachment.manifest == Manifest.PROOFMODE.value
        await append_custody(node, tx, attachment,
                             Action.PROOFMODE_CHECK if proofmode else Action.C2PA_CHECK,
                             actor=actor, at=at,
                             details=_check_details(credentials, proofmode=proofmode))


async def check_credentials(node: Node, attachment_id: str, *, actor: str,
                            now: int) -> Attachment:
    """Check the C2PA manifest or ProofMode bundle of a file stored before this node checked
    them (decision 0031); a file already checked is left as it is (``AttachmentNotFound``)."""
    attachment = await get_attachment(node, attachment_id)
    if attachment.credentials is not None or not checkable(attachment.media_type):
        return attachment
    work = _private_dir(evidence_dir(node) / f"work-{uuid.uuid4().hex}")
    try:
        plain = work / "file"
        await _decrypt_original(node, attachment, plain)
        manifest, credentials = await _provenance_of(plain, attachment.media_type)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if credentials is None:
        return attachment
    async with node.store.transaction() as tx:
        attachments = AttachmentStore(tx.session, tx.cipher)
        if (await attachments.get(attachment_id)).credentials is not None:
            return await attachments.get(attachment_id)  # checked meanwhile
        updated = await attachments.set_credentials(
            attachment_id, credentials,
            manifest.value if manifest is not Manifest.NONE else attachment.manifest)
        await _record_check(node, tx, updated, credentials, actor=actor, at=now)
    return updated


async def unchecked_attachments(node: Node) -> list[str]:
    """Ids of stored files never checked, of the kinds that are (:func:`checkable`)."""
    async with node.store.read() as tx:
        attachments = AttachmentStore(tx.session, tx.cipher)
        found = [await attachments.get(attachment_id) for attachment_id in await attachments.ids()]
    return [attachment.attachment_id for attachment in found
            if attachment.credentials is None and checkable(attachment.media_type)]


def _check_details(credentials: Credentials, *, proofmode: bool) -> dict[str, Any]:
    """What the custody entry of a check says: the verdict and the codes, the signer (a C2PA
    certificate's subject; a ProofMode key's fingerprint) and the tool that made the claim (no
    file content)."""
    return {"verdict": credentials.verdict.value, "signer_trusted": credentials.signer_trusted,
            "problems": [problem.value for problem in credentials.problems],
            "codes": list(credentials.codes), "signer": credentials.signer,
            "claim_generator": credentials.claim_generator, "signed_at": credentials.signed_at,
            "tool": "gpg" if proofmode else "c2pa-python"}


def _manifest_of(plain: Path, media_type: str) -> Manifest:
    with plain.open("rb") as source:
        head = source.read(SCAN_BYTES)
    return find_manifest(head, media_type, zip_path=plain)


async def _seal_working(node: Node, attachment: Attachment, cleaned: Path,
                        removed: tuple[str, ...]) -> CleanedCopy:
    async def pieces() -> AsyncIterator[bytes]:
        with cleaned.open("rb") as source:
            while piece := await asyncio.to_thread(source.read, CHUNK_SIZE):
                yield piece

    sealed = await seal_stream(evidence_dir(node), pieces(),
                               associated_data(attachment.attachment_id, Copy.WORKING),
                               2**62)
    _keep(sealed.path, copy_path(node, attachment.attachment_id, Copy.WORKING))
    return CleanedCopy(made=True, sha256=sealed.sha256, size=sealed.size, key=sealed.key,
                       removed=removed)


@dataclass(frozen=True)
class OpenedCopy:
    attachment: Attachment
    copy: Copy
    size: int
    media_type: str
    file_name: str
    chunks: AsyncIterator[bytes]


async def get_attachment(node: Node, attachment_id: str) -> Attachment:
    async with node.store.read() as tx:
        return await AttachmentStore(tx.session, tx.cipher).get(attachment_id)


async def open_copy(node: Node, attachment_id: str, copy: Copy, action: Action, *,
                    actor: str, now: int) -> OpenedCopy:
    """One copy's plaintext to serve; the access is in the custody log and the audit log
    before any byte leaves (``AttachmentNotFound``; ``EvidenceError`` when there is no working
    copy)."""
    async with node.store.transaction() as tx:
        attachment = await AttachmentStore(tx.session, tx.cipher).get(attachment_id)
        if copy is Copy.WORKING and (attachment.working is None or not attachment.working.made):
            raise EvidenceError("this file has no working copy (mat2 could not clean it)")
        await append_custody(node, tx, attachment, action, actor=actor, at=now,
                             details={"copy": copy.value})
        await tx.audit.append(actor, AUDIT_ACCESS, target=attachment.record_id,
                              details={"attachment": attachment_id, "action": action.value,
                                       "copy": copy.value})
    key, size = attachment.key, attachment.size
    if copy is Copy.WORKING and attachment.working is not None:
        key, size = attachment.working.key, attachment.working.size
    chunks = open_stream(copy_path(node, attachment_id, copy), key,
                         associated_data(attachment_id, copy))
    name = attachment.name if copy is Copy.ORIGINAL else f"cleaned-{attachment.name}"
    return OpenedCopy(attachment, copy, size, attachment.media_type, name, chunks)


async def case_attachments(node: Node, record_id: str) -> list[Attachment]:
    async with node.store.read() as tx:
        return await AttachmentStore(tx.session, tx.cipher).of_case(record_id)


async def custody_log(node: Node, attachment_id: str) -> list[dict[str, Any]]:
    async with node.store.read() as tx:
        return await AttachmentStore(tx.session, tx.cipher).entries(attachment_id)
