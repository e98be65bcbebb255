"""Every script a defender's name may arrive in, romanised the way names are usually spelled
(scheme v2; decision 0020).

- **Latin** is kept; **Arabic**, **Cyrillic** and **Greek** go through the tables of ``scripts``
  (scheme v1's), with the Persian word-final ``ه`` read as "eh" (Zadeh, Fatemeh).
- **Han**: ICU's CLDR transliterators give Mandarin pinyin, with the family-name readings of
  ``Han-Latin/Names`` for the family name; ToJyutping gives the Cantonese reading of each
  character (simplified or traditional), converted here to the Hong Kong Government spelling
  (Tam Hung Ha, Leung Tsz Hin). A Han name therefore has two readings.
- **Ethiopic** (ICU ``Amharic-Latin/BGN``), **Tamil** (ICU ``Tamil-Latin``), and every other
  script ICU knows (``Any-Latin``), folded to ASCII.
- **Sinhala**, which ICU cannot romanise: anyascii, with the inherent vowel that it leaves out.
- **Burmese**: neither source gives the spellings people use (Kyaw, Thandar, Aung), so the
  syllables are romanised here by a table of onsets and rhymes, and both Burmese script and Latin
  spellings are folded to one form (:func:`burmese_fold`): voicing, vowel spellings and r/y.

Everything is lower-case ASCII letters; nothing here is keyed or secret, it runs before the
keyed encoding on each node.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache
from typing import Any

import icu
from anyascii import anyascii

from federation.linkage.scripts import ARABIC_SEMIVOWELS, GREEK_DIGRAPHS, ROMANISATION
from federation.linkage.tables import ICU_TRANSFORMS

# --- scripts ---------------------------------------------------------------------------------

_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0600, 0x06FF, "Arabic"), (0x0750, 0x077F, "Arabic"), (0xFB50, 0xFDFF, "Arabic"),
    (0xFE70, 0xFEFF, "Arabic"), (0x0B80, 0x0BFF, "Tamil"), (0x0D80, 0x0DFF, "Sinhala"),
    (0x1000, 0x109F, "Myanmar"), (0xA9E0, 0xA9FF, "Myanmar"), (0xAA60, 0xAA7F, "Myanmar"),
    (0x1200, 0x139F, "Ethiopic"), (0x2D80, 0x2DDF, "Ethiopic"), (0xAB00, 0xAB2F, "Ethiopic"),
    (0x3400, 0x4DBF, "Han"), (0x4E00, 0x9FFF, "Han"), (0xF900, 0xFAFF, "Han"),
    (0x20000, 0x2FA1F, "Han"), (0x0400, 0x052F, "Cyrillic"), (0x0370, 0x03FF, "Greek"),
)  # fmt: skip


def script_of(char: str) -> str:
    """The script a letter belongs to, for the scripts romanised differently; else "Other"
    (Latin letters are "Latin")."""
    code = ord(char)
    if code < 0x250:
        return "Latin"
    for first, last, script in _RANGES:
        if first <= code <= last:
            return script
    return "Other"


def has_script(text: str, script: str) -> bool:
    return any(script_of(char) == script for char in text if char.isalpha())


def ascii_letters(text: str) -> str:
    """Lower case, accents removed, only a-z, digits, spaces and hyphens kept."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.category(c).startswith("M"))
    bare = "".join(ROMANISATION.get(c, c) if c in "ßæœøđðþłıħŋ" else c for c in bare.casefold())
    return re.sub(r"[^a-z0-9\- ]+", "", bare)


# --- ICU -------------------------------------------------------------------------------------


@cache
def _icu(transform: str) -> Any:
    return icu.Transliterator.createInstance(f"{transform}; Latin-ASCII; Lower")


@cache
def _icu_raw(transform: str) -> Any:
    return icu.Transliterator.createInstance(transform)


# --- whole words of one script ------------------------------------------------------------------


def romanise_word(word: str, *, persian: bool = False) -> str:
    """One word (letters of one or more scripts, no spaces) in lower-case Latin letters."""
    out: list[str] = []
    for script, run in _runs(word):
        out.append(_ROMANISERS.get(script, _other)(run, persian))
    return "".join(out)


def _runs(word: str) -> list[tuple[str, str]]:
    runs: list[tuple[str, str]] = []
    for char in word:
        script = script_of(char) if char.isalpha() or _is_mark(char) else "Latin"
        if _is_mark(char) and runs:
            script = runs[-1][0]
        if runs and runs[-1][0] == script:
            runs[-1] = (script, runs[-1][1] + char)
        else:
            runs.append((script, char))
    return runs


def _is_mark(char: str) -> bool:
    return unicodedata.category(char).startswith("M")


def _latin(run: str, persian: bool) -> str:
    return ascii_letters(run)


