"""Scheme v2's name rules, culture by culture: test vectors of how a name is read, and pairs
that must (or must not) match. The names are made up of common names of each culture, apart
from the development set's."""

from __future__ import annotations

import pytest

from federation.linkage import (
    LOW,
    SCHEME_V1,
    SCHEME_V2,
    CaseFeatures,
    Encoding,
    LinkageKey,
    compare,
    encode_case_features,
)
from federation.linkage.cultures import name_forms, syllables
from federation.linkage.romanise import (
    burmese_syllables,
    han_cantonese,
    han_pinyin,
    jyutping_to_hk,
    latin_burmese_syllables,
    romanise_word,
)
from federation.linkage.tables import (
    ANYASCII_VERSION,
    ICU_VERSION,
    SCHEME,
    SCHEMES,
    TOJYUTPING_VERSION,
)

KEY = LinkageKey(bytes(range(32)))


def total(held: str, query: str, country: str, scheme: str = SCHEME_V2) -> int:
    def encode(name: str) -> Encoding:
        features = CaseFeatures(names=[name], date="2024-05-02", place="x", country=country)
        return encode_case_features(features, KEY, scheme=scheme)

    return compare(encode(query), encode(held)).total


def readings(name: str, country: str) -> list[list[str]]:
    """Each reading's tokens as kind:spelling (or kind:key|key for exact keys)."""
    return [
        [f"{t.kind}:{'|'.join(t.keys) or t.spelling}" if t.kind else t.spelling for t in form]
        for form in name_forms(name, country)
    ]


def test_the_scheme_versions_and_sources_are_the_ones_pinned() -> None:
    from importlib.metadata import version

    import icu

    assert SCHEMES == (SCHEME_V1, SCHEME_V2) and SCHEME == SCHEME_V2
    assert icu.ICU_VERSION == ICU_VERSION
    assert version("ToJyutping") == TOJYUTPING_VERSION
    assert version("anyascii") == ANYASCII_VERSION


# --- scripts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "latin"),
    [
        ("ተስፋዬ", "tesifaye"),  # Ge'ez, BGN
        ("ሞገስ", "moges"),  # the vowelless final syllable dropped
        ("முருகன்", "murukan"),  # Tamil
        ("செல்வம்", "selvam"),
        ("சந்திரன்", "santiran"),
        ("නිමල්", "nimal"),  # Sinhala: the inherent vowel put back
        ("පෙරේරා", "perera"),
        ("ශාන්ති", "shanti"),
        ("Ольга", "olga"),  # scheme v1's tables still serve Cyrillic and Arabic
        ("فاطمه", "fatmeh"),  # Persian word-final heh
    ],
)
def test_every_script_is_romanised(word: str, latin: str) -> None:
    assert romanise_word(word, persian=True) == latin


def test_han_has_a_mandarin_and_a_cantonese_reading_from_either_character_set() -> None:
    assert han_pinyin("黄志明") == ["huang", "zhi", "ming"]
    assert han_pinyin("曾", surname=True) == ["zeng"]  # the family-name reading, not "ceng"
    assert han_cantonese("陈大文") == han_cantonese("陳大文") == ["chan", "tai", "man"]
    assert han_cantonese("张学友") == ["cheung", "hok", "yau"]


@pytest.mark.parametrize(
    ("jyutping", "spelling"),
    [("zoeng1", "cheung"), ("gwok3", "kwok"), ("jyun4", "yuen"), ("syun1", "suen"),
     ("zi2", "tsz"), ("hou4", "ho"), ("ng4", "ng"), ("daai6", "tai"), ("jip6", "yip")],
)
def test_jyutping_becomes_the_hong_kong_government_spelling(jyutping: str, spelling: str) -> None:
    assert jyutping_to_hk(jyutping) == spelling


@pytest.mark.parametrize(
    ("burmese", "latin"),
    [("အောင်ကျော်", "Aung Kyaw"), ("ထွန်းမြင့်", "Htun Myint"), ("နန္ဒာ", "Nandar"),
     ("ခိုင်", "Khine"), ("ဝင်းနိုင်", "Win Naing"), ("သူရ", "Thura"), ("စိုးမိုး", "Soe Moe")],
)
def test_burmese_script_and_its_usual_spellings_fold_to_the_same_syllables(
    burmese: str, latin: str
) -> None:
    latin_syllables = [s for word in latin.lower().split() for s in latin_burmese_syllables(word)]
    assert burmese_syllables(burmese) == latin_syllables


