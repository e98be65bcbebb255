"""Names and places reduced to the pieces that survive how people actually write them.

A name becomes a set of tokens, order-insensitive. Each token has two forms:

- ``spelling``: the romanised, accent-free, case-folded letters ("Núñez" -> "nunez", "Сергей" ->
  "sergei"); particles are glued to the word they introduce, so "De la Cruz", "Dela Cruz" and
  "DelaCruz" all become "delacruz", and "al-Zahraa", "El Zahraa" and "الزهراء" all start "al".
- ``skeleton``: a consonant sketch of the word without its particle ("mhmd" for Mohammed,
  Muhammad, Mohamed and محمد; "fdrf" for Fyodorov, Fedorov and Фёдоров): vowels dropped,
  sound-alike letters merged, doubled letters collapsed. It carries matches across
  transliteration systems and vowel-less scripts, where spellings differ too much.

A one-letter token is an initial ("M." in "Marites M. Lumbao"): it only says which letter another
token starts with. Nothing here is specific to one language beyond the particle lists below and
the romanisation tables of ``scripts``; letters of scripts without a table are kept as they are.
``romanise`` is also the accent- and script-insensitive form for plain fuzzy search.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from federation.linkage.scripts import ARABIC_SEMIVOWELS, GREEK_DIGRAPHS, ROMANISATION, SOUNDS

# Words that introduce a surname rather than being one; glued to the next word.
PARTICLES: frozenset[str] = frozenset(
    {
        "de", "del", "dela", "della", "la", "las", "los", "da", "das", "do", "dos", "di", "du",
        "von", "der", "den", "ter", "san", "santa", "al", "el", "bin", "ibn", "bint",
        "delos", "delas",
        "abu", "abd", "abdul", "abdel", "abdal", "ould",
    }
)  # fmt: skip
# Particle spellings written one way, so that "El Zahraa" and "al-Zahraa" agree.
CANONICAL_PARTICLES: dict[str, str] = {"el": "al", "abdul": "abdal", "abdel": "abdal"}
ARABIC_ARTICLES: frozenset[str] = frozenset({"al", "el"})
# Article spellings before a hyphen, with the sun-letter assimilations ("ar-Rahman").
HYPHENATED_ARTICLES: frozenset[str] = ARABIC_ARTICLES | frozenset(
    {"ul", "ad", "ar", "as", "ash", "at", "az", "an", "ud", "ur", "us", "ut", "uz"}
)
# "y" between Spanish surnames ("García y Pérez"); "e"/"i" are left alone, they are often initials.
CONJUNCTIONS: frozenset[str] = frozenset({"y"})

_APOSTROPHES = re.compile(r"['’‘`´ʼʻʿʾ]")
_ARABIC_ARTICLE_AT_WORD_START = re.compile(r"(?<![^\W\d_])\u0627\u0644(?=[^\W\d_])")
# Latin spellings of one sound, merged before the single-letter rules apply.
_LATIN_DIGRAPHS: tuple[tuple[str, str], ...] = (
    ("shch", "S"), ("sch", "S"), ("tch", "S"), ("sh", "S"), ("ch", "S"), ("zh", "j"),
    ("kh", "h"), ("gh", "g"), ("ph", "f"), ("th", "t"), ("dh", "d"), ("ck", "k"), ("qu", "k"),
)  # fmt: skip
_LETTERS: tuple[tuple[str, str], ...] = (
    ("x", "ks"), ("q", "k"), ("c", "k"), ("z", "s"), ("v", "f"), ("w", ""), ("y", ""),
)  # fmt: skip
_VOWELS = re.compile(r"[aeiou]")
# A final "h" after a vowel is usually the ta marbuta ("Fatimah"), but not in "-allah".
_FINAL_H_AFTER_VOWEL = re.compile(r"(?<!l[aeiou])(?<=[aeiouy])h$")
# "Abdullah", "Abdelkader", "Abdulrahman" written as one word: "abd" + article + name.
_ABD_COMPOUND = re.compile(r"^abd[aeu]l(?=[a-z]{2})")
_REPEATS = re.compile(r"(.)\1+")


@dataclass(frozen=True)
class NameToken:
    spelling: str
    skeleton: str
    kind: str = ""
    """Scheme v2: what the token is where the culture says (a patronymic, a Chinese family
    name, ...); tokens of different kinds are hashed under different subkeys, so they never
    pair. Empty for an ordinary name word."""
    keys: tuple[str, ...] = ()
    """Scheme v2: exact keys that replace the spelling's bigrams (a Chinese family name's
    possible pinyin readings: Wong -> huang, wang)."""

    @property
    def is_initial(self) -> bool:
        return len(self.spelling) == 1 and not (self.keys or self.kind)


@dataclass(frozen=True)
class _Word:
    spelling: str
    sounds: str
    latin: bool


def name_tokens(name: str) -> tuple[NameToken, ...]:
    """The tokens of one written form of a name (in written order; compare them as a set)."""
    words = _words(name)
    tokens: list[NameToken] = []
    prefix = ""
    for position, word in enumerate(words):
        is_last = position == len(words) - 1
        if word.spelling in CONJUNCTIONS and position > 0 and not is_last:
            continue
        if word.spelling in PARTICLES and not is_last:
            prefix += CANONICAL_PARTICLES.get(word.spelling, word.spelling)
            continue
        tokens.append(NameToken(prefix + word.spelling, skeleton(word.sounds, latin=word.latin)))
        prefix = ""
    return tuple(token for token in tokens if token.spelling)


def place_words(place: str) -> tuple[str, ...]:
    """The romanised, accent-free words of a place name."""
    return tuple(word.spelling for word in _words(place) if word.spelling)


def romanise(text: str) -> str:
    """``text`` case-folded, without accents, other scripts transliterated to Latin letters."""
    return " ".join(word.spelling for word in _words(text))


def skeleton(sounds: str, *, latin: bool = True) -> str:
    """The consonant sketch of one word (see the module docstring)."""
    sketch = sounds
    if latin:
        sketch = _FINAL_H_AFTER_VOWEL.sub("", sketch)
        for written, sound in _LATIN_DIGRAPHS:
            sketch = sketch.replace(written, sound)
    for written, sound in _LETTERS:
        sketch = sketch.replace(written, sound)
    return _REPEATS.sub(r"\1", _VOWELS.sub("", sketch))


def _words(text: str) -> list[_Word]:
    words: list[_Word] = []
    for chunk in _chunks(text):
        parts = [_word(part) for part in chunk.split("-") if part]
        if len(parts) > 1 and parts[0].spelling in HYPHENATED_ARTICLES:
            core = parts[1]
            parts = [_latin_word("al"), core, *parts[2:]]
        for part in parts:
            words.extend(_split_abd_compound(part))
    return words


def _split_abd_compound(word: _Word) -> list[_Word]:
    match = _ABD_COMPOUND.match(word.spelling) if word.latin else None
    if match is None:
        return [word]
    rest = word.spelling[match.end() :]
    return [_latin_word("abd"), _latin_word("al"), _latin_word(rest)]


def _latin_word(text: str) -> _Word:
    return _Word(text, text, latin=True)


def _chunks(text: str) -> list[str]:
    """Case-folded, accent-free runs of letters, digits and hyphens."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not _is_mark(char)).casefold()
    bare = _ARABIC_ARTICLE_AT_WORD_START.sub("\u0627\u0644-", _APOSTROPHES.sub("", bare))
    for greek, latin in GREEK_DIGRAPHS.items():
        bare = bare.replace(greek, latin)
    return re.split(r"[^\w-]+|_", bare)


def _is_mark(char: str) -> bool:
    """Accents, Arabic short vowels, Indic vowel signs: all dropped, on both sides alike."""
    return unicodedata.category(char).startswith("M")


def _word(part: str) -> _Word:
    spelling: list[str] = []
    sounds: list[str] = []
    for position, char in enumerate(part):
        letter = _romanise_char(char, word_start=position == 0)
        spelling.append(letter)
        sounds.append(SOUNDS.get(char, letter))
    latin = all("a" <= char <= "z" or char.isdigit() for char in part)
    return _Word("".join(spelling), "".join(sounds), latin)


def _romanise_char(char: str, *, word_start: bool) -> str:
    if "a" <= char <= "z" or "0" <= char <= "9":
        return char
    if char in ARABIC_SEMIVOWELS:
        consonant, vowel = ARABIC_SEMIVOWELS[char]
        return consonant if word_start else vowel
    if char in ROMANISATION:
        return ROMANISATION[char]
    # Scripts without a table here (Ethiopic, Hebrew, Devanagari, ...) are kept as they are:
    # names in the same script still compare, only across scripts they cannot.
    return char if char.isalpha() else ""
