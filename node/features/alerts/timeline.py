"""The timeline rules of an alert, pure: updates in order, answers and offers with their times.

- **Updates** (:class:`schemas.payloads.AlertUpdate`) never replace the alert's text: each is
  appended with the next order number, and every version of the alert carries all of them. A
  receiving node merges what arrives by order number: an update that comes before an earlier one
  is kept and placed, a duplicate changes nothing, and an order number already known keeps its
  first content (history is not rewritten).
- **Reopening** a closed alert needs a reason, and is shown as a reopening.
- **Answers** (delivered, seen, helping) are kept per version of the member's acknowledgement,
  each with its time; the highest version is the member's current answer.
- **Offers** accumulate: a later answer adds to what was offered, never replaces it, and each
  offer keeps the time it was first made. A time is ``None`` where it was never recorded (state
  kept by a node before times were), shown as unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from schemas.payloads import AlertOffer, AlertUpdate

ACTIVE, CLOSED = "active", "closed"
REASON_NEEDED: Final = "a closed alert is reopened only with a reason"


class TimelineRefused(ValueError):
    """An update the rules refuse; ``field`` names the input at fault."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class AnswerEvent(BaseModel):
    """One answer of a member to an alert: a version of its acknowledgement."""

    version: int
    status: str
    at: int | None = None


class OfferEntry(BaseModel):
    """One kind of help offered, and when it was first offered."""

    capability: str
    at: int | None = None


# --- updates --------------------------------------------------------------------------------------


def is_reopening(previous_status: str, status: str) -> bool:
    return previous_status == CLOSED and status != CLOSED


def next_update(current_status: str, current_version: int, *, status: str, text: str | None,
                reason: str | None, by: str, at: int) -> AlertUpdate:
    """The update that moves an alert from ``current_status`` to ``status``; it travels in the
    next version, so its order number is the current version."""
    reason = (reason or "").strip() or None
    if is_reopening(current_status, status) and reason is None:
        raise TimelineRefused("reason", REASON_NEEDED)
    return AlertUpdate(seq=current_version, status=status, text=(text or "").strip() or None,
                       reason=reason, at=at, by=by)


def merge_updates(known: Sequence[AlertUpdate], arriving: Iterable[AlertUpdate]
                  ) -> list[AlertUpdate]:
    """``known`` and ``arriving`` in order-number order; a known order number keeps its entry."""
    by_seq = {update.seq: update for update in known}
    for update in arriving:
        by_seq.setdefault(update.seq, update)
    return [by_seq[seq] for seq in sorted(by_seq)]


def read_updates(raw: object, issuer: str) -> tuple[list[AlertUpdate], int]:
    """The updates a received alert carries that are well formed and made by its issuer, and
    how many entries were not (kept in the alert's claims, not applied)."""
    entries = raw if isinstance(raw, list) else []
    readable: list[AlertUpdate] = []
    for entry in entries:
        try:
            update = AlertUpdate.model_validate(entry)
        except ValidationError:
            continue
        if update.by == issuer:
            readable.append(update)
    return readable, len(entries) - len(readable)


def legacy_update(claims: Mapping[str, Any], previous_text: object, *, version: int, at: int,
                  issuer: str) -> AlertUpdate | None:
    """An older peer's new version carries no updates list: it changed status (and maybe the
    text) in place. As an update, so that it shows in the timeline."""
    if version < 2 or "updates" in claims:
        return None
    text = claims.get("text")
    try:
        return AlertUpdate(seq=version - 1, status=claims.get("status", ACTIVE),
                           text=text if text != previous_text else None, at=at, by=issuer)
    except ValidationError:
        return None


def missing_updates(updates: Sequence[AlertUpdate], version: int) -> list[int]:
    """Order numbers below the alert's version that this node has no update for: not arrived
    yet, or made before alerts kept their updates."""
    known = {update.seq for update in updates}
    return [seq for seq in range(1, version) if seq not in known]


@dataclass(frozen=True)
class TimelineEntry:
    update: AlertUpdate
    reopened: bool


def timeline(updates: Sequence[AlertUpdate]) -> list[TimelineEntry]:
    """The updates in order, each marked when it reopened a closed alert."""
    entries: list[TimelineEntry] = []
    previous = ACTIVE
    for update in sorted(updates, key=lambda u: u.seq):
        entries.append(TimelineEntry(update, is_reopening(previous, update.status)))
        previous = update.status
    return entries


# --- answers and offers ---------------------------------------------------------------------------


def record_answer(history: Sequence[AnswerEvent], version: int, status: str, at: int | None
                  ) -> list[AnswerEvent]:
    """``history`` with this answer, in version order; a version already known is unchanged."""
    if any(event.version == version for event in history):
        return list(history)
    return sorted([*history, AnswerEvent(version=version, status=status, at=at)],
                  key=lambda event: event.version)


def current_answer(history: Sequence[AnswerEvent]) -> AnswerEvent | None:
    return max(history, key=lambda event: event.version, default=None)


def accumulate_offers(known: Sequence[OfferEntry], arriving: Iterable[OfferEntry]
                      ) -> list[OfferEntry]:
    """Every capability offered so far, each with the earliest time for it; oldest first. An
    unknown time comes from before times were kept, so it stays unknown (and comes first)."""
    earliest: dict[str, int | None] = {}
    for offer in [*known, *arriving]:
        if offer.capability not in earliest:
            earliest[offer.capability] = offer.at
        else:
            seen = earliest[offer.capability]
            earliest[offer.capability] = None if seen is None or offer.at is None else min(
                seen, offer.at)
    return sorted((OfferEntry(capability=c, at=at) for c, at in earliest.items()),
                  key=lambda offer: (offer.at is not None, offer.at or 0, offer.capability))


def offers_of_ack(claims: Mapping[str, Any], at: int) -> list[OfferEntry]:
    """What an acknowledgement offers, with times: each ``offered`` entry with its own, and any
    ``offers`` code it does not time (an older peer's) at the acknowledgement's time."""
    timed: list[OfferEntry] = []
    for entry in claims.get("offered", []) if isinstance(claims.get("offered"), list) else []:
        try:
            offer = AlertOffer.model_validate(entry)
        except ValidationError:
            continue
        timed.append(OfferEntry(capability=offer.capability, at=offer.at))
    named = {offer.capability for offer in timed}
    codes = claims.get("offers") if isinstance(claims.get("offers"), list) else []
    untimed = [OfferEntry(capability=code, at=at) for code in codes or []
               if isinstance(code, str) and code not in named]
    return accumulate_offers(timed, untimed)


def wire_offers(offers: Sequence[OfferEntry]) -> tuple[list[str], list[AlertOffer]]:
    """Offers as an acknowledgement carries them: every code, and those with a known time."""
    codes = sorted(offer.capability for offer in offers)
    timed = [AlertOffer(capability=o.capability, at=o.at) for o in offers if o.at is not None]
    return codes, timed
