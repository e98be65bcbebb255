"""Publishing this node's aggregate figures to its coalitions, and reading the members' back.

An aggregate is a signed ``aggregate`` record sent through the one sharing path
(:func:`node.core.sharing.share_records`) to every verified member of one coalition, in that
coalition's room, as campaign records are. Figures are published per coalition (decision 0032):
staff pick the coalition (the node's only one by default), the schedule publishes to each, and
each coalition's view is made from what came through that coalition only, so the figures of one
coalition never mix with another's. Each publication is a new record; members keep every one
among their received records (with the coalition it came through) and the coalition view uses
each member's latest (by ``as_of``). This node's own latest publication to each coalition is kept
in its settings so that the view includes itself; a publication kept before decision 0032 was
to the node's first coalition. Leaving a coalition stops publishing there
(:func:`stop_publishing`); what was received through it stays.

Which cases count is unchanged: every case of this node (the figures are suppressed aggregates,
published whatever each case's consent; consent per coalition governs sharing cases).

Figures are published by year: members must use the same granularity for their sums to add up.

Each aggregate carries the node's latest overlap estimate in that coalition
(``node.features.figures.overlap``, gathered by ``node.features.figures.overlap_survey`` among
that coalition's members). Publishing starts a fresh survey when the estimate is missing or
stale and publishes again once it has finished. Besides on demand (web, API, ``minga aggregates
publish``), the node publishes by itself every ``PublicationSchedule.every_days`` days (0, the
default: never), from :func:`run_publication_duties` beside the sync engine. An overlap estimate
goes only to a coalition whose members include every member it was made with (it names them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from federation.transport import MatrixTransport
from node.core.duties import repeat
from node.core.runtime import CoalitionNotChosen, Node
from node.core.sharing import share_in_room
from node.core.store.coalitions import Coalition
from node.core.store.received import MAX_PAGE
from node.core.store.store import StoreTransaction
from node.features.campaigns import other_members
from node.features.cases import own_case_records
from node.features.figures.aggregates import Granularity, build_aggregate
from node.features.figures.coalition_view import aggregate_from_claims, latest_per_member
from node.features.figures.overlap import asked_the_members_before
from node.features.figures.overlap_survey import (
    current_survey,
    drop_survey,
    finish_survey,
    latest_report,
    start_survey,
)
from schemas.ids import new_record_id
from schemas.payloads import Aggregate, OverlapReport
from schemas.records import RecordKind, build_record

log = logging.getLogger("minga.publishing")

PUBLISHED_SETTING = "aggregates.published"
"""Before decision 0032: this node's latest publication, to its first coalition."""
SCHEDULE_SETTING = "aggregates.schedule"
AGGREGATES_PUBLISHED = "aggregates.publish"
SCHEDULE_CHANGED = "aggregates.schedule"
AUTOMATIC = "schedule"
DAY_SECONDS = 86_400


class NotInCoalition(Exception):
    """Publishing needs a coalition room; this node has joined no coalition yet."""


def published_setting(coalition_id: str) -> str:
    """The setting keeping this node's latest publication to ``coalition_id``."""
    return f"{PUBLISHED_SETTING}.{coalition_id}"


@dataclass(frozen=True)
class Publication:
    record_id: str
    aggregate: Aggregate
    recipients: tuple[str, ...]
    coalition_id: str | None = None


async def _publishing_to(node: Node, coalition_id: str | None) -> Coalition:
    """The coalition to publish to; :class:`NotInCoalition` when the node is in none (and
    :class:`CoalitionNotChosen` when it must be named, or is not one of the node's)."""
    if coalition_id is None and not await node.coalitions():
        raise NotInCoalition("this node is in no coalition yet")
    return await node.chosen_coalition(coalition_id)


async def publish_aggregate(node: Node, *, actor: str, now: int,
                            coalition_id: str | None = None) -> Publication:
    """Build this node's aggregate as of ``now`` and send it to every verified member of the
    coalition ``coalition_id`` (the node's only one when None).

    It carries the latest overlap estimate; when that is missing or stale a new survey starts,
    and the figures are published again, automatically, once it has finished.
    """
    coalition = await _publishing_to(node, coalition_id)
    await _refresh_overlap(node, now, coalition.coalition_id)
    return await _publish(node, coalition, actor=actor, now=now)


async def _refresh_overlap(node: Node, now: int, coalition_id: str) -> bool:
    """Start a survey if one is needed (publishing to ``coalition_id`` when done); whether its
    answers are still awaited."""
    survey = await start_survey(node, coalition_id, now=now, publish_when_done=True)
    return survey is not None and bool(survey.check_ids)


def fits(overlap: OverlapReport | None, members: frozenset[str]) -> OverlapReport | None:
    """The overlap estimate, if it names only ``members`` (a coalition's): an estimate made
    with members of another coalition is not sent there (decision 0032)."""
    if overlap is None or not set(overlap.with_members) <= members:
        return None
    return overlap


async def _publish(node: Node, coalition: Coalition, *, actor: str, now: int) -> Publication:
    members = await other_members(node, coalition.coalition_id)
    async with node.store.read() as tx:
        cases = [record.payload for record in await own_case_records(tx)]
        overlap = fits(await latest_report(tx, coalition.coalition_id), frozenset(members))
    aggregate = build_aggregate(cases, as_of=now, granularity=Granularity.YEAR, overlap=overlap)
    record = build_record(node.org_id, aggregate, record_id=new_record_id(), issued_at=now)
    if members:
        await share_in_room(node, [record], members, coalition.room_id, actor=actor,
                            issued_at=now, coalition_id=coalition.coalition_id, alike=True)
    async with node.store.transaction() as tx:
        await tx.settings.set(published_setting(coalition.coalition_id),
                              aggregate.model_dump(mode="json"))
        await tx.audit.append(actor, AGGREGATES_PUBLISHED,
                              details={"record_id": record.record_id, "members": members,
                                       "coalition": coalition.coalition_id})
    return Publication(record.record_id, aggregate, tuple(members), coalition.coalition_id)


