"""The one sharing path (node.sharing): per-recipient disclosures, consent all-or-nothing, every
kind through the same code, retractions, sharing history in the store. No homeserver here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from federation.consent import ConsentRefused, Recipient, UnknownFieldPath
from federation.disclosure import verify
from federation.encoding import b64u_decode
from federation.identity import KeyRing, OrgKeys, sign_member_entry
from federation.sdjwt import split_compact
from federation.sealing import MAX_RECIPIENTS
from federation.secretbox import FAST_TEST_PARAMS
from node.core.sharing import (
    AlreadyRetracted,
    NotAlike,
    NotDisclosable,
    NothingToRetract,
    ShareRefused,
    UnknownRecipient,
    audience_chunks,
    disclosed_fields,
    outgoing,
    preview_share,
    retract_record,
    share_record,
    share_records,
)
from node.core.store import Store, create_data_key, open_store
from node.core.store.shares import RETRACT, SHARE, ShareRepository
from schemas.case import Case
from schemas.ids import new_record_id
from schemas.payloads import Campaign
from schemas.records import CaseRecord, RecordKind, build_record, parse_payload
from tests.support.coalitions import in_coalition

T0 = 1_760_000_000
ISSUER_KEYS = OrgKeys.generate()
B_KEYS = OrgKeys.generate()
C_KEYS = OrgKeys.generate()
B, C = B_KEYS.org_id, C_KEYS.org_id
COALITION, OTHER = "!first:hs", "!second:hs"  # C is a member of the first only

CASE: dict[str, Any] = {
    "title": "Sntl-title-amenazas",
    "incident_date": "2023-05",
    "country": "CO",
    "place": "Sntl-place-Vereda-El-Palo",
    "narrative": "Sntl-narrative-panfletos firmados por un grupo armado",
    "violations": ["death_threat"],
    "victims": [{"kind": "individual", "name": "Sntl-name-María Yatacué", "gender": "woman",
                 "groups": ["indigenous_leader"]}],
    "perpetrators": [{"category": "armed_group"}],
    "consent_level": "coalition",
    "risk_level": "high",
}


def _case(**changes: Any) -> CaseRecord:
    payload = cast(Case, parse_payload(RecordKind.CASE, {**CASE, **changes}))
    return cast(CaseRecord, build_record(ISSUER_KEYS.org_id, payload, record_id=new_record_id(),
                                         issued_at=T0))


def _keyring() -> KeyRing:
    ring = KeyRing()
    for keys in (ISSUER_KEYS, B_KEYS, C_KEYS):
        ring.add_member_entry(sign_member_entry(keys, {"name": "x", "country": "CO"}))
    return ring


def _raw_bytes(token: str) -> bytes:
    """Everything a token carries, decoded: JWT parts and every disclosure."""
    compact = split_compact(token)
    parts = [b64u_decode(part) for part in compact.jwt.split(".")[:2]]
    return b"".join(parts + [b64u_decode(d) for d in compact.disclosures])


def test_a_case_goes_to_each_recipient_with_exactly_the_chosen_fields() -> None:
    record = _case()
    fields = ["country", "violations", "victims.groups"]
    sent = outgoing(record, [Recipient.member(B), Recipient.member(C)], fields,
                    keys=ISSUER_KEYS, issued_at=T0 + 5)
    assert [item.recipient for item in sent] == [B, C]
    ring = _keyring()
    for item in sent:
        verified = verify(item.token, ring, expected_audience=item.recipient)
        assert verified.issuer == ISSUER_KEYS.org_id
        assert verified.claims["record_id"] == record.record_id
        assert verified.claims["country"] == "CO"
        assert verified.claims["victims"] == [{"groups": ["indigenous_leader"]}]
        assert disclosed_fields(verified.claims) == sorted(fields)
        raw = _raw_bytes(item.token)
        for secret in ("Sntl-title", "Sntl-place", "Sntl-narrative", "Sntl-name"):
            assert secret.encode() not in raw
    # Fresh salts per audience: the two copies share no disclosure.
    first, second = (set(split_compact(i.token).disclosures) for i in sent)
    assert not first & second


def test_one_refused_recipient_refuses_the_whole_share() -> None:
    record = _case(consent_level="named_partners", consent_partners=[B])
    with pytest.raises(ShareRefused) as refused:
        outgoing(record, [Recipient.member(B), Recipient.member(C)], ["country", "narrative"],
                 keys=ISSUER_KEYS, issued_at=T0)
    assert list(refused.value.refusals) == [C]
    assert refused.value.paths == ("narrative",)


def test_internal_and_unknown_case_paths_are_refused() -> None:
    with pytest.raises(ShareRefused) as refused:
        outgoing(_case(), [Recipient.member(B)], ["risk_level"], keys=ISSUER_KEYS,
                 issued_at=T0)
    assert refused.value.paths == ("risk_level",)
    with pytest.raises(UnknownFieldPath):
        outgoing(_case(), [Recipient.member(B)], ["payload.secret"], keys=ISSUER_KEYS,
                 issued_at=T0)


def test_fields_none_shares_what_consent_allows_per_recipient() -> None:
    record = _case(consent_level="named_partners", consent_partners=[B])
    sent = outgoing(record, [Recipient.member(B), Recipient.member(C)], None,
                    keys=ISSUER_KEYS, issued_at=T0)
    by_recipient = {item.recipient: set(item.fields) for item in sent}
    assert "narrative" in by_recipient[B]
    assert "narrative" not in by_recipient[C] and "country" in by_recipient[C]


def test_preview_shows_claims_or_the_refusal_per_recipient() -> None:
    record = _case(consent_level="named_partners", consent_partners=[B])
    answers = preview_share(record, [Recipient.member(B), Recipient.member(C)],
                            ["country", "place"], issued_at=T0)
    b_answer, c_answer = answers[B], answers[C]
    assert isinstance(b_answer, dict) and b_answer["place"] == CASE["place"]
    assert isinstance(c_answer, ConsentRefused) and c_answer.paths == ("place",)


def test_other_kinds_use_the_same_path_with_chosen_fields() -> None:
    campaign = build_record(ISSUER_KEYS.org_id, Campaign(
        title="Sntl-campaign-title", goal="Sntl-campaign-goal", countries=["CO", "KE"],
        targets=[{"name": "Sntl-target", "target_type": "company"}],  # type: ignore[list-item]
    ), record_id=new_record_id(), issued_at=T0)
    sent = outgoing(campaign, [Recipient.member(B)], ["title", "countries", "targets.target_type"],
                    keys=ISSUER_KEYS, issued_at=T0)
    verified = verify(sent[0].token, _keyring(), expected_audience=B)
    assert verified.claims["title"] == "Sntl-campaign-title"
    assert verified.claims["targets"] == [{"target_type": "company"}]
    assert verified.claims["kind"] == "campaign"
    raw = _raw_bytes(sent[0].token)
    assert b"Sntl-campaign-goal" not in raw and b"Sntl-target" not in raw
    with pytest.raises(NotDisclosable) as refused:
        outgoing(campaign, [Recipient.member(B)], ["nonsense"], keys=ISSUER_KEYS, issued_at=T0)
    assert refused.value.paths == ("nonsense",)


# --- the shell, on a real store ----------------------------------------------------------------


@pytest.fixture
async def store(store_location: Path | str, tmp_path: Path) -> Store:
    key = create_data_key(tmp_path, "pass", FAST_TEST_PARAMS)
    store = await open_store(store_location, key)
    async with store.transaction() as tx:
        for keys in (ISSUER_KEYS, B_KEYS, C_KEYS):
            entry = sign_member_entry(keys, {"name": "x", "country": "CO"})
            await tx.orgs.save_member(keys.org_id, entry, verified=True, safety_code="s",
                                      matrix_user_id=f"@{keys.org_id}:hs")
        await in_coalition(tx, ISSUER_KEYS.org_id, B, C, coalition_id=COALITION)
        await in_coalition(tx, ISSUER_KEYS.org_id, B, coalition_id=OTHER)
    yield store  # type: ignore[misc]
    await store.close()


class Outbox:
    def __init__(self) -> None:
        self.queued: list[tuple[str, list[str], str]] = []

    async def enqueue(self, session: AsyncSession, room_id: str,
                      recipient_org_ids: Sequence[str], tokens: Sequence[str]) -> None:
        self.queued += [(room_id, list(recipient_org_ids), token) for token in tokens]


async def _room_for(org_id: str) -> str:
    return f"!pair-{org_id}:hs"


async def _history(store: Store, record_id: str) -> list[tuple[str, str, int, tuple[str, ...]]]:
    async with store.read() as tx:
        entries = await ShareRepository(tx.session, tx.cipher).history(record_id)
    return [(e.action, e.recipient, e.version, e.fields) for e in entries]


async def test_share_queues_per_recipient_and_records_history_and_audit(store: Store) -> None:
    outbox, record = Outbox(), _case()
    receipt = await share_record(store.transaction, ISSUER_KEYS, record, [B, C],
                                 ["country", "violations"], coalition_id=COALITION, actor="beatriz",
                                 pair_room_for=_room_for, enqueue=outbox.enqueue,
                                 issued_at=T0 + 10)
    assert [(room, to) for room, to, _ in outbox.queued] == [
        (f"!pair-{B}:hs", [B]), (f"!pair-{C}:hs", [C])]
    assert receipt.rooms == {B: f"!pair-{B}:hs", C: f"!pair-{C}:hs"}
    assert await _history(store, record.record_id) == [
        (SHARE, B, 1, ("country", "violations")), (SHARE, C, 1, ("country", "violations"))]
    async with store.read() as tx:
        audit = await tx.audit.recent(limit=5)
        actor = (await ShareRepository(tx.session, tx.cipher).history(record.record_id))[0].actor
    assert actor == "beatriz"
    assert audit[0].action == "record.share" and audit[0].target == record.record_id
    assert audit[0].details["recipients"] == {B: ["country", "violations"],
                                              C: ["country", "violations"]}
    assert "Sntl" not in json.dumps(audit[0].details)


async def test_refused_or_unknown_recipient_queues_nothing(store: Store) -> None:
    outbox = Outbox()
    record = _case(consent_level="named_partners", consent_partners=[B])
    with pytest.raises(ShareRefused):
        await share_record(store.transaction, ISSUER_KEYS, record, [B, C], ["narrative"],
                           coalition_id=COALITION, actor="a", pair_room_for=_room_for,
                           enqueue=outbox.enqueue, issued_at=T0)
    stranger = OrgKeys.generate().org_id
    for recipients in ([B, stranger], [ISSUER_KEYS.org_id], [B, B]):
        with pytest.raises(UnknownRecipient):
            await share_record(store.transaction, ISSUER_KEYS, record, recipients,
                               ["country"],
                               coalition_id=COALITION, actor="a", pair_room_for=_room_for,
                               enqueue=outbox.enqueue, issued_at=T0)
    assert outbox.queued == []
    assert await _history(store, record.record_id) == []


async def test_member_ids_already_read_are_checked_like_the_store(store: Store) -> None:
    """A caller that has just read the verified members passes them: the same refusals apply,
    against what it read (a member verified since is still refused until read again)."""
    outbox, record = Outbox(), _case()
    for recipients, verified in (([C], {B}), ([ISSUER_KEYS.org_id], {ISSUER_KEYS.org_id}),
                                 ([B, B], {B})):
        with pytest.raises(UnknownRecipient):
            await share_records(store.transaction, ISSUER_KEYS, [record], recipients,
                                ["country"],
                                coalition_id=COALITION, actor="a", pair_room_for=_room_for,
                                enqueue=outbox.enqueue, issued_at=T0, verified=verified)
    assert outbox.queued == []
    await share_records(store.transaction, ISSUER_KEYS, [record], [B], ["country"],
                        coalition_id=COALITION, actor="a",
                        pair_room_for=_room_for, enqueue=outbox.enqueue, issued_at=T0,
                        verified={B, C}, new_records=True)
    assert [to for _, to, _ in outbox.queued] == [[B]]
    assert await _history(store, record.record_id) == [(SHARE, B, 1, ("country",))]


async def test_retraction_goes_to_every_past_recipient_in_clear_and_blocks_resharing(
    store: Store,
) -> None:
    outbox, record = Outbox(), _case()
    with pytest.raises(NothingToRetract):
        await retract_record(store.transaction, ISSUER_KEYS, record, reason="error", note=None,
                             retraction_id=new_record_id(), actor="a",
                             pair_room_for=_room_for, enqueue=outbox.enqueue, issued_at=T0)
    await share_record(store.transaction, ISSUER_KEYS, record, [B], ["country"],
                       coalition_id=COALITION, actor="a",
                       pair_room_for=_room_for, enqueue=outbox.enqueue, issued_at=T0 + 1)
    await share_record(store.transaction, ISSUER_KEYS, record, [C], ["violations"],
                       coalition_id=COALITION, actor="a",
                       pair_room_for=_room_for, enqueue=outbox.enqueue, issued_at=T0 + 2)
    outbox.queued.clear()
    await retract_record(store.transaction, ISSUER_KEYS, record, reason="consent_withdrawn",
                         note=None, retraction_id=new_record_id(), actor="a",
                         pair_room_for=_room_for, enqueue=outbox.enqueue, issued_at=T0 + 3)
    assert sorted(to[0] for _, to, _ in outbox.queued) == sorted([B, C])
    ring = _keyring()
    for _room, (to,), token in outbox.queued:
        claims = verify(token, ring, expected_audience=to).claims
        assert claims["kind"] == "retraction"
        assert claims["target"] == {"issuer": ISSUER_KEYS.org_id, "record_id": record.record_id}
        assert claims["reason"] == "consent_withdrawn"
        assert not split_compact(token).disclosures  # everything in clear
    assert [h[0] for h in await _history(store, record.record_id)] == [
        SHARE, SHARE, RETRACT, RETRACT]
    with pytest.raises(AlreadyRetracted):
        await share_record(store.transaction, ISSUER_KEYS, record, [B], ["country"],
                           coalition_id=COALITION, actor="a",
                           pair_room_for=_room_for, enqueue=outbox.enqueue, issued_at=T0 + 4)


async def test_bulk_share_is_one_transaction_all_or_nothing(store: Store) -> None:
    outbox = Outbox()
    records = [_case() for _ in range(3)]
    refused = [*records, _case(consent_level="none")]
    with pytest.raises(ShareRefused):
        await share_records(store.transaction, ISSUER_KEYS, refused, [B], ["country"],
                            coalition_id=COALITION, actor="a", pair_room_for=_room_for,
                            enqueue=outbox.enqueue, issued_at=T0)
    assert outbox.queued == []
    receipts = await share_records(store.transaction, ISSUER_KEYS, records, [B, C],
                                   ["country"],
                                   coalition_id=COALITION, actor="a", pair_room_for=_room_for,
                                   enqueue=outbox.enqueue, issued_at=T0)
    assert [r.record_id for r in receipts] == [r.record_id for r in records]
    assert len(outbox.queued) == 6
    ring = _keyring()
    tokens_for_b = [token for room, (to,), token in outbox.queued if to == B]
    assert [verify(t, ring, expected_audience=B).claims["record_id"] for t in tokens_for_b] == [
        r.record_id for r in records]
    for record in records:
        assert await _history(store, record.record_id) == [
            (SHARE, B, 1, ("country",)), (SHARE, C, 1, ("country",))]
    async with store.read() as tx:
        (entry,) = await tx.audit.recent(limit=1)
    assert [d["record"] for d in entry.details["records"]] == [r.record_id for r in records]


# --- one share goes through one coalition (decision 0032) --------------------------------------


async def test_every_token_names_the_coalition_and_recipients_must_be_verified_in_it(
        store: Store) -> None:
    outbox = Outbox()
    record = _case(consent_coalitions=[COALITION, OTHER])
    await share_record(store.transaction, ISSUER_KEYS, record, [B], ["country"],
                       coalition_id=OTHER, actor="a", pair_room_for=_room_for,
                       enqueue=outbox.enqueue, issued_at=T0)
    ((_room, _to, token),) = outbox.queued
    assert verify(token, _keyring(), expected_audience=B).claims["coalition"] == OTHER
    with pytest.raises(UnknownRecipient, match="not a verified member of the coalition"):
        await share_record(store.transaction, ISSUER_KEYS, record, [C], ["country"],
                           coalition_id=OTHER, actor="a", pair_room_for=_room_for,
                           enqueue=outbox.enqueue, issued_at=T0 + 1)
    assert len(outbox.queued) == 1


async def test_consent_covers_only_the_coalitions_it_names(store: Store) -> None:
    """A case's consent is per coalition; a case from before that decision was consented for
    the node's first coalition only."""
    outbox = Outbox()
    for record, through in ((_case(consent_coalitions=[COALITION]), OTHER),
                            (_case(), OTHER)):  # no consent_coalitions: the first coalition's
        with pytest.raises(ShareRefused) as refused:
            await share_record(store.transaction, ISSUER_KEYS, record, [B], ["country"],
                               coalition_id=through, actor="a", pair_room_for=_room_for,
                               enqueue=outbox.enqueue, issued_at=T0)
        assert list(refused.value.refusals) == [B]
    assert outbox.queued == []
    await share_record(store.transaction, ISSUER_KEYS, _case(), [B], ["country"],
                       coalition_id=COALITION, actor="a", pair_room_for=_room_for,
                       enqueue=outbox.enqueue, issued_at=T0)
    partner = _case(consent_level="named_partners", consent_partners=[B],
                    consent_coalitions=[])  # a named partner needs no coalition consent
    await share_record(store.transaction, ISSUER_KEYS, partner, [B], ["narrative"],
                       coalition_id=OTHER, actor="a", pair_room_for=_room_for,
                       enqueue=outbox.enqueue, issued_at=T0)
    assert len(outbox.queued) == 2


