"""What the node does when a verified record of a given kind arrives, beyond storing it.

Every received record is stored in ``received_records`` first (by the sync host). Features that
must react to a kind (a proposal's tally, an alert's automatic acknowledgement, an answer to a
de-duplication query...) register one handler here, keyed by record kind. A handler runs inside
the inbox's transaction, with the same session: whatever it writes or queues in the outbox
commits together with the record, or not at all. It must be idempotent (the same record may be
delivered again after a crash) and must not block on the network: to answer, queue in the
outbox.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession

from node.core.runtime import Node
from sync.host import VerifiedRecord

RecordHandler = Callable[[AsyncSession, Node, VerifiedRecord], Awaitable[None]]



def handled_by(module: str, name: str) -> RecordHandler:
    """The handler ``name`` of ``module``, imported on first use (feature modules import the
    sync host, which imports this module)."""

    async def handle(session: AsyncSession, node: Node, record: VerifiedRecord) -> None:
        handler = cast(RecordHandler, getattr(importlib.import_module(module), name))
        await handler(session, node, record)

    return handle


# kind -> handler. Each feature adds exactly one line for each kind it handles.
RECORD_HANDLERS: dict[str, RecordHandler] = {
    "alert": handled_by("node.features.alerts.service", "on_alert"),
    "alert-ack": handled_by("node.features.alerts.service", "on_alert_ack"),
    "proposal": handled_by("node.core.store.campaign_records", "keep_received"),
    "endorsement": handled_by("node.core.store.campaign_records", "keep_received"),
    "campaign": handled_by("node.core.store.campaign_records", "keep_received"),
    "campaign-post": handled_by("node.core.store.campaign_records", "keep_received"),
    "letter": handled_by("node.core.store.campaign_records", "keep_received"),
    "sign-on": handled_by("node.core.store.campaign_records", "keep_received"),
    "dedup-query": handled_by("node.features.dedup.service", "on_dedup_query"),
    "dedup-answer": handled_by("node.features.dedup.service", "on_dedup_answer"),
}


async def handle_received(session: AsyncSession, node: Node, record: VerifiedRecord) -> None:
    handler = RECORD_HANDLERS.get(record.kind)
    if handler is not None:
        await handler(session, node, record)