# --- per culture: how a name is read ------------------------------------------------------------


def test_persian_compounds_are_one_word_read_by_their_stem() -> None:
    joined = readings("Rahimzadeh", "IR")
    assert readings("رحیم‌زاده", "IR") == [["fa-zadeh:rhim"]]  # the ZWNJ joins
    assert joined == readings("Rahim Zadeh", "IR") == readings("Rahim-Zadeh", "IR")
    assert joined == [["fa-zadeh:rahim"]]


def test_arabic_articles_are_dropped_and_mohammed_is_mohammad() -> None:
    assert readings("Mohamed al-Tamimi", "JO") == readings("Muhammad Altamimi", "JO")
    assert readings("Mohamed al-Tamimi", "JO") == [["mohammad", "tamimi"]]
    assert readings("Elnaz Alborzi", "IR") == [["elnaz", "alborzi"]]  # Persian names keep "al"


def test_chinese_family_name_and_given_syllables() -> None:
    han = readings("欧阳明华", "CN")
    assert han[0] == ["cn-fam:ouyang", "cn-given-1-2:ming", "cn-given-2-2:hua"]
    assert readings("Ouyang Minghua", "CN")[0] == han[0]
    assert readings("Minghua OUYANG", "CN")[0] == han[0]
    assert syllables("xiaoming") == ["xiao", "ming"]
    assert syllables("xiaomnig") == ["xiao", "ming"]  # a swap read back


def test_cantonese_family_names_read_as_every_character_they_spell() -> None:
    assert readings("Wong Ka Ming", "HK")[0][0] == "cn-fam:huang|wang"
    assert readings("Chan Siu Ming", "HK")[0][0] == "cn-fam:chen"
    assert readings("Ng Wing Sze", "HK")[0][0] == "cn-fam:wu"


def test_burmese_honorifics_are_dropped() -> None:
    plain = readings("Aung Kyaw Moe", "MM")
    for titled in ("U Aung Kyaw Moe", "Ko Aung Kyaw Moe", "Mg Aung Kyaw Moe", "ဦးအောင်ကျော်မိုး"):
        assert readings(titled, "MM") == plain
    assert readings("Ma Ma", "MM") == [["mm:ma"]]  # a title needs a name after it


def test_ethiopian_names_keep_who_is_who() -> None:
    assert readings("Tesfaye Girma Bekele", "ET") == [["given:tesfaye", "girma", "bekele"]]
    assert readings("Girma Bekele, Tesfaye", "ET") == readings("Tesfaye Girma Bekele", "ET")
    assert readings("Gebre Egziabher Alemu", "ET") == [["given:gebreegziabher", "alemu"]]


def test_east_slavic_patronymics_are_their_own_kind() -> None:
    assert readings("Sergei Ivanovich Petrenko", "UA") == [
        ["sergei", "patronymic:ivan", "petrenko"]]
    assert readings("Lukashevich Sergei Ivanovich", "BY")[0][2] == "patronymic:ivan"
    assert readings("Tatsiana Ivanauna Karpava", "BY") == [
        ["tatsiana", "patronymicf:ivan", "karpava"]]
    assert readings("Aliaksandra Karpava", "BY") == [["f:aliaksandra", "karpava"]]
    assert readings("Sergei Lukashevich", "BY") == [["sergei", "lukashevich"]]


def test_spanish_nicknames_are_read_as_the_full_name() -> None:
    for nickname, full in (("Paco", "francisco"), ("Pepe", "jose"), ("Nacho", "ignacio"),
                           ("Lupita", "guadalupe"), ("Chucho", "jesus"), ("Memo", "guillermo"),
                           ("Lalo", "eduardo"), ("Pancho", "francisco"), ("Toño", "antonio")):
        assert readings(f"{nickname} Ramírez", "MX")[0][0] == full
    assert readings("Conchita Ramírez", "MX")[0][0] == "concepcion"
    assert readings("Paco Ramírez", "KE")[0][0] == "paco"  # only where the nickname is Spanish


