"""Publishing this node's aggregate figures to the coalition, and reading the members' back.

An aggregate is a signed ``aggregate`` record sent through the one sharing path
(:func:`node.sharing.share_records`) to every verified member in the coalition room, as
campaign records are. Each publication is a new record; members keep every one among their
received records and the coalition view uses each member's latest (by ``as_of``). This node's
own latest publication is kept in its settings so that its view includes itself.

Figures are published by year: members must use the same granularity for their sums to add up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from node.aggregates import Granularity, build_aggregate
from node.campaigns import node_enqueue, other_members
from node.coalition_view import aggregate_from_claims, latest_per_member
from node.exporting import own_case_records
from node.runtime import Node
from node.sharing import share_records
from node.store.received import MAX_PAGE
from node.store.store import StoreTransaction
from schemas.ids import new_record_id
from schemas.payloads import Aggregate
from schemas.records import RecordKind, build_record

log = logging.getLogger("minga.publishing")

PUBLISHED_SETTING = "aggregates.published"
AGGREGATES_PUBLISHED = "aggregates.publish"


class NotInCoalition(Exception):
    """Publishing needs a coalition room; this node has joined no coalition yet."""


@dataclass(frozen=True)
class Publication:
    record_id: str
    aggregate: Aggregate
    recipients: tuple[str, ...]


async def publish_aggregate(node: Node, *, actor: str, now: int) -> Publication:
    """Build this node's aggregate as of ``now`` and send it to every verified member."""
    room_id = await node.coalition_room()
    if room_id is None:
        raise NotInCoalition("this node is in no coalition yet")
    async with node.store.read() as tx:
        cases = [record.payload for record in await own_case_records(tx)]
    aggregate = build_aggregate(cases, as_of=now, granularity=Granularity.YEAR)
    record = build_record(node.org_id, aggregate, record_id=new_record_id(), issued_at=now)
    members = await other_members(node)

    async def in_room(_org_id: str) -> str:
        return room_id

    if members:
        await share_records(node.store.transaction, node.keys, [record], members,
                            actor=actor, pair_room_for=in_room,
                            enqueue=await node_enqueue(node), issued_at=now)
        node.wake_sync()
    async with node.store.transaction() as tx:
        await tx.settings.set(PUBLISHED_SETTING, aggregate.model_dump(mode="json"))
        await tx.audit.append(actor, AGGREGATES_PUBLISHED,
                              details={"record_id": record.record_id, "members": members})
    return Publication(record.record_id, aggregate, tuple(members))


async def own_published(tx: StoreTransaction) -> Aggregate | None:
    saved = await tx.settings.get(PUBLISHED_SETTING)
    return None if saved is None else Aggregate.model_validate(saved)


async def _received(tx: StoreTransaction) -> list[tuple[str, Aggregate]]:
    found: list[tuple[str, Aggregate]] = []
    offset = 0
    while True:
        page = await tx.received.list_latest(kind=RecordKind.AGGREGATE.value, limit=MAX_PAGE,
                                             offset=offset)
        for record in page:
            aggregate = _readable(record.claims)
            if aggregate is not None and not record.retracted:
                found.append((record.issuer, aggregate))
        if len(page) < MAX_PAGE:
            return found
        offset += MAX_PAGE


def _readable(claims: dict[str, Any] | None) -> Aggregate | None:
    if claims is None:
        return None
    try:
        return aggregate_from_claims(claims)
    except ValidationError:
        log.warning("a received aggregate does not match the aggregate schema; left out")
        return None


async def coalition_aggregates(node: Node) -> dict[str, Aggregate]:
    """The latest aggregate of every member, this node's last publication included."""
    async with node.store.read() as tx:
        published = await _received(tx)
        own = await own_published(tx)
    if own is not None:
        published.append((node.org_id, own))
    return latest_per_member(published)
