"""The consent gate (federation.consent) and its hold on case disclosures."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.consent import (
    ATTACHMENTS,
    CASE_PATHS,
    ConsentDecision,
    ConsentRefused,
    Recipient,
    Relation,
    UnknownFieldPath,
    allowed_fields,
    attachments_allowed,
    case_claims,
    check_consent,
    decide,
    disclose_case,
    preview,
    relation,
    with_consent_scope,
)
from federation.disclosure import ConsentRequired, InvalidClaims, issue, verify
from federation.encoding import b64u_decode
from federation.keys import KeyNotTrusted, VerificationKey
from federation.sdjwt import SD, AudienceMismatch, split_compact
from schemas.fields import CASE_FIELD_GROUPS, CASE_INTERNAL_FIELDS, FieldGroup
from schemas.ids import new_record_id
from schemas.records import CaseRecord, RecordKind, build_record, parse_payload, record_to_wire
from schemas.typology import ConsentLevel, RiskLevel

ISSUER = "oissuerorganisationaaaaa2"
PARTNER = "opartnerorganisationaaa3"
OTHER_PARTNER = "ootherpartnerorgaaaaaaa4"
MEMBER = "omemberorganisationaaaa5"
OUTSIDER = "ooutsideraudienceaaaaaa6"
KID = "key-1"
SIGNING_KEY = Ed25519PrivateKey.generate()
T0 = 1_760_000_000
SIGNED_AT = T0 + 3600

# Every free-text value is a unique sentinel, so a leak of a withheld field can be searched for.
SENTINELS: Mapping[str, str] = {
    "title": "Sntl-title-q7",
    "place": "Sntl-place-k2",
    "narrative": "Sntl-narrative-w9",
    "impact_story": "Sntl-impact-x4",
    "sources": "Sntl-source-m3",
    "victims.name": "Sntl-victim-name-a1",
    "victims.native_name": "Sntl-victim-native-b5",
    "victims.romanised_name": "Sntl-victim-roman-c8",
    "victims.description": "Sntl-victim-description-d6",
    "perpetrators.name": "Sntl-perpetrator-name-e2",
    "perpetrators.description": "Sntl-perpetrator-description-f3",
}

GROUP_PATHS: Mapping[FieldGroup, frozenset[str]] = {
    group: frozenset(path for path, of in CASE_FIELD_GROUPS.items() if of is group)
    for group in FieldGroup
}
ALL_GROUPS = frozenset(FieldGroup)
CONTEXT_ONLY = frozenset({FieldGroup.CONTEXT})
NOTHING: frozenset[FieldGroup] = frozenset()

# The documented policy (module docstring, docs/decisions/0003), column by recipient. PARTNER is
# listed in consent_partners only for named_partners cases; otherwise it is just a member.
EXPECTED: Mapping[ConsentLevel, Mapping[str, frozenset[FieldGroup]]] = {
    ConsentLevel.NONE: {PARTNER: NOTHING, MEMBER: NOTHING, OUTSIDER: NOTHING},
    ConsentLevel.ANONYMISED: {PARTNER: CONTEXT_ONLY, MEMBER: CONTEXT_ONLY, OUTSIDER: NOTHING},
    ConsentLevel.COALITION: {PARTNER: ALL_GROUPS, MEMBER: ALL_GROUPS, OUTSIDER: NOTHING},
    ConsentLevel.NAMED_PARTNERS: {PARTNER: ALL_GROUPS, MEMBER: CONTEXT_ONLY, OUTSIDER: NOTHING},
    ConsentLevel.PUBLIC: {PARTNER: ALL_GROUPS, MEMBER: ALL_GROUPS, OUTSIDER: ALL_GROUPS},
}
RECIPIENTS = {
    PARTNER: Recipient.member(PARTNER),
    MEMBER: Recipient.member(MEMBER),
    OUTSIDER: Recipient.outsider(OUTSIDER),
}


def case_payload(consent: ConsentLevel, risk: RiskLevel = RiskLevel.LOW) -> dict[str, Any]:
    named = consent is ConsentLevel.NAMED_PARTNERS
    return {
        "title": SENTINELS["title"],
        "incident_date": "2024-03/2024-05-17",
        "country": "CO",
        "place": SENTINELS["place"],
        "narrative": SENTINELS["narrative"],
        "violations": ["death_threat", "arbitrary_detention"],
        "victims": [
            {
                "kind": "individual",
                "name": SENTINELS["victims.name"],
                "native_name": SENTINELS["victims.native_name"],
                "romanised_name": SENTINELS["victims.romanised_name"],
                "groups": ["land_environmental_defender", "woman_hrd"],
                "gender": "woman",
                "description": SENTINELS["victims.description"],
            },
            {"kind": "collective", "groups": ["community"]},
        ],
        "perpetrators": [
            {
                "category": "police",
                "name": SENTINELS["perpetrators.name"],
                "description": SENTINELS["perpetrators.description"],
            }
        ],
        "impunity_status": "reported_no_action",
        "verification_status": "verified",
        "independent_sources": 2,
        "sources": [SENTINELS["sources"]],
        "consent_level": consent.value,
        "consent_partners": [PARTNER, OTHER_PARTNER] if named else [],
        "risk_level": risk.value,
        "impact_story": SENTINELS["impact_story"],
    }


def case_record(
    consent: ConsentLevel = ConsentLevel.PUBLIC, risk: RiskLevel = RiskLevel.LOW, version: int = 1
) -> CaseRecord:
    payload = parse_payload(RecordKind.CASE, case_payload(consent, risk))
    record = build_record(
        ISSUER,
        payload,
        record_id=new_record_id(T0 * 1000, bytes(10)),
        issued_at=T0,
        version=version,
    )
    assert isinstance(record, CaseRecord)
    return record


class Resolver:
    def __init__(self, key: VerificationKey) -> None:
        self.key = key

    def signing_key_for(self, issuer: str, kid: str, issued_at: int) -> VerificationKey:
        if (issuer, kid) != (ISSUER, KID):
            raise KeyNotTrusted("unknown issuer or key id")
        return self.key


RESOLVER = Resolver(SIGNING_KEY.public_key())


def send(record: CaseRecord, fields: Collection[str], recipient: Recipient) -> str:
    return disclose_case(
        record, fields, recipient, signing_key=SIGNING_KEY, kid=KID, issued_at=SIGNED_AT
    )


def decoded_text(token: str) -> str:
    """Everything a recipient can read in a token: header, payload and every disclosure."""
    compact = split_compact(token)
    header, payload, _signature = compact.jwt.split(".")
    parts = [header, payload, *compact.disclosures]
    return "\n".join(b64u_decode(part).decode("utf-8") for part in parts)


def jwt_payload(token: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(b64u_decode(token.split(".")[1]))
    return payload


def assert_no_sentinel(text: str) -> None:
    assert not [value for value in SENTINELS.values() if value in text]


# --- the policy table -------------------------------------------------------------------------


@pytest.mark.parametrize("consent", list(ConsentLevel))
@pytest.mark.parametrize("who", [PARTNER, MEMBER, OUTSIDER])
@pytest.mark.parametrize("group", list(FieldGroup))
def test_every_consent_level_against_every_field_group_and_recipient(
    consent: ConsentLevel, who: str, group: FieldGroup
) -> None:
    record = case_record(consent)
    requested = GROUP_PATHS[group]
    if group in EXPECTED[consent][who]:
        assert check_consent(record.payload, requested, RECIPIENTS[who]) == requested
        shown = preview(record, requested, RECIPIENTS[who], issued_at=SIGNED_AT)
        assert {path.partition(".")[0] for path in requested} & shown.keys()
        return
    with pytest.raises(ConsentRefused) as refused:
        check_consent(record.payload, requested, RECIPIENTS[who])
    assert set(refused.value.paths) == requested
    assert all(consent.value in refusal.reason for refusal in refused.value.refusals)
    assert_no_sentinel(str(refused.value))
    with pytest.raises(ConsentRefused):
        send(record, requested, RECIPIENTS[who])


@pytest.mark.parametrize("consent", list(ConsentLevel))
@pytest.mark.parametrize("who", [PARTNER, MEMBER, OUTSIDER])
def test_allowed_fields_are_exactly_the_allowed_groups(consent: ConsentLevel, who: str) -> None:
    expected = {path for group in EXPECTED[consent][who] for path in GROUP_PATHS[group]}
    assert allowed_fields(case_record(consent).payload, RECIPIENTS[who]) == expected


def test_a_refusal_names_only_and_every_field_beyond_consent() -> None:
    record = case_record(ConsentLevel.ANONYMISED)
    requested = {"country", "violations", "victims.name", "place", "narrative", "victims.kind"}
    with pytest.raises(ConsentRefused) as refused:
        check_consent(record.payload, requested, Recipient.member(MEMBER))
    assert refused.value.paths == ("narrative", "place", "victims.name")
    reasons = {refusal.path: refusal.reason for refusal in refused.value.refusals}
    assert reasons["victims.name"] == (
        "consent level 'anonymised' allows no identity fields to a coalition member"
    )
    assert "victims.name" in str(refused.value)
    assert "country" not in str(refused.value)


def test_a_named_partner_outside_the_coalition_gets_what_the_defender_named_it_for() -> None:
    record = case_record(ConsentLevel.NAMED_PARTNERS)
    everything = frozenset(CASE_PATHS)
    assert allowed_fields(record.payload, Recipient.outsider(PARTNER)) == everything


@pytest.mark.parametrize("consent", [c for c in ConsentLevel if c is not ConsentLevel.PUBLIC])
def test_nothing_goes_outside_the_coalition_without_public_consent(
    consent: ConsentLevel,
) -> None:
    record = case_record(consent)
    with pytest.raises(ConsentRefused) as refused:
        check_consent(record.payload, set(), Recipient.outsider(OUTSIDER))
    assert refused.value.refusals == ()
    assert "may not go to a recipient outside the coalition at all" in str(refused.value)


def test_no_consent_means_not_even_the_header_goes_anywhere() -> None:
    record = case_record(ConsentLevel.NONE)
    for recipient in RECIPIENTS.values():
        with pytest.raises(ConsentRefused) as refused:
            send(record, [], recipient)
        assert refused.value.refusals == ()


def test_an_empty_request_to_an_allowed_recipient_discloses_only_the_header() -> None:
    record = case_record(ConsentLevel.COALITION)
    result = verify(send(record, [], Recipient.member(MEMBER)), RESOLVER)
    wire = record_to_wire(record)
    assert result.claims == {
        "iss": ISSUER,
        "iat": SIGNED_AT,
        "aud": MEMBER,
        **{name: wire[name] for name in ("record_id", "version", "kind", "schema", "issued_at")},
    }
    assert result.disclosed_paths == frozenset()


# --- risk -------------------------------------------------------------------------------------


def test_critical_risk_keeps_all_but_context_to_named_partners() -> None:
    named = case_record(ConsentLevel.NAMED_PARTNERS, RiskLevel.CRITICAL)
    assert allowed_fields(named.payload, Recipient.member(PARTNER)) == frozenset(CASE_PATHS)
    assert (
        allowed_fields(named.payload, Recipient.member(MEMBER)) == GROUP_PATHS[FieldGroup.CONTEXT]
    )
    public = case_record(ConsentLevel.PUBLIC, RiskLevel.CRITICAL)
    for recipient in (Recipient.member(MEMBER), Recipient.outsider(OUTSIDER)):
        assert allowed_fields(public.payload, recipient) == GROUP_PATHS[FieldGroup.CONTEXT]
    with pytest.raises(ConsentRefused) as refused:
        check_consent(
            public.payload, {"place", "victims.name", "narrative", "country"}, RECIPIENTS[MEMBER]
        )
    assert refused.value.paths == ("narrative", "place", "victims.name")
    assert all(
        refusal.reason.startswith("risk level 'critical' keeps")
        for refusal in refused.value.refusals
    )


@pytest.mark.parametrize("risk", [RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH])
def test_lower_risk_levels_do_not_narrow(risk: RiskLevel) -> None:
    for consent, row in EXPECTED.items():
        for who, groups in row.items():
            expected = {path for group in groups for path in GROUP_PATHS[group]}
            assert allowed_fields(case_record(consent, risk).payload, RECIPIENTS[who]) == expected


def test_risk_never_widens_consent() -> None:
    for consent in ConsentLevel:
        baseline = case_record(consent, RiskLevel.LOW).payload
        for risk in RiskLevel:
            case = case_record(consent, risk).payload
            for recipient in (*RECIPIENTS.values(), Recipient.outsider(PARTNER)):
                assert allowed_fields(case, recipient) <= allowed_fields(baseline, recipient)


# --- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize("internal", sorted(CASE_INTERNAL_FIELDS))
def test_internal_fields_are_never_disclosed(internal: str) -> None:
    record = case_record(ConsentLevel.NAMED_PARTNERS)
    with pytest.raises(ConsentRefused) as refused:
        check_consent(record.payload, {internal, "country"}, Recipient.member(PARTNER))
    assert refused.value.paths == (internal,)
    assert "internal" in refused.value.refusals[0].reason


def test_unknown_paths_are_an_error_naming_them() -> None:
    record = case_record()
    asked = {"victims", "victims.nickname", "iss", "record_id", "", "country"}
    with pytest.raises(UnknownFieldPath) as unknown:
        check_consent(record.payload, asked, Recipient.member(MEMBER))
    assert set(unknown.value.paths) == asked - {"country"}
    assert "'victims.nickname'" in str(unknown.value)


def test_an_unknown_path_that_looks_like_content_is_not_echoed() -> None:
    with pytest.raises(UnknownFieldPath) as unknown:
        check_consent(case_record().payload, {"María Quiñones, Nariño"}, RECIPIENTS[MEMBER])
    assert "María" not in str(unknown.value)


def test_one_path_as_a_string_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        check_consent(case_record().payload, "country", RECIPIENTS[MEMBER])


# --- the disclosure ---------------------------------------------------------------------------


def expected_claims(record: CaseRecord, fields: Collection[str]) -> dict[str, Any]:
    """An independent statement of what a recipient must see for ``fields``."""
    wire = record_to_wire(record)
    payload = wire["payload"]
    claims: dict[str, Any] = {
        name: wire[name] for name in ("record_id", "version", "kind", "schema", "issued_at")
    }
    for path in fields:
        top, _, key = path.partition(".")
        if not key:
            if payload.get(top) is not None:
                claims[top] = payload[top]
            continue
        elements = claims.setdefault(top, [{} for _ in payload[top]])
        for shown, element in zip(elements, payload[top], strict=True):
            if element.get(key) is not None:
                shown[key] = element[key]
    return claims


FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(fields=st.sets(st.sampled_from(CASE_PATHS)))
def test_a_disclosure_reveals_exactly_the_allowed_fields_and_nothing_else(
    fields: set[str],
) -> None:
    record = case_record(ConsentLevel.NAMED_PARTNERS)
    token = send(record, fields, Recipient.member(PARTNER))
    result = verify(token, RESOLVER, expected_audience=PARTNER)
    assert result.claims == {
        "iss": ISSUER,
        "iat": SIGNED_AT,
        "aud": PARTNER,
        **expected_claims(record, fields),
    }
    containers = {path.partition(".")[0] for path in fields if "." in path}
    present = {path for path in fields if path in result.disclosed_paths}
    assert result.disclosed_paths == present | containers
    text = decoded_text(token)
    for path, value in SENTINELS.items():
        assert (value in text) == (path in fields)
    for never in (
        OTHER_PARTNER,
        "consent_level",
        "consent_partners",
        "risk_level",
        "named_partners",
    ):
        assert never not in text
    # one digest (or decoy) per top-level case field, and one for shared files
    assert len(jwt_payload(token)[SD]) == len({path.partition(".")[0] for path in CASE_PATHS}) + 1


def test_every_disclosure_goes_to_its_own_audience_with_fresh_salts() -> None:
    record = case_record(ConsentLevel.COALITION)
    fields = {"country", "victims.name", "narrative"}
    first, second = (
        send(record, fields, RECIPIENTS[MEMBER]),
        send(record, fields, RECIPIENTS[MEMBER]),
    )
    assert not set(split_compact(first).disclosures) & set(split_compact(second).disclosures)
    assert not set(jwt_payload(first)[SD]) & set(jwt_payload(second)[SD])
    with pytest.raises(AudienceMismatch):
        verify(first, RESOLVER, expected_audience=PARTNER)


def test_preview_is_exactly_what_the_recipient_verifies() -> None:
    record = case_record(ConsentLevel.NAMED_PARTNERS, RiskLevel.CRITICAL)
    for recipient, fields in (
        (Recipient.member(PARTNER), {"place", "victims.name", "narrative", "country"}),
        (Recipient.member(MEMBER), {"country", "victims.groups", "perpetrators.category"}),
        (Recipient.outsider(PARTNER), set(CASE_PATHS)),
    ):
        received = verify(send(record, fields, recipient), RESOLVER).claims
        assert preview(record, fields, recipient, issued_at=SIGNED_AT) == received


def test_preview_refuses_what_a_send_refuses() -> None:
    record = case_record(ConsentLevel.ANONYMISED)
    with pytest.raises(ConsentRefused) as refused:
        preview(record, {"victims.name"}, RECIPIENTS[MEMBER], issued_at=SIGNED_AT)
    assert refused.value.paths == ("victims.name",)


# --- no other way to disclose a case ----------------------------------------------------------


def generic_issue(claims: Mapping[str, Any], **options: Any) -> str:
    return issue(
        claims,
        issuer=ISSUER,
        kid=KID,
        signing_key=SIGNING_KEY,
        issued_at=SIGNED_AT,
        withholdable=CASE_PATHS,
        **options,
    )


def test_issuing_a_case_through_the_generic_path_is_refused() -> None:
    record = case_record(ConsentLevel.PUBLIC)
    with pytest.raises(ConsentRequired):
        generic_issue(case_claims(record, {"country"}), audience=MEMBER)
    with pytest.raises(ConsentRequired):
        generic_issue({"schema": "minga.case/1", "narrative": "x"})


def test_a_decision_covers_only_its_fields_audience_and_version() -> None:
    record = case_record(ConsentLevel.PUBLIC)
    decision = decide(record, {"country", "victims.kind"}, RECIPIENTS[MEMBER])
    assert generic_issue(case_claims(record, {"country"}), audience=MEMBER, consent=decision)
    wider = case_claims(record, {"country", "narrative", "victims.name"})
    with pytest.raises(ConsentRequired, match=r"narrative, victims\.name"):
        generic_issue(wider, audience=MEMBER, consent=decision)
    with pytest.raises(ConsentRequired, match="another audience"):
        generic_issue(case_claims(record, {"country"}), audience=PARTNER, consent=decision)
    newer = case_record(ConsentLevel.PUBLIC, version=2)
    with pytest.raises(ConsentRequired, match="another case version"):
        generic_issue(case_claims(newer, {"country"}), audience=MEMBER, consent=decision)
    smuggled = {**case_claims(record, set()), "victims": "Sntl-victim-name-a1"}
    with pytest.raises(ConsentRequired):
        generic_issue(smuggled, audience=MEMBER, consent=decision)
    in_the_header = {**case_claims(record, {"country"}), "issued_at": "Sntl-place-k2"}
    with pytest.raises(ConsentRequired):
        generic_issue(in_the_header, audience=MEMBER, consent=decision)
    assert (decision.record_id, decision.version) == (record.record_id, 1)


def test_a_decision_is_not_for_other_kinds() -> None:
    decision = decide(case_record(), {"country"}, RECIPIENTS[MEMBER])
    with pytest.raises(InvalidClaims):
        generic_issue({"kind": "campaign", "title": "t"}, audience=MEMBER, consent=decision)


def test_only_the_gate_makes_a_decision() -> None:
    with pytest.raises(TypeError):
        ConsentDecision(
            object(),
            header=case_claims(case_record(), ()),
            audience=MEMBER,
            fields=frozenset(CASE_PATHS),
        )


# --- files attached to a case ---------------------------------------------------------------

FILE = {"name": "Sntl-file-name-p1.jpg", "media_type": "image/jpeg", "size": 3,
        "sha256": "a" * 64, "key": "Sntl-file-key-z0"}


@pytest.mark.parametrize("consent", list(ConsentLevel))
@pytest.mark.parametrize("who", [PARTNER, MEMBER, OUTSIDER])
@pytest.mark.parametrize("risk", list(RiskLevel))
def test_files_go_exactly_where_identity_and_location_both_may(
    consent: ConsentLevel, who: str, risk: RiskLevel
) -> None:
    record = case_record(consent, risk)
    groups = EXPECTED[consent][who]
    if who != PARTNER or consent is not ConsentLevel.NAMED_PARTNERS:
        groups = groups & ({FieldGroup.CONTEXT} if risk is RiskLevel.CRITICAL else ALL_GROUPS)
    expected = {FieldGroup.IDENTITY, FieldGroup.LOCATION} <= groups
    assert attachments_allowed(record.payload, RECIPIENTS[who]) is expected
    if expected:
        assert ATTACHMENTS in check_consent(record.payload, ["country", ATTACHMENTS],
                                            RECIPIENTS[who])
    else:
        with pytest.raises(ConsentRefused):
            check_consent(record.payload, ["country", ATTACHMENTS], RECIPIENTS[who])


def test_files_beyond_consent_are_refused_with_the_reason_like_any_field() -> None:
    record = case_record(ConsentLevel.NAMED_PARTNERS)
    with pytest.raises(ConsentRefused) as refused:
        check_consent(record.payload, ["country", ATTACHMENTS], RECIPIENTS[MEMBER])
    assert refused.value.paths == (ATTACHMENTS,)
    (refusal,) = refused.value.refusals
    assert refusal.reason == ("consent level 'named_partners' allows no identity fields to a"
                              " coalition member (files show people and places)")
    critical = case_record(ConsentLevel.COALITION, RiskLevel.CRITICAL)
    with pytest.raises(ConsentRefused) as capped:
        disclose_case(critical, ["country"], RECIPIENTS[MEMBER], signing_key=SIGNING_KEY,
                      kid=KID, issued_at=SIGNED_AT, files=[FILE])
    assert capped.value.refusals[0].reason.startswith("risk level 'critical'")


def test_files_travel_only_in_the_token_of_the_recipient_they_were_chosen_for() -> None:
    record = case_record(ConsentLevel.COALITION)
    with_files = disclose_case(record, ["country"], RECIPIENTS[MEMBER], signing_key=SIGNING_KEY,
                               kid=KID, issued_at=SIGNED_AT, files=[FILE])
    claims = verify(with_files, RESOLVER, expected_audience=MEMBER).claims
    assert claims[ATTACHMENTS] == [FILE]
    without = disclose_case(record, ["country", ATTACHMENTS], RECIPIENTS[MEMBER],
                            signing_key=SIGNING_KEY, kid=KID, issued_at=SIGNED_AT)
    assert ATTACHMENTS not in verify(without, RESOLVER, expected_audience=MEMBER).claims
    assert "Sntl-file" not in decoded_text(without)
    # the same number of digests whether files travel or not: the size says nothing
    assert len(jwt_payload(with_files)[SD]) == len(jwt_payload(without)[SD])


def test_files_cannot_be_slipped_past_the_decision() -> None:
    record = case_record(ConsentLevel.COALITION)
    decision = decide(record, ["country"], RECIPIENTS[MEMBER])
    claims = {**case_claims(record, ["country"]), ATTACHMENTS: [FILE]}
    with pytest.raises(ConsentRequired):
        decision.authorise(claims, MEMBER)


# --- consent per coalition (decision 0032) ----------------------------------------------------

COALITION_A, COALITION_B = "!coalition-a:hs", "!coalition-b:hs"


def scoped_record(consent: ConsentLevel, coalitions: list[str] | None) -> CaseRecord:
    payload = parse_payload(RecordKind.CASE, {**case_payload(consent),
                                              "consent_coalitions": coalitions})
    record = build_record(ISSUER, payload, record_id=new_record_id(T0 * 1000, bytes(10)),
                          issued_at=T0)
    assert isinstance(record, CaseRecord)
    return record


def test_a_member_of_a_coalition_outside_the_consent_is_an_outsider() -> None:
    in_a, in_b = Recipient.member(MEMBER, COALITION_A), Recipient.member(MEMBER, COALITION_B)
    for consent in ConsentLevel:
        record = scoped_record(consent, [COALITION_A])
        assert relation(record.payload, in_a) is Relation.MEMBER
        assert relation(record.payload, in_b) is Relation.OUTSIDER
        assert relation(record.payload, Recipient.member(MEMBER)) is Relation.OUTSIDER
        assert allowed_fields(record.payload, in_b) == allowed_fields(
            record.payload, RECIPIENTS[OUTSIDER])
    nowhere = scoped_record(ConsentLevel.COALITION, [])
    assert relation(nowhere.payload, in_a) is Relation.OUTSIDER
    with pytest.raises(ConsentRefused, match="outside the coalition"):
        check_consent(nowhere.payload, {"country"}, in_a)
    # A case not yet read with its node's first coalition counts any member (the gate's
    # callers resolve it first: with_consent_scope).
    assert relation(scoped_record(ConsentLevel.COALITION, None).payload, in_b) is Relation.MEMBER


def test_a_named_partner_or_public_consent_does_not_depend_on_the_coalition() -> None:
    named = scoped_record(ConsentLevel.NAMED_PARTNERS, [])
    partner = Recipient.member(PARTNER, COALITION_B)
    assert relation(named.payload, partner) is Relation.NAMED_PARTNER
    assert check_consent(named.payload, {"narrative"}, partner) == {"narrative"}
    public = scoped_record(ConsentLevel.PUBLIC, [COALITION_A])
    in_b = Recipient.member(MEMBER, COALITION_B)
    assert check_consent(public.payload, {"narrative"}, in_b) == {"narrative"}


def test_a_case_from_before_consent_per_coalition_means_the_first_coalition() -> None:
    old = scoped_record(ConsentLevel.COALITION, None)
    read = with_consent_scope(old, COALITION_A)
    assert read.payload.consent_coalitions == [COALITION_A]
    assert read.payload.model_copy(update={"consent_coalitions": None}) == old.payload
    assert old.payload.consent_coalitions is None  # the stored version is not rewritten
    assert with_consent_scope(old, None).payload.consent_coalitions == []
    named = scoped_record(ConsentLevel.COALITION, [COALITION_B])
    assert with_consent_scope(named, COALITION_A) is named
    chosen_none = scoped_record(ConsentLevel.COALITION, [])
    assert with_consent_scope(chosen_none, COALITION_A) is chosen_none
    assert relation(read.payload, Recipient.member(MEMBER, COALITION_B)) is Relation.OUTSIDER


def test_every_token_names_its_coalition_in_clear_and_never_the_consent_scope() -> None:
    record = scoped_record(ConsentLevel.COALITION, [COALITION_A, COALITION_B])
    token = send(record, {"country", "narrative"}, Recipient.member(MEMBER, COALITION_B))
    payload = jwt_payload(token)
    assert payload["coalition"] == COALITION_B
    assert COALITION_A not in decoded_text(token)  # the other coalitions consented to
    verified = verify(token, RESOLVER, expected_audience=MEMBER)
    assert verified.claims["coalition"] == COALITION_B


def test_a_decision_for_one_coalition_refuses_a_token_naming_another() -> None:
    record = scoped_record(ConsentLevel.COALITION, [COALITION_A, COALITION_B])
    decision = decide(record, {"country"}, Recipient.member(MEMBER, COALITION_A))
    assert decision.coalition == COALITION_A
    claims = case_claims(record, {"country"}, coalition=COALITION_A)
    assert generic_issue(claims, audience=MEMBER, consent=decision)
    for other in (COALITION_B, None):
        with pytest.raises(ConsentRequired, match="another coalition"):
            generic_issue(case_claims(record, {"country"}, coalition=other), audience=MEMBER,
                          consent=decision)
    public = scoped_record(ConsentLevel.PUBLIC, [])
    unnamed = decide(public, {"country"}, Recipient.member(PARTNER))  # no coalition named
    assert unnamed.coalition is None
    assert generic_issue(case_claims(public, {"country"}), audience=PARTNER, consent=unnamed)
    with pytest.raises(ConsentRequired, match="another coalition"):
        generic_issue(case_claims(public, {"country"}, coalition=COALITION_A), audience=PARTNER,
                      consent=unnamed)
