"""A second organisation's word on time, over the sharing path (the statement: :mod:`.witness`).

The holder asks (:func:`request_countersignature`): a ``countersign-request`` record holding
only a salted commitment goes to the witness through their pair room; the salt stays in this
node's settings until the answer comes. The witness's node answers on its own, from the inbox
(:func:`on_request`): it signs the statement with its signing key and sends it back in a
``countersignature`` record. The holder's node (:func:`on_countersignature`) checks the
statement against the witness's key in the roster and the file's hash, and keeps it, with the
salt, as a ``countersignature`` entry of the file's custody log, which the evidence package
carries with the witness's member entry so that it can be checked offline.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from federation.consent_decision import COALITION_CLAIM
from federation.encoding import b64u_encode
from federation.identity import IdentityError, read_member_entry, signing_kid
from node.core.runtime import Node
from node.core.sharing import in_session, share_from_node, share_in_room, verified_recipients
from node.core.store import RecordNotFound, StoreTransaction
from node.features.evidence.attachments import AttachmentNotFound, AttachmentStore
from node.features.evidence.custody import Action
from node.features.evidence.service import append_custody
from node.features.evidence.witness import (
    SALT_BYTES,
    STATEMENT_TYPE,
    check_countersignature,
    commitment,
    sign_statement,
)
from schemas.common import RecordRef
from schemas.ids import new_record_id
from schemas.payloads import Countersignature, CountersignRequest
from schemas.records import build_record
from sync.host import VerifiedRecord

log = logging.getLogger("minga.evidence")

PENDING: Final = "evidence.countersign."
AUDIT_REQUEST: Final = "evidence.countersign-request"
AUDIT_GIVEN: Final = "evidence.countersign-given"
AUDIT_KEPT: Final = "evidence.countersign-kept"
AUDIT_REFUSED: Final = "evidence.countersign-refused"
REQUEST_KIND: Final = "countersign-request"
ANSWER_KIND: Final = "countersignature"


async def request_countersignature(node: Node, attachment_id: str, witness: str, *,
                                   actor: str, now: int, coalition_id: str | None = None) -> str:
    """Ask ``witness`` (a verified member of ``coalition_id``; by default of the oldest
    coalition this node shares with it) to countersign the file's existence now; the id of
    the request record (``AttachmentNotFound``, ``UnknownRecipient``)."""
    async with node.store.read() as tx:
        attachment = await AttachmentStore(tx.session, tx.cipher).get(attachment_id)
        if coalition_id is None:
            shared = await tx.coalitions.shared_with(witness)
            coalition_id = shared[0].coalition_id if shared else None
        await verified_recipients(tx, node.org_id, [witness], coalition_id)
    salt = os.urandom(SALT_BYTES)
    request = build_record(node.org_id, CountersignRequest(
        commitment=commitment(attachment.sha256, salt)), record_id=new_record_id(),
        issued_at=now)
    async with node.store.transaction() as tx:
        await tx.settings.set(PENDING + request.record_id, {
            "attachment": attachment_id, "witness": witness, "salt": b64u_encode(salt)})
        await tx.audit.append(actor, AUDIT_REQUEST, target=attachment.record_id,
                              details={"attachment": attachment_id, "witness": witness})
    await share_from_node(node, request, [witness], actor=actor, issued_at=now,
                          coalition_id=coalition_id)
    return request.record_id


async def on_request(session: AsyncSession, node: Node, record: VerifiedRecord) -> None:
    """As the witness: sign what was asked, now, and answer in the room it came from,
    through the coalition it came through."""
    asked = record.claims.get("commitment")
    if not isinstance(asked, str):
        return
    now = int(time.time())
    statement = sign_statement(node.keys.signing, node.org_id, holder=record.issuer,
                               commitment=asked, at=now)
    answer = build_record(node.org_id, Countersignature(
        request=RecordRef(issuer=record.issuer, record_id=record.record_id),
        commitment=asked, attested_at=now, kid=statement["kid"],
        signature=statement["signature"]), record_id=new_record_id(), issued_at=now)
    coalition = record.claims.get(COALITION_CLAIM)
    await share_in_room(node, [answer], [record.issuer], record.room_id, actor="node",
                        issued_at=now, open_session=session, new_records=True,
                        coalition_id=coalition if isinstance(coalition, str) else None)
    async with in_session(session, node) as tx:
        await tx.audit.append("node", AUDIT_GIVEN, details={"holder": record.issuer,
                                                            "request": record.record_id})


async def _witness_keys(tx: StoreTransaction, witness: str) -> dict[str, Any]:
    try:
        member = read_member_entry((await tx.orgs.member(witness)).entry)
    except (RecordNotFound, IdentityError):
        return {}
    keys = [member.first_signing, *(r.signing for r in member.rotations),
            member.public.signing_public()]
    return {signing_kid(key): key for key in keys}


async def on_countersignature(session: AsyncSession, node: Node, record: VerifiedRecord) -> None:
    """As the holder: check the witness's statement and keep it in the file's custody log."""
    claims = record.claims
    request = claims.get("request")
    if not isinstance(request, dict) or request.get("issuer") != node.org_id:
        return
    async with in_session(session, node) as tx:
        pending = await tx.settings.get(PENDING + str(request.get("record_id")))
        if not isinstance(pending, dict) or pending.get("witness") != record.issuer:
            log.info("a countersignature came for no request of ours; ignored")
            return
        await tx.settings.set(PENDING + str(request.get("record_id")), None)
        statement = {"type": STATEMENT_TYPE, "commitment": claims.get("commitment"),
                     "holder": node.org_id, "witness": record.issuer, "kid": claims.get("kid"),
                     "at": claims.get("attested_at"), "signature": claims.get("signature")}
        try:
            attachment = await AttachmentStore(tx.session, tx.cipher).get(pending["attachment"])
        except AttachmentNotFound:
            return
        problems = check_countersignature(statement, sha256_hex=attachment.sha256,
                                          salt=pending["salt"], holder=node.org_id,
                                          keys=await _witness_keys(tx, record.issuer))
        if problems:
            log.warning("a countersignature did not verify and was not kept")
            await tx.audit.append("node", AUDIT_REFUSED, target=attachment.record_id,
                                  details={"attachment": attachment.attachment_id,
                                           "witness": record.issuer, "problems": problems})
            return
        await append_custody(node, tx, attachment, Action.COUNTERSIGNATURE, actor="node",
                             at=int(time.time()),
                             details={"witness": record.issuer, "attested_at": statement["at"],
                                      "salt": pending["salt"], "statement": statement})
        await tx.audit.append("node", AUDIT_KEPT, target=attachment.record_id,
                              details={"attachment": attachment.attachment_id,
                                       "witness": record.issuer})
