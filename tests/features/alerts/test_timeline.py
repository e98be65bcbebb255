"""The timeline rules of an alert: updates in order, reopening, answers and offers with times."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from node.features.alerts.timeline import (
    AnswerEvent,
    OfferEntry,
    TimelineRefused,
    accumulate_offers,
    current_answer,
    legacy_update,
    merge_updates,
    missing_updates,
    next_update,
    offers_of_ack,
    read_updates,
    record_answer,
    timeline,
    wire_offers,
)
from schemas.payloads import Alert, AlertAck, AlertUpdate

ISSUER = "oabcdefghijklmnopqrstuvwxy"
OTHER = "o" + "q" * 25


def _update(seq: int, status: str = "active", *, text: str | None = None,
            reason: str | None = None, at: int = 1000) -> AlertUpdate:
    return AlertUpdate(seq=seq, status=status, text=text, reason=reason, at=at + seq, by=ISSUER)


def test_an_update_takes_the_next_order_number_and_keeps_its_text_apart() -> None:
    update = next_update("active", 1, status="released", text=" Sntl was released ",
                         reason=None, by=ISSUER, at=1234)
    assert (update.seq, update.status, update.text, update.at, update.by) == (
        1, "released", "Sntl was released", 1234, ISSUER)
    second = next_update("released", 2, status="closed", text="", reason=None, by=ISSUER, at=9)
    assert second.seq == 2 and second.text is None


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_reopening_a_closed_alert_needs_a_reason(reason: str | None) -> None:
    with pytest.raises(TimelineRefused) as refused:
        next_update("closed", 3, status="active", text="x", reason=reason, by=ISSUER, at=1)
    assert refused.value.field == "reason"


def test_a_reopening_with_a_reason_is_shown_as_a_reopening() -> None:
    reopen = next_update("closed", 2, status="active", text=None, reason="detained again",
                         by=ISSUER, at=5)
    assert reopen.reason == "detained again"
    entries = timeline([_update(1, "closed"), reopen, _update(3, "closed")])
    assert [(e.update.seq, e.reopened) for e in entries] == [(1, False), (2, True), (3, False)]
    # Closing twice, or updating an open alert, is no reopening and needs no reason.
    assert next_update("closed", 4, status="closed", text=None, reason=None, by=ISSUER,
                       at=6).reason is None
    assert next_update("active", 1, status="released", text=None, reason=None, by=ISSUER,
                       at=6).seq == 1


def test_updates_are_placed_by_order_number_whatever_order_they_arrive_in() -> None:
    second, first, third = _update(2, "released"), _update(1), _update(3, "closed")
    merged = merge_updates(merge_updates([], [second]), [third])
    assert [u.seq for u in merged] == [2, 3]
    assert missing_updates(merged, version=4) == [1]
    merged = merge_updates(merged, [first])
    assert [u.seq for u in merged] == [1, 2, 3]
    assert missing_updates(merged, version=4) == []


def test_a_duplicate_update_changes_nothing_and_history_is_not_rewritten() -> None:
    known = merge_updates([], [_update(1, "released", text="first")])
    assert merge_updates(known, [_update(1, "released", text="first")]) == known
    rewritten = _update(1, "closed", text="another story")
    assert merge_updates(known, [rewritten]) == known


def test_only_well_formed_updates_by_the_issuer_are_read() -> None:
    good = _update(1, "released").model_dump(mode="json")
    by_other = {**_update(2).model_dump(mode="json"), "by": OTHER}
    newer_peer = {**_update(3).model_dump(mode="json"), "channel": "sms"}
    readable, unreadable = read_updates([good, by_other, {"seq": "x"}, newer_peer], ISSUER)
    assert [u.seq for u in readable] == [1, 3]
    assert unreadable == 2
    assert readable[1].model_dump(mode="json")["channel"] == "sms"  # kept, as records do
    assert read_updates(None, ISSUER) == ([], 0)


def test_an_older_peers_version_without_updates_becomes_one_update() -> None:
    claims = {"text": "Sntl released today", "status": "released"}
    legacy = legacy_update(claims, "Sntl detained", version=2, at=77, issuer=ISSUER)
    assert legacy is not None
    assert (legacy.seq, legacy.status, legacy.text, legacy.at) == (
        1, "released", "Sntl released today", 77)
    same_text = legacy_update({"text": "a", "status": "closed"}, "a", version=3, at=1,
                              issuer=ISSUER)
    assert same_text is not None and same_text.text is None and same_text.seq == 2
    assert legacy_update(claims, "x", version=1, at=1, issuer=ISSUER) is None
    assert legacy_update({**claims, "updates": []}, "x", version=2, at=1, issuer=ISSUER) is None


def test_the_alert_record_refuses_updates_out_of_order_or_twice() -> None:
    base = {"alert_type": "arrest", "urgency": "critical", "country": "CO", "text": "x"}
    ok = Alert.model_validate({**base, "updates": [_update(1).model_dump(),
                                                   _update(2).model_dump()]})
    assert [u.seq for u in ok.updates] == [1, 2]
    for seqs in ([2, 1], [1, 1]):
        with pytest.raises(ValidationError, match="ascending"):
            Alert.model_validate({**base, "updates": [_update(s).model_dump() for s in seqs]})


def test_every_answer_is_kept_with_its_time_and_the_latest_counts() -> None:
    history = record_answer([], 1, "delivered", 100)
    history = record_answer(history, 3, "helping", 300)
    history = record_answer(history, 2, "seen", 200)  # arrived after version 3
    assert [(e.version, e.status, e.at) for e in history] == [
        (1, "delivered", 100), (2, "seen", 200), (3, "helping", 300)]
    assert record_answer(history, 2, "seen", 999) == history  # a duplicate: idempotent
    latest = current_answer(history)
    assert latest == AnswerEvent(version=3, status="helping", at=300)
    assert current_answer([]) is None


def test_offers_accumulate_each_with_the_time_it_was_first_made() -> None:
    first = accumulate_offers([], [OfferEntry(capability="legal_support", at=100)])
    second = accumulate_offers(first, [OfferEntry(capability="relocation", at=200),
                                       OfferEntry(capability="legal_support", at=200)])
    assert [(o.capability, o.at) for o in second] == [("legal_support", 100),
                                                      ("relocation", 200)]
    # An offer saved before offers had times was made before any timed one: still unknown.
    untimed = accumulate_offers([OfferEntry(capability="funds")], [
        *second, OfferEntry(capability="funds", at=300)])
    assert [(o.capability, o.at) for o in untimed] == [
        ("funds", None), ("legal_support", 100), ("relocation", 200)]
    # Out of order: an earlier time that arrives later wins.
    assert accumulate_offers(second, [OfferEntry(capability="relocation", at=150)])[1].at == 150


def test_an_acknowledgement_says_what_it_offers_and_when() -> None:
    codes, timed = wire_offers([OfferEntry(capability="relocation", at=200),
                                OfferEntry(capability="funds")])
    ack = AlertAck.model_validate({"alert": {"issuer": ISSUER, "record_id": (
        "0190a5c4-0000-7000-8000-0000000000aa")}, "status": "helping", "offers": codes,
        "offered": [o.model_dump() for o in timed]})
    claims = ack.model_dump(mode="json")
    offers = offers_of_ack(claims, at=500)
    # The untimed one (from before offers had times) takes the acknowledgement's time.
    assert [(o.capability, o.at) for o in offers] == [("relocation", 200), ("funds", 500)]
    older_peer = {"status": "helping", "offers": ["legal_support"]}
    assert [(o.capability, o.at) for o in offers_of_ack(older_peer, at=42)] == [
        ("legal_support", 42)]
    with pytest.raises(ValidationError, match="same capability twice"):
        AlertAck.model_validate({**claims, "offered": [timed[0].model_dump()] * 2})
