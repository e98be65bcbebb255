"""Sharing a case with files, through the one sharing path (``node.core.sharing``).

In order, so that nothing leaves unless everything may: the recipients are checked (verified
members), the chosen files belong to the case (and a working copy exists where it was chosen),
and the consent gate is asked for every recipient with files, the fields and
:data:`federation.consent.ATTACHMENTS` together, *before* any byte is uploaded. Then each file
is sealed under a fresh key per recipient and uploaded part by part (:mod:`.transfer`), and
:func:`node.core.sharing.share_from_node` shares the case with the files' descriptions in each
recipient's signed record (the gate runs again there); each file's custody log names the
share (to whom, which copy, which record version) in the transaction that records it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final

from federation.consent import ATTACHMENTS, ConsentRefused, check_consent
from federation.encoding import b64u_encode
from federation.transport import MatrixTransport, TransportError
from node.core.runtime import Node
from node.core.sharing import (
    ShareReceipt,
    ShareRefused,
    UnknownRecipient,
    share_from_node,
    verified_recipients,
)
from node.core.store import StoreTransaction
from node.features.evidence.attachments import Attachment, AttachmentStore
from node.features.evidence.chunks import ChunkRejected, ChunkSealer, new_file_key
from node.features.evidence.custody import Action, Copy
from node.features.evidence.service import (
    EvidenceError,
    append_custody,
    associated_data,
    copy_path,
    open_stream,
)
from node.features.evidence.transfer import (
    TRANSFER_AD,
    FileChoice,
    FilePart,
    SharedFile,
    cut_parts,
    part_bytes,
)
from schemas.records import CaseRecord, RecordBase

UPLOAD_ATTEMPTS: Final = 3
UPLOADS_AHEAD: Final = 4
FilesChosen = Mapping[str, Sequence[FileChoice]]
"""Per recipient org id, the files chosen for it."""


class FileNotShareable(EvidenceError):
    pass


class EvidenceDamaged(EvidenceError):
    """A stored copy no longer opens or matches its hash: it is not shared."""


def _check_choices(choices: FilesChosen, recipient_ids: Sequence[str],
                   attachments: Mapping[str, Attachment]) -> None:
    for org_id, chosen in choices.items():
        if org_id not in recipient_ids:
            raise UnknownRecipient(org_id, "has files chosen but is not among the recipients")
        if len({c.attachment_id for c in chosen}) != len(chosen):
            raise FileNotShareable("a file is chosen twice for one recipient")
        for choice in chosen:
            attachment = attachments.get(choice.attachment_id)
            if attachment is None:
                raise FileNotShareable(f"file {choice.attachment_id} is not attached to this case")
            if choice.copy is Copy.WORKING and (attachment.working is None
                                                or not attachment.working.made):
                raise FileNotShareable(f"file {choice.attachment_id} has no working copy (mat2"
                                       " could not clean it); choose the original explicitly")


async def share_case_with_files(
    node: Node, record: CaseRecord, recipient_ids: Sequence[str], fields: Sequence[str],
    choices: FilesChosen, *, actor: str, now: int,
) -> ShareReceipt:
    """Share ``record`` with the chosen files (see the module docstring)."""
    choices = {org_id: chosen for org_id, chosen in choices.items() if chosen}
    async with node.store.read() as tx:
        recipients = await verified_recipients(tx, node.org_id, recipient_ids)
        attachments = {a.attachment_id: a for a in
                       await AttachmentStore(tx.session, tx.cipher).of_case(record.record_id)}
    _check_choices(choices, recipient_ids, attachments)
    refusals: dict[str, ConsentRefused] = {}
    for recipient in recipients:
        if recipient.org_id in choices:
            try:
                check_consent(record.payload, [*fields, ATTACHMENTS], recipient)
            except ConsentRefused as refusal:
                refusals[recipient.org_id] = refusal
    if refusals:
        raise ShareRefused(refusals)
    files: dict[str, list[dict[str, object]]] = {}
    if choices:
        async with node.transport() as transport:
            for org_id, chosen in choices.items():
                files[org_id] = [
                    (await upload_copy(node, transport, attachments[c.attachment_id],
                                       c.copy)).wire()
                    for c in chosen]

    async def custody(tx: StoreTransaction) -> None:
        """Each file's custody entry, in the transaction that records the share: a share is
        never recorded without them, nor they without it."""
        for org_id, chosen in choices.items():
            for choice in chosen:
                await append_custody(node, tx, attachments[choice.attachment_id],
                                     Action.SHARE, actor=actor, at=now,
                                     details={"to": org_id, "copy": choice.copy.value,
                                              "version": record.version})

    return await share_from_node(node, record, recipient_ids, fields, actor=actor,
                                 issued_at=now, files=files,
                                 alongside=custody if choices else None)


async def _copy_plaintext(node: Node, attachment: Attachment,
                          copy: Copy) -> AsyncIterator[bytes]:
    key = attachment.key
    if copy is Copy.WORKING and attachment.working is not None:
        key = attachment.working.key
    async for piece in open_stream(copy_path(node, attachment.attachment_id, copy), key,
                                   associated_data(attachment.attachment_id, copy)):
        yield piece


async def _upload_part(transport: MatrixTransport, data: bytes) -> FilePart:
    digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
    for attempt in range(UPLOAD_ATTEMPTS):
        try:
            url = await transport.upload(data)
            break
        except TransportError:
            if attempt == UPLOAD_ATTEMPTS - 1:
                raise
            await asyncio.sleep(2**attempt)
    return FilePart(url=url, size=len(data), sha256=digest)


async def upload_copy(node: Node, transport: MatrixTransport, attachment: Attachment,
                      copy: Copy) -> SharedFile:
    """Seal one copy under a fresh key and upload it part by part (a part that fails is
    tried again before the share gives up); its description for the signed record."""
    key = new_file_key()
    sealer = ChunkSealer(key, TRANSFER_AD)
    digest, size = hashlib.sha256(), 0
    buffer = bytearray()
    parts: list[FilePart] = []

    def seal(plain: bytes) -> None:
        digest.update(plain)
        buffer.extend(sealer.update(plain))

    uploading: list[asyncio.Task[FilePart]] = []
    working = attachment.working if copy is Copy.WORKING else None
    each = part_bytes(working.size if working is not None else attachment.size)

    async def upload(part: bytes) -> None:
        if len(uploading) - len(parts) >= UPLOADS_AHEAD:  # bounded: memory and the server
            parts.append(await uploading[len(parts)])
        uploading.append(asyncio.create_task(_upload_part(transport, part)))

    try:
        async for plain in _copy_plaintext(node, attachment, copy):  # ChunkRejected if altered
            size += len(plain)
            await asyncio.to_thread(seal, plain)
            for part in cut_parts(buffer, final=False, size=each):
                await upload(part)
        buffer.extend(sealer.finish())
        for part in cut_parts(buffer, final=True, size=each):
            await upload(part)
        parts.extend([await task for task in uploading[len(parts):]])
    except ChunkRejected:
        raise EvidenceDamaged("a stored copy was altered on this node's disk; it is not"
                              " shared (check the evidence package of the original)") from None
    finally:
        for task in uploading:
            task.cancel()
        await asyncio.gather(*uploading, return_exceptions=True)
    expected = (working.sha256, working.size) if working is not None else (
        attachment.sha256, attachment.size)
    if (digest.hexdigest(), size) != expected:
        raise EvidenceDamaged("a stored copy does not match its hash; it is not shared")
    name = attachment.name if copy is Copy.ORIGINAL else f"cleaned-{attachment.name}"
    return SharedFile.model_validate({
        "name": name, "media_type": attachment.media_type, "size": size,
        "sha256": digest.hexdigest(), "copy": copy.value,
        "original_sha256": attachment.sha256, "key": b64u_encode(key),
        "parts": [part.model_dump() for part in parts]})


async def retract_case_files(node: Node, target: RecordBase[Any], *, actor: str,
                             now: int) -> None:
    """After a retraction of ``target``: a custody entry on each of its files that was shared."""
    async with node.store.transaction() as tx:
        store = AttachmentStore(tx.session, tx.cipher)
        for attachment in await store.of_case(target.record_id):
            shared_to = sorted({entry["details"].get("to") for entry
                                in await store.entries(attachment.attachment_id)
                                if entry["action"] == Action.SHARE.value} - {None})
            if shared_to:
                await append_custody(node, tx, attachment, Action.RETRACTION, actor=actor,
                                     at=now, details={"to": shared_to})