def test_one_share_may_not_go_through_two_coalitions() -> None:
    campaign = build_record(ISSUER_KEYS.org_id, Campaign(title="t", goal="g", countries=["CO"]),
                            record_id=new_record_id(), issued_at=T0)
    with pytest.raises(ValueError, match="one coalition"):
        outgoing(campaign, [Recipient.member(B, COALITION), Recipient.member(C, OTHER)],
                 ["title"], keys=ISSUER_KEYS, issued_at=T0)
    (sent,) = outgoing(campaign, [Recipient.member(B, OTHER)], ["title"], keys=ISSUER_KEYS,
                       issued_at=T0)
    assert verify(sent.token, _keyring(), expected_audience=B).claims["coalition"] == OTHER


# --- alike: one token and one queue entry for every recipient (decision 0033) ------------------


def _campaign() -> Any:
    return build_record(ISSUER_KEYS.org_id, Campaign(
        title="t", goal="Sntl-goal", countries=["CO"]), record_id=new_record_id(), issued_at=T0)


def test_an_alike_share_is_one_token_whose_audience_lists_every_recipient() -> None:
    sent = outgoing(_campaign(), [Recipient.member(C, COALITION), Recipient.member(B, COALITION)],
                    ["title"], keys=ISSUER_KEYS, issued_at=T0, alike=True)
    assert [item.recipient for item in sent] == [C, B]
    assert sent[0].token == sent[1].token
    ring = _keyring()
    for item in sent:
        claims = verify(item.token, ring, expected_audience=item.recipient).claims
        assert claims["aud"] == sorted([B, C])
        assert claims["title"] == "t" and "goal" not in claims
        assert claims["coalition"] == COALITION
    # Without alike: a token per recipient, each with its own aud and fresh salts.
    apart = outgoing(_campaign(), [Recipient.member(B), Recipient.member(C)], ["title"],
                     keys=ISSUER_KEYS, issued_at=T0)
    assert apart[0].token != apart[1].token
    assert [verify(i.token, ring).claims["aud"] for i in apart] == [B, C]


