"""The pure part of joint campaigns: tally, status, participants, and the campaign check."""

from __future__ import annotations

from typing import Any

from federation.identity import OrgKeys
from node.core.coalition import MEMBER_POWER
from node.core.sharing import record_claims
from node.features.campaigns.check import (
    Announcement,
    CampaignDraft,
    DraftTarget,
    find_overlaps,
    fold,
)
from node.features.campaigns.records import CampaignItem, thread_of
from node.features.campaigns.service import (
    campaign_payload,
    campaign_room_power_levels,
    proposal_state,
)
from schemas.common import RecordRef
from schemas.fields import disclosable_paths
from schemas.ids import new_record_id
from schemas.payloads import CampaignPost, Endorsement, Proposal
from schemas.records import Payload, build_record

A, B, C, D = (OrgKeys.generate().org_id for _ in range(4))
T0 = 1_717_000_000
DEADLINE = T0 + 1_000


def item(issuer: str, payload: Payload, at: int, *, record_id: str | None = None,
         version: int = 1) -> CampaignItem:
    record = build_record(issuer, payload, record_id=record_id or new_record_id(), issued_at=at,
                          version=version)
    claims = record_claims(record, disclosable_paths(record.record_kind))
    thread = thread_of(record.kind, record.record_id, claims)
    assert thread is not None
    return CampaignItem(issuer, record.record_id, version, record.kind, thread, at, claims)


def proposal(minimum: int) -> Proposal:
    return Proposal(title="Liberen a Ligaya", goal="Her release.", min_organisations=minimum,
                    targets=[{"name": "Department of Justice", "target_type": "government"}],
                    deadline=DEADLINE)


def response(head: CampaignItem, answer: str, **extra: Any) -> Endorsement:
    return Endorsement(proposal=RecordRef(issuer=head.issuer, record_id=head.record_id),
                       response=answer, **extra)


def test_the_tally_counts_the_proposer_and_the_latest_response_of_each_member() -> None:
    head = item(A, proposal(3), T0)
    b_first = item(B, response(head, "join", roles=["legal"]), T0 + 1)
    b_changed = item(B, response(head, "decline", reason="busy"), T0 + 2,
                     record_id=b_first.record_id, version=2)
    c = item(C, response(head, "join"), T0 + 3)
    state = proposal_state([head, b_changed, c], T0 + 10)
    assert state is not None
    assert state.joined == (A, C) and state.status == "open"
    assert (state.count("join"), state.count("decline")) == (1, 1)
    assert next(r for r in state.responses if r.org_id == B).reason == "busy"


def test_reaching_the_minimum_launches_and_a_deadline_below_it_expires() -> None:
    head = item(A, proposal(2), T0)
    state = proposal_state([head], DEADLINE)
    assert state is not None and state.status == "open"
    state = proposal_state([head], DEADLINE + 1)
    assert state is not None and state.status == "expired"
    joined = item(B, response(head, "join"), T0 + 5)
    state = proposal_state([head, joined], DEADLINE + 1)
    assert state is not None and state.status == "launching"


def test_responses_after_the_deadline_and_the_proposers_own_do_not_count() -> None:
    head = item(A, proposal(2), T0)
    late = item(B, response(head, "join"), DEADLINE + 1)
    own = item(A, response(head, "join"), T0 + 1)
    state = proposal_state([head, late, own], DEADLINE + 2)
    assert state is not None
    assert state.responses == () and state.status == "expired"


def _launched(participants: list[str]) -> tuple[CampaignItem, list[CampaignItem]]:
    head = item(A, proposal(2), T0)
    before = proposal_state([head], T0)
    assert before is not None
    campaign = item(A, campaign_payload(before, participants, "!room"), T0 + 20)
    return head, [head, campaign]


def _post(head: CampaignItem, issuer: str, kind: str, at: int) -> CampaignItem:
    ref = RecordRef(issuer=head.issuer, record_id=head.record_id)
    return item(issuer, CampaignPost(campaign=ref, post_type=kind, text="x"), at)


def test_only_the_proposer_announces_and_only_participants_post() -> None:
    head, items = _launched([A, B])
    base = proposal_state([head], T0)
    assert base is not None
    forged = item(C, campaign_payload(base, [A, C], "!other"), T0 + 21)
    posts = [_post(head, B, "update", T0 + 30), _post(head, C, "update", T0 + 31)]
    state = proposal_state([*items, forged, *posts], T0 + 40)
    assert state is not None and state.campaign is not None
    assert state.campaign.room_id == "!room" and state.status == "active"
    assert [p.issuer for p in state.posts] == [B]