def test_spanish_feminine_forms_are_their_own_kind() -> None:
    assert readings("Rafaela Ortiz", "VE")[0][0] == "f:rafaela"
    assert readings("Rafael Ortiz", "VE")[0][0] == "rafael"
    assert readings("Mraia Ortiz", "VE")[0][0] == "f:mraia"  # a typo of María is still hers


# --- per culture: what matches ------------------------------------------------------------------

SAME = [
    ("IR", "حسین‌زاده رضا", "Reza Hosseinzadeh"),
    ("IR", "Mohammad Rahimzadeh", "Mohammed Rahim-Zadeh"),
    ("IR", "قربانی مهدی", "Mahdi Ghorbani"),
    ("CN", "王小明", "Wang Xiaoming"),
    ("CN", "王小明", "Xiao-ming WANG"),
    ("CN", "王小明", "Xiao Ming Wang"),
    ("CN", "王小明", "王小明"),
    ("HK", "黃志明", "Wong Chi Ming"),
    ("HK", "劉德華", "LAU Tak-wah"),
    ("HK", "陈大文", "Chan Tai Man"),
    ("HK", "張學友", "Zhang Xueyou"),
    ("MM", "ဦးအောင်ကျော်မိုး", "Aung Kyaw Moe"),
    ("MM", "Daw Nandar Hlaing", "Ma Nandar Hlaing"),
    ("MM", "ထွန်းမြင့်", "Ko Htun Myint"),
    ("ET", "ተስፋዬ ግርማ በቀለ", "Tesfaye Girma Bekele"),
    ("ET", "Tesfaye Girma Bekele", "Tesfaye Girma"),
    ("ET", "Tesfaye Girma", "Girma, Tesfaye"),
    ("LK", "முருகன் செல்வம்", "Murugan Selvam"),
    ("LK", "නිමල් පෙරේරා", "Nimal Perera"),
    ("BY", "Сяргей Іванавіч Пятрэнка", "Sergei Petrenko"),
    ("BY", "Аляксандр Карпаў", "Aleksandr Karpov"),
    ("MX", "Francisco Hernández Luna", "Paco Hernández"),
    ("VE", "Guadalupe Rivas Mora", "Lupita Rivas"),
    ("MX", "José Ignacio Vega", "Pepe Vega"),
]
DIFFERENT = [
    ("IR", "Reza Rahimzadeh", "Reza Karimzadeh"),  # similar surnames
    ("IR", "Reza Rahimi", "Reza Rahimzadeh"),
    ("CN", "王小明", "王小红"),  # siblings sharing a generation character
    ("CN", "Wang Ming", "Wang Minghua"),
    ("CN", "Zheng Xiaoming", "Zeng Xiaoming"),  # similar family names
    ("HK", "Wong Chi Wing", "Wong Chi Sang"),
    ("MM", "Aung Kyaw Moe", "Aung Kyaw Htun"),  # all but one syllable
    ("MM", "U Aung Kyaw", "U Aung Htun"),
    ("ET", "Tesfaye Girma Bekele", "Girma Bekele"),  # a father inside his son's name
    ("BY", "Sergei Ivanovich Petrenko", "Ivan Petrenko"),  # a father as the patronymic
    ("BY", "Sergei Ivanovich Petrenko", "Sergei Pavlovich Petrenko"),
    ("BY", "Aliaksandr Karpau", "Aliaksandra Karpava"),  # brother and sister
    ("VE", "Rafael Rivas Mora", "Rafaela Rivas Mora"),
    ("MX", "Manuel Vega Luna", "Manuela Vega Luna"),
    ("MX", "Fernando Vega Luna", "Fernanda Vega Luna"),
]


@pytest.mark.parametrize(("country", "held", "query"), SAME)
def test_the_same_person_matches(country: str, held: str, query: str) -> None:
    assert total(held, query, country) >= LOW


@pytest.mark.parametrize(("country", "held", "query"), DIFFERENT)
def test_relatives_and_namesakes_do_not_match(country: str, held: str, query: str) -> None:
    assert total(held, query, country) < LOW


def test_scheme_v1_misses_what_scheme_v2_was_made_for() -> None:
    missed = [pair for pair in SAME if total(pair[1], pair[2], pair[0], SCHEME_V1) < LOW]
    assert len(missed) >= len(SAME) // 2
