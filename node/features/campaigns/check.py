"""The campaign check (docs/architecture.md §12): before proposing, which known campaigns overlap
the draft.

Campaigns are less sensitive than cases, so this is a local fuzzy search over what members
announced (campaign records and proposals this node holds): instant, offline, nothing sent.

Matching is multilingual and accent-insensitive: text is NFKD-decomposed, combining marks
dropped, case-folded, split on anything that is not a letter or digit, and common English,
Spanish, French and Portuguese words removed. Titles are compared by token overlap and by
character trigrams (which forgive typos and inflections); a shared **target** is the strongest
sign of an overlap; shared countries and themes add a little. :func:`find_overlaps` is pure.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from node.core.runtime import Node
from node.features.campaigns.service import CLOSED, EXPIRED, all_proposals
from schemas.codes import CampaignTargetTypeCode
from schemas.common import Name, ShortText
from schemas.countries import CountryCode

_STOPWORD_TEXT: Final = """
a an and the of for to in on at by with from against about our their its is are be stop
el la los las un una unos unas y e o u de del al para por con sin contra en sobre que su sus
le les des du et ou pour par avec sans sur dans au aux ce ces son
o os as um uma e do da dos das no na nos nas pelo pela com sem
"""
STOPWORDS: Final = frozenset(_STOPWORD_TEXT.split())
REPORT_AT: Final = 35  # scores from 0 to 100
TARGET_MATCH: Final = 0.6


class DraftTarget(BaseModel):
    """A target as a proposal names it (``schemas.payloads.CampaignTarget``), its type not yet
    required: a draft is checked while it is still being written."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    target_type: CampaignTargetTypeCode | None = None
    country: CountryCode | None = None


class CampaignDraft(BaseModel):
    """What the proposer typed so far; ``targets`` are objects, as in the proposal itself."""

    model_config = ConfigDict(extra="forbid")

    title: ShortText
    targets: list[DraftTarget] = Field(default_factory=list, max_length=50)
    countries: list[CountryCode] = Field(default_factory=list, max_length=50)
    themes: list[ShortText] = Field(default_factory=list, max_length=50)


@dataclass(frozen=True)
class Announcement:
    kind: str  # "campaign" or "proposal"
    issuer: str
    record_id: str
    title: str
    targets: tuple[str, ...]
    countries: tuple[str, ...]
    themes: tuple[str, ...]


@dataclass(frozen=True)
class Overlap:
    kind: str
    issuer: str
    record_id: str
    title: str
    score: int
    reasons: tuple[str, ...]


def fold(text: str) -> str:
    """Lower case, accents and punctuation gone: ``"Café-Niño"`` -> ``"cafe nino"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join("".join(c if c.isalnum() else " " for c in bare).split())


def tokens(text: str) -> frozenset[str]:
    return frozenset(t for t in fold(text).split() if t not in STOPWORDS and len(t) > 1)


def _trigrams(words: Iterable[str]) -> frozenset[str]:
    grams: set[str] = set()
    for word in words:
        padded = f" {word} "
        grams.update(padded[i:i + 3] for i in range(len(padded) - 2))
    return frozenset(grams)


def dice(a: frozenset[str], b: frozenset[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


def title_similarity(a: str, b: str) -> float:
    ta, tb = tokens(a), tokens(b)
    return max(dice(ta, tb), dice(_trigrams(ta), _trigrams(tb)))


def _shared_targets(draft: Sequence[str], known: Sequence[str]) -> list[str]:
    return [k for k in known
            if any(title_similarity(d, k) >= TARGET_MATCH for d in draft)]


def _folded(values: Iterable[str]) -> set[str]:
    return {fold(v) for v in values}


def score(draft: CampaignDraft, known: Announcement) -> Overlap:
    title = title_similarity(draft.title, known.title)
    targets = _shared_targets([target.name for target in draft.targets], known.targets)
    countries = sorted(set(draft.countries) & set(known.countries))
    themes = _folded(draft.themes) & _folded(known.themes)
    value = 0.55 * title + (0.3 if targets else 0.0) + (0.1 if countries else 0.0) \
        + (0.05 if themes else 0.0)
    reasons = [f"similar title ({round(100 * title)}%)"] if title >= 0.4 else []
    reasons += [f"same target: {t}" for t in targets]
    reasons += [f"same country: {c}" for c in countries]
    reasons += ["shared theme"] if themes else []
    return Overlap(known.kind, known.issuer, known.record_id, known.title,
                   min(100, round(100 * value)), tuple(reasons))


def find_overlaps(draft: CampaignDraft, known: Iterable[Announcement]) -> list[Overlap]:
    """The known campaigns that overlap ``draft``, strongest first."""
    found = [score(draft, k) for k in known]
    hits = [o for o in found if o.score >= REPORT_AT or any(
        r.startswith("same target") for r in o.reasons)]
    return sorted(hits, key=lambda o: (-o.score, o.record_id))


async def known_announcements(node: Node, now: int) -> list[Announcement]:
    """Live proposals and campaigns this node knows (expired and closed ones left out)."""
    found = []
    for state in await all_proposals(node, now):
        if state.status in (EXPIRED, CLOSED):
            continue
        p = state.proposal
        found.append(Announcement(
            "campaign" if state.campaign else "proposal", state.issuer, state.record_id,
            p.title, tuple(t.name for t in p.targets), tuple(p.countries), tuple(p.themes)))
    return found


async def check_against_node(node: Node, draft: CampaignDraft, now: int) -> list[Overlap]:
    return find_overlaps(draft, await known_announcements(node, now))
