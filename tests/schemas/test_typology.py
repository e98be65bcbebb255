"""The controlled vocabulary: completeness, labels, SDG mapping and label matching."""

from __future__ import annotations

import json
import re
import unicodedata

import pytest

from schemas.errors import UnknownLanguageError, UnknownTermError
from schemas.typology import (
    LANGUAGES,
    TYPOLOGY_VERSION,
    ConsentLevel,
    RiskLevel,
    SdgCategory,
    Term,
    Vocabulary,
    codes,
    is_code,
    label,
    match_term,
    perpetrator_type,
    sdg_category,
    term,
    terms,
    typology_document,
)

ALL_TERMS = [(vocabulary, item) for vocabulary in Vocabulary for item in terms(vocabulary)]


def _term_id(value: object) -> str:
    return value.code if isinstance(value, Term) else str(value)


# docs/architecture.md §13 and the M2/M7/M8 issue texts name these; the typology must cover every
# one.
REQUIRED = {
    Vocabulary.VIOLATION: {
        "killing", "attempted_killing", "enforced_disappearance", "kidnapping",
        "arbitrary_detention", "torture", "physical_assault", "sexual_violence", "death_threat",
        "threat_intimidation", "harassment", "surveillance", "raid", "judicial_harassment",
        "stigmatisation", "digital_attack", "forced_displacement", "property_destruction",
        "travel_ban", "administrative_restriction", "attack_on_relatives", "other",
    },
    Vocabulary.VICTIM_GROUP: {
        "defender", "land_environmental_defender", "indigenous_leader", "woman_hrd",
        "lgbtiq_defender", "journalist", "trade_unionist", "lawyer", "community",
    },
    Vocabulary.PERPETRATOR_CATEGORY: {
        "police", "military", "judiciary", "public_officials", "company", "private_security",
        "organised_crime", "armed_group", "unknown",
    },
    Vocabulary.CONSENT_LEVEL: {"none", "anonymised", "coalition", "named_partners", "public"},
    Vocabulary.RISK_LEVEL: {"low", "medium", "high", "critical"},
    Vocabulary.ALERT_TYPE: {
        "arrest", "detention", "enforced_disappearance", "raid", "attack", "threat", "other",
    },
    Vocabulary.ALERT_ASK: {
        "legal_support", "relocation", "public_statement", "diplomatic_contact", "medical",
        "funds",
    },
    Vocabulary.CAMPAIGN_TARGET_TYPE: {"institution", "company", "government", "other"},
}


def test_version_is_declared() -> None:
    assert TYPOLOGY_VERSION == "1"


@pytest.mark.parametrize("vocabulary", list(REQUIRED), ids=str)
def test_required_terms_are_present(vocabulary: Vocabulary) -> None:
    assert REQUIRED[vocabulary] <= set(codes(vocabulary))


def test_every_violation_maps_to_one_sdg_category() -> None:
    for code in codes(Vocabulary.VIOLATION):
        assert isinstance(sdg_category(code), SdgCategory)


def test_every_sdg_category_is_reached_and_has_labels() -> None:
    reached = {sdg_category(code) for code in codes(Vocabulary.VIOLATION)}
    assert reached == set(SdgCategory)
    assert set(codes(Vocabulary.SDG_CATEGORY)) == {category.value for category in SdgCategory}


def test_headline_violations_map_to_their_own_sdg_category() -> None:
    for category in SdgCategory:
        if category is not SdgCategory.OTHER_HARMFUL_ACTS:
            assert sdg_category(category.value) is category


def test_only_violations_carry_an_sdg_category() -> None:
    for vocabulary, item in ALL_TERMS:
        assert (item.sdg is not None) == (vocabulary is Vocabulary.VIOLATION), item.code


@pytest.mark.parametrize(("vocabulary", "item"), ALL_TERMS, ids=_term_id)
def test_every_term_has_english_and_spanish_labels(vocabulary: Vocabulary, item: Term) -> None:
    for language in LANGUAGES:
        assert item.label(language).strip(), (vocabulary, item.code, language)
    assert re.fullmatch(r"[a-z][a-z0-9_]*", item.code)


