"""Publishing this node's aggregate figures to the coalition, and reading the members' back.

An aggregate is a signed ``aggregate`` record sent through the one sharing path
(:func:`node.core.sharing.share_records`) to every verified member in the coalition room, as
campaign records are. Each publication is a new record; members keep every one among their
received records and the coalition view uses each member's latest (by ``as_of``). This node's
own latest publication is kept in its settings so that its view includes itself.

Figures are published by year: members must use the same granularity for their sums to add up.

Each aggregate carries the node's latest overlap estimate (``node.features.figures.overlap``,
gathered by
``node.features.figures.overlap_survey``). Publishing starts a fresh survey when the estimate is
missing or stale
and publishes again once it has finished. Besides on demand (web, API, ``minga aggregates
publish``), the node publishes by itself every ``PublicationSchedule.every_days`` days (0, the
default: never), from :func:`run_publication_duties` beside the sync engine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from node.core.duties import repeat
from node.core.runtime import Node
from node.core.sharing import share_in_room
from node.core.store.received import MAX_PAGE
from node.core.store.store import StoreTransaction
from node.features.campaigns import other_members
from node.features.cases import own_case_records
from node.features.figures.aggregates import Granularity, build_aggregate
from node.features.figures.coalition_view import aggregate_from_claims, latest_per_member
from node.features.figures.overlap_survey import (
    current_survey,
    finish_survey,
    latest_report,
    start_survey,
)
from schemas.ids import new_record_id
from schemas.payloads import Aggregate
from schemas.records import RecordKind, build_record

log = logging.getLogger("minga.publishing")

PUBLISHED_SETTING = "aggregates.published"
SCHEDULE_SETTING = "aggregates.schedule"
AGGREGATES_PUBLISHED = "aggregates.publish"
SCHEDULE_CHANGED = "aggregates.schedule"
AUTOMATIC = "schedule"
DAY_SECONDS = 86_400


class NotInCoalition(Exception):
    """Publishing needs a coalition room; this node has joined no coalition yet."""


@dataclass(frozen=True)
class Publication:
    record_id: str
    aggregate: Aggregate
    recipients: tuple[str, ...]


async def publish_aggregate(node: Node, *, actor: str, now: int) -> Publication:
    """Build this node's aggregate as of ``now`` and send it to every verified member.

    It carries the latest overlap estimate; when that is missing or stale a new survey starts,
    and the figures are published again, automatically, once it has finished.
    """
    if await node.coalition_room() is not None:
        await _refresh_overlap(node, now)
    return await _publish(node, actor=actor, now=now)


async def _refresh_overlap(node: Node, now: int) -> bool:
    """Start a survey if one is needed; whether its answers are still awaited."""
    survey = await start_survey(node, now=now, publish_when_done=True)
    return survey is not None and bool(survey.check_ids)


async def _publish(node: Node, *, actor: str, now: int) -> Publication:
    room_id = await node.coalition_room()
    if room_id is None:
        raise NotInCoalition("this node is in no coalition yet")
    async with node.store.read() as tx:
        cases = [record.payload for record in await own_case_records(tx)]
        overlap = await latest_report(tx)
    aggregate = build_aggregate(cases, as_of=now, granularity=Granularity.YEAR, overlap=overlap)
    record = build_record(node.org_id, aggregate, record_id=new_record_id(), issued_at=now)
    members = await other_members(node)

    if members:
        await share_in_room(node, [record], members, room_id, actor=actor, issued_at=now)
    async with node.store.transaction() as tx:
        await tx.settings.set(PUBLISHED_SETTING, aggregate.model_dump(mode="json"))
        await tx.audit.append(actor, AGGREGATES_PUBLISHED,
                              details={"record_id": record.record_id, "members": members})
    return Publication(record.record_id, aggregate, tuple(members))


async def publish_finished_survey(node: Node, now: int) -> bool:
    """Keep a finished survey's report and, if it was asked for, publish with it."""
    survey = await finish_survey(node, now)
    if survey is None or not survey.publish_when_done:
        return False
    await _publish(node, actor=AUTOMATIC, now=now)
    return True


# --- the schedule -------------------------------------------------------------------------


class PublicationSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    every_days: int = Field(default=0, ge=0, le=366,
                            description="publish every this many days; 0: only on demand")


async def publication_schedule(node: Node) -> PublicationSchedule:
    async with node.store.read() as tx:
        return PublicationSchedule.model_validate(await tx.settings.get(SCHEDULE_SETTING) or {})


async def set_publication_schedule(node: Node, schedule: PublicationSchedule, *,
                                   actor: str) -> None:
    async with node.store.transaction() as tx:
        await tx.settings.set(SCHEDULE_SETTING, schedule.model_dump(mode="json"))
        await tx.audit.append(actor, SCHEDULE_CHANGED,
                              details={"every_days": schedule.every_days})


def is_due(schedule: PublicationSchedule, last: Aggregate | None, now: int) -> bool:
    if schedule.every_days == 0:
        return False
    return last is None or now >= last.as_of + schedule.every_days * DAY_SECONDS


async def publication_tick(node: Node, now: int) -> None:
    """One round of the node's publishing duties: publish after a finished survey, complete a
    publication that went out without an overlap estimate, and start the scheduled publication
    when it is due (it goes out when its survey has finished)."""
    await publish_finished_survey(node, now)
    if await node.coalition_room() is None:
        return
    async with node.store.read() as tx:
        last, running = await own_published(tx), await current_survey(tx)
    if running is not None:
        return
    if last is not None and last.overlap is None:
        await _complete_estimate(node, now)
    elif is_due(await publication_schedule(node), last, now) \
            and not await _refresh_overlap(node, now):
        await _publish(node, actor=AUTOMATIC, now=now)


async def _complete_estimate(node: Node, now: int) -> None:
    """Figures published before the linkage key arrived carry no overlap estimate, and the
    coalition's distinct-case count stays a wide range: once an estimate can be made, make it
    and publish again (nothing happens while there is still no key)."""
    async with node.store.read() as tx:
        ready = await latest_report(tx)
    if ready is not None:
        await _publish(node, actor=AUTOMATIC, now=now)
        return
    survey = await start_survey(node, now=now, publish_when_done=True)
    if survey is not None and not survey.check_ids:  # nobody to ask: finished already
        await _publish(node, actor=AUTOMATIC, now=now)


async def run_publication_duties(node: Node, *, every_seconds: float = 1.0) -> None:
    """Run :func:`publication_tick` until cancelled (next to the sync engine)."""
    await repeat(lambda now: publication_tick(node, now), every_seconds=every_seconds,
                 failure="aggregate publishing duty failed", log=log)


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