def test_leaving_and_a_majority_vote_close_the_campaign() -> None:
    head, items = _launched([A, B, C, D])
    left = [_post(head, D, "leave", T0 + 30)]
    state = proposal_state([*items, *left], T0 + 40)
    assert state is not None and state.participants == (A, B, C) and state.left == (D,)
    one_vote = [*items, *left, _post(head, B, "close_vote", T0 + 41)]
    state = proposal_state(one_vote, T0 + 50)
    assert state is not None and state.status == "active"
    state = proposal_state([*one_vote, _post(head, C, "close_vote", T0 + 42)], T0 + 50)
    assert state is not None and state.status == "closed"


def test_campaign_rooms_let_only_participant_nodes_post_minga_events() -> None:
    levels = campaign_room_power_levels(["@node-b:two.example"])
    assert levels["users"] == {"@node-b:two.example": MEMBER_POWER}
    assert levels["events"]["org.minga.sealed"] == MEMBER_POWER > levels["events_default"]


# --- the campaign check -----------------------------------------------------------------------


KNOWN = [
    Announcement("campaign", A, new_record_id(), "Libertad para la defensora Ligaya Dimaculangan",
                 ("Departamento de Justicia",), ("PH",), ("criminalización",)),
    Announcement("proposal", B, new_record_id(), "Stop the Malinis dam",
                 ("Bukidnon Hydro Power Corp.",), ("PH",), ()),
    Announcement("campaign", C, new_record_id(), "Protect journalists in Nairobi",
                 ("Ministry of Interior",), ("KE",), ()),
]


def test_folding_drops_accents_case_and_punctuation() -> None:
    assert fold("Criminalización — DEFENSORA, Ñuñoa!") == "criminalizacion defensora nunoa"


def test_an_overlapping_title_is_found_across_accents_and_spelling() -> None:
    draft = CampaignDraft(title="Libertad para la DEFENSORA Ligaya Dimaculangan!",
                          countries=["PH"], themes=["Criminalizacion"])
    found = find_overlaps(draft, KNOWN)
    assert [o.record_id for o in found] == [KNOWN[0].record_id]
    assert found[0].score >= 70 and "shared theme" in found[0].reasons


def test_a_shared_target_is_reported_even_with_another_title() -> None:
    draft = CampaignDraft(title="Consulta previa ya",
                          targets=[DraftTarget(name="Bukidnon Hydro Power Corp")])
    found = find_overlaps(draft, KNOWN)
    assert [o.record_id for o in found] == [KNOWN[1].record_id]
    assert any(r.startswith("same target") for r in found[0].reasons)


def test_an_unrelated_draft_finds_nothing() -> None:
    draft = CampaignDraft(title="Seguridad digital para periodistas", countries=["MX"],
                          targets=[DraftTarget(name="Secretaría de Gobernación",
                                              target_type="government")])
    assert find_overlaps(draft, KNOWN) == []


def test_a_malformed_record_hides_only_itself() -> None:
    head = item(A, proposal(2), T0)
    good = item(B, response(head, "join"), T0 + 1)
    ref = {"issuer": head.issuer, "record_id": head.record_id}
    bad = CampaignItem(C, new_record_id(), 1, "endorsement", head.record_id, T0 + 2,
                       {"proposal": ref, "response": "maybe"})
    state = proposal_state([head, good, bad], T0 + 3)
    assert state is not None
    assert state.joined == (A, B) and [r.org_id for r in state.responses] == [B]


def test_a_response_through_another_coalition_does_not_count() -> None:
    """Decision 0032: a proposal's thread is what came through the proposal's coalition (a
    record naming none came through the node's first)."""
    head = item(A, proposal(2), T0)
    head = CampaignItem(head.issuer, head.record_id, head.version, head.kind, head.thread,
                        head.issued_at, {**head.claims, "coalition": "!b:test"})
    through_b, through_a = (item(org, response(head, "join"), T0 + 1) for org in (B, C))
    through_b.claims["coalition"] = "!b:test"
    through_a.claims["coalition"] = "!a:test"
    older = item(D, response(head, "join"), T0 + 2)  # no coalition: the first one's
    state = proposal_state([head, through_b, through_a, older], T0 + 3, "!a:test")
    assert state is not None and state.coalition_id == "!b:test"
    assert [r.org_id for r in state.responses] == [B]
    assert state.joined == (A, B)
    first = proposal_state([head, through_b, through_a, older], T0 + 3, "!b:test")
    assert first is not None and sorted(r.org_id for r in first.responses) == sorted([B, D])