@pytest.mark.parametrize("vocabulary", list(Vocabulary), ids=str)
def test_codes_are_unique_within_a_vocabulary(vocabulary: Vocabulary) -> None:
    assert len(set(codes(vocabulary))) == len(codes(vocabulary))


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@pytest.mark.parametrize(("vocabulary", "item"), ALL_TERMS, ids=_term_id)
def test_labels_round_trip_through_match_term(vocabulary: Vocabulary, item: Term) -> None:
    for text in (item.code, item.en, item.es, *item.synonyms):
        for variant in (text, text.upper(), _strip_accents(text).lower(), f"  {text}  "):
            assert match_term(variant, vocabulary) == item, variant


def test_match_term_ignores_accents_case_and_spacing() -> None:
    found = match_term("DESAPARICION   forzada", Vocabulary.VIOLATION)
    assert found is not None and found.code == "enforced_disappearance"
    found = match_term("criminalización", Vocabulary.VIOLATION)
    assert found is not None and found.code == "judicial_harassment"


def test_match_term_returns_none_for_unknown_text() -> None:
    assert match_term("picnic", Vocabulary.VIOLATION) is None
    assert match_term("", Vocabulary.VICTIM_GROUP) is None


def test_match_term_is_per_vocabulary() -> None:
    police = match_term("Policía", Vocabulary.PERPETRATOR_CATEGORY)
    assert police is not None and police.code == "police"
    assert match_term("Policía", Vocabulary.VIOLATION) is None


def test_label_in_each_language() -> None:
    assert label(Vocabulary.VIOLATION, "enforced_disappearance", "es") == "Desaparición forzada"
    assert label(Vocabulary.VIOLATION, "enforced_disappearance", "en") == "Enforced disappearance"
    assert label(Vocabulary.VICTIM_GROUP, "trade_unionist") == "Trade unionist"


def test_unknown_code_is_a_typed_error_naming_it() -> None:
    with pytest.raises(UnknownTermError, match="'kiling'") as caught:
        label(Vocabulary.VIOLATION, "kiling", "en")
    assert caught.value.vocabulary == "violation"
    with pytest.raises(UnknownTermError, match="'police'"):
        sdg_category("police")
    with pytest.raises(UnknownTermError):
        term(Vocabulary.RISK_LEVEL, "extreme")


def test_unknown_language_is_a_typed_error() -> None:
    with pytest.raises(UnknownLanguageError, match="'fr'"):
        label(Vocabulary.VIOLATION, "killing", "fr")  # type: ignore[arg-type]


def test_perpetrator_categories_have_state_non_state_or_unknown_parent() -> None:
    parents = set(codes(Vocabulary.PERPETRATOR_TYPE))
    assert parents == {"state", "non_state", "unknown"}
    for code in codes(Vocabulary.PERPETRATOR_CATEGORY):
        assert perpetrator_type(code) in parents
    assert {perpetrator_type(c) for c in ("police", "military", "judiciary")} == {"state"}
    assert perpetrator_type("public_officials") == "state"
    for code in ("company", "private_security", "organised_crime", "armed_group"):
        assert perpetrator_type(code) == "non_state"
    assert perpetrator_type("unknown") == "unknown"


def test_enums_agree_with_their_vocabularies() -> None:
    assert [level.value for level in ConsentLevel] == list(codes(Vocabulary.CONSENT_LEVEL))
    assert [level.value for level in RiskLevel] == list(codes(Vocabulary.RISK_LEVEL))


def test_every_alert_ask_is_a_capability_a_member_can_offer() -> None:
    assert set(codes(Vocabulary.ALERT_ASK)) <= set(codes(Vocabulary.CAPABILITY))


def test_is_code() -> None:
    assert is_code(Vocabulary.VIOLATION, "torture")
    assert not is_code(Vocabulary.VIOLATION, "Torture")
    assert not is_code(Vocabulary.VIOLATION, 3)


def test_typology_document_is_json_and_complete() -> None:
    document = json.loads(json.dumps(typology_document()))
    assert document["version"] == TYPOLOGY_VERSION
    assert set(document["vocabularies"]) == {vocabulary.value for vocabulary in Vocabulary}
    violations = {item["code"]: item for item in document["vocabularies"]["violation"]}
    assert violations["kidnapping"]["sdg_category"] == "kidnapping"
    assert violations["raid"]["es"] == "Allanamiento o registro"
    categories = {item["code"]: item for item in document["vocabularies"]["perpetrator_category"]}
    assert categories["police"]["parent"] == "state"
