"""Gathering this node's overlap estimate (``node.features.figures.overlap``) with the
de-duplication queries.

A survey asks the members before this node (by org id) about a random sample of its cases, one
``dedup-query`` per case sent through the one sharing path (``node.features.dedup.service``), and
counts the
answers as they arrive. It is finished when every asked member answered about every sampled
case, or :data:`SURVEY_WAIT_SECONDS` after it started (cases still unanswered, or refused by a
member's rate limit, are then left out of the sample). A finished survey's report is kept and
goes into every aggregate published after it.

State lives in the store's encrypted settings, as for the checks themselves: the survey in
progress (:data:`SURVEY_SETTING`) and the latest report (:data:`REPORT_SETTING`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydantic import BaseModel

from node.core.runtime import Node
from node.core.store.store import StoreTransaction
from node.features.campaigns import other_members
from node.features.cases import own_case_records
from node.features.dedup import (
    CheckState,
    DedupError,
    key_state,
    load_checks,
    matchable_cases,
    start_overlap_checks,
)
from node.features.figures.overlap import draw_sample, earlier_members, published_report
from schemas.payloads import OverlapReport

SURVEY_SETTING = "aggregates.overlap_survey"
REPORT_SETTING = "aggregates.overlap_report"
SURVEY_WAIT_SECONDS = 15 * 60
FRESH_SECONDS = 3600
"""A report younger than this is reused instead of asking members again."""


class Survey(BaseModel):
    started_at: int
    with_members: list[str]
    population: int
    check_ids: list[str]
    publish_when_done: bool = False
    publish_to: list[str] = []
    """The coalitions to publish to once done (decision 0032; empty: the node's first)."""


def _counts(checks: Sequence[CheckState]) -> tuple[int, int]:
    """How many sampled cases are settled (answered by every asked member, or matched by one),
    and how many of those some asked member holds."""
    checked = matched = 0
    for check in checks:
        answers = [a for a in check.answers if a.org_id in check.asked and a.refused is None]
        hit = any(a.score_band != "none" for a in answers)
        if hit or {a.org_id for a in answers} >= set(check.asked):
            checked += 1
            matched += hit
    return checked, matched


def survey_report(survey: Survey, checks: Sequence[CheckState]) -> OverlapReport:
    """The survey's estimate: the settled cases are its sample (no earlier member: none shared)."""
    if not survey.with_members:
        return published_report([], 0, 0, 0, as_of=survey.started_at)
    checked, matched = _counts(checks)
    return published_report(survey.with_members, survey.population, checked, matched,
                            as_of=survey.started_at)


def is_finished(survey: Survey, checks: Sequence[CheckState], now: int) -> bool:
    settled, _ = _counts(checks)
    return settled == len(survey.check_ids) or now >= survey.started_at + SURVEY_WAIT_SECONDS


async def current_survey(tx: StoreTransaction) -> Survey | None:
    saved = await tx.settings.get(SURVEY_SETTING)
    return None if saved is None else Survey.model_validate(saved)


async def latest_report(tx: StoreTransaction) -> OverlapReport | None:
    saved = await tx.settings.get(REPORT_SETTING)
    return None if saved is None else OverlapReport.model_validate(saved)


async def start_survey(node: Node, *, now: int, publish_when_done: bool,
                       rng: random.Random | None = None,
                       publish_to: str | None = None) -> Survey | None:
    """Start a survey, unless one is under way or the latest report is fresh.

    The new (or current) survey; one with no checks has finished already (its report is kept).
    ``None`` when none is needed or none can be made (no linkage key yet: the overlap stays
    unknown until one arrives). ``publish_to``: a coalition to publish to once it is done
    (added to the survey under way, if any).
    """
    async with node.store.read() as tx:
        running, report = await current_survey(tx), await latest_report(tx)
    if running is not None:
        if publish_to is not None and publish_to not in running.publish_to:
            running.publish_to.append(publish_to)
            async with node.store.transaction() as tx:
                await tx.settings.set(SURVEY_SETTING, running.model_dump(mode="json"))
        return running
    if report is not None and now - report.as_of < FRESH_SECONDS:
        return None
    state = await key_state(node)
    if state is None:
        return None
    async with node.store.read() as tx:
        cases = {r.record_id: r.payload for r in await own_case_records(tx)}
    matchable = matchable_cases(cases, state.key(), state.scheme)
    asked = earlier_members(node.org_id, await other_members(node))
    sample = draw_sample(sorted(matchable), rng or random.SystemRandom()) if asked else []
    try:
        check_ids = await start_overlap_checks(node, [matchable[i] for i in sample], asked,
                                               now=now)
    except DedupError:
        return None
    survey = Survey(started_at=now, with_members=asked, population=len(matchable),
                    check_ids=check_ids, publish_when_done=publish_when_done,
                    publish_to=[] if publish_to is None else [publish_to])
    async with node.store.transaction() as tx:
        if check_ids:
            await tx.settings.set(SURVEY_SETTING, survey.model_dump(mode="json"))
        else:  # nobody to ask, or nothing to ask about: finished already
            await tx.settings.set(REPORT_SETTING, survey_report(survey, []).model_dump(mode="json"))
    return survey


async def finish_survey(node: Node, now: int) -> Survey | None:
    """Keep the report of the survey under way if it has finished; that survey, or ``None``."""
    async with node.store.read() as tx:
        survey = await current_survey(tx)
    if survey is None:
        return None
    checks = await load_checks(node, survey.check_ids)
    if not is_finished(survey, checks, now):
        return None
    async with node.store.transaction() as tx:
        await tx.settings.set(REPORT_SETTING,
                              survey_report(survey, checks).model_dump(mode="json"))
        await tx.settings.set(SURVEY_SETTING, None)
    return survey
