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
progress (:data:`SURVEY_SETTING`) and the latest report (:data:`REPORT_SETTING`), one of each per
coalition (decision 0032: a survey asks the members of one coalition, and its report goes into
that coalition's figures only). The settings kept before that decision are the node's first
coalition's.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydantic import BaseModel

from federation.consent import with_consent_scope
from node.core.runtime import CoalitionNotChosen, Node
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
from node.features.figures.overlap import (
    asked_the_members_before,
    draw_sample,
    earlier_members,
    published_report,
)
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


def _key(name: str, coalition_id: str) -> str:
    return f"{name}.{coalition_id}"


async def _saved(tx: StoreTransaction, name: str, coalition_id: str) -> object:
    """The setting ``name`` of ``coalition_id``; the one kept before decision 0032 is the
    node's first coalition's."""
    saved = await tx.settings.get(_key(name, coalition_id))
    if saved is None:
        known = await tx.coalitions.all(with_left=True)
        if known and known[0].coalition_id == coalition_id:
            saved = await tx.settings.get(name)
    return saved


async def _save(tx: StoreTransaction, name: str, coalition_id: str, value: object) -> None:
    await tx.settings.set(_key(name, coalition_id), value)
    if await tx.settings.get(name) is not None:  # the old one is the first coalition's
        known = await tx.coalitions.all(with_left=True)
        if known and known[0].coalition_id == coalition_id:
            await tx.settings.set(name, None)


async def current_survey(tx: StoreTransaction, coalition_id: str) -> Survey | None:
    saved = await _saved(tx, SURVEY_SETTING, coalition_id)
    return None if saved is None else Survey.model_validate(saved)


async def latest_report(tx: StoreTransaction, coalition_id: str) -> OverlapReport | None:
    saved = await _saved(tx, REPORT_SETTING, coalition_id)
    return None if saved is None else OverlapReport.model_validate(saved)


async def drop_survey(tx: StoreTransaction, coalition_id: str) -> None:
    """Forget the survey under way in ``coalition_id`` (this node left it)."""
    await _save(tx, SURVEY_SETTING, coalition_id, None)


async def start_survey(node: Node, coalition_id: str, *, now: int, publish_when_done: bool,
                       rng: random.Random | None = None) -> Survey | None:
    """Start a survey, unless one is under way or the latest report is fresh and asked the
    members now before this node.

    The new (or current) survey; one with no checks has finished already (its report is kept).
    ``None`` when none is needed or none can be made (no linkage key yet: the overlap stays
    unknown until one arrives). The survey asks the members of ``coalition_id`` only.
    """
    async with node.store.read() as tx:
        running = await current_survey(tx, coalition_id)
        report = await latest_report(tx, coalition_id)
    if running is not None:
        return running
    members = await other_members(node, coalition_id)
    if report is not None and now - report.as_of < FRESH_SECONDS \
            and asked_the_members_before(report, node.org_id, members):
        return None
    asked = earlier_members(node.org_id, members)
    try:
        found = await _ask(node, coalition_id, asked, now, rng)
    except (DedupError, CoalitionNotChosen):  # no key in this coalition (yet)
        return None
    if found is None:
        return None
    population, check_ids = found
    survey = Survey(started_at=now, with_members=asked, population=population,
                    check_ids=check_ids, publish_when_done=publish_when_done)
    async with node.store.transaction() as tx:
        if check_ids:
            await _save(tx, SURVEY_SETTING, coalition_id, survey.model_dump(mode="json"))
        else:  # nobody to ask, or nothing to ask about: finished already
            await _save(tx, REPORT_SETTING, coalition_id,
                        survey_report(survey, []).model_dump(mode="json"))
    return survey


async def _ask(node: Node, coalition_id: str, asked: list[str], now: int,
               rng: random.Random | None) -> tuple[int, list[str]] | None:
    """Ask ``asked`` about a sample of this node's matchable cases under the linkage key of
    ``coalition_id``: (how many cases are matchable, the check ids); None without a key.

    The linkage key, the matching and the checks are the de-duplication feature's; with a key
    per coalition they are those of ``coalition_id`` (its key, its room, its consent)."""
    if coalition_id not in {c.coalition_id for c in await node.coalitions()}:
        return None
    state = await key_state(node, coalition_id)
    if state is None:
        return None
    async with node.store.read() as tx:
        known = await tx.coalitions.all(with_left=True)
        first = known[0].coalition_id if known else None
        cases = {r.record_id: with_consent_scope(r, first).payload
                 for r in await own_case_records(tx)}
    matchable = matchable_cases(cases, state.key(), state.scheme, coalition_id)
    sample = draw_sample(sorted(matchable), rng or random.SystemRandom()) if asked else []
    check_ids = await start_overlap_checks(node, [matchable[i] for i in sample], asked, now=now,
                                           coalition_id=coalition_id)
    return len(matchable), check_ids


async def finish_survey(node: Node, coalition_id: str, now: int) -> Survey | None:
    """Keep the report of the survey under way in ``coalition_id`` if it has finished; that
    survey, or ``None``."""
    async with node.store.read() as tx:
        survey = await current_survey(tx, coalition_id)
    if survey is None:
        return None
    checks = await load_checks(node, survey.check_ids)
    if not is_finished(survey, checks, now):
        return None
    async with node.store.transaction() as tx:
        await _save(tx, REPORT_SETTING, coalition_id,
                    survey_report(survey, checks).model_dump(mode="json"))
        await _save(tx, SURVEY_SETTING, coalition_id, None)
    return survey
