"""Retracting a shared case, for the API and the pages alike.

A retraction because the defender withdrew consent also records the withdrawal on the case
itself (consent ``none``, a new version): the holder's node then stops offering it to
de-duplication checks, publications and shares, not only the recipients' copies. Each file
that was shared with the case gets a retraction entry in its custody log; the recipients'
nodes delete their copies when the retraction arrives.
"""

from __future__ import annotations

from node.core.runtime import Node
from node.core.sharing import NothingToRetract, ShareReceipt, retract_from_node
from node.core.store.shares import ShareRepository
from node.features.cases import stored_record, withdraw_consent
from node.features.evidence import retract_case_files
from schemas.records import CaseRecord

CONSENT_WITHDRAWN = "consent_withdrawn"


async def retract_case(node: Node, record: CaseRecord, *, reason: str, note: str | None,
                       actor: str, issued_at: int) -> ShareReceipt:
    """Send a signed retraction of ``record`` to everyone who received it (see module doc)."""
    if reason == CONSENT_WITHDRAWN:
        async with node.store.transaction() as tx:
            if not await ShareRepository(tx.session, tx.cipher).recipients(record.record_id):
                raise NothingToRetract(f"record {record.record_id} was never shared")
            record = stored_record(await withdraw_consent(tx, record.record_id, author=actor,
                                                          issued_at=issued_at))
    receipt = await retract_from_node(node, record, reason=reason, note=note, actor=actor,
                                      issued_at=issued_at)
    await retract_case_files(node, record, actor=actor, now=issued_at)
    return receipt