# Arabic letters as Persian pronounces them (Reza, not Reda; Kazem, not Kadhem).
_PERSIAN_LETTERS = {"ض": "z", "ظ": "z", "ذ": "z", "ث": "s", "ص": "s", "ق": "gh"}


def _tables(run: str, persian: bool) -> str:
    """Arabic, Cyrillic, Greek: scheme v1's letter tables."""
    bare = "".join(c for c in unicodedata.normalize("NFKD", run) if not _is_mark(c)).casefold()
    for greek, latin in GREEK_DIGRAPHS.items():
        bare = bare.replace(greek, latin)
    letters: list[str] = []
    for position, char in enumerate(bare):
        if char in ARABIC_SEMIVOWELS:
            consonant, vowel = ARABIC_SEMIVOWELS[char]
            letters.append(consonant if position == 0 else vowel)
        elif persian and char in "هە" and position == len(bare) - 1 and position > 0:
            letters.append("eh")
        elif persian and char in _PERSIAN_LETTERS:
            letters.append(_PERSIAN_LETTERS[char])
        else:
            letters.append(ROMANISATION.get(char, char if "a" <= char <= "z" else ""))
    return "".join(letters)


def _ethiopic(run: str, persian: bool) -> str:
    latin = ascii_letters(_icu(ICU_TRANSFORMS["Ethiopic"]).transliterate(run))
    # BGN writes the sixth-order (vowelless) syllable at a word's end as "-i": Mogesi -> Moges.
    return re.sub(r"(?<=[^aeiou])i$", "", latin) if len(latin) > 3 else latin


def _tamil(run: str, persian: bool) -> str:
    latin = ascii_letters(_icu(ICU_TRANSFORMS["Tamil"]).transliterate(run))
    # ISO 15919 "c" is written "ch" doubled and "s" elsewhere in names (Ravichandran, Sivakumar).
    return re.sub(r"c(?!h)", "s", latin.replace("cc", "ch"))


_SINHALA_CONSONANTS = range(0x0D9A, 0x0DC7)
_SINHALA_SIGNS = frozenset(range(0x0DCA, 0x0DE0)) | {0x0DF2, 0x0DF3, 0x0D82, 0x0D83}


# Where anyascii's letter is not the one names are spelled with (Ranasinghe, Chathurika, Shantha).
_SINHALA_LETTERS = {"\u0d82": "ng", "\u0dc1": "sh", "\u0dc2": "sh", "\u0da0": "ch"}


def _sinhala(run: str, persian: bool) -> str:
    letters: list[str] = []
    for position, char in enumerate(run):
        latin = _SINHALA_LETTERS.get(char) or anyascii(char).lower()
        following = ord(run[position + 1]) if position + 1 < len(run) else 0
        if ord(char) in _SINHALA_CONSONANTS and following not in _SINHALA_SIGNS:
            latin += "a"  # the inherent vowel, which anyascii leaves out
        letters.append(latin)
    return ascii_letters("".join(letters))


def _han(run: str, persian: bool) -> str:
    return "".join(han_pinyin(run))


def _myanmar(run: str, persian: bool) -> str:
    return "".join(burmese_syllables(run))


def _other(run: str, persian: bool) -> str:
    return ascii_letters(_icu("Any-Latin").transliterate(run))


_ROMANISERS: dict[str, Callable[[str, bool], str]] = {
    "Latin": _latin,
    "Arabic": _tables,
    "Cyrillic": _tables,
    "Greek": _tables,
    "Ethiopic": _ethiopic,
    "Tamil": _tamil,
    "Sinhala": _sinhala,
    "Han": _han,
    "Myanmar": _myanmar,
}


# --- Han -------------------------------------------------------------------------------------


def han_pinyin(chars: str, *, surname: bool = False) -> list[str]:
    """The Mandarin pinyin syllable of each character (family-name readings if ``surname``)."""
    transform = _icu(ICU_TRANSFORMS["Han"] if surname else "Han-Latin")
    return [ascii_letters(transform.transliterate(c)).replace(" ", "") for c in chars]


def han_cantonese(chars: str) -> list[str]:
    """The Hong Kong Government (Cantonese) spelling of each character, simplified or not."""
    import ToJyutping  # deferred: a 0.8 s dictionary load (tests/core/test_architecture.py)

    traditional = _icu_raw(ICU_TRANSFORMS["Hans-Hant"]).transliterate(chars)
    readings = ToJyutping.get_jyutping_list(traditional)
    return [jyutping_to_hk(reading or "") for _, reading in readings]


_JYUTPING_INITIALS = ("gw", "kw", "ng", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h",
                      "w", "z", "c", "s", "j")  # fmt: skip
