"""Sharing a case with files, through the one sharing path (``node.core.sharing``).

In order, so that nothing leaves unless everything may: the recipients are checked (verified
members of the coalition the share goes through, decision 0032), the chosen files belong to
the case (and a working copy exists where it was chosen), and the consent gate is asked for
every recipient with files, the fields and :data:`federation.consent.ATTACHMENTS` together,
*before* any byte is uploaded. Then each file
is sealed under a fresh key per recipient and uploaded part by part (:mod:`.outgoing`, the
last parts while the record travels), and :func:`node.core.sharing.share_from_node` shares
the case with the files' descriptions in each recipient's signed record (the gate runs again
there); each file's custody log names the share (to whom, which copy, which record version)
in the transaction that records it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from federation.consent import ATTACHMENTS, ConsentRefused, check_consent
from federation.transport import MatrixTransport
from node.core.runtime import Node
from node.core.sharing import (
    ShareReceipt,
    ShareRefused,
    UnknownRecipient,
    consent_scoped,
    share_from_node,
    verified_recipients,
)
from node.core.store import StoreTransaction
from node.features.evidence.attachments import Attachment, AttachmentStore
from node.features.evidence.custody import Action, Copy
from node.features.evidence.outgoing import (
    RESERVE_AT_MOST,
    Uploads,
    copy_size,
    part_count,
    reservations,
)
from node.features.evidence.service import EvidenceError, append_custody
from node.features.evidence.transfer import FileChoice, SharedFile
from schemas.records import CaseRecord, RecordBase

FilesChosen = Mapping[str, Sequence[FileChoice]]
"""Per recipient org id, the files chosen for it."""


class FileNotShareable(EvidenceError):
    pass


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
    choices: FilesChosen, *, actor: str, now: int, coalition_id: str | None = None,
) -> ShareReceipt:
    """Share ``record`` with the chosen files through ``coalition_id`` (the node's only
    coalition when None; see the module docstring)."""
    choices = {org_id: chosen for org_id, chosen in choices.items() if chosen}
    coalition_id = (await node.chosen_coalition(coalition_id)).coalition_id
    async with node.store.read() as tx:
        recipients = await verified_recipients(tx, node.org_id, recipient_ids, coalition_id)
        scoped = await consent_scoped(tx, record)
        attachments = {a.attachment_id: a for a in
                       await AttachmentStore(tx.session, tx.cipher).of_case(record.record_id)}
    _check_choices(choices, recipient_ids, attachments)
    refusals: dict[str, ConsentRefused] = {}
    for recipient in recipients:
        if recipient.org_id in choices:
            try:
                check_consent(scoped.payload, [*fields, ATTACHMENTS], recipient)
            except ConsentRefused as refusal:
                refusals[recipient.org_id] = refusal
    if refusals:
        raise ShareRefused(refusals)

    async def custody(tx: StoreTransaction) -> None:
        """Each file's custody entry, in the transaction that records the share: a share is
        never recorded without them, nor they without it."""
        for org_id, chosen in choices.items():
            for choice in chosen:
                await append_custody(node, tx, attachments[choice.attachment_id],
                                     Action.SHARE, actor=actor, at=now,
                                     details={"to": org_id, "copy": choice.copy.value,
                                              "version": record.version})

    if not choices:
        return await share_from_node(node, record, recipient_ids, fields, actor=actor,
                                     issued_at=now, files={}, coalition_id=coalition_id)
    planned = [(org_id, attachments[c.attachment_id], c.copy)
               for org_id, chosen in choices.items() for c in chosen]
    counts = [part_count(copy_size(attachment, copy)) for _, attachment, copy in planned]
    async with node.transport() as transport:
        uploads = Uploads(node, transport)
        try:
            # the share's last parts (not all of them: the record waits for the first one)
            reserved = await uploads.reserve(min(RESERVE_AT_MOST, sum(counts) - 1))
            sent = [(org_id, await uploads.add(attachment, copy, reserved_parts=last))
                    for (org_id, attachment, copy), last
                    in zip(planned, reservations(counts, reserved), strict=True)]
            await uploads.ready_to_announce()
            files: dict[str, list[dict[str, object]]] = {org_id: [] for org_id in choices}
            for org_id, outgoing in sent:
                files[org_id].append(outgoing.description().wire())
            receipt = await share_from_node(node, record, recipient_ids, fields, actor=actor,
                                            issued_at=now, files=files, alongside=custody,
                                            coalition_id=coalition_id)
            await uploads.finish()
            return receipt
        finally:
            await uploads.close()


async def upload_copy(node: Node, transport: MatrixTransport, attachment: Attachment,
                      copy: Copy) -> SharedFile:
    """Seal one copy under a fresh key and upload every part of it (a part that fails is
    tried again before this gives up); its description for a signed record."""
    uploads = Uploads(node, transport)
    try:
        outgoing = await uploads.add(attachment, copy)
        await uploads.ready_to_announce()
        return outgoing.description()
    finally:
        await uploads.close()


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