async def publish_finished_survey(node: Node, coalition: Coalition, now: int) -> bool:
    """Keep a finished survey's report in ``coalition`` and, if it was asked for, publish
    there with it."""
    survey = await finish_survey(node, coalition.coalition_id, now)
    if survey is None or not survey.publish_when_done:
        return False
    await _publish(node, coalition, actor=AUTOMATIC, now=now)
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
    """One round of the node's publishing duties: publish after a finished survey, and in each
    coalition complete a publication that went out without a current overlap estimate, or start
    the scheduled publication when it is due (it goes out when its survey has finished)."""
    for coalition in await node.coalitions():
        await publish_finished_survey(node, coalition, now)
        async with node.store.read() as tx:
            last = await own_published(tx, coalition.coalition_id)
            running = await current_survey(tx, coalition.coalition_id)
        if running is not None:
            continue
        if last is not None:
            members = await other_members(node, coalition.coalition_id)
            if not asked_the_members_before(last.overlap, node.org_id, members):
                await _complete_estimate(node, coalition, members, now)
                continue
        if is_due(await publication_schedule(node), last, now) \
                and not await _refresh_overlap(node, now, coalition.coalition_id):
            await _publish(node, coalition, actor=AUTOMATIC, now=now)


async def _complete_estimate(node: Node, coalition: Coalition, members: list[str],
                             now: int) -> None:
    """Figures published before the linkage key arrived carry no overlap estimate, and those
    published while the roster was still arriving (or before a member joined or left) one that
    the others read as unknown; either way the coalition's distinct-case count stays a wide
    range. Once a current estimate can be made (``members``: the coalition's other verified
    members), make it and publish again (nothing happens while there is still no key)."""
    async with node.store.read() as tx:
        ready = await latest_report(tx, coalition.coalition_id)
    if asked_the_members_before(ready, node.org_id, members):
        await _publish(node, coalition, actor=AUTOMATIC, now=now)
        return
    survey = await start_survey(node, coalition.coalition_id, now=now, publish_when_done=True)
    if survey is not None and not survey.check_ids:  # nobody to ask: finished already
        await _publish(node, coalition, actor=AUTOMATIC, now=now)


async def run_publication_duties(node: Node, *, every_seconds: float = 1.0) -> None:
    """Run :func:`publication_tick` until cancelled (next to the sync engine)."""
    await repeat(lambda now: publication_tick(node, now), every_seconds=every_seconds,
                 failure="aggregate publishing duty failed", log=log)


async def own_published(tx: StoreTransaction, coalition_id: str) -> Aggregate | None:
    """This node's latest publication to ``coalition_id`` (one kept before decision 0032 was
    to the node's first coalition)."""
    saved = await tx.settings.get(published_setting(coalition_id))
    if saved is None and coalition_id == await _first_coalition(tx):
        saved = await tx.settings.get(PUBLISHED_SETTING)
    return None if saved is None else Aggregate.model_validate(saved)


async def _first_coalition(tx: StoreTransaction) -> str | None:
    known = await tx.coalitions.all(with_left=True)
    return known[0].coalition_id if known else None


async def _received(tx: StoreTransaction, coalition_id: str) -> list[tuple[str, Aggregate]]:
    """The aggregates received through ``coalition_id`` (a record marked with no coalition
    came through the node's first)."""
    first = await _first_coalition(tx)
    found: list[tuple[str, Aggregate]] = []
    offset = 0
    while True:
        page = await tx.received.list_latest(kind=RecordKind.AGGREGATE.value, limit=MAX_PAGE,
                                             offset=offset)
        for record in page:
            if (record.coalition_id or first) != coalition_id:
                continue
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


async def figures_coalition(node: Node, coalition_id: str | None) -> Coalition:
    """The coalition whose figures are asked for: the one named (it may be one this node
    left: what came through it stays), else the node's only one. :class:`NotInCoalition`
    when the node is in none; :class:`CoalitionNotChosen` when it must be named or is
    unknown."""
    if coalition_id is not None:
        async with node.store.read() as tx:
            known = {c.coalition_id: c for c in await tx.coalitions.all(with_left=True)}
        if coalition_id in known:
            return known[coalition_id]
        raise CoalitionNotChosen(f"coalition: this node is in no coalition {coalition_id!r}")
    return await _publishing_to(node, None)


async def coalition_aggregates(node: Node, coalition_id: str) -> dict[str, Aggregate]:
    """The latest aggregate of every member of ``coalition_id``, as received through that
    coalition only, this node's last publication there included."""
    async with node.store.read() as tx:
        published = await _received(tx, coalition_id)
        own = await own_published(tx, coalition_id)
    if own is not None:
        published.append((node.org_id, own))
    return latest_per_member(published)


async def stop_publishing(node: Node, transport: MatrixTransport, coalition: Coalition) -> None:
    """The ``coalition_left`` hook: publish no more to the coalition this node left (the
    schedule publishes to active coalitions only; its survey under way is dropped)."""
    async with node.store.transaction() as tx:
        await drop_survey(tx, coalition.coalition_id)
