"""The pure matching core of case de-duplication: normalisation, encodings, scores, the index."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from federation.encoding import b64u_decode, b64u_encode
from federation.linkage import (
    LOW,
    SCHEME,
    SCHEME_V1,
    CaseFeatures,
    Encoding,
    EncodingIndex,
    FeatureError,
    KeyMismatchError,
    LinkageKey,
    LinkageKeyError,
    MalformedEncodingError,
    Score,
    compare,
    encode_case_features,
    score_band,
)
from federation.linkage.dates import Precision, date_labels
from federation.linkage.encoding import PLACE_BYTES, SKELETON_BYTES, SPELLING_BYTES
from federation.linkage.names import name_tokens, place_words, romanise
from schemas.dates import DateSpan
from schemas.payloads import DedupQuery

KEY = LinkageKey(bytes(range(32)))
OTHER_KEY = LinkageKey(bytes(range(100, 132)))


def features(
    name: str | list[str],
    when: str | None = "2023-03-14",
    place: str | None = "Popayán",
    country: str = "CO",
) -> CaseFeatures:
    names = [name] if isinstance(name, str) else name
    return CaseFeatures(names=names, date=when, place=place, country=country)


def encode(
    name: str | list[str],
    when: str | None = "2023-03-14",
    place: str | None = "Popayán",
    country: str = "CO",
) -> Encoding:
    return encode_case_features(features(name, when, place, country), KEY)


def score(held: CaseFeatures, query: CaseFeatures, key: LinkageKey = KEY) -> Score:
    return compare(encode_case_features(query, key), encode_case_features(held, key))


def spellings(name: str) -> list[str]:
    return [token.spelling for token in name_tokens(name)]


def skeletons(name: str) -> list[str]:
    return sorted(token.skeleton for token in name_tokens(name))


# --- normalisation -------------------------------------------------------------------------


def test_accents_case_and_punctuation_do_not_matter() -> None:
    assert spellings("ÁLVARO Núñez-Peña") == spellings("alvaro nunez pena")
    assert spellings("Castaño, Ismael") == ["castano", "ismael"]


@pytest.mark.parametrize("written", ["Dela Cruz", "De la Cruz", "DelaCruz", "de la cruz"])
def test_particles_are_glued_to_the_surname_they_introduce(written: str) -> None:
    assert spellings(f"Imelda B. {written}") == ["imelda", "b", "delacruz"]


def test_one_letter_tokens_are_initials() -> None:
    initials = [token.is_initial for token in name_tokens("Marites M. Lumbao")]
    assert initials == [False, True, False]


def test_spanish_conjunction_between_surnames_is_dropped() -> None:
    assert spellings("Luis García y Pérez") == ["luis", "garcia", "perez"]


@pytest.mark.parametrize(
    ("native", "romanised"),
    [
        ("Юрий Фёдоров", "Iurii Fedorov"),
        ("Юрий Фёдоров", "Yuri Fyodorov"),
        ("Алексей Смирнов", "Aleksey Smirnoff"),
        ("محمد علي", "Mohammed Ali"),
        ("محمد علي", "Muhammad Aly"),
        ("فاطمة الزهراء", "Fatima al-Zahraa"),
        ("نور الهدى", "Nour El Houda"),
        ("عبد الرحمن", "Abdulrahman"),
    ],
)
def test_native_script_and_romanisations_share_a_skeleton(native: str, romanised: str) -> None:
    assert skeletons(native) == skeletons(romanised)


def test_arabic_article_is_written_al_however_it_arrives() -> None:
    for written in ("al-Zahraa", "El Zahraa", "الزهراء"):
        assert spellings(written)[0].startswith("al")


def test_greek_and_unknown_scripts() -> None:
    assert romanise("Παπαδόπουλος") == "papadopoulos"
    assert spellings("דוד כהן") == ["דוד", "כהן"]  # kept as is: same-script names still compare


def test_place_words_are_romanised() -> None:
    assert place_words("San Vicente del Caguán") == ("san", "vicente", "del", "caguan")


# --- dates ---------------------------------------------------------------------------------


def test_day_window_spans_two_days_either_way() -> None:
    labels = date_labels(DateSpan.parse("2024-10-01"))
    assert labels.precision is Precision.DAY
    assert labels.levels[Precision.DAY].windows == tuple(
        f"D{date(2024, 9, 29) + timedelta(days)}" for days in range(5)
    )
    assert labels.levels[Precision.MONTH].windows == ("M2024-09", "M2024-10")


@pytest.mark.parametrize(
    ("text", "precision"),
    [
        ("2024-05", Precision.MONTH),
        ("2024", Precision.YEAR),
        ("2024-05-03/2024-05-06", Precision.DAY),
        ("2024-05-03/2024-06-20", Precision.MONTH),
        ("2019/2021", Precision.YEAR),
        ("2001/2021", Precision.NONE),
    ],
)
def test_precision_follows_what_is_known(text: str, precision: Precision) -> None:
    assert date_labels(DateSpan.parse(text)).precision is precision


# --- matching ------------------------------------------------------------------------------

SAME_PERSON = [
    ("Álvaro Quiñones Restrepo", "Alvaro Quinones Restrepo"),  # accents dropped
    ("Álvaro Quiñones Restrepo", "Álvaro Quiñones"),  # second surname dropped
    ("Álvaro Quiñones Restrepo", "Quiñones, Álvaro"),  # surname first
    ("Álvaro Quiñones Restrepo", "Alavro Quiñones Restrepo"),  # typo
    ("Álvaro Quiñones Restrepo", "ALVARO QUIÑONES RESTREPO"),  # case
    ("Wekesa Nafula Chelimo", "Chelimo Nafula Wekesa"),  # order reversed
    ("Gladys Moraa Kiprotich", "Moraa Kiprotich"),  # Christian name dropped
    ("Analyn Magbanua De Guzman", "Analyn M. DeGuzman"),  # middle initial, particle spacing
    ("Наталья Волкова", "Natalia Volkova"),  # Cyrillic -> Latin
    ("Ольга Козлова", "Olga Kozlova"),
    ("خالد حداد", "Khaled Haddad"),  # Arabic -> Latin
    ("يوسف النجار", "Yousef El Najjar"),
]


@pytest.mark.parametrize(("held", "query"), SAME_PERSON)
def test_name_variants_of_the_same_defender_match(held: str, query: str) -> None:
    assert score_band(score(features(held), features(query))) != "none"


@pytest.mark.parametrize("shift", [-3, -2, -1, 1, 2, 3])
def test_dates_up_to_three_days_apart_match(shift: int) -> None:
    shifted = (date(2023, 3, 14) + timedelta(shift)).isoformat()
    result = score(features("Diego Salazar"), features("Diego Salazar", when=shifted))
    assert score_band(result) != "none"
    assert result.date < score(features("Diego Salazar"), features("Diego Salazar")).date


@pytest.mark.parametrize("when", ["2023-03", "2023", "2023-02-20/2023-03-20", None])
def test_less_precise_dates_that_cover_the_day_match(when: str | None) -> None:
    assert score_band(score(features("Diego Salazar"), features("Diego Salazar", when=when))) != (
        "none"
    )


def test_month_only_matches_a_day_whose_window_reaches_into_it() -> None:
    held = features("Diego Salazar", when="2023-10-01")
    assert score(held, features("Diego Salazar", when="2023-09")).total >= LOW
    assert score(held, features("Diego Salazar", when="2023-08")).excluded_by == "date"


@pytest.mark.parametrize("when", ["2023-03-18", "2023-05-14", "2023-04", "2022"])
def test_same_person_in_another_incident_does_not_match(when: str) -> None:
    result = score(features("Diego Salazar"), features("Diego Salazar", when=when))
    assert (score_band(result), result.excluded_by) == ("none", "date")


def test_scheme_v1_still_allows_two_days_only() -> None:
    def v1(when: str) -> Encoding:
        return encode_case_features(features("Diego Salazar", when=when), KEY, scheme=SCHEME_V1)

    assert compare(v1("2023-03-16"), v1("2023-03-14")).total >= LOW
    assert compare(v1("2023-03-17"), v1("2023-03-14")).excluded_by == "date"


@pytest.mark.parametrize(
    ("held", "query"),
    [
        ("Diego Salazar Ocampo", "Fernando Escobar Vargas"),
        ("Diego Salazar Ocampo", "Leonor Salazar Ocampo"),  # a sister: same surnames
        ("Wekesa Nafula Chelimo", "Njeri Chelimo"),
        ("Наталья Волкова", "Ксения Павлова"),
    ],
)
def test_another_person_on_the_same_day_and_place_does_not_match(held: str, query: str) -> None:
    assert score_band(score(features(held), features(query))) == "none"


def test_with_only_a_year_a_name_token_must_agree_exactly() -> None:
    held = features("Diego Salazar", when="2023")
    assert score_band(score(held, features("Diego Salazar"))) != "none"
    assert score_band(score(held, features("Diego Salasar"))) != "none"  # "s"/"z": same skeleton
    both_misspelt = score(held, features("Diejo Salaxar"))
    assert (both_misspelt.total, both_misspelt.excluded_by) == (0, "name")
    assert score(features("Diego Salazar"), features("Diejo Salaxar")).total >= LOW


def test_country_is_a_hard_feature() -> None:
    result = score(features("Diego Salazar"), features("Diego Salazar", country="EC"))
    assert (result.total, result.excluded_by) == (0, "country")


def test_place_adjusts_but_name_decides() -> None:
    same = score(features("Diego Salazar"), features("Diego Salazar"))
    elsewhere = score(features("Diego Salazar"), features("Diego Salazar", place="Tumaco"))
    unknown = score(features("Diego Salazar"), features("Diego Salazar", place=None))
    assert same.total > unknown.total > elsewhere.total >= LOW
    assert (same.total, score_band(same)) == (1000, "high")


def test_any_written_form_of_the_name_can_match() -> None:
    held = features(["Khaled Haddad", "خالد حداد"])
    assert score(held, features("خالد حداد")).name == 1000
    assert score(held, features("Khalid Hadad")).total >= LOW


def test_score_bands_follow_thresholds() -> None:
    assert [score_band(total) for total in (0, 699, 700, 800, 900, 1000)] == [
        "none",
        "none",
        "low",
        "medium",
        "high",
        "high",
    ]


def test_a_name_without_letters_cannot_be_encoded() -> None:
    with pytest.raises(FeatureError, match="names"):
        encode("-- ?? --")


def test_features_are_checked() -> None:
    with pytest.raises(ValidationError):
        features("Diego Salazar", country="XX")
    with pytest.raises(ValidationError):
        features("Diego Salazar", when="2023-13-01")


# --- keys and what an encoding reveals -----------------------------------------------------


def test_encodings_are_deterministic_only_under_the_same_key() -> None:
    assert encode("Diego Salazar") == encode("Diego Salazar")
    other = encode_case_features(features("Diego Salazar"), OTHER_KEY)
    mine = encode("Diego Salazar")
    assert (other.name, other.date, other.country) != (mine.name, mine.date, mine.country)


def test_encodings_under_different_keys_do_not_match() -> None:
    mine = encode("Diego Salazar")
    theirs = encode_case_features(features("Diego Salazar"), OTHER_KEY)
    with pytest.raises(KeyMismatchError):
        compare(mine, theirs)
    # Even relabelled as the same key, nothing lines up: country and date tags differ.
    forged = replace(theirs, key_id=mine.key_id)
    assert score_band(compare(mine, forged)) == "none"
    forged_country = replace(forged, country=mine.country, date=mine.date)
    assert compare(mine, forged_country).name < 500


def test_same_name_is_encoded_differently_in_another_country() -> None:
    assert encode("Diego Salazar").name != encode("Diego Salazar", country="EC").name


def test_written_order_is_not_kept() -> None:
    assert encode("Diego Salazar").name == encode("Salazar Diego").name


def test_wire_form_holds_no_plaintext() -> None:
    name, place = "Leonor Quiñones Restrepo", "Popayán"
    wire = json.dumps(encode(name, place=place).wire_fields(), ensure_ascii=False).casefold()
    raw = b"".join(b64u_decode(text) for text in encode(name, place=place).wire_fields().values())
    for word in [*romanise(name).split(), *name.casefold().split(), place.casefold()]:
        assert word not in wire
        assert word.encode() not in raw
    assert "2023" not in wire


def test_linkage_key_is_32_bytes_and_never_printed() -> None:
    with pytest.raises(LinkageKeyError):
        LinkageKey(b"short")
    assert bytes(range(32)).hex() not in repr(KEY)
    assert KEY.key_id == LinkageKey(bytes(range(32))).key_id != OTHER_KEY.key_id
    assert LinkageKey.generate() != LinkageKey.generate()


# --- wire form -----------------------------------------------------------------------------


def test_wire_round_trip_and_query_payload() -> None:
    encoding = encode(["Khaled Haddad", "خالد حداد"], when="2023-03")
    fields = encoding.wire_fields()
    assert set(fields) == {"country", "name", "date", "place"}
    assert Encoding.from_wire(fields, key_id=KEY.key_id) == encoding
    query = DedupQuery(scheme=SCHEME, linkage_key_id=KEY.key_id, encodings=fields)
    assert query.encodings == fields
    no_place = encode("Khaled Haddad", place=None)
    assert "place" not in no_place.wire_fields()
    assert Encoding.from_wire(no_place.wire_fields(), key_id=KEY.key_id) == no_place


def _with(field: str, value: object) -> dict[str, object]:
    fields: dict[str, object] = dict(encode("Diego Salazar").wire_fields())
    fields[field] = value
    return fields


def _name_bytes() -> bytes:
    return encode("Diego Salazar").name


def _token(flags: int, spelling: int, skeleton: int) -> bytes:
    return (
        bytes([flags])
        + spelling.to_bytes(SPELLING_BYTES, "big")
        + skeleton.to_bytes(SKELETON_BYTES, "big")
    )


MALFORMED: list[tuple[str, dict[str, object]]] = [
    ("name", {key: value for key, value in _with("name", "").items() if key != "name"}),
    ("extra", _with("extra", "AAAA")),
    ("name", _with("name", 12)),
    ("name", _with("name", "not base64!")),
    ("name", _with("name", "A" * 5000)),
    ("name", _with("name", b64u_encode(_name_bytes()[:-1]))),
    ("name", _with("name", b64u_encode(_name_bytes() + b"\x00"))),
    ("name", _with("name", b64u_encode(b"\x00"))),
    ("name", _with("name", b64u_encode(b"\x05" + _name_bytes()[1:]))),
    ("name", _with("name", b64u_encode(b"\x01\x00"))),
    ("name", _with("name", b64u_encode(b"\x01\x01" + _token(4, 1, 0)))),
    ("name", _with("name", b64u_encode(b"\x01\x01" + _token(0, 0, 0)))),
    ("name", _with("name", b64u_encode(b"\x01\x01" + _token(0, (1 << 256) - 1, 0)))),
    ("name", _with("name", b64u_encode(b"\x01\x01" + _token(1, 1, 1)))),
    ("date", _with("date", b64u_encode(b"\x07"))),
    ("date", _with("date", b64u_encode(b"\x01\x01"))),
    ("date", _with("date", b64u_encode(b"\x01\x00\x00"))),
    ("date", _with("date", b64u_encode(b"\x01\x01\x01" + b"\x00" * 15))),
    ("country", _with("country", b64u_encode(b"\x00" * 15))),
    ("place", _with("place", b64u_encode(b"\x01" * (PLACE_BYTES - 1)))),
    ("place", _with("place", b64u_encode(b"\x00" * PLACE_BYTES))),
    ("place", _with("place", b64u_encode(b"\xff" * PLACE_BYTES))),
]


def test_key_id_must_be_a_token() -> None:
    with pytest.raises(MalformedEncodingError) as refused:
        Encoding.from_wire(encode("Diego Salazar").wire_fields(), key_id="no spaces/slashes")
    assert refused.value.field == "key_id"


@pytest.mark.parametrize(("field", "fields"), MALFORMED)
def test_malformed_or_oversized_encodings_are_refused_naming_the_field(
    field: str, fields: dict[str, object]
) -> None:
    with pytest.raises(MalformedEncodingError) as refused:
        Encoding.from_wire(fields, key_id=KEY.key_id)
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: ")


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(["name", "date", "place", "country"]), junk=st.binary(max_size=400))
def test_arbitrary_bytes_are_either_refused_or_compare_safely(field: str, junk: bytes) -> None:
    fields: dict[str, object] = dict(encode("Diego Salazar").wire_fields())
    fields[field] = b64u_encode(junk)
    try:
        received = Encoding.from_wire(fields, key_id=KEY.key_id)
    except MalformedEncodingError as error:
        assert error.field == field
        return
    assert 0 <= compare(received, encode("Diego Salazar")).total <= 1000


# --- the index -----------------------------------------------------------------------------

GIVEN = ["Diego", "Leonor", "Wekesa", "Наталья", "Khaled", "Analyn", "Sofía", "Ramón"]
FAMILY = ["Salazar", "Ocampo", "Chelimo", "Волкова", "Haddad", "De Guzman", "Zúñiga", "Ibarra"]


def _random_features(rng: random.Random) -> CaseFeatures:
    words = [rng.choice(GIVEN), rng.choice(FAMILY)]
    if rng.random() < 0.5:
        words.append(rng.choice(FAMILY))
    day = date(2023, 1, 1) + timedelta(rng.randrange(90))
    when = rng.choice(
        [day.isoformat(), day.isoformat(), day.isoformat()[:7], "2023", "2022-12/2023-02", None]
    )
    place = rng.choice(["Popayán", "Tumaco", None])
    return CaseFeatures(
        names=[" ".join(words)], date=when, place=place, country=rng.choice(["CO", "EC"])
    )


def test_index_answers_exactly_what_comparing_with_every_entry_answers() -> None:
    rng = random.Random(5)
    held = [(f"case-{n}", encode_case_features(_random_features(rng), KEY)) for n in range(250)]
    index = EncodingIndex(KEY.key_id)
    for handle, encoding in held:
        index.add(handle, encoding)
    for _ in range(40):
        query = encode_case_features(_random_features(rng), KEY)
        totals: dict[str, int] = {}
        for handle, encoding in held:
            totals[handle] = max(compare(query, encoding).total, totals.get(handle, 0))
        for threshold in (1, LOW):
            found = index.best_matches(query, limit=len(held), threshold=threshold)
            expected = {handle: total for handle, total in totals.items() if total >= threshold}
            assert {match.handle: match.score.total for match in found} == expected


def test_index_ranks_one_match_per_handle_and_forgets_removed_cases() -> None:
    index = EncodingIndex(KEY.key_id)
    index.add("b-1", encode("Diego Salazar Ocampo"))
    index.add("b-1", encode("Leonor Ibarra"))  # the same case, a second defender
    index.add("b-2", encode("Diego Salazar", when="2023-03-15"))
    index.add("b-3", encode("Fernando Escobar"))
    matches = index.best_matches(encode("Diego Salazar Ocampo"))
    assert [(match.handle, match.band) for match in matches] == [("b-1", "high"), ("b-2", "medium")]
    assert matches[0].score.total > matches[1].score.total
    assert [m.handle for m in index.best_matches(encode("Diego Salazar Ocampo"), limit=1)] == [
        "b-1"
    ]
    index.remove("b-1")
    assert [m.handle for m in index.best_matches(encode("Diego Salazar Ocampo"))] == ["b-2"]
    index.replace("b-2", [encode("Sofía Zúñiga")])
    assert index.best_matches(encode("Diego Salazar Ocampo")) == []
    assert len(index) == 2
    index.remove("unknown")


def test_index_threshold_must_be_a_score() -> None:
    with pytest.raises(ValueError, match="threshold"):
        EncodingIndex(KEY.key_id).best_matches(encode("Diego Salazar"), threshold=0)


def test_index_refuses_encodings_under_another_key() -> None:
    index = EncodingIndex(KEY.key_id)
    foreign = encode_case_features(features("Diego Salazar"), OTHER_KEY)
    with pytest.raises(KeyMismatchError):
        index.add("x", foreign)
    with pytest.raises(KeyMismatchError):
        index.best_matches(foreign)
