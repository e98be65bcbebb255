"""Scheme v2's name normalisation: every script romanised, then the rules of the naming culture.

:func:`name_forms` turns one written name (and the case's country) into one or more token
tuples, each a reading of the name (a Han name has a Mandarin and a Cantonese one). The rules,
each for the cultures whose names need it (tables in ``tables``):

- **all**: zero-width (non-)joiners join (حسین‌زاده is one word, as Hosseinzadeh is); spelling
  variants of one name folded (Mohammed/Mohammad); particles glued to the surname as in scheme v1.
- **Arabic and Persian**: the article al-/el- dropped (al-Najjar = Alnajjar = Najjar = النجار);
  Persian -zadeh, -pour, -nejad written apart joined back (Karim Zadeh = Karimzadeh).
- **Spanish**: a nickname read as its full name (Paco = Francisco); a feminine form of a
  gendered pair (Rafaela, Fernanda) is its own kind, never a variant of the masculine one.
- **Chinese** (Han script, or a Latin name in CN/HK/MO/TW): the family name found (upper case,
  a comma, or the tables of common family names, pinyin and Cantonese) and compared only by its
  possible readings (Chan = Chen = 陳; Zheng is not Zeng); the given name cut into syllables,
  each compared at its place (Jinfeng = Jin Feng = Jin-feng; Hong is not Hongxia).
- **Burmese**: no family name; the name cut into syllables (ကောင်းကြီးသူရ = Kaung Kyi Thura)
  folded to one spelling, the leading honorific dropped (U, Daw, Ko, Ma, Maung).
- **Ethiopian and Eritrean**: the first name is the person's own, the others their father's and
  grandfather's: the first is its own kind (a child's name holds the father's, one place on);
  "Father Grandfather, Given" is read back in order; compounds joined (Wolde Mariam).
- **East Slavic**: patronymics are their own kind (Olegovich never pairs with Oleg); the
  consonant sketch folds Belarusian and Russian spellings (Henadz/Gennady, Kazlou/Kozlov).
- **Sri Lankan**: the consonant sketch ignores voicing (Ganesan/Kanesan, Balasingam/Palasinkam).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from federation.linkage.names import PARTICLES, NameToken, skeleton
from federation.linkage.romanise import (
    burmese_syllables,
    han_cantonese,
    han_pinyin,
    has_script,
    latin_burmese_syllables,
    romanise_word,
    script_of,
)
from federation.linkage.tables import (
    ARABIC_ARTICLE_CULTURES,
    BURMESE,
    BURMESE_HONORIFICS,
    CANTONESE_SURNAMES,
    CHINESE,
    CHINESE_COMPOUND_SURNAMES,
    CHINESE_SURNAMES,
    EAST_SLAVIC,
    EAST_SLAVIC_GENDERED,
    ETHIOPIAN,
    ETHIOPIAN_COMPOUND_HEADS,
    ETHIOPIAN_COMPOUND_TAILS,
    FEMININE_PATRONYMIC_ENDINGS,
    NAME_VARIANTS,
    PATRONYMIC_ENDINGS,
    PERSIAN,
    PERSIAN_SUFFIXES,
    SPANISH,
    SPANISH_GENDERED,
    SPANISH_NICKNAMES,
    SRI_LANKAN,
)

Form = tuple[NameToken, ...]

GIVEN, PATRONYMIC, FEMININE, MYANMAR, CN_SURNAME = "given", "patronymic", "f", "mm", "cn-fam"
_JOINERS = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_APOSTROPHES = re.compile(r"['’‘`´ʼʻʿʾ]")
_ARTICLES = frozenset({"al", "el"})
_HYPHENATED_ARTICLES = _ARTICLES | frozenset(
    {"ul", "ad", "ar", "as", "ash", "at", "az", "an", "ud", "ur", "us", "ut", "uz"}
)
_VARIANT_OF = {
    spelling: name for name, spellings in NAME_VARIANTS.items() for spelling in spellings
}
_NICKNAME_OF = {
    nickname: name for name, nicknames in SPANISH_NICKNAMES.items() for nickname in nicknames
}
_FULL_NAMES = frozenset(SPANISH_NICKNAMES)
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_PERSIAN_LETTERS = frozenset("پچژگکی")


def name_forms(name: str, country: str) -> list[Form]:
    """The token tuples of one written name: one per reading, most names have one."""
    text = _APOSTROPHES.sub("", _JOINERS.sub("", unicodedata.normalize("NFC", name)))
    if has_script(text, "Han"):
        return _han_forms(text)
    if has_script(text, "Myanmar") or country in BURMESE:
        return _nonempty([_burmese_form(text)])
    persian = country in PERSIAN or bool(_PERSIAN_LETTERS & set(text))
    words = _ordered_words(text, patronymic_order=country in ETHIOPIAN)
    if country in CHINESE:
        chinese = _chinese_latin_forms(words)
        if chinese:
            return chinese
    latin = [romanise_word(word, persian=persian) for word in words]
    arabic = country in ARABIC_ARTICLE_CULTURES or any(has_script(w, "Arabic") for w in words)
    parts = _parts(latin, words, arabic=arabic, glued_latin=arabic and not persian)
    if persian:
        parts = _join_suffixes(parts, frozenset(PERSIAN_SUFFIXES))
    if country in ETHIOPIAN:
        parts = _join_ethiopian_compounds(parts)
    return _nonempty([_tokens(parts, country, persian=persian)])


def _nonempty(forms: Iterable[Form]) -> list[Form]:
    return [form for form in forms if form]


# --- words ---------------------------------------------------------------------------------------


def _ordered_words(text: str, *, patronymic_order: bool) -> list[str]:
    """The words in written order; "Family, Given" put back to "Given Family" where order
    says who is who."""
    if patronymic_order and text.count(",") == 1:
        family, given = text.split(",")
        text = f"{given} {family}"
    return [word for word in _split_words(text) if word.strip("-")]


def _split_words(text: str) -> list[str]:
    """Runs of letters, digits, marks (vowel signs of Indic and Burmese scripts) and hyphens."""
    words = ["".join(c if c.isalnum() or c == "-" or _is_mark(c) else " " for c in text)]
    return words[0].split()


def _is_mark(char: str) -> bool:
    return unicodedata.category(char).startswith("M")


def _parts(latin: list[str], words: list[str], *, arabic: bool, glued_latin: bool) -> list[str]:
    """Romanised words cut at hyphens, the Arabic article dropped, "Abd" joined to the name
    it introduces, particles glued on."""
    parts: list[tuple[str, bool]] = []  # (piece, written in Latin letters)
    for romanised, written in zip(latin, words, strict=True):
        pieces = [piece for piece in romanised.split("-") if piece]
        if arabic and len(pieces) > 1 and pieces[0] in _HYPHENATED_ARTICLES:
            pieces = pieces[1:]
        if arabic and len(pieces) == 1:
            arabic_script = script_of(written[0]) == "Arabic"
            if glued_latin or arabic_script:
                pieces = [_without_glued_article(pieces[0], arabic_script)]
            pieces = _abd_split(pieces[0])
        latin_written = script_of(written[0]) == "Latin"
        parts.extend((piece, latin_written) for piece in pieces)
    if arabic:
        last = len(parts) - 1
        parts = [p for i, p in enumerate(parts) if p[0] not in _ARTICLES or i == last]
        parts = _join_abd(parts)
    return _glue_particles(parts)


_ABD = frozenset({"abd", "abdul", "abdel", "abdal", "abdol", "abdu"})
_ABD_COMPOUND = re.compile(r"^abd[aeuo]l(?=[a-z]{3})")


def _abd_split(word: str) -> list[str]:
    """"Abdulrahman", "Abdelkader" written as one word: ["abd", "rahman"]."""
    match = _ABD_COMPOUND.match(word)
    return [word] if match is None else ["abd", word[match.end() :]]


def _join_abd(parts: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """Abd + the name of God it introduces as one word, however it was written: Abd al-Rahman,
    Abdel Rahman, Abdulrahman and عبد الرحمن are all "abdrahman" (or "abdrhmn")."""
    joined: list[tuple[str, bool]] = []
    for position, (part, latin_written) in enumerate(parts):
        if joined and joined[-1][0] in _ABD and position > 0:
            joined[-1] = ("abd" + part, latin_written)
        else:
            joined.append((part, latin_written))
    return joined


def _without_glued_article(word: str, arabic_script: bool) -> str:
    """"Alnajjar" and النجار ("alnjjar") without the article; "Alawi", "Alia" keep theirs, and
    Persian names written in Latin are left alone (Elham, Alborz)."""
    if word[:2] == "al" and len(word) >= 5 and word[2] not in "aeiou":
        return word[2:]
    if arabic_script and word.startswith("al") and len(word) >= 4:
        return word[2:]
    return word


def _glue_particles(parts: list[tuple[str, bool]]) -> list[str]:
    """Particles glued to the next word, as in scheme v1; only words written in Latin letters
    are particles: Sinhala ශාන්ත is "santa" too."""
    glued: list[str] = []
    prefix = ""
    for position, (part, latin_written) in enumerate(parts):
        particle = latin_written and part in PARTICLES and part not in _ARTICLES
        if particle and position < len(parts) - 1:
            prefix += part
            continue
        glued.append(prefix + part)
        prefix = ""
    return glued


def _join_suffixes(parts: list[str], suffixes: frozenset[str]) -> list[str]:
    joined: list[str] = []
    for part in parts:
        if part in suffixes and joined:
            joined[-1] += part
        else:
            joined.append(part)
    return joined


def _join_ethiopian_compounds(parts: list[str]) -> list[str]:
    joined: list[str] = []
    for part in parts:
        if joined and (joined[-1] in ETHIOPIAN_COMPOUND_HEADS or part in ETHIOPIAN_COMPOUND_TAILS):
            joined[-1] += part
        else:
            joined.append(part)
    return joined


# --- tokens --------------------------------------------------------------------------------------


def _tokens(parts: list[str], country: str, *, persian: bool) -> Form:
    tokens: list[NameToken] = []
    for position, part in enumerate(parts):
        spelling = _VARIANT_OF.get(part, part)
        kind = ""
        if country in SPANISH:
            spelling = _full_name(spelling)
            kind = FEMININE if _is_feminine_form(spelling, _SPANISH_PAIRS) else ""
        elif country in EAST_SLAVIC:
            kind = _slavic_kind(parts, position)
            if not kind and _is_feminine_form(spelling, _SLAVIC_PAIRS):
                kind = FEMININE
        elif country in ETHIOPIAN and position == 0 and len(parts) > 1:
            kind = GIVEN
        if persian:
            spelling, kind = _persian_compound(spelling)
        if kind.startswith(PATRONYMIC):
            spelling = _patronymic_stem(spelling)
        if len(spelling) == 1:
            tokens.append(NameToken(spelling, ""))
        elif spelling:
            tokens.append(NameToken(spelling, _sketch(spelling, country, persian), kind))
    return tuple(tokens)


def _slavic_kind(parts: list[str], position: int) -> str:
    """Patronymic (the second of "Given Patronymic Surname", the third of "Surname Given
    Patronymic"), feminine or not, as their own kinds. Feminine surnames are not a kind: a
    typo in Volkova (Volkvoa, Belva) would part her from herself, and a brother and sister
    differ by given name anyway."""
    spelling = parts[position]
    if position > 0 and spelling.endswith(FEMININE_PATRONYMIC_ENDINGS):
        return PATRONYMIC + FEMININE
    if len(parts) == 3 and spelling.endswith(PATRONYMIC_ENDINGS):
        second_is_patronymic = parts[1].endswith(PATRONYMIC_ENDINGS)
        if position == 1 or (position == 2 and not second_is_patronymic):
            return PATRONYMIC
    return ""


def _patronymic_stem(spelling: str) -> str:
    """Olegovich -> oleg: the ending is the kind's, only the father's name tells two apart."""
    for ending in sorted(PATRONYMIC_ENDINGS + FEMININE_PATRONYMIC_ENDINGS, key=len, reverse=True):
        if spelling.endswith(ending) and len(spelling) > len(ending) + 1:
            return spelling[: -len(ending)]
    return spelling


def _persian_compound(spelling: str) -> tuple[str, str]:
    """Karimzadeh -> ("karim", kind "zadeh"): the stem, compared among -zadeh names only."""
    for suffix, kind in PERSIAN_SUFFIXES.items():
        if spelling.endswith(suffix) and len(spelling) - len(suffix) >= 3:
            return spelling[: -len(suffix)], "fa-" + kind
    return spelling, ""


def _full_name(spelling: str) -> str:
    """The full given name a nickname stands for, also through a typo (Fitto for Fito) when
    the typo is no other name's: Chucho -> jesus."""
    if spelling in _NICKNAME_OF:
        return _NICKNAME_OF[spelling]
    if len(spelling) < 5 or spelling in _FULL_NAMES or spelling in _SPANISH_PAIRS.masculine:
        return spelling
    near = _undoubled_or_swapped(spelling)
    if near & _FULL_NAMES:
        return spelling
    targets = {_NICKNAME_OF[form] for form in near if form in _NICKNAME_OF}
    return targets.pop() if len(targets) == 1 else spelling


@dataclass(frozen=True)
class _GenderedPairs:
    masculine: frozenset[str]
    feminine: frozenset[str]


def _spanish_feminine(masculine: str) -> str:
    return masculine[:-1] + "a" if masculine[-1] in "oe" else masculine + "a"


_SPANISH_PAIRS = _GenderedPairs(
    SPANISH_GENDERED, frozenset(_spanish_feminine(name) for name in SPANISH_GENDERED)
)
_SLAVIC_PAIRS = _GenderedPairs(
    frozenset(EAST_SLAVIC_GENDERED), frozenset(EAST_SLAVIC_GENDERED.values())
)


def _is_feminine_form(spelling: str, pairs: _GenderedPairs) -> bool:
    """A feminine form of a gendered pair, or a typo of one (Mraia, Valuntina) that is no typo
    of a masculine form: otherwise a typo would part María from herself."""
    if spelling in pairs.feminine:
        return True
    if spelling in pairs.masculine or not 3 < len(spelling) < 12:
        return False
    slips = _near_forms(spelling)
    if len(spelling) >= 6:  # long enough that one wrong letter leaves it recognisable
        slips |= _replaced(spelling)
    near = {form for form in slips if form in pairs.feminine or form in pairs.masculine}
    return bool(near) and near <= pairs.feminine


def _replaced(word: str) -> set[str]:
    return {word[:i] + c + word[i + 1 :] for i in range(len(word)) for c in _LETTERS}





def _near_forms(word: str) -> set[str]:
    """Every word one slip away from ``word``: two neighbours swapped, a letter dropped or
    doubled. Not a letter replaced: Garia (Garcia) is no slip of María."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    dropped = {a + b[1:] for a, b in splits if b}
    swapped = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    doubled = {a + b[0] + b for a, b in splits if b}
    return dropped | swapped | doubled


def _undoubled_or_swapped(word: str) -> set[str]:
    """``word`` with one doubled letter single, or two neighbours swapped (Fitto, Lpuita)."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    undoubled = {a + b[1:] for a, b in splits if len(b) > 1 and b[0] == b[1]}
    swapped = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    return undoubled | swapped


_SLAVIC_FOLDS = (
    (re.compile(r"(?<=[aeo])u(?![aeiouy])"), "v"), (re.compile("dz"), "d"),
    (re.compile("(?<![cksz])h"), "g"), (re.compile("(?<=[aeiou])y$"), ""),
)  # fmt: skip
"""Belarusian Latin and Cyrillic against Russian: ў after a vowel is the Russian в
(Kazlou/Kozlov), дз the д (Henadz/Gennady), г the Russian г (Hurynovich/Gurinovich)."""
_VOICING = str.maketrans("gdbjz", "ktpss")


def _sketch(spelling: str, country: str, persian: bool = False) -> str:
    sounds = spelling
    if persian:
        # ق and غ are both "gh" in Persian; و is "v" or a vowel, so neither v nor w counts.
        sounds = sounds.replace("q", "gh").replace("v", "")
    if country in EAST_SLAVIC:
        for pattern, replacement in _SLAVIC_FOLDS:
            sounds = pattern.sub(replacement, sounds)
    sketch = skeleton(sounds)
    if country in SRI_LANKAN:
        sketch = sketch.replace("S", "s").translate(_VOICING)
    # Whether the word opens with a vowel (or w, y) is kept: Mumbi/Wambui, Lemma/Yilma and
    # Nyawira/Wanjiru have the same consonants but are not spellings of one name.
    return ("V" if spelling[:1] in "aeiouwy" else "") + sketch


# --- Burmese -------------------------------------------------------------------------------------


def _burmese_form(text: str) -> Form:
    syllables: list[str] = []
    for word in _split_words(text):
        if has_script(word, "Myanmar"):
            syllables.extend(burmese_syllables(word))
        elif word:
            syllables.extend(latin_burmese_syllables(romanise_word(word)))
    if len(syllables) > 1 and syllables[0] in BURMESE_HONORIFICS:
        syllables = syllables[1:]
    return tuple(NameToken(syllable, "", MYANMAR) for syllable in syllables if syllable)


# --- Chinese -------------------------------------------------------------------------------------

_SURNAME_BY_LETTERS: dict[str, tuple[str, ...]] = {}


def _letters(spelling: str) -> str:
    return "".join(sorted(set(spelling)))


def _surname_readings(spelling: str) -> tuple[str, ...] | None:
    """The pinyin family names a Latin spelling may stand for, or ``None`` if it is none we
    know (looked up by its letters too, so Degn finds Deng and Paang finds Pang)."""
    if not _SURNAME_BY_LETTERS:
        for pinyin in sorted(CHINESE_SURNAMES):
            _SURNAME_BY_LETTERS.setdefault(_letters(pinyin), (pinyin,))
        for cantonese, pinyins in sorted(CANTONESE_SURNAMES.items()):
            _SURNAME_BY_LETTERS.setdefault(_letters(cantonese), pinyins)
    found: list[str] = []
    if spelling in CANTONESE_SURNAMES:
        found.extend(CANTONESE_SURNAMES[spelling])
    if spelling in CHINESE_SURNAMES:
        found.append(spelling)
    if not found:
        found.extend(_SURNAME_BY_LETTERS.get(_letters(spelling), ()))
    return tuple(dict.fromkeys(found)) or None


def _surname_token(readings: Iterable[str]) -> NameToken:
    keys = tuple(sorted(set(readings)))
    return NameToken(keys[0], "", CN_SURNAME, keys)


_CANTONESE_SPELLINGS = (
    (re.compile(r"(?<=[aeiou])h$"), ""), (re.compile("ee"), "i"), (re.compile("oo"), "u"),
    (re.compile("^tsz?$"), "chi"), (re.compile("^ts"), "ch"), (re.compile("^sze$"), "si"),
)  # fmt: skip
"""Hong Kong spellings of one syllable: Wah/Wa, Yee/Yi, Foon/Fun, and the Tsz/Chi, Tsang/Chang,
Sze/Si that the Government romanisation uses for one sound depending on the character."""


def _given_tokens(syllables: list[str]) -> list[NameToken]:
    count = len(syllables)
    tokens = []
    for position, syllable in enumerate(syllables, start=1):
        for pattern, replacement in _CANTONESE_SPELLINGS:
            syllable = pattern.sub(replacement, syllable)
        if syllable:
            tokens.append(NameToken(syllable, skeleton(syllable), f"cn-given-{position}-{count}"))
    return tokens


def _han_forms(text: str) -> list[Form]:
    han = "".join(char for char in text if script_of(char) == "Han")
    size = 2 if han[:2] in CHINESE_COMPOUND_SURNAMES and len(han) > 2 else 1
    family, given = han[:size], han[size:]
    surname = _surname_token(["".join(han_pinyin(family, surname=True))])
    forms = [(surname, *_given_tokens(han_pinyin(given)))]
    cantonese = (surname, *_given_tokens(han_cantonese(given)))
    if cantonese != forms[0]:
        forms.append(cantonese)
    return forms


_PINYIN = re.compile(
    r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?"
    r"(?:iang|iong|uang|ueng|ang|eng|ing|ong|ian|iao|uai|uan|van|ai|ei|ao|ou|an|en|in|un|"
    r"ia|ie|iu|ua|uo|ui|ue|ve|er|a|o|e|i|u|v)"
)


def syllables(word: str) -> list[str]:
    """A romanised Chinese given name cut into syllables: pinyin if it parses as pinyin
    (Jinfeng -> jin, feng), else at each new group of vowels."""
    parsed = _pinyin_parse(word)
    if parsed is not None:
        return parsed
    if len(word) >= 5:
        repaired = _pinyin_repair(word)
        if repaired is not None:
            return repaired
    groups = re.findall(r"[^aeiouy]*[aeiouy]+(?:ng|n|m|k|p|t)?(?![aeiouy])|[^aeiouy]+$", word)
    return groups if "".join(groups) == word else [word]


def _pinyin_repair(word: str) -> list[str] | None:
    """The syllables of the pinyin a one-letter typo came from (Jnfeng, Ynogsheng): two
    letters swapped, one dropped, one doubled or one wrong, tried in that order; the fewest
    syllables, then the first in alphabetical order, among the edits of one kind that parse."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    edits = (
        [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1],
        [a + c + b for a, b in splits for c in letters],
        [a + b[1:] for a, b in splits if b],
        [a + c + b[1:] for a, b in splits if b for c in letters],
    )
    for candidates in edits:
        parses = [p for p in map(_pinyin_parse, sorted(set(candidates))) if p is not None]
        if parses:
            return min(parses, key=len)
    return None


def _pinyin_parse(word: str) -> list[str] | None:
    if not word:
        return []
    candidates = sorted(
        {m.group() for m in (_PINYIN.match(word, 0),) if m}
        | {word[:n] for n in range(1, min(len(word), 6) + 1) if _PINYIN.fullmatch(word[:n])},
        key=len,
        reverse=True,
    )
    for head in candidates:
        rest = _pinyin_parse(word[len(head) :])
        if rest is not None:
            return [head, *rest]
    return None


def _chinese_latin_forms(words: list[str]) -> list[Form]:
    """A Latin Chinese name read as family name and given-name syllables; nothing if no word
    can be the family name. Both readings when either end could be it ("Lei Peng")."""
    upper = [w for w in words if w.isupper() and len(w) > 1]
    spelled = [romanise_word(word) for word in words]
    if len(spelled) < 2 or any(not w for w in spelled):
        return []
    if len(upper) == 1 and len(words) > 1 and not all(w.isupper() for w in words):
        candidates = [words.index(upper[0])]
    else:
        last = len(spelled) - 1
        known = [i for i in range(len(spelled)) if _surname_readings(spelled[i])]
        middle = [i for i in known if 0 < i < last][:1]
        candidates = [i for i in (0, last) if i in known] + middle
    forms: list[Form] = []
    for index in candidates:
        readings = _surname_readings(spelled[index]) or (spelled[index],)
        given_words = spelled[index + 1 :] or spelled[:index]
        given = _given_syllables(given_words)
        others = spelled[:index] if index + 1 < len(spelled) else []
        form = (
            _surname_token(readings),
            *_given_tokens(given),
            *(NameToken(w, skeleton(w)) for w in others),
        )
        forms.append(form)
    return forms


def _given_syllables(words: list[str]) -> list[str]:
    """Syllables written apart or hyphenated are one each (Tsz-hin, Hok Yau: Cantonese
    syllables may parse as two pinyin ones); a given name in one word is cut (Jinfeng)."""
    pieces = [piece for word in words for piece in word.split("-") if piece]
    if len(pieces) > 1:
        return pieces
    return [s for piece in pieces for s in syllables(piece)]