_HK_INITIALS = {"b": "p", "d": "t", "g": "k", "gw": "kw", "z": "ch", "c": "ch", "j": "y"}
_HK_FINALS = {
    "aa": "a", "aai": "ai", "aau": "au", "aam": "am", "aan": "an", "aang": "ang", "aap": "ap",
    "aat": "at", "aak": "ak", "ou": "o", "oe": "oe", "oeng": "eung", "oek": "euk", "eoi": "ui",
    "eon": "un", "eot": "ut", "yu": "u", "yun": "uen", "yut": "ut",
}  # fmt: skip
_HK_SYLLABLES = {"zi": "tsz", "ci": "tsz", "si": "sze", "jyu": "yu", "syu": "shu"}


def jyutping_to_hk(syllable: str) -> str:
    """One Jyutping syllable ("zoeng1") in the Hong Kong Government spelling ("cheung")."""
    bare = syllable.rstrip("0123456789").lower()
    if bare in _HK_SYLLABLES:
        return _HK_SYLLABLES[bare]
    if bare in ("m", "ng"):
        return bare
    initial = next((i for i in _JYUTPING_INITIALS if bare.startswith(i) and bare != i), "")
    final = bare[len(initial) :]
    return _HK_INITIALS.get(initial, initial) + _HK_FINALS.get(final, final)


# --- Burmese ---------------------------------------------------------------------------------

_MM_CONSONANTS = {
    "က": "k", "ခ": "kh", "ဂ": "g", "ဃ": "g", "င": "ng", "စ": "s", "ဆ": "hs", "ဇ": "z",
    "ဈ": "z", "ဉ": "ny", "ည": "ny", "ဋ": "t", "ဌ": "ht", "ဍ": "d", "ဎ": "d", "ဏ": "n",
    "တ": "t", "ထ": "ht", "ဒ": "d", "ဓ": "d", "န": "n", "ပ": "p", "ဖ": "ph", "ဗ": "b",
    "ဘ": "b", "မ": "m", "ယ": "y", "ရ": "y", "လ": "l", "ဝ": "w", "သ": "th", "ဟ": "h",
    "ဠ": "l", "အ": "",
}  # fmt: skip
_MM_INDEPENDENT = {"ဣ": "i", "ဤ": "i", "ဥ": "u", "ဦ": "u", "ဧ": "e", "ဩ": "aw", "ဪ": "aw"}
_ASAT, _VIRAMA = "\u103a", "\u1039"
_TONES = "\u1037\u1038"  # dot below and visarga, written before or after the asat
_MEDIAL_Y, _MEDIAL_R, _MEDIAL_W, _MEDIAL_H = "\u103b", "\u103c", "\u103d", "\u103e"
_MM_FINAL_CLASS = {"က": "k", "င": "ng", "စ": "s", "တ": "t", "ပ": "t", "န": "n", "မ": "n",
                   "ည": "ny", "ဉ": "nn", "ယ": "y"}  # fmt: skip
# (vowel, final class) -> rhyme, as names are usually spelled.
_MM_RHYMES = {
    ("", ""): "a", ("", "k"): "et", ("", "ng"): "in", ("", "s"): "it", ("", "ny"): "i",
    ("", "nn"): "in", ("", "t"): "at", ("", "n"): "an", ("", "y"): "e",
    ("aw", ""): "aw", ("aw", "k"): "auk", ("aw", "ng"): "aung",
    ("o", ""): "o", ("o", "k"): "aik", ("o", "ng"): "aing",
    ("i", ""): "i", ("i", "t"): "eik", ("i", "n"): "ein", ("i", "k"): "eik",
    ("u", ""): "u", ("u", "t"): "ok", ("u", "n"): "on", ("u", "k"): "ok",
    ("a", ""): "a", ("e", ""): "e", ("ai", ""): "e",
}  # fmt: skip


def burmese_syllables(text: str) -> list[str]:
    """The syllables of Burmese-script text, romanised and folded (:func:`burmese_fold`)."""
    syllables: list[str] = []
    voiced = False
    for chunk in _burmese_chunks(text):
        latin, stacked_nasal = _burmese_syllable(chunk)
        if voiced:
            latin = {"t": "d", "k": "g", "p": "b", "s": "z"}.get(latin[:1], latin[:1]) + latin[1:]
        voiced = stacked_nasal
        if latin:
            syllables.append(burmese_fold(latin))
    return syllables


def _burmese_chunks(text: str) -> list[str]:
    """Split before every consonant or independent vowel that opens a syllable: not one that
    closes the syllable before it (followed by asat or virama)."""
    chunks: list[str] = []
    for position, char in enumerate(text):
        following = text[position + 1 :].lstrip(_TONES)[:1]
        opens = (char in _MM_CONSONANTS or char in _MM_INDEPENDENT) and following not in (
            _ASAT,
            _VIRAMA,
        )
        if opens or not chunks:
            chunks.append(char)
        else:
            chunks[-1] += char
    return chunks


