"""Romanisation tables for the scripts the coalition's defenders' names arrive in.

Written for matching, not for display: each letter maps to the Latin letters most often used for
it in names, so a native-script name and its usual romanisations land close together. Combining
marks (accents, Arabic short vowels, the breve of й) are removed before these tables apply.

- Cyrillic: Russian, Ukrainian and Belarusian letters, close to the passport (ICAO 9303) system.
- Greek: ELOT 743 single-letter values.
- Arabic: consonants as in common English/French romanisations; the long vowels alif, waw and ya
  as a, u/w and i/y; ain as "a"; hamza and tatweel dropped; ta marbuta as "a"; a few Persian and
  Urdu letters.
"""

from __future__ import annotations

CYRILLIC: dict[str, str] = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z",
    "и": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
    "і": "i", "ї": "yi", "є": "ye", "ґ": "g", "ў": "u", "ј": "j", "љ": "lj", "њ": "nj",
    "ђ": "dj", "ћ": "c", "џ": "dz", "ѕ": "dz",
}  # fmt: skip

GREEK: dict[str, str] = {
    "α": "a", "β": "v", "γ": "g", "δ": "d", "ε": "e", "ζ": "z", "η": "i", "θ": "th",
    "ι": "i", "κ": "k", "λ": "l", "μ": "m", "ν": "n", "ξ": "x", "ο": "o", "π": "p",
    "ρ": "r", "σ": "s", "ς": "s", "τ": "t", "υ": "y", "φ": "f", "χ": "ch", "ψ": "ps",
    "ω": "o",
}  # fmt: skip

ARABIC: dict[str, str] = {
    "ا": "a", "ٱ": "a", "ء": "", "ب": "b", "ت": "t", "ة": "a", "ث": "th", "ج": "j",
    "ح": "h", "خ": "kh", "د": "d", "ذ": "dh", "ر": "r", "ز": "z", "س": "s", "ش": "sh",
    "ص": "s", "ض": "d", "ط": "t", "ظ": "z", "ع": "a", "غ": "gh", "ف": "f", "ق": "q",
    "ك": "k", "ل": "l", "م": "m", "ن": "n", "ه": "h", "ى": "a", "ـ": "",
    "پ": "p", "چ": "ch", "ژ": "zh", "گ": "g", "ک": "k", "ی": "i", "ٹ": "t", "ڈ": "d",
    "ڑ": "r", "ں": "n", "ھ": "h", "ہ": "h", "ۃ": "a", "ے": "e",
}  # fmt: skip

# Waw and ya are consonants at the start of a word and long vowels elsewhere.
ARABIC_SEMIVOWELS: dict[str, tuple[str, str]] = {"و": ("w", "u"), "ي": ("y", "i")}

LATIN_LETTERS: dict[str, str] = {
    "ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ð": "d", "þ": "th", "ł": "l",
    "ı": "i", "ħ": "h", "ŋ": "ng", "ʼ": "", "ʻ": "", "ʿ": "", "ʾ": "",
}  # fmt: skip

ROMANISATION: dict[str, str] = {**CYRILLIC, **GREEK, **ARABIC, **LATIN_LETTERS}

# Sounds for the consonant sketch (``names.skeleton``) where the spelling above would be read
# wrongly: a digraph that must stay one sound (ш -> "S", not "s" + "h"), a vowel-carrier that
# must vanish (ع, ة), or letters that merge with their usual Latin look-alikes (ث -> "t").
# "S" is the sound the Latin rules of ``names`` give "sh", "ch" and "sch" too.
SOUNDS: dict[str, str] = {
    "ж": "j", "х": "h", "ц": "s", "ч": "S", "ш": "S", "щ": "S", "ї": "i", "є": "e",
    "θ": "t", "χ": "h", "ξ": "ks", "ψ": "ps",
    "ث": "t", "خ": "h", "ذ": "d", "ز": "s", "ش": "S", "ص": "s", "ض": "d", "ط": "t",
    "ظ": "d", "ع": "", "غ": "g", "ق": "k", "ة": "", "ى": "", "چ": "S", "ژ": "j",
}  # fmt: skip
# Greek diphthongs romanised as a pair rather than letter by letter.
GREEK_DIGRAPHS: dict[str, str] = {"ου": "ou", "αυ": "av", "ευ": "ev"}