def test_a_case_is_never_shared_alike() -> None:
    with pytest.raises(NotAlike):
        outgoing(_case(), [Recipient.member(B), Recipient.member(C)], ["country"],
                 keys=ISSUER_KEYS, issued_at=T0, alike=True)


def test_audiences_above_what_one_envelope_seals_to_are_split() -> None:
    many = [f"org-{n:04d}" for n in range(MAX_RECIPIENTS * 2 + 3)]
    chunks = audience_chunks(list(reversed(many)))
    assert [len(c) for c in chunks] == [MAX_RECIPIENTS, MAX_RECIPIENTS, 3]
    assert [org for chunk in chunks for org in chunk] == many
    assert audience_chunks([C, B]) == [sorted([B, C])]


async def test_an_alike_share_is_queued_once_for_all_and_recorded_per_recipient(
        store: Store) -> None:
    outbox, record = Outbox(), _campaign()

    async def the_room(_org_id: str) -> str:
        return "!alerts:hs"

    (receipt,) = await share_records(store.transaction, ISSUER_KEYS, [record], [B, C], ["title"],
                                     coalition_id=COALITION, actor="a", pair_room_for=the_room,
                                     enqueue=outbox.enqueue, issued_at=T0, alike=True)
    ((room, to, token),) = outbox.queued
    assert (room, sorted(to)) == ("!alerts:hs", sorted([B, C]))
    assert {item.token for item in receipt.recipients} == {token}
    assert await _history(store, record.record_id) == [
        (SHARE, B, 1, ("title",)), (SHARE, C, 1, ("title",))]
    with pytest.raises(NotAlike):
        await share_records(store.transaction, ISSUER_KEYS, [_case()], [B, C], ["country"],
                            coalition_id=COALITION, actor="a", pair_room_for=the_room,
                            enqueue=outbox.enqueue, issued_at=T0, alike=True)
    assert len(outbox.queued) == 1