def _burmese_syllable(chunk: str) -> tuple[str, bool]:
    """(romanised syllable, whether it closes with a stacked nasal that voices the next)."""
    first = chunk[0]
    if first in _MM_INDEPENDENT:
        onset, vowel_text = "", _MM_INDEPENDENT[first]
    elif first in _MM_CONSONANTS:
        onset, vowel_text = _burmese_onset(first, chunk[1:]), ""
    else:
        return "", False
    final_class, stacked_nasal = "", False
    for position, char in enumerate(chunk[1:], start=1):
        following = chunk[position + 1 :].lstrip(_TONES)[:1]
        if char in _MM_FINAL_CLASS and following in (_ASAT, _VIRAMA):
            final_class = _MM_FINAL_CLASS[char]
            stacked_nasal = following == _VIRAMA and final_class == "n"
    if "\u1036" in chunk:  # anusvara: a nasal final
        final_class = final_class or "n"
    vowel = vowel_text or _burmese_vowel(chunk)
    if _MEDIAL_W in chunk and not vowel and final_class in ("n", "t"):
        onset, vowel = onset.removesuffix("w"), "u"  # ွန် is "un" (Htun), ွတ် "ut"
    rhyme = _MM_RHYMES.get((vowel, final_class), vowel + final_class)
    return onset + rhyme, stacked_nasal


def _burmese_onset(consonant: str, marks: str) -> str:
    base = _MM_CONSONANTS[consonant]
    if _MEDIAL_Y in marks or _MEDIAL_R in marks:
        base = {"k": "ky", "kh": "ch", "g": "gy", "hs": "ch", "ng": "ny"}.get(base, base + "y")
    if _MEDIAL_W in marks:
        base += "w"
    if _MEDIAL_H in marks:
        base = "sh" + base[1:] if base[:1] == "y" else "h" + base
    return base


def _burmese_vowel(chunk: str) -> str:
    signs = {char for char in chunk if "\u102b" <= char <= "\u1032"}
    if "\u1031" in signs and signs & {"\u102b", "\u102c"}:
        return "aw"
    if "\u102d" in signs and "\u102f" in signs:
        return "o"
    for sign, vowel in (("\u102d", "i"), ("\u102e", "i"), ("\u102f", "u"), ("\u1030", "u"),
                        ("\u1031", "e"), ("\u1032", "ai"), ("\u102b", "a"), ("\u102c", "a")):
        if sign in signs:
            return vowel
    return ""


_BURMESE_FOLDS: tuple[tuple[str, str], ...] = (
    (r"^mg$", "maung"), (r"oo", "u"), (r"ee", "i"), (r"oe$", "o"), (r"(?<=[aeiou])r$", ""),
    (r"aye$", "e"), (r"ay$", "e"), (r"ai$", "e"), (r"^ei$", "i"), (r"on$", "un"),
    (r"int$", "in"), (r"ae$", "i"),
    (r"^r", "y"), (r"^k(?!h)", "g"), (r"^t(?!h)", "d"), (r"^p(?!h)", "b"), (r"^c(?!h)", "g"),
)  # fmt: skip


def burmese_fold(syllable: str) -> str:
    """One spelling for the usual romanisations of a Burmese syllable: voiced and voiceless
    plain onsets merged (Kyi/Gyi; Thandar's stacked "d"), Htoo/Htu, Thanda/Thandar, Nay/Ne,
    Moe/Mo, and the r/y of ရ (Thura, Yadanar)."""
    folded = syllable
    for pattern, replacement in _BURMESE_FOLDS:
        folded = re.sub(pattern, replacement, folded)
    return folded


_LATIN_BURMESE_SYLLABLE = re.compile(
    r"[^aeiouy]*[wy]?"  # onset, with a medial y or w
    r"(?:[aeiou]+(?:ye?(?![aeiou])|w(?![aeiou]))?|y)"  # the vowel, with a closing w or y (aw, aye)
    r"(?:ng(?![aeiou])|[nm](?![aeiouy])|[tkr](?![aeiouyh])|)",  # a final no vowel follows
)


def latin_burmese_syllables(word: str) -> list[str]:
    """A Latin-spelled Burmese word cut into folded syllables: Thura -> thu, ya."""
    word = re.sub(r"ine$", "aing", word)  # Khine is Khaing
    syllables = [match.group() for match in _LATIN_BURMESE_SYLLABLE.finditer(word)]
    if "".join(syllables) != word:
        return [burmese_fold(word)]
    return [burmese_fold(syllable) for syllable in syllables if syllable]
